"""The matrix product under conv and linear: a shared-memory tiled GEMM.

One kernel, ``gemm_tiled``, computes a batch of products ``C[z] = op(A) @ op(B)``
(``op`` is the identity or the transpose) with an optional bias:

- conv forward:   out[n] (Cout, P) = W (Cout, K) @ cols[n] (K, P)   + bias per row
- conv backward:  dcols[n] (K, P)  = W.T @ dout[n] (Cout, P)
                  dW (Cout, K)     = sum_n dout[n] @ cols[n].T       (batch -> reduce)
- linear:         out (N, out)     = x @ W.T + bias per column;  dx = dout @ W;
                  dW (out, in)     = dout.T @ x                      (split-K -> reduce)

How the tiling works (numba's matmul example, plus bounds guards and transposes): the
output is cut into ``TILE x TILE`` squares, one block each, one thread per output
element. The block walks along the inner dimension one ``TILE``-wide step at a time;
at each step every thread copies one element of ``op(A)`` and one of ``op(B)`` into
shared memory, the block synchronises, and each thread does ``TILE`` multiply-adds
out of shared memory. Each global value is thus read once per block instead of once
per thread: ``TILE`` times less global traffic than the naive kernel.

A transposed operand is loaded with the two thread indices swapped, so that
neighbouring threads (``threadIdx.x``) always read neighbouring addresses (coalesced)
and the transpose happens in shared memory. The tiles have one spare column
(``TILE_PAD``) so that the transposed store does not hit one memory bank 16 times.

Sums over a batch (dW) are a two-pass reduction: the GEMM writes one partial product
per batch entry (and per chunk of a long inner dimension: split-K), then
``sum_batches`` adds the partials in order. Deterministic; no atomics.
"""
from numba import cuda, float32

from tinyface.cuda.arrays import scratch
from tinyface.cuda.launch import K_CHUNK, TILE, TILE_PAD, TPB, blocks, check_grid_z

NO_BIAS, BIAS_ROW, BIAS_COL = 0, 1, 2


@cuda.jit
def gemm_tiled(A, B, C, trans_a, trans_b, nsplit, k_chunk, bias, bias_mode):
    """C[z] = op(A[a]) @ op(B[b]) over one chunk of the inner dimension, + bias.

    A: (BA, M, K), or (BA, K, M) when ``trans_a``; BA is 1 (shared) or the batch.
    B: (BB, K, N), or (BB, N, K) when ``trans_b``; BB is 1 (shared) or the batch.
    C: (batch * nsplit, M, N) float32. Entry z = b * nsplit + s is batch b's product
       over inner indices [s * k_chunk, (s + 1) * k_chunk).
    bias: (M,) added per row (bias_mode 1) or (N,) per column (bias_mode 2), or unused.
    grid: (ceil(N / TILE), ceil(M / TILE), batch * nsplit); block: (TILE, TILE).
    Thread (ty, tx) of block (bx, by, z) computes C[z, by*TILE + ty, bx*TILE + tx].
    """
    sA = cuda.shared.array((TILE, TILE_PAD), float32)     # sA[i, k] = op(A)[row0+i, k0+k]
    sB = cuda.shared.array((TILE, TILE_PAD), float32)     # sB[k, j] = op(B)[k0+k, col0+j]
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    row0 = cuda.blockIdx.y * TILE
    col0 = cuda.blockIdx.x * TILE
    row = row0 + ty
    col = col0 + tx
    z = cuda.blockIdx.z
    b = z // nsplit
    s = z - b * nsplit
    za = b if A.shape[0] > 1 else 0                       # a shared operand has batch 1
    zb = b if B.shape[0] > 1 else 0
    M = C.shape[1]
    N = C.shape[2]
    K = A.shape[1] if trans_a else A.shape[2]
    k_lo = s * k_chunk
    k_hi = k_lo + k_chunk
    if k_hi > K:
        k_hi = K
    acc = float32(0.0)
    for k0 in range(k_lo, k_hi, TILE):
        # -- load one tile of op(A) and one of op(B); zeros outside the matrices
        if trans_a:                                       # A is (K, M): tx runs along M
            r = row0 + tx
            k = k0 + ty
            sA[tx, ty] = A[za, k, r] if (r < M and k < k_hi) else float32(0.0)
        else:                                             # A is (M, K): tx runs along K
            k = k0 + tx
            sA[ty, tx] = A[za, row, k] if (row < M and k < k_hi) else float32(0.0)
        if trans_b:                                       # B is (N, K): tx runs along K
            cc = col0 + ty
            k = k0 + tx
            sB[tx, ty] = B[zb, cc, k] if (cc < N and k < k_hi) else float32(0.0)
        else:                                             # B is (K, N): tx runs along N
            k = k0 + ty
            sB[ty, tx] = B[zb, k, col] if (col < N and k < k_hi) else float32(0.0)
        cuda.syncthreads()            # both tiles are complete before anyone reads them
        for kk in range(TILE):
            acc += sA[ty, kk] * sB[kk, tx]
        cuda.syncthreads()            # everyone is done reading before the next load overwrites
    if row < M and col < N:                               # bounds guard: edge tiles overhang
        if bias_mode == BIAS_ROW:
            acc += bias[row]
        elif bias_mode == BIAS_COL:
            acc += bias[col]
        C[z, row, col] = acc


