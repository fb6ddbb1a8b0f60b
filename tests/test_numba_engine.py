"""The numba backend's engines under the one driver: slices of any size are
bitwise one run, huge runs, Ctrl-C, mini-batches, the thread policy, and what a
fit compiles (only what it runs)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("numba")
nb = pytest.importorskip("fastnn.backends.numba")
from _numba_cases import assert_same_run, problem, softmax_problem, train_run  # noqa: E402

from fastnn._testing import network_problem, train  # noqa: E402
from fastnn.backends import _base, _threads  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------ chunks, huge runs, Ctrl-C

@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_in_many_chunks_is_bitwise_the_run_in_one(threads):
    # on_cost ends a chunk at every recorded cost (cost_every=1: every iteration)
    dims, acts = [300, 6, 4, 1], ["relu", "tanh", "sigmoid"]
    plain = train_run(nb, dims, acts, "cross_entropy", 50, num_iterations=40, threads=threads)
    Ws, bs, X, Y = problem(dims, 50)
    seen = []
    costs = train(nb, Ws, bs, acts, "cross_entropy", X, Y, 0.05, 40, 1, threads,
                     lambda i, J: seen.append(i))
    assert seen == list(range(40)) and [i for i, _ in costs] == seen
    assert [i for i, _ in plain[0]] == [0, 39]  # every 50th, and the last
    assert [c for i, c in costs if i in (0, 39)] == [c for _, c in plain[0]]
    for p, q in zip(plain[1] + plain[2], Ws + bs):
        np.testing.assert_array_equal(p, q)


def test_huge_num_iterations_allocates_nothing_up_front():
    # 10**12 iterations recording every 100th cost: 10**10 costs, 80 GB, if
    # allocated at the start. on_cost stops after three records.
    dims, acts = [5, 4, 1], ["tanh", "sigmoid"]
    Ws, bs, X, Y = problem(dims, 30)
    costs = train(nb, Ws, bs, acts, "cross_entropy", X, Y, 0.05, 10**12, 100, None,
                     lambda i, J: i < 200)
    assert [i for i, _ in costs] == [0, 100, 200]
    ref = train_run(nb, dims, acts, "cross_entropy", 30, num_iterations=200)
    for p, q in zip(ref[1] + ref[2], Ws + bs):
        np.testing.assert_array_equal(p, q)


_SIGINT_RUN = textwrap.dedent("""
    import signal
    import sys
    import numpy as np
    import fastnn
    # An inherited "ignore" of SIGINT (a test run started as a background job of a
    # non-interactive shell has one) would outlive the signal: take the default back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rng = np.random.default_rng(0)
    dims = [int(d) for d in sys.argv[2].split("-")]
    X = rng.standard_normal((dims[0], 300)); Y = (rng.random((1, 300)) < 0.5) * 1.0
    net = fastnn.Network(dims, hidden_activation="tanh", backend="numba", seed=1)
    net.fit(X, Y, learning_rate=0.01, num_iterations=3, cost_every=1)  # compile
    before = {k: v.copy() for k, v in net.params.items()}
    print("ready", flush=True)
    try:
        net.fit(X, Y, learning_rate=1e-3, num_iterations=10**12, cost_every=int(sys.argv[1]))
    except KeyboardInterrupt:
        same = all(np.array_equal(before[k], v) for k, v in net.params.items())
        print("KeyboardInterrupt", "unchanged" if same else "CHANGED", flush=True)
