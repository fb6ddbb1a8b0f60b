"""The course's second part on the Cython backend's own paths: the update rules
(the course's four and scikit-learn's two), L2, dropout's hashed masks, the
decay and the epoch losses inside the kernels, on each way the engine trains
(full batch directly, layer 1 in one pass, Gram asked for, mini-batches, a
batch of one, two threads, float32), against the loops oracle.
The generic cases (every HAS_OPTIMIZERS backend) are in test_course2_training.py.

Cheap by design: a [3, 5, 4, 1] net on 24 examples, the options chosen
pairwise, never the full product.
"""

import numpy as np
import pytest

import fastnn
from fastnn import regularization
from fastnn.optimizers import SklearnAdam, SklearnSGD
from fastnn.backends import _base

from _helpers import assert_close, assert_trained_alike, binary_data, require_backend

cb = require_backend("cython")


def _net(backend, hidden="relu", dtype="float64", threads=1, g0=1, dims=(3, 5, 4, 1)):
    return fastnn.Network(list(dims), hidden_activation=hidden, init="xavier", seed=3,
                          backend=backend, dtype=dtype, threads=threads, relu_grad_at_zero=g0)


def _fit(net, iterations=12, m=24, **options):
    X, Y = binary_data(net.layer_dims[0], m, seed=1)
    name = getattr(options.get("optimizer"), "name", options.get("optimizer"))
    lr = 0.01 if name in ("adam", "rmsprop", "sklearn_adam") else 0.1
    net.fit(X, Y, learning_rate=lr, num_iterations=iterations, cost_every=5, seed=11,
            **options)
    return net


# The engine's paths, each with a pairwise pick of the options (optimizer,
# lambd, keep_prob, decay, hidden activation, ReLU'(0)).
#        path          optimizer   lambd keep_prob   decay (rate, interval) hidden g0
PATHS = [("direct", "momentum", 0.3, 0.8, (0.5, 2), "tanh", 1),
         ("onepass", "adam", 0.2, 0.75, (0.3, 1), "relu", 0),
         ("onepass", "rmsprop", 0.0, 1.0, (0.0, 1), "sigmoid", 1),
         ("gram", "adam", 0.1, 1.0, (0.2, 3), "leaky_relu", 1),
         ("gram", "gd", 0.0, 0.7, (0.0, 1), "relu", 1),
         ("batch", "adam", 0.0, (0.9, 0.6), (1.0, 2), "sigmoid", 0),
         ("batch", "gd", 0.4, 1.0, (0.3, 1), "tanh", 1),
         ("batch1", "momentum", 0.0, 0.8, (0.0, 1), "relu", 0),
         ("batch1", "adam", 0.5, (0.7, 0.9), (0.4, 3), "tanh", 1),
         ("batch1", "rmsprop", 0.2, 1.0, (0.0, 1), "leaky_relu", 1),
         ("batch1", "gd", 0.3, 0.8, (0.3, 2), "sigmoid", 1),
         ("threads2", "rmsprop", 0.6, 0.85, (0.0, 1), "relu", 1),
         ("threads2-batch", "momentum", 0.1, 0.7, (0.2, 1), "tanh", 0),
         # scikit-learn's rules, pairwise with Nesterov and their hyper-parameters
         ("direct", SklearnSGD(0.9, True), 0.2, 0.8, (0.5, 2), "relu", 1),
         ("onepass", SklearnAdam(), 0.1, 1.0, (0.3, 1), "tanh", 0),
         ("onepass", SklearnSGD(0.7, False), 0.0, 0.75, (0.0, 1), "sigmoid", 1),
         ("gram", SklearnAdam(0.8, 0.95, 1e-3), 0.0, 1.0, (0.0, 1), "relu", 1),
         ("batch", SklearnSGD(0.9, True), 0.3, (0.9, 0.6), (0.2, 1), "leaky_relu", 0),
         ("batch1", SklearnAdam(), 0.2, 0.8, (0.0, 1), "tanh", 1),
         ("batch1", SklearnSGD(0.5, False), 0.0, 1.0, (0.4, 3), "relu", 1),
         ("batch1", SklearnSGD(0.9, True), 0.3, 0.85, (0.0, 1), "leaky_relu", 0),
         ("threads2", SklearnAdam(epsilon=1e-4), 0.4, 0.85, (0.0, 1), "sigmoid", 1),
         ("threads2-batch", SklearnSGD(0.8, True), 0.1, 0.7, (0.2, 1), "tanh", 0)]


