"""The SIMD width the Numba kernels are compiled for, and what this machine has.

On Intel cores with AVX-512, LLVM prefers 256-bit vectors (its ``prefer-256-bit``
tuning), so numba's loops use half of each FMA unit unless told otherwise. The blocked
GEMM (``tinyface.kernels.gemm_blocked``) is written to fill 512-bit registers:
importing ``tinyface`` therefore asks numba for full-width vectors where the CPU has
AVX-512, by setting ``NUMBA_CPU_FEATURES`` to the host's features minus that
preference. Numba reads its setting when it makes its code generator, at the first
function it jits, so this works when ``tinyface`` is imported before anything is
jitted (``import numba`` first is fine); ``vector_width()`` says what is in effect,
and ``bench kernels`` prints it beside every figure.

``TINYFACE_VECTOR_WIDTH=256`` keeps LLVM's choice; a ``NUMBA_CPU_FEATURES`` the user
set is always left alone. Numba's on-disk cache is keyed by the CPU features, so the
two widths never share compiled code. This module imports no numba.
"""
import os
import sys
from pathlib import Path

import llvmlite.binding as llvm   # numba's LLVM; importing it does not import numba

ENV = "TINYFACE_VECTOR_WIDTH"
WIDTHS = ("512", "256")
NO_PREFERENCE = "-prefer-256-bit"


def _host_features():
    """LLVM's features of this CPU as a dict name -> bool (llvmlite, numba's own LLVM)."""
    return dict(llvm.get_host_cpu_features())


def _numba_target_pending():
    """True while numba's CPU target has made no code generator yet (nothing jitted in
    this process), so that its CPU features can still be chosen."""
    from numba.core.registry import cpu_target  # late on purpose: this module must run
    #                                                before numba's import (widen)
    return "_toplevel_target_context" not in vars(cpu_target)


def widen(environ=os.environ, modules=sys.modules, features=_host_features,
          pending=_numba_target_pending):
    """Ask numba for 512-bit vectors on an AVX-512 CPU; returns True when it set them.

    Before numba is imported, the environment variable does it; after, numba's setting,
    as long as nothing has been jitted yet. Leaves everything as it is when something
    has, when the user set ``NUMBA_CPU_FEATURES``, when ``TINYFACE_VECTOR_WIDTH`` is
    256, or when the CPU lacks AVX-512.
    """
    width = environ.get(ENV, "512")
    if width not in WIDTHS:
        raise ValueError(f"{ENV}={width!r}: choose {' or '.join(WIDTHS)}")
    imported = modules.get("numba")
    if width == "256" or environ.get("NUMBA_CPU_FEATURES") or (imported and not pending()):
        return False
    host = features()
    if not host.get("avx512f"):
        return False
    flags = ",".join(("+" if on else "-") + name for name, on in sorted(host.items())
                     if name != NO_PREFERENCE[1:])
    environ["NUMBA_CPU_FEATURES"] = f"{flags},{NO_PREFERENCE}"   # also for child processes
    if imported:
        imported.config.CPU_FEATURES = environ["NUMBA_CPU_FEATURES"]
    return True


def vector_width():
    """The widest vectors numba's loops may use here: 512, 256 or 128 (bits)."""
    import numba  # late on purpose: at the top it would import numba before widen ran
    host = _host_features()
    if not host.get("avx512f"):
        return 256 if host.get("avx2") else 128
    chosen = numba.config.CPU_FEATURES or ""
    return 512 if NO_PREFERENCE in chosen.split(",") else 256


def cpu_description():
    """The CPU in one dict: model, cores numba may use, SIMD width, L1d and L2 per core."""
    import numba  # late on purpose, as in vector_width
    info = {}                                       # the first core's "key: value" lines
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        if not key.strip():
            break
        info.setdefault(key.strip(), value.strip())
    model = (f"{info.get('model name', 'unknown')} (family {info.get('cpu family', '?')} "
             f"model {info.get('model', '?')})")
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level, kind, size = ((index / f).read_text().strip() for f in ("level", "type", "size"))
        except OSError:
            continue
        if kind in ("Data", "Unified") and level in ("1", "2"):
            caches[f"L{level}"] = size
    return {"model": model, "cores": os.cpu_count(), "threads": numba.get_num_threads(),
            "vector_bits": vector_width(), "L1d": caches.get("L1", "?"),
            "L2": caches.get("L2", "?")}
