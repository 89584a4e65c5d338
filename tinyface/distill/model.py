"""``DistillStudent``: the student plus the training-only adapter to the teacher's width.

    wrapper = DistillStudent(student, teacher_dim=256, seed=0)
    emb, logits = wrapper.student.forward_both(x)      # (N, Ds), (N, K)
    pred = wrapper.adapter.forward(emb)                 # (N, Dt): A phi_s(x_LR)
    deployable = wrapper.deployable()                   # the bare FaceNet, adapter dropped

Both are children (``student`` and ``adapter``), so ``tinyface.train.fit`` steps both,
and its checkpoints hold both (parameter names ``student.features.0.weight``, ...,
``adapter.weight``, ``adapter.bias``); ``--resume`` restores them exactly. ``forward`` and
``embed`` are the student's, so ``fit``'s validation and the evaluation helpers see the
student alone. The adapter is used only in training: the deployed student's memory is
the student's (``deployable().nbytes()``), whatever the teacher's width.
"""
from __future__ import annotations

import tinyface.models  # noqa: F401  (registers FaceNet with build_layer)
from tinyface import nn
from tinyface.nn.module import Module, build_layer, register_layer

__all__ = ["DistillStudent"]


@register_layer
class DistillStudent(Module):
    """A ``FaceNet`` student with a ``Linear(Ds, Dt)`` adapter, for distillation training.

    student: the ``FaceNet`` (used as is, not copied); adapter: a ``Linear(Ds, Dt)``
    or None to make one (``teacher_dim`` = Dt, initialised after
    ``nn.manual_seed(seed)`` when ``seed`` is not None).
    """

    def __init__(self, student, adapter=None, teacher_dim=None, seed=None):
        super().__init__()
        ds = int(student.embedding_dim)
        if adapter is None:
            if teacher_dim is None:
                raise ValueError("DistillStudent: give an adapter or teacher_dim")
            if seed is not None:
                nn.manual_seed(seed)
            adapter = nn.Linear(ds, int(teacher_dim))
        if adapter.in_features != ds:
            raise ValueError(f"DistillStudent: the adapter takes {adapter.in_features}-d input "
                             f"but the student's embedding is {ds}-d")
        if teacher_dim is not None and adapter.out_features != int(teacher_dim):
            raise ValueError(f"DistillStudent: the adapter gives {adapter.out_features}-d output, "
                             f"teacher_dim is {teacher_dim}")
        self.student = self.add_child("student", student)
        self.adapter = self.add_child("adapter", adapter)
        self.training = student.training
        self.adapter.train(self.training)

    # --------------------------------------------------------------- compute
    def forward(self, x):
        """x: (N, C, S, S) -> the student's logits (N, K)."""
        return self.student.forward(x)

    def backward(self, dlogits):
        return self.student.backward(dlogits)

    def embed(self, x):
        """x -> the student's embedding (N, Ds) (what is deployed)."""
        return self.student.embed(x)

    def deployable(self):
        """The bare student ``FaceNet`` (the same object, not a copy), in eval mode."""
        return self.student.eval()

    # ----------------------------------------------------------- properties
    @property
    def input_shape(self):
        return self.student.input_shape

    @property
    def num_classes(self):
        return self.student.num_classes

    @property
    def embedding_dim(self):
        return self.student.embedding_dim

    @property
    def teacher_dim(self):
        return self.adapter.out_features

    def adapter_parameters(self):
        return self.adapter.num_parameters()

    # --------------------------------------------------- architecture record
    def config(self):
        return {"type": "DistillStudent", "student": self.student.config(),
                "adapter": self.adapter.config()}

    @classmethod
    def from_config(cls, config):
        return cls(build_layer(config["student"]), build_layer(config["adapter"]))

    def __repr__(self):
        return (f"DistillStudent({self.student!r} + adapter {self.adapter.in_features}"
                f"->{self.adapter.out_features})")
