"""Numba: the lecture's forward/backward/update as ``@njit`` kernels, whole
iterations (or epochs) compiled.

This is the backend's surface, the contract of :mod:`fastnn.backends._base`:
``forward``/``backward`` over the lecture page, ``engine`` for the driver, and
the capability constants. The rooms behind it:

- :mod:`.layers`, the lecture page: one kernel per formula (:mod:`.costs`,
  its costs);
- :mod:`.engine_room`, the engine room: the compiled training loops and the
  engines that run them; :mod:`.first_layer`, its fused first-layer pass;
- :mod:`.second_page` and :mod:`.second_room`, the same for the course's
  second part (optimizers -- the course's and scikit-learn's --, L2,
  dropout, decay) and for epoch losses (``Schedule.epoch_loss``), whose
  kernels a plain gradient-descent fit never compiles;
- :mod:`.intrinsics`, a flat buffer's block as a matrix and the BLAS product,
  lowered directly (less for LLVM to compile on a first fit);
- :mod:`.simd_math`, the exp/tanh/sigmoid polynomials LLVM vectorizes;
- :mod:`.config`, every Numba setting (fastmath, parallel, cache, ``FASTNN_ISA``);
- :mod:`.introspect`, what reports read: :func:`info`, :func:`hot_code`, the
  kernels compiled (or loaded from the cache) and what each compile cost.

Kernels compile on their first call, for the dtype and path a fit uses (a
one-thread full-batch fit compiles neither the mini-batch loop nor the
parallel first-layer pass, a plain fit nothing of the second part);
``cache=True`` keeps them on disk.
"""

import contextlib

import numpy as np

from .. import _blas, _threads
from ... import activations as _act
from ... import losses as _loss
from ... import regularization as _reg
from . import config, layers, second_page, second_room
from .engine_room import FullBatchEngine, MiniBatchEngine
from .introspect import compile_times, hot_code, info
from .second_room import SecondFullBatchEngine, SecondMiniBatchEngine

__all__ = ["forward", "backward", "engine", "info", "hot_code", "compile_times"]

DESCRIPTION = "Numba @njit: compiled training loop, SIMD polynomial exp/tanh, one pass over X"
SLOW = False
COMPILED = True
HAS_OPTIMIZERS = True
#: Per-example weights (``sample_weight``: ``backward``'s keyword, the
#: engines' ``Problem.sample_weight``) on every path of both engine rooms.
HAS_SAMPLE_WEIGHT = True
#: The ``exp`` output with the ``poisson`` loss.
HAS_POISSON = True
#: The mini-batch engines gather each batch from X's rows (engine_room.gather_rows):
#: an F-contiguous X (X.T C-contiguous, as scikit-learn's X transposed) is read in place.
HAS_ROW_BATCHES = True
#: The update rules the engines train (:data:`.second_page.OPTIMIZER_CODES`):
#: the course's four and scikit-learn's ``sklearn_sgd`` and ``sklearn_adam``.
OPTIMIZER_NAMES = frozenset(second_page.OPTIMIZER_CODES)
#: ``threads=None`` runs on more than one thread from this much work per
#: iteration (per mini-batch), in :func:`fastnn.backends._threads.work_units`.
#: Calibrated on the 2-core AMD EPYC (Zen 4, AVX-512) to keep the choices the
#: backend made before the one driver on the benchmark workloads: two threads
#: for logistic regression (2.57e6 units at m = 209; 12288-row inputs gain
#: 1.15-1.3x), the deep net (5.2e7) and the wide net (1.8x); one for the
#: planar net up to m = 10 000 (5.2e5) and for every mini-batch of the digits
#: net (64-64-10, at most 7.2e6 units per batch of 1347: BLAS's threads on
#: 64-row products start more than they share). The one change: the planar net
#: at m = 100 000 (5.2e6) now runs its layer-1 products on two BLAS threads.
#: Mini-batches calibrated again once the engines gathered batches from X's
#: rows (same CPU, idle, the vCPUs' fast phase; Adam, 8000 examples, best of 5,
#: 1 vs 2 threads, 2026-12-05): 64-64-10 at batch 32 (1.7e5 units) 1.00x, 64
#: (3.4e5) 0.99x, 128 (6.8e5) 1.05x, 200 (1.1e6) 1.09x, 1347 (7.2e6) 1.23x;
#: 64-100-10 at 128 (1.1e6) 1.07x, 200 (1.7e6) 1.18x; 100-128-64-5 at 32
#: (7.3e5) 1.00x, 64 (1.5e6) 1.02x, 128 (2.9e6) 1.18x, 200 (4.6e6) 1.26x;
#: 100-100-4 at 200 (2.2e6) 1.23x. Two threads from 1.5e6 units: below it they
#: gain under 10 %, less than the two vCPUs' slow phase costs (README).
AUTO_THREADS_MIN_WORK = {"full": 2_500_000, "batch": 1_500_000}


