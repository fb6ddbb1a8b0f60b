"""One Network, two threads: a second fit while one runs is refused with a
RuntimeError, the running fit loses nothing, readers see a whole state."""

import threading
import time

import numpy as np
import pytest

import fastnn
from fastnn import backends

from _helpers import binary_data


def _problem(backend):
    # Long enough that the first fit is still running when the second comes:
    # the second is tried as soon as the first holds the guard, which it takes
    # before anything else (well over a millisecond before it can return).
    slow = backends.get(backend).SLOW
    X, Y = binary_data(8, 40 if slow else 500, seed=1)
    return X, Y, (20 if slow else 1000)


def test_second_fit_while_one_runs_is_refused(backend):
    X, Y, iterations = _problem(backend)
    net = fastnn.Network([8, 16, 1], init="xavier", seed=0, backend=backend)
    ref = net.to(backend)
    before = net.params
    # One compiled chunk (cost_every > num_iterations): numba and cython run
    # it without the GIL, so the main thread really runs alongside it.
    kwargs = dict(learning_rate=0.05, num_iterations=iterations, cost_every=iterations)
    errors = []

    def first():
        try:
            net.fit(X, Y, **kwargs)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    worker = threading.Thread(target=first)
    worker.start()
    try:
        while not net._busy.locked() and worker.is_alive():
            time.sleep(1e-4)
        with pytest.raises(RuntimeError, match="fit\\(\\) is already running on this Network in "
                                               "another thread"):
            net.fit(X, Y, learning_rate=0.5, num_iterations=2)
        # A reader sees either the whole state before the fit or the whole one after.
        snapshot = net.params
    finally:
        worker.join(timeout=300)
    assert not worker.is_alive() and errors == []
    ref.fit(X, Y, **kwargs)  # the same fit, alone: nothing of it may be lost
    for key, value in ref.params.items():
        np.testing.assert_array_equal(net.params[key], value, err_msg=key)
        assert np.array_equal(snapshot[key], value) or np.array_equal(snapshot[key], before[key])
    assert net.costs_ == ref.costs_
    # The guard is released: the network fits again.
    net.fit(X, Y, learning_rate=0.05, num_iterations=2)
    assert [i for i, _ in net.costs_] == [0, 1]


def test_guard_is_released_after_a_failed_fit(backend):
    X, Y, _ = _problem(backend)
    net = fastnn.Network([8, 4, 1], seed=0, backend=backend)
    with pytest.raises(ValueError):
        net.fit(X, Y * 2, learning_rate=0.1, num_iterations=2)
    with pytest.raises(FloatingPointError):
        net.fit(X * 1e3, Y, learning_rate=1e300, num_iterations=3)
    assert not net._busy.locked()
    net.fit(X, Y, learning_rate=0.1, num_iterations=2)


@pytest.mark.parametrize("backend, bound", [("numpy", True), ("loops", True),
                                            ("cython", False), ("numba", False)])
def test_gil_bound_fits_take_turns_compiled_ones_never_wait(backend, bound):
    # A fit on a Python engine below its backend's work threshold computes only
    # while it holds the process's turn lock; a compiled engine never waits for it.
    if backends.available()[backend] is not True:
        pytest.skip(f"{backend} is not built here: {backends.available()[backend]}")
    from fastnn.backends import _threads
    X, Y = binary_data(4, 30, seed=2)
    net = fastnn.Network([4, 3, 1], seed=0, backend=backend)
    done = threading.Event()

    def fit():
        net.fit(X, Y, learning_rate=0.1, num_iterations=5, cost_every=None)
        done.set()

    with _threads._turns:  # another GIL-bound fit computing, in another thread's place
        worker = threading.Thread(target=fit)
        worker.start()
        finished_while_held = done.wait(timeout=1.0 if bound else 60.0)
    worker.join(timeout=60.0)
    assert done.is_set()  # and it finishes once the turn is free
    assert finished_while_held is not bound