@cuda.jit
def sum_batches(parts, C, accumulate):
    """C (M, N) [+]= sum_z parts[z] (parts: (Z, M, N) float32), z in order.

    Pass 2 of the batch/split-K reduction. grid: blocks(M * N); block: TPB; one thread
    per output element, so neighbouring threads read neighbouring addresses.
    """
    i = cuda.grid(1)
    M = C.shape[0]
    N = C.shape[1]
    if i < M * N:
        m = i // N
        n = i - m * N
        s = float32(0.0)
        for z in range(parts.shape[0]):
            s += parts[z, m, n]
        if accumulate:
            C[m, n] += s
        else:
            C[m, n] = s


def _dims(A, B, trans_a, trans_b):
    M, K = (A.shape[2], A.shape[1]) if trans_a else (A.shape[1], A.shape[2])
    N, K2 = (B.shape[1], B.shape[2]) if trans_b else (B.shape[2], B.shape[1])
    if K != K2:
        raise ValueError(f"gemm: inner dimensions differ: op(A) is ({M}, {K}), op(B) is ({K2}, {N})")
    batch = max(A.shape[0], B.shape[0])
    for name, X in (("A", A), ("B", B)):
        if X.shape[0] not in (1, batch):
            raise ValueError(f"gemm: {name} has batch {X.shape[0]}, expected 1 or {batch}")
    return batch, M, N, K


def batched_matmul(A, B, C, trans_a=False, trans_b=False, bias=None, bias_mode=NO_BIAS):
    """C[z] = op(A[z]) @ op(B[z]) (+ bias), every z. All numba device arrays, 3-D,
    C-contiguous; A or B may have batch 1 (shared by every z). C: (batch, M, N)."""
    batch, M, N, _ = _dims(A, B, trans_a, trans_b)
    if tuple(C.shape) != (batch, M, N):
        raise ValueError(f"gemm: C has shape {tuple(C.shape)}, expected {(batch, M, N)}")
    check_grid_z(batch, "gemm")
    if bias is None:
        bias, bias_mode = scratch("gemm.nobias", (1,)), NO_BIAS
    grid = (blocks(N, TILE), blocks(M, TILE), batch)
    gemm_tiled[grid, (TILE, TILE)](A, B, C, bool(trans_a), bool(trans_b), 1, 1 << 62,
                                   bias, bias_mode)
    return C


def matmul_sum(A, B, C, trans_a=False, trans_b=False, accumulate=False):
    """C (M, N) [+]= sum_z op(A[z]) @ op(B[z]): the batch (and, for a long inner
    dimension, chunks of it) in separate blocks, then ``sum_batches``."""
    batch, M, N, K = _dims(A, B, trans_a, trans_b)
    nsplit = max(1, min(blocks(K, K_CHUNK), 65535 // batch))
    k_chunk = blocks(K, nsplit) if nsplit > 1 else K
    k_chunk = ((k_chunk + TILE - 1) // TILE) * TILE          # whole tiles per chunk
    nsplit = blocks(K, k_chunk)
    Z = check_grid_z(batch * nsplit, "gemm")
    parts = scratch("gemm.parts", (Z, M, N))
    grid = (blocks(N, TILE), blocks(M, TILE), Z)
    gemm_tiled[grid, (TILE, TILE)](A, B, parts, bool(trans_a), bool(trans_b), nsplit,
                                   k_chunk, scratch("gemm.nobias", (1,)), NO_BIAS)
    sum_batches[blocks(M * N), TPB](parts, C, bool(accumulate))
    return C


_A3 = "float32[:, :, ::1]"
PTX_SIGNATURES = {
    "gemm_tiled": [f"void({_A3}, {_A3}, {_A3}, boolean, boolean, int64, int64, "
                   f"float32[::1], int64)"],
    "sum_batches": [f"void({_A3}, float32[:, ::1], boolean)"],
}
