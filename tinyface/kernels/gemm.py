"""Hand-written matrix products for the Numba tier (no BLAS on hot paths).

Three serial micro-kernels cover every product the conv and linear layers need:

- ``gemm_nn(A, B, C, acc)``: ``C (M,N) (+)= A (M,K) @ B (K,N)``
- ``gemm_nt(A, B, C, acc)``: ``C (M,K) (+)= A (M,P) @ B (K,P).T``
- ``gemm_tn`` is ``gemm_nn`` called with ``A.T`` (a strided view): the
  scalar reads of ``A`` sit in the outer loop, so the stride costs nothing.

How ``gemm_nn`` is blocked: four rows of ``C`` are updated together, so each
element ``B[k, j]`` loaded in the innermost (contiguous, SIMD-vectorised) loop feeds
four fused multiply-adds. The four rows of ``C`` (4 x N floats) stay in L1 cache.

``gemm_nt`` is a dot-product kernel: two contiguous rows, reduced with ``fastmath``
so that LLVM may reassociate the sum into SIMD lanes.

Callers decide the parallelism: the conv kernels run these serially inside a
``prange`` over samples, and ``matmul_nn``/``matmul_nt`` split rows across threads.
"""
import numba
import numpy as np

from tinyface.kernels.threading import compile_pair

JIT = dict(cache=True, fastmath=True)


@numba.njit(**JIT)
def gemm_nn(A, B, C, acc):
    """C (M,N) = [C +] A (M,K) @ B (K,N); ``acc`` False overwrites C."""
    M, K = A.shape
    N = B.shape[1]
    if not acc:
        C[:, :] = 0.0
    i = 0
    while i + 4 <= M:
        c0, c1, c2, c3 = C[i], C[i + 1], C[i + 2], C[i + 3]   # four (N,) rows
        for k in range(K):
            a0, a1, a2, a3 = A[i, k], A[i + 1, k], A[i + 2, k], A[i + 3, k]
            b = B[k]                                            # (N,) row
            for j in range(N):
                bj = b[j]
                c0[j] += a0 * bj
                c1[j] += a1 * bj
                c2[j] += a2 * bj
                c3[j] += a3 * bj
        i += 4
    while i < M:                                                # left-over rows
        c0 = C[i]
        for k in range(K):
            a0 = A[i, k]
            b = B[k]
            for j in range(N):
                c0[j] += a0 * b[j]
        i += 1


@numba.njit(**JIT)
def gemm_nt(A, B, C, acc):
    """C (M,K) = [C +] A (M,P) @ B (K,P).T, as M*K dot products of length P."""
    M, P = A.shape
    K = B.shape[0]
    for i in range(M):
        a = A[i]
        for k in range(K):
            b = B[k]
            s = 0.0
            for p in range(P):
                s += a[p] * b[p]
            if acc:
                C[i, k] += s
            else:
                C[i, k] = s


# Rows per task when a product is split across threads: big enough to amortise the
# thread launch, small enough that two cores share the work of a 256-row batch.
ROW_BLOCK = 32


def _matmul_nn(A, B, C, acc):
    M = A.shape[0]
    nblocks = (M + ROW_BLOCK - 1) // ROW_BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * ROW_BLOCK
        hi = min(M, lo + ROW_BLOCK)
        gemm_nn(A[lo:hi], B, C[lo:hi], acc)


def _matmul_nt(A, B, C, acc):
    M = A.shape[0]
    nblocks = (M + ROW_BLOCK - 1) // ROW_BLOCK
    for blk in numba.prange(nblocks):
        lo = blk * ROW_BLOCK
        hi = min(M, lo + ROW_BLOCK)
        gemm_nt(A[lo:hi], B, C[lo:hi], acc)


matmul_nn_serial, matmul_nn_parallel = compile_pair(_matmul_nn, fastmath=True)
matmul_nt_serial, matmul_nt_parallel = compile_pair(_matmul_nt, fastmath=True)


def matmul(A, B, C=None, acc=False, transpose_b=False, parallel=True):
    """``C = A @ B`` (or ``A @ B.T`` with ``transpose_b``), rows split across threads.

    A: (M, K); B: (K, N), or (N, K) with ``transpose_b``; C: (M, N), allocated if None.
    """
    n = B.shape[0] if transpose_b else B.shape[1]
    if C is None:
        C = np.empty((A.shape[0], n), dtype=A.dtype)   # (M, N)
    big = parallel and A.shape[0] > ROW_BLOCK and numba.get_num_threads() > 1
    if transpose_b:
        (matmul_nt_parallel if big else matmul_nt_serial)(A, B, C, acc)
    else:
        (matmul_nn_parallel if big else matmul_nn_serial)(A, B, C, acc)
    return C
