"""Cython: the whole training loop in C (``fastnn_ext``), no Python per iteration.

The kernels live in ``fastnn_ext/_core.pxi`` (its "Design" comment explains
the layout, the threading and the Gram trick for a huge first layer); this
module only picks threads, builds the kernel's plan from the arrays Network
hands over, and calls ``on_cost`` between chunks of ``cost_every`` iterations.

Two builds of the same kernels exist: ``"vec"`` (auto-vectorized, libmvec
exp/tanh) and ``"novec"`` (no auto-vectorization, scalar libm), selectable with
:func:`use_variant` for the SIMD ablation benchmark.

Products: on an AVX-512 CPU, ``"vec"`` runs them on fastnn's own packed GEMM
(``fastnn_ext/_gemm.h``; compiled for AVX-512 even in a portable build, picked
at run time), which beats the BLAS scipy ships on this project's machines;
:func:`use_gemm` switches to BLAS for comparison. Other CPUs, and ``"novec"``,
use BLAS.

Importing this module raises ImportError when ``fastnn_ext`` is not built; the
backend registry then reports ``cython`` as unavailable.
"""

import os
import re
import shutil
import subprocess

import numpy as np

from .. import activations as _act
from .. import losses as _losses
from . import _blas

try:
    from fastnn_ext import _kernels as _vec
except ImportError as exc:  # not built: the registry reports the reason
    raise ImportError(
        f"fastnn_ext is not built ({exc}); run `pip install -e .` to compile it"
    ) from exc
try:
    from fastnn_ext import _kernels_novec as _novec
except ImportError:  # pragma: no cover - both are built together
    _novec = None

__all__ = ["forward", "backward", "train", "info", "simd_evidence", "use_variant", "variant",
           "use_gemm", "gemm", "gemm_available", "DESCRIPTION"]
SLOW = False
COMPILED = True
HAS_GRAM = True

DESCRIPTION = ("Cython fastnn_ext: training loop in C, own AVX-512 GEMM (else BLAS), "
               "libmvec-vectorized activations, OpenMP over examples")

_VARIANTS = {"vec": _vec, "novec": _novec}
_ext = _vec

#: threads=None uses all cores from this much work per iteration, counted in
#: multiply-adds (m * sum n_l n_{l-1}) plus ACT_COST per activation value
#: (m * sum n_l: exp/tanh and the elementwise passes); below it the second
#: thread's start and join cost more than it saves. Measured on the idle 2-core
#: machine (a sweep of nets and m, best of 5 runs, 1 vs 2 threads):
#: 2-4-1 tanh gains 1.55x at m = 10 000 (5.2e5 units) and loses at m = 2000
#: (1e5: 0.73x); 20-16-1 gains 1.13x at m = 2000 (9.4e5) and loses at m = 400
#: (1.9e5: 0.5x). The crossover sits near 3e5-5e5 units.
AUTO_THREADS_MIN_WORK = 500_000
ACT_COST = 8

#: Layer 1 in one pass over X per iteration (update fused with the next
#: forward) when its output is at most this wide and X is at least ONEPASS_MIN_BYTES.
ONEPASS_MAX_N1 = 32
ONEPASS_MIN_BYTES = 4 << 20
#: "auto", True (whenever the Gram mode is not used) or False.
ONEPASS = "auto"
#: Bytes of X per cache block in one-pass mode (L2 is 2 MiB per core here).
ONEPASS_BLOCK_BYTES = 1 << 20

#: ``gram=None`` never allocates a Gram matrix X^T X (m x m) larger than this.
GRAM_MAX_BYTES = 256 << 20


def use_variant(name):
    """Select the ``"vec"`` or ``"novec"`` build of the kernels for later calls."""
    global _ext
    if name not in _VARIANTS or _VARIANTS[name] is None:
        raise ValueError(f"unknown or unbuilt variant {name!r}; expected one of {list(_VARIANTS)}")
    _ext = _VARIANTS[name]


def variant():
    """The name of the kernel build in use."""
    return _ext.VARIANT


def use_gemm(name):
    """Route the products of later calls to ``"own"`` (fastnn's GEMM) or ``"blas"``.

    ``"own"`` needs ``gemm_available()``. The setting is the ``"vec"`` build's;
    the ``"novec"`` build always uses BLAS.
    """
    if name not in ("own", "blas"):
        raise ValueError(f"gemm must be 'own' or 'blas', got {name!r}")
    if name == "own" and not _vec.HAVE_OWN_GEMM:
        raise ValueError("fastnn_ext's own GEMM is not available: it needs an AVX-512 CPU "
                         "and a gcc build (or clang with AVX-512 in -march)")
    _vec._use_own_gemm(name == "own")


