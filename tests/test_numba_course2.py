"""The course's second part on the numba backend's own paths: the engines of
:mod:`fastnn.backends.numba.second_room` on the shapes where the first course's
engine takes a path of its own (the fused first layer, a batch of one, two
threads, float32), with the course's update rules and scikit-learn's, resumed
fits, split calls, epoch losses, and a plain fit compiling none of it; the
fused batch of one against the general path, and the RMS rules' skipped
division of a subnormal dividend (exact: W keeps the bits the step rounds to).
``test_course2_training.py`` runs the backend through the shared cases,
``test_epoch_loss.py`` its epoch losses."""


import numpy as np
import pytest

import fastnn
from fastnn import backends, optimizers
from fastnn.backends import _base
from fastnn.backends.numba import first_layer

from _helpers import assert_close, run_python

pytestmark = pytest.mark.skipif(backends.available()["numba"] is not True,
                                reason="numba backend unavailable")

#: Pairwise over optimizer x L2 x dropout x decay x path (not the full product).
#:        optimizer   lambd  keep_prob   decay     path
CASES = [("adam", 0.0, 0.8, (0.0, 1), "fused"),
         ("momentum", 0.4, 1.0, (0.5, 2), "fused"),
         ("rmsprop", 0.4, 0.7, (0.0, 1), "one"),
         ("gd", 0.0, 1.0, (0.3, 1), "one"),
         ("adam", 0.4, 1.0, (0.2, 1), "threads2"),
         ("rmsprop", 0.0, (0.9, 0.6), (0.3, 1), "threads2"),
         ("momentum", 0.0, 0.75, (0.0, 1), "batch"),
         ("gd", 0.3, (0.8, 1.0), (0.0, 1), "batch"),
         # scikit-learn's rules (SklearnSGD: nesterov / classic momentum)
         ("sklearn_adam", 0.4, 0.8, (0.0, 1), "one"),
         ("sklearn_adam", 0.0, 1.0, (0.5, 2), "batch"),
         ("sklearn_sgd", 0.0, 1.0, (0.2, 1), "threads2"),
         ("sklearn_sgd_classic", 0.3, 0.7, (0.0, 1), "fused"),
         ("sklearn_sgd", 0.2, (1.0, 0.8), (0.0, 1), "batch"),
         # every rule on the fused batch of one (batch_of_one)
         ("adam", 0.3, (0.8, 0.9), (0.2, 1), "one"),
         ("momentum", 0.0, 0.7, (0.0, 1), "one"),
         ("sklearn_sgd", 0.1, 1.0, (0.0, 1), "one"),
         ("sklearn_sgd_classic", 0.0, 0.9, (0.3, 2), "one"),
         # batches of 13 of 40 examples: each epoch's last batch is one, fused
         ("adam", 0.2, 0.8, (0.0, 1), "tail")]
IDS = ["-".join(str(v) for v in case) for case in CASES]
#: The optimizers the cases name (scikit-learn's are objects, not names, for Network.fit).
RULES = {"sklearn_adam": optimizers.SklearnAdam(), "sklearn_sgd": optimizers.SklearnSGD(),
         "sklearn_sgd_classic": optimizers.SklearnSGD(momentum=0.8, nesterov=False)}


def _data(n_x=12, m=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_x, m))
    Y = (X[:1] + 0.5 * X[1:2] > 0).astype(float)
    return X, Y


def _fit(backend, case, dtype="float64", iterations=6, cost_every=2, sample_weight=None):
    optimizer, lambd, keep_prob, (decay, interval), path = case
    X, Y = _data()
    net = fastnn.Network([12, 8, 5, 1], hidden_activation="tanh", init="xavier", seed=2,
                         backend=backend, dtype=dtype, threads=2 if path == "threads2" else 1)
    batch = {"one": 1, "batch": 16, "tail": 13}.get(path)
    lr = 0.01 if optimizer in ("adam", "rmsprop", "sklearn_adam") else 0.1
    net.fit(X, Y, learning_rate=lr, num_iterations=iterations, cost_every=cost_every,
            batch_size=batch, seed=4, optimizer=RULES.get(optimizer, optimizer), lambd=lambd,
            keep_prob=keep_prob, decay_rate=decay, time_interval=interval,
            sample_weight=sample_weight)
    return net


