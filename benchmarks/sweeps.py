"""Sweeps: the wall time of the same sweep against ``n_jobs`` and the engine.

Two workloads, each for fastnn's vectorized backends and for scikit-learn's
``MLPClassifier`` (plain SGD, the same algorithm):

``grid``
    ``GridSearchCV(NetworkClassifier((128, 64), max_iter=15, tol=0),
    {learning_rate_init: 4 values, batch_size: 64 and 256}, cv=2)`` on a
    20 000 x 100, 3-class problem (16 fits and the refit): a user tuning
    hyper-parameters. A parallel run must take no longer than the serial one.
``digits16``
    16 fits of the digits size (64-64-10 relu/softmax, m = 1797, batch 200,
    300 epochs each), workers already started: a parallel run with 2 jobs
    should take at most 1/1.6 of the serial one.

Engines: ``serial`` (``n_jobs=1``), joblib's ``loky`` and ``threading`` with
``n_jobs=2``, and ``dask`` (a ``LocalCluster`` of 2 worker processes x 1
thread, started by this command, through ``joblib.parallel_config("dask")``).
Workers are warmed before timing (imports, Numba's cache loads); each run
records the threads every fit used (``threads_used_``; for MLPClassifier the
BLAS pool's size where it ran) and why::

    python -m fastnn.benchmarks.sweeps                      # everything, minutes
    python -m fastnn.benchmarks.sweeps --quick              # smaller sizes
    python -m fastnn.benchmarks.sweeps --impls cython numba --engines serial loky \\
        --json sweeps.json

``--json`` writes the rows :func:`fastnn.report.sweeps.section` turns into the
report's "sweeps" section. Needs scikit-learn (and Dask for ``dask``).
"""

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import numpy as np

#: The engines, as (name, n_jobs).
ENGINES = {"serial": 1, "loky": 2, "threading": 2, "dask": 2}
IMPLS = ("numpy", "numba", "cython", "MLPClassifier")
WORKLOADS = ("grid", "digits16")
#: Learning rates and batch sizes of the grid workload.
GRID = {"learning_rate_init": [0.003, 0.01, 0.03, 0.1], "batch_size": [64, 256]}


def _sizes(quick):
    if quick:
        return {"grid_m": 4000, "grid_epochs": 3, "digits_fits": 8, "digits_epochs": 30}
    return {"grid_m": 20_000, "grid_epochs": 15, "digits_fits": 16, "digits_epochs": 300}


def _estimator(impl, hidden, epochs, **params):
    never = 10**9  # n_iter_no_change: every epoch runs
    if impl == "MLPClassifier":
        from sklearn.neural_network import MLPClassifier

        return MLPClassifier(hidden, solver="sgd", momentum=0, alpha=0, max_iter=epochs, tol=0,
                             n_iter_no_change=never, random_state=0, **params)
    from fastnn.sklearn import NetworkClassifier

    return NetworkClassifier(hidden, solver="sgd", momentum=0, alpha=0,
                             max_iter=epochs, tol=0, n_iter_no_change=never,
                             random_state=0, backend=impl, **params)


def grid_data(m, seed=0):
    """The grid workload's X (m, 100) standardized and y in 0..2."""
    from sklearn.datasets import make_classification
    from sklearn.preprocessing import StandardScaler

    X, y = make_classification(n_samples=m, n_features=100, n_informative=20, n_classes=3,
                               random_state=seed)
    return StandardScaler().fit_transform(X), y


def digits_data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16, y


# -- what a fit ran on -------------------------------------------------------------------

def blas_threads():
    """The thread count of NumPy's BLAS pool here (what MLPClassifier's products use)."""
    from threadpoolctl import threadpool_info

    pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    return max(pools) if pools else 1


def threads_of(estimator):
    """``(threads, why)`` an estimator's last fit ran on. MLPClassifier's
    products are NumPy's BLAS calls: its threads are that pool's where the fit
    ran; fastnn's estimators say theirs (``threads_used_``)."""
    used = getattr(estimator, "threads_used_", None)
    if used is None:
        return blas_threads(), "NumPy's BLAS pool where it ran"
    return used


def _threads_scorer(estimator, X, y):
    """A GridSearchCV "score": the threads the fit ran on."""
    return float(threads_of(estimator)[0])


