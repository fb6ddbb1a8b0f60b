"""The course's second part: what an epoch with Adam, or with dropout, costs,
and how fastnn's Adam compares with its peers'.

Three kinds of groups, each in float64 and float32, every implementation timed
interleaved (``_harness.interleave``) and **per epoch**:

- ``optim-cost-<dtype>-B=<B>``: per fastnn backend, an epoch of plain
  gradient descent (``gd``), of Adam (``adam``) and of gradient descent with
  inverted dropout, keep_prob 0.8 on both hidden layers (``dropout``), on the
  :data:`~fastnn.report.workloads.CLASSES` workload (100-128-64-5
  relu/softmax, 45 000 synthetic examples) at batch sizes ≥ 32;
- ``optim-adam-<dtype>``: the same workload at B = 200 with Adam: every fastnn
  backend against the Adam peers (:mod:`.peers_adam`: the course's NumPy loop,
  PyTorch's ``optim.Adam``, optax's ``adam`` in a jitted ``lax.scan`` epoch,
  ``MLPClassifier(solver="adam")``), with the one-thread GEMM peak measured
  beside it (``peak_gflops``) so the report can say what fraction of it the
  epoch's products reach, and the epoch's products alone at BLAS
  (``products_s``: :func:`products_floor`), the time no epoch on one thread
  goes below with that BLAS;
- ``optim-digits-<dtype>-B=<B>``: the digits workload (64-64-10, sklearn's
  ``load_digits`` / 16) with Adam at B = 1, 32 and 200, every fastnn backend
  and every peer.

``FASTNN_BENCH=quick`` runs the cost groups at B = 32 only, the cost and digits
groups in float64 only, one epoch per timed call; plain pytest checks B = 32 in
float64 on 2 000 examples of CLASSES (and the Adam group in float32 too).

fastnn backends are those that train with the course's second part,
``backends.having("HAS_OPTIMIZERS")``; the others are recorded as not run, with
the reason. An epoch is what ``fit(..., batch_size=B)`` trains -- the same
Fit, engine, shuffles and thread decision as the driver (:func:`_base.train`)
-- without the driver's recorded costs (a full-data forward, 40 % of an
epoch's products here, which no peer computes).

Threads: as in the mini-batch group (:func:`.bench_minibatch.one_thread`),
BLAS and PyTorch run one thread, so ``threads=None`` gives fastnn's compiled
backends one too (recorded per implementation, ``threads``); JAX runs XLA's
defaults.

After timing every implementation must have lowered the full-data cost (a
broken peer cannot win), and a fresh copy of each fastnn backend and of the
peers that shuffle as fastnn does trains ``CHECK_EPOCHS`` epochs and is
compared with the numpy backend's of the same dtype: fastnn backends within
``RTOL`` in float64 (asserted), the rest recorded.
"""

import contextlib

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastnn import _validation as _v
from fastnn import backends, losses
from fastnn.backends import _base, _threads
from fastnn.report import workloads as wl

from . import peers_adam
from ._harness import (BACKENDS, MODE, Impl, check_epochs, ci, epoch_peer_trainer,
                       interleave_epochs, is_slow, require_backend, require_peer)
from ._products import products_seconds
from .bench_minibatch import data_source, one_thread
from .sweeps import blas_threads

DTYPES = ["float64", "float32"]
#: Adam's usual rate, for every variant (the time of an epoch does not depend on it).
LEARNING_RATE = 0.001
KEEP_PROB = 0.8
#: The variants of the cost groups: ``fit``'s options for each.
VARIANTS = {"gd": {"optimizer": "gd", "keep_prob": 1.0},
            "adam": {"optimizer": "adam", "keep_prob": 1.0},
            "dropout": {"optimizer": "gd", "keep_prob": KEEP_PROB}}
COST_BATCH_SIZES = {"quick": [32], "full": [32, 200, 1000]}
ADAM_BATCH = 200
DIGITS_BATCH_SIZES = [1, 32, 200]
#: The dtypes of the cost and digits groups (the quick run: float64 only; the Adam
#: group runs both in every mode).
GROUP_DTYPES = {"quick": ["float64"], "full": DTYPES}
#: Under plain pytest (a check, not a timing): the CLASSES workload's examples,
#: and the cases run -- float32 only in the Adam group, one batch size each.
CI_M = 2000
CI_BATCH_SIZE = 32
#: Epochs per timed call, about 0.1 s or more each: one epoch of 45 000 examples
#: is a fraction of a second; one of digits ranges from a third of a second (at B
#: = 1, for most implementations) to a few milliseconds (B = 200).
EPOCHS = {"classes": {"quick": 1, "full": 2}}
DIGITS_EPOCHS = {"quick": {1: 1, 32: 1, 200: 2}, "full": {1: 1, 32: 3, 200: 10}}
#: The SLOW rungs run only where an epoch takes seconds at most: per_example
#: (a Python loop over examples) up to this many examples, the oracle (loops
#: over units and features too) up to ORACLE_M.
SLOW_M, ORACLE_M = 2000, 300
SEED = 0
CHECK_EPOCHS = 1
#: "Until further notice": the schedule's epoch count; the timed calls run epochs
#: one call at a time, as the driver's slices do.
MAX_EPOCHS = 10 ** 9