""")


@pytest.mark.parametrize("dims", ["2-4-1", "500-8-1"])
@pytest.mark.parametrize("cost_every", [10**12, 100])
def test_ctrl_c_stops_a_compiled_fit_and_keeps_the_parameters(cost_every, dims):
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_RUN, str(cost_every), dims],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        time.sleep(1.0)  # well inside the fit (10**12 iterations)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)  # a hang guard, not a timing check
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.strip() == "KeyboardInterrupt unchanged", (out, err)



# ------------------------------------------------ mini-batches

_MB_NETS = {
    "softmax": ([6, 8, 5, 3], ["relu", "leaky_relu", "softmax"], "cross_entropy"),
    "sigmoid": ([6, 7, 1], ["tanh", "sigmoid"], "cross_entropy"),
    "mse": ([6, 5, 2], ["sigmoid", "identity"], "mse"),
}


def _train_mb(backend, net, batch_size, seed=4, num_iterations=12, cost_every=3, on_cost=None,
              dtype=np.float64, threads=None, m=50, g0=1):
    dims, acts, loss = _MB_NETS[net]
    if acts[-1] == "softmax":
        Ws, bs, X, Y = softmax_problem(dims, m, dtype)
    else:
        Ws, bs, X, Y = network_problem(dims, m, dtype, 0, bias_scale=0.1)
    costs = train(backend, Ws, bs, acts, loss, X, Y, 0.1, num_iterations, cost_every, threads,
                          on_cost, relu_grad_at_zero=g0, batch_size=batch_size,
                          rng=None if seed is None else np.random.default_rng(seed))
    return costs, Ws + bs


@pytest.mark.parametrize("net", sorted(_MB_NETS))
@pytest.mark.parametrize("batch_size", [1, 7, 10, 50])  # 50 = m; 7 does not divide it
def test_mini_batch_training_matches_numpy(net, batch_size):
    from fastnn.backends import numpy as npb

    run = _train_mb(nb, net, batch_size)
    ref = _train_mb(npb, net, batch_size)
    assert [i for i, _ in run[0]] == [0, 3, 6, 9, 11]
    assert_same_run(run, ref, 1e-9)


def test_mini_batch_of_m_is_the_full_batch_step_with_a_shuffled_order():
    # One batch of all m examples in a shuffled order: the same gradient as
    # full batch (the sum is over the same examples), up to summation order.
    full = _train_mb(nb, "softmax", None)
    whole = _train_mb(nb, "softmax", 50)
    assert_same_run(whole, full, 1e-11)


def test_mini_batch_float32_tracks_numpy():
    from fastnn.backends import numpy as npb

    run = _train_mb(nb, "softmax", 8, dtype=np.float32)
    ref = _train_mb(npb, "softmax", 8, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in run[1])
    assert_same_run(run, ref, 2e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_mini_batch_training_is_bitwise_reproducible_for_a_seed(threads):
    first = _train_mb(nb, "softmax", 7, threads=threads)
    second = _train_mb(nb, "softmax", 7, threads=threads)
    assert first[0] == second[0]
    for p, q in zip(first[1], second[1]):
        np.testing.assert_array_equal(p, q)
    other_seed = _train_mb(nb, "softmax", 7, seed=5, threads=threads)
    assert not np.array_equal(first[1][0], other_seed[1][0])


def test_mini_batch_run_in_many_chunks_is_bitwise_the_run_in_one():
    # on_cost with cost_every=1 ends a chunk (and draws the orders) every epoch
    plain = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    seen = []
    chunked = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=1,
                        on_cost=lambda i, J: seen.append(i))
    assert seen == list(range(20)) == [i for i, _ in chunked[0]]
    assert [i for i, _ in plain[0]] == [0, 19]
    assert [c for i, c in chunked[0] if i in (0, 19)] == [c for _, c in plain[0]]
    for p, q in zip(plain[1], chunked[1]):
        np.testing.assert_array_equal(p, q)


def test_mini_batch_chunks_cap_the_drawn_shuffles(monkeypatch):
    # Room for 3 epochs' orders of m = 50 per chunk: 20 epochs run as 7
    # chunks, bitwise the run in one.
    plain = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    drawn = []
    real = _base.epoch_orders

    def spy(rng, m, count):
        drawn.append(count)
        return real(rng, m, count)

    monkeypatch.setattr(_base, "MAX_ORDER_ENTRIES", 3 * 50)
    monkeypatch.setattr(_base, "epoch_orders", spy)
    capped = _train_mb(nb, "softmax", 7, num_iterations=20, cost_every=25)
    assert max(drawn) <= 3 and sum(drawn) == 20
    assert capped[0] == plain[0]
    for p, q in zip(plain[1], capped[1]):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("batch_size", [None, 7])
@pytest.mark.parametrize("num_iterations,cost_every,expected", [
    (23, 5, [0, 5, 10, 15, 20, 22]), (20, 5, [0, 5, 10, 15, 19]), (1, 5, [0]), (4, 100, [0, 3]),
    (3, 1, [0, 1, 2])])
def test_recorded_costs_include_the_last_iteration(batch_size, num_iterations, cost_every,
                                                   expected):
    from fastnn.backends import numpy as npb

    for on_cost in (None, lambda i, J: True):  # one chunk, or a chunk per recorded cost
        run = _train_mb(nb, "softmax", batch_size, num_iterations=num_iterations,
                        cost_every=cost_every, on_cost=on_cost)
        assert [i for i, _ in run[0]] == expected
    ref = _train_mb(npb, "softmax", batch_size, num_iterations=num_iterations,
                    cost_every=cost_every)
    assert_same_run(run, ref, 1e-9)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_on_cost_stop_is_exact(batch_size):
    # Stopping at iteration 6 leaves the parameters of 6 iterations: bitwise
    # what a 6-iteration run (whose last recorded cost is 5's) leaves.
    seen = []

    def stop_at_6(i, J):
        seen.append(i)
        return i < 6

    stopped = _train_mb(nb, "softmax", batch_size, num_iterations=12, cost_every=3,
                        on_cost=stop_at_6)
    six = _train_mb(nb, "softmax", batch_size, num_iterations=6, cost_every=3)
    assert seen == [0, 3, 6] and [i for i, _ in stopped[0]] == [0, 3, 6]
    for p, q in zip(six[1], stopped[1]):
        np.testing.assert_array_equal(p, q)


def test_auto_threads_pick_one_for_small_mini_batches():
    # The calibration (numba/__init__.py): 64-64-10 at batch 32 and 200 gain
    # under 10 % from a second thread, one batch of 1347 and 100-128-64-5 at
    # 200 gain 1.2-1.3x.
    batch = nb.AUTO_THREADS_MIN_WORK["batch"]
    assert _threads.decide(None, [64, 64, 10], 32, batch).threads == 1
    assert _threads.decide(None, [64, 64, 10], 200, batch).threads == 1
    budget = _threads.cpu_budget()[0]
    assert _threads.decide(None, [64, 64, 10], 1347, batch).threads == budget
    assert _threads.decide(None, [100, 128, 64, 5], 200, batch).threads == budget



# ------------------------------------------------ the engine, driven directly

def _fit(dims, acts, m, batch_size, threads, num_iterations=12):
    Ws, bs, X, Y = problem(dims, m)
    return _base.Fit(_base.Problem(X, Y, tuple(acts), "cross_entropy"),
                     _base.Schedule(0.05, num_iterations, 100, batch_size), Ws, bs,
                     threads=threads)


@pytest.mark.parametrize("batch_size", [None, 7])
@pytest.mark.parametrize("threads", [1, 2])
def test_engine_calls_split_anywhere_are_bitwise_one_call(batch_size, threads):
    # 300 inputs, 6 units: full batch trains layer 1 through the fused pass
    dims, acts, m = [300, 6, 4, 1], ["relu", "tanh", "sigmoid"], 50
    orders = None if batch_size is None else _base.epoch_orders(np.random.default_rng(1), m, 12)
    whole, pieces = _fit(dims, acts, m, batch_size, threads), _fit(dims, acts, m, batch_size,
                                                                  threads)
    engine = nb.engine(whole)
    first = engine.cost()
    engine.run(12, orders, True)
    engine.close()
    engine = nb.engine(pieces)
    costs = [engine.cost()]
    for a, b in [(0, 1), (1, 4), (4, 5), (5, 12)]:
        engine.run(b - a, None if orders is None else orders[a:b], b == 12)
        if b < 12:
            costs.append(engine.cost())
    engine.close()
    assert costs[0] == first and len(set(costs)) == len(costs)
    for p, q in zip(whole.Ws + whole.bs, pieces.Ws + pieces.bs):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_slices_of_one_iteration_are_bitwise_the_default_slices(monkeypatch, batch_size):
    # SLICE_SECONDS ~ 0: the driver calls the engine one iteration (epoch) at a time
    plain = _train_mb(nb, "softmax", batch_size, num_iterations=20, cost_every=25)
    monkeypatch.setattr(_base, "SLICE_SECONDS", 1e-12)
    sliced = _train_mb(nb, "softmax", batch_size, num_iterations=20, cost_every=25)
    assert sliced[0] == plain[0]
    for p, q in zip(plain[1], sliced[1]):
        np.testing.assert_array_equal(p, q)


# ------------------------------------------------ what a fit compiles

_COMPILED_RUN = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastnn
    from fastnn.backends.numba import introspect
    X, Y = fastnn.datasets.planar()
    net = fastnn.Network([2, 4, 1], hidden_activation="tanh", backend="numba", threads=1)
    net.fit(X, Y, learning_rate=1.2, num_iterations=100)
    engine_room = ("full_batch", "forward_cost", "epochs", "first_layer_threads")
    full = sorted(k for k in introspect.compiled() if k in engine_room)
    net.fit(X, Y, learning_rate=1.2, num_iterations=3, batch_size=32)
    both = sorted(k for k in introspect.compiled() if k in engine_room)
    print(json.dumps({"full": full, "both": both}))
""")