def _fit_one(estimator, X, y):
    """In a worker: fit; ``(threads, why, seconds, training accuracy)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: max_iter is the point
        start = time.perf_counter()
        estimator.fit(X, y)
        seconds = time.perf_counter() - start
    return (*threads_of(estimator), seconds, estimator.score(X, y))


# -- the two sweeps ----------------------------------------------------------------------

def run_grid(impl, X, y, epochs):
    """The grid sweep; ``(seconds, [(threads, why)] per fit, best mean accuracy)``."""
    import joblib
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(_estimator(impl, (128, 64), epochs), GRID, cv=2,
                          scoring={"accuracy": "accuracy", "threads": _threads_scorer},
                          refit="accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        search.fit(X, y)
        seconds = time.perf_counter() - start
        # Why the fits got their threads: one more epoch of the biggest
        # batches, where they ran (the thread decision depends on the batch).
        probe = joblib.Parallel()(joblib.delayed(_fit_one)(
            _estimator(impl, (128, 64), 1, batch_size=max(GRID["batch_size"])), X, y)
            for _ in range(2))
    res = search.cv_results_
    threads = [res[k][i] for k in res if k.startswith("split") and k.endswith("_test_threads")
               for i in range(len(res[k]))]
    whys = sorted({why for _, why, _, _ in probe})
    used = [(None if np.isnan(t) else int(t), "; ".join(whys)) for t in threads]
    return seconds, used, float(search.best_score_)


def run_digits(impl, X, y, fits, epochs):
    """``fits`` digits fits as one joblib sweep; ``(seconds, [(threads, why)],
    [training accuracy of each fit])``."""
    import joblib

    estimators = [_estimator(impl, (64,), epochs, batch_size=200, learning_rate_init=0.1)
                  .set_params(random_state=seed) for seed in range(fits)]
    start = time.perf_counter()
    out = joblib.Parallel()(joblib.delayed(_fit_one)(e, X, y) for e in estimators)
    seconds = time.perf_counter() - start
    return seconds, [(t, why) for t, why, _, _ in out], [acc for _, _, _, acc in out]


def warm(impl, n_jobs):
    """Start the engine's workers and load ``impl`` in each (imports, Numba's
    cache), so the sweep times training only."""
    import joblib

    X, y = grid_data(200)
    joblib.Parallel()(joblib.delayed(_fit_one)(_estimator(impl, (8,), 1, batch_size=50), X, y)
                      for _ in range(2 * n_jobs))


# -- running it all ----------------------------------------------------------------------

def _cpu():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _summary(used):
    return sorted({t for t, _ in used}), sorted({w for _, w in used})


def run(impls=IMPLS, engines=tuple(ENGINES), workloads=WORKLOADS, quick=False, repeat=1,
        log=print, sizes=None):
    """Every (workload, impl, engine) sweep; the rows of the report's table.
    ``sizes`` overrides :func:`_sizes`' entries."""
    import joblib

    from fastnn import backends

    sizes = {**_sizes(quick), **(sizes or {})}
    data = {"grid": grid_data(sizes["grid_m"]), "digits16": digits_data()}
    impls = [i for i in impls if i == "MLPClassifier" or backends.available().get(i) is True]
    cluster = client = None
    if "dask" in engines:
        import logging

        import distributed

        # The nanny sets its workers' limits (OMP_NUM_THREADS=1 ...) in this
        # process's environment before spawning them; the serial, loky and
        # threading runs here must not inherit them.
        saved = dict(os.environ)
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=logging.ERROR)
        os.environ.clear()
        os.environ.update(saved)
        client = distributed.Client(cluster)
    rows = []
    try:
        for workload in workloads:
            X, y = data[workload]
            for impl in impls:
                for engine in engines:
                    n_jobs = ENGINES[engine]
                    config = dict(backend="loky" if engine == "serial" else engine,
                                  n_jobs=n_jobs)
                    with joblib.parallel_config(**config):
                        warm(impl, n_jobs)
                        times, used, score = [], [], None
                        for _ in range(repeat):
                            if workload == "grid":
                                t, used, score = run_grid(impl, X, y, sizes["grid_epochs"])
                            else:
                                t, used, score = run_digits(impl, X, y, sizes["digits_fits"],
                                                            sizes["digits_epochs"])
                            times.append(t)
                    counts, whys = _summary(used)
                    row = {"workload": workload, "impl": impl, "engine": engine,
                           "n_jobs": n_jobs, "seconds": statistics.median(times),
                           "samples": times, "fits": len(used), "threads": counts,
                           "threads_why": whys, "score": score}
                    rows.append(row)
                    log(_line(row))
    finally:
        if client is not None:
            client.close()
            cluster.close()
    return rows


def _line(row):
    threads = ",".join(str(t) for t in row["threads"])
    return (f"{row['workload']:9s} {row['impl']:14s} {row['engine']:10s} n_jobs={row['n_jobs']} "
            f"{row['seconds']:8.2f} s  threads per fit: {threads:8s} "
            f"({' | '.join(row['threads_why'])})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impls", nargs="+", default=list(IMPLS))
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per cell (median)")
    parser.add_argument("--json", metavar="PATH", help="write the rows (and the machine) here")
    args = parser.parse_args(argv)

    from fastnn.report import sweeps as report

    load_before = _load()
    print(f"CPU: {_cpu()}, {len(os.sched_getaffinity(0))} CPUs; load average {load_before}")
    rows = run(args.impls, args.engines, args.workloads, args.quick, args.repeat)
    result = {"cpu": _cpu(), "cpus": len(os.sched_getaffinity(0)), "quick": args.quick,
              "load_before": load_before, "load_after": _load(), "rows": rows}
    print()
    print(report.section(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