def test_the_cases_take_the_paths_the_first_course_would_fuse():
    # 12 inputs, 8 units, 40 examples: the first engine trains layer 1 fused.
    assert first_layer.fused_first_layer(8, 12, 40)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_agrees_with_the_loops_oracle(case):
    # Two threads for hundreds of iterations (the one-thread paths run them in
    # test_course2_training's oracle comparison).
    long = dict(iterations=300, cost_every=50) if case[-1] == "threads2" else {}
    oracle, net = _fit(backends.ORACLE, case, **long), _fit("numba", case, **long)
    assert_close([c for _, c in net.costs_], [c for _, c in oracle.costs_], 1e-9, "costs")
    assert_close([net.params[k] for k in oracle.params], list(oracle.params.values()), 1e-9,
                 "parameters")
    assert net.optimizer_steps_ == oracle.optimizer_steps_
    for slot, arrays in oracle.optimizer_state_.items():
        assert_close([net.optimizer_state_[slot][k] for k in arrays], list(arrays.values()),
                     1e-9, f"optimizer state {slot}")


@pytest.mark.parametrize("case", CASES[::3], ids=IDS[::3])
def test_float32_tracks_float64(case):
    lo, hi = _fit("numba", case, dtype="float32"), _fit("numba", case)
    assert all(W.dtype == np.float32 for W in lo.params.values())
    assert all(a.dtype == np.float32 for d in lo.optimizer_state_.values() for a in d.values())
    assert_close([c for _, c in lo.costs_], [c for _, c in hi.costs_], 1e-4, "float32 costs")


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 2, 6, 8, 11)],
                         ids=[IDS[i] for i in (0, 2, 6, 8, 11)])
def test_split_calls_are_bitwise_one_call(case):
    # cost_every=1 runs one iteration (epoch) per engine call, 100 runs them in one.
    split, whole = _fit("numba", case, cost_every=1), _fit("numba", case, cost_every=100)
    for key, W in whole.params.items():
        np.testing.assert_array_equal(split.params[key], W)
    for slot, arrays in whole.optimizer_state_.items():
        for key, a in arrays.items():
            np.testing.assert_array_equal(split.optimizer_state_[slot][key], a)


@pytest.mark.parametrize("batch_size", [None, 7])
def test_resume_continues_bitwise(batch_size):
    X, Y = _data()
    kw = dict(learning_rate=0.01, optimizer="adam", lambd=0.2, batch_size=batch_size)
    whole = fastnn.Network([12, 8, 1], init="xavier", seed=2, backend="numba")
    whole.fit(X, Y, num_iterations=8, seed=np.random.default_rng(1), **kw)
    halves = fastnn.Network([12, 8, 1], init="xavier", seed=2, backend="numba")
    rng = np.random.default_rng(1)
    halves.fit(X, Y, num_iterations=4, seed=rng, **kw)
    halves.fit(X, Y, num_iterations=4, seed=rng, resume=True, **kw)
    assert halves.optimizer_steps_ == whole.optimizer_steps_
    for key, W in whole.params.items():
        np.testing.assert_array_equal(halves.params[key], W)
    for key, a in whole.optimizer_state_["s"].items():
        np.testing.assert_array_equal(halves.optimizer_state_["s"][key], a)


#: Epoch losses on the costs test_epoch_loss.py leaves out (its net is softmax's),
#: pairwise over output x rule x L2 x dropout x batch x threads x dtype.
#:              output, loss                optimizer      lambd keep  batch threads dtype
LOSS_CASES = [(("sigmoid", "cross_entropy"), "sklearn_adam", 0.3, None, 7, 2, "float64"),
              (("identity", "mse"), None, 0.0, None, None, 1, "float64"),
              (("sigmoid", "cross_entropy"), "sklearn_sgd", 0.0, (0.8, 0.6), 1, 1, "float64"),
              (("identity", "mse"), "adam", 0.2, (0.7, 1.0), 16, 1, "float32")]