def test_a_full_batch_fit_compiles_none_of_the_mini_batch_kernels(tmp_path):
    # a fresh process and an empty cache: every kernel a fit needs is compiled
    # on its first call, and only those (one thread: no parallel pass)
    done = subprocess.run([sys.executable, "-c", _COMPILED_RUN], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO, NUMBA_CACHE_DIR=str(tmp_path)),
                          timeout=900)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["full"] == ["full_batch"], out
    assert out["both"] == ["epochs", "forward_cost", "full_batch"], out


# ------------------------------------------------ the mini-batch gather

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n, mb", [(100, 200), (5, 7), (17, 40), (1, 1), (0, 3)])
def test_gather_rows_copies_each_example_of_the_order_as_a_column(dtype, n, mb):
    # batches shorter and longer than GATHER_AHEAD, rows of one to several lines
    # and none, the last batch of the order cut short
    from fastnn.backends.numba.engine_room import gather_rows

    m = 3 * mb + 2
    XT = np.random.default_rng(0).standard_normal((m, n)).astype(dtype)
    order = np.random.default_rng(1).permutation(m)
    for k in range(0, m, mb):
        c = min(mb, m - k)
        out = np.full((n, c), np.nan, dtype)
        gather_rows(XT, order, k, out)
        np.testing.assert_array_equal(out, XT[order[k:k + c]].T)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gather_rows_prefetches_the_rows_it_reads(dtype):
    # Nothing numeric depends on the prefetches, so only the machine code can
    # tell that they are there (llvm.prefetch at locality 2: prefetcht1 on
    # x86-64). Cached code cannot be disassembled: a private uncached copy.
    import platform

    import numba

    from fastnn.backends.numba.engine_room import gather_rows

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("prefetcht1 is x86-64's")
    options = {k: v for k, v in gather_rows.targetoptions.items() if k != "nopython"}
    fresh = numba.njit(**dict(options, cache=False))(gather_rows.py_func)
    XT, out = np.arange(12, dtype=dtype).reshape(4, 3), np.zeros((3, 2), dtype)
    fresh(XT, np.array([3, 1]), 0, out)
    np.testing.assert_array_equal(out, XT[[3, 1]].T)
    assert "prefetcht1" in fresh.inspect_asm(fresh.signatures[0]), \
        "no prefetcht1 in the gather: its prefetches are gone"


