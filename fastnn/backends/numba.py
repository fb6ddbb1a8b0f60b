"""Numba: the lecture's forward/backward/update as ``@njit`` kernels, the whole
training loop compiled.

This module is the thin Python side: it turns activation and loss names into
the integer codes the kernels switch on, allocates every buffer once, picks the
thread count, runs the compiled loop in chunks and calls

- :mod:`._numba_layers`, the lecture page (one kernel per formula), for
  ``forward``/``backward``;
- :mod:`._numba_train`, the engine room (the compiled training loop over the
  page's kernels, the fused first-layer pass), for ``train``.

The exp/tanh polynomials live in :mod:`._numba_math`; every setting (fastmath
flags, parallel, cache, the ``FASTNN_ISA`` path) in :mod:`._numba_config`.
"""

import contextlib
import logging
import os
import time

import numba
import numpy as np

from .. import activations as _act
from .. import losses as _loss
from . import _base, _blas
from . import _numba_config as config
from . import _numba_layers as L
from . import _numba_math as M
from . import _numba_train as E

__all__ = ["forward", "backward", "train", "info", "hot_code", "compile_times"]

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


def _blas_limit(n, Ws, m):
    """Hold the BLAS that ``np.dot`` inside the kernels calls to n threads; a
    no-op when no layer's product is big enough to go through BLAS."""
    if not any(L.blas_sized(W.shape[0], W.shape[1], m) for W in Ws):
        return contextlib.nullcontext()
    return _blas.limit(n)


def forward(Ws, bs, acts, X, threads=None):
    """``(AL, caches)``, caches = [((A_prev, W, b), Z)] per layer."""
    config.check_isa()
    codes = _codes(acts)
    m = X.shape[1]
    caches = []
    A = X
    work = np.empty((2, m), dtype=X.dtype)  # softmax's column maxima and sums
    with _blas_limit(_n_threads(threads, Ws[0], m), Ws, m):
        for W, b, code in zip(Ws, bs, codes):
            Z = np.empty((W.shape[0], m), dtype=X.dtype)
            A_next = np.empty_like(Z)
            _timed_first_call("linear_forward", X.dtype, L.linear_forward, W, b, A, Z, A_next,
                              code, work)
            caches.append(((A, W, b), Z))
            A = A_next
    return A, caches


def backward(AL, Y, caches, acts, loss, threads=None, relu_grad_at_zero=1):
    """``(dWs, dbs)``: gradients of J with the shapes of each W and b;
    relu_grad_at_zero (1 or 0) is ReLU's g'(0)."""
    config.check_isa()
    codes = _codes(acts)
    n_layers = len(caches)
    dWs, dbs = [None] * n_layers, [None] * n_layers
    dZ = np.empty_like(AL)
    Ws = [cache[0][1] for cache in caches]
    with _blas_limit(_n_threads(threads, Ws[0], AL.shape[1]), Ws, AL.shape[1]):
        L.output_dZ(AL, Y, caches[-1][1], codes[-1], _loss.CODES[loss], relu_grad_at_zero, dZ)
        for l in range(n_layers - 1, -1, -1):
            (A_prev, W, b), _ = caches[l]
            dWs[l], dbs[l] = np.empty_like(W), np.empty_like(b)
            _timed_first_call("linear_backward", AL.dtype, L.linear_backward, dZ, A_prev,
                              dWs[l], dbs[l])
            if l > 0:
                dZ_below = np.empty_like(A_prev)
                L.dZ_prev(W, dZ, caches[l - 1][1], A_prev, codes[l - 1], int(relu_grad_at_zero),
                          dZ_below)
                dZ = dZ_below
    return dWs, dbs


def _unpack(flat, arrays):
    """Copy a flat parameter buffer back into the caller's arrays, in place."""
    offset = 0
    for a in arrays:
        a.ravel()[:] = flat[offset:offset + a.size]  # C-contiguous: ravel is a view
        offset += a.size


#: Wall time one compiled chunk of iterations aims at: long enough that the
#: return to Python (a few microseconds) is noise, short enough that Ctrl-C,
#: which Python can only act on between chunks, stops a fit within a second.
CHUNK_SECONDS = 0.2
#: Mini-batch chunks draw their epochs' shuffles up front: at most this many
#: int64 indices (8 MiB) per chunk, whatever the measured chunk length.
MAX_ORDER_ENTRIES = 1 << 20
#: A guess of the kernels' speed, only to size the first chunk (then measured).
_GUESS_FLOPS_PER_SECOND = 5e9