def _blas_limit(threads, Ws, m):
    """Hold the BLAS that ``np.dot`` inside the kernels calls to the threads
    the driver's policy gives ``threads`` (None: auto); a no-op when no layer's
    product is big enough to go through BLAS."""
    if not any(W.shape[0] * W.shape[1] * m >= config.BLAS_MIN_MACS for W in Ws):
        return contextlib.nullcontext()
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    return _blas.limit(_threads.decide(threads, dims, m, AUTO_THREADS_MIN_WORK["full"]).threads)


def forward(Ws, bs, acts, X, threads=None, dropout=None):
    """``(AL, caches)``, caches = [((A_prev, W, b), Z)] per layer, or
    ``((A_prev, W, b), Z, D)`` for a layer with ``dropout[l] = (D, keep_prob)``
    (its A then ``A * D / keep_prob``, :func:`fastnn.regularization.drop`)."""
    config.check_isa()
    m = X.shape[1]
    caches = []
    A = X
    work = np.empty((2, m), dtype=X.dtype)  # softmax's column maxima and sums
    with _blas_limit(threads, Ws, m):
        for l, (W, b, name) in enumerate(zip(Ws, bs, acts)):
            Z = np.empty((W.shape[0], m), dtype=X.dtype)
            A_next = np.empty_like(Z)
            layers.linear_forward(W, b, A, Z, A_next, _act.CODES[name], work)
            if dropout is not None and dropout[l] is not None:
                D, keep_prob = dropout[l]
                caches.append(((A, W, b), Z, D))
                A_next = _reg.drop(A_next, D, keep_prob)
            else:
                caches.append(((A, W, b), Z))
            A = A_next
    return A, caches


def backward(AL, Y, caches, acts, loss, threads=None, relu_grad_at_zero=1, lambd=0.0,
             keep_probs=None, sample_weight=None):
    """``(dWs, dbs)``: gradients of J with the shapes of each W and b;
    relu_grad_at_zero (1 or 0) is ReLU's g'(0); ``lambd`` adds L2's
    ``(lambd / m) W`` to each dW; a cache with a mask D (see :func:`forward`)
    scales dA by ``D / keep_probs[l]`` before g', taken at g(Z).
    ``sample_weight`` (m,) (None: unweighted): the weighted J's gradients,
    dZ_L's columns times the weights and 1/S for 1/m (0 when S == 0), L2's
    term (lambd / S) W."""
    config.check_isa()
    codes = [_act.CODES[a] for a in acts]
    n_layers = len(caches)
    dWs, dbs = [None] * n_layers, [None] * n_layers
    dZ = np.empty_like(AL)
    Ws = [cache[0][1] for cache in caches]
    g0 = int(relu_grad_at_zero)
    m = AL.shape[1]
    S = m if sample_weight is None else _loss.weight_sum(sample_weight)
    scale = None if sample_weight is None else _loss.mean_scale(S)  # 1/S for 1/m
    with _blas_limit(threads, Ws, m):
        layers.output_dZ(AL, Y, caches[-1][1], codes[-1], _loss.CODES[loss], g0, dZ,
                         sample_weight)
        for l in range(n_layers - 1, -1, -1):
            (A_prev, W, b), _ = caches[l][:2]
            dWs[l], dbs[l] = np.empty_like(W), np.empty_like(b)
            layers.linear_backward(dZ, A_prev, dWs[l], dbs[l], scale)
            if lambd:
                dWs[l] += _reg.l2_gradient(W, lambd, S)
            if l > 0:
                dZ_below = np.empty_like(A_prev)
                Z_prev = caches[l - 1][1]
                if len(caches[l - 1]) == 3:  # dropout: the mask, then g' at g(Z)
                    D = np.ascontiguousarray(caches[l - 1][2], dtype=A_prev.dtype)
                    second_room.dA_to_dZ(W, dZ, Z_prev, _act.forward(acts[l - 1], Z_prev),
                                         codes[l - 1], g0, D, A_prev.dtype.type(keep_probs[l - 1]),
                                         dZ_below)
                else:
                    layers.dZ_prev(W, dZ, Z_prev, A_prev, codes[l - 1], g0, dZ_below)
                dZ = dZ_below
    return dWs, dbs


def engine(fit):
    """The engine of one :class:`fastnn.backends._base.Fit`: full batch
    (:class:`.engine_room.FullBatchEngine`) or mini-batches
    (:class:`.engine_room.MiniBatchEngine`), on ``fit.threads`` threads; with
    the course's second part (an optimizer, L2, dropout or decay) or epoch
    losses, :mod:`.second_room`'s, so a plain fit compiles none of it."""
    full = fit.schedule.batch_size is None
    if not fit.schedule.plain or fit.schedule.epoch_loss:
        return SecondFullBatchEngine(fit) if full else SecondMiniBatchEngine(fit)
    return FullBatchEngine(fit) if full else MiniBatchEngine(fit)
