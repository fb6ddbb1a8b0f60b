"""Numba: the lecture's forward/backward/update as ``@njit`` kernels, the whole
training loop compiled.

This module is the thin Python side: it turns activation and loss names into
the integer codes the kernels switch on, allocates every buffer once, picks the
thread count and calls :mod:`._numba_kernels`. Settings (fastmath flags,
parallel, cache) live in :mod:`._numba_config`.
"""

import contextlib
import logging
import os
import re
import time

import numba
import numpy as np

from .. import activations as _act
from .. import losses as _loss
from . import _numba_config as config
from . import _numba_kernels as K

__all__ = ["forward", "backward", "train", "info", "compile_times", "simd_evidence"]

DESCRIPTION = "Numba @njit: compiled training loop, SIMD polynomial exp/tanh, one pass over X"
SLOW = False
COMPILED = True
HAS_GRAM = False

log = logging.getLogger("fastnn")

#: (kernel name, dtype) -> seconds spent on the first call (JIT compile or cache load).
_compile_times = {}


def _timed_first_call(name, dtype, fn, *args):
    key = (name, np.dtype(dtype).name)
    if key in _compile_times:
        return fn(*args)
    t0 = time.perf_counter()
    out = fn(*args)
    seconds = time.perf_counter() - t0
    _compile_times[key] = seconds
    log.info("numba: first %s call for %s took %.2f s (JIT compile or cache load)",
             name, key[1], seconds)
    return out


def compile_times():
    """``{"kernel/dtype": seconds}`` of each first call (compile or cache load)."""
    return {f"{name}/{dtype}": s for (name, dtype), s in _compile_times.items()}


def _codes(acts):
    return np.array([_act.CODES[a] for a in acts], dtype=np.int64)


def _n_threads(threads, W1, m):
    """threads=None: every core when the first layer's work pays for a thread launch."""
    cores = numba.config.NUMBA_NUM_THREADS
    if threads is None:
        macs = W1.size * m
        if W1.shape[0] <= config.FUSED_MAX_UNITS:  # the fused pass splits X's rows
            gains = W1.shape[1] >= config.AUTO_THREADS_MIN_ROWS
        else:  # BLAS threads
            gains = macs >= config.AUTO_THREADS_MIN_MACS_BLAS
        gains = gains and macs >= config.AUTO_THREADS_MIN_MACS
        return cores if gains else 1
    return max(1, min(int(threads), cores))


_blas_controller = None


def _blas_limits(n, Ws, m):
    """Limit the BLAS that np.dot inside the kernels calls to n threads.

    A no-op when no layer is big enough to go through BLAS. The threadpoolctl
    controller is built once: discovering the libraries costs ~1 ms, limiting
    them ~10 us.
    """
    global _blas_controller
    if all(W.size * m < config.BLAS_MIN_MACS for W in Ws):
        return contextlib.nullcontext()
    if _blas_controller is None:
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS Numba's np.dot binds to)
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=n, user_api="blas")


def forward(Ws, bs, acts, X, threads=None):
    """``(AL, caches)``, caches = [((A_prev, W, b), Z)] per layer."""
    codes = _codes(acts)
    m = X.shape[1]
    caches = []
    A = X
    with _blas_limits(_n_threads(threads, Ws[0], m), Ws, m):
        for W, b, code in zip(Ws, bs, codes):
            Z = np.empty((W.shape[0], m), dtype=X.dtype)
            A_next = np.empty_like(Z)
            _timed_first_call("dense_forward", X.dtype, K.dense_forward, W, b, A, Z, A_next, code)
            caches.append(((A, W, b), Z))
            A = A_next
    return A, caches


