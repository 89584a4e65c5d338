"""``FaceNet``: a face CNN with two heads, the embedding and the identity classifier.

    x (N, 3, S, S) --features--> embedding (N, D) --[dropout]--> classifier --> logits (N, K)

``features`` is a ``Sequential`` built from the spec (convs ..., ``GlobalAvgPool2d``,
``Linear(C, D)``, optionally ``BatchNorm1d(D)``); ``classifier`` is ``Linear(D, K)``.
Distillation regresses the embedding while the classifier learns the identities, so
both outputs and both gradients are first-class::

    emb, logits = model.forward_both(x)           # (N, D), (N, K)
    dx = model.backward_both(demb, dlogits)       # either may be None

A ``FaceNet`` is a registered layer whose ``config()`` holds its spec, so
``tinyface.checkpoint.save_model`` / ``load_model`` round-trip it (import
``tinyface.models`` before ``load_model`` so that ``FaceNet`` is registered).
"""
from tinyface import nn
from tinyface.models.spec import build_features, normalize_spec
from tinyface.nn.module import Module, register_layer


@register_layer
class FaceNet(Module):
    """Embedding trunk plus identity classifier, built from a spec (see ``models.spec``).

    Children: ``features`` (``Sequential``), ``dropout`` (only when ``spec["dropout"] > 0``)
    and ``classifier`` (``Linear(D, K)``). Parameter names: ``features.0.weight``, ...,
    ``classifier.weight``, ``classifier.bias``.
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
        self._have_forward = False

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

    def _check(self, x):
        x = self.check_input(x)
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            c, s, _ = self.input_shape
            raise ValueError(f"{self!r}: expected faces of shape (N, {c}, {s}, {s}), got {x.shape}")
        return x

    # ----------------------------------------------------------------- compute
    def embed(self, x):
        """x: (N, C, S, S) -> embedding (N, D) (no classifier).

        It caches like a forward pass: ``backward_both(demb, None)`` may follow it.
        """
        emb = self.features.forward(self._check(x))
        self._have_forward = "embed"
        return emb

    def forward_both(self, x):
        """x: (N, C, S, S) -> ``(embedding (N, D), logits (N, K))``."""
        emb = self.features.forward(self._check(x))            # (N, D)
        h = self.dropout.forward(emb) if self.dropout is not None else emb
        logits = self.classifier.forward(h)                    # (N, K)
        self._have_forward = "both"
        return emb, logits

    def forward(self, x):
        """x: (N, C, S, S) -> logits (N, K)."""
        return self.forward_both(x)[1]

    def backward_both(self, dembedding, dlogits):
        """Gradients of the loss w.r.t. the embedding (N, D) and/or the logits (N, K).

        Either may be ``None`` (that head gets no gradient; the classifier's ``grads``
        are untouched when ``dlogits`` is None). Parameter gradients accumulate into
        ``grads``. Returns dx: (N, C, S, S).
        """
        if dembedding is None and dlogits is None:
            raise ValueError("backward_both: give dembedding, dlogits or both")
        if not self._have_forward:
            raise RuntimeError(f"{self!r}: backward called before forward")
        g = None                                                   # (N, D)
        if dlogits is not None:
            if self._have_forward != "both":
                raise RuntimeError(f"{self!r}: dlogits given after embed(); call forward_both()")
            g = self.classifier.backward(dlogits)
            if self.dropout is not None:
                g = self.dropout.backward(g)
        if dembedding is not None:
            dembedding = self.check_grad(dembedding)
            g = dembedding if g is None else g + dembedding
        return self.features.backward(g)

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
        self._have_forward = False
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


def build_model(spec, seed=None):
    """A ``FaceNet`` from ``spec``; ``seed`` (if not None) goes to ``nn.manual_seed`` first."""
    if seed is not None:
        nn.manual_seed(seed)
    return FaceNet(spec)
