"""The cython backend on the contract's newer parts: ReLU'(0) at Z == 0, the
softmax output, mini-batch epochs (every path, threads, calls, shuffles), the
recorded costs and early stopping under the one driver, and the plan's
bounds checks. The builds, paths, threads and layer-1 modes are in
test_cython_backend.py, the own GEMM in test_cython_gemm.py."""

import shutil

import numpy as np
import pytest

from fastnn._testing import train
from fastnn.backends import _base
from fastnn.backends import _threads as _thread_policy
from fastnn.backends import numpy as nb
from fastnn.report import simd

from _helpers import require_backend

cb = require_backend("cython")  # skips (or, where required, fails) this module without it

from test_cython_backend import RTOL, _engine_threads, _fit, _problem, _rel, isa  # noqa: E402,F401


def _softmax_problem(dims, m, dtype=np.float64, seed=0):
    """network_problem with a one-hot Y over the dims[-1] classes."""
    X, _, Ws, bs = _problem(dims, m, dtype, seed)
    labels = np.random.default_rng(seed + 1).integers(0, dims[-1], m)
    Y = np.ascontiguousarray(np.eye(dims[-1], dtype=dtype)[:, labels])
    return X, Y, Ws, bs


def _copies(arrays):
    return [a.copy() for a in arrays]


