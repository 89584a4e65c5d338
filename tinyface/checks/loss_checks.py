"""The losses and the row-wise L2 normalisation, CUDA against the Numba CPU kernel:
softmax cross-entropy, feature regression (weighted or not), the distillation loss,
and ``l2_normalize`` forward and backward (a zero row included)."""
import numpy as np

from tinyface import cuda as tc
from tinyface import kernels
from tinyface.checks.layer_checks import fwd_bwd_check
from tinyface.checks.report import normal_f32
from tinyface.cuda.arrays import to_device


def check_softmax_cross_entropy(rep, rng, cases):
    for N, K in cases:
        case = f"{N}x{K}"
        z = normal_f32(rng, N, K) * 3
        y = rng.integers(0, K, size=N)
        l1, d1 = kernels.softmax_cross_entropy_loss(z, y)
        l2, d2 = tc.softmax_cross_entropy_loss(to_device(z), y)
        rep.add("softmax_cross_entropy", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("softmax_cross_entropy", case, "dlogits", d2, d1, "reduction")


def check_feature_regression(rep, rng, cases):
    for N, D, weighted in cases:
        case = f"{N}x{D}{' weighted' if weighted else ''}"
        pr, tg = normal_f32(rng, N, D), normal_f32(rng, N, D)
        w = rng.random(N) if weighted else None
        l1, d1 = kernels.feature_regression_loss(pr, tg, w)
        l2, d2 = tc.feature_regression_loss(to_device(pr), tg, w)
        rep.add("feature_regression", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("feature_regression", case, "dpred", d2, d1, "reduction")


def check_distillation(rep, rng, cases):
    for N, K, T in cases:
        case = f"{N}x{K} T={T}"
        s, t = normal_f32(rng, N, K) * 2, normal_f32(rng, N, K) * 2
        l1, d1 = kernels.distillation_loss(s, t, T)
        l2, d2 = tc.distillation_loss(to_device(s), to_device(t), T)
        rep.add("distillation", case, "loss", np.array(l2), np.array(l1), "reduction")
        rep.add("distillation", case, "dstudent", d2, d1, "reduction")


def check_l2_normalize(rep, rng, cases):
    """Row-wise L2 normalisation, forward and backward (a zero row included), and the
    scalar multiply of DeviceTensor."""
    for shape in cases:
        case = "x".join(map(str, shape))
        x = normal_f32(rng, *shape)
        x[0] = 0.0
        fwd_bwd_check(rep, rng, "l2_normalize", case, x, "reduction")
        g = normal_f32(rng, *shape)
        rep.add("l2_normalize", case, "scale", 0.5 * to_device(g), 0.5 * g, "exact")
