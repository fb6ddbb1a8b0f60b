"""The SIMD ablation groups (``benchmarks/bench_simd.py``): the vectorization
and dtype groups run every implementation on one thread -- ``threads=1`` and
BLAS held to one thread -- so a thread pool's noise cannot hide the lanes'
gain; the thread count is ablated in a group of its own.

Each group runs as under plain pytest (one round on modest sizes, checked
against NumPy) with a stand-in pytest-benchmark fixture, while a spy on the
backends' ``train`` records the threads every call got.
"""

import pytest
from threadpoolctl import threadpool_info

from fastnn import backends
from fastnn.benchmarks import _harness, bench_simd
from fastnn.report import workloads as wl

from _helpers import BenchmarkStandIn


def _spy(monkeypatch, names):
    """``[(backend, threads, {BLAS threads})]`` of every ``train`` call from now on."""
    calls = []
    for name in names:
        module = backends.get(name)

        def train(*args, _train=module.train, _name=name, **kwargs):
            threads = args[9] if len(args) > 9 else kwargs.get("threads")
            blas = {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}
            calls.append((_name, threads, blas))
            return _train(*args, **kwargs)

        monkeypatch.setattr(module, "train", train)
    return calls


def test_dtype_groups_run_every_implementation_on_one_thread(monkeypatch):
    names = ["numpy"] + bench_simd.COMPILED
    calls = _spy(monkeypatch, names)
    bench = BenchmarkStandIn(disabled=True)
    bench_simd.test_dtype(bench, "sweep")
    impls = bench.extra_info["impls"]
    assert set(impls) == {f"{b} {d}" for b in names for d in ("float64", "float32")}
    assert bench.extra_info["threads"] == 1
    assert all(r["threads"] == 1 and r["check_passed"] for r in impls.values())
    assert {name for name, _, _ in calls} == set(names)
    # numpy ignores ``threads``: its BLAS is what the group holds to one thread.
    assert all(threads == 1 and blas == {1} for _, threads, blas in calls), calls


def test_vectorize_group_runs_on_one_thread(monkeypatch):
    if not bench_simd.COMPILED:
        pytest.skip("no compiled backend available")
    workers = []

    def worker_trainer(name, workload, m, dtype, env=None, *, threads=None, **options):
        # In process: the numba worker's environment switch is not what is tested here.
        workers.append((name, env, threads))
        return _harness.backend_trainer(name, workload, m, dtype, threads)

    monkeypatch.setattr(bench_simd, "worker_trainer", worker_trainer)
    calls = _spy(monkeypatch, bench_simd.COMPILED)
    bench = BenchmarkStandIn(disabled=True)
    bench_simd.test_vectorize(bench)
    impls = bench.extra_info["impls"]
    assert {r["variant"] for r in impls.values()} == {"on", "off"}
    assert all(r["threads"] == 1 for r in impls.values())
    if "numba" in bench_simd.COMPILED:
        assert {env["NUMBA_LOOP_VECTORIZE"] for _, env, _ in workers} == {"0", "1"}
        assert all(threads == 1 for _, _, threads in workers)
    assert calls and all(threads == 1 for _, threads, _ in calls), calls


@pytest.mark.parametrize("threads", [1, None])
def test_the_worker_trains_with_the_threads_it_is_given(threads):
    trainer = _harness.worker_trainer("numpy", wl.SWEEP, 100, "float64",
                                      {"FASTNN_WORKER_EVIDENCE": "0"}, threads=threads)
    try:
        assert trainer.ready["threads"] == threads
        trainer.run(2)
        assert len(trainer.params()) == 4
    finally:
        trainer.close()


def test_the_thread_count_has_its_own_group(monkeypatch):
    names = ["numpy"] + bench_simd.COMPILED
    calls = _spy(monkeypatch, bench_simd.COMPILED)
    bench = BenchmarkStandIn(disabled=True)
    bench_simd.test_threads(bench)
    assert bench.group == "simd-threads-wide"
    impls = bench.extra_info["impls"]
    assert {(r["backend"], r["threads"]) for r in impls.values()} == {
        (n, t) for n in names for t in (1, 2)}
    assert {threads for _, threads, _ in calls} == ({1, 2} if bench_simd.COMPILED else set())
