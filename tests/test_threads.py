"""The one thread policy (fastnn.backends._threads): threads=k obeyed;
threads=None bounded by the affinity, the caller's environment limits, the
thread pools' limits in force and concurrent fits, and 1 for small work."""

import ctypes
import sys
import threading
import types

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import fastnn
from _helpers import run_python
from fastnn.backends import _threads

BIG = 10**12  # units of work: always worth a second thread
DIMS = [64, 64, 10]


@pytest.fixture
def four_cpus(monkeypatch):
    """A process that may run on 4 CPUs, with no limits in its environment."""
    monkeypatch.setattr(_threads, "_affinity", lambda: 4)
    for var in _threads.ENV_LIMITS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(_threads, "_pool_limits", lambda: [])


def test_an_explicit_count_is_obeyed_whatever_the_budget(four_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert _threads.decide(3, DIMS, 10, BIG) == (3, "threads=3 asked for")


def test_auto_takes_every_cpu_of_the_affinity_for_big_work(four_cpus):
    threads, why = _threads.decide(None, DIMS, 10**6, min_work=1)
    assert threads == 4 and "4 CPUs" in why


def test_auto_runs_small_work_on_one_thread(four_cpus):
    work = _threads.work_units(DIMS, 100)
    assert work == 100 * (64 * 64 + 64 * 10 + _threads.ACT_COST * (64 + 10))
    threads, why = _threads.decide(None, DIMS, 100, min_work=work + 1)
    assert threads == 1 and "below" in why
    assert _threads.decide(None, DIMS, 100, min_work=work).threads == 4


@pytest.mark.parametrize("var", _threads.ENV_LIMITS)
def test_auto_respects_the_callers_environment_limit(four_cpus, monkeypatch, var):
    monkeypatch.setenv(var, "2")
    assert _threads.decide(None, DIMS, 10**6, 1) == (2, f"auto: 4 CPUs in the process's "
                                                        f"affinity, {var}=2")


def test_a_malformed_or_larger_environment_limit_is_ignored(four_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "lots")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "16")
    assert _threads.cpu_budget()[0] == 4


def test_auto_respects_threadpool_limits_in_force(monkeypatch):
    monkeypatch.setattr(_threads, "_affinity", lambda: 4)
    for var in _threads.ENV_LIMITS:
        monkeypatch.delenv(var, raising=False)
    import scipy.linalg  # noqa: F401 -- its OpenBLAS is loaded, so there is a pool to limit
    with threadpool_limits(limits=1):
        n, why = _threads.cpu_budget()
    assert n == 1 and "limited to 1" in why


def test_auto_is_one_thread_while_another_fit_runs_in_this_process(four_cpus):
    inside, release = threading.Event(), threading.Event()

    def other_fit():
        with _threads.running():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other_fit)
    worker.start()
    try:
        assert inside.wait(10)
        with _threads.running():
            n, why = _threads.cpu_budget()
    finally:
        release.set()
        worker.join()
    assert n == 1 and "1 other fit(s) running" in why
    with _threads.running():
        assert _threads.cpu_budget()[0] == 4  # alone again


def test_a_fit_says_how_many_threads_it_ran_on_and_why(vector_backend):
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    net = fastnn.Network([3, 4, 1], seed=0, backend=vector_backend, threads=1)
    net.fit(X, Y, learning_rate=0.1, num_iterations=3)
    threads, why = net.threads_used_
    assert threads == 1 and why


def test_small_work_never_asks_the_thread_pools(four_cpus, monkeypatch):
    def pools():
        raise AssertionError("the thread pools were asked for a fit too small for threads")

    monkeypatch.setattr(_threads, "_pool_limits", pools)
    assert _threads.decide(None, DIMS, 10, min_work=10**9).threads == 1


