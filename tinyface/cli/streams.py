"""``train-teacher`` and ``train-student``: the two streams' initialisation."""

from tinyface.cli import CLIError
from tinyface.cli.options import (
    add_common,
    add_data_options,
    add_device_option,
    add_train_options,
    config_from_args,
    interrupted_training,
    split_from_args,
    tee_log,
)
from tinyface.experiments import train_stream
from tinyface.experiments.streams import STREAM_VALIDATION
from tinyface.helpformat import HelpFormatter
from tinyface.train import NoCheckpointError, ResumeMismatchError, TrainingDiverged

HELP = {
    "teacher": "train the teacher on HR faces (the default VGG-style teacher, 64x64)",
    "student": "train the student on LR faces (16x16, <= 0.15 MB), from scratch",
}


def register(sub):
    for stream, (epochs, batch) in (("teacher", (40, 64)), ("student", (30, 64))):
        p = sub.add_parser(f"train-{stream}", help=HELP[stream], description=HELP[stream] + ". "
                           "Holds out --val-fraction of each identity's training faces to pick the best epoch "
                           "on, then scores the kept model once on the test faces. "
                           "Writes OUT/model.npz (the kept model), checkpoint.npz "
                           "(every epoch, for --resume), history.json, curves.png, metrics.json and log.txt.",
                           formatter_class=HelpFormatter)
        add_data_options(p)
        add_train_options(p, epochs=epochs, batch_size=batch, stream=stream)
        arch = ["teacher", "teacher-lite"] if stream == "teacher" else ["student"]
        p.add_argument("--arch", choices=arch, default=arch[0],
                       help="architecture from the model zoo (see `python -m tinyface info`)")
        p.add_argument("--val-fraction", type=float, default=STREAM_VALIDATION, metavar="F",
                       help="fraction of each identity's training faces held out to pick "
                            "the epoch (0: train on all of them and keep the last epoch)")
        add_common(p, out_default=f"runs/{stream}")
        add_device_option(p)
        p.set_defaults(func=run, stream=stream, interrupted=interrupted_training)


def run(args):
    cfg = config_from_args(args)
    if not 0.0 <= args.val_fraction < 1.0:
        raise CLIError(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    split = split_from_args(args)
    log = tee_log(args.out)
    try:
        result = train_stream(split, args.stream, cfg, args.out, arch=args.arch,
                              resume=args.resume, log=log, validation=args.val_fraction)
    except (NoCheckpointError, ResumeMismatchError, TrainingDiverged, ValueError) as exc:
        raise CLIError(str(exc).splitlines()[0]) from None
    m = result["metrics"]
    kept = (f"epoch {m['kept_epoch']}, val {100 * m['val_acc']:.1f}%" if m["val_acc"] is not None
            else f"the last epoch, {m['kept_epoch']}")
    log(f"{args.stream} test top-1 {100 * m['top1']:.1f}%  top-5 {100 * m['top5']:.1f}%  "
        f"({m['faces']} faces at {m['input_size']}px; {kept}; trained in "
        f"{m['train_seconds']:.0f} s)")
    log(f"wrote {args.out}/model.npz, metrics.json, curves.png, history.json, log.txt")
    return 0
