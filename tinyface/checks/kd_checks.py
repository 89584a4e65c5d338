"""The distillation methods' losses, CUDA against the CPU tier each method runs on.

SP, FSIM, AT, PKT, CRD and DKD against their NumPy references (``tinyface.reference.
kd_*``), RKD against its Numba CPU kernel (``tinyface.kernels.kd_relations.rkd_loss``,
what the ``rkd`` variant runs), and the gather / scatter of the batch rows a term covers
(``tinyface.cuda.kd_rows``). Each check compares the loss and the student's gradient;
both tiers compute in float64 and round the gradient to float32, so the ``reduction``
tolerance (1e-5) holds with room (the sums only run in another order).
"""
import numpy as np

from tinyface import cuda as tc
from tinyface.checks.report import normal_f32
from tinyface.cuda.arrays import to_device
from tinyface.kernels import kd_relations as kd_relations_cpu
from tinyface.reference import kd_logits, kd_maps, kd_relations


def _add(rep, check, case, tensor, got, want):
    loss_g, grad_g = got
    loss_c, grad_c = want
    rep.add(check, case, "loss", np.array(loss_g), np.array(loss_c), "reduction")
    rep.add(check, case, tensor, grad_g, grad_c, "reduction")


def check_kd_sp(rep, rng, cases):
    for N, Ds, Dt in cases:
        fs, ft = normal_f32(rng, N, Ds), normal_f32(rng, N, Dt)
        _add(rep, "kd_sp", f"{N}x{Ds} vs {Dt}", "dfs",
             tc.sp_loss(to_device(fs), ft), kd_maps.sp_loss(fs, ft))


def check_kd_fsim(rep, rng, cases):
    for N, D, weighted in cases:
        pred, target = normal_f32(rng, N, D), normal_f32(rng, N, D)
        pred[0] = 0.0                                   # a zero row: its norm is clamped
        w = rng.random(N) if weighted else None
        _add(rep, "kd_fsim", f"{N}x{D}{' weighted' if weighted else ''}", "dpred",
             tc.fsim_loss(to_device(pred), target, w), kd_maps.fsim_loss(pred, target, w))


def check_kd_at(rep, rng, cases):
    for N, C, H, W, k in cases:
        fs = normal_f32(rng, N, C, H, W)
        a_t = kd_maps.teacher_attention(normal_f32(rng, N, 2 * C, k * H, k * W), (H, W))
        _add(rep, "kd_at", f"{N}x{C}x{H}x{W} k={k}", "dfs",
             tc.attention_rows_loss(to_device(fs), a_t), kd_maps.attention_rows_loss(fs, a_t))


def check_kd_rkd(rep, rng, cases):
    """Distance and angle terms at the paper's weights (25, 50), and each alone."""
    for N, Ds, Dt, wd, wa in cases:
        es, et = normal_f32(rng, N, Ds), normal_f32(rng, N, Dt) * 2
        es[-1] = es[0]                                  # two identical faces: no gradient
        _add(rep, "kd_rkd", f"{N}x{Ds} vs {Dt} w={wd:g},{wa:g}", "des",
             tc.rkd_loss(to_device(es), et, wd, wa), kd_relations_cpu.rkd_loss(es, et, wd, wa))


def check_kd_pkt(rep, rng, cases):
    for N, Ds, Dt in cases:
        es, et = normal_f32(rng, N, Ds), normal_f32(rng, N, Dt)
        _add(rep, "kd_pkt", f"{N}x{Ds} vs {Dt}", "des",
             tc.pkt_loss(to_device(es), et), kd_relations.pkt_loss(es, et))


def check_kd_crd(rep, rng, cases):
    for N, D, M, K, tau in cases:
        es, bank = normal_f32(rng, N, D), normal_f32(rng, M, D)
        pos = rng.integers(0, M, size=N)
        neg = rng.integers(0, M, size=(N, K))
        _add(rep, "kd_crd", f"{N}x{D} bank {M} K={K} tau={tau:g}", "des",
             tc.crd_loss(to_device(es), bank, pos, neg, tau),
             kd_relations.crd_loss(es, bank, pos, neg, tau))


def check_kd_dkd(rep, rng, cases):
    for N, K, T in cases:
        s, t = normal_f32(rng, N, K) * 3, normal_f32(rng, N, K) * 3
        y = rng.integers(0, K, size=N)
        _add(rep, "kd_dkd", f"{N}x{K} T={T:g}", "dlogits",
             tc.dkd_loss(to_device(s), t, y, T=T), kd_logits.dkd_loss(s, t, y, T=T))