def _case_id(case):
    optimizer = case[1]
    if isinstance(optimizer, SklearnSGD):
        optimizer = f"sklearn_sgd{'-nesterov' if optimizer.nesterov else ''}"
    return f"{case[0]}-{getattr(optimizer, 'name', optimizer)}"


def _path_options(path):
    """(extra fit options, thread count, settings) that put a fit on ``path``;
    Gram asked for trains layer 1 directly with these options (documented)."""
    extra = {}
    batch = {"batch": 5, "batch1": 1, "threads2-batch": 7}.get(path)
    if batch:
        extra["batch_size"] = batch
    if path == "gram":
        extra["gram"] = True
    threads = 2 if path.startswith("threads2") else 1
    return extra, threads, {"onepass": True} if path == "onepass" else {}


def _fit_of(net, X, Y, schedule):
    """A driver Fit of ``net``'s parameters (copies) and a fresh optimizer state."""
    L = len(net.layer_dims) - 1
    optimizer = schedule.optimizer or fastnn.optimizers.GradientDescent()
    return _base.Fit(_base.Problem(X, Y, tuple(net.activations), "cross_entropy"), schedule,
                     [net.params[f"W{l}"].copy() for l in range(1, L + 1)],
                     [net.params[f"b{l}"].copy() for l in range(1, L + 1)],
                     rng=np.random.default_rng(4), optimizer_state=optimizer.init(net.params))


@pytest.mark.parametrize("case", PATHS, ids=[_case_id(c) for c in PATHS])
def test_every_path_trains_as_the_loops_oracle(case):
    path, optimizer, lambd, keep_prob, (decay, interval), hidden, g0 = case
    options = dict(optimizer=optimizer, lambd=lambd, keep_prob=keep_prob, decay_rate=decay,
                   time_interval=interval)
    extra, threads, settings = _path_options(path)
    # Two threads for hundreds of iterations (the one-thread paths run them in
    # test_course2_training's oracle comparison).
    extra["iterations"] = 300 if threads == 2 else 12
    oracle = _fit(_net("loops", hidden, g0=g0), **options,
                  **{k: v for k, v in extra.items() if k != "gram"})
    with cb.settings(**settings):
        net = _fit(_net("cython", hidden, threads=threads, g0=g0), **options, **extra)
    assert net.threads_used_[0] == threads
    assert_trained_alike(net, oracle)


@pytest.mark.parametrize("options", [dict(optimizer="adam", keep_prob=0.8, lambd=0.2),
                                     dict(optimizer="momentum", batch_size=5, keep_prob=0.7,
                                          decay_rate=0.5),
                                     dict(optimizer=SklearnAdam(), batch_size=6, lambd=0.1),
                                     dict(optimizer=SklearnSGD(0.9, True), keep_prob=0.8,
                                          decay_rate=0.3)],
                         ids=["adam", "momentum", "sklearn_adam", "sklearn_sgd"])
def test_float32_tracks_float64(options):
    lo = _fit(_net("cython", "tanh", dtype="float32"), **options)
    hi = _fit(_net("cython", "tanh"), **options)
    assert all(W.dtype == np.float32 for W in lo.params.values())
    assert all(a.dtype == np.float32 for d in lo.optimizer_state_.values() for a in d.values())
    assert_close([c for _, c in lo.costs_], [c for _, c in hi.costs_], 1e-4, "float32 costs")
    assert_close(list(lo.params.values()), list(hi.params.values()), 1e-4, "float32 parameters")


