"""Mini-batch gradient descent: time per epoch against the batch size.

One workload, the digits problem (``workloads.DIGITS``: 64-64-10
relu/softmax, m = 1347, lr 0.1, float64; sklearn's digits when scikit-learn is
installed, else a synthetic set of the same shape -- ``digits_problem`` says
why), and one group per batch size (``minibatch-B=<B>``): every backend and
every mini-batch peer (``peers.MINIBATCH_NAMES``: the course's NumPy
loop, PyTorch, JAX, scikit-learn's MLPClassifier) from the same initial arrays,
timed interleaved. A timed call trains ``EPOCHS`` epochs (as ``fit(...,
num_iterations=EPOCHS, batch_size=B)``); the report divides by it.

A fastnn backend that cannot train mini-batches (its ``train`` rejects
``batch_size``) fails the group: every backend implements the contract.

Threads: BLAS (NumPy's, so numpy, the course's loop and scikit-learn) and
PyTorch's intra-op pool run one thread in this group (:func:`one_thread`),
as ``bench_dot`` does: the products are 64 x B, too small for a second
thread to pay, and on a shared 2-core machine a 2-thread pool waited for its
descheduled thread -- the first quick run measured numpy 98 ms and PyTorch
459 ms per epoch where one thread takes about 3 ms and 30 ms. fastnn's
compiled backends choose their threads themselves (``threads=None``: one for
a net this small); JAX runs XLA's CPU defaults.

After timing, every implementation's parameters must have lowered the cost
over all m examples; and a fresh copy of each trains ``CHECK_EPOCHS`` epochs
with the shuffles of seed ``SEED`` and is compared with the numpy backend's:
within ``RTOL`` for fastnn backends, recorded for the peers that shuffle the
same way (course, torch, jax: ReLU'(0) = 0 is theirs, irrelevant here where
no Z is exactly 0), not applicable to scikit-learn (its own shuffles).
"""

import contextlib

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastnn import backends, losses
from fastnn._testing import train
from fastnn.report import workloads as wl

from . import peers
from ._harness import (BACKENDS, MODE, Impl, Trainer, check_epochs, ci, epoch_peer_trainer,
                       interleave_epochs, is_slow, require_backend, require_peer)

DIGITS = wl.DIGITS
M = DIGITS.m
#: The batch sizes of the sweep, 1 ... m; the quick run (and plain pytest) a subset.
BATCH_SIZES = [1, 8, 32, 128, 512, M]
QUICK_BATCH_SIZES = [1, 32, M]
#: Epochs per timed call: enough that fastnn's two full-data cost evaluations
#: per call (the first and last epoch's recorded cost, as in ``fit``) and a
#: peer's per-call set-up stay a few percent of the call.
EPOCHS = {"quick": 3, "full": 10}
#: The SLOW rungs' epochs per call: per_example loops over the m examples in
#: Python whatever B is (tens of ms per epoch).
SLOW_EPOCHS = 1
#: The oracle (loops over units and features too) takes seconds per epoch: it
#: runs at these batch sizes of the full run only.
ORACLE_BATCH_SIZES = [32]
#: Shuffle seed of every implementation; epochs of the correctness copies.
SEED = 0
CHECK_EPOCHS = 2


_PROBLEM = []


def _problem():
    """The digits problem, loaded once: fresh copies of the parameters (training
    updates them in place), the data shared (nothing writes to it)."""
    if not _PROBLEM:
        _PROBLEM.append(wl.digits_problem("float64"))
    Ws, bs, acts, X, Y, source = _PROBLEM[0]
    return [W.copy() for W in Ws], [b.copy() for b in bs], list(acts), X, Y, source


def data_source():
    """``"sklearn"`` or ``"synthetic"``: the digits data this run uses."""
    return _problem()[-1]


def backend_minibatch_trainer(name, batch_size):
    """Backend ``name``: ``run(n)`` trains n epochs, as ``fit(num_iterations=n)`` would."""
    backend = require_backend(name)
    Ws, bs, acts, X, Y, _ = _problem()
    rng = np.random.default_rng(SEED)

    def run(n):
        # No try/except: a backend without mini-batches must fail here, loudly.
        train(backend, Ws, bs, acts, "cross_entropy", X, Y, DIGITS.learning_rate, n, n, None,
              None, gram=False, batch_size=batch_size, rng=rng)

    return Trainer(run, lambda: Ws + bs)


