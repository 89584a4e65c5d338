"""What the deployed student costs: its memory in bytes and its speed in faces/s.

The paper's student takes 0.15 MB and runs at 418 faces/s on its CPU (Ge et al., TIP
2019). We read 0.15 MB as 0.15 * 2**20 bytes (``PAPER_STUDENT_BYTES``, as
``tinyface.models.zoo.STUDENT_MAX_PARAMS`` does) and count float32 parameters, 4
bytes each; the batch-norm running statistics are reported in their own line.

    from tinyface.experiments.deployment import deployment_report, format_deployment
    report = deployment_report(student)          # bytes, faces/s at batch 1 and 256
    print(format_deployment(report))

Speed is the median over ``reps`` timed calls after ``warmup`` untimed ones (JIT
compilation stays outside the timing), on random faces of the model's input shape, in
eval mode (the model's mode is restored afterwards). It is measured here and never
asserted in tests: it depends on the machine and on what else runs on it.
"""
from __future__ import annotations

import time

import numpy as np

from tinyface.bench.timing import median_seconds
from tinyface.eval import eval_mode
from tinyface.models.zoo import PAPER_FACES_PER_S, PAPER_STUDENT_BYTES, PAPER_STUDENT_MB  # noqa: F401



def model_memory(model):
    """Memory of a ``FaceNet``: a dict of ints (bytes) and floats (MB = 2**20 bytes).

    ``params``, ``param_bytes`` (float32 parameters, classifier included),
    ``classifier_bytes`` (the ``Linear(D, K)`` head alone: a verification-only
    deployment drops it), ``embedding_bytes`` (param_bytes - classifier_bytes),
    ``buffer_bytes`` (batch-norm running statistics), ``megabytes`` (param_bytes / 2**20),
    ``paper_bytes`` (0.15 MB) and ``fraction_of_paper`` (param_bytes / paper_bytes).
    """
    params = int(model.num_parameters())
    param_bytes = 4 * params
    head = getattr(model, "classifier", None)
    classifier_bytes = 4 * int(sum(p.size for p in head.params.values())) if head is not None else 0
    buffer_bytes = int(sum(b.nbytes for _, b in model.named_buffers()))
    return {"params": params, "param_bytes": param_bytes, "classifier_bytes": classifier_bytes,
            "embedding_bytes": param_bytes - classifier_bytes, "buffer_bytes": buffer_bytes,
            "megabytes": param_bytes / 2 ** 20, "paper_bytes": PAPER_STUDENT_BYTES,
            "fraction_of_paper": param_bytes / PAPER_STUDENT_BYTES}


def measure_throughput(model, batch_sizes=(1, 256), reps=20, warmup=2, seed=0, max_seconds=5.0,
                       fn=None):
    """Inference speed of ``model`` at each batch size, warm-up excluded.

    model: a module with ``input_shape`` (C, H, W) (a ``FaceNet``); fn: what is timed,
    ``fn(x)`` (default ``model.forward``, the logits; ``model.embed`` for verification).
    reps: timed calls per batch size (at least 3 run; ``max_seconds`` stops earlier).
    Returns ``{batch: {"faces_per_s", "median_s", "batch"}}`` with float values.
    """
    fn = model.forward if fn is None else fn
    rng = np.random.default_rng(seed)
    out = {}
    with eval_mode(model):
        for b in batch_sizes:
            b = int(b)
            if b < 1:
                raise ValueError(f"batch sizes must be >= 1, got {b}")
            x = (rng.random((b, *model.input_shape), dtype=np.float32) - 0.5)   # (b, C, H, W)
            t = median_seconds(lambda: fn(x), reps=max(3, int(reps)), warmup=int(warmup),
                               max_seconds=max_seconds)
            out[b] = {"faces_per_s": b / t, "median_s": t, "batch": b}
    return out


def deployment_report(model, batch_sizes=(1, 256), reps=20, warmup=2, seed=0, max_seconds=5.0):
    """``model_memory`` plus ``measure_throughput`` and the paper's figures.

    Returns a dict: ``memory`` (see ``model_memory``), ``speed`` (see
    ``measure_throughput``), ``paper`` ({"bytes", "megabytes", "faces_per_s"}),
    ``speedup_vs_paper`` ({batch: faces/s / 418}), ``seconds`` (time the report took).
    """
    t0 = time.perf_counter()
    speed = measure_throughput(model, batch_sizes, reps=reps, warmup=warmup, seed=seed,
                               max_seconds=max_seconds)
    return {"memory": model_memory(model), "speed": speed,
            "paper": {"bytes": PAPER_STUDENT_BYTES, "megabytes": PAPER_STUDENT_MB,
                      "faces_per_s": PAPER_FACES_PER_S},
            "speedup_vs_paper": {b: s["faces_per_s"] / PAPER_FACES_PER_S for b, s in speed.items()},
            "seconds": time.perf_counter() - t0}


def format_deployment(report, name="student"):
    """A few lines of text: bytes against 0.15 MB, faces/s against 418 faces/s."""
    m = report["memory"]
    lines = [f"{name}: {m['params']:,} float32 parameters = {m['param_bytes']:,} bytes "
             f"({m['megabytes']:.4f} MB; the paper's student: {PAPER_STUDENT_BYTES:,} bytes = "
             f"{PAPER_STUDENT_MB} MB, ours is {100 * m['fraction_of_paper']:.1f}% of it)",
             f"  without the classifier (embedding only): {m['embedding_bytes']:,} bytes; "
             f"batch-norm running statistics: {m['buffer_bytes']:,} bytes more"]
    for b, s in report["speed"].items():
        ratio = report["speedup_vs_paper"][b]
        lines.append(f"  batch {b:>4}: {s['faces_per_s']:,.0f} faces/s (median "
                     f"{1e3 * s['median_s']:.3f} ms per call; {ratio:.1f}x the paper's "
                     f"{PAPER_FACES_PER_S:.0f} faces/s)")
    return "\n".join(lines)
