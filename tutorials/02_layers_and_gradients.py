"""Tutorial 2: every layer's forward and backward pass, checked by hand and by numbers.

The teacher and the student of the paper (Ge et al., TIP 2019, Section III) are CNNs
trained by back-propagation; here every layer's backward pass is written by hand, in two
tiers with one signature: ``tinyface.reference`` (plain NumPy) and ``tinyface.kernels``
(Numba). This script first works a convolution through on a 1x1x4x4 input small enough
to check with pencil and paper (forward: each output is a window of the input times the
kernel; backward: ``dx`` pastes the kernel back where each output looked, ``dw`` sums the
windows the kernel saw), then checks the analytic gradient of every op of both tiers
against central differences (``tinyface.gradcheck``) in float64, and shows why float64:
the error of a central difference against its step ``h``.

Run it:

    python tutorials/02_layers_and_gradients.py --quick   # ~3 s
    python tutorials/02_layers_and_gradients.py           # the same checks, bigger shapes; ~5 s

No face data is used (``--data-root`` is ignored); ``--seed`` picks the random inputs.
"""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tinyface import kernels, reference, tutorial  # noqa: E402
from tinyface.gradcheck import numerical_gradient, relative_error  # noqa: E402

TIERS = {"numpy": reference, "numba": kernels}
BOUND = 1e-6          # float64, h = 1e-5: truncation ~h^2 and round-off ~eps/h, both << 1e-6
FLOOR = 1e-3          # relative-error denominators floored at FLOOR x the largest |entry|

args = tutorial.parse_args(2, __doc__)
t = tutorial.Tutorial(args)


def show(label, a):
    """Print a (1, 1, H, W) array as its H x W matrix."""
    rows = np.asarray(a)[0, 0] if np.ndim(a) == 4 else np.asarray(a)
    print(f"  {label} {np.shape(a)}:")
    for r in rows:
        print("    [" + " ".join(f"{v:5g}" for v in r) + " ]")


# ----------------------------------------------------------------------------------
t.section("1. conv2d by hand: a 1x1x4x4 input, a 2x2 kernel, stride 1, no padding")
x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)       # (N, Cin, H, W): x[i, j] = 4i + j
w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])                     # (Cout, Cin, kh, kw)
b = np.zeros(1)                                                # (Cout,)
show("input x", x)
show("kernel w", w)
out, cache = reference.conv2d_forward(x, w, b, 1, 0)           # (1, 1, 3, 3)
show("out = conv2d(x, w)", out)
print("  by hand: out[0,0] = 0*1 + 1*2 + 4*3 + 5*4 = 34; in general out[i,j] =\n"
      "    x[i,j] + 2x[i,j+1] + 3x[i+1,j] + 4x[i+1,j+1] = 10(4i+j) + 2 + 12 + 20 = 34 + 40i + 10j")
i, j = np.mgrid[0:3, 0:3]
hand_out = (34 + 40 * i + 10 * j)[None, None]                  # (1, 1, 3, 3)
t.check("max |out - (34 + 40i + 10j)|", float(np.abs(out - hand_out).max()), equals=0.0)

dout = np.ones_like(out)                                       # (1, 1, 3, 3): d(sum out)/d(out)
show("dout (the gradient of sum(out))", dout)
dx, dw, db = reference.conv2d_backward(dout, cache)
show("dx", dx)
show("dw", dw)
print(f"  db = {db} (the sum of dout: 9 outputs)")
print("  by hand: dx[p,q] sums the weights that touched x[p,q]: a corner is seen once\n"
      "    (dx[0,0] = w[0,0] = 1, dx[3,3] = w[1,1] = 4), the four centre pixels by every weight\n"
      "    (1 + 2 + 3 + 4 = 10); dw[a,b] sums the 3x3 window of x at offset (a,b):\n"
      "    dw[0,0] = 0+1+2+4+5+6+8+9+10 = 45 = 9 x (its centre value 5); dw[a,b] = 9(4a + b + 5)")