@pytest.mark.parametrize("threads,batch", [(1, None), (2, 6)])
def test_bitwise_reproducible_for_fixed_threads(threads, batch):
    options = dict(optimizer="adam", keep_prob=0.75, lambd=0.1, decay_rate=0.2,
                   batch_size=batch)
    a = _fit(_net("cython", threads=threads), **options)
    b = _fit(_net("cython", threads=threads), **options)
    for key, W in a.params.items():
        np.testing.assert_array_equal(b.params[key], W)
    np.testing.assert_array_equal(a.optimizer_state_["s"]["dW2"], b.optimizer_state_["s"]["dW2"])


def test_resume_from_a_saved_optimizer_state_continues_as_the_oracle():
    nets = {}
    for backend in ("loops", "cython"):
        net = _fit(_net(backend), iterations=6, optimizer="adam", lambd=0.2, batch_size=7)
        _fit(net, iterations=5, optimizer="adam", lambd=0.2, batch_size=7, resume=True)
        nets[backend] = net
    assert nets["cython"].optimizer_steps_ == 11 * 4
    assert_trained_alike(nets["cython"], nets["loops"])


@pytest.mark.parametrize("batch", [None, 5])
def test_calls_split_anywhere_change_no_bit(batch):
    """run(a); run(b) is bitwise run(a + b): the decay's clock, Adam's t and the
    masks' step carry across the engine's calls."""
    X, Y = binary_data(3, 24, seed=1)
    X, Y = np.ascontiguousarray(X), np.ascontiguousarray(Y)
    net = _net("cython", "tanh")
    schedule = _base.Schedule(0.01, 9, batch_size=batch, optimizer=fastnn.optimizers.Adam(),
                              lambd=0.3, keep_probs=(0.8, 0.7), decay_rate=0.5,
                              time_interval=2)
    results = []
    for splits in ([9], [1, 3, 5], [4, 4, 1]):
        fit = _fit_of(net, X, Y, schedule)
        engine = cb.engine(fit)
        costs = []
        for k, n in enumerate(splits):
            costs.append(engine.cost())
            orders = None if batch is None else _base.epoch_orders(fit.rng, 24, n)
            engine.run(n, orders, k == len(splits) - 1)
        engine.close()
        results.append((fit.Ws + fit.bs + [fit.optimizer_state["v"]["dW1"]], costs[0]))
    for arrays, cost in results[1:]:
        assert cost == results[0][1]
        for a, b in zip(arrays, results[0][0]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch", [None, 4])
def test_the_optimizer_state_is_handed_back_when_training_stops(batch):
    """An on_cost that raises mid-fit: close() still leaves fit.optimizer_state
    (and the parameters) current, as the oracle's."""
    X, Y = binary_data(3, 24, seed=1)
    fits = {}
    for backend in ("loops", "cython"):
        net = _net(backend)
        schedule = _base.Schedule(0.01, 20, cost_every=1, batch_size=batch,
                                  optimizer=fastnn.optimizers.RMSprop(), lambd=0.1)
        fit = _fit_of(net, X, Y, schedule)

        def stop(i, cost):
            if i == 7:
                raise RuntimeError("stop")

        with pytest.raises(RuntimeError, match="stop"):
            _base.train(fastnn.backends.get(backend), fit, stop, threads=1)
        fits[backend] = fit
    ref = fits["loops"]
    assert_close(fits["cython"].Ws, ref.Ws, 1e-9, "parameters")
    keys = list(ref.optimizer_state["s"])
    assert_close([fits["cython"].optimizer_state["s"][k] for k in keys],
                 [ref.optimizer_state["s"][k] for k in keys], 1e-9, "state")


@pytest.mark.parametrize("dtype,threads", [("float64", 1), ("float32", 2)])
def test_forward_and_backward_with_masks_and_l2_match_numpy(dtype, threads):
    X, Y = binary_data(3, 40, seed=2)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    grads = {}
    for backend in ("numpy", "cython"):
        net = _net(backend, "sigmoid", dtype=dtype, threads=threads, dims=(3, 6, 5, 1))
        AL, caches = net.forward(X, keep_prob=(0.7, 0.8), rng=np.random.default_rng(0))
        assert [len(c) for c in caches] == [3, 3, 2]
        grads[backend] = (AL, net.backward(AL, Y, caches, keep_prob=(0.7, 0.8), lambd=0.4))
    assert_close([grads["cython"][0]], [grads["numpy"][0]], rtol, "AL")
    ref = grads["numpy"][1]
    assert_close([grads["cython"][1][k] for k in ref], list(ref.values()), rtol, "gradients")


def test_the_kernels_hash_is_fastnn_regularization_s():
    ext = cb.module(cb.current()["isa"])
    rng = np.random.default_rng(0)
    for z in [0, 2 ** 64 - 1] + [int(v) for v in rng.integers(0, 2 ** 64, 50, dtype=np.uint64)]:
        assert ext.splitmix64(z) == int(regularization.splitmix64(z))
    # A fit's masks, seen through the forward a one-layer-dropout fit runs:
    # the oracle's fit_mask on the same key and step gives the same parameters.
    oracle = _fit(_net("numpy", "identity"), iterations=1, keep_prob=0.5)
    net = _fit(_net("cython", "identity", threads=2), iterations=1, keep_prob=0.5)
    assert_close(list(net.params.values()), list(oracle.params.values()), 1e-12, "parameters")


@pytest.mark.parametrize("optimizer,batch", [(SklearnAdam(), 33), ("momentum", None),
                                             (SklearnSGD(0.9, True), 50)],
                         ids=["sklearn_adam-batch", "momentum-full", "sklearn_sgd-batch"])
def test_a_team_shares_the_update_of_a_net_big_enough(optimizer, batch):
    """From PARALLEL_UPDATE_PARAMETERS parameters on, two threads split every
    W's and b's sums and steps between them (odd sizes: the shares' edges fall
    inside rows): trained as the numpy backend, with L2."""
    dims = (37, 61, 45, 1)
    assert sum(b * (a + 1) for a, b in zip(dims, dims[1:])) >= \
        cb.module(cb.current()["isa"]).PARALLEL_UPDATE_PARAMETERS
    options = dict(optimizer=optimizer, lambd=0.3, batch_size=batch, iterations=3, m=120)
    ref = _fit(_net("numpy", dims=dims), **options)
    net = _fit(_net("cython", dims=dims, threads=2), **options)
    assert net.threads_used_[0] == 2
    assert_trained_alike(net, ref)


@pytest.mark.parametrize("gemm,batch", [("own", None), ("blas", None), ("auto", 32)])
def test_gemm_shaped_layers_train_as_numpy(gemm, batch):
    """Products big enough for a GEMM (the own GEMM's fused bias + ReLU
    epilogue, or BLAS) and a mini-batch's register tiles, then the masks and the
    update: as the numpy backend (itself held to the oracle above)."""
    if gemm != "blas" and not cb.module(cb.current()["isa"]).HAVE_OWN_GEMM:
        pytest.skip("this kernel set has no own GEMM")
    options = dict(optimizer="adam", lambd=0.3, keep_prob=(0.8, 0.9), decay_rate=0.2,
                   batch_size=batch, iterations=4, m=96)
    ref = _fit(_net("numpy", dims=(64, 48, 40, 1)), **options)
    with cb.settings(gemm=gemm):
        net = _fit(_net("cython", dims=(64, 48, 40, 1)), **options)
    assert_trained_alike(net, ref)


def _plan(ext, dims, threads, batch=140, seed=0):
    """A mini-batch plan of ``dims`` (ReLU hidden layers, sigmoid output) with
    its gather buffers ``(plan, Xb, Yb)``."""
    rng = np.random.default_rng(seed)
    Ws = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(dims, dims[1:])]
    codes = [ext.ACTIVATION_CODES["relu"]] * (len(Ws) - 1) + [ext.ACTIVATION_CODES["sigmoid"]]
    Xb, Yb = np.full((dims[0], batch), np.nan), np.empty((dims[-1], batch))
    plan = ext._Net(Ws, [np.zeros((b, 1)) for b in dims[1:]], codes, Xb, threads, None, None, 1)
    plan.set_Y(Yb)
    return plan, Xb, Yb


