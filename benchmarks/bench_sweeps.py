"""Sweeps: a small sweep of digits fits against ``n_jobs`` and the engine.

Group ``sweeps``: for each of fastnn's vectorized backends and scikit-learn's
``MLPClassifier``, digits fits (64-64-10; how many and their epochs: :data:`SIZES`)
run serially, by joblib's loky and threading backends with 2 jobs (and by a
Dask ``LocalCluster`` of 2 worker processes where ``FASTNN_BENCH_DASK=1``: it
takes seconds to start), workers warmed first. ``extra_info["rows"]`` holds
what :func:`fastnn.report.sweeps.section` tabulates. The full-size workloads
(the issue's grid search, 16 fits of 300 epochs) are the command
``python -m fastnn.benchmarks.sweeps``; this group keeps a plain test run quick.

After timing: every engine's fastnn fits reach exactly the serial run's
training accuracy (the same fits: small work runs on one thread everywhere),
MLPClassifier's are far above chance, and each fit says its threads.
"""

import os

import pytest

from fastnn import backends

from ._harness import MODE, ci

pytest.importorskip("sklearn")

from . import sweeps  # noqa: E402

#: (fits, epochs each) under plain pytest (each implementation once), quick, full.
SIZES = {"ci": (2, 2), "quick": (4, 5), "full": (8, 30)}
ENGINES = ["serial", "loky", "threading"] + (
    ["dask"] if os.environ.get("FASTNN_BENCH_DASK") == "1" else [])
IMPLS = [b for b in backends.names() if b in sweeps.IMPLS] + ["MLPClassifier"]


# Fits of a few epochs stop at max_iter by design: no ConvergenceWarning for each.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("impl", IMPLS)
def test_sweeps(benchmark, impl):
    if impl != "MLPClassifier" and backends.available()[impl] is not True:
        pytest.skip(f"backend {impl!r} unavailable: {backends.available()[impl]}")
    benchmark.group = "sweeps"
    fits, epochs = SIZES["ci" if ci(benchmark) else MODE]
    rows = benchmark.pedantic(
        sweeps.run, kwargs=dict(impls=[impl], engines=ENGINES, workloads=["digits16"],
                                log=lambda line: None,
                                sizes={"digits_fits": fits, "digits_epochs": epochs}),
        rounds=1, iterations=1)
    for row in rows:
        row["workload"] = f"digits x{fits}, {epochs} epochs"
    benchmark.extra_info["rows"] = rows
    assert [r["engine"] for r in rows] == ENGINES
    serial = rows[0]["score"]
    for row in rows:
        assert row["fits"] == fits and row["threads"], row
        if impl == "MLPClassifier":
            # Its BLAS pool differs per engine (bits may too): it learned,
            # far above the 10 classes' chance, in every one.
            assert min(row["score"]) > 0.3, row
        else:
            assert row["score"] == serial, row
