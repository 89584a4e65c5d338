"""Where a batch is computed: host <-> device copies for the loop and the evaluation.

Under the CUDA backend (``tinyface.backend.set_backend("cuda")``) the model lives on the GPU:
each training batch is copied up once (``input_batch``) and the logits come down once,
for the running accuracy (``host_array``). On the CPU both pass their array through.
``tinyface.cuda`` loads numba.cuda only when one of its names is first used, so these
cost nothing on a machine without a GPU.
"""
from tinyface import cuda
from tinyface.backend import get_backend, is_device_array


def host_array(a):
    """``a`` as a NumPy array: a GPU array is copied down explicitly, a host one passes."""
    return cuda.to_host(a) if is_device_array(a) else a


def input_batch(x):
    """A float32 batch where the active backend computes: copied up explicitly under
    the CUDA backend, unchanged otherwise."""
    return cuda.to_device(x) if get_backend() == "cuda" else x
