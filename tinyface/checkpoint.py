"""Save and load models (and training state) as ``.npz`` files, atomically.

File layout (every entry is a plain array; ``np.load(..., allow_pickle=False)`` reads it):

- ``__tinyface__``:   JSON ``{"format": "tinyface-checkpoint", "version": 1, "kind": ...,
  "layers": {type name: module}}``, the module defining each layer class of the model;
- ``architecture``:   JSON of ``model.config()``, rebuilt by ``nn.module.build_layer``;
- ``metadata``:       JSON dict given by the caller (anything ``json`` can write);
- ``param/<name>``:   each parameter under its dotted name, e.g. ``param/0.weight``;
- ``buffer/<name>``:  each buffer, e.g. ``buffer/1.running_var``;

and, for training state (``save_training_state``) also:

- ``optim/<param name>/<key>``: optimizer state arrays (momentum buffers, moments);
- ``optim_state``:    JSON ``{"type", "hyperparams", "scalars": {name: {key: int}}}``;
- ``training``:       JSON ``{"epoch": int, "extra": dict}`` (e.g. RNG state as ints).

JSON strings are stored as 0-d unicode arrays. Writes go to a temporary file in the
target directory, which is flushed, fsync'ed and then renamed over the target with
``os.replace``: a crash mid-write leaves the old file intact and no partial file.
"""
import importlib
import json
import os

import numpy as np

from .atomic import savez_atomic
from .nn.module import LAYER_TYPES, build_layer

FORMAT = "tinyface-checkpoint"
VERSION = 1

# Layers register themselves (``nn.module.register_layer``) where they are defined, so a
# layer type is buildable once its module is imported. A file records the module of each
# layer class it holds (header ``"layers"``) and ``load_model`` imports those modules by
# name: this floor never imports the floors that define models. Files written before the
# header had ``"layers"`` name their modules through this table.
LEGACY_LAYER_MODULES = {"FaceNet": "tinyface.models.facenet",
                        "Residual": "tinyface.models.spec",
                        "DistillStudent": "tinyface.distill.model",
                        "CrossResolutionStudent": "tinyface.distill.cross_resolution"}


def _json_default(obj):
    """Let ``json`` write NumPy scalars and small arrays (e.g. RNG state)."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"checkpoint metadata: {type(obj).__name__} is not JSON-serialisable")


def _json_array(obj):
    return np.array(json.dumps(obj, default=_json_default))


def _with_suffix(path):
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def _atomic_savez(path, arrays):
    """Write ``arrays`` (dict name -> array) to ``path`` atomically; return ``path``."""
    return savez_atomic(path, arrays)


def _layer_modules(model, out=None):
    """``{type name: defining module}`` of ``model`` and every layer inside it."""
    out = {} if out is None else out
    out[type(model).__name__] = type(model).__module__
    for child in model.children():
        _layer_modules(child, out)
    return out


def _config_types(config, out=None):
    """Every layer type name in an architecture record (nested dicts and lists)."""
    out = set() if out is None else out
    if isinstance(config, dict):
        if isinstance(config.get("type"), str):
            out.add(config["type"])
        for value in config.values():
            _config_types(value, out)
    elif isinstance(config, list):
        for value in config:
            _config_types(value, out)
    return out


def _import_layers(header, config):
    """Import the modules that define the record's layer types not yet registered.

    Only modules of this package are imported: a file never makes the loader run code
    from elsewhere (a layer defined outside is registered by importing it first)."""
    recorded = header.get("layers") or {}
    for kind in sorted(_config_types(config) - set(LAYER_TYPES)):
        module = recorded.get(kind, LEGACY_LAYER_MODULES.get(kind))
        if isinstance(module, str) and (module == "tinyface" or module.startswith("tinyface.")):
            importlib.import_module(module)


def _model_arrays(model, metadata, kind):
    header = {"format": FORMAT, "version": VERSION, "kind": kind,
              "layers": _layer_modules(model)}
    arrays = {"__tinyface__": _json_array(header),
              "architecture": _json_array(model.config()),
              "metadata": _json_array({} if metadata is None else metadata)}
    for name, p in model.named_parameters():
        arrays["param/" + name] = _host(p)
    for name, b in model.named_buffers():
        arrays["buffer/" + name] = _host(b)
    return arrays


def _host(a):
    """A host array: a GPU array (model on the CUDA tier) is copied down explicitly."""
    return a.copy_to_host() if hasattr(a, "copy_to_host") else a


def _read(path):
    """Read a checkpoint into a dict of arrays; clear errors for missing/foreign files."""
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path!r}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as e:  # np.load on a foreign file: BadZipFile, ValueError, OSError...
        raise ValueError(f"{path!r} is not a tinyface checkpoint (np.load(allow_pickle=False) failed: "
                         f"{type(e).__name__}: {e})") from None
    if "__tinyface__" not in arrays:
        raise ValueError(f"{path!r} is not a tinyface checkpoint (no '__tinyface__' record)")
    header = _json(arrays, "__tinyface__", path)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a tinyface checkpoint (bad '__tinyface__' record)")
    if header.get("version", 0) > VERSION:
        raise ValueError(f"{path!r} has checkpoint version {header['version']}; "
                         f"this tinyface reads up to version {VERSION}")
    return path, arrays


def _json(arrays, key, path):
    if key not in arrays:
        raise ValueError(f"checkpoint {path!r} has no {key!r} record")
    try:
        return json.loads(str(arrays[key][()]))
    except (ValueError, TypeError) as e:
        raise ValueError(f"checkpoint {path!r}: {key!r} is not valid JSON ({e})") from None


def _model_state(arrays):
    """``param/x`` and ``buffer/y`` entries as one ``{x: array, y: array}`` dict."""
    state = {}
    for key, value in arrays.items():
        for prefix in ("param/", "buffer/"):
            if key.startswith(prefix):
                state[key[len(prefix):]] = value
    return state


def save_model(path, model, metadata=None):
    """Write ``model``'s parameters, buffers and architecture to ``path`` (``.npz``).

    Args:
        path: target file; ``.npz`` is appended if missing (as ``np.savez`` does).
        model: a ``tinyface.nn.module.Module`` whose layers are registered.
        metadata: optional JSON-able dict (NumPy scalars/arrays are converted).

    Returns:
        the path written. The write is atomic (temp file, fsync, ``os.replace``).
    """
    path = _with_suffix(path)
    return _atomic_savez(path, _model_arrays(model, metadata, "model"))


def load_model(path):
    """Rebuild a model from a checkpoint: ``(model, metadata)``.

    The architecture is rebuilt with ``build_layer(config)``, after importing the
    modules that define its layer types (the header's ``"layers"``, or
    ``LEGACY_LAYER_MODULES`` for older files), then the weights are loaded into it.
    """
    path, arrays = _read(path)
    config = _json(arrays, "architecture", path)
    try:
        _import_layers(_json(arrays, "__tinyface__", path), config)
        model = build_layer(config)
    except Exception as e:
        raise ValueError(f"checkpoint {path!r}: cannot rebuild the architecture: {e}") from e
    _load_into(model, arrays, path)
    return model, _json(arrays, "metadata", path)


def _load_into(model, arrays, path):
    for key, value in arrays.items():
        if key.startswith(("param/", "buffer/")) and value.dtype.kind == "f" \
                and not np.all(np.isfinite(value)):
            bad = int(value.size - np.count_nonzero(np.isfinite(value)))
            raise ValueError(f"checkpoint {path!r}: tensor {key.split('/', 1)[1]!r} holds {bad} "
                             f"non-finite value(s) (NaN or inf): the file is damaged, or was "
                             f"saved from a run that diverged")
    try:
        model.load_state_dict(_model_state(arrays))
    except ValueError as e:
        raise ValueError(f"checkpoint {path!r} does not fit this model: {e}") from None


def load_metadata(path):
    """A checkpoint's metadata dict, without building its model."""
    path, arrays = _read(path)
    return _json(arrays, "metadata", path)


