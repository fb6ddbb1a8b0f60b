"""The drop-in comparison: ``fastnn.sklearn``'s estimators against
scikit-learn's, each with its defaults, fit for fit.

Two kinds of groups, every case timed **interleaved** (one fit of each
implementation per round, the order rotated every round), each fit timed by
the wall clock (``samples``) and by the process's CPU time (``cpu_samples``:
what a fit cost this process whatever else runs on the machine):

- ``dropin-fit-<problem>-<dtype>-<threads>``: ``NetworkClassifier()`` against
  ``MLPClassifier()`` (``NetworkRegressor()`` against ``MLPRegressor()`` on
  the regression problem), both with their defaults -- adam, batch 200, the
  stopping rule on, ``max_iter=200`` -- and ``random_state=0``; seconds per
  whole fit, and the test score of each (accuracy, or R²). The sanity check
  after timing asserts the two scores within ``SCORE_GAP`` (0.5 points) on
  every problem but the course's cats (50 test images: reported only);
- ``dropin-epoch-<problem>-<solver>-<dtype>-<threads>``: per epoch of
  ``sgd`` and ``adam`` at the default batch size (the stopping rule off:
  ``tol=0``, so both run ``EPOCHS`` epochs), and per iteration of ``lbfgs``
  (``max_iter`` iterations, ``tol=0``), with the GEMM floor of lbfgs's
  iteration: the products of its loss-and-gradient evaluations (forward and
  backward, ``flops`` per evaluation, ``evaluations`` per iteration counted in
  the check fit) at the GEMM peak measured beside the group on the same
  threads (``peak_gflops``). On one thread, outside plain pytest, also the
  epoch's (lbfgs: the iteration's evaluations') products alone at one-thread
  BLAS (``products_s``, :mod:`._products`): the least time an epoch there can
  take. After timing, both trained the same model: the
  final training losses agree within ``LOSS_RTOL`` (float64; recorded in
  float32) and both lowered it.

``threads``: ``all`` is what a user gets (fastnn ``threads=None``,
scikit-learn's BLAS on every core), ``one`` holds every pool to one thread
(``threadpool_limits(1)``, fastnn ``threads=1``). dtypes: float64, and
float32 (X cast to float32: scikit-learn keeps it, fastnn trains with
``dtype="float32"``). Problems: :mod:`.dropin_problems`.

``FASTNN_BENCH=quick`` and plain pytest run digits only (the fit group in
float64 with every core, the epoch groups in float64 on one thread); the full
run adds the 50 000 x 100 problems, float32, one thread, and the cats.
"""

import contextlib
import os
import time
import warnings

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from . import dropin_problems as dp
from ._harness import MODE, ROUNDS_OVERRIDE, ci
from ._products import products_seconds

#: The fit groups: (problem, dtype, threads) per mode.
FIT_CASES = {
    "quick": [("digits", "float64", "all")],
    "full": [(p, d, t) for p in ("digits", "dense", "regression") for d in ("float64", "float32")
             for t in ("all", "one")] + [("cat", "float64", "all"), ("cat", "float64", "one")],
}
#: Plain pytest checks the default fit on one thread (every core on a busy machine
#: made it 20 s instead of 2).
CI_FIT_CASES = [("digits", "float64", "one")]
SOLVERS = ("sgd", "adam", "lbfgs")
#: The epoch groups: (problem, solver, dtype, threads) per mode.
EPOCH_CASES = {
    "quick": [("digits", s, "float64", "one") for s in SOLVERS],
    "full": [(p, s, d, t) for p in ("digits", "dense") for s in SOLVERS
             for d in ("float64", "float32") for t in ("one", "all")],
}
#: Epochs (sgd, adam) or iterations (lbfgs) per timed fit of an epoch group.
EPOCHS = {"digits": {"sgd": 20, "adam": 20, "lbfgs": 50},
          "dense": {"sgd": 4, "adam": 4, "lbfgs": 10}}
