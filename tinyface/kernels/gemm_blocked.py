"""A blocked GEMM for the Numba tier, written the way the fast libraries write one.

``gemm_blocked(A, B, C, acc, transpose_b)``: ``C (M,N) (+)= A (M,K) @ B (K,N)``, or
``A @ B.T`` for ``B (N,K)`` with ``transpose_b``. ``tinyface.kernels.gemm`` keeps the
simple kernel beside it (four rows of C, whole rows of B streamed) for comparison.

The micro-kernel: one 4x4 tile of C, sixteen accumulators, kept in registers across the
whole depth loop. LLVM's loop vectoriser only vectorises innermost loops, so the tile is
vectorised along the depth ``k``: both operands are read with ``k`` contiguous (rows of
A, rows of B^T), each accumulator is one vector register of partial sums (16 floats in
a zmm on AVX-512, 8 in a ymm on AVX2), and the 16 vectors are reduced once at the end
of the depth block. Per step of one vector along k, 8 loads feed 16 FMAs, so the loads
never limit. ``tinyface.vectors`` lets LLVM use the zmm registers.

Around it, the blocking (sizes for float32; this module's constants):

- ``KC`` = 1024: the depth block. One micro-kernel call streams 4 rows of A and 4 rows
  of B^T of ``KC`` floats, 32 KiB, inside a 48 KiB L1; a longer depth block makes the
  final reduction of the 16 vectors cheaper per FMA.
- ``NC`` = 256: columns of C per panel. B is packed once into contiguous panels of B^T
  (``NC x KC``, 1 MiB each), and each panel stays in every core's L2 (2 MiB a core on
  the machine these were tuned on) while all the row blocks of A sweep over it.
- ``MC`` = 64: rows of C per block, the unit of work of one thread. A's column block
  is packed once per depth block (``MC x KC``, 256 KiB per block).

The packed buffers are NumPy arrays started on a cache line (``aligned_empty``): NumPy
asks the kernel for huge pages for large arrays, and with 4 KiB pages (numba's own
allocations) the same product ran at two speeds from process to process, 115 or 155
GFLOP/s on one core; with these, 151-156 every time.

Threads take the row blocks of C (``prange``), so no two write the same memory. The
sizes were chosen by timing 1024^3 on a 2-core Intel Xeon (family 6 model 207, 48 KiB
L1d, 2 MiB L2): KC 512 or 1024 by NC 128, 256 or 512 by MC 32, 64 or 128.
"""
import re

import numba
import numpy as np

from tinyface.kernels.threading import compile_pair

JIT = dict(cache=True, fastmath=True)

MR, NR = 4, 4          # the micro-tile of C held in registers
KC = 1024              # depth block: one micro-kernel call's k range (L1)
NC = 256               # columns of C per packed panel of B^T (L2)
MC = 64                # rows of C per block, one thread's unit of work (L2)
# Packed rows start on cache lines (64 bytes) and are a whole number of lines apart, so
# that no vector load straddles two lines; the stride gets ROW_PAD more floats, since
# rows exactly 4 KiB apart would all fall in one set of the L1 cache.
LINE = 64
ROW_PAD = 16


@numba.njit(**JIT)
def micro_4x4(kc, a, ia, b, jb, C, i0, j0):
    """C[i0:i0+4, j0:j0+4] += a[ia:ia+4, :kc] @ b[jb:jb+4, :kc].T.

    a, b: the packed block of A and panel of B^T, both contiguous along k.
    """
    c00 = c01 = c02 = c03 = a.dtype.type(0)
    c10 = c11 = c12 = c13 = a.dtype.type(0)
    c20 = c21 = c22 = c23 = a.dtype.type(0)
    c30 = c31 = c32 = c33 = a.dtype.type(0)
    for k in range(kc):                     # vectorised along k by LLVM
        a0, a1, a2, a3 = a[ia, k], a[ia + 1, k], a[ia + 2, k], a[ia + 3, k]
        b0, b1, b2, b3 = b[jb, k], b[jb + 1, k], b[jb + 2, k], b[jb + 3, k]
        c00 += a0 * b0
        c01 += a0 * b1
        c02 += a0 * b2
        c03 += a0 * b3
        c10 += a1 * b0
        c11 += a1 * b1
        c12 += a1 * b2
        c13 += a1 * b3
        c20 += a2 * b0
        c21 += a2 * b1
        c22 += a2 * b2
        c23 += a2 * b3
        c30 += a3 * b0
        c31 += a3 * b1
        c32 += a3 * b2
        c33 += a3 * b3
    C[i0, j0] += c00
    C[i0, j0 + 1] += c01
    C[i0, j0 + 2] += c02
    C[i0, j0 + 3] += c03
    C[i0 + 1, j0] += c10
    C[i0 + 1, j0 + 1] += c11
    C[i0 + 1, j0 + 2] += c12
    C[i0 + 1, j0 + 3] += c13
    C[i0 + 2, j0] += c20
    C[i0 + 2, j0 + 1] += c21
    C[i0 + 2, j0 + 2] += c22
    C[i0 + 2, j0 + 3] += c23
    C[i0 + 3, j0] += c30
    C[i0 + 3, j0 + 1] += c31
    C[i0 + 3, j0 + 2] += c32
    C[i0 + 3, j0 + 3] += c33


