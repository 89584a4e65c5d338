"""``FaceNet``: a face CNN with two heads, the embedding and the identity classifier.

    x (N, 3, S, S) --features--> embedding (N, D) --[dropout]--> classifier --> logits (N, K)

``features`` is a ``Sequential`` built from the spec (convs ..., ``GlobalAvgPool2d``,
``Linear(C, D)``, optionally ``BatchNorm1d(D)``); ``classifier`` is ``Linear(D, K)``.
Distillation regresses the embedding while the classifier learns the identities, so
both outputs and both gradients are first-class::

    emb, logits = model.forward_both(x)           # (N, D), (N, K)
    dx = model.backward_both(demb, dlogits)       # either may be None

Attention transfer reads the last spatial map, the input of the ``GlobalAvgPool2d``
(``pool_index``), and sends a gradient back into it; both are opt-in, and without them
every call computes exactly what it computes without the option::

    emb, logits, fmap = model.forward_both(x, keep_map=True)   # fmap (N, C, H, W)
    dx = model.backward_both(demb, dlogits, dmap)              # dmap (N, C, H, W) or None

A ``FaceNet`` is a registered layer whose ``config()`` holds its spec, so
``tinyface.checkpoint.save_model`` / ``load_model`` round-trip it (import
``tinyface.models`` before ``load_model`` so that ``FaceNet`` is registered).

Input rule: faces go in as float arrays, normally float32 from
``tinyface.data.to_float`` (uint8 0..255 -> [-0.5, 0.5]). The datasets and splits hold
uint8 faces, and an integer array is refused with a one-line ``TypeError`` naming
``to_float`` (cast as is, 0..255 gives garbage activations: 2.5% top-1 instead of 92%)::

    logits = model.forward(to_float(split.lr_test))      # not model.forward(split.lr_test)
"""
import numpy as np

from tinyface import nn
from tinyface.backend import is_device_array
from tinyface.models.spec import build_features, normalize_spec, trunk_shapes
from tinyface.nn import checks
from tinyface.nn.module import Module, register_layer