def _losses(backend, case):
    (out, loss), optimizer, lambd, keep, batch, threads, dtype = case
    X, Y = _data()
    X, Y = X.astype(dtype), Y.astype(dtype)
    dims = [12, 8, 5, 1]
    rng = np.random.default_rng(3)
    Ws = [(rng.standard_normal((dims[l + 1], dims[l])) * 0.4).astype(dtype) for l in range(3)]
    bs = [np.zeros((dims[l + 1], 1), dtype) for l in range(3)]
    rule = RULES.get(optimizer) or (optimizer and optimizers.get(optimizer))
    params = {f"{p}{l}": a for l, (W, b) in enumerate(zip(Ws, bs), 1)
              for p, a in (("W", W), ("b", b))}
    fit = _base.Fit(_base.Problem(X, Y, ("tanh", "relu", out), loss, 0),
                    _base.Schedule(0.01, 4, cost_every=2, batch_size=batch, optimizer=rule,
                                   lambd=lambd, keep_probs=keep, epoch_loss=True),
                    Ws, bs, rng=np.random.default_rng(5),
                    optimizer_state=None if rule is None else rule.init(params))
    seen = []
    _base.train(backends.get(backend), fit, lambda i, c: None, threads=threads,
                on_epoch=lambda i, l: seen.append((i, l)))
    return seen, fit


@pytest.mark.parametrize("case", LOSS_CASES, ids=[f"{c[0][1]}-{c[1]}-{c[-1]}" for c in LOSS_CASES])
def test_epoch_losses_agree_with_the_loops_oracle(case):
    (want, want_fit), (got, got_fit) = _losses(backends.ORACLE, case), _losses("numba", case)
    assert [i for i, _ in got] == [0, 1, 2, 3]
    rtol = 1e-5 if case[-1] == "float32" else 1e-9
    assert_close([l for _, l in got], [l for _, l in want], rtol, "epoch losses")
    assert_close(got_fit.Ws, want_fit.Ws, rtol, "parameters")


def test_epoch_losses_route_a_plain_fit_and_are_pruned_otherwise():
    from fastnn.backends.numba import engine_room, introspect, second_room
    numba_backend = backends.get("numba")
    rooms = {(None, False): engine_room.FullBatchEngine, (8, False): engine_room.MiniBatchEngine,
             (None, True): second_room.SecondFullBatchEngine,
             (8, True): second_room.SecondMiniBatchEngine}
    for (batch, epoch_loss), room in rooms.items():
        fit = _base.Fit(_base.Problem(*_data(), ("tanh", "sigmoid"), "cross_entropy"),
                        _base.Schedule(0.1, 1, batch_size=batch, epoch_loss=epoch_loss),
                        [np.zeros((3, 12)), np.zeros((1, 3))],
                        [np.zeros((3, 1)), np.zeros((1, 1))], rng=np.random.default_rng(0))
        engine = numba_backend.engine(fit)
        try:
            assert type(engine) is room
        finally:
            engine.close()
    # a fit without epoch losses passes None: its loops compile without them
    _fit("numba", CASES[6])
    assert any(sig.endswith("none)") for sig in introspect.compiled()["second_epochs"])


def test_forward_backward_with_dropout_and_l2_match_numpy():
    X, Y = _data(m=9)
    nets = {b: fastnn.Network([12, 6, 4, 1], hidden_activation="sigmoid", init="xavier", seed=1,
                              backend=b) for b in ("numpy", "numba")}
    out = {}
    for b, net in nets.items():
        AL, caches = net.forward(X, keep_prob=(0.7, 0.5), rng=3)
        out[b] = (AL, net.backward(AL, Y, caches, lambd=0.3, keep_prob=(0.7, 0.5)))
    assert_close([out["numba"][0]], [out["numpy"][0]], 1e-12, "AL")
    grads = out["numpy"][1]
    assert_close([out["numba"][1][k] for k in grads], list(grads.values()), 1e-12, "gradients")