def gemm():
    """``"own"`` or ``"blas"``: what the current variant's products run on."""
    return "own" if _ext._use_own_gemm(None) else "blas"


def gemm_available():
    """Whether fastnn's own GEMM is built and this CPU can run it."""
    return bool(_vec.HAVE_OWN_GEMM)


def _n_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _work(Ws, m, gram=False):
    """Per-iteration work in multiply-add units (see AUTO_THREADS_MIN_WORK)."""
    work = m * sum(W.size for W in (Ws[1:] if gram else Ws))
    if gram:  # layer 1 costs n_1 m^2 per iteration, not n_1 n_0 m
        work += Ws[0].shape[0] * m * m
    return work + ACT_COST * m * sum(W.shape[0] for W in Ws)


def _threads(threads, Ws, m, gram=False):
    if threads is None:
        threads = _n_cores() if _work(Ws, m, gram) >= AUTO_THREADS_MIN_WORK else 1
    if not _ext.HAVE_OPENMP:
        return 1
    # Every thread gets a non-empty chunk of examples, and one private copy of
    # every dW and db: more threads than cores would only cost memory.
    return max(1, min(int(threads), _n_cores(), m))


def _codes(acts):
    return [_act.CODES[a] for a in acts]


def forward(Ws, bs, acts, X, threads=None):
    net = _ext._Net(list(Ws), list(bs), _codes(acts), X, _threads(threads, Ws, X.shape[1]))
    with _blas.limit(1):
        net.forward()
    caches, A_prev = [], X
    for W, b, Z, A in zip(Ws, bs, net.Zs, net.As):
        caches.append(((A_prev, W, b), Z))
        A_prev = A
    return A_prev, caches


def backward(AL, Y, caches, acts, loss, threads=None):
    Ws = [c[0][1] for c in caches]
    bs = [c[0][2] for c in caches]
    Zs = [np.ascontiguousarray(c[1]) for c in caches]
    As = [np.ascontiguousarray(c[0][0]) for c in caches[1:]] + [np.ascontiguousarray(AL)]
    X = np.ascontiguousarray(caches[0][0][0])
    net = _ext._Net(Ws, bs, _codes(acts), X, _threads(threads, Ws, X.shape[1]), Zs, As)
    net.set_Y(np.ascontiguousarray(Y, dtype=X.dtype))
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    with _blas.limit(1):
        net.backward_into(_losses.CODES[loss], dWs, dbs)
    return dWs, dbs


def _use_gram(Ws, X, num_iterations, gram=None):
    """Whether layer 1 trains through X^T X: ``gram`` True/False decides; None
    lets the cost model pick it when it saves at least half the work."""
    n0, m = X.shape
    if gram is not None:
        return bool(gram)
    if n0 <= m or m * m * X.itemsize > GRAM_MAX_BYTES:
        return False
    n1 = Ws[0].shape[0]
    # A product with fewer than ~8 output rows is bound by reading X, not by
    # its multiply-adds: price the direct path as if it had 8.
    direct = num_iterations * 2 * max(n1, 8) * n0 * m
    cost = n0 * m * m + num_iterations * n1 * m * m + n1 * n0 * m
    return cost < 0.5 * direct


def _use_onepass(Ws, X):
    if ONEPASS is True or ONEPASS is False:
        return ONEPASS
    return Ws[0].shape[0] <= ONEPASS_MAX_N1 and X.nbytes >= ONEPASS_MIN_BYTES


def train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every, threads=None,
          on_cost=None, gram=None):
    loss_code = _losses.CODES[loss]
    costs = []
    if num_iterations <= 0:
        return costs
    gram = _use_gram(Ws, X, num_iterations, gram)
    net = _ext._Net(list(Ws), list(bs), _codes(acts), X, _threads(threads, Ws, X.shape[1], gram))
    net.set_Y(Y)
    with _blas.limit(1):
        if gram:
            net.enable_gram()
        elif _use_onepass(Ws, X):
            net.enable_onepass(ONEPASS_BLOCK_BYTES)
        try:
            net.forward()
            i = 0
            while i < num_iterations:
                J = net.cost(loss_code)
                costs.append((i, J))
                if on_cost is not None and on_cost(i, J) is False:
                    break
                count = min(cost_every, num_iterations - i)
                i += count
                net.run(loss_code, learning_rate, count, i == num_iterations)
        finally:
            net.finish_gram(learning_rate)
    return costs