@register_layer
class FaceNet(Module):
    """Embedding trunk plus identity classifier, built from a spec (see ``models.spec``).

    Children: ``features`` (``Sequential``), ``dropout`` (only when ``spec["dropout"] > 0``)
    and ``classifier`` (``Linear(D, K)``). Parameter names: ``features.0.weight``, ...,
    ``classifier.weight``, ``classifier.bias``.

    Every entry that takes images (``forward``, ``forward_both``, ``embed``) takes
    x: (N, C, S, S) float faces with N >= 1, normally float32 from
    ``tinyface.data.to_float``; host or GPU arrays. Integer dtypes (the uint8 faces of
    ``tinyface.data``) raise ``TypeError`` naming ``to_float``; a wrong shape or an
    empty batch raises ``ValueError`` with the expected and the given shape. The
    gradients given to ``backward`` / ``backward_both`` must have the shapes of the last
    forward's outputs.
    """

    def __init__(self, spec):
        super().__init__()
        self.spec = normalize_spec(spec)
        features, D = build_features(self.spec)
        self.features = self.add_child("features", features)
        self.dropout = None
        if self.spec["dropout"] > 0:
            self.dropout = self.add_child("dropout", nn.Dropout(self.spec["dropout"], seed=0))
        self.classifier = self.add_child("classifier", nn.Linear(D, self.spec["num_classes"]))
        # self.cache: (kind, embedding shape, logits shape) of the last forward, kind
        # "embed" or "both"; None before any forward (and after ``to()``, which clears it)

    # ------------------------------------------------------------------ shapes
    @property
    def input_shape(self):
        """Per-face input shape ``(C, S, S)``."""
        s = self.spec["input_size"]
        return (self.spec["in_channels"], s, s)

    @property
    def embedding_dim(self):
        return self.spec["embedding_dim"]

    @property
    def num_classes(self):
        return self.spec["num_classes"]

    @property
    def map_shape(self):
        """Per-face shape ``(C, H, W)`` of the map before the global average pool."""
        return feature_map_shape(self.spec)

    def pool_index(self):
        """Index of the ``GlobalAvgPool2d`` in ``features``."""
        for i, layer in enumerate(self.features.children()):
            if type(layer).__name__ == "GlobalAvgPool2d":
                return i
        raise ValueError("the FaceNet has no global average pool")

    def _check(self, x, where):
        """Faces as float32 (N, C, S, S), N >= 1, or a one-line error naming ``where``.
        Reads shapes and dtypes only; a GPU array passes through without a copy."""
        if not is_device_array(x):
            x = np.asarray(x)
        checks.refuse_integer_dtype(where, x, "faces")        # uint8 faces: use to_float
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, s, _ = self.input_shape
            raise ValueError(f"{where}: expected faces of shape (N, {c}, {s}, {s}), "
                             f"got {tuple(x.shape)}")
        return self.check_input(x, where=where, what="faces")

    # ----------------------------------------------------------------- compute
    def embed(self, x):
        """x: (N, C, S, S) float faces (``tinyface.data.to_float``) -> embedding (N, D)
        (no classifier).

        It caches like a forward pass: ``backward_both(demb, None)`` may follow it.
        """
        emb = self.features.forward(self._check(x, "FaceNet.embed"))
        self.cache = ("embed", tuple(emb.shape), None)
        return emb

    def forward_both(self, x, keep_map=False):
        """x: (N, C, S, S) float faces -> ``(embedding (N, D), logits (N, K))``.

        keep_map: also return the map before the global average pool, fmap (N, C', H, W)
        (``map_shape``): ``(embedding, logits, fmap)``; the layers run one by one, the
        same operations as ``features.forward``, and ``backward_both`` may then take a
        gradient for fmap (``dmap``).
        """
        if not keep_map:
            return self._forward_both(x, "FaceNet.forward_both")
        x = self._check(x, "FaceNet.forward_both")
        layers, stop = self.features.children(), self.pool_index()
        h = x
        for layer in layers[:stop]:
            h = layer.forward(h)
        fmap = h                                                   # (N, C', H, W)
        for layer in layers[stop:]:
            h = layer.forward(h)
        emb = h                                                    # (N, D)
        h = self.dropout.forward(emb) if self.dropout is not None else emb
        logits = self.classifier.forward(h)                        # (N, K)
        self.cache = ("map", tuple(emb.shape), tuple(logits.shape))
        self.map_cache = tuple(fmap.shape)
        return emb, logits, fmap

    def forward(self, x):
        """x: (N, C, S, S) float faces (``tinyface.data.to_float``) -> logits (N, K)."""
        return self._forward_both(x, "FaceNet.forward")[1]

    def _forward_both(self, x, where):
        emb = self.features.forward(self._check(x, where))     # (N, D)
        h = self.dropout.forward(emb) if self.dropout is not None else emb
        logits = self.classifier.forward(h)                    # (N, K)
        self.cache = ("both", tuple(emb.shape), tuple(logits.shape))
        return emb, logits

    def backward_both(self, dembedding, dlogits, dmap=None):
        """Gradients of the loss w.r.t. the embedding (N, D) and/or the logits (N, K).

        Either may be ``None`` (that head gets no gradient; the classifier's ``grads``
        are untouched when ``dlogits`` is None). Parameter gradients accumulate into
        ``grads``. Returns dx: (N, C, S, S).
        dmap: None, or the gradient w.r.t. the pre-pool map fmap (N, C', H, W) of a
        ``forward_both(x, keep_map=True)``: it is added to the gradient that reaches
        fmap from the heads (the heads' gradients may then both be None).
        """
        where = "FaceNet.backward_both"
        if dmap is not None:
            return self._backward_map(dembedding, dlogits, dmap, where)
        if dembedding is None and dlogits is None:
            raise ValueError(f"{where}: give dembedding, dlogits or both")
        if self.cache is None:
            raise RuntimeError(f"{where} called before forward: run forward_both(x), "
                               f"forward(x) or embed(x) first")
        return self.features.backward(self._head_grad(dembedding, dlogits, where))

    def _head_grad(self, dembedding, dlogits, where):
        """The gradient (N, D) that reaches the embedding from both heads (None if none)."""
        kind, emb_shape, logits_shape = self.cache
        g = None                                                   # (N, D)
        if dlogits is not None:
            if kind not in ("both", "map"):
                raise RuntimeError(f"{where}: dlogits given after embed(); call forward_both()")
            dlogits = self.check_grad(dlogits)
            checks.dout_matches(where, dlogits, logits_shape, what="dlogits")
            g = self.classifier.backward(dlogits)
            if self.dropout is not None:
                g = self.dropout.backward(g)
        if dembedding is not None:
            dembedding = self.check_grad(dembedding)
            checks.dout_matches(where, dembedding, emb_shape, what="dembedding")
            g = dembedding if g is None else g + dembedding
        return g

    def _backward_map(self, dembedding, dlogits, dmap, where):
        """``backward_both`` with a gradient for the pre-pool map (see there)."""
        if self.cache is None or self.cache[0] != "map":
            raise RuntimeError(f"{where}: dmap needs forward_both(x, keep_map=True) first")
        dmap = self.check_grad(dmap)
        checks.dout_matches(where, dmap, self.map_cache, what="dmap")
        layers, stop = self.features.children(), self.pool_index()
        g = self._head_grad(dembedding, dlogits, where)            # (N, D) or None
        if g is not None:
            for layer in reversed(layers[stop:]):
                g = layer.backward(g)
        g = dmap if g is None else g + dmap                        # (N, C', H, W)
        for layer in reversed(layers[:stop]):
            g = layer.backward(g)
        return g

    def backward(self, dlogits):
        """dlogits: (N, K) -> dx (N, C, S, S)."""
        return self.backward_both(None, dlogits)

    # ------------------------------------------------------------- bookkeeping
    def replace_classifier(self, num_classes, seed=None):
        """Put a fresh ``Linear(D, num_classes)`` on top (e.g. new identities).

        seed: if not None, ``tinyface.nn.manual_seed(seed)`` first (reproducible
              weights). An optimizer built on the old parameters must be rebuilt.
        Returns ``self``.
        """
        spec = dict(self.spec, num_classes=num_classes)
        spec = normalize_spec(spec)                               # checks num_classes
        if seed is not None:
            nn.manual_seed(seed)
        self.classifier = self.add_child("classifier", nn.Linear(self.embedding_dim, spec["num_classes"]))
        self.classifier.train(self.training)
        self.spec = spec
        self.cache = None
        return self

    def nbytes(self):
        """Bytes of the float32 parameters (buffers not included: see ``buffer_nbytes``)."""
        return 4 * self.num_parameters()

    def num_buffers(self):
        return int(sum(b.size for _, b in self.named_buffers()))

    def buffer_nbytes(self):
        """Bytes of the buffers (batch-norm running statistics)."""
        return int(sum(b.nbytes for _, b in self.named_buffers()))

    def get_args(self):
        return {"spec": self.spec}

    def config(self):
        return {"type": "FaceNet", "spec": dict(self.spec)}

    def __repr__(self):
        c, s, _ = self.input_shape
        return (f"FaceNet({self.spec['name']}: {c}x{s}x{s} -> {self.embedding_dim}-d embedding "
                f"-> {self.num_classes} classes)")


def feature_map_shape(spec):
    """Per-face shape ``(C, H, W)`` of ``spec``'s map before the global average pool (the
    last stage's output), computed from the spec alone (nothing is built)."""
    return tuple(trunk_shapes(normalize_spec(spec))[-1])


def build_model(spec, seed=None):
    """A ``FaceNet`` from ``spec``; ``seed`` (if not None) goes to ``nn.manual_seed`` first."""
    if seed is not None:
        nn.manual_seed(seed)
    return FaceNet(spec)
