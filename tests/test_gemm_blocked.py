"""The blocked GEMM against NumPy over random shapes (ragged edges of every block
included), and the choice of vector width made at import."""
from types import SimpleNamespace

import numba
import numpy as np
import pytest

from tinyface import vectors
from tinyface.kernels import gemm_blocked as gb
from tinyface.kernels.gemm_blocked import gemm_blocked

# shapes that end inside a micro-tile, a depth block, a panel and a row block
SHAPES = [(1, 1, 1), (3, 5, 2), (4, 4, 4), (7, 300, 9), (65, 257, 33),
          (gb.MC + 3, gb.KC + 1, gb.NC + 5), (2 * gb.MC, 2 * gb.KC, 17)]


def _tolerance(K, dtype):
    """float32 products of length K: rounding grows like sqrt(K) eps; allow K eps."""
    return 4 * K * np.finfo(dtype).eps


@pytest.mark.parametrize("M,K,N", SHAPES)
@pytest.mark.parametrize("transpose_b", [False, True])
def test_blocked_gemm_matches_numpy(M, K, N, transpose_b):
    rng = np.random.default_rng(M * 1000 + K + N)
    A = rng.standard_normal((M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if transpose_b else (K, N)).astype(np.float32)
    want = A.astype(np.float64) @ (B.T if transpose_b else B).astype(np.float64)
    got = gemm_blocked(A, B, transpose_b=transpose_b)
    assert got.shape == (M, N) and got.dtype == np.float32
    scale = np.abs(A).max() * np.abs(B).max() * K
    assert np.abs(got - want).max() <= _tolerance(K, np.float32) * scale


def test_accumulates_into_c_and_runs_in_float64():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((70, 90)), rng.standard_normal((90, 45))
    C0 = rng.standard_normal((70, 45))
    C = gemm_blocked(A, B, C0.copy(), acc=True)
    np.testing.assert_allclose(C, C0 + A @ B, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm_blocked(A, B), A @ B, rtol=1e-12, atol=1e-12)


def test_serial_and_parallel_agree_bit_for_bit():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3 * gb.MC + 5, 300)).astype(np.float32)
    B = rng.standard_normal((300, 70)).astype(np.float32)
    np.testing.assert_array_equal(gemm_blocked(A, B, parallel=False), gemm_blocked(A, B))


def test_strided_inputs_are_made_contiguous():
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 60)).astype(np.float32)
    B = rng.standard_normal((30, 60)).astype(np.float32)
    np.testing.assert_allclose(gemm_blocked(A[:, ::2], B[:, ::2].T), A[:, ::2] @ B[:, ::2].T,
                               rtol=1e-5, atol=1e-4)


def test_mismatched_inner_sizes_name_both_shapes():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(5, 2\)"):
        gemm_blocked(np.ones((3, 4), np.float32), np.ones((5, 2), np.float32))


# ------------------------------------------------------------------ the vector width
AVX512 = {"avx512f": True, "avx2": True, "fma": True}


def test_widen_asks_for_512_bit_vectors_on_avx512_only():
    env = {}
    assert vectors.widen(env, modules={}, features=lambda: dict(AVX512))
    flags = env["NUMBA_CPU_FEATURES"].split(",")
    assert {"+avx512f", "+fma", vectors.NO_PREFERENCE} <= set(flags)
    env = {}
    assert not vectors.widen(env, modules={}, features=lambda: {"avx2": True, "avx512f": False})
    assert env == {}


@pytest.mark.parametrize("env,modules", [({"TINYFACE_VECTOR_WIDTH": "256"}, {}),
                                         ({"NUMBA_CPU_FEATURES": "+avx2"}, {}),
                                         ({}, {"numba": object()})])
def test_widen_leaves_the_user_and_a_numba_that_jitted_alone(env, modules):
    before = dict(env)
    assert not vectors.widen(env, modules=modules, features=lambda: dict(AVX512),
                             pending=lambda: False)
    assert env == before


def test_widen_sets_an_imported_numba_that_has_jitted_nothing():
    fake = SimpleNamespace(config=SimpleNamespace(CPU_FEATURES=None))
    env = {}
    assert vectors.widen(env, modules={"numba": fake}, features=lambda: dict(AVX512),
                         pending=lambda: True)
    assert fake.config.CPU_FEATURES == env["NUMBA_CPU_FEATURES"]
    assert vectors.NO_PREFERENCE in fake.config.CPU_FEATURES.split(",")


def test_bad_vector_width_is_a_one_line_error():
    with pytest.raises(ValueError, match="TINYFACE_VECTOR_WIDTH='1024'"):
        vectors.widen({"TINYFACE_VECTOR_WIDTH": "1024"}, modules={}, features=dict)


def test_cpu_description_names_what_a_speed_figure_needs():
    d = vectors.cpu_description()
    assert {"model", "cores", "threads", "vector_bits", "L1d", "L2"} <= set(d)
    assert d["vector_bits"] in (128, 256, 512)


@pytest.mark.skipif(numba.config.DISABLE_JIT, reason="no machine code with NUMBA_DISABLE_JIT=1")
def test_micro_kernel_runs_sixteen_fmas_on_the_widest_vectors_in_effect():
    """The 4x4 tile is 16 accumulators: 16 vector FMAs per step, on zmm registers where
    512-bit vectors are in effect, on ymm where 256-bit are."""
    register = {512: "zmm", 256: "ymm"}.get(vectors.vector_width())
    if register is None:
        pytest.skip("this CPU has neither AVX2 nor AVX-512")
    assert gb.fma_counts()[register] >= 16


@pytest.mark.parametrize("M,K,N", [(70, 32, 9), (gb.MC + 5, 144, 33), (9, gb.KC, 4)])
def test_rows_on_cache_lines_are_read_in_place_with_the_same_result(M, K, N):
    """A whose rows start on cache lines skips packing (one depth block); the product is
    the packed path's, bit for bit, since each element sums in the same order."""
    rng = np.random.default_rng(K)
    lined = gb.aligned_empty((M, K), np.float32)
    lined[:] = rng.standard_normal((M, K))
    packed = gb.aligned_empty((M * K + 1,), np.float32)[1:].reshape(M, K)  # 4 bytes off
    packed[:] = lined
    assert gb.reads_in_place(lined) and not gb.reads_in_place(packed)
    B = rng.standard_normal((K, N)).astype(np.float32)
    np.testing.assert_array_equal(gemm_blocked(lined, B), gemm_blocked(packed, B))
    np.testing.assert_allclose(gemm_blocked(lined, B), lined.astype(np.float64) @ B,
                               rtol=1e-4, atol=1e-4 * K)


def test_only_rows_on_lines_within_one_depth_block_are_read_in_place():
    ok = gb.aligned_empty((8, 32), np.float32)
    assert gb.reads_in_place(ok)
    assert not gb.reads_in_place(gb.aligned_empty((8, 33), np.float32))          # rows off lines
    assert not gb.reads_in_place(gb.aligned_empty((2, gb.KC + 16), np.float32))  # two blocks

