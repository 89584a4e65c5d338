"""The method variants' terms on the CUDA tier: one GPU loss per method, by name.

``CUDA_LOSSES[name]`` is the GPU twin of ``METHODS[name].loss``
(``tinyface.distill.methods``): the same ``(s, inputs) -> (loss, ds)``, reading the same
teacher side from the bank, but with ``s`` an (l, ...) float32 DeviceTensor and ``ds``
one too, computed by the kernels of ``tinyface.cuda.kd_*`` (forward and backward on the
GPU). ``cuda_method_term`` wraps it for ``DistillStep.method_term``: it gathers the
labelled rows of the batch's student side on the GPU, takes the loss, and scatters
``weight * ds`` into a zeroed (b, ...) device gradient.

What crosses between host and device per step: up, the small index arrays (the batch
rows ``sel``, CRD's positives and negatives, DKD's labels) and the bank's teacher rows
of the batch (CRD: the whole bank of teacher embeddings); down, the per-face losses,
summed into the scalar loss. The student side and its gradient never leave the GPU.
``tinyface.cuda`` loads numba.cuda only when one of these losses is first called.
"""
from tinyface import cuda as tcuda
from tinyface.distill.methods import CRD_TAU, crd_negatives

__all__ = ["CUDA_LOSSES", "cuda_method_term"]


def _teacher(inputs):
    return inputs.bank.embeddings[inputs.rows]                           # (l, Dt), host


def _sp(s, inputs):
    return tcuda.sp_loss(s, _teacher(inputs))


def _rkd(s, inputs):
    return tcuda.rkd_loss(s, _teacher(inputs))


def _pkt(s, inputs):
    return tcuda.pkt_loss(s, _teacher(inputs))


def _fsim(s, inputs):
    return tcuda.fsim_loss(s, _teacher(inputs))


def _crd(s, inputs):
    neg = crd_negatives(inputs.rows, inputs.bank.n, inputs.seed, inputs.step)
    return tcuda.crd_loss(s, inputs.bank.embeddings, inputs.rows, neg, tau=CRD_TAU)


def _dkd(s, inputs):
    return tcuda.dkd_loss(s, inputs.bank.logits[inputs.rows], inputs.labels, T=inputs.T)


def _at(s, inputs):
    bank = inputs.bank
    if bank.attention is None:
        raise ValueError("variant 'at' needs the teacher's attention maps in the feature "
                         "bank: extract_bank(..., attention_size=(H, W))")
    return tcuda.attention_rows_loss(s, bank.attention[inputs.rows])   # s: (l, C, H, W)


CUDA_LOSSES = {"sp": _sp, "rkd": _rkd, "pkt": _pkt, "fsim": _fsim, "crd": _crd, "dkd": _dkd,
               "at": _at}


def cuda_method_term(method, side, sel, inputs, weight):
    """The weighted method term of one batch on the GPU.

    method: a ``Method``; side: (b, ...) float32 DeviceTensor, what the method reads for
    the whole batch; sel: (l,) int, the batch rows the term covers (host); inputs: the
    ``MethodInputs`` of those rows; weight: the term's weight.
    Returns ``(loss, grad)``: the unweighted loss (a Python float) and the (b, ...)
    DeviceTensor ``weight * dloss/dside``, zero outside ``sel``.
    """
    loss_fn = CUDA_LOSSES.get(method.name)
    if loss_fn is None:
        raise ValueError(f"method {method.name!r} has no CUDA loss (the CUDA tier has "
                         f"{', '.join(CUDA_LOSSES)}); run it on the CPU tier")
    s = tcuda.gather_rows(side, sel)                                     # (l, ...)
    loss, ds = loss_fn(s, inputs)
    return loss, tcuda.scatter_rows(ds, sel, side.shape, weight)         # (b, ...)