def test_a_batch_is_gathered_as_rows_exactly_where_layer_1_runs_gemms():
    """epochs copies a batch's examples whole, as rows of A[0], where every
    thread's layer-1 products are GEMMs (they read either layout), and as
    columns elsewhere: a batch split below the GEMM's size, a thin layer 1."""
    ext = cb.module(cb.current()["isa"])
    dims = (64, 48, 20, 1)
    assert _plan(ext, dims, 1)[0].gathers_rows(140) and _plan(ext, dims, 1)[0].gathers_rows(70)
    assert _plan(ext, dims, 2)[0].gathers_rows(140)       # 70 columns a thread
    assert not _plan(ext, dims, 2)[0].gathers_rows(70)    # 35: the register tiles' size
    assert not _plan(ext, dims, 1)[0].gathers_rows(16)
    assert not _plan(ext, (64, 2, 1), 1)[0].gathers_rows(140)  # layer 1 of 2 units: no GEMM
    with pytest.raises(ValueError, match="m must be in"):
        _plan(ext, dims, 1)[0].gathers_rows(141)


@pytest.mark.parametrize("threads", [1, 2])
def test_epochs_leave_the_last_batch_in_the_layout_it_was_decided(threads):
    """The buffer after an epoch holds its last batch (70 of 350 examples): as
    rows on one thread, as columns on two (35 a thread), each thread's columns
    a block of their own (64, 35) -- the layout the decision names, so the
    decision is what the gather and products follow."""
    ext = cb.module(cb.current()["isa"])
    plan, Xb, Yb = _plan(ext, (64, 48, 20, 1), threads)
    rng = np.random.default_rng(1)
    XT, YT = rng.standard_normal((350, 64)), (rng.random((350, 1)) < 0.5).astype(float)
    order = rng.permutation(350)[None, :]
    plan.epochs(ext.LOSS_CODES["cross_entropy"], 0.01, order, XT, YT)
    last = XT[order[0, 280:]]
    if plan.gathers_rows(70):
        assert threads == 1 and np.array_equal(Xb.ravel()[:70 * 64].reshape(70, 64), last)
    else:
        assert threads == 2
        for c0, c1 in ext._column_chunks(70, 2, Xb.itemsize):
            block = Xb.ravel()[64 * c0:64 * c1].reshape(64, c1 - c0)
            assert np.array_equal(block, last[c0:c1].T), (c0, c1)
    assert np.array_equal(Yb.ravel()[:70], YT[order[0, 280:], 0])  # n_L = 1: blocks end to end


