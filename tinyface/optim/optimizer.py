"""The optimizer base class and ``select_params`` (freezing layers by name).

An optimizer holds a list of ``(name, param, grad)`` triples, exactly what
``Module.parameters_and_grads()`` returns. ``param`` and ``grad`` are the very arrays
the layers own (float32, same shape), so ``step()`` must update ``param`` *in place*
and must never write into ``grad``.

Per-parameter state (step counts, momentum buffers) lives in ``self.state[name]`` and
is keyed by the parameter's dotted name, so ``state_dict()`` can be saved to ``.npz``
(see ``tinyface.checkpoint``) and loaded back into a fresh optimizer for exact resume.

Updates are elementwise NumPy ufuncs with ``out=``: each parameter gets at most two
scratch arrays, allocated once on its first step and reused (no BLAS, no per-step
temporaries the size of the parameter).
"""
import fnmatch

import numpy as np


def _as_triples(params, check_arrays=None):
    """Accept a ``Module`` (anything with ``parameters_and_grads``) or a list of triples.

    ``check_arrays(name, param, grad)`` validates each pair of arrays (default: host
    NumPy float arrays of one dtype, writable); the device optimizer passes its own.
    """
    if hasattr(params, "parameters_and_grads"):
        params = params.parameters_and_grads()
    triples = list(params)
    if not triples:
        raise ValueError("optimizer got an empty parameter list")
    seen = set()
    for item in triples:
        if not (isinstance(item, tuple) and len(item) == 3):
            raise TypeError(f"expected (name, param, grad) triples, got {item!r:.80}")
        name, p, g = item
        if name in seen:
            raise ValueError(f"parameter name {name!r} appears twice")
        seen.add(name)
        (check_arrays or _check_host_arrays)(name, p, g)
        if p.shape != g.shape:
            raise ValueError(f"parameter {name!r}: param shape {p.shape} != grad shape {g.shape}")
    return triples


def _check_host_arrays(name, p, g):
    if not (isinstance(p, np.ndarray) and isinstance(g, np.ndarray)):
        raise TypeError(f"parameter {name!r}: param and grad must be NumPy arrays")
    if p.dtype.kind != "f" or g.dtype != p.dtype:
        raise TypeError(f"parameter {name!r}: expected float arrays of one dtype, "
                        f"got param {p.dtype} and grad {g.dtype}")
    if not p.flags.writeable:
        raise ValueError(f"parameter {name!r} is read-only; the optimizer updates it in place")


def _matches(name, pattern):
    """``pattern`` is an fnmatch pattern or a dotted prefix: "0" matches "0.weight"."""
    prefix = pattern.rstrip(".")
    return (fnmatch.fnmatchcase(name, pattern) or name == prefix
            or name.startswith(prefix + "."))


def select_params(model_or_triples, include=None, exclude=None):
    """Filter ``(name, param, grad)`` triples by name: the way to freeze layers.

    Args:
        model_or_triples: a ``Module`` or a list of ``(name, param, grad)`` triples.
        include: a pattern or list of patterns; keep only matching names (None: all).
        exclude: a pattern or list of patterns; drop matching names (applied after include).

    A pattern is an fnmatch pattern (``"*.bias"``, ``"layer?.*"``) or a dotted prefix
    (``"0"`` or ``"0."`` selects ``"0.weight"`` and ``"0.bias"``, not ``"10.weight"``).
    A pattern that matches no name at all raises ``ValueError`` (a typo would otherwise
    silently train a layer meant to be frozen, or freeze everything).

    Returns:
        list of ``(name, param, grad)`` triples, in the original order.
    """
    triples = list(model_or_triples.parameters_and_grads()
                   if hasattr(model_or_triples, "parameters_and_grads") else model_or_triples)
    names = [t[0] for t in triples]

    def patterns(arg):
        if arg is None:
            return None
        pats = [arg] if isinstance(arg, str) else list(arg)
        for pat in pats:
            if not any(_matches(n, pat) for n in names):
                raise ValueError(f"pattern {pat!r} matches no parameter; names are {names}")
        return pats

    inc, exc = patterns(include), patterns(exclude)
    out = []
    for t in triples:
        if inc is not None and not any(_matches(t[0], p) for p in inc):
            continue
        if exc is not None and any(_matches(t[0], p) for p in exc):
            continue
        out.append(t)
    return out