def _integer_problem(dims, m, seed=0):
    """Entries in {-1, 0, 1}, zero biases: every Z is an exact small integer
    and many are exactly 0, where ReLU's derivative is a convention."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-1, 2, (dims[0], m)).astype(np.float64)
    Ws = [rng.integers(-1, 2, (dims[l], dims[l - 1])).astype(np.float64)
          for l in range(1, len(dims))]
    bs = [np.zeros((n, 1)) for n in dims[1:]]
    Y = (rng.random((dims[-1], m)) < 0.5).astype(np.float64)
    return X, Y, Ws, bs


@pytest.mark.parametrize("m,threads", [(1, 1), (32, 1), (300, 2)])
@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_relu_grad_at_zero_matches_numpy_where_z_is_exactly_zero(act, m, threads):
    # m = 1: the matrix-vector loops; 32: the small products; 300 on two
    # threads: the loops and GEMMs of wide chunks. mse on an act output:
    # output_dZ applies the convention too.
    dims = [6, 9, 7, 2]
    X, Y, Ws, bs = _integer_problem(dims, m)
    for acts, loss in (([act, act, "sigmoid"], "cross_entropy"), ([act] * 3, "mse")):
        AL, caches = cb.forward(Ws, bs, acts, X, threads=threads)
        AL_ref, caches_ref = nb.forward(Ws, bs, acts, X)
        assert any((c[1] == 0).any() for c in caches_ref), "no Z == 0: the test lost its point"
        grads = {}
        for g0 in (1, 0):
            dWs, dbs = cb.backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=g0)
            ref = nb.backward(AL_ref, Y, caches_ref, acts, loss, relu_grad_at_zero=g0)
            for a, b in zip(dWs + dbs, ref[0] + ref[1]):
                assert _rel(a, b) < 1e-13, (acts, loss, g0)
            grads[g0] = dWs + dbs
        if m > 1:  # the convention matters here: the two gradients differ
            assert any(not np.array_equal(a, b) for a, b in zip(grads[0], grads[1]))


@pytest.mark.parametrize("batch_size", [None, 8])
def test_relu_grad_at_zero_trains_as_numpy(batch_size):
    dims, acts = [6, 9, 7, 1], ["relu", "leaky_relu", "sigmoid"]
    X, Y, Ws, bs = _integer_problem(dims, 40)
    for g0 in (1, 0):
        W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
        kw = dict(relu_grad_at_zero=g0, batch_size=batch_size)
        c = train(cb, W1, b1, acts, "cross_entropy", X, Y, 0.25, 5, 1,
                     rng=np.random.default_rng(2), **kw)
        ref = train(nb, W2, b2, acts, "cross_entropy", X, Y, 0.25, 5, 1,
                       rng=np.random.default_rng(2), **kw)
        assert _rel([j for _, j in c], [j for _, j in ref]) < RTOL
        for a, b in zip(W1 + b1, W2 + b2):
            assert _rel(a, b) < RTOL


@pytest.mark.parametrize("variant", ["vec", "novec"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_forward_backward_cost_match_numpy(isa, variant, dtype):
    # 300 examples: two softmax blocks of 128 columns and a tail; on two
    # threads the chunk boundary falls inside a block.
    from fastnn import losses

    tol = 1e-12 if dtype == np.float64 else 1e-5
    dims, acts = [7, 12, 5], ["tanh", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 300, dtype)
    with cb.settings(variant=variant):
        for threads in (1, 2):
            AL, caches = cb.forward(Ws, bs, acts, X, threads=threads)
            AL_ref, caches_ref = nb.forward(Ws, bs, acts, X)
            assert AL.dtype == dtype and _rel(AL, AL_ref) < tol
            assert np.allclose(AL.sum(axis=0), 1, atol=tol)
            grads = cb.backward(AL, Y, caches, acts, "cross_entropy", threads)
            ref = nb.backward(AL_ref, Y, caches_ref, acts, "cross_entropy")
            for a, b in zip(grads[0] + grads[1], ref[0] + ref[1]):
                assert _rel(a, b) < tol
            # The cost the C loop records (iteration 0: before any update).
            (i, J), = train(cb, _copies(Ws), _copies(bs), acts, "cross_entropy", X, Y, 0.1, 1, 1,
                               threads=threads)
            J_ref = losses.cost("cross_entropy", AL_ref, caches_ref[-1][1], Y, "softmax")
            assert i == 0 and abs(J - J_ref) < tol * J_ref


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_cost_and_output_stable_for_huge_logits(dtype):
    # Logits of +-1e4 (e^z overflows any float): the column max is subtracted
    # and the cost is max + log(sum e^(z - max)) - y.z, finite and exact.
    # (pytest runs with -W error::RuntimeWarning: numpy's oracle warns on nothing either.)
    from fastnn import losses

    X = np.array([[1.0, -1.0, 0.5, 0.0]], dtype) * dtype(1e4)
    W = np.array([[1.0], [-1.0], [0.0]], dtype)
    b = np.zeros((3, 1), dtype)
    Y = np.ascontiguousarray(np.eye(3, dtype=dtype)[:, [1, 0, 2, 2]])
    AL, caches = cb.forward([W], [b], ["softmax"], X)
    assert np.isfinite(AL).all()
    assert AL[:, 0].tolist() == [1, 0, 0] and AL[:, 1].tolist() == [0, 1, 0]
    assert np.allclose(AL[:, 3], 1 / 3)
    (_, J), = train(cb, [W.copy()], [b.copy()], ["softmax"], "cross_entropy", X, Y, 0.1, 1, 1)
    J_ref = losses.cost("cross_entropy", AL, caches[0][1], Y, "softmax")
    assert np.isfinite(J) and abs(J - J_ref) <= 1e-6 * J_ref
    assert abs(J - (2e4 + 2e4 + 5e3 + np.log(3)) / 4) <= 1e-6 * J


MINIBATCH_NETS = {
    "softmax": ([7, 12, 9, 4], ["relu", "tanh", "softmax"]),
    "sigmoid": ([7, 5, 1], ["leaky_relu", "sigmoid"]),
}


def _train_batches(module, net, m, batch_size, threads=None, dtype=np.float64, iters=5,
                   cost_every=2, seed=3, **kw):
    dims, acts = MINIBATCH_NETS[net]
    X, Y, Ws, bs = (_softmax_problem if net == "softmax" else _problem)(dims, m, dtype)
    costs = train(module, Ws, bs, acts, "cross_entropy", X, Y, 0.2, iters, cost_every,
                         threads=threads, batch_size=batch_size,
                         rng=np.random.default_rng(seed), **kw)
    return costs, Ws + bs


# 1 (matrix-vector loops), 13 (on two threads: chunks below the small
# products), 32 (small products), 37 (does not divide 100: a last batch of
# 26), 100 = m (one batch: the wide products).
@pytest.mark.parametrize("batch_size", [1, 13, 32, 37, 100])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("net", list(MINIBATCH_NETS))
def test_minibatch_train_matches_numpy(net, threads, batch_size):
    costs, p = _train_batches(cb, net, 100, batch_size, threads)
    ref, p_ref = _train_batches(nb, net, 100, batch_size)
    assert [i for i, _ in costs] == [i for i, _ in ref] == [0, 2, 4]
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


def test_minibatch_every_path_matches_numpy(isa):
    ref, p_ref = _train_batches(nb, "softmax", 90, 20)
    for variant in ("vec", "novec"):
        with cb.settings(variant=variant):
            costs, p = _train_batches(cb, "softmax", 90, 20, threads=2)
        assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
        for a, b in zip(p, p_ref):
            assert _rel(a, b) < RTOL


@pytest.mark.parametrize("batch_size", [1, 16, 45])
def test_minibatch_float32_close_to_numpy(batch_size):
    costs, p = _train_batches(cb, "softmax", 90, batch_size, dtype=np.float32)
    ref, p_ref = _train_batches(nb, "softmax", 90, batch_size, dtype=np.float32)
    assert all(a.dtype == np.float32 for a in p)
    assert _rel([j for _, j in costs], [j for _, j in ref]) < 1e-4
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < 1e-4


@pytest.mark.parametrize("threads", [1, 2])
def test_minibatch_bitwise_reproducible_for_a_seed(threads):
    runs = [_train_batches(cb, "softmax", 150, 24, threads, iters=4) for _ in range(2)]
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        assert np.array_equal(a, b)
    other, _ = _train_batches(cb, "softmax", 150, 24, threads, iters=4, seed=4)
    assert other[1:] != runs[0][0][1:]  # the seed does decide the shuffles


def test_minibatch_calls_change_no_bit():
    # Epochs run in engine calls (Ctrl-C is noticed between them), each given
    # its own epochs' shuffles: one call or one per epoch, the same bits.
    dims, acts = MINIBATCH_NETS["softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 60)
    orders = _base.epoch_orders(np.random.default_rng(3), 60, 9)
    runs = []
    for sizes in ([4, 5], [1] * 9):
        fit = _base.Fit(_base.Problem(X, Y, tuple(acts), "cross_entropy"),
                        _base.Schedule(0.2, 9, 4, batch_size=16), _copies(Ws), _copies(bs),
                        threads=2)
        engine = cb.engine(fit)
        costs, e = {}, 0
        try:
            for n in sizes:
                costs[e] = engine.cost()
                engine.run(n, orders[e:e + n], e + n == 9)
                e += n
        finally:
            engine.close()
        runs.append(([costs[0], costs[4]], fit.Ws + fit.bs))
    (c1, p1), (c2, p2) = runs
    assert c1 == c2
    for a, b in zip(p1, p2):
        assert np.array_equal(a, b)
    # Through the driver, calls of any size (SLICE_SECONDS = 0: one epoch each)
    # record the same costs and leave the same bits.
    with pytest.MonkeyPatch.context() as mp:
        driver = []
        for seconds in (_base.SLICE_SECONDS, 0.0):
            mp.setattr(_base, "SLICE_SECONDS", seconds)
            driver.append(_train_batches(cb, "softmax", 60, 16, threads=2, iters=9,
                                         cost_every=4))
    (d1, q1), (d2, q2) = driver
    assert d1 == d2 and [i for i, _ in d1] == [0, 4, 8]
    for a, b in zip(q1, q2):
        assert np.array_equal(a, b)


def test_auto_threads_one_for_a_small_batch():
    # The digits workload: 64-64-10 on batches of 32 is below the two-thread
    # crossover, on 256 above it; both of the fit's plans follow the batch.
    budget = _thread_policy.cpu_budget()[0]

    def decided(batch_size):
        fit = _fit([64, 64, 10], 2048, iters=1, batch_size=batch_size)
        return _base.decide_threads(cb, fit, None).threads

    assert decided(32) == 1
    # Batches start the team three times each: they need more work for a second thread.
    assert cb.AUTO_THREADS_MIN_WORK["batch"] > cb.AUTO_THREADS_MIN_WORK["full"]
    assert decided(64) == 1
    assert decided(256) == budget
    assert decided(1024) == budget
    # Both plans run on the batch's count, capped by the batch's examples.
    assert _engine_threads(_fit([64, 64, 10], 100, threads=2, iters=1, batch_size=1)) == 1


@pytest.mark.parametrize("mode", ["direct", "onepass", "gram", "batches"])
@pytest.mark.parametrize("iters,cost_every", [(57, 10), (1, 5), (20, 1), (30, 10)])
def test_last_iteration_cost_recorded(mode, iters, cost_every):

    dims, acts = [300, 6, 3], ["tanh", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 40)
    kw = dict(gram=mode == "gram") if mode != "batches" else dict(batch_size=16)
    W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
    with cb.settings(onepass=mode == "onepass"):
        costs = train(cb, W1, b1, acts, "cross_entropy", X, Y, 0.05, iters, cost_every,
                         threads=2, rng=np.random.default_rng(0), **kw)
    ref = train(nb, W2, b2, acts, "cross_entropy", X, Y, 0.05, iters, cost_every,
                   rng=np.random.default_rng(0), batch_size=kw.get("batch_size"))
    expected = [i for i in range(iters) if _base.recorded(i, cost_every, iters)]
    assert [i for i, _ in costs] == [i for i, _ in ref] == expected
    assert expected[-1] == iters - 1
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(W1 + b1, W2 + b2):  # the last update ran after the last record
        assert _rel(a, b) < RTOL


@pytest.mark.parametrize("mode", ["direct", "onepass", "gram", "batches"])
@pytest.mark.parametrize("stop_at", [0, 7, 29])
def test_on_cost_stops_exactly_before_that_update(mode, stop_at):
    # Early stopping (user callbacks, divergence): on_cost returning False at
    # iteration i leaves the parameters as they were before i's update.
    dims, acts = [300, 6, 3], ["relu", "softmax"]
    X, Y, Ws, bs = _softmax_problem(dims, 40)
    kw = dict(gram=mode == "gram") if mode != "batches" else dict(batch_size=16)
    stop = lambda i, J: i < stop_at  # noqa: E731
    W1, b1, W2, b2 = _copies(Ws), _copies(bs), _copies(Ws), _copies(bs)
    with cb.settings(onepass=mode == "onepass"):
        costs = train(cb, W1, b1, acts, "cross_entropy", X, Y, 0.05, 40, 1, threads=2,
                         on_cost=stop, rng=np.random.default_rng(0), **kw)
    ref = train(nb, W2, b2, acts, "cross_entropy", X, Y, 0.05, 40, 1, on_cost=stop,
                   rng=np.random.default_rng(0), batch_size=kw.get("batch_size"))
    assert [i for i, _ in costs] == [i for i, _ in ref] == list(range(stop_at + 1))
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(W1 + b1, W2 + b2):
        assert _rel(a, b) < RTOL
    if stop_at == 0:
        for a, b in zip(W1 + b1, Ws + bs):
            assert np.array_equal(a, b)


@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump absent (apt-get install binutils)")
@pytest.mark.skipif("-O0" in cb.info()["compile_flags"], reason="FASTNN_DEBUG_BUILD: no SIMD by design")
def test_softmax_and_small_products_are_packed_simd(isa):
    # The column softmax calls libmvec's exp at the path's width and its row
    # passes are packed; so are the small products' register tiles (a
    # mini-batch's every product).
    ev = simd.evidence(cb)
    letter = {"baseline": "b", "avx2": "d", "avx512": "e"}[isa]
    reg = {"avx512": "packed_zmm", "avx2": "packed_ymm", "baseline": "packed_xmm"}[isa]
    for dtype, fn in (("float64", "exp"), ("float32", "expf")):
        counts = ev[f"softmax_forward {dtype}"]
        assert any(s.startswith(f"_ZGV{letter}") and s.endswith("v_" + fn)
                   for s in counts["libmvec_calls"]), counts["libmvec_calls"]
        assert counts[reg] >= 4, counts
        small = ev[f"small_nn {dtype}"]
        assert small[reg] >= 8, small
        if isa != "avx512":
            assert counts["packed_zmm"] == small["packed_zmm"] == 0
    with cb.settings(variant="novec"):
        novec = simd.evidence(cb)
    assert novec["softmax_forward float64"]["libmvec_calls"] == {}
    assert "small_nn float64" not in novec


def test_minibatch_last_batch_smaller_than_threads():
    # 101 = 2 x 50 + 1: the last batch has one example for two threads (an
    # empty chunk), a single column (the matrix-vector loops).
    costs, p = _train_batches(cb, "softmax", 101, 50, threads=2)
    ref, p_ref = _train_batches(nb, "softmax", 101, 50)
    assert _rel([j for _, j in costs], [j for _, j in ref]) < RTOL
    for a, b in zip(p, p_ref):
        assert _rel(a, b) < RTOL


def test_info_names_the_small_products():
    info = cb.info()
    assert ("_small.h" in info["small_products"]) == (info["variant"] == "vec")
    with cb.settings(variant="novec"):
        assert cb.info()["small_products"].startswith("none")


def test_epochs_refuses_input_that_would_read_out_of_bounds():
    # _Net.epochs is callable from Python: it checks what the kernels index by.
    ext = cb.paths.active()
    Ws = [np.ones((3, 4)), np.ones((2, 3))]
    bs = [np.zeros((3, 1)), np.zeros((2, 1))]
    net = ext._Net(Ws, bs, [2, 5], np.zeros((4, 2)), 1, None, None, 1)
    net.set_Y(np.zeros((2, 2)))
    XT, YT = np.zeros((5, 4)), np.zeros((5, 2))
    good = np.arange(5, dtype=np.int64)[None]
    net.epochs(0, 0.1, good, XT, YT)  # in bounds: runs
    bad = [
        (TypeError, "must be float64", (good, XT.astype(np.float32), YT)),
        (ValueError, r"C-contiguous \(m, 4\)", (good, np.zeros((5, 3)), YT)),
        (ValueError, r"\(m, 2\)", (good, XT, np.zeros((4, 2)))),
        (ValueError, r"C-contiguous", (good, np.asfortranarray(np.zeros((5, 4))), YT)),
        (ValueError, "rows of 5 indices", (np.arange(4, dtype=np.int64)[None], XT, YT)),
        (ValueError, "rows of 5 indices", (good + 1, XT, YT)),
        (ValueError, "rows of 5 indices", (good - 1, XT, YT)),
    ]
    for exc, match, (orders, X_T, Y_T) in bad:
        with pytest.raises(exc, match=match):
            net.epochs(0, 0.1, orders, X_T, Y_T)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_nan(dtype):
    X = np.array([[1000.0, -1000.0, 0.0]], dtype)
    W, b = np.ones((1, 1), dtype), np.zeros((1, 1), dtype)
    AL, caches = cb.forward([W], [b], ["sigmoid"], X)
    assert AL.tolist() == [[1.0, 0.0, 0.5]]
    Y = np.array([[1.0, 0.0, 1.0]], dtype)
    costs = train(cb, [W], [b], ["sigmoid"], "cross_entropy", X, Y, 0.1, 1, 1)
    # The saturated examples are right (their terms ~e^-1000), the third costs log 2.
    assert costs[0][1] == pytest.approx(np.log(2) / 3, rel=1e-6)