hand_dx = np.array([[1, 3, 3, 2], [4, 10, 10, 6], [4, 10, 10, 6], [3, 7, 7, 4]], np.float64)
a_, b_ = np.mgrid[0:2, 0:2]
hand_dw = 9.0 * (4 * a_ + b_ + 5)
t.check("max |dx - hand|", float(np.abs(dx[0, 0] - hand_dx).max()), equals=0.0)
t.check("max |dw - hand|", float(np.abs(dw[0, 0] - hand_dw).max()), equals=0.0)
t.check("db", float(db[0]), equals=9.0)

print("\n  one output alone: dout = 1 at out[1,2], 0 elsewhere")
one = np.zeros_like(out)
one[0, 0, 1, 2] = 1.0
dx1, dw1, _ = reference.conv2d_backward(one, cache)
show("dx (the kernel pasted where out[1,2] looked: rows 1-2, columns 2-3)", dx1)
show("dw (the input window out[1,2] saw: x[1:3, 2:4])", dw1)
paste = np.zeros((4, 4))
paste[1:3, 2:4] = w[0, 0]
t.check("max |dx - pasted kernel|", float(np.abs(dx1[0, 0] - paste).max()), equals=0.0)
t.check("max |dw - x[1:3, 2:4]|", float(np.abs(dw1[0, 0] - x[0, 0, 1:3, 2:4]).max()), equals=0.0)

fast = kernels.conv2d_forward(x, w, b, 1, 0)
fast_grads = kernels.conv2d_backward(dout, fast[1])
diff = max(float(np.abs(fast[0] - out).max()),
           *(float(np.abs(g1 - g2).max()) for g1, g2 in zip(fast_grads, (dx, dw, db))))
t.check("Numba tier against these numbers, max |difference|", diff, equals=0.0)


# ----------------------------------------------------------------------------------
def away_from_zero(rng, shape, margin=0.1):
    """|x| >= margin: no ReLU kink within the finite-difference step."""
    u = rng.standard_normal(shape)
    return np.sign(u) * (margin + np.abs(u))