# Batches of 140, 140 and 70 of 350: as rows on one thread; on two, the last as
# columns (35 a thread). Layer 1's forward on BLAS (80 units), on the own GEMM
# (48, tanh) and in the own GEMM's ReLU epilogue (48); "auto" sends 48-unit
# layers to BLAS where OpenBLAS has small-matrix kernels, so the own GEMM's
# cases force it. Pairwise with the optimizer, L2, dropout, weights and dtype.
@pytest.mark.parametrize("threads,n1,hidden,gemm,optimizer,lambd,keep_prob,weighted,dtype", [
    (1, 80, "relu", "auto", "adam", 0.3, 1.0, True, "float64"),
    (2, 48, "tanh", "own", "momentum", 0.0, 0.8, False, "float64"),
    (2, 48, "relu", "own", "adam", 0.1, 0.9, True, "float32"),
    (1, 48, "relu", "blas", "rmsprop", 0.0, 0.9, False, "float64"),
])
def test_batches_gathered_as_rows_train_as_numpy(threads, n1, hidden, gemm, optimizer, lambd,
                                                 keep_prob, weighted, dtype):
    if gemm == "own" and not cb.module(cb.current()["isa"]).HAVE_OWN_GEMM:
        pytest.skip("this kernel set has no own GEMM")
    dims = (64, n1, 20, 1)
    weights = np.random.default_rng(2).uniform(0.5, 2, 350) if weighted else None
    options = dict(optimizer=optimizer, lambd=lambd, keep_prob=keep_prob, batch_size=140,
                   iterations=4, m=350, sample_weight=weights)
    ref = _fit(_net("numpy", hidden, dtype, dims=dims), **options)
    with cb.settings(gemm=gemm):
        net = _fit(_net("cython", hidden, dtype, threads, dims=dims), **options)
    assert net.threads_used_[0] == threads
    assert_trained_alike(net, ref, 1e-4 if dtype == "float32" else 1e-9)


