"""What a ``TrainConfig`` builds for a run: the optimizer, the steps of an epoch and the
per-step learning-rate schedule.

    optimizer = make_optimizer(config, model)          # SGD, Adam or AdamW (device ones on the GPU)
    steps = steps_per_epoch(config, len(train_images))
    schedule = make_lr_schedule(config, steps)         # schedule.apply(optimizer, t), t = 0, 1, ...
"""
from tinyface import cuda
from tinyface.backend import is_device_array
from tinyface.optim import SGD, Adam, AdamW, make_schedule


def make_optimizer(config, params):
    """The optimizer named by ``config`` over ``params`` (a Module or triples): the
    device version (``tinyface.cuda.DeviceSGD``, ...) when the parameters are on the GPU."""
    lr, wd = config.learning_rate, config.weight_decay
    cls = {"sgd": SGD, "adam": Adam, "adamw": AdamW}[config.optimizer]
    first = next(iter(params.named_parameters() if hasattr(params, "named_parameters")
                      else [(n, p) for n, p, _ in params]), (None, None))[1]
    if first is not None and is_device_array(first):
        cls = cuda.device_optimizer(cls)
    if config.optimizer == "sgd":
        return cls(params, lr=lr, momentum=config.momentum, weight_decay=wd,
                   nesterov=config.nesterov)
    return cls(params, lr=lr, weight_decay=wd)


def steps_per_epoch(config, n):
    """Optimizer steps in one epoch over ``n`` faces."""
    return n // config.batch_size if config.drop_last else -(-n // config.batch_size)


def make_lr_schedule(config, steps):
    """The per-step schedule for a run of ``config.epochs`` epochs of ``steps`` steps."""
    total = config.epochs * steps
    warmup = min(int(round(config.warmup_epochs * steps)), total - 1)
    kwargs = {"min_lr": config.min_lr} if config.schedule == "cosine" else {}
    return make_schedule(config.schedule, config.learning_rate, total, warmup, **kwargs)