def _numpy_blas_threads():
    """The thread count of the BLAS in NumPy's wheel (the numpy backend's ``@``)."""
    from threadpoolctl import threadpool_info

    pools = [p["num_threads"] for p in threadpool_info()
             if p["user_api"] == "blas" and "numpy" in p["filepath"]]
    if not pools:
        pytest.skip("NumPy's BLAS is not a library threadpoolctl can see here")
    return pools[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_the_numpy_backends_blas_runs_on_the_fits_threads_and_is_restored(threads):
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    before = _numpy_blas_threads()
    seen = []
    net = fastnn.Network([3, 4, 1], seed=0, backend="numpy", threads=threads)
    net.fit(X, Y, learning_rate=0.1, num_iterations=3, cost_every=1,
            callback=lambda i, cost: seen.append(_numpy_blas_threads()))
    assert net.threads_used_ == (threads, f"threads={threads} asked for")
    assert seen == [min(threads, before)] * 3
    assert _numpy_blas_threads() == before


def test_a_small_numpy_fit_runs_its_blas_on_one_thread(four_cpus):
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    seen = []
    net = fastnn.Network([3, 4, 1], seed=0, backend="numpy")
    net.fit(X, Y, learning_rate=0.1, num_iterations=2, cost_every=1,
            callback=lambda i, cost: seen.append(_numpy_blas_threads()))
    threads, why = net.threads_used_
    assert threads == 1 and "units of work per step" in why
    assert seen == [1, 1]


def test_the_loops_oracle_runs_on_one_thread_whatever_is_asked():
    X = np.random.default_rng(0).standard_normal((3, 8))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    net = fastnn.Network([3, 2, 1], seed=0, backend="loops", threads=4)
    net.fit(X, Y, learning_rate=0.1, num_iterations=1)
    assert net.threads_used_ == (1, "Python loops: one thread")


SCIPY_BLAS_DURING_A_FIT = """
import numpy as np, fastnn
from threadpoolctl import threadpool_info
seen = []
def scipy_blas_threads(i, cost):
    seen.extend(p["num_threads"] for p in threadpool_info()
                if p["user_api"] == "blas" and "scipy.libs" in p["filepath"])
X = np.random.default_rng(0).standard_normal((64, 300))
Y = (X[0] > 0).astype(float).reshape(1, -1)
net = fastnn.Network([64, 64, 1], seed=0, backend="numba", threads=1)
net.fit(X, Y, learning_rate=0.1, num_iterations=2, cost_every=1, callback=scipy_blas_threads)
print(seen)
"""


def test_a_fresh_process_holds_the_blas_numba_loads_late():
    """numba loads scipy's BLAS only when it first compiles a product -- after the
    fit asked for its limit: the limit must hold it all the same (it ran two
    threads per tiny product, 10x slower, when the limit knew numpy's BLAS only)."""
    pytest.importorskip("numba")
    seen = eval(run_python(SCIPY_BLAS_DURING_A_FIT).strip().splitlines()[-1])  # the child's list
    if not seen:
        pytest.skip("threadpoolctl does not see scipy's own BLAS here (a system scipy)")
    assert seen == [1] * len(seen)


class _LateBlas:
    """A BLAS library as threadpoolctl lists it (not OpenBLAS: set through it)."""

    internal_api, user_api, filepath = "mkl", "blas", "/late/libmkl_rt.so"

    def __init__(self):
        self.num_threads = 4

    def set_num_threads(self, n):
        self.num_threads = n


def test_a_blas_loaded_after_the_first_fit_is_held_by_the_next(monkeypatch):
    """A BLAS that comes with a later import (torch's MKL, say) is listed again
    at the next fit and held to its threads, then restored."""
    from fastnn.backends import _blas
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    net = fastnn.Network([3, 4, 1], seed=0, backend="numpy", threads=1)
    net.fit(X, Y, learning_rate=0.1, num_iterations=1)  # lists what is loaded now
    late = _LateBlas()
    listed = _blas._all_blas()
    monkeypatch.setattr(_blas, "_all_blas", lambda: listed + [late])
    monkeypatch.setitem(sys.modules, "late_blas_module", types.ModuleType("late_blas_module"))
    seen = []
    net.fit(X, Y, learning_rate=0.1, num_iterations=2, cost_every=1,
            callback=lambda i, cost: seen.append(late.num_threads))
    assert seen == [1, 1]
    assert late.num_threads == 4


HEAP_DURING_A_FIT = """
import ctypes, numpy as np, fastnn
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
def mapped_by_a_1mib_array():
    before = libc.mallinfo2().hblks
    a = np.ones(1 << 17)  # 1 MiB
    return libc.mallinfo2().hblks - before
seen = []
X = np.random.default_rng(0).standard_normal((3, 40))
Y = (X[0] > 0).astype(float).reshape(1, -1)
net = fastnn.Network([3, 4, 1], seed=0, backend="numpy")
outside = mapped_by_a_1mib_array()
net.fit(X, Y, learning_rate=0.1, num_iterations=2, cost_every=1,
        callback=lambda i, cost: seen.append(mapped_by_a_1mib_array()))
print([outside, seen, mapped_by_a_1mib_array()])
"""


def test_a_python_engine_keeps_temporaries_on_the_heap_where_the_environment_froze_glibc():
    """Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which freezes
    glibc's mmap threshold at 128 KiB: each of a numpy fit's temporaries was a
    new mapping. During a fit on the Python engine they come from the heap; the
    setting is restored afterwards."""
    from fastnn.backends import _malloc
    if not _malloc._libc_mallopt() or not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("not glibc >= 2.33 (mallopt's numbers and mallinfo2 are glibc's)")
    out = run_python(HEAP_DURING_A_FIT, env={"MALLOC_TRIM_THRESHOLD_": "65536"})
    outside, during, after = eval(out.strip().splitlines()[-1])
    assert outside == 1 and after == 1  # glibc's frozen 128 KiB: a mapping of its own
    assert during == [0, 0]


def test_an_engine_that_fails_to_start_releases_the_blas_limit(monkeypatch):
    from fastnn.backends import _blas, _malloc

    def broken():
        raise MemoryError("no room")

    monkeypatch.setattr(_malloc, "step_allocations", broken)
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    net = fastnn.Network([3, 4, 1], seed=0, backend="numpy", threads=1)
    with pytest.raises(MemoryError) as failed:
        net.fit(X, Y, learning_rate=0.1, num_iterations=1)
    # Released by the engine itself, not by the collector: the traceback still
    # holds the half-built engine here.
    assert failed.value.__traceback__ is not None
    assert _blas._active == {}


@pytest.mark.parametrize("batch_size", [None, 8])
def test_threads_used_says_what_ran_not_what_was_asked(batch_size):
    """Asked for more threads than an engine runs, the fit reports the threads
    that ran: numba no more than NUMBA_NUM_THREADS, cython no more than the
    examples of a step (one column each at least), one without OpenMP."""
    X = np.random.default_rng(0).standard_normal((3, 40))
    Y = (X[0] > 0).astype(float).reshape(1, -1)
    def cython_count():
        from fastnn.backends.cython import paths
        return (40 if batch_size is None else batch_size) if paths.active().HAVE_OPENMP else 1

    expected = {"numba": lambda: __import__("numba").config.NUMBA_NUM_THREADS,
                "cython": cython_count}
    ran = 0
    for name, count in expected.items():
        if fastnn.backends.available()[name] is not True:
            continue
        net = fastnn.Network([3, 4, 1], seed=0, backend=name, threads=10 ** 6)
        net.fit(X, Y, learning_rate=0.1, num_iterations=2, batch_size=batch_size)
        threads, why = net.threads_used_
        assert threads == count() and why.startswith("threads=1000000 asked for; ")
        ran += 1
    if not ran:
        pytest.skip("neither numba nor cython is available here")
