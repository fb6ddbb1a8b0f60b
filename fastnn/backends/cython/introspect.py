"""Introspection of the cython backend: what it is built with and runs on
(:func:`info`), and the machine code of its hot kernels (:func:`hot_code`,
from ``objdump``) that :mod:`fastnn.report.simd` counts. Nothing here runs
during a fit.

Cython names a ``cdef`` function of module ``fastnn_ext.<stem>`` in the binary
as ``__pyx_f_10fastnn_ext_<len(stem)><stem>_<name>``, a fused one as
``__pyx_fuse_<k>`` + that (k = 0 float, 1 double, in declaration order); gcc
may add clone suffixes (``.constprop.0``, ``.isra.0``). The C kernels of the
headers keep their C names.
"""

import re
import shutil
import subprocess

from .. import _blas
from .. import _threads as _thread_policy
from .engine import AUTO_THREADS_MIN_WORK
from .paths import active as _active
from .paths import built, current, isas, module

__all__ = ["info", "hot_code", "HOT"]


def _march(flags):
    found = re.findall(r"-march=(\S+)", flags)
    return found[-1] if found else "compiler default"


def info():
    """Build and runtime facts for reports.

    ``"isa"`` is the kernel set in use, ``"isas"`` those this CPU runs,
    ``"kernel_sets"`` which were built here (``True``, or why not: see
    setup.py), ``"march"`` the build's baseline (what every module may assume),
    ``"gemm"`` where GEMM-shaped products go, ``"small_products"`` where
    narrow chunks' (a mini-batch's) go.
    """
    from fastnn_ext import _cpu

    state = current()
    ext = _active()
    novec = module(state["isa"], "novec")
    wheel = _blas.cython_pointers()  # what the module calls: the wheel's, or scipy's
    on_wheel = any(wheel) and ext._blas_addresses() == wheel
    described = _blas.describe("cython" if on_wheel else "scipy")
    blas = (("the scipy-openblas32 wheel" if on_wheel else "scipy.linalg.cython_blas")
            + (f" ({described})" if described else ""))
    floor = ext._own_gemm_min_macs(None)
    return {
        "isa": state["isa"],
        "isas": isas(),
        "kernel_sets": built(),
        "march": _march(module("baseline").COMPILE_FLAGS) if built()["baseline"] is True
        else "no baseline kernel set built",
        "march_in_use": _march(ext.COMPILE_FLAGS),
        "cpu_levels": _cpu.features(),
        "variant": state["variant"],
        "compile_flags": ext.COMPILE_FLAGS,
        "compile_flags_novec": novec.COMPILE_FLAGS,
        "openmp": ext.HAVE_OPENMP,
        "blas": blas,
        "gemm": {"own": f"own {ext.GEMM_KERNEL} GEMM (fastnn_ext/_gemm.h)",
                 "auto": f"auto: own {ext.GEMM_KERNEL} GEMM for products with a side below 64"
                         + (f" of at least {floor:,} multiply-adds" if floor else "")
                         + f", BLAS ({blas}) for the others",
                 "blas": f"BLAS: {blas}"}[state["gemm"]],
        "small_products": (f"register tiles (fastnn_ext/_small.h) for chunks of 8 to "
                           f"{ext.SMALL_MAX_COLS} columns" if ext.HAVE_SMALL_PRODUCTS
                           else "none (loops and GEMM only)"),
        "threads_max": _thread_policy.cpu_budget()[0] if ext.HAVE_OPENMP else 1,
        "auto_threads_min_work": AUTO_THREADS_MIN_WORK,
        "module": ext.__file__,
    }


#: Kernels whose machine code shows whether the math is SIMD: the page's
#: (activation_forward/backward are inlined into these; the optimizers' update
#: rules into update_parameters) and the engine's (dropout's mask hash is
#: inlined into _forward_chunk).
HOT = ("linear_activation_forward", "softmax_forward", "output_dZ", "linear_backward",
       "update_parameters", "product", "_vector", "_loops_nn", "_loops_nt", "_loops_tn",
       "_forward_chunk", "_backward_chunk", "_onepass_rows")
_GEMM_KERNEL = re.compile(r"<fastnn_([ds])gemm\w*kernel\w*(?:\.\w+)*>:$")
#: The one-pass first layer's register tiles (_first_layer.h), and the small
#: products' (_small.h: a mini-batch's products).
_FIRST_LAYER = re.compile(r"^fl_(dw|fwd)_tile_(?:full|1)_f(64|32)(?:\.\w+)*$")
_SMALL = re.compile(r"^sm_(nn)_tile_(?:full|row|vec|1)_f(64|32)(?:\.\w+)*$")
_disassembly = {}


def _functions(path):
    """``{symbol: assembly}`` of a shared object, from objdump (cached)."""
    if path not in _disassembly:
        text = subprocess.run([shutil.which("objdump"), "-d", "--no-show-raw-insn", path],
                              capture_output=True, text=True, check=True).stdout
        funcs, name = {}, None
        for line in text.splitlines():
            if line.endswith(">:"):
                name = line[line.index("<") + 1:-2]
                funcs[name] = []
            elif name is not None and line.strip():
                funcs[name].append(line)
        _disassembly[path] = {k: "\n".join(v) for k, v in funcs.items()}
    return _disassembly[path]


def hot_code():
    """``{"<kernel> <dtype>": assembly}`` of the hot kernels of the module in use.

    Raises ``RuntimeError`` without objdump (``apt-get install binutils``).
    """
    if shutil.which("objdump") is None:
        raise RuntimeError("objdump not found (apt-get install binutils)")
    ext = _active()
    stem = ext.__name__.rsplit(".", 1)[1]
    fused = re.compile(rf"^__pyx_fuse_(\d)__pyx_f_10fastnn_ext_{len(stem)}{stem}_"
                       rf"({'|'.join(HOT)})(?:\.\w+)*$")
    out = {}
    for symbol, asm in _functions(ext.__file__).items():
        fm, gm = fused.match(symbol), _GEMM_KERNEL.match(f"<{symbol}>:")
        lm = _FIRST_LAYER.match(symbol)
        sm = _SMALL.match(symbol)
        if fm:  # Cython numbers fused specializations in declaration order: float, double
            key = f"{fm.group(2)} {'float32' if fm.group(1) == '0' else 'float64'}"
        elif gm:
            key = f"gemm_kernel {'float64' if gm.group(1) == 'd' else 'float32'}"
        elif lm:
            key = f"first_layer_{lm.group(1)} {'float64' if lm.group(2) == '64' else 'float32'}"
        elif sm:
            key = f"small_{sm.group(1)} {'float64' if sm.group(2) == '64' else 'float32'}"
        else:
            continue
        out[key] = out[key] + "\n" + asm if key in out else asm
    return dict(sorted(out.items()))