_PROBLEMS = {}


def problem(name, m, dtype):
    """Fresh parameters (training updates them in place) and the shared data of
    workload ``name`` ("classes" or "digits"): ``(Ws, bs, acts, X, Y)``."""
    key = (name, m, dtype)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = (wl.classes_problem(m, dtype) if name == "classes"
                          else wl.digits_problem(dtype)[:5])
    Ws, bs, acts, X, Y = _PROBLEMS[key]
    return [W.copy() for W in Ws], [b.copy() for b in bs], list(acts), X, Y


class Epochs:
    """Backend ``name`` training ``problem`` with ``variant`` as ``fit(...,
    batch_size=B, seed=SEED)`` does, one engine for the whole run: ``run(n)``
    trains n more epochs (``run(a); run(b)`` is ``run(a + b)``, the engine
    contract), ``params()`` closes the engine and returns ``Ws + bs``.

    ``every_core``: an engine for each ``run`` (the Fit carries the weights,
    the optimizer's state and its steps from one to the next), so that no
    engine of this one holds the process's thread settings (BLAS's pool,
    Numba's threads) while its neighbours in the group run theirs, and the
    thread decision, made here, sees none of theirs either."""

    def __init__(self, name, key, batch_size, variant, every_core=False):
        backend = require_backend(name)
        Ws, bs, acts, X, Y = problem(*key)
        course2 = dict(VARIANTS[variant], lambd=0.0, decay_rate=0.0, time_interval=1,
                       n_hidden=len(acts) - 1)
        schedule = _v.check_schedule(LEARNING_RATE, MAX_EPOCHS, MAX_EPOCHS, batch_size, False,
                                     X.shape[1], name, course2)
        params = {f"{p}{l}": a for l, (W, b) in enumerate(zip(Ws, bs), start=1)
                  for p, a in (("W", W), ("b", b))}
        self.fit = _base.Fit(_base.Problem(X, Y, tuple(acts), "cross_entropy"), schedule, Ws,
                             bs, rng=np.random.default_rng(SEED),
                             optimizer_state=schedule.optimizer.init(params))
        self.fit.threads, self.fit.threads_why = _base.decide_threads(backend, self.fit, None)
        self.backend, self.every_core = backend, every_core
        self.engine = None if every_core else self._open()
        self.closed = False
        self.info = {"threads": self.fit.threads, "threads_why": self.fit.threads_why}

    def _open(self):
        return (self.backend.engine(self.fit) if hasattr(self.backend, "engine")
                else _base.PythonEngine(self.backend, self.fit))

    def run(self, n):
        m, B = self.fit.problem.m, self.fit.schedule.batch_size
        engine = self._open() if self.every_core else self.engine
        try:
            with _threads.running():
                engine.run(n, _base.epoch_orders(self.fit.rng, m, n), False)
        finally:
            if self.every_core:
                engine.close()
        self.fit.steps += n * -(-m // B)

    def params(self):
        self.close()
        return self.fit.Ws + self.fit.bs

    def close(self):
        if not self.closed:
            self.closed = True
            if self.engine is not None:
                self.engine.close()


def peer_trainer(name, key, batch_size):
    require_peer(name, peers_adam)
    Ws, bs, acts, X, Y = problem(*key)
    return epoch_peer_trainer(peers_adam.make(name, Ws, bs, acts, X, Y, LEARNING_RATE,
                                              batch_size, SEED))


def why_not(name, m):
    """Why backend ``name`` does not run an epoch of m examples here, or None."""
    status = backends.available()[name]
    if status is not True:
        return f"unavailable: {status}"
    if name not in backends.having("HAS_OPTIMIZERS"):
        return "trains plain gradient descent only in this build (HAS_OPTIMIZERS is False)"
    if name == backends.ORACLE and m > ORACLE_M:
        return f"loops over units and features in Python: runs at m ≤ {ORACLE_M} only"
    if is_slow(name) and m > SLOW_M:
        return f"loops over examples in Python: runs at m ≤ {SLOW_M:,} only"
    return None


def _epochs(workload, batch_size, name=None):
    """Epochs per timed call of backend ``name`` (or a peer: None)."""
    if name is not None and is_slow(name):
        return 1
    if workload == "digits":
        return DIGITS_EPOCHS[MODE].get(batch_size, 1)
    return EPOCHS[workload][MODE]


def cost_impls(key, batch_size):
    """The cost group's ``{impl: Impl}``: ``"<backend> <variant>"`` per backend."""
    impls = {}
    for name in BACKENDS:
        reason = why_not(name, key[1])
        for variant in VARIANTS:
            impl = f"{name} {variant}"
            impls[impl] = Impl.skipped(reason) if reason else Impl(
                lambda name=name, variant=variant: Epochs(name, key, batch_size, variant),
                _epochs(key[0], batch_size, name), dtype=key[2], backend=name, variant=variant,
                same_shuffles=True)
    return impls


def adam_impls(key, batch_size, peer_names=None, backend_names=None, every_core=False):
    """Every fastnn backend (or those of ``backend_names``; ``every_core``: see
    :class:`Epochs`) and every Adam peer (or those of ``peer_names``) with
    Adam: ``{impl: Impl}``."""
    impls = {}
    for name in BACKENDS if backend_names is None else backend_names:
        reason = why_not(name, key[1])
        impls[name] = Impl.skipped(reason) if reason else Impl(
            lambda name=name: Epochs(name, key, batch_size, "adam", every_core),
            _epochs(key[0], batch_size, name),
            dtype=key[2], backend=name, variant="adam", same_shuffles=True)
    for peer in peers_adam.NAMES if peer_names is None else peer_names:
        impls[f"peer:{peer}"] = Impl(lambda peer=peer: peer_trainer(peer, key, batch_size),
                                     _epochs(key[0], batch_size), dtype=key[2], variant="adam",
                                     same_shuffles=peer != "sklearn")
    return impls


def full_cost(key, params):
    """The cost over all m examples of ``params`` (``Ws + bs``), by the numpy backend
    in float64."""
    _, _, acts, X, Y = problem(*key)
    L = len(params) // 2
    params = [np.asarray(p, np.float64) for p in params]
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    AL, caches = backends.get("numpy").forward(params[:L], params[L:], acts, X64, 1)
    return losses.cost("cross_entropy", AL, caches[-1][1], Y64, acts[-1])


_references = {}


def reference(key, batch_size, variant, epochs):
    """The numpy backend's ``Ws + bs`` after ``epochs`` epochs of ``variant``."""
    ref_key = (key, batch_size, variant, epochs)
    if ref_key not in _references:
        trainer = Epochs("numpy", key, batch_size, variant)
        trainer.run(epochs)
        _references[ref_key] = trainer.params()
    return _references[ref_key]


def check(records, impls, trained, key, batch_size):
    """After timing: costs lowered; fresh copies against numpy's (fastnn within RTOL
    in float64, asserted)."""
    check_epochs(records, impls, trained, cost=lambda params: full_cost(key, params),
                 start=full_cost(key, sum(problem(*key)[:2], [])),
                 reference=lambda name, epochs: reference(
                     key, batch_size, impls[name].info["variant"], epochs),
                 epochs=CHECK_EPOCHS)


#: The side of the square GEMM that measures the one-thread peak.
PEAK_N = 1024


def one_thread_peak(dtype):
    """The GEMM peak (GFLOP/s) of one thread: the ceiling of an epoch that runs on one."""
    from fastnn.report import machine

    with threadpool_limits(limits=1, user_api="blas"):
        return machine.gemm_peak(dtype, PEAK_N)


def products_floor(key, batch_size, rounds=5):
    """Seconds per epoch of the epoch's products alone
    (:func:`._products.products_seconds`) on workload ``key``: an epoch on
    one thread whose products run at this BLAS's speed cannot take less; the
    report holds the peers' goals to it."""
    workload = wl.CLASSES if key[0] == "classes" else wl.DIGITS
    return products_seconds(workload.layer_dims, key[1], batch_size, key[2], rounds, SEED)


def every_core_peak(dtype):
    """The GEMM peak (GFLOP/s) of BLAS's whole pool, and its thread count."""
    from fastnn.report import machine

    return machine.gemm_peak(dtype, PEAK_N), blas_threads()


def _torch_threads():
    if peers_adam.available("torch") is not True:
        return None
    import torch

    return torch.get_num_threads()


def run_group(benchmark, group, impls, key, batch_size, peak=False, every_core=False):
    """Time ``impls`` on problem ``key`` at ``batch_size`` interleaved, then check:
    BLAS and PyTorch on one thread (so ``threads=None`` gives fastnn's backends
    one), or with ``every_core`` all at their defaults (BLAS's pool, PyTorch's
    intra-op threads, fastnn's ``threads=None``). ``peak``: the GEMM peak of
    those threads measured before and after, and on one thread the epoch's
    products alone (:func:`products_floor`)."""
    benchmark.group = group
    workload = wl.CLASSES if key[0] == "classes" else wl.DIGITS
    m = key[1]
    peak = peak and not ci(benchmark)
    if every_core:
        limits, threads = contextlib.nullcontext(), dict(blas_threads=blas_threads(),
                                                         torch_threads=_torch_threads())
        measure_peak = every_core_peak
    else:
        limits, threads = one_thread(), dict(blas_threads=1, torch_threads=1)
        measure_peak = lambda dtype: (one_thread_peak(dtype), 1)  # noqa: E731
    peaks = [measure_peak(key[2])] if peak else []
    floors = [products_floor(key, batch_size)] if peak and not every_core else []
    with limits:
        trained = interleave_epochs(
            benchmark, impls, workload.name, m=m, batch_size=batch_size, dtype=key[2],
            workload_name=workload.name, layer_dims=list(workload.layer_dims),
            learning_rate=LEARNING_RATE, keep_prob=KEEP_PROB, flops=wl.flops(workload, m),
            **threads, without_optimizers=[n for n in backends.having("HAS_OPTIMIZERS", False)],
            data="synthetic" if key[0] == "classes" else data_source())
        check(benchmark.extra_info["impls"], impls, trained, key, batch_size)
    if peaks:
        peaks.append(measure_peak(key[2]))
        benchmark.extra_info["peak_gflops"], benchmark.extra_info["peak_threads"] = max(peaks)
    if floors:
        floors.append(products_floor(key, batch_size))
        benchmark.extra_info["products_s"] = min(floors)


def _classes_m(benchmark):
    return CI_M if ci(benchmark) else wl.CLASSES.m


def _ci_only(benchmark, batch_size, dtype):
    if ci(benchmark) and (batch_size != CI_BATCH_SIZE or dtype != "float64"):
        pytest.skip(f"plain pytest checks B={CI_BATCH_SIZE}, float64 here; the benchmark runs "
                    "the rest")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", COST_BATCH_SIZES["full"],
                         ids=[f"B={b}" for b in COST_BATCH_SIZES["full"]])
