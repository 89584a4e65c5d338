"""The distillation methods' losses on the CUDA tier (``tinyface.cuda.kd_*``), under
numba's CUDA simulator (no GPU needed), in two child processes (``NUMBA_ENABLE_CUDASIM``
must be set before numba is imported; this session imports numba normally):

- ``python -m tinyface.checks.ops kernels --only kd_...`` (~5 s): every CUDA loss and
  gradient (SP, FSIM, AT, RKD, PKT, CRD, DKD) against the CPU tier its method runs on,
  over random shapes, one of them a batch of 17 (over one simulator block of 16
  threads); the batch-row gather / scatter; and known answers (a student equal to its
  teacher gives 0 and no gradient; CRD with one candidate row gives log(K + 1));
- ``python -m tinyface.checks.distill_methods`` (~45 s): each method variant fine-tuned
  for one step on a tiny synthetic split, on the CUDA tier and on the CPU tier, with no
  implicit host <-> device copy in a GPU step (which also shows that ``finetune`` no
  longer refuses the method variants under the cuda backend).

Tolerances: see ``tinyface/checks/kd_checks.py`` and ``tinyface/checks/distill_methods.py``.
"""
import json
import os
import subprocess
import sys

import pytest
from numba.core import sigutils

import tinyface.cuda as tc
from tinyface.checks import format_rows, run_in_simulator
from tinyface.checks.kd_checks import KD_CHECKS
from tinyface.distill.methods import METHOD_VARIANTS, METHODS
from tinyface.distill.methods_cuda import CUDA_LOSSES

KD_MODULES = ("kd_rows", "kd_maps", "kd_rkd", "kd_relations", "kd_logits")


@pytest.fixture(scope="module")
def sim():
    result = run_in_simulator("kernels", timeout=300, extra_args=["--only", *KD_CHECKS])
    if not result.get("rows"):
        pytest.fail(f"the simulator run produced no results (exit {result['returncode']}):\n"
                    f"{result['stderr'][-3000:]}")
    return result


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    path = tmp_path_factory.mktemp("kd_finetune") / "result.json"
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "tinyface.checks.distill_methods", "--json",
                           str(path)], env=env, capture_output=True, text=True, timeout=600)
    if not path.exists():
        pytest.fail(f"tinyface.checks.distill_methods wrote no result (exit "
                    f"{proc.returncode}):\n{proc.stderr[-3000:]}")
    return {r["method"]: r for r in json.loads(path.read_text())}, proc


@pytest.mark.parametrize("check", list(KD_CHECKS))
def test_cuda_kd_loss_matches_cpu_tier(sim, check):
    rows = [r for r in sim["rows"] if r["check"] == check]
    assert rows, f"no results for {check}"
    bad = [r for r in rows if not r["ok"]]
    assert not bad, "the CUDA loss differs from the CPU tier:\n" + format_rows(bad)


def test_kd_checks_cover_a_batch_over_one_block(sim):
    """A batch of 17 faces: over the simulator's 16 threads per block."""
    for check in ("kd_sp", "kd_fsim", "kd_at", "kd_rkd", "kd_pkt", "kd_crd", "kd_dkd"):
        assert any(r["case"].startswith("17x") for r in sim["rows"] if r["check"] == check), check


def test_kd_launches_use_their_ptx_signatures(sim):
    """Every kd kernel was launched, with a signature its PTX_SIGNATURES lists (what
    tests/test_cuda_ptx.py compiles for sm_90)."""
    assert sim["returncode"] == 0, sim["stderr"][-3000:]
    declared = {}
    for mod, name, disp, sig in tc.ptx_signatures():
        if mod in KD_MODULES:
            declared.setdefault((disp.py_func.__module__, name), set()).add(
                sigutils.normalize_signature(sig)[0])
    launched = [(m, n, s) for m, n, s in sim["launches"] if m.startswith("tinyface.cuda.kd_")]
    wrong = [t for t in launched
             if sigutils.normalize_signature(t[2])[0] not in declared.get(t[:2], set())]
    assert not wrong, f"launched with signatures not in PTX_SIGNATURES: {wrong}"
    never = sorted(set(declared) - {t[:2] for t in launched})
    assert not never, f"kd kernels never launched by the checks: {never}"


def test_every_method_has_a_cuda_loss():
    assert set(CUDA_LOSSES) == set(METHODS)
    for name in ("sp_loss", "fsim_loss", "attention_rows_loss", "rkd_loss", "pkt_loss",
                 "crd_loss", "dkd_loss", "gather_rows", "scatter_rows"):
        assert tc.HELPERS[name].startswith("kd_"), name


@pytest.mark.parametrize("name", METHOD_VARIANTS)
def test_method_variant_finetunes_on_the_gpu_as_on_the_cpu(finetuned, name):
    results, proc = finetuned
    assert name in results, f"no fine-tuning result for {name}:\n{proc.stderr[-3000:]}"
    r = results[name]
    assert r["loss_err"] <= 1e-4, (r["loss_cpu"], r["loss_gpu"], r["method_cpu"],
                                   r["method_gpu"])
    bad = [x for x in r["rows"] if not x["ok"]]
    assert not bad, f"{name} fine-tuned on the GPU differs from the CPU:\n" + format_rows(bad)
    assert r["passed"]


def test_method_variants_are_no_longer_refused_under_cuda(finetuned):
    """``finetune`` ran every method variant under ``set_backend("cuda")``, each training
    step inside ``strict_transfers()``: no refusal, and no implicit copy."""
    results, proc = finetuned
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CPU tier only" not in proc.stderr
    assert sorted(results) == sorted(METHOD_VARIANTS)
