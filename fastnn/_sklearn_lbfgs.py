"""How :mod:`fastnn.sklearn`'s estimators train with ``solver="lbfgs"``:
scikit-learn's ``_fit_lbfgs``, SciPy's L-BFGS-B with its options on the loss
and gradient that the backend's ``forward`` and ``backward`` compute.

Design
------
- The loss is scikit-learn's: the (weighted) mean loss over the samples
  (divided by the targets for its squared error) plus 0.5·alpha·Σ‖W‖² / Σw;
  the gradient is its ``_backprop``'s, (dW + alpha·W / Σw) with dW from the
  backend's ``backward`` (per-example weights scale the output delta's
  columns there, the contract's ``sample_weight``).
- An evaluation runs a block of examples at a time, each block's loss and
  gradient weighted by its share of the examples (or of the weights): the
  same sums. A dense X is cut once per fit into blocks small enough that a
  block's activations and deltas stay in cache from its forward to its
  backward (:func:`block_columns`): over the whole of the drop-in benchmark's
  50 000 x 100 X, Z, A and dZ of the 100 hidden units (40 MB each) went
  through DRAM several times per evaluation. The blocks (C-contiguous
  columns of X and Y) replace X's transposed copy rather than sit beside it.
- A sparse X too large to densify (:mod:`fastnn._sklearn_data`) is densified
  a block of rows at a time at each evaluation (blocks of at most
  ``CHUNK_BYTES`` of dense columns).
- On k > 1 threads of a compiled backend, the blocks are shared by k
  threads of this process, each block computed on one (:class:`Objective`):
  the kernels' own threads would meet at a barrier after every product of
  every block, and wait there for a thread the system had descheduled.
- Each block's arrays come from glibc's heap, which keeps them from one
  call to the next (:func:`fastnn.backends._malloc.raise_threshold`): they
  had been given back to the system after each call and faulted in again,
  zeroed page by page (digits' one-block evaluations took 1.9x as long).
"""

import concurrent.futures
import contextlib
import contextvars
import functools

import numpy as np
import scipy.optimize
from sklearn.utils.optimize import _check_optimize_result

from . import _caches
from . import _sklearn_data as _data
from . import losses as _losses
from ._sklearn_train import l2
from .backends import _blas, _malloc, _threads
from .network import Network

__all__ = ["CACHE_BYTES", "Objective", "block_columns", "cache_bytes", "column_bytes",
           "fit_lbfgs"]

#: The cache one thread may count on where Linux's sysfs does not say (a Zen 4
#: core: 1 MiB of L2 and 4 MiB, its share of a CCD's L3).
CACHE_BYTES = 4 << 20