# ------------------------------------------------ the on-disk cache

def test_a_cached_kernel_is_recompiled_when_any_file_of_the_package_changes(tmp_path,
                                                                            monkeypatch):
    # A cached kernel carries the code of the kernels it calls from other files
    # (second_room's epochs holds engine_room's gather_rows): it is valid for
    # the package's sources as a whole (config.package_stamp), not its own file.
    import numba

    from fastnn.backends.numba import config
    from fastnn.backends.numba.engine_room import gather_rows

    if not config.CACHE:
        pytest.skip("caching is off here (FASTNN_NUMBA_CACHE=0 or no writable directory)")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))  # not the checkout's cache
    XT, out = np.arange(12.0).reshape(4, 3), np.zeros((3, 2))

    def run():
        kernel = numba.njit(cache=True)(gather_rows.py_func)  # its locator is chosen here
        kernel(XT, np.array([3, 1]), 0, out)
        np.testing.assert_array_equal(out, XT[[3, 1]].T)
        return sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())

    assert run() == (0, 1)   # compiled and saved
    assert run() == (1, 0)   # loaded
    monkeypatch.setattr(config, "package_stamp", lambda: "another version of the sources")
    assert run() == (0, 1)   # the same file, another package: compiled again
    assert run() == (1, 0)


def test_the_package_stamp_follows_every_files_contents(tmp_path):
    from fastnn.backends.numba import config

    files = [tmp_path / "a.py", tmp_path / "b.py"]
    for f in files:
        f.write_text("x = 1\n")
    before = config._sources_digest(files)
    assert config._sources_digest(files) == before
    files[1].write_text("x = 2\n")  # the same size and, within a second, the same time
    assert config._sources_digest(files) != before
    assert len(config.package_stamp()) == 64


def test_the_package_locator_answers_what_numba_asks_its_own(tmp_path, monkeypatch):
    # Numba reads _py_file off the locator when it declines to cache a kernel
    # (a large global array, say): there, a warning, not an AttributeError
    import numba

    from fastnn.backends.numba import config, engine_room

    if not config.CACHE:
        pytest.skip("caching is off here")
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    kernel = numba.njit(cache=True)(engine_room.gather_rows.py_func)
    locator = kernel._cache._impl._locator
    assert type(locator).__name__ == "PackageLocator"
    assert locator._py_file.endswith("engine_room.py")
    assert locator.get_source_stamp()[0] == config.package_stamp()
