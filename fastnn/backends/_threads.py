"""How many threads a fit runs on: one policy for every compiled backend and
the BLAS it calls.

``threads=k`` is obeyed (capped only by what a backend physically has, e.g. a
build without OpenMP). ``threads=None`` runs on the CPUs this fit may use --
the process's affinity, capped by the limits its caller set in the environment
(``OMP_NUM_THREADS`` and friends, as joblib's loky workers and Dask's nanny set
them), by the thread pools' limits in force (``threadpoolctl.threadpool_limits``,
or what joblib's ``inner_max_num_threads`` set) and 1 while other fits run concurrently in this process's threads -- but
only when one iteration's (or one mini-batch's) work pays for starting a
second thread: below the backend's ``AUTO_THREADS_MIN_WORK`` a fit runs on one.

Fits that hold the interpreter lock (GIL) take turns instead of running side by
side: see :func:`turn`.
"""

import contextlib
import os
import sys
import threading

__all__ = ["ENV_LIMITS", "Decision", "cpu_budget", "decide", "work_units", "running", "turn",
           "gil_bound", "FORKED_WHY", "note_openmp_team", "forked_after_openmp"]

#: Environment variables a caller sets to cap a process's threads (loky sets
#: all of these to cpus // n_jobs in its workers).
ENV_LIMITS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
              "NUMBA_NUM_THREADS")
#: One activation value (exp/tanh and the elementwise passes) costs about this
#: many multiply-adds of a product.
ACT_COST = 8

_lock = threading.Lock()
_running = 0  # fits inside :func:`running` right now, in any thread of this process
_turns = threading.RLock()  # held by the GIL-bound fit computing now (:func:`turn`)


class Decision(tuple):
    """``(threads, why)``: the thread count and one line saying why."""

    __slots__ = ()

    def __new__(cls, threads, why):
        return super().__new__(cls, (threads, why))

    threads = property(lambda self: self[0])
    why = property(lambda self: self[1])


def _affinity():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _pool_limits():
    """``[(api, threads)]``: the thread count each loaded BLAS and OpenMP runtime
    is set to now (threadpoolctl; about a millisecond)."""
    try:
        from threadpoolctl import ThreadpoolController
        return [(lib.internal_api, int(lib.num_threads))
                for lib in ThreadpoolController().lib_controllers]
    except Exception:  # threadpoolctl confused by an unusual library: no caps from it
        return []


def cpu_budget():
    """``(n, why)``: the CPUs a fit started now may use (see the module docstring)."""
    n = _affinity()
    why = [f"{n} CPUs in the process's affinity"]
    for var in ENV_LIMITS:
        try:
            cap = int(os.environ.get(var, ""))
        except ValueError:
            continue
        if 1 <= cap < n:
            n = cap
            why.append(f"{var}={cap}")
    for api, cap in _pool_limits():
        if 1 <= cap < n:
            n = cap
            why.append(f"{api} limited to {cap}")
    with _lock:
        others = _running - 1
    if others > 0 and n > 1:
        n = 1
        why.append(f"{others} other fit(s) running in this process's threads")
    return n, ", ".join(why)


def work_units(dims, m):
    """One iteration's work over m examples in multiply-add units: m * sum
    n_l n_{l-1} for the products, plus ACT_COST per activation value."""
    products = sum(dims[l] * dims[l - 1] for l in range(1, len(dims)))
    return m * (products + ACT_COST * sum(dims[1:]))


def decide(requested, dims, m, min_work):
    """The :class:`Decision` for a fit asking for ``requested`` threads (None or
    an int) whose iteration (or mini-batch) covers ``m`` examples."""
    if requested is not None:
        return Decision(int(requested), f"threads={requested} asked for")
    # The work first: a small fit never pays for asking the thread pools (a
    # millisecond).
    work = work_units(dims, m)
    if work < min_work:
        return Decision(1, f"auto: {work:.2g} units of work per step, below the "
                           f"{min_work:.2g} a second thread pays from")
    budget, why = cpu_budget()
    return Decision(budget, f"auto: {why}")


@contextlib.contextmanager
def running():
    """Counts the fits running in this process while the block runs."""
    global _running
    with _lock:
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1


def gil_bound(min_work, dims, m):
    """Whether a fit on a Python engine holds the GIL most of its time: one step
    (``m`` examples) below its backend's ``AUTO_THREADS_MIN_WORK`` (None: a
    backend of Python loops), where NumPy's calls are too short to run long
    without it."""
    return min_work is None or work_units(dims, m) < min_work


@contextlib.contextmanager
def turn(bound):
    """Run the block as this process's one GIL-bound fit computing now (if
    ``bound``; otherwise no effect).

    A GIL-bound fit (:func:`gil_bound`) runs Python between short NumPy calls.
    Side by side with another such fit in a second thread, each call that
    releases the GIL waits up to the switch interval (``sys.getswitchinterval()``,
    5 ms) to get it back: two numpy fits under joblib's threading backend ran
    0.8x as fast as one after the other. So such fits take turns, a whole fit
    each (the driver holds the lock from the engine's start to its close,
    callbacks included: a lock taken per epoch only moved the wait to each
    handoff, 0.85x); side by side they then take about as long as in series.
    Compiled engines release the GIL in their kernels and never wait here.
    Re-entrant: a fit started from a callback of another in the same thread
    does not block; a callback that waits for another thread's GIL-bound fit
    would wait forever (that fit waits for this one's turn).
    """
    if not bound:
        yield
        return
    with _turns:
        yield


# -- fork: GNU OpenMP's team does not survive it -------------------------------

#: Why a process forked from one that ran OpenMP threads runs one (cython).
FORKED_WHY = ("one thread in a process forked from one that ran OpenMP threads: GNU OpenMP "
              "(libgomp) cannot start threads there, its regions never return")
_openmp_team = False     # this process has run an OpenMP region of 2+ threads (cython's)
_forked_after_team = False


def note_openmp_team():
    """Record that this process runs an OpenMP team of 2+ threads."""
    global _openmp_team
    _openmp_team = True


def _numba_ran_openmp():
    """Whether Numba's threads run on OpenMP here (its ``omp`` layer: the same
    libgomp as fastnn_ext's, whose team a fork leaves behind as well)."""
    numba = sys.modules.get("numba")
    try:
        return numba is not None and numba.threading_layer() == "omp"
    except ValueError:  # no parallel code has run: no team
        return False


def _after_fork_in_child():
    global _forked_after_team
    _forked_after_team = _forked_after_team or _openmp_team or _numba_ran_openmp()


def forked_after_openmp():
    """Whether this process was forked from one whose OpenMP team had run (its
    own or Numba's): libgomp cannot start threads here (seen: a cython fit
    asking for two waited forever)."""
    return _forked_after_team


# Registered at import -- with fastnn, before any fork a user makes -- not when
# the cython backend is first used, which may be in the child.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
