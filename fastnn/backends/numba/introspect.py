"""What reports read about the ``numba`` backend, outside the hot path:
:func:`info` (versions, flags, threads, the ISA path), :func:`hot_code` (the
hot kernels' assembly) and :func:`compiled` / :func:`compile_times` (which
kernels this process compiled or loaded from the on-disk cache, and what each
compile cost). What a whole first fit costs in a fresh process, with an empty
and with a filled cache, is measured for every compiled backend alike by
:func:`fastnn.report.machine.first_call_costs`.

Nothing here wraps a kernel call: compile times come from Numba's own
``numba:compile`` events, which fire only while compiling.
"""

import logging
import os
import time

import numba
import numpy as np
from numba.core import event

from .. import _blas
from ... import activations as _act
from . import config, engine_room, first_layer, layers, second_room, simd_math

__all__ = ["info", "hot_code", "kernels", "compiled", "compile_times"]

log = logging.getLogger("fastnn")


def kernels():
    """``{name: dispatcher}`` of the kernels Python calls: the engine room's
    entry points and the page's kernels behind ``forward``/``backward``."""
    return {
        "full_batch": engine_room.full_batch,
        "forward_cost": engine_room.forward_cost, "epochs": engine_room.epochs,
        "first_layer_threads": first_layer.first_layer_threads,
        "second_full_batch": second_room.full_batch, "second_epochs": second_room.epochs,
        "linear_forward": layers.linear_forward, "linear_backward": layers.linear_backward,
        "output_dZ": layers.output_dZ, "dZ_prev": layers.dZ_prev,
    }


def compiled():
    """``{name: [signature, ...]}`` of the kernels compiled or loaded from the
    cache in this process (kernels never called are absent)."""
    return {name: [str(sig) for sig in k.signatures] for name, k in kernels().items()
            if k.signatures}


_compile_seconds = {}  # "kernel/dtype" -> seconds of its compiles in this process


class _CompileTimer(event.Listener):
    """Times each compile of a :func:`kernels` entry (its callees included)."""

    def __init__(self):
        self._names = {id(k): name for name, k in kernels().items()}
        self._started = {}

    def on_start(self, ev):
        d = ev.data["dispatcher"]
        if id(d) in self._names:
            self._started[id(d), str(ev.data["args"])] = time.perf_counter()

    def on_end(self, ev):
        d = ev.data["dispatcher"]
        start = self._started.pop((id(d), str(ev.data["args"])), None)
        if start is None:
            return
        dtypes = [a.dtype.name for a in ev.data["args"] if isinstance(a, numba.types.Array)
                  and isinstance(a.dtype, numba.types.Float)]
        key = f"{self._names[id(d)]}/{dtypes[0] if dtypes else '-'}"
        seconds = time.perf_counter() - start
        _compile_seconds[key] = _compile_seconds.get(key, 0.0) + seconds
        log.info("numba: compiled %s in %.2f s", key, seconds)


event.register("numba:compile", _CompileTimer())


def compile_times():
    """``{"kernel/dtype": seconds}`` of the kernels compiled in this process,
    and ``"cache"`` for those loaded from Numba's on-disk cache instead."""
    out = dict(_compile_seconds)
    for name, k in kernels().items():
        for sig in k.stats.cache_hits:
            dtypes = [a.dtype.name for a in sig if isinstance(a, numba.types.Array)
                      and isinstance(a.dtype, numba.types.Float)]
            out.setdefault(f"{name}/{dtypes[0] if dtypes else '-'}", "cache")
    return out


def info():
    """Versions, flags, threads and the LLVM target in force, for reports.

    ``"isa"`` is the kernel set LLVM compiles for, from the features it targets:
    ``"avx512"``, ``"avx2"`` (AVX2 + FMA) or ``"baseline"``; ``"llvm_cpu"`` and
    ``"llvm_vector_features"`` what it was told (see ``FASTNN_ISA`` in
    :mod:`.config`).
    """
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = f"not initialised (configured: {numba.config.THREADING_LAYER})"
    cpu, features = config.target()
    simd = ("sse", "ssse", "avx", "fma", "f16c")
    on = [f[1:] for f in features.split(",") if f.startswith("+")]
    from . import AUTO_THREADS_MIN_WORK

    return {
        "numba": numba.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "isa": config.isa_of(features),
        "isa_requested": config.ISA_REQUESTED,
        "isa_error": config.ISA_ERROR,
        "llvm_cpu": cpu,
        "llvm_vector_features": sorted(f for f in on if f.startswith(simd)),
        "fastmath": sorted(config.FASTMATH),
        "fastmath_exp": sorted(config.FASTMATH_EXACT),
        "parallel": "prange only",
        "cache": config.CACHE,
        "cache_dir": os.environ.get("NUMBA_CACHE_DIR") or "(package __pycache__, user fallback)",
        "threading_layer": layer,
        "threads": numba.config.NUMBA_NUM_THREADS,
        "blas": _blas.describe("numba"),
        "blas_min_macs": config.BLAS_MIN_MACS,
        "auto_threads_min_work": AUTO_THREADS_MIN_WORK,
        "compiled": compiled(),
        "compile_times": compile_times(),
    }


def _hot_kernels(dtype):
    """``{name: (kernel, sample arguments)}`` of the kernels a fit spends its time in."""
    f = dtype.type
    code = np.int64(_act.CODES["tanh"])  # codes reach the kernels as int64
    g0 = np.int64(1)
    row = np.zeros(16, dtype)
    Z, W, b = np.zeros((4, 16), dtype), np.zeros((4, 4), dtype), np.zeros((4, 1), dtype)
    work = np.zeros((2, 16), dtype)
    return {
        "activation_forward": (layers.activation_forward, (code, f(0), row, row.copy())),
        "activation_backward": (layers.activation_backward,
                                (code, row, row.copy(), row.copy(), g0)),
        "linear_forward": (layers.linear_forward, (W, b, Z, Z.copy(), Z.copy(), code, work)),
        "linear_backward": (layers.linear_backward, (Z, Z.copy(), W.copy(), b.copy())),
        "dZ_prev": (layers.dZ_prev, (W, Z, Z.copy(), Z.copy(), code, g0, Z.copy())),
        "softmax": (layers.softmax, (Z, Z.copy(), work)),
        "first_layer_block": (first_layer.first_layer_block,
                              (W, Z, Z.copy(), Z.copy(), np.int64(0), np.int64(4), f(0), True)),
        "exp_array": (simd_math.exp_array, (row, row.copy())),
    }


def hot_code():
    """``{"<kernel> <dtype>": assembly}`` of the hot kernels, float64 and float32,
    compiled for the ISA path in force (see :func:`info`).

    Code loaded from Numba's on-disk cache cannot be disassembled, so each is a
    private, uncached copy compiled with the kernel's own options; the page's
    small kernels it calls are inlined into it by LLVM as in the real ones.
    """
    config.check_isa()
    out = {}
    for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
        for name, (kernel, args) in _hot_kernels(dtype).items():
            options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
            fresh = numba.njit(**dict(options, cache=False))(kernel.py_func)
            fresh(*args)
            out[f"{name} {dtype.name}"] = fresh.inspect_asm(fresh.signatures[0])
    return out