def backward(AL, Y, caches, acts, loss, threads=None):
    """``(dWs, dbs)``: gradients of J with the shapes of each W and b."""
    codes = _codes(acts)
    L = len(caches)
    dWs, dbs = [None] * L, [None] * L
    ZL = caches[-1][1]
    dZ = np.empty_like(AL)
    Ws = [cache[0][1] for cache in caches]
    with _blas_limits(_n_threads(threads, Ws[0], AL.shape[1]), Ws, AL.shape[1]):
        K.output_delta(AL, Y, ZL, codes[-1], _loss.CODES[loss], dZ)
        for l in range(L - 1, -1, -1):
            (A_prev, W, b), _ = caches[l]
            dWs[l] = np.empty_like(W)
            dbs[l] = np.empty_like(b)
            _timed_first_call("dense_grads", AL.dtype, K.dense_grads, dZ, A_prev, dWs[l], dbs[l])
            if l > 0:
                dZ_prev = np.empty_like(A_prev)
                A_prev_prev_Z = caches[l - 1][1]
                K.dense_delta_prev(W, dZ, A_prev_prev_Z, A_prev, codes[l - 1], dZ_prev)
                dZ = dZ_prev
    return dWs, dbs


def _unpack(flat, arrays):
    """Copy a flat parameter buffer back into the caller's arrays, in place."""
    offset = 0
    for a in arrays:
        a.ravel()[:] = flat[offset:offset + a.size]  # C-contiguous: ravel is a view
        offset += a.size