def info():
    """Build and runtime facts for reports."""
    blas = "scipy.linalg.cython_blas"
    if _blas.describe():
        blas += f" ({_blas.describe()})"
    return {
        "variant": _ext.VARIANT,
        "compile_flags": _ext.COMPILE_FLAGS,
        "compile_flags_novec": None if _novec is None else _novec.COMPILE_FLAGS,
        "openmp": _ext.HAVE_OPENMP,
        "blas": blas,
        "gemm": ("own AVX-512 GEMM (fastnn_ext/_gemm.h)" if gemm() == "own"
                 else f"BLAS: {blas}"),
        "threads_max": _n_cores() if _ext.HAVE_OPENMP else 1,
        "auto_threads_min_work": AUTO_THREADS_MIN_WORK,
        "module": _ext.__file__,
    }


# Kernel functions whose disassembly shows whether the math is SIMD.
_HOT = ("_bias_act", "_times_derivative", "_gemm_nn", "_gemm_tn", "_gemm_nt", "_backward_chunk",
        "_forward_chunk")
_FUNC = re.compile(r"<__pyx_fuse_(\d)__pyx_f_\w*?_kernels(?:_novec)?_(_\w+?)(?:\.\w+)*>:$")
_PACKED = re.compile(r"\s(v?\w+p[sd])\s+.*%[xyz]mm")
_SCALAR = re.compile(r"\s(v?\w+s[sd])\s+.*%xmm")
_GEMM_KERNEL = re.compile(r"<fastnn_([ds])gemm_kernel(?:\.\w+)*>:$")
_MVEC = re.compile(r"<(_ZGV\w+)@plt>")
_NOT_ARITH = ("vmov", "mov", "vbroadcast", "vperm", "vpxor", "vxorp", "vunpck", "vshuf", "vinsert",
              "vextract", "vblend", "vpblend", "vandp", "vorp")


def _new_stats():
    return {"packed": 0, "packed_ymm": 0, "packed_zmm": 0, "scalar": 0, "libmvec_calls": {}}


def simd_evidence(which=None):
    """Counts of packed vs scalar FP instructions and libmvec calls in the hot kernels.

    Parameters
    ----------
    which : {"vec", "novec"} or None
        The build to disassemble (None: both).

    Returns
    -------
    dict
        One entry per build (``"vec"``, ``"novec"``: totals over the hot kernels,
        plus ``"functions"``, how many were found) and one per build, kernel
        and dtype (e.g. ``"vec _bias_act float64"``), each ``{"packed": n,
        "packed_ymm": n, "packed_zmm": n, "scalar": n, "libmvec_calls":
        {symbol: count}}``; ``{"error": reason}`` when objdump is not available.
        Packed counts exclude moves, shuffles and blends: arithmetic only.
    """
    objdump = shutil.which("objdump")
    if objdump is None:
        return {"error": "objdump not found (apt-get install binutils)"}
    out = {}
    for name, mod in _VARIANTS.items():
        if mod is None or (which is not None and name != which):
            continue
        text = subprocess.run([objdump, "-d", "--no-show-raw-insn", mod.__file__],
                              capture_output=True, text=True, check=True).stdout
        total = dict(_new_stats(), functions=0)
        per = {}
        current = None
        for line in text.splitlines():
            if line.endswith(">:"):
                fm, gm = _FUNC.search(line), _GEMM_KERNEL.search(line)
                key = None
                if fm and fm.group(2) in _HOT:
                    # Cython numbers fused specializations in declaration order: float, double.
                    key = f"{name} {fm.group(2)} {'float32' if fm.group(1) == '0' else 'float64'}"
                elif gm:  # the own GEMM's micro-kernel (and its clones)
                    key = f"{name} gemm_kernel {'float64' if gm.group(1) == 'd' else 'float32'}"
                current = None if key is None else per.setdefault(key, _new_stats())
                total["functions"] += key is not None
                continue
            if current is None:
                continue
            for stats in (current, total):
                mv = _MVEC.search(line)
                if mv:
                    calls = stats["libmvec_calls"]
                    calls[mv.group(1)] = calls.get(mv.group(1), 0) + 1
                mp = _PACKED.search(line)
                if mp and not mp.group(1).startswith(_NOT_ARITH):
                    stats["packed"] += 1
                    stats["packed_ymm"] += "%ymm" in line
                    stats["packed_zmm"] += "%zmm" in line
                elif _SCALAR.search(line) and not line.split()[-2].startswith(_NOT_ARITH):
                    stats["scalar"] += 1
        out[name] = total
        out.update(sorted(per.items()))
    return out