def _first_chunk(dims, m, num_iterations):
    flops = 6 * m * sum(dims[l] * dims[l + 1] for l in range(len(dims) - 1))
    return int(min(num_iterations, max(1, 0.1 * CHUNK_SECONDS * _GUESS_FLOPS_PER_SECOND / flops)))


def _next_chunk(done, seconds):
    """Iterations for the next chunk, from ``done`` iterations taking ``seconds``."""
    if seconds <= 0.0:
        return 8 * done
    return max(1, int(done * min(8.0, CHUNK_SECONDS / seconds)))


def _recorded_between(a, b, cost_every, num_iterations):
    """The recorded iterations in a..b (both included), in order, without
    walking the range (a chunk may span 10**9 iterations)."""
    b = min(b, num_iterations - 1)
    its = list(range(-(-a // cost_every) * cost_every, b + 1, cost_every))
    last = num_iterations - 1
    if a <= last <= b and last % cost_every:
        its.append(last)
    return its


def train(Ws, bs, acts, loss, X, Y, learning_rate, num_iterations, cost_every, threads=None,
          on_cost=None, gram=None, *, relu_grad_at_zero=1, batch_size=None, rng=None):
    """Gradient descent in compiled code; see :mod:`fastnn.backends._base`.

    Full batch runs :func:`._numba_train.train_chunk`; with ``batch_size``,
    whole epochs of mini-batches run in :func:`._numba_train.train_epochs`, the
    example orders of a chunk's epochs drawn up front by
    :func:`._base.epoch_orders` (the same draws however the run is chunked).

    The compiled loop runs in chunks of about :data:`CHUNK_SECONDS` (and, with
    ``on_cost``, ending at each recorded cost, before that iteration's update,
    so ``on_cost`` can stop training where the Python loop would). Chunks
    change nothing in the arithmetic: a chunked run is bitwise the unchunked
    one. Between chunks Python runs, so a pending Ctrl-C raises
    ``KeyboardInterrupt`` there; ``Ws``/``bs`` then hold the last finished
    iteration. Nothing is allocated in proportion to ``num_iterations``.
    """
    config.check_isa()
    dtype = X.dtype
    m = X.shape[1]
    mb = m if batch_size is None else int(batch_size)  # columns of the training buffers
    n1, n0 = Ws[0].shape
    T = _n_threads(threads, Ws[0], mb)
    codes = _codes(acts)
    loss_code = _loss.CODES[loss]
    g0 = int(relu_grad_at_zero)
    dims = np.array([n0] + [W.shape[0] for W in Ws], dtype=np.int64)
    # Parameters travel as one flat buffer each (see _numba_train.train_chunk),
    # copied back into the caller's arrays at the end.
    W_flat = np.concatenate([W.ravel() for W in Ws])
    b_flat = np.concatenate([b.ravel() for b in bs])
    units = int(dims[1:].sum())
    Z_flat = np.empty(units * mb, dtype=dtype)
    A_flat = np.empty(units * mb, dtype=dtype)
    dZ_flat = np.empty(units * mb, dtype=dtype)
    dW_flat = np.empty_like(W_flat)
    db_flat = np.empty_like(b_flat)
    work = np.empty((2, m), dtype=dtype)  # softmax's scratch, for m or fewer columns
    if batch_size is None:
        fused = E.fused_first_layer(n1, n0, m)
        Z_parts = np.empty((T, n1, m) if fused and T > 1 else (1, 1, 1), dtype=dtype)
    else:
        fused = False
        Xb_flat = np.empty(n0 * mb, dtype=dtype)
        Yb_flat = np.empty(int(dims[-1]) * mb, dtype=dtype)
        Zc_flat = np.empty(units * m, dtype=dtype)  # the recorded costs' full forward
        Ac_flat = np.empty(units * m, dtype=dtype)
    lr = float(learning_rate)
    costs = []
    chunk = _first_chunk(dims, m, num_iterations)

    def run(i0, i1, done):
        """Iterations i0..i1-1 (+ the cost of i1); their costs, appended to ``costs``
        and passed to ``on_cost``; False if it said stop."""
        its = _recorded_between(i0 + 1 if done else i0, i1, cost_every, num_iterations)
        recorded = np.full(len(its), np.nan)
        if batch_size is None:
            _timed_first_call(
                "train_chunk", dtype, E.train_chunk, W_flat, b_flat, dims, codes, loss_code, g0,
                X, Y, lr, i0, i1, num_iterations, cost_every, done, Z_parts, Z_flat, A_flat,
                dZ_flat, dW_flat, db_flat, work, recorded)
        else:
            orders = (_base.epoch_orders(rng, m, i1 - i0) if i1 > i0
                      else np.empty((0, m), dtype=np.int64))
            _timed_first_call(
                "train_epochs", dtype, E.train_epochs, W_flat, b_flat, dims, codes, loss_code,
                g0, X, Y, lr, orders, mb, i0, i1, num_iterations, cost_every, done, Xb_flat,
                Yb_flat, Z_flat, A_flat, dZ_flat, dW_flat, db_flat, Zc_flat, Ac_flat, work,
                recorded)
        for i, J in zip(its, recorded.tolist()):
            costs.append((i, J))
            if on_cost is not None and on_cost(i, J) is False:
                return False
        return True

    previous_threads = numba.get_num_threads()
    numba.set_num_threads(T)
    try:
        with _blas_limit(T, Ws, m):  # m >= mb: the cost forward too
            if fused:  # Z1 = W1 X before the first iteration
                W1 = W_flat[:n1 * n0].reshape(n1, n0)
                Z1 = Z_flat[:n1 * m].reshape(n1, m)
                _timed_first_call("first_layer_pass", dtype, E.first_layer_pass, W1, Z1, X, Z1,
                                  Z_parts, dtype.type(0), False)
            i0, done = 0, False
            while True:
                if on_cost is not None and not done:
                    i1 = 0  # iteration 0's cost reaches on_cost before its update
                else:
                    i1 = min(i0 + chunk, num_iterations)
                    if batch_size is not None:  # the chunk's shuffles stay small
                        i1 = min(i1, i0 + max(1, MAX_ORDER_ENTRIES // m))
                    if on_cost is not None:  # stop at the next recorded cost
                        i1 = min(i1, _base.next_recorded(i0, cost_every, num_iterations))
                start = time.perf_counter()
                if not run(i0, i1, done) or i1 >= num_iterations:
                    break
                if i1 > i0:
                    chunk = _next_chunk(i1 - i0, time.perf_counter() - start)
                i0, done = i1, True
        return costs
    finally:
        numba.set_num_threads(previous_threads)
        _unpack(W_flat, Ws)
        _unpack(b_flat, bs)


def info():
    """Versions, flags, threads and the LLVM target in force, for reports.

    ``"isa"`` is the kernel set LLVM compiles for, from the features it targets:
    ``"avx512"``, ``"avx2"`` (AVX2 + FMA) or ``"baseline"``; ``"llvm_cpu"`` and
    ``"llvm_vector_features"`` what it was told (see ``FASTNN_ISA`` in
    :mod:`._numba_config`).
    """
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = f"not initialised (configured: {numba.config.THREADING_LAYER})"
    cpu, features = config.target()
    simd = ("sse", "ssse", "avx", "fma", "f16c")
    on = [f[1:] for f in features.split(",") if f.startswith("+")]
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
        "blas": _blas.describe(),
        "blas_min_macs": config.BLAS_MIN_MACS,
        "auto_threads_min_macs": config.AUTO_THREADS_MIN_MACS,
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
        "activation_forward": (L.activation_forward, (code, f(0), row, row.copy())),
        "activation_backward": (L.activation_backward, (code, row, row.copy(), row.copy(), g0)),
        "linear_forward": (L.linear_forward, (W, b, Z, Z.copy(), Z.copy(), code, work)),
        "linear_backward": (L.linear_backward, (Z, Z.copy(), W.copy(), b.copy())),
        "dZ_prev": (L.dZ_prev, (W, Z, Z.copy(), Z.copy(), code, g0, Z.copy())),
        "softmax": (L.softmax, (Z, Z.copy(), work)),
        "first_layer_block": (E.first_layer_block, (W, Z, Z.copy(), Z.copy(), np.int64(0),
                                                    np.int64(4), f(0), True)),
        "exp_array": (M.exp_array, (row, row.copy())),
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
