"""Each distillation method variant fine-tuned on the GPU against the CPU.

``finetune`` (``tinyface.distill.finetune``) runs twice per method variant (sp, rkd, pkt,
fsim, crd, dkd, at) from the same student, split, bank and seed: once on the Numba CPU
tier, once under ``set_backend("cuda")``, where the method's term is taken by the CUDA
kernels of ``tinyface.cuda.kd_*`` (``tinyface.distill.methods_cuda``). Compared: the
epoch's training loss and method term, and the fine-tuned student's parameters; and
every training step of the GPU run runs inside ``strict_transfers()``, so an implicit
host <-> device copy in the step (forward, losses, method term, backward) fails it.

    python -m tinyface.checks.distill_methods [--methods sp rkd ...] [--json PATH]

Shapes are tiny, for the simulator (``NUMBA_ENABLE_CUDASIM=1``, what
``tests/test_cuda_kd_losses.py`` runs in a child process): a synthetic split of 3
identities x 4 faces (9 training faces, LR 2 px, one batch of 9), a student of one
conv stage (2 channels, a 2x2 pre-pool map, a 3-d embedding), a random 6-d bank with
teacher logits and attention rows, one epoch (one SGD step).

Tolerances. The two tiers' network forward passes differ by float32 rounding (conv and
batch-norm sums in another order: about 1e-6 of the embedding), and the methods' terms
then agree to float64 rounding (``kd_checks``). The losses are compared at ``gemm``
(1e-4; measured up to 8e-6, PKT). One SGD step moves each parameter by lr times a
gradient scaled by the method's weight (up to 3000, SP), which carries that 1e-6 into
the parameters: they are compared at ``FINETUNE_TOL`` = 1e-3 (measured up to 2.6e-4, PKT).
"""
import argparse
import contextlib
import sys
import time

import numpy as np

from tinyface.backend import set_backend
from tinyface.checks.report import TOL, Report, rel_err, run_gpu_command
from tinyface.cuda.arrays import strict_transfers, to_host
from tinyface.cuda.launch import SIMULATOR
from tinyface.data import load_split
from tinyface.distill import DistillConfig, FeatureBank, finetune, finetune_config
from tinyface.distill.methods import METHOD_VARIANTS
from tinyface.distill.step import DistillStep
from tinyface.models import build_model
from tinyface.reference.kd_maps import teacher_attention

FINETUNE_TOL = 1e-3


def tiny_setup(seed=0):
    """``(split, student, bank)``: the tiny synthetic split, a one-stage student and a
    random feature bank with logits and attention rows at the student's map size."""
    split = load_split("synthetic", hr_size=8, lr_size=2, cache_dir=False,
                       synthetic={"n_identities": 3, "images_per_identity": 4})
    spec = {"name": "tiny-student", "input_size": split.lr_size, "in_channels": 3,
            "stages": [2], "embedding_dim": 3, "embedding_norm": "bn",
            "num_classes": split.num_classes, "norm": "bn", "act": "relu", "dropout": 0.0}
    student = build_model(spec, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(split.y_train)
    C, H, W = student.map_shape
    bank = FeatureBank(rng.standard_normal((n, 6)).astype(np.float32),
                       (2 * rng.standard_normal((n, split.num_classes))).astype(np.float32),
                       {"attention_size": [H, W]},
                       teacher_attention(rng.standard_normal((n, 3, 2 * H, 2 * W)), (H, W)))
    return split, student, bank


@contextlib.contextmanager
def strict_steps():
    """Every ``DistillStep`` call inside the block runs in ``strict_transfers()``."""
    original = DistillStep.__call__

    def strict_call(self, *args):
        with strict_transfers():
            return original(self, *args)

    DistillStep.__call__ = strict_call
    try:
        yield
    finally:
        DistillStep.__call__ = original


def method_check(name, split, student, bank, seed=0):
    """Fine-tune ``student`` with variant ``name`` on both tiers; a JSON-able dict."""
    cfg = finetune_config(epochs=1, batch_size=len(split.y_train), seed=seed)
    quiet = (lambda msg: None)
    runs, out = {}, {"method": name}
    previous = set_backend("numba")
    try:
        runs["cpu"] = finetune(student, split, bank, None, DistillConfig(name), cfg, log=quiet)
        set_backend("cuda")
        t0 = time.perf_counter()
        with strict_steps():
            runs["gpu"] = finetune(student, split, bank, None, DistillConfig(name), cfg,
                                   log=quiet)
        out["seconds_gpu"] = time.perf_counter() - t0
    finally:
        set_backend(previous)
    h_cpu, h_gpu = runs["cpu"]["history"][-1], runs["gpu"]["history"][-1]
    out["loss_cpu"], out["loss_gpu"] = h_cpu["train_loss"], h_gpu["train_loss"]
    out["method_cpu"], out["method_gpu"] = h_cpu["method"], h_gpu["method"]
    out["loss_err"] = max(rel_err(np.array(out["loss_gpu"]), np.array(out["loss_cpu"])),
                          rel_err(np.array(out["method_gpu"]), np.array(out["method_cpu"])))
    rep = Report()
    gpu = dict(runs["gpu"]["model"].named_parameters())
    for pname, p in runs["cpu"]["model"].named_parameters():
        rep.add("finetune", name, pname, to_host(gpu[pname]), p, "gemm")
    for r in rep.rows:                            # held to FINETUNE_TOL (module docstring)
        r["tol"], r["ok"] = FINETUNE_TOL, bool(r["err"] <= FINETUNE_TOL)
    out["rows"] = rep.rows
    out["passed"] = out["loss_err"] <= TOL["gemm"] and not rep.failed()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tinyface.checks.distill_methods",
                                 description="Method-variant fine-tuning on the GPU against "
                                             "the CPU.")
    ap.add_argument("--methods", nargs="*", default=list(METHOD_VARIANTS),
                    choices=list(METHOD_VARIANTS))
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    args = ap.parse_args(argv)

    def run(log):
        split, student, bank = tiny_setup()
        results = []
        for name in args.methods:
            r = method_check(name, split, student, bank)
            results.append(r)
            log(f"  {name:5s} {'ok' if r['passed'] else 'FAILED'}: loss cpu "
                f"{r['loss_cpu']:.6f} gpu {r['loss_gpu']:.6f}; worst parameter err "
                f"{max(x['err'] for x in r['rows']):.1e} ({r['seconds_gpu']:.1f} s)")
        return results

    return run_gpu_command(run, args.json, "method",
                           "every method fine-tunes on the GPU as on the CPU")


if __name__ == "__main__":
    if SIMULATOR:   # the simulator's block manager polls its threads: switch GIL more often
        sys.setswitchinterval(5e-4)
    raise SystemExit(main())