@numba.njit(**JIT)
def micro_edge(kc, a, ia, m, b, jb, n, C, i0, j0):
    """The ragged edge, m or n below 4: C[i0:i0+m, j0:j0+n] += a[ia:ia+m, :kc] @
    b[jb:jb+n, :kc].T."""
    for i in range(m):
        for j in range(n):
            s = a.dtype.type(0)
            for k in range(kc):
                s += a[ia + i, k] * b[jb + j, k]
            C[i0 + i, j0 + j] += s


@numba.njit(**JIT)
def pack_rows(src, r0, nr, p0, kc, dst):
    """dst[:nr, :kc] = src[r0:r0+nr, p0:p0+kc]: a block of A, or a panel of B^T, made
    contiguous, so that the micro-kernel's loads start at k = 0 of every row."""
    for r in range(nr):
        for k in range(kc):
            dst[r, k] = src[r0 + r, p0 + k]


# the tile in which B is read and its panels written: 32 x 32 floats (4 KiB), so that
# both sides of the transposition stay in L1
TRANSPOSE_TILE = 32


def _pack_panels(B, b_is_bt, kc, panels):
    """panels (PJ, PK, nc, kc): panel [jp, pp] = B^T[jp*nc:(jp+1)*nc, pp*kc:(pp+1)*kc],
    contiguous, zero past B's edges. B: (K, N), or B^T itself, (N, K), when b_is_bt."""
    PJ, PK, nc = panels.shape[:3]                           # the row's pad stays unread
    N, K = (B.shape[0], B.shape[1]) if b_is_bt else (B.shape[1], B.shape[0])
    T = TRANSPOSE_TILE
    for jp in numba.prange(PJ):
        for pp in range(PK):
            panel = panels[jp, pp]                          # (nc, kc)
            for c0 in range(0, nc, T):
                for k0 in range(0, kc, T):
                    for c in range(c0, min(c0 + T, nc)):
                        j = jp * nc + c
                        for k in range(k0, min(k0 + T, kc)):
                            p = pp * kc + k
                            if j >= N or p >= K:
                                panel[c, k] = 0.0
                            elif b_is_bt:
                                panel[c, k] = B[j, p]
                            else:
                                panel[c, k] = B[p, j]


@numba.njit(**JIT)
def block_kernel(ap, mc, bp, nc, kc, C, i0, j0):
    """C[i0:i0+mc, j0:j0+nc] += ap[:mc, :kc] @ bp[:nc, :kc].T, 4x4 tile by tile: each
    4 rows of the panel (4 KiB) stay in L1 while the block of A sweeps past them."""
    for jr in range(0, nc, NR):
        nr = min(NR, nc - jr)
        for ir in range(0, mc, MR):
            mr = min(MR, mc - ir)
            if mr == MR and nr == NR:
                micro_4x4(kc, ap, ir, bp, jr, C, i0 + ir, j0 + jr)
            else:
                micro_edge(kc, ap, ir, mr, bp, jr, nr, C, i0 + ir, j0 + jr)


