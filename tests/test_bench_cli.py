"""The benchmark commands run and print their tables (speed itself is never asserted)."""
import json

from tinyface.cli import main


def test_bench_kernels_quick(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "kernels", "--quick", "--reps", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("| student | Conv2d 16->16 k3 | 256x16x16x16 | forward |", "inference, batch 1",
                   "training step, batch 256", "threading trap", "student (16x16, 158 identities)",
                   "CPU: ", "-bit vectors", "| GEMM, float32, 512^3 |", "| blocked kernel, given B^T |",
                   "student, fused into one compiled function, batch 1"):
        assert needle in text, needle
    result = json.loads(out.read_text())
    assert result["sgemm_peak_gflops"] > 0
    assert all(result["gemm"][k] > 0 for k in ("numpy", "simple", "blocked", "blocked_bt"))
    assert result["cpu"]["vector_bits"] in (128, 256, 512)
    assert all(r["ms"] > 0 and r["ref_ms"] > 0 for r in result["layers"])


def test_bench_rejects_bad_reps(capsys):
    assert main(["bench", "kernels", "--reps", "0"]) == 2
    assert "--reps" in capsys.readouterr().err