def distinct(rng, shape):
    """Values at least 0.01 apart (a shuffled grid plus small noise): no max-pool ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.01 + rng.uniform(0, 0.001, n)).reshape(shape) - n * 0.005


def cases(big):
    """(name, build) pairs; build(ops, rng) -> (f, dout, inputs, analytic grads)."""
    N = 3 if big else 2

    def conv(stride, pad, H, W):
        def build(ops, rng):
            x = rng.standard_normal((N, 3, H, W))                    # (N, Cin, H, W)
            w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
            f = lambda: ops.conv2d_forward(x, w, b, stride, pad)[0]          # noqa: E731
            out, cache = ops.conv2d_forward(x, w, b, stride, pad)
            dout = rng.standard_normal(out.shape)
            return f, dout, {"x": x, "w": w, "b": b}, ops.conv2d_backward(dout, cache)
        return build

    def linear(ops, rng):
        x, w, b = rng.standard_normal((N + 2, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5)
        out, cache = ops.linear_forward(x, w, b)
        dout = rng.standard_normal(out.shape)
        return (lambda: ops.linear_forward(x, w, b)[0], dout, {"x": x, "w": w, "b": b},
                ops.linear_backward(dout, cache))

    def batchnorm(shape, training):
        def build(ops, rng):
            C = shape[1]
            x = rng.standard_normal(shape) * 2 + 0.5
            g, be, rm, rv = (rng.standard_normal(C), rng.standard_normal(C),
                             rng.standard_normal(C), rng.random(C) + 0.5)

            # copies: the training pass updates the running statistics in place
            def f():
                return ops.batchnorm_forward(x, g, be, rm.copy(), rv.copy(), 0.1, 1e-5, training)[0]

            out, cache = ops.batchnorm_forward(x, g, be, rm.copy(), rv.copy(), 0.1, 1e-5, training)
            dout = rng.standard_normal(out.shape)
            return f, dout, {"x": x, "gamma": g, "beta": be}, ops.batchnorm_backward(dout, cache)
        return build

    def relu(ops, rng):
        x = away_from_zero(rng, (N, 3, 4, 4))
        out, cache = ops.relu_forward(x)
        dout = rng.standard_normal(out.shape)
        return lambda: ops.relu_forward(x)[0], dout, {"x": x}, (ops.relu_backward(dout, cache),)

    def prelu(ops, rng):
        x, alpha = away_from_zero(rng, (N, 3, 4, 4)), rng.uniform(0.05, 0.5, 3)
        out, cache = ops.prelu_forward(x, alpha)
        dout = rng.standard_normal(out.shape)
        return (lambda: ops.prelu_forward(x, alpha)[0], dout, {"x": x, "alpha": alpha},
                ops.prelu_backward(dout, cache))

    def pool(kind, k, s, p):
        def build(ops, rng):
            x = distinct(rng, (N, 2, 5, 6))
            fwd, bwd = getattr(ops, f"{kind}_forward"), getattr(ops, f"{kind}_backward")
            out, cache = fwd(x, k, s, p)
            dout = rng.standard_normal(out.shape)
            return lambda: fwd(x, k, s, p)[0], dout, {"x": x}, (bwd(dout, cache),)
        return build

    def shape_op(kind):
        def build(ops, rng):
            x = rng.standard_normal((N, 3, 3, 4))
            fwd, bwd = getattr(ops, f"{kind}_forward"), getattr(ops, f"{kind}_backward")
            out, cache = fwd(x)
            dout = rng.standard_normal(out.shape)
            return lambda: fwd(x)[0], dout, {"x": x}, (bwd(dout, cache),)
        return build

    def l2_normalize(ops, rng):
        x = rng.standard_normal((N + 2, 6))                          # (N, D) feature rows
        out, cache = ops.l2_normalize_forward(x)
        dout = rng.standard_normal(out.shape)
        return (lambda: ops.l2_normalize_forward(x)[0], dout, {"x": x},
                (ops.l2_normalize_backward(dout, cache),))

    def dropout(ops, rng):
        x = rng.standard_normal((N, 3, 4, 4))
        out, cache = ops.dropout_forward(x, 0.3, True, 11)
        dout = rng.standard_normal(out.shape)
        return (lambda: ops.dropout_forward(x, 0.3, True, 11)[0], dout, {"x": x},
                (ops.dropout_backward(dout, cache),))

    def loss(kind):
        def build(ops, rng):
            z = rng.standard_normal((N + 2, 6)) * 2                  # (N, K) logits or features
            if kind == "softmax_cross_entropy_loss":
                other = rng.integers(0, 6, N + 2)                    # labels
                f = lambda: ops.softmax_cross_entropy_loss(z, other)  # noqa: E731
            elif kind == "feature_regression_loss":
                other, wts = rng.standard_normal(z.shape), rng.uniform(0.1, 2, N + 2)
                f = lambda: ops.feature_regression_loss(z, other, wts)  # noqa: E731
            else:
                other = rng.standard_normal(z.shape) * 2             # teacher logits, T = 4
                f = lambda: ops.distillation_loss(z, other, 4.0)  # noqa: E731
            return lambda: np.asarray(f()[0]), np.array(1.0), {"z": z}, (f()[1],)
        return build

    out = [("conv2d 3x3 s1 p1", conv(1, 1, 5, 5)), ("conv2d 3x3 s2 p0", conv(2, 0, 7, 6)),
           ("linear", linear), ("batchnorm2d train", batchnorm((N + 1, 3, 2, 3), True)),
           ("batchnorm2d eval", batchnorm((N, 3, 2, 3), False)),
           ("batchnorm1d train", batchnorm((N + 3, 4), True)), ("relu", relu), ("prelu", prelu),
           ("maxpool2d k2 s2", pool("maxpool2d", 2, 2, 0)),
           ("avgpool2d k3 s2 p1", pool("avgpool2d", 3, 2, 1)),
           ("global avgpool", shape_op("global_avgpool")), ("flatten", shape_op("flatten")),
           ("dropout p=0.3", dropout), ("softmax cross-entropy", loss("softmax_cross_entropy_loss")),
           ("feature regression", loss("feature_regression_loss")),
           ("distillation T=4", loss("distillation_loss"))]
    if hasattr(reference, "l2_normalize_forward"):                 # the newest op, when present
        out.insert(-3, ("l2 normalize", l2_normalize))
    if big:
        out.append(("conv2d 2x2 s1 p2", lambda ops, rng: _conv_k2(ops, rng, N)))
    return out


def _conv_k2(ops, rng, N):
    """A 2x2 kernel, padding 2, no bias (the full mode's extra case)."""
    x, w = rng.standard_normal((N, 2, 4, 5)), rng.standard_normal((3, 2, 2, 2))
    out, cache = ops.conv2d_forward(x, w, None, 1, 2)
    dout = rng.standard_normal(out.shape)
    dx, dw, _ = ops.conv2d_backward(dout, cache)
    return lambda: ops.conv2d_forward(x, w, None, 1, 2)[0], dout, {"x": x, "w": w}, (dx, dw)


t.section(f"2. Gradient checks of every op, both tiers, float64 (bound {BOUND:g})")
print("  relative error = max over entries of |analytic - numeric| / (|analytic| + |numeric|),\n"
      "  central differences with h = 1e-5 (tinyface.gradcheck), the same inputs for both tiers.\n"
      "  The numeric gradient's round-off is about the same for every entry, so an entry near 0\n"
      f"  gets a large relative error by itself: the checked figure floors the denominator at\n"
      f"  {FLOOR:g} x the gradient's largest entry ('no floor' is the raw figure, for reading).")
print(f"    {'op':<22} {'tier':<6} {'grad':<6} {'shape':<14} {'rel. error':>10} {'no floor':>9}")
errors = {}
for k, (name, build) in enumerate(cases(big=not args.quick)):
    worst = 0.0
    for tier, ops in TIERS.items():
        rng = np.random.default_rng([args.seed, k])                 # same inputs per tier
        f, dout, inputs, grads = build(ops, rng)
        for (gname, arr), g in zip(inputs.items(), grads):
            num = numerical_gradient(f, arr, dout)                  # arr's shape
            err = relative_error(g, num, floor=FLOOR * np.abs(g).max())
            errors[f"{name} | {tier} | d{gname}"] = err
            worst = max(worst, err)
            print(f"    {name:<22} {tier:<6} d{gname:<5} {str(arr.shape):<14} {err:10.2e} "
                  f"{relative_error(g, num):9.1e}")
    t.check(f"{name}: largest relative error", worst, below=BOUND)

# ----------------------------------------------------------------------------------
t.section("3. Why float64: the error of a central difference against its step h")
print("  truncation error ~ h^2 (falls with h), round-off ~ eps/h (grows as h shrinks)")
steps = [10.0 ** -e for e in range(1, 11)]
sweep = {}
for dtype, eps in ((np.float64, np.finfo(np.float64).eps), (np.float32, np.finfo(np.float32).eps)):
    rng = np.random.default_rng(args.seed)
    xs = (rng.standard_normal((2, 3, 2, 3)) * 2 + 0.5).astype(dtype)     # (N, C, H, W)
    gs, bs, rms = (rng.standard_normal(3).astype(dtype) for _ in range(3))
    rvs = (rng.random(3) + 0.5).astype(dtype)

    def bn():      # batch norm in training mode: smooth and non-linear in x
        return reference.batchnorm_forward(xs, gs, bs, rms.copy(), rvs.copy(), 0.1, 1e-5, True)

    douts = rng.standard_normal(xs.shape)
    dxs = reference.batchnorm_backward(douts.astype(dtype), bn()[1])[0]
    errs = [relative_error(dxs, numerical_gradient(lambda: bn()[0], xs, douts, h=h),
                           floor=FLOOR * np.abs(dxs).max()) for h in steps]
    sweep[np.dtype(dtype).name] = errs
    print(f"    {np.dtype(dtype).name} (eps {eps:.1e}): " +
          "  ".join(f"h=1e-{e + 1}:{v:.0e}" for e, v in enumerate(errs)))
best64 = min(sweep["float64"])
t.check("float64 at h = 1e-5", sweep["float64"][4], below=BOUND)
t.check("best float32 error over all h (it cannot reach the float64 bound)",
        min(sweep["float32"]), above=BOUND)

# ----------------------------------------------------------------------------------
t.section("4. Figures and numbers")
names = list(errors)
vals = np.array([errors[n] for n in names])
ops_ = list(dict.fromkeys(n.split(" | ")[0] for n in names))          # op names, in order
per_tier = {tier: [max(errors[n] for n in names if n.startswith(op + " | " + tier + " |"))
                   for op in ops_] for tier in TIERS}                  # worst gradient per op
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [1.5, 1]})
ypos = np.arange(len(ops_))
for k, (tier, v) in enumerate(per_tier.items()):
    ax1.barh(ypos + 0.4 * k - 0.2, np.maximum(v, 1e-16), height=0.4, color=f"C{k}",
             label=f"{tier} tier")