class Optimizer:
    """Base class. Subclasses set ``hyper_names`` and implement ``_check`` and ``_update``.

    Attributes:
        params: list of ``(name, param, grad)`` triples (param/grad: same shape, float32).
        state:  dict name -> dict of per-parameter state (ints and arrays shaped like param).
        lr:     learning rate (float >= 0); schedules set it between steps.
    """

    hyper_names = ("lr",)

    def __init__(self, params, **hyper):
        self.params = _as_triples(params)
        self._lr = hyper.pop("lr")  # validated by _check, through the ``lr`` setter
        for key, value in hyper.items():
            setattr(self, key, value)
        self._check()
        self.state = {}
        self._scratch = {}

    # ------------------------------------------------------------- learning rate
    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        value = float(value)
        if not value >= 0.0:  # also refuses NaN
            raise ValueError(f"learning rate must be >= 0, got {value}")
        self._lr = value

    def _check(self):
        """Validate hyper-parameters; raise ``ValueError`` on a bad one."""
        self.lr = self._lr

    # --------------------------------------------------------------------- step
    def step(self):
        """Apply one update to every parameter, in place, from the current grads."""
        for name, p, g in self.params:
            self._update(name, p, g, self.state.setdefault(name, {}))

    def _update(self, name, p, g, state):
        raise NotImplementedError

    def zero_grad(self):
        """Fill every gradient array with 0 (in place; layers keep their references)."""
        for _, _, g in self.params:
            g.fill(0.0)

    def _work(self, name, p, k):
        """The k-th scratch array for parameter ``name`` (shape/dtype of ``p``), reused."""
        bufs = self._scratch.setdefault(name, [])
        while len(bufs) <= k:
            bufs.append(np.empty_like(p))
        return bufs[k]

    # -------------------------------------------------------------------- state
    def hyperparams(self):
        """JSON-able dict of the hyper-parameters (tuples become lists)."""
        out = {}
        for key in self.hyper_names:
            v = getattr(self, key)
            out[key] = list(v) if isinstance(v, tuple) else v
        return out

    def state_dict(self):
        """Everything needed to resume exactly.

        Returns:
            ``{"type": class name, "hyperparams": JSON-able dict,
               "state": {param name: {key: int | float | array copy}}}``
        """
        state = {name: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in st.items()}
                 for name, st in self.state.items()}
        return {"type": type(self).__name__, "hyperparams": self.hyperparams(), "state": state}

    def load_state_dict(self, sd):
        """Restore hyper-parameters and per-parameter state from ``state_dict()`` output.

        Raises ``ValueError`` for another optimizer type, an unknown parameter name, or
        a state array whose shape differs from its parameter (naming both shapes).
        """
        if sd.get("type") != type(self).__name__:
            raise ValueError(f"optimizer state is for {sd.get('type')!r}, not {type(self).__name__!r}")
        shapes = {name: p.shape for name, p, _ in self.params}
        dtypes = {name: p.dtype for name, p, _ in self.params}
        new_state = {}
        for name, st in sd["state"].items():
            if name not in shapes:
                raise ValueError(f"optimizer state has unknown parameter {name!r}")
            new_state[name] = {}
            for key, v in st.items():
                if isinstance(v, np.ndarray):
                    if v.shape != shapes[name]:
                        raise ValueError(f"optimizer state {name!r}/{key!r}: parameter has shape "
                                         f"{shapes[name]}, state has shape {v.shape}")
                    v = np.array(v, dtype=dtypes[name], copy=True)
                new_state[name][key] = v
        old = {key: getattr(self, key) for key in self.hyper_names}
        try:
            for key, v in sd["hyperparams"].items():
                if key not in self.hyper_names:
                    raise ValueError(f"unknown hyper-parameter {key!r} for {type(self).__name__}")
                setattr(self, key, tuple(v) if isinstance(v, list) else v)
            self._check()
        except Exception:
            for key, v in old.items():
                setattr(self, key, v)
            raise
        self.state = new_state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({len(self.params)} tensors, {args})"