@functools.lru_cache(maxsize=None)
def cache_bytes():
    """The bytes of cache one CPU may count on: its L2 plus its share of the L3
    (each level's size over the CPUs sharing it; Linux's sysfs, CPU 0), or
    :data:`CACHE_BYTES` when sysfs does not say."""
    total = sum(size // cpus for level, size, cpus in _caches.cpu0_caches() if level >= 2)
    return total or CACHE_BYTES


def column_bytes(dims, itemsize):
    """The bytes an evaluation touches per example: its column of X and every
    layer's Z, A and dZ."""
    return itemsize * (dims[0] + 3 * sum(dims[1:]))


def block_columns(dims, itemsize, m, threads=1):
    """Examples per block of an evaluation over m examples, its blocks shared
    by ``threads`` threads (one block each at a time): as many as keep their
    :func:`column_bytes` within half of :func:`cache_bytes`, in equal blocks,
    a multiple of ``threads`` of them (m: one block, on one thread).

    Half leaves room for the weights, BLAS's packed panels and what else
    runs. Measured (100-100-4 on 50 000 examples, one thread, Zen 4 with 1 MiB
    of L2 and 32 MiB of L3 over 2 CPUs: 8.5 MiB): float64 blocks of 2500
    columns (8 MiB) and 5000 (16.5 MiB) ran alike, 7143 (23.6 MiB) as slowly
    as one block; float32 blocks of 5000 and 10 000 beat 2048. Digits
    (64-100-10, 1347 examples: 4.2 MiB) stays one block on one thread, two
    on two.
    """
    fit = max(1, cache_bytes() // (2 * column_bytes(dims, itemsize)))
    blocks = -(-m // fit)
    blocks = min(m, -(-blocks // threads) * threads)
    return -(-m // blocks)


class Objective:
    """scikit-learn's loss and gradient (``_loss_grad_lbfgs``) of the packed
    parameters theta, as L-BFGS-B calls them: ``objective(theta) -> (J, grad)``,
    theta and grad float64 of shape (n_params,), a block of examples at a time.

    ``net`` the Network (its backend, activations, loss, dtype, layer_dims,
    threads), ``X`` (n_samples, n_features) dense or sparse, ``Y`` (n_outputs,
    n_samples), ``sample_weight`` (n_samples,) or None, ``alpha`` and
    ``loss_divisor`` the estimator's; ``columns`` caps the examples per block
    (:func:`block_columns`, and a sparse X's blocks).

    On a compiled backend's k > 1 threads, several blocks are shared by k
    threads of this process, a block per thread at a time, each computed on
    one thread (``workers``); one block runs on the k threads of the
    backend's kernels (``threads``). The blocks' sums go in block order: the
    same result whichever thread computed which block. Used as a context
    manager (the worker threads live inside it); outside one the blocks run
    one after the other, to the same result.
    """

    def __init__(self, net, X, Y, sample_weight, alpha, loss_divisor, columns=None):
        self.module, self.acts, self.loss = net._backend, tuple(net._acts), net._loss
        self.relu_grad_at_zero = net.relu_grad_at_zero
        self.alpha, self.loss_divisor = alpha, loss_divisor
        self.dtype = dtype = net._Ws[0].dtype
        dims = net.layer_dims
        self.shapes = list(zip(dims, dims[1:]))
        # scikit-learn's packing: every coefs_[i] (n_in, n_out) row-major, then the intercepts.
        self.ends = np.cumsum([a * b for a, b in self.shapes] + [b for _, b in self.shapes])
        m = X.shape[0]
        self.weight_sum = (m if sample_weight is None
                           else float(np.sum(sample_weight, dtype=np.float64)))
        Y = np.asarray(Y, dtype=dtype)
        self.data = _data.Examples(X) if _data.too_large(X) else None
        threads = 1
        if getattr(self.module, "COMPILED", False):  # over all the examples held at once
            threads = _threads.decide(net.threads, dims, self.data.block() if self.data else m,
                                      self.module.AUTO_THREADS_MIN_WORK["full"])[0]
        size = block_columns(dims, np.dtype(dtype).itemsize, m, threads)
        if self.data:  # no more than a sparse X densifies at once
            size = min(size, self.data.block())
        else:
            X = X.toarray() if hasattr(X, "toarray") else X
        if columns is not None:
            size = min(size, int(columns))
        # A block's arrays then come from the heap, which keeps them between calls.
        _malloc.raise_threshold(size * column_bytes(dims, np.dtype(dtype).itemsize))
        # (XT or None: densified per evaluation, rows, Y's columns, weights, share)
        self.blocks = []
        for start in range(0, m, size):
            rows = slice(start, start + size)
            weights = None if sample_weight is None else sample_weight[rows]
            used = (min(size, m - start) if weights is None
                    else float(weights.sum(dtype=np.float64)))
            if not used:  # a block whose weights are all 0 adds nothing
                continue
            XT = None if self.data else np.ascontiguousarray(X[rows].T, dtype=dtype)
            self.blocks.append((XT, rows, np.ascontiguousarray(Y[:, rows]), weights,
                                used / self.weight_sum))
        several = len(self.blocks) > 1 and threads > 1
        self.workers, self.threads = (threads, 1) if several else (1, threads)
        self._pool = None

    def __enter__(self):
        with contextlib.ExitStack() as held:
            if getattr(self.module, "COMPILED", False):
                # BLAS held to the calls' threads for the whole fit: the kernels' own
                # limit per call then finds it set (no switching its pool back and
                # forth between calls: 1.5-2x the CPU time on two threads, measured).
                held.enter_context(_blas.limit(self.threads))
            if self.workers > 1:
                self._pool = held.enter_context(concurrent.futures.ThreadPoolExecutor(
                    self.workers, thread_name_prefix="fastnn-lbfgs"))
                held.callback(self._pool.shutdown, cancel_futures=True)
            self._held = held.pop_all()
        return self

    def __exit__(self, *exc):
        self._pool = None
        self._held.close()

    def unpack(self, theta):
        """The Network's (Ws, bs) of the packed theta, in its dtype."""
        pieces = np.split(theta.astype(self.dtype, copy=False), self.ends[:-1])
        Ws = [np.ascontiguousarray(p.reshape(a, b).T) for p, (a, b) in zip(pieces, self.shapes)]
        bs = [np.ascontiguousarray(p.reshape(-1, 1)) for p in pieces[len(self.shapes):]]
        return Ws, bs

    def _block(self, Ws, bs, block):
        """One block's mean loss (without L2) and its dWs, dbs."""
        XT, rows, Y, weights, _ = block
        if XT is None:
            XT = self.data.columns(rows)
        module, acts = self.module, self.acts
        AL, caches = module.forward(Ws, bs, acts, XT, self.threads)
        kw = {} if weights is None else {"sample_weight": weights}
        J = _losses.cost(self.loss, AL, caches[-1][1], Y, acts[-1], **kw)
        dWs, dbs = module.backward(AL, Y, caches, acts, self.loss, self.threads,
                                   self.relu_grad_at_zero, **kw)
        return J, dWs, dbs

    def __call__(self, theta):
        Ws, bs = self.unpack(theta)
        grad = np.zeros(self.ends[-1])
        pieces = np.split(grad, self.ends[:-1])
        # W-shaped views of the coefs' packing, and the intercepts' columns.
        gWs = [p.reshape(a, b).T for p, (a, b) in zip(pieces, self.shapes)]
        gbs = [p.reshape(-1, 1) for p in pieces[len(self.shapes):]]
        scale = self.alpha / self.weight_sum
        if len(self.blocks) == 1:  # scikit-learn's sums, in the network's dtype
            J, dWs, dbs = self._block(Ws, bs, self.blocks[0])
            for g, dW, W in zip(gWs, dWs, Ws):
                g[...] = dW + scale * W
            for g, db in zip(gbs, dbs):
                g[...] = db
        else:  # the blocks' shares summed in float64, in block order
            run = functools.partial(self._block, Ws, bs)
            if self._pool:  # each block under the caller's context (np.errstate's)
                done = self._pool.map(lambda ctx, block: ctx.run(run, block),
                                      [contextvars.copy_context() for _ in self.blocks],
                                      self.blocks)
            else:
                done = map(run, self.blocks)
            J = 0.0
            for (Jp, dWs, dbs), block in zip(done, self.blocks):
                share = block[-1]
                J += share * Jp
                for g, d in zip(gWs + gbs, dWs + dbs):
                    g += share * d
            for g, W in zip(gWs, Ws):
                g += scale * W
        return J / self.loss_divisor + l2(Ws, self.alpha, self.weight_sum), grad


def fit_lbfgs(est, X, Y, sample_weight):
    """scikit-learn's ``_fit_lbfgs``: L-BFGS-B on the whole data, X dense or
    sparse, Y (n_outputs, n_samples), the per-example weights or None;
    ``n_iter_`` and ``loss_`` as scikit-learn sets them."""
    net = est.network_
    objective = Objective(net, X, Y, sample_weight, est.alpha, est._loss_divisor)
    theta0 = np.concatenate([W.T.ravel() for W in net._Ws] + [b.ravel() for b in net._bs])
    # The backend's own forward/backward, as the driver's Python engine runs them.
    with _threads.running(), _malloc.step_allocations(), objective, \
            np.errstate(over="ignore", invalid="ignore"):
        result = scipy.optimize.minimize(
            objective, theta0, method="L-BFGS-B", jac=True,
            options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    est.n_iter_ = _check_optimize_result("lbfgs", result, est.max_iter)
    est.loss_ = float(result.fun)
    Ws, bs = objective.unpack(result.x)
    params = {}
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        params[f"W{l}"], params[f"b{l}"] = W, b
    est.network_ = Network.from_params(params, net.activations, loss=net.loss,
                                       backend=net.backend, dtype=net.dtype, threads=net.threads,
                                       relu_grad_at_zero=net.relu_grad_at_zero)