def train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every, threads=None,
          on_cost=None, gram=None):
    """Gradient descent in compiled code; see :mod:`fastnn.backends._base`.

    Without ``on_cost`` the whole run is one kernel call. With it, the kernel
    runs ``cost_every`` iterations at a time and stops right after computing
    the next recorded cost, before that iteration's update, so ``on_cost`` can
    stop training exactly where the Python loop would.
    """
    dtype = X.dtype
    m = X.shape[1]
    n1, n0 = Ws[0].shape
    T = _n_threads(threads, Ws[0], m)
    codes = _codes(acts)
    loss_code = _loss.CODES[loss]
    dims = np.array([n0] + [W.shape[0] for W in Ws], dtype=np.int64)
    # Parameters travel as one flat buffer each (see K.train_chunk), copied
    # back into the caller's arrays after every chunk.
    W_flat = np.concatenate([W.ravel() for W in Ws])
    b_flat = np.concatenate([b.ravel() for b in bs])
    units = int(dims[1:].sum())
    Z_flat = np.empty(units * m, dtype=dtype)
    A_flat = np.empty(units * m, dtype=dtype)
    dZ_flat = np.empty(units * m, dtype=dtype)
    dW_flat = np.empty_like(W_flat)
    db_flat = np.empty_like(b_flat)
    if K.fused_first_layer(n1, n0, m):
        Zacc = np.empty((n1, m), dtype=dtype)  # W1 X, summed from per-thread parts
        Zparts = np.empty((T, n1, m), dtype=dtype)
    else:
        # W1 X from BLAS straight into layer 1's Z block; b1 is added in place
        Zacc = Z_flat[:n1 * m].reshape(n1, m)
        Zparts = np.empty((T, 1, 1), dtype=dtype)  # unused
    n_costs = (num_iterations + cost_every - 1) // cost_every
    costs = np.full(n_costs, np.nan)
    lr = float(learning_rate)

    def run(i0, i1, forward_done=False):
        _timed_first_call(
            "train_chunk", dtype, K.train_chunk, W_flat, b_flat, dims, codes, loss_code, X, Y,
            lr, i0, i1, num_iterations, cost_every, forward_done, Zacc, Zparts, Z_flat, A_flat,
            dZ_flat, dW_flat, db_flat, costs)
        _unpack(W_flat, Ws)
        _unpack(b_flat, bs)

    previous_threads = numba.get_num_threads()
    numba.set_num_threads(T)
    try:
        with _blas_limits(T, Ws, m):
            _timed_first_call("first_layer_forward", dtype, K.first_layer_forward,
                              Ws[0], X, Zacc, Zparts)
            if on_cost is None:
                run(0, num_iterations)
                return [(i * cost_every, float(c)) for i, c in enumerate(costs)]
            recorded = []
            i0 = 0
            while i0 < num_iterations:
                # i0 == 0: only the forward pass and cost of iteration 0; every
                # later chunk starts from the forward pass its predecessor did
                i1 = min(i0 + cost_every, num_iterations) if recorded else 0
                run(i0, i1, forward_done=bool(recorded))
                if i1 < num_iterations and i1 % cost_every == 0:
                    J = float(costs[i1 // cost_every])
                    recorded.append((i1, J))
                    if on_cost(i1, J) is False:
                        break
                i0 = i1
            return recorded
    finally:
        numba.set_num_threads(previous_threads)


_FP_OPS = r"(?:add|sub|mul|div|max|min|sqrt|f[n]?m(?:add|sub)\d{3}|rndscale|round)"
_PACKED = re.compile(rf"^\s*v?{_FP_OPS}p[sd]\b")
_SCALAR = re.compile(rf"^\s*v?{_FP_OPS}s[sd]\b")


def count_fp_instructions(asm):
    """Counts of packed and scalar floating-point arithmetic instructions in ``asm``.

    ``packed`` are SIMD (``vfmadd231pd zmm…``), ``scalar`` one element at a time
    (``vmulsd xmm…``); ``zmm``/``ymm`` count the packed ones on 512/256-bit
    registers.
    """
    counts = {"packed": 0, "scalar": 0, "zmm": 0, "ymm": 0}
    for line in asm.splitlines():
        if _PACKED.match(line):
            operands = line.split(None, 1)[-1]
            counts["packed"] += 1
            counts["zmm"] += "zmm" in operands
            counts["ymm"] += "ymm" in operands
        elif _SCALAR.match(line):
            counts["scalar"] += 1
    return counts


def info():
    """Versions, flags and threads in force, for reports."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = f"not initialised (configured: {numba.config.THREADING_LAYER})"
    return {
        "numba": numba.__version__,
        "llvmlite": __import__("llvmlite").__version__,
        "fastmath": sorted(config.FASTMATH),
        "fastmath_exp": sorted(config.FASTMATH_EXACT),
        "parallel": "prange only",
        "cache": config.CACHE,
        "cache_dir": os.environ.get("NUMBA_CACHE_DIR") or "(package __pycache__, user fallback)",
        "threading_layer": layer,
        "threads": numba.config.NUMBA_NUM_THREADS,
        "blas_min_macs": config.BLAS_MIN_MACS,
        "auto_threads_min_macs": config.AUTO_THREADS_MIN_MACS,
        "compile_times": compile_times(),
    }


def simd_evidence():
    """``{kernel: {"packed": n, "scalar": n, "zmm": n, "ymm": n}}`` from the compiled asm.

    Counts packed (``…pd``/``…ps``) versus scalar (``…sd``/``…ss``) floating
    point arithmetic instructions in each hot kernel's machine code (float64,
    plus the float32 activations, which run 16 lanes per zmm register).
    """
    f64 = np.float64
    z1 = np.zeros(8, f64)
    z2 = np.zeros((2, 8), f64)
    b = np.zeros((2, 1), f64)
    i64 = np.int64(0)
    kernels = {
        "exp_array": (K.exp_array, (z1, z1)),
        "tanh_array": (K.tanh_array, (z1, z1)),
        "tanh_array_float32": (K.tanh_array, (z1.astype(np.float32), z1.astype(np.float32))),
        "sigmoid_array_float32": (K.sigmoid_array, (z1.astype(np.float32),
                                                    z1.astype(np.float32))),
        "sigmoid_array": (K.sigmoid_array, (z1, z1)),
        "bias_activate": (K.bias_activate, (i64, f64(0), z1, z1.copy(), z1.copy())),
        "bias_activate_inplace": (K.bias_activate_inplace, (i64, f64(0), z1, z1.copy())),
        "times_derivative": (K.times_derivative, (i64, z1, z1, z1)),
        "dense_forward": (K.dense_forward, (z2[:, :2].copy(), b, z2, z2, z2, i64)),
        "row_times_W": (K._row_times_W, (z2[:, :2].copy(), z2, i64, z1, False)),
        "dense_grads": (K.dense_grads, (z2, z2, np.zeros((2, 2)), b)),
        "first_layer_block": (K._first_layer_block, (np.zeros((2, 2)), z2, z2, z2, i64, i64,
                                                     f64(0))),
    }
    out = {}
    for name, (fn, args) in kernels.items():
        # Code loaded from the on-disk cache cannot be disassembled: compile a
        # private, uncached copy with the same options (callees are inlined).
        fresh = numba.njit(**dict(config.SERIAL_OPTS, cache=False))(fn.py_func)
        fresh(*args)
        out[name] = count_fp_instructions(fresh.inspect_asm(fresh.signatures[0]))
    return out