def test_optimizer_cost(benchmark, batch_size, dtype):
    _ci_only(benchmark, batch_size, dtype)
    if batch_size not in COST_BATCH_SIZES[MODE] or dtype not in GROUP_DTYPES[MODE]:
        pytest.skip(f"B={batch_size} in {dtype} runs in the full benchmark only")
    key = ("classes", _classes_m(benchmark), dtype)
    run_group(benchmark, f"optim-cost-{dtype}-B={batch_size}", cost_impls(key, batch_size),
              key, batch_size)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_adam(benchmark, dtype):
    key = ("classes", _classes_m(benchmark), dtype)
    run_group(benchmark, f"optim-adam-{dtype}", adam_impls(key, ADAM_BATCH), key, ADAM_BATCH,
              peak=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizer_adam_every_core(benchmark, dtype):
    """The Adam group again with every implementation at its thread defaults
    (what a user's fit gets on this machine); the full benchmark only."""
    if MODE != "full" and not ci(benchmark):
        pytest.skip("every core: the full benchmark only (FASTNN_BENCH=full)")
    key = ("classes", _classes_m(benchmark), dtype)
    run_group(benchmark, f"optim-adamall-{dtype}",
              adam_impls(key, ADAM_BATCH, backend_names=backends.having("COMPILED"),
                         every_core=True),
              key, ADAM_BATCH, peak=True, every_core=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size", DIGITS_BATCH_SIZES,
                         ids=[f"B={b}" for b in DIGITS_BATCH_SIZES])
def test_optimizer_digits(benchmark, batch_size, dtype):
    _ci_only(benchmark, batch_size, dtype)
    if dtype not in GROUP_DTYPES[MODE]:
        pytest.skip(f"digits in {dtype} runs in the full benchmark only")
    key = ("digits", wl.DIGITS.m, dtype)
    run_group(benchmark, f"optim-digits-{dtype}-B={batch_size}", adam_impls(key, batch_size),
              key, batch_size)