def check_kd_rows(rep, rng, cases):
    """Gather the rows ``sel`` of a batch and scatter ``weight * ds`` back: exact."""
    for shape, n_sel in cases:
        x = normal_f32(rng, *shape)
        sel = np.sort(rng.choice(shape[0], size=n_sel, replace=False))
        case = "x".join(map(str, shape)) + f" rows {n_sel}"
        got = tc.gather_rows(to_device(x), sel)
        rep.add("kd_rows", case, "gather", got, x[sel], "exact")
        want = np.zeros(shape, np.float32)
        want[sel] = 3.0 * np.asarray(x[sel], np.float64)
        rep.add("kd_rows", case, "scatter", tc.scatter_rows(got, sel, shape, 3.0), want, "exact")


def check_kd_known(rep, rng, cases):
    """Known answers, independent of the CPU tier: a student equal to its teacher gives
    0 and no gradient (SP, FSIM, AT, RKD also at a scaled teacher, PKT up to its eps,
    DKD); CRD whose K + 1 candidates are one row gives ``log(K + 1)`` and no gradient."""
    for N, D in cases:
        case = f"{N}x{D}"
        e = normal_f32(rng, N, D)
        zero = np.zeros((N, D), np.float32)
        known = {
            "sp": tc.sp_loss(to_device(e), 3 * e),
            "fsim": tc.fsim_loss(to_device(e), 2 * e),
            "rkd": tc.rkd_loss(to_device(e), 2 * e),
            "pkt": tc.pkt_loss(to_device(e), e),
            "dkd": tc.dkd_loss(to_device(e), e, rng.integers(0, D, size=N)),
        }
        fmap = normal_f32(rng, N, 2, 2, 3)
        a_t = kd_maps.teacher_attention(fmap, (2, 3))
        known["at"] = tc.attention_rows_loss(to_device(fmap), a_t)
        for name, (loss, grad) in known.items():
            want_grad = np.zeros(grad.shape, np.float32)
            rep.add("kd_known", f"{name} {case}", "loss = 0", np.array(loss), np.array(0.0),
                    "reduction")
            rep.add("kd_known", f"{name} {case}", "grad = 0", grad, want_grad, "reduction")
        K = 3
        bank = np.repeat(normal_f32(rng, 1, D), 4, axis=0)               # (4, D), one row
        loss, grad = tc.crd_loss(to_device(e), bank, np.zeros(N, int),
                                 rng.integers(0, 4, size=(N, K)))
        rep.add("kd_known", f"crd {case}", "loss = log(K+1)", np.array(loss),
                np.array(np.log(K + 1)), "reduction")
        rep.add("kd_known", f"crd {case}", "grad = 0", grad, zero, "reduction")


KD_CHECKS = {
    "kd_sp": check_kd_sp,
    "kd_fsim": check_kd_fsim,
    "kd_at": check_kd_at,
    "kd_rkd": check_kd_rkd,
    "kd_pkt": check_kd_pkt,
    "kd_crd": check_kd_crd,
    "kd_dkd": check_kd_dkd,
    "kd_rows": check_kd_rows,
    "kd_known": check_kd_known,
}


def kd_tiny_cases():
    """Simulator shapes: a batch over one block (17 > TPB = 16) once per loss."""
    return {
        "kd_sp": [(5, 3, 4), (17, 2, 3)],
        "kd_fsim": [(4, 3, False), (17, 2, True)],
        "kd_at": [(3, 2, 2, 3, 2), (17, 1, 1, 2, 1)],
        "kd_rkd": [(5, 3, 4, 1.0, 0.0), (5, 3, 4, 0.0, 1.0), (17, 2, 2, 25.0, 50.0)],
        "kd_pkt": [(5, 3, 4), (17, 2, 3)],
        "kd_crd": [(5, 3, 9, 3, 0.07), (17, 2, 20, 2, 0.5)],
        "kd_dkd": [(5, 4, 4.0), (17, 2, 1.0)],
        "kd_rows": [((6, 2, 2), 3), ((3, 5), 3)],
        "kd_known": [(5, 3), (17, 2)],
    }


def kd_real_cases():
    """The ablation's batch of 64 (and 256, the largest batch) at the student's 64-d and
    the teacher's 256-d embeddings, 158 identities, the student's 4x4 pre-pool map."""
    return {
        "kd_sp": [(64, 64, 256), (256, 64, 256)],
        "kd_fsim": [(64, 256, False), (256, 256, True)],
        "kd_at": [(64, 32, 4, 4, 2), (256, 32, 4, 4, 1)],
        "kd_rkd": [(64, 64, 256, 25.0, 50.0), (128, 64, 256, 25.0, 50.0)],
        "kd_pkt": [(64, 64, 256), (256, 64, 256)],
        "kd_crd": [(64, 256, 1024, 16, 0.07), (256, 256, 4096, 16, 0.07)],
        "kd_dkd": [(64, 158, 4.0), (256, 158, 4.0)],
        "kd_rows": [((64, 256), 40), ((64, 32, 4, 4), 64)],
        "kd_known": [(64, 64)],
    }