def test_a_plain_fit_compiles_none_of_the_second_part():
    code = ("import fastnn\n"
            "from fastnn.backends.numba import introspect\n"
            "X, Y = fastnn.datasets.planar()\n"
            "net = fastnn.Network([2, 4, 1], hidden_activation='tanh', backend='numba')\n"
            "net.fit(X, Y, learning_rate=1.2, num_iterations=3)\n"
            "net.fit(X, Y, learning_rate=1.2, num_iterations=3, batch_size=50, seed=0)\n"
            "print(sorted(introspect.compiled()))\n")
    out = run_python(code)
    assert "full_batch" in out and "epochs" in out
    assert "second" not in out


@pytest.mark.parametrize("key, t, layer, shape, keep_prob, dtype",
                         [(987654321, 5, 2, (4, 37), 0.8, np.float64),
                          (2 ** 64 - 5, 1, 1, (7, 3), 0.5, np.float32),
                          (0, 10 ** 6, 3, (1, 1), 0.99, np.float64)])
def test_in_kernel_masks_are_fit_mask_bitwise(key, t, layer, shape, keep_prob, dtype):
    from fastnn import regularization
    from fastnn.backends.numba import second_page

    D = np.full(shape, 7, dtype)
    base = np.uint64(second_page.mask_base(np.uint64(key), t, layer))
    second_page.dropout_mask(base, np.uint64(regularization.mask_threshold(keep_prob)), D)
    expected = regularization.fit_mask(key, t, layer, shape, keep_prob)
    np.testing.assert_array_equal(D, expected.astype(dtype))


FUSED = [i for i, c in enumerate(CASES) if c[-1] == "one"][::2] + [len(CASES) - 1]  # + "tail"


@pytest.mark.parametrize("case", [CASES[i] for i in FUSED], ids=[IDS[i] for i in FUSED])
def test_the_fused_batch_of_one_takes_the_general_paths_steps(case):
    # Weights of 1 take the general path (a weighted batch of one is not
    # fused) through the same arithmetic but the order of a few sums, whose
    # last-bit differences 240 updates compound (to 1.2e-12 here).
    fused, general = _fit("numba", case), _fit("numba", case, sample_weight=np.ones(40))
    assert_close([fused.params[k] for k in general.params], list(general.params.values()),
                 1e-10, "parameters")
    for slot, arrays in general.optimizer_state_.items():
        assert_close([fused.optimizer_state_[slot][k] for k in arrays], list(arrays.values()),
                     1e-10, f"optimizer state {slot}")


