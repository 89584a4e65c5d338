"""Cheap checks shared by the layers: constructor arguments, and the shapes and dtypes
of what goes into ``forward`` and ``backward``.

Every check looks at Python values, shapes and dtypes only (never at the data), so a
layer pays a few attribute reads per call. Each error is one line that names the layer
and the bad value, e.g. ``Conv2d: out_channels must be an integer >= 1, got 0``.
The op tiers (``reference``, ``kernels``, ``cuda``) stay lean and assume checked input.
"""
import numbers

import numpy as np


# ---------------------------------------------------------- constructor arguments
def is_integer(value):
    """True for an int (not a bool), a NumPy integer, or an integral float such as 3.0."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, numbers.Real) and float(value).is_integer()


def integer(layer, name, value, minimum=None):
    """``value`` as an int, or ``ValueError("<layer>: <name> must be an integer >= m, got v")``."""
    if not is_integer(value) or (minimum is not None and int(value) < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{layer}: {name} must be an integer{bound}, got {value!r}")
    return int(value)


def int_or_pair(layer, name, value, minimum):
    """An int, or a 2-sequence of ints (a tuple, or a JSON list after a config round
    trip), each >= ``minimum``. Returns an int or a tuple of two ints, as given."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or not all(is_integer(v) and int(v) >= minimum for v in value):
            raise ValueError(f"{layer}: {name} must be an integer >= {minimum} or a pair of "
                             f"them, got {value!r}")
        return (int(value[0]), int(value[1]))
    if not is_integer(value) or int(value) < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum} or a pair of "
                         f"them, got {value!r}")
    return int(value)


def pair(layer, name, value, minimum):
    """Like :func:`int_or_pair`, always returning ``(h, w)``."""
    v = int_or_pair(layer, name, value, minimum)
    return v if isinstance(v, tuple) else (v, v)


def real(layer, name, value, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float inside the given bounds, or a one-line ``ValueError``."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
          and np.isfinite(float(value)))
    if ok:
        v = float(value)
        ok = ((low is None or (v > low if low_open else v >= low))
              and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        if low is not None and high is not None:
            want = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        elif low is not None:
            want = f"{'>' if low_open else '>='} {low:g}"
        elif high is not None:
            want = f"{'<' if high_open else '<='} {high:g}"
        else:
            want = "a finite number"
        raise ValueError(f"{layer}: {name} must be {want}, got {value!r}")
    return float(value)


def boolean(layer, name, value):
    """A bool (or a NumPy bool), as given to ``bias=``; anything else is refused
    (``ValueError``, like every bad constructor argument)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{layer}: {name} must be True or False, got {value!r}")  # noqa: TRY004
    return bool(value)


# ------------------------------------------------------------------ forward input
def refuse_integer_dtype(where, x, what="input"):
    """Integer arrays are refused: 0..255 pixels cast to float32 make garbage activations.
    Works on host and GPU arrays alike (it reads ``x.dtype`` only)."""
    if x.dtype.kind in "iu":
        raise TypeError(f"{where} got {x.dtype} {what} {tuple(x.shape)}: convert images with "
                        f"tinyface.data.to_float (0..255 -> [-0.5, 0.5]) first")
    if x.dtype.kind != "f":
        raise TypeError(f"{where}: expected a float32 array, got dtype {x.dtype}")


def refuse_empty_batch(where, x):
    """An empty batch (N = 0) is refused with the input's shape."""
    if x.ndim >= 1 and x.shape[0] == 0:
        raise ValueError(f"{where}: empty batch, got input of shape {tuple(x.shape)}; "
                         f"give at least one sample (N >= 1)")


def shape_text(ndim, channels=None, channel_axis=1):
    """``(N, C, H, W)``-style text for an expected shape, with a known channel count."""
    names = {2: ["N", "C"], 3: ["N", "C", "L"], 4: ["N", "C", "H", "W"]}.get(
        ndim, [f"d{i}" for i in range(ndim)])
    if channels is not None:
        names[channel_axis] = str(channels)
    return "(" + ", ".join(names) + ")"


def window_fits(where, x_shape, kernel, stride, padding, what="kernel"):
    """Refuse an (N, C, H, W) input smaller than the (padded) window; kernel, stride and
    padding are (h, w) pairs. Returns the output's spatial size ``(OH, OW)``."""
    H, W = x_shape[2], x_shape[3]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ValueError(f"{where}: input {tuple(x_shape)} is smaller than the {what} "
                         f"{kh}x{kw} (padding {ph}x{pw}); need H + 2*padding >= {kh} and "
                         f"W + 2*padding >= {kw}")
    return (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1


# ---------------------------------------------------------------- backward input
def dout_matches(where, dout, out_shape, what="dout"):
    """Refuse an upstream gradient whose shape is not the forward output's."""
    if tuple(dout.shape) != tuple(out_shape):
        raise ValueError(f"{where}: {what} must be {tuple(out_shape)} like the forward's "
                         f"output, got {tuple(dout.shape)}")