def _gemm_nt(A, panels, N, kc_max, in_place, aps, C, acc):
    """C (M,N) (+)= A (M,K) @ B, B packed in panels (``_pack_panels``).

    Per depth block: A's column block is packed once, block by block of MC rows; then
    panel by panel of B^T, the row blocks split across threads, so that each panel
    stays in every core's L2 while all the row blocks use it.
    """
    M, K = A.shape
    PJ, PK, nc_max, kc_pad = panels.shape
    nblocks = (M + MC - 1) // MC
    if not acc:
        C[:, :] = 0.0
    if in_place:                                            # one depth block, A's rows
        for jp in range(PJ):                                # on lines: read unpacked
            j0 = jp * nc_max
            for blk in numba.prange(nblocks):
                i0 = blk * MC
                block_kernel(A[i0:min(i0 + MC, M)], min(MC, M - i0), panels[jp, 0],
                             min(nc_max, N - j0), K, C, i0, j0)
        return
    for pp in range(PK):
        p0 = pp * kc_max
        kc = min(kc_max, K - p0)
        for blk in numba.prange(nblocks):
            pack_rows(A, blk * MC, min(MC, M - blk * MC), p0, kc, aps[blk])
        for jp in range(PJ):
            j0 = jp * nc_max
            for blk in numba.prange(nblocks):               # each thread owns MC rows of C
                block_kernel(aps[blk], min(MC, M - blk * MC), panels[jp, pp],
                             min(nc_max, N - j0), kc, C, blk * MC, j0)


pack_panels_serial, pack_panels_parallel = compile_pair(_pack_panels, fastmath=True)
gemm_nt_serial, gemm_nt_parallel = compile_pair(_gemm_nt, fastmath=True)


def aligned_empty(shape, dtype):
    """An uninitialised NumPy array whose data starts on a cache line (NumPy's large
    arrays start 16 bytes past one)."""
    n, item = int(np.prod(shape)), np.dtype(dtype).itemsize
    raw = np.empty(n + LINE // item, dtype)
    skip = (-raw.ctypes.data % LINE) // item
    return raw[skip:skip + n].reshape(shape)


def reads_in_place(A):
    """True when the GEMM reads A (M, K), C-contiguous, without packing it: one depth
    block holds its rows and each row starts on a cache line (conv_blocked's unrolled
    rows). NumPy's large arrays start 16 bytes past a line, and reading those in place
    cost a quarter of the speed, so they are packed."""
    K = A.shape[1]
    return K <= KC and A.ctypes.data % LINE == 0 and K * A.itemsize % LINE == 0


def gemm_blocked(A, B, C=None, acc=False, transpose_b=False, parallel=True):
    """``C = A @ B`` (or ``A @ B.T`` with ``transpose_b``) by the blocked kernel.

    A: (M, K); B: (K, N), or (N, K) with ``transpose_b``; C: (M, N), allocated if None;
    ``acc`` adds to C instead of overwriting it. B is packed once into contiguous
    panels of B^T (``NC x KC``); blocks of ``MC`` rows of C are split across threads
    when there are at least two of them.
    """
    M, K = A.shape
    if (B.shape[1] if transpose_b else B.shape[0]) != K:
        raise ValueError(f"gemm: A is {A.shape}, B is {B.shape}"
                         f"{' (transposed)' if transpose_b else ''}: inner sizes differ")
    N = B.shape[0] if transpose_b else B.shape[1]
    wide = parallel and numba.get_num_threads() > 1
    nc, kc = min(NC, N), min(KC, K)
    kc_pad = -(-kc * B.itemsize // LINE) * LINE // B.itemsize + ROW_PAD
    panels = aligned_empty(((N + nc - 1) // nc, (K + kc - 1) // kc, nc, kc_pad), B.dtype)
    (pack_panels_parallel if wide and panels.shape[0] > 1 else pack_panels_serial)(
        np.ascontiguousarray(B), transpose_b, kc, panels)
    if C is None:
        C = np.empty((M, N), dtype=A.dtype)                 # (M, N)
    A = np.ascontiguousarray(A)
    in_place = reads_in_place(A)
    aps = aligned_empty((1, 1, 1) if in_place else ((M + MC - 1) // MC, MC, kc_pad), A.dtype)
    (gemm_nt_parallel if wide and M > MC else gemm_nt_serial)(
        A, panels, N, kc, in_place, aps, C, acc)
    return C


def fma_counts():
    """Fused multiply-adds in the float32 micro-kernel's machine code, by register width:
    ``{"zmm": n, "ymm": n, "xmm": n}`` (512-, 256- and 128-bit or scalar). Compiles a
    fresh, uncached copy, since numba does not keep the assembly of cached code."""
    fresh = numba.njit(fastmath=True)(micro_4x4.py_func)
    a = np.zeros((MR, 64), np.float32)                      # (4, 64) operands
    fresh(64, a, 0, a, 0, np.zeros((MR, NR), np.float32), 0, 0)
    asm = "\n".join(fresh.inspect_asm().values())
    return {reg: len(re.findall(r"vfmadd\w*\s+[^\n]*%" + reg, asm)) for reg in ("zmm", "ymm", "xmm")}