@pytest.mark.parametrize("dtype,path", [("float32", "batch1"), ("float64", "batch1"),
                                        ("float32", "weighted")])
def test_adam_steps_right_on_a_subnormal_first_moment(dtype, path):
    """Adam's v decays into subnormals on a feature that stays 0; where the
    exact step is under an eighth of W's ulp the kernels skip its division
    (rms_step), and W must keep its bits -- the exact step rounds to them --
    while a W too small for that bound takes the step NumPy computes. On the
    batch of one (update_rank1) and, weighted, the general update."""
    ftype = np.dtype(dtype).type
    tiny = ftype(np.finfo(dtype).smallest_normal) / 8  # subnormal
    net = fastnn.Network([3, 1], output_activation="sigmoid", seed=0, backend="cython",
                         dtype=dtype, threads=1)
    X = np.array([[0.0], [0.0], [1.0]], dtype)  # features 0 and 1 stay 0: their gradient is 0
    Y = np.array([[1.0]], dtype)
    weights = {"sample_weight": np.ones(1, dtype)} if path == "weighted" else {}
    net.fit(X, Y, learning_rate=0.01, num_iterations=1, batch_size=1, optimizer="adam",
            cost_every=None, **weights)
    W = net.params["W1"].copy()
    W[0, 0], W[0, 1] = 1.0, 0.0
    optimizer, state, steps = net._optimizer
    state["v"]["dW1"][0, :2] = tiny
    state["s"]["dW1"][0, :2] = 1e-6
    net._Ws[0][...] = W
    net.fit(X, Y, learning_rate=0.01, num_iterations=1, batch_size=1, optimizer="adam",
            cost_every=None, resume=True, **weights)
    t = steps + 1
    v = 0.9 * float(tiny)  # the gradient is 0: v = beta1 v, s = beta2 s
    s = 0.999 * float(ftype(1e-6))
    step = 0.01 * (v / (1 - 0.9 ** t)) / (np.sqrt(s / (1 - 0.999 ** t)) + 1e-8)
    assert net.params["W1"][0, 0] == ftype(1.0)  # bitwise: the step is 1e-30 of W's ulp
    assert step > 0 and abs(net.params["W1"][0, 1] + step) <= 1e-5 * step


def test_a_tiny_rate_over_a_tiny_epsilon_steps_a_subnormal_first_moment():
    """The skip's bound is (|rate| / epsilon) 2^(emin + p + 3): with the rate
    scaled by 2^(emin + p + 3) first, a rate under 2^-109 underflowed to a bound
    of 0 and the skip fired at any W above 2^-962 -- here a step of 1e-43 on a
    W of 1e-289 (100 orders of magnitude above its ulp) was dropped."""
    net = fastnn.Network([3, 1], output_activation="sigmoid", seed=0, backend="cython",
                         dtype="float64", threads=1)
    X = np.array([[0.0], [0.0], [1.0]])  # feature 0 stays 0: its gradient is 0
    Y = np.array([[1.0]])
    adam = fastnn.optimizers.Adam(epsilon=1e-300)
    net.fit(X, Y, learning_rate=1e-34, num_iterations=1, batch_size=1, optimizer=adam,
            cost_every=None)
    optimizer, state, steps = net._optimizer
    v0 = np.finfo(np.float64).smallest_normal / 64  # v / (1 - beta1^t) stays subnormal
    state["v"]["dW1"][0, 0], state["s"]["dW1"][0, 0] = v0, 0.0
    net._Ws[0][0, 0] = 1e-289
    net.fit(X, Y, learning_rate=1e-34, num_iterations=1, batch_size=1, optimizer=adam,
            cost_every=None, resume=True)
    t = steps + 1
    v = 0.9 * v0
    direction = v / (1 - 0.9 ** t)
    assert 0 < direction < np.finfo(np.float64).smallest_normal
    expected = 1e-289 - 1e-34 * (direction / (np.sqrt(0.0) + 1e-300))
    assert expected < 0 and abs(net.params["W1"][0, 0] - expected) <= 1e-12 * abs(expected)