def _rms_case(dtype, size=4096, seed=0):
    """Parameters and state where a fifth of the dividends are subnormal, the
    W's magnitudes spread from far below to far above the skip's bound."""
    rng = np.random.default_rng(seed)
    f = np.dtype(dtype).type
    tiny = np.finfo(dtype).smallest_normal
    P = (rng.choice([-1, 1], size) * 10.0 ** rng.uniform(-40 if dtype == "float32" else -300,
                                                       3, size)).astype(dtype)
    V = rng.standard_normal(size).astype(dtype)
    V[::5] = (rng.uniform(-1, 1, V[::5].size) * tiny).astype(dtype)  # subnormal (or 0)
    S = (10.0 ** rng.uniform(-30, 2, size)).astype(dtype)
    return P, np.zeros(size, dtype), V, S, f


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rule", ["adam", "sklearn_adam", "rmsprop"])
def test_a_subnormal_dividend_is_skipped_exactly(rule, dtype):
    """The RMS rules take a moment whose dividend is subnormal as 0 where W's
    step cannot change W (second_page.rms_skip): there W keeps its bits, and
    the exact step (in extended precision) is under half of W's ulp -- the
    division would round to the same W; a subnormal dividend at a W the step
    moves by an ulp or more moves it. The other W take the step the formula
    gives within a few ulp; the case holds all three kinds of W."""
    from fastnn.backends.numba import second_page as sp

    kind = sp.OPTIMIZER_CODES[rule]
    if rule == "rmsprop":
        hyper = np.array([0.999, 0.001, 0.0, 0.0, 1e-8])
    else:
        hyper = np.array([0.9, 0.1, 0.999, 0.001, 1e-8])
    lr, c1, c2 = 0.01, 1 - 0.9 ** 7, 1 - 0.999 ** 7
    P, G, V, S, f = _rms_case(dtype)
    if rule == "rmsprop":  # RMSprop's dividend is the gradient itself
        G, V = V, np.zeros_like(V)
    new = [a.copy() for a in (P, G, V, S)]
    sp.update_parameters(new[0], new[1], new[2], new[3], kind, lr, 0.0, hyper, c1, c2)
    # the step in extended precision, from the state update_parameters stored
    x = np.longdouble
    v, s = new[2].astype(x), new[3].astype(x)
    if rule == "rmsprop":
        step = x(lr) * G.astype(x) / (np.sqrt(s) + x(1e-8))
        moment, dividend = G, G
    elif rule == "adam":
        step = x(lr) * (v / x(c1)) / (np.sqrt(s / x(c2)) + x(1e-8))
        moment, dividend = new[2], new[2] / f(c1)
    else:
        step = x(lr) * np.sqrt(x(c2)) / x(c1) * v / (np.sqrt(s) + x(1e-8))
        moment, dividend = new[2], -f(lr * np.sqrt(c2) / c1) * new[2]
    below, w_min = sp.rms_skip(P, kind, lr, c1, c2, hyper[4])
    skipped = (np.abs(moment) < below) & (np.abs(P) >= w_min)
    subnormal = np.abs(dividend) < np.finfo(dtype).smallest_normal
    assert np.all(subnormal[skipped])  # only a subnormal dividend is ever skipped
    ulp = np.spacing(np.abs(P)).astype(x)
    moved = subnormal & ~skipped & (np.abs(step) >= ulp)
    assert skipped.sum() > 50 and moved.sum() > 10
    np.testing.assert_array_equal(new[0][skipped], P[skipped])
    assert np.all(np.abs(step[skipped]) < ulp[skipped] / 2)
    assert np.all(new[0][moved] != P[moved])
    # elsewhere the formula's step, within a few roundings of |W| + |step| (W -
    # step may cancel), but where a subnormal carries fewer significant bits
    # than the dtype's: a subnormal dividend, taken, or lr times it (the
    # kernels' fastmath may re-associate lr (d / r) as (lr d) / r)
    normal = ~subnormal & (np.abs(lr * dividend.astype(x)) >= np.finfo(dtype).smallest_normal)
    error = np.abs(new[0].astype(x) - (P.astype(x) - step))
    bound = 8 * x(np.finfo(dtype).eps) * (np.abs(P).astype(x) + np.abs(step))
    assert normal.sum() > 3000 and np.all(error[normal] <= bound[normal])


def test_the_skip_bound_holds_at_extreme_rates_and_epsilons():
    """rms_skip's bound is (|rate| / eps) 2^(emin + p + 3), not underflowing for
    a tiny rate over a tiny eps (a step of 1e-43 is no reason to skip at a W of
    1e-289), and no skip where eps (1 - beta1^t) is subnormal: the compiled
    Adams divide by (sqrt(s) + eps) (1 - beta1^t), 0 there at s = 0."""
    from fastnn.backends.numba import second_page as sp

    f64, f32 = np.zeros(1), np.zeros(1, np.float32)
    _, w_min = sp.rms_skip(f64, sp.RMSPROP, 1e-34, 1.0, 1.0, 1e-300)
    assert w_min >= (1e-34 / 1e-300) * 2.0 ** (-1022 + 53 + 3) > 1e-289
    for P, kind, c1, eps in [(f64, sp.SKLEARN_ADAM, 0.1, 5e-324), (f64, sp.ADAM, 0.1, 1e-309),
                             (f64, sp.RMSPROP, 1.0, 1e-310), (f32, sp.ADAM, 0.5, 1e-39)]:
        below, w_min = sp.rms_skip(P, kind, 1e-3, c1, 0.001, eps)
        assert np.isnan(w_min), (kind, eps)
    # a normal eps (1 - beta1^t) skips from the bound on
    below, w_min = sp.rms_skip(f64, sp.ADAM, 1e-3, 0.5, 0.001, 1e-8)
    assert below == np.finfo(np.float64).smallest_normal * 0.5
    assert w_min == pytest.approx(1e-3 / 1e-8 * 2.0 ** (-1022 + 53 + 3), rel=1e-5)
