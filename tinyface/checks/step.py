"""One whole training step of the student on both tiers, and ``cuda_ops``, the switch
that runs the layers on the CUDA tier.

``step_check`` builds the student twice from the same seed (``step_spec``: every layer
type, shrunk for the simulator), steps one copy with ``SGD`` on the Numba CPU tier and
the other with ``DeviceSGD`` on the GPU, on the same batch, and compares the logits, the
updated weights and the running statistics (``gemm`` tolerance: conv and linear sums
reordered), the losses (``reduction``), and counts the implicit host <-> device copies.
"""
import contextlib
import time

import numpy as np

import tinyface.cuda as tc
from tinyface import backend, losses
from tinyface.backend import set_backend
from tinyface.checks.report import Report, rel_err
from tinyface.cuda.arrays import (DeviceTensor, module_to, reset_transfer_counts, to_device,
                                  to_host, transfer_counts, zeros)
from tinyface.cuda.optim import DeviceSGD
from tinyface.models import build_model, student_spec
from tinyface.nn.module import Module
from tinyface.optim import SGD


@contextlib.contextmanager
def cuda_ops():
    """Run the layers on the CUDA tier: ``set_backend("cuda")`` where the backend knows
    it, else every op overridden with its CUDA version (same effect)."""
    if "cuda" in backend.BACKENDS:
        previous = backend.set_backend("cuda")
        try:
            yield
        finally:
            backend.set_backend(previous)
        return
    names = [n for n in dir(tc) if n.endswith(("_forward", "_backward", "_loss"))]
    with backend.override_ops(**{n: getattr(tc, n) for n in names}):
        yield


def nn_device_ready():
    """True when ``tinyface.nn`` layers pass DeviceTensors through (no host copy)."""
    return isinstance(Module().check_input(zeros((2, 3)), ndim=2), DeviceTensor)


def step_spec(width=4, input_size=4, num_classes=5):
    """The student's spec (``tinyface.models.student_spec``: conv-BN-ReLU x2, max pool,
    x2, max pool, conv, global average pool, Linear + BatchNorm1d embedding, Linear
    classifier), with dropout 0.25 added so that every layer type runs, and its widths
    divided by 16 / ``width`` (4: 4-4-8-8-8, a 8-d embedding) for the simulator.
    ``width=16``, ``input_size=16``: the real student."""
    spec = student_spec(num_classes=num_classes, input_size=input_size)
    f = width / 16
    spec["stages"] = [s if s == "M" else max(1, int(s * f)) for s in spec["stages"]]
    spec["embedding_dim"] = max(1, int(spec["embedding_dim"] * f))
    spec["dropout"] = 0.25
    return spec


def step_check(steps=1, batch=4, width=4, input_size=4, seed=0, log=None):
    """The student (``step_spec``) trained for ``steps`` SGD steps (momentum 0.9, weight
    decay 5e-4) on the CPU and on the GPU, from the same weights and batch.

    Returns a JSON-able dict: per-step losses on both tiers, per-tensor errors of the
    logits, updated weights and running statistics, and the implicit host <-> device
    copies the GPU steps made (``model_transfers``: forward, backward and SGD step;
    ``loss_transfers``: inside ``tinyface.losses``)."""
    spec = step_spec(width, input_size)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    labels = rng.integers(0, spec["num_classes"], size=batch)
    hyper = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)

    cpu = build_model(spec, seed=seed).train()
    gpu = module_to(build_model(spec, seed=seed).train(), "cuda")
    set_backend("numba")
    opt_c = SGD(cpu.parameters_and_grads(), **hyper)
    out = {"spec": spec, "batch": batch, "steps": steps, "loss_cpu": [], "loss_gpu": [],
           "model_transfers": [], "loss_transfers": [], "seconds_gpu": 0.0}
    for _ in range(steps):
        opt_c.zero_grad()
        logits_c = cpu.forward(x)
        loss, dlogits = losses.softmax_cross_entropy_loss(logits_c, labels)
        cpu.backward(dlogits)
        opt_c.step()
        out["loss_cpu"].append(loss)

    opt_g = DeviceSGD(gpu.parameters_and_grads(), **hyper)
    t0 = time.perf_counter()
    with cuda_ops():
        x_d = to_device(x)                                      # the batch goes up, explicitly
        for _ in range(steps):
            reset_transfer_counts()
            opt_g.zero_grad()
            logits_g = gpu.forward(x_d)
            moved = transfer_counts()
            loss, dlogits = losses.softmax_cross_entropy_loss(logits_g, labels)
            after_loss = transfer_counts()
            gpu.backward(dlogits)
            opt_g.step()
            end = transfer_counts()
            out["loss_gpu"].append(loss)
            out["loss_transfers"].append(sum(after_loss.values()) - sum(moved.values()))
            out["model_transfers"].append(sum(end.values()) - out["loss_transfers"][-1])
    out["seconds_gpu"] = time.perf_counter() - t0
    rep = Report()
    rep.add("step", "logits", "last step", logits_g, logits_c, "gemm")
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        rep.add("step", "param", name, to_host(pg), pc, "gemm")
    for (name, bc), (_, bg) in zip(cpu.named_buffers(), gpu.named_buffers()):
        rep.add("step", "buffer", name, to_host(bg), bc, "gemm")
    out["loss_err"] = max(rel_err(a, b) for a, b in zip(out["loss_gpu"], out["loss_cpu"]))
    out["rows"] = rep.rows
    out["nn_device_ready"] = nn_device_ready()
    if log:
        log(f"  step: losses cpu {out['loss_cpu']} gpu {out['loss_gpu']}; "
            f"worst tensor err {max(r['err'] for r in rep.rows):.2e}; implicit copies per "
            f"step: model {out['model_transfers']}, loss {out['loss_transfers']}")
    return out