CI_EPOCHS = 3
ROUNDS = {"fit": {"quick": 3, "full": 3}, "epoch": {"quick": 5, "full": 5}}
if ROUNDS_OVERRIDE is not None:  # FASTNN_BENCH_ROUNDS (see _harness)
    ROUNDS = {kind: {mode: ROUNDS_OVERRIDE for mode in modes} for kind, modes in ROUNDS.items()}
#: The goal's "the same test accuracy": within half a point.
SCORE_GAP = 0.005
#: The same model: the final training losses of an epoch group, float64.
LOSS_RTOL = 1e-6
SEED = 0
HIDDEN = (100,)  # both estimators' default
PEAK_N = 1024
IMPLS = ("sklearn", "fastnn")


def _estimators(problem):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    from fastnn.sklearn import NetworkClassifier, NetworkRegressor

    if problem in dp.CLASSIFICATION:
        return MLPClassifier, NetworkClassifier
    return MLPRegressor, NetworkRegressor


def makers(problem, dtype, threads, **params):
    """``{impl: make()}`` of a fresh estimator each: scikit-learn's and fastnn's,
    ``params`` (and ``random_state``) on both."""
    peer, ours = _estimators(problem)
    params = dict(random_state=SEED, **params)
    return {"sklearn": lambda: peer(**params),
            "fastnn": lambda: ours(dtype=dtype, threads=1 if threads == "one" else None,
                                   **params)}


def epoch_params(problem, solver, n=None):
    """What an epoch group sets: the solver, n epochs (iterations), no stopping."""
    n = n or EPOCHS[problem][solver]
    return dict(solver=solver, max_iter=n, tol=0.0, n_iter_no_change=10 ** 9)


@contextlib.contextmanager
def thread_policy(threads):
    """Every pool at one thread (``one``) or as the user has them (``all``)."""
    with threadpool_limits(limits=1) if threads == "one" else contextlib.nullcontext():
        yield


def data(problem, dtype):
    X, y, Xt, yt = dp.load(problem)
    return X.astype(dtype), y, Xt.astype(dtype), yt


def flops_per_evaluation(n_features, n_outputs, m, hidden=HIDDEN):
    """The products of one loss-and-gradient over m samples: Z = W A and dW =
    dZ Aᵀ on every layer, dA = Wᵀ dZ on all but the first."""
    dims = [n_features, *hidden, n_outputs]
    return sum(2 * m * a * b * (2 if l == 0 else 3) for l, (a, b) in enumerate(zip(dims,
                                                                                    dims[1:])))


def n_outputs(problem):
    _, y, _, _ = dp.load(problem)
    if problem not in dp.CLASSIFICATION:
        return 1
    k = len(np.unique(y))
    return 1 if k == 2 else k


class _Counting:
    """``scipy.optimize.minimize`` wrapped for a block: the ``nfev`` and ``nit``
    of every L-BFGS-B run in it (both estimators call it through the module)."""

    def __init__(self):
        self.runs = []

    def __enter__(self):
        import scipy.optimize

        self._module, self._minimize = scipy.optimize, scipy.optimize.minimize

        def minimize(*args, **kwargs):
            result = self._minimize(*args, **kwargs)
            self.runs.append((int(result.nfev), int(result.nit)))
            return result

        scipy.optimize.minimize = minimize
        return self

    def __exit__(self, *exc):
        self._module.minimize = self._minimize


