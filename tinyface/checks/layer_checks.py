"""The layer ops, forward and backward, CUDA against the Numba CPU kernel: conv2d,
linear, batch norm, ReLU, PReLU, the per-channel affine, zero padding, max, average and
global average pooling, flatten and dropout.

Each ``check_<op>(rep, rng, cases)`` draws float32 inputs from ``rng`` for every case
(shapes from ``tinyface.checks.suite``), runs both tiers on them and adds one row per
output tensor to ``rep`` (a ``Report``), held to the tolerance of its kind.
"""
import numpy as np

from tinyface import cuda as tc
from tinyface import kernels
from tinyface.checks.report import normal_f32
from tinyface.cuda.arrays import to_device


def check_conv2d(rep, rng, cases):
    for (N, C, Co, H, W, k, s, p, bias) in cases:
        case = f"{N}x{C}x{H}x{W} -> {Co}, k{k} s{s} p{p}{'' if bias else ' no bias'}"
        kh, kw = (k, k) if isinstance(k, int) else k
        x, w = normal_f32(rng, N, C, H, W), normal_f32(rng, Co, C, kh, kw)
        b = normal_f32(rng, Co) if bias else None
        o1, c1 = kernels.conv2d_forward(x, w, b, s, p)
        o2, c2 = tc.conv2d_forward(to_device(x), to_device(w),
                                   to_device(b) if bias else None, s, p)
        rep.add("conv2d", case, "out", o2, o1, "gemm")
        g = normal_f32(rng, *o1.shape)
        r1 = kernels.conv2d_backward(g, c1)
        r2 = tc.conv2d_backward(to_device(g), c2)
        for name, a, bb in zip(("dx", "dw", "db"), r2, r1):
            if bb is not None:
                rep.add("conv2d", case, name, a, bb, "gemm")


def check_linear(rep, rng, cases):
    for (N, D_in, D_out, bias) in cases:
        case = f"{N}x{D_in} -> {D_out}{'' if bias else ' no bias'}"
        x, w = normal_f32(rng, N, D_in), normal_f32(rng, D_out, D_in)
        b = normal_f32(rng, D_out) if bias else None
        o1, c1 = kernels.linear_forward(x, w, b)
        o2, c2 = tc.linear_forward(to_device(x), to_device(w), to_device(b) if bias else None)
        rep.add("linear", case, "out", o2, o1, "gemm")
        g = normal_f32(rng, *o1.shape)
        for name, a, bb in zip(("dx", "dw", "db"), tc.linear_backward(to_device(g), c2),
                               kernels.linear_backward(g, c1)):
            if bb is not None:
                rep.add("linear", case, name, a, bb, "gemm")


def check_batchnorm(rep, rng, cases):
    for shape in cases:
        C = shape[1]
        for training in (True, False):
            case = f"{'x'.join(map(str, shape))} {'train' if training else 'eval'}"
            x = normal_f32(rng, *shape) * 2 + 0.5
            gamma, beta = normal_f32(rng, C), normal_f32(rng, C)
            rm, rv = normal_f32(rng, C) * 0.1, np.abs(normal_f32(rng, C)) + 0.5
            rm_d, rv_d = to_device(rm), to_device(rv)
            o1, c1 = kernels.batchnorm_forward(x, gamma, beta, rm, rv, 0.1, 1e-5, training)
            o2, c2 = tc.batchnorm_forward(to_device(x), to_device(gamma), to_device(beta),
                                          rm_d, rv_d, 0.1, 1e-5, training)
            rep.add("batchnorm", case, "out", o2, o1, "reduction")
            rep.add("batchnorm", case, "running_mean", rm_d, rm, "reduction")
            rep.add("batchnorm", case, "running_var", rv_d, rv, "reduction")
            g = normal_f32(rng, *shape)
            for name, a, bb in zip(("dx", "dgamma", "dbeta"),
                                   tc.batchnorm_backward(to_device(g), c2),
                                   kernels.batchnorm_backward(g, c1)):
                rep.add("batchnorm", case, name, a, bb, "reduction")


def fwd_bwd_check(rep, rng, name, case, x, kind, args=()):
    """``name``'s forward on x and backward on a random dout, Numba CPU against CUDA
    (same extra ``args`` for both). x: a float32 host array. Returns the CPU output."""
    o1, c1 = getattr(kernels, name + "_forward")(x, *args)
    o2, c2 = getattr(tc, name + "_forward")(to_device(x), *args)
    rep.add(name, case, "out" if name != "l2_normalize" else "y", o2, o1, kind)
    g = normal_f32(rng, *o1.shape)
    rep.add(name, case, "dx", getattr(tc, name + "_backward")(to_device(g), c2),
            getattr(kernels, name + "_backward")(g, c1), kind)
    return o1