ax1.axvline(BOUND, color="red", ls="--", label=f"bound {BOUND:g}")
ax1.set_xscale("log")
ax1.set_yticks(ypos)
ax1.set_yticklabels(ops_, fontsize=8)
ax1.invert_yaxis()
ax1.set_xlabel("largest relative error over the op's gradients (float64, h = 1e-5)")
ax1.legend(fontsize=7)
for dname, errs in sweep.items():
    ax2.loglog(steps, errs, "o-", label=dname)
ax2.axhline(BOUND, color="red", ls="--", lw=1)
ax2.set_xlabel("finite-difference step h")
ax2.set_ylabel("relative error of batch-norm dx")
ax2.set_title("truncation (right) vs round-off (left)")
ax2.legend(fontsize=8)
t.save_figure(fig, "gradient_errors.png", dpi=80)
with open(t.path("gradient_errors.json"), "w") as fh:
    json.dump({"bound": BOUND, "h": 1e-5, "errors": errors,
               "step_sweep": {"h": steps, **sweep}}, fh, indent=1)
t.saved(t.path("gradient_errors.json"))

n_ops = len(ops_)
t.finish(
    summary=[
        "conv2d forward: out[i,j] is the kernel dotted with the window at (i,j) (34 + 40i + 10j "
        "here); backward: dx pastes the kernel back where each output looked, dw sums the "
        "windows scaled by dout, db sums dout",
        f"{len(errors)} gradients of {n_ops} ops x 2 tiers checked in float64: largest relative "
        f"error {vals.max():.1e} (bound {BOUND:g})",
        f"central differences: error ~h^2 + eps/h; float64 reaches {best64:.0e}, float32 only "
        f"{min(sweep['float32']):.0e}, so gradient checks run in float64 on tiny shapes",
    ],
    exercises=[
        "Break conv2d on purpose: in a copy of reference/conv.py flip the kernel in the backward "
        "pass (w[:, :, ::-1, ::-1]). Which of dx, dw fails the check, and by how much?",
        "Check ReLU at x = 0 exactly (no away_from_zero): what relative error do you get, and "
        "why does the numerical gradient disagree there?",
        "Work the 1x1x4x4 example again with stride 2 and padding 1 by hand: the output shape, "
        "out, and dx for dout = ones; then confirm with reference.conv2d_forward/backward.",
    ])
