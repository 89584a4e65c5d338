"""Which tier runs the layers: ``"numba"`` (the default) or ``"numpy"`` (the reference).

Layers never import a kernel module directly; they call ``ops.<name>``, and ``ops``
looks the name up in the active tier's package. Both tiers export the same functions
with the same signatures::

    from tinyface.backend import ops, set_backend
    out, cache = ops.relu_forward(x)
    set_backend("numpy")          # every layer now runs the NumPy reference

The two tiers' caches are opaque and differ: run forward and backward on one tier.
"""
import contextlib
import importlib

BACKENDS = {
    "numba": "tinyface.kernels",    # Numba CPU kernels
    "numpy": "tinyface.reference",  # plain NumPy, slow and obvious
}

_active = {"name": "numba", "package": None}
_overrides = {}


def set_backend(name):
    """Select the tier every layer uses from now on; returns the previous name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    previous = _active["name"]
    _active["name"], _active["package"] = name, None
    return previous


def get_backend():
    return _active["name"]


class _Ops:
    """Attribute proxy: ``ops.conv2d_forward`` is the active tier's function."""

    def __getattr__(self, name):
        if name in _overrides:
            return _overrides[name]
        package = _active["package"]
        if package is None:
            package = _active["package"] = importlib.import_module(BACKENDS[_active["name"]])
        return getattr(package, name)


ops = _Ops()


@contextlib.contextmanager
def override_ops(**functions):
    """Temporarily replace single ops, e.g. ``override_ops(linear_forward=my_fn)``.

    Benchmarks use it to show what one slow or badly threaded op costs a network.
    """
    saved = dict(_overrides)
    _overrides.update(functions)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(saved)