def check_relu(rep, rng, cases):
    for shape in cases:
        x = normal_f32(rng, *shape)
        x.flat[0] = 0.0                                           # the kink
        fwd_bwd_check(rep, rng, "relu", "x".join(map(str, shape)), x, "exact")


def check_prelu(rep, rng, cases):
    for shape, nalpha in cases:
        case = f"{'x'.join(map(str, shape))}, {nalpha} slope(s)"
        x = normal_f32(rng, *shape)
        a = (np.abs(normal_f32(rng, nalpha)) * 0.3).astype(np.float32)
        o1, c1 = kernels.prelu_forward(x, a)
        o2, c2 = tc.prelu_forward(to_device(x), to_device(a))
        rep.add("prelu", case, "out", o2, o1, "elementwise")
        g = normal_f32(rng, *shape)
        (dx2, da2), (dx1, da1) = tc.prelu_backward(to_device(g), c2), kernels.prelu_backward(g, c1)
        rep.add("prelu", case, "dx", dx2, dx1, "elementwise")
        rep.add("prelu", case, "dalpha", da2, da1, "reduction")


def check_channel_affine(rep, rng, cases):
    for shape in cases:
        case = "x".join(map(str, shape))
        x, w, b = normal_f32(rng, *shape), normal_f32(rng, shape[1]), normal_f32(rng, shape[1])
        o1, c1 = kernels.channel_affine_forward(x, w, b)
        o2, c2 = tc.channel_affine_forward(to_device(x), to_device(w), to_device(b))
        rep.add("channel_affine", case, "out", o2, o1, "elementwise")
        g = normal_f32(rng, *shape)
        for name, kind, a, bb in zip(("dx", "dw", "db"), ("elementwise", "reduction", "reduction"),
                                     tc.channel_affine_backward(to_device(g), c2),
                                     kernels.channel_affine_backward(g, c1)):
            rep.add("channel_affine", case, name, a, bb, kind)


def check_zero_pad(rep, rng, cases):
    for shape, target in cases:
        fwd_bwd_check(rep, rng, "zero_pad", f"{'x'.join(map(str, shape))} -> {target}",
                       normal_f32(rng, *shape), "exact", args=target)


def _pool_check(rep, rng, cases, op, kind):
    for shape, k, s, p in cases:
        x = normal_f32(rng, *shape)
        if op == "maxpool2d":
            x = np.round(x * 2) / 2                               # ties: first maximum wins
        fwd_bwd_check(rep, rng, op, f"{'x'.join(map(str, shape))} k{k} s{s} p{p}", x, kind,
                       args=(k, s, p))


def check_maxpool2d(rep, rng, cases):
    _pool_check(rep, rng, cases, "maxpool2d", "exact")


def check_avgpool2d(rep, rng, cases):
    _pool_check(rep, rng, cases, "avgpool2d", "elementwise")


def check_global_avgpool(rep, rng, cases):
    for shape in cases:
        fwd_bwd_check(rep, rng, "global_avgpool", "x".join(map(str, shape)), normal_f32(rng, *shape),
                       "elementwise")


def check_flatten(rep, rng, cases):
    for shape in cases:
        fwd_bwd_check(rep, rng, "flatten", "x".join(map(str, shape)), normal_f32(rng, *shape),
                       "exact")


def check_dropout(rep, rng, cases):
    for shape, p, seed in cases:
        case = f"{'x'.join(map(str, shape))} p={p} seed={seed}"
        x = normal_f32(rng, *shape)
        o1, c1 = kernels.dropout_forward(x, p, True, seed)
        o2, c2 = tc.dropout_forward(to_device(x), p, True, seed)
        rep.add("dropout", case, "out (mask)", o2, o1, "exact")
        g = normal_f32(rng, *shape)
        rep.add("dropout", case, "dx", tc.dropout_backward(to_device(g), c2),
                kernels.dropout_backward(g, c1), "exact")
        o3, _ = tc.dropout_forward(to_device(x), p, False, seed)
        rep.add("dropout", case, "eval (identity)", o3, x, "exact")
