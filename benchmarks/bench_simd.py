"""SIMD ablations on the ISA path this CPU runs: the same compiled kernels with
auto-vectorization off vs on, float64 vs float32 (twice the lanes per
register), 1 vs 2 threads -- each pair timed interleaved in one group.

The vectorization and dtype groups run every implementation on **one thread**
(``SIMD_THREADS``: ``threads=1`` for the compiled backends, BLAS held to one
thread for the whole group, numpy's only threads): what they measure is the
lanes, and on a shared machine a thread pool adds noise larger than the
effect: on a 2-core AMD EPYC (Zen 4) a quick report at the default thread
count found cython's vectorization gain on the planar net "nothing beyond the
noise (0.9×)", where one thread measures 3× and more. The thread count has
its own group, ``simd-threads-wide``.

Numba's switch is ``NUMBA_LOOP_VECTORIZE=0 NUMBA_SLP_VECTORIZE=0``, read at
import, so both of its variants run in a worker subprocess
(``fastnn.report._worker``, with a private ``NUMBA_CACHE_DIR`` for "off" so no
cached vectorized code is reused) and the parent times each ``run N`` round
trip, the same overhead for both. Cython's switch is a second build of the
kernels without auto-vectorization (``-fno-tree-vectorize``, scalar libm),
selected with ``settings(variant="novec")``.
"""

import pytest
from threadpoolctl import ThreadpoolController

from fastnn import backends
from fastnn.report import workloads as wl

from ._harness import MODE, Impl, backend_trainer, ci, interleave, isa_path, worker_trainer

#: The backends whose arithmetic is their own machine code, plus numpy (BLAS)
#: as the reference rung in the dtype and thread ablations.
COMPILED = [n for n in backends.names()
            if backends.available()[n] is True and backends.get(n).COMPILED]
#: Threads of every implementation in the vectorization and dtype groups.
SIMD_THREADS = 1


def _ablation_m(benchmark):
    """planar 2-4-1 at large m: elementwise activation work dominates."""
    return 2_000 if ci(benchmark) else (20_000 if MODE == "quick" else 100_000)


def _wide_m(benchmark):
    return 2_000 if ci(benchmark) or MODE == "quick" else wl.WORKLOADS["wide"].m


def _check(benchmark):
    """Ablation variants are checked against NumPy under plain pytest; a timing
    run skips it (the report shows the ladder's checks, and a second numba
    worker compiles for tens of seconds)."""
    return ci(benchmark)


def _info(name, threads):
    isa = isa_path(name)
    return {"backend": name, "threads": threads, **({"isa": isa} if isa else {})}


def vectorize_impls(m, check):
    """``{impl: Impl}`` of the vectorization group: each compiled backend with
    auto-vectorization on and off, planar 2-4-1 at ``m``, float64, one thread."""
    n = max(1, 200_000 // m)
    impls = {}
    if "numba" in COMPILED:
        for on in (True, False):
            flag = "1" if on else "0"
            impls[f"numba vectorize {'on' if on else 'off'}"] = Impl(
                lambda flag=flag, on=on: worker_trainer(
                    "numba", wl.SWEEP, m, "float64",
                    {"NUMBA_LOOP_VECTORIZE": flag, "NUMBA_SLP_VECTORIZE": flag},
                    threads=SIMD_THREADS, fresh_cache=not on),
                n, variant="on" if on else "off", check=check, **_info("numba", SIMD_THREADS))
    if "cython" in COMPILED:
        for variant, label in (("vec", "on"), ("novec", "off")):
            impls[f"cython vectorize {label}"] = Impl(
                lambda variant=variant: backend_trainer("cython", wl.SWEEP, m, "float64",
                                                        SIMD_THREADS,
                                                        settings={"variant": variant}),
                n, variant=label, check=check, **_info("cython", SIMD_THREADS))
    return impls


def dtype_impls(workload, m, n, check):
    """``{impl: Impl}`` of a dtype group: numpy and each compiled backend in
    float64 and float32, one thread."""
    impls = {}
    for backend in ["numpy"] + COMPILED:
        for dtype in ("float64", "float32"):
            impls[f"{backend} {dtype}"] = Impl(
                lambda backend=backend, dtype=dtype: backend_trainer(backend, workload, m, dtype,
                                                                     SIMD_THREADS),
                n, dtype=dtype, variant=dtype, check=check, **_info(backend, SIMD_THREADS))
    return impls


def one_blas_thread():
    """BLAS (numpy's and scipy's) held to one thread for a block: the numpy
    backend ignores ``threads``, its BLAS's pool is its only parallelism."""
    return ThreadpoolController().limit(limits=SIMD_THREADS, user_api="blas")


def test_vectorize(benchmark):
    benchmark.group = "simd-vectorize"
    m = _ablation_m(benchmark)
    impls = vectorize_impls(m, _check(benchmark))
    if not impls:
        pytest.skip("no compiled backend available")
    with one_blas_thread():
        interleave(benchmark, impls, workload=wl.SWEEP, m=m, threads=SIMD_THREADS)


@pytest.mark.parametrize("name", ["wide", "sweep"])
def test_dtype(benchmark, name):
    workload = wl.WORKLOADS.get(name, wl.SWEEP)
    benchmark.group = f"simd-dtype-{name}"
    m = _ablation_m(benchmark) if name == "sweep" else _wide_m(benchmark)
    n = 1 if name == "wide" else max(1, 200_000 // m)
    with one_blas_thread():
        interleave(benchmark, dtype_impls(workload, m, n, _check(benchmark)), workload=workload,
                   m=m, threads=SIMD_THREADS)


def _numpy_threads(threads, workload, m):
    """NumPy's threads are OpenBLAS's (the backend ignores ``threads``): each run
    holds them to ``threads`` (one controller, made once: making one scans the
    loaded libraries, about a millisecond)."""
    controller = ThreadpoolController()
    trainer = backend_trainer("numpy", workload, m, "float64")
    run = trainer.run

    def limited(n):
        with controller.limit(limits=threads, user_api="blas"):
            run(n)

    trainer.run = limited
    return trainer


def test_threads(benchmark):
    workload = wl.WORKLOADS["wide"]
    benchmark.group = "simd-threads-wide"
    m = _wide_m(benchmark)
    impls = {}
    for backend in ["numpy"] + COMPILED:
        for threads in (1, 2):
            make = (lambda threads=threads: _numpy_threads(threads, workload, m)) \
                if backend == "numpy" else \
                (lambda backend=backend, threads=threads: backend_trainer(
                    backend, workload, m, "float64", threads))
            impls[f"{backend} {threads} thread{'s' if threads > 1 else ''}"] = Impl(
                make, 1, variant=f"{threads} thread{'s' if threads > 1 else ''}",
                check=_check(benchmark), **_info(backend, threads))
    interleave(benchmark, impls, workload=workload, m=m)