def load_weights(model, path):
    """Load a checkpoint's parameters and buffers into an existing ``model``, in place.

    Raises ``ValueError`` naming the first missing, unexpected or mismatched tensor
    (with the model's shape and the file's shape) if the architectures differ.
    Returns the checkpoint's metadata dict.
    """
    path, arrays = _read(path)
    _load_into(model, arrays, path)
    return _json(arrays, "metadata", path)


def save_training_state(path, model, optimizer, epoch, extra=None):
    """Write everything needed to resume training exactly.

    Args:
        path: target ``.npz`` file (written atomically, like ``save_model``).
        model: the model; its weights, buffers and architecture are saved.
        optimizer: a ``tinyface.optim.Optimizer``; its ``state_dict()`` is saved.
        epoch: int, the number of completed epochs (or steps).
        extra: JSON-able dict, e.g. ``{"rng": rng.bit_generator.state, "best": 0.93}``.

    Returns:
        the path written. ``load_model`` can also read this file.
    """
    path = _with_suffix(path)
    arrays = _model_arrays(model, None, "training")
    sd = optimizer.state_dict()
    scalars = {}
    for name, st in sd["state"].items():
        scalars[name] = {}
        for key, value in st.items():
            if isinstance(value, np.ndarray):
                arrays[f"optim/{name}/{key}"] = value
            else:
                scalars[name][key] = value
    arrays["optim_state"] = _json_array({"type": sd["type"], "hyperparams": sd["hyperparams"],
                                         "scalars": scalars})
    arrays["training"] = _json_array({"epoch": int(epoch), "extra": {} if extra is None else extra})
    return _atomic_savez(path, arrays)


def load_training_state(path, model, optimizer):
    """Restore ``model`` and ``optimizer`` in place from ``save_training_state`` output.

    Returns:
        ``(epoch, extra)``: the saved epoch (int) and the ``extra`` dict.
    """
    path, arrays = _read(path)
    if "optim_state" not in arrays or "training" not in arrays:
        raise ValueError(f"checkpoint {path!r} holds a model only, not a training state")
    meta = _json(arrays, "optim_state", path)
    state = {name: dict(values) for name, values in meta["scalars"].items()}
    for key, value in arrays.items():
        if key.startswith("optim/"):
            name, sub = key[len("optim/"):].rsplit("/", 1)
            state.setdefault(name, {})[sub] = value
    old = optimizer.state_dict()
    try:  # both loads check everything before writing; undo the first if the second fails
        optimizer.load_state_dict({"type": meta["type"], "hyperparams": meta["hyperparams"],
                                   "state": state})
    except ValueError as e:
        raise ValueError(f"checkpoint {path!r} does not fit this optimizer: {e}") from None
    try:
        _load_into(model, arrays, path)
    except ValueError:
        optimizer.load_state_dict(old)
        raise
    training = _json(arrays, "training", path)
    return training["epoch"], training["extra"]