def peer_minibatch_trainer(name, batch_size):
    require_peer(name)
    Ws, bs, acts, X, Y, _ = _problem()
    return epoch_peer_trainer(peers.make_minibatch(name, Ws, bs, acts, X, Y,
                                                   DIGITS.learning_rate, batch_size, SEED))


def minibatch_impls(batch_size, quick):
    """``{impl: Impl}`` of the group at ``batch_size``: backends, then peers."""
    impls = {}
    for name in BACKENDS:
        if name == backends.ORACLE and (quick or batch_size not in ORACLE_BATCH_SIZES):
            impls[name] = Impl.skipped(f"{name} takes seconds per epoch; it runs at B = "
                                       f"{', '.join(map(str, ORACLE_BATCH_SIZES))} of the full "
                                       "benchmark only")
            continue
        n = SLOW_EPOCHS if is_slow(name) else EPOCHS["quick" if quick else "full"]
        impls[name] = Impl(lambda name=name: backend_minibatch_trainer(name, batch_size), n,
                           batch_size=batch_size)
    n = EPOCHS["quick" if quick else "full"]
    for peer in peers.MINIBATCH_NAMES:
        impls[f"peer:{peer}"] = Impl(
            lambda peer=peer: peer_minibatch_trainer(peer, batch_size), n,
            batch_size=batch_size, same_shuffles=peer != "sklearn")
    return impls


_references = {}


def reference_params(batch_size, epochs):
    """The numpy backend's ``Ws + bs`` after ``epochs`` epochs with seed ``SEED``."""
    key = (batch_size, epochs)
    if key not in _references:
        trainer = backend_minibatch_trainer("numpy", batch_size)
        trainer.run(epochs)
        _references[key] = trainer.params()
    return _references[key]


def digits_cost(params):
    """The cost over all m examples of ``params`` (``Ws + bs``), by the numpy backend."""
    _, _, acts, X, Y, _ = _problem()
    L = len(params) // 2
    AL, caches = backends.get("numpy").forward(params[:L], params[L:], acts, X, 1)
    return losses.cost("cross_entropy", AL, caches[-1][1], Y, acts[-1])


def check_minibatch(benchmark, impls, trained, batch_size):
    """After timing: costs lowered; fresh copies against numpy's (fastnn within RTOL)."""
    records = benchmark.extra_info["impls"]
    rounds = benchmark.extra_info["rounds"]
    for rec in records.values():
        rec["epochs_trained"] = 1 + rounds * rec["iterations"]
    Ws, bs, *_ = _problem()
    check_epochs(records, impls, trained, cost=digits_cost, start=digits_cost(Ws + bs),
                 reference=lambda name, epochs: reference_params(batch_size, epochs),
                 epochs=CHECK_EPOCHS)


def _start_numbas_threads():
    """Start Numba's thread pool now, if Numba is here. Its OpenMP layer shares
    the process's libgomp with PyTorch and, when the pool starts (the first
    parallel call: a numba engine in the group), sets that runtime's thread
    count to NUMBA_NUM_THREADS -- PyTorch's intra-op threads with it, after
    :func:`one_thread` had set them to one."""
    try:
        from numba.np.ufunc import parallel
    except ImportError:
        return
    parallel._launch_threads()


@contextlib.contextmanager
def one_thread():
    """BLAS and PyTorch at one thread for the block; PyTorch's setting restored after
    (the ladder's peers, later in the same process, keep their default)."""
    torch = None
    if peers.available("torch") is True:
        import torch

        _start_numbas_threads()
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(previous)


def run_group(benchmark, batch_size, quick):
    """Time the group at ``batch_size`` interleaved, then check every result."""
    benchmark.group = f"minibatch-B={batch_size}"
    impls = minibatch_impls(batch_size, quick)
    with one_thread():
        trained = interleave_epochs(
            benchmark, impls, DIGITS.name, m=M, batch_size=batch_size, data=data_source(),
            layer_dims=list(DIGITS.layer_dims), learning_rate=DIGITS.learning_rate,
            flops=wl.flops(DIGITS), blas_threads=1, torch_threads=1)
        check_minibatch(benchmark, impls, trained, batch_size)


@pytest.mark.parametrize("batch_size", BATCH_SIZES, ids=[f"B={b}" for b in BATCH_SIZES])
def test_minibatch(benchmark, batch_size):
    quick = MODE == "quick" or ci(benchmark)
    if quick and batch_size not in QUICK_BATCH_SIZES:
        pytest.skip(f"B={batch_size} runs in the full benchmark only")
    run_group(benchmark, batch_size, quick)