@contextlib.contextmanager
def _quiet():
    """No ConvergenceWarning: reaching ``max_iter`` is the point of an epoch group."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _fit(make, X, y):
    est = make()
    wall, cpu = time.perf_counter(), time.process_time()
    est.fit(X, y)
    return est, time.perf_counter() - wall, time.process_time() - cpu


def interleave_fits(benchmark, makes, X, y, *, per_iteration, rounds):
    """Fit each of ``makes`` (``{impl: make()}``) once per round, interleaved;
    the first fit (``max_iter=2``) outside the timer. Returns ``(records,
    {impl: the last fitted estimator})``; a record's ``samples`` (and
    ``cpu_samples``) are seconds per fit, or per epoch (iteration) with
    ``per_iteration``."""
    records, fitted = {}, {}
    for impl, make in makes.items():
        start = time.perf_counter()
        make().set_params(max_iter=2).fit(X, y)
        records[impl] = {"first_call_s": time.perf_counter() - start, "samples": [],
                         "cpu_samples": [], "n_iter": []}
    order = list(makes)
    state = {"round": 0}

    def one_round():
        shift = state["round"] % len(order)
        state["round"] += 1
        for impl in order[shift:] + order[:shift]:
            est, wall, cpu = _fit(makes[impl], X, y)
            per = est.n_iter_ if per_iteration else 1
            rec = records[impl]
            rec["samples"].append(wall / per)
            rec["cpu_samples"].append(cpu / per)
            rec["n_iter"].append(int(est.n_iter_))
            fitted[impl] = est

    benchmark.pedantic(one_round, rounds=1 if ci(benchmark) else rounds, iterations=1,
                       warmup_rounds=0)
    for impl, est in fitted.items():
        records[impl].update(iterations=1, rounds=state["round"])
        if hasattr(est, "backend_"):
            used = getattr(est.network_, "threads_used_", None) or (None, None)
            records[impl].update(backend=est.backend_, threads=used[0], threads_why=used[1])
        for p in est.coefs_ + est.intercepts_:
            assert np.all(np.isfinite(p)), f"{impl} produced non-finite parameters"
    return records, fitted


def _load():
    return [round(x, 2) for x in os.getloadavg()]


def _meta(problem, dtype, threads, X):
    return dict(problem=problem, kind=dp.PROBLEMS[problem][0],
                description=dp.PROBLEMS[problem][1], dtype=dtype, threads=threads,
                n_samples=int(X.shape[0]), n_features=int(X.shape[1]), hidden=list(HIDDEN),
                n_outputs=n_outputs(problem), cpus=len(os.sched_getaffinity(0)),
                load_before=_load())


def run_fit_group(benchmark, problem, dtype, threads):
    """Time the default fits of ``problem``; check their test scores."""
    why = dp.why_not(problem)
    if why:
        pytest.skip(why)
    benchmark.group = f"dropin-fit-{problem}-{dtype}-{threads}"
    X, y, Xt, yt = data(problem, dtype)
    with _quiet(), thread_policy(threads):
        meta = _meta(problem, dtype, threads, X)
        records, fitted = interleave_fits(benchmark, makers(problem, dtype, threads), X, y,
                                          per_iteration=False, rounds=ROUNDS["fit"][MODE])
    for impl, est in fitted.items():
        records[impl].update(score=float(est.score(Xt, yt)), loss=float(est.loss_),
                             dtype=dtype)
    gap = records["fastnn"]["score"] - records["sklearn"]["score"]
    benchmark.extra_info.update(meta, impls=records, skipped={}, score_gap=gap,
                                score_checked=problem != "cat", load_after=_load(),
                                rounds=records["fastnn"]["rounds"], workload=problem)
    if problem != "cat":  # 50 test images: one is 2 points; reported only
        assert abs(gap) <= SCORE_GAP, (
            f"{problem} {dtype}: fastnn's test score {records['fastnn']['score']:.4f} is not "
            f"within {SCORE_GAP} of scikit-learn's {records['sklearn']['score']:.4f}")


def _peak(dtype, threads):
    from fastnn.report import machine

    with thread_policy(threads):
        return machine.gemm_peak(dtype, PEAK_N)


def run_epoch_group(benchmark, problem, solver, dtype, threads):
    """Time ``solver``'s epochs (iterations) of ``problem``; check the model."""
    why = dp.why_not(problem)
    if why:
        pytest.skip(why)
    benchmark.group = f"dropin-epoch-{problem}-{solver}-{dtype}-{threads}"
    X, y, _, _ = data(problem, dtype)
    params = epoch_params(problem, solver, CI_EPOCHS if ci(benchmark) else None)
    makes = makers(problem, dtype, threads, **params)
    lbfgs = solver == "lbfgs" and not ci(benchmark)
    peaks = [_peak(dtype, threads)] if lbfgs else []
    # One evaluation's products (lbfgs: full batch), or an epoch's at the default batch size.
    floor = dict(layer_dims=[X.shape[1], *HIDDEN, n_outputs(problem)], m=X.shape[0],
                 batch_size=X.shape[0] if solver == "lbfgs" else min(200, X.shape[0]),
                 dtype=dtype)
    products = [products_seconds(**floor)] if threads == "one" and not ci(benchmark) else []
    with _quiet(), thread_policy(threads):
        meta = _meta(problem, dtype, threads, X)
        records, fitted = interleave_fits(benchmark, makes, X, y, per_iteration=True,
                                          rounds=ROUNDS["epoch"][MODE])
        if solver == "lbfgs":
            for impl, make in makes.items():
                with _Counting() as counted:
                    make().fit(X, y)
                nfev, nit = counted.runs[-1]
                records[impl].update(evaluations=nfev, lbfgs_iterations=nit)
    if lbfgs:
        peaks.append(_peak(dtype, threads))
    if products:
        products.append(products_seconds(**floor))
        fn = records["fastnn"]
        per = fn["evaluations"] / fn["lbfgs_iterations"] if solver == "lbfgs" else 1
        benchmark.extra_info["products_s"] = min(products) * per
    start = {}
    for impl, est in fitted.items():
        records[impl].update(loss=float(est.loss_), dtype=dtype, solver=solver)
        if solver != "lbfgs":
            start[impl] = float(est.loss_curve_[0])
            records[impl]["loss_first_epoch"] = start[impl]
    losses = {impl: records[impl]["loss"] for impl in records}
    rel = abs(losses["fastnn"] - losses["sklearn"]) / abs(losses["sklearn"])
    benchmark.extra_info.update(
        meta, impls=records, skipped={}, solver=solver, epochs=params["max_iter"],
        batch_size=min(200, X.shape[0]) if solver != "lbfgs" else X.shape[0],
        flops_per_evaluation=flops_per_evaluation(X.shape[1], meta["n_outputs"], X.shape[0]),
        peak_gflops=max(peaks) if peaks else None, loss_rel_diff=rel, load_after=_load(),
        rounds=records["fastnn"]["rounds"], workload=problem)
    for impl, first in start.items():
        if records[impl]["n_iter"][-1] > 1:
            assert losses[impl] < first, f"{impl} did not lower the loss ({first} -> " \
                                         f"{losses[impl]})"
    if dtype == "float64":
        assert rel <= LOSS_RTOL, (f"{problem} {solver}: the final losses differ by {rel:.2e} "
                                  f"(fastnn {losses['fastnn']}, scikit-learn "
                                  f"{losses['sklearn']}): not the same model")


def _ids(case):
    return "-".join(case)


_ALL_FIT = FIT_CASES["full"] + [c for c in FIT_CASES["quick"] + CI_FIT_CASES
                                 if c not in FIT_CASES["full"]]
_ALL_EPOCH = EPOCH_CASES["full"] + [c for c in EPOCH_CASES["quick"]
                                    if c not in EPOCH_CASES["full"]]


@pytest.mark.parametrize("case", _ALL_FIT, ids=_ids)
def test_dropin_fit(benchmark, case):
    if case not in (CI_FIT_CASES if ci(benchmark) else FIT_CASES[MODE]):
        pytest.skip(f"{_ids(case)} runs in the full benchmark only (FASTNN_BENCH=full)")
    run_fit_group(benchmark, *case)


@pytest.mark.parametrize("case", _ALL_EPOCH, ids=_ids)
def test_dropin_epoch(benchmark, case):
    if case not in EPOCH_CASES["quick" if ci(benchmark) else MODE]:
        pytest.skip(f"{_ids(case)} runs in the full benchmark only (FASTNN_BENCH=full)")
    run_epoch_group(benchmark, *case)
