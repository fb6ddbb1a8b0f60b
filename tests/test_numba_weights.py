"""Per-example weights and the Poisson loss on the numba backend's own paths:
the fused first layer on two threads, a batch of one (the first course's fused
``step_one``, which skips a zero-weight example, and the second part's general
path), a mini-batch whose weights sum to 0 (first and second engine room),
float32, resumed and split fits, epoch losses, and an unweighted fit compiling
none of it.
``test_weights_poisson.py`` runs every backend through the shared cases."""

import numpy as np
import pytest

import fastnn
from fastnn import backends, optimizers
from fastnn.backends.numba import first_layer

from _helpers import assert_close, require_backend

require_backend("numba")

M = 40
#: Pairwise over path x output x rule x L2 x dropout x dtype (not the full product),
#: chosen to compile few new specializations: each weighted loop is compiled once
#: per dtype and path, most of them shared with test_weights_poisson.py.
#: The fused first layer runs on two threads (its weighting is the engine's, the
#: same for one thread).
#:        path        output      optimizer      lambd keep  dtype
CASES = [("threads2", "exp", "gd", 0.0, 1.0, "float32"),
         ("threads2", "softmax", "adam", 0.3, 0.8, "float64"),
         ("one", "identity", "gd", 0.0, 1.0, "float64"),
         ("one", "exp", "rmsprop", 0.2, 1.0, "float64"),
         ("zero_batch", "exp", "gd", 0.0, 1.0, "float64"),
         ("zero_batch", "sigmoid", "momentum", 0.3, 0.7, "float64"),
         ("batch", "softmax", "sklearn_adam", 0.2, 1.0, "float32")]
IDS = ["-".join(str(v) for v in case) for case in CASES]
RULES = {"sklearn_adam": optimizers.SklearnAdam()}
UNITS = {"sigmoid": 1, "exp": 2, "identity": 2, "softmax": 3}


def _data(output, seed=0):
    """X (12, M), Y for ``output``'s loss and weights with every fourth zero
    (and, for a zero-sum batch, the first eight)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((12, M))
    n = UNITS[output]
    if output == "sigmoid":
        Y = (X[:1] + 0.5 * X[1:2] > 0).astype(float)
    elif output == "exp":
        Y = rng.poisson(np.exp(0.3 * X[:n]), (n, M)).astype(float)
    elif output == "softmax":
        Y = np.eye(n)[:, rng.integers(0, n, M)]
    else:
        Y = 0.5 * X[:n] - 0.2 * X[2:2 + n]
    w = rng.random(M) * 2
    w[::4] = 0.0
    return X, Y, w


_CASE_WEIGHTS = object()


def _fit(backend, case, dtype=None, sample_weight=_CASE_WEIGHTS, iterations=5, cost_every=2,
         resume_from=None, seed=4):
    path, output, optimizer, lambd, keep_prob, case_dtype = case
    X, Y, w = _data(output)
    if sample_weight is _CASE_WEIGHTS:
        sample_weight = w
    batch = {"one": 1, "zero_batch": 8, "batch": 16}.get(path)
    orders = None
    if path == "zero_batch":  # examples in order: the first batch, weights all 0, sums to 0
        sample_weight = w.copy()
        sample_weight[:8] = 0.0
        orders = lambda count: np.tile(np.arange(M), (count, 1))  # noqa: E731
    net = resume_from or fastnn.Network(
        [12, 8, 5, UNITS[output]], hidden_activation="tanh", output_activation=output,
        init="xavier", seed=2, backend=backend, dtype=dtype or case_dtype,
        threads=2 if path == "threads2" else 1)
    lr = 0.01 if optimizer in ("adam", "rmsprop", "sklearn_adam") else 0.05
    losses = []
    on_epoch = None if optimizer == "gd" else (lambda i, loss: losses.append(loss))
    net.fit(X, Y, learning_rate=lr, num_iterations=iterations, cost_every=cost_every,
            batch_size=batch, seed=seed, optimizer=RULES.get(optimizer, optimizer),
            lambd=lambd, keep_prob=keep_prob, sample_weight=sample_weight, orders=orders,
            on_epoch=on_epoch, resume=resume_from is not None)
    return net, losses


def test_the_cases_take_the_fused_first_layer():
    # 12 inputs, 8 units, 40 examples: the first engine trains layer 1 in one pass.
    assert first_layer.fused_first_layer(8, 12, M)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_weighted_fits_agree_with_the_loops_oracle(case):
    (oracle, want), (net, got) = _fit(backends.ORACLE, case), _fit("numba", case)
    rtol = 1e-5 if case[-1] == "float32" else 1e-9
    assert all(W.dtype == np.dtype(case[-1]) for W in net.params.values())
    assert_close([c for _, c in net.costs_], [c for _, c in oracle.costs_], rtol, "costs")
    assert_close([net.params[k] for k in oracle.params], list(oracle.params.values()), rtol,
                 "parameters")
    assert len(got) == len(want) == (0 if case[2] == "gd" else 5)
    assert_close(got, want, rtol, "epoch losses")
    assert net.optimizer_steps_ == oracle.optimizer_steps_
    for slot, arrays in oracle.optimizer_state_.items():
        assert_close([net.optimizer_state_[slot][k] for k in arrays], list(arrays.values()),
                     rtol, f"optimizer state {slot}")


@pytest.mark.parametrize("case", [CASES[i] for i in (1, 2, 3)], ids=[IDS[i] for i in (1, 2, 3)])
def test_all_ones_weights_are_the_unweighted_fit(case):
    ones, _ = _fit("numba", case, sample_weight=np.ones(M))
    plain, _ = _fit("numba", case, sample_weight=None)
    assert_close([c for _, c in ones.costs_], [c for _, c in plain.costs_], 1e-12, "costs")
    assert_close(list(ones.params.values()), list(plain.params.values()), 1e-12, "parameters")


@pytest.mark.parametrize("case", [CASES[i] for i in (0, 2, 4, 6)],
                         ids=[IDS[i] for i in (0, 2, 4, 6)])
def test_split_calls_are_bitwise_one_call(case):
    # cost_every=1 runs one iteration (epoch) per engine call, 100 runs them in one.
    split, _ = _fit("numba", case, cost_every=1)
    whole, _ = _fit("numba", case, cost_every=100)
    for key, W in whole.params.items():
        np.testing.assert_array_equal(split.params[key], W)


@pytest.mark.parametrize("case", [CASES[i] for i in (3, 6)], ids=[IDS[i] for i in (3, 6)])
def test_resume_continues_bitwise(case):
    # (without dropout: each fit draws its own masks' key)
    rng = np.random.default_rng(1)
    whole, _ = _fit("numba", case, iterations=6, seed=np.random.default_rng(1))
    halves, _ = _fit("numba", case, iterations=3, seed=rng)
    halves, _ = _fit("numba", case, iterations=3, seed=rng, resume_from=halves)
    assert halves.optimizer_steps_ == whole.optimizer_steps_
    for key, W in whole.params.items():
        np.testing.assert_array_equal(halves.params[key], W)
    for slot, arrays in whole.optimizer_state_.items():
        for key, a in arrays.items():
            np.testing.assert_array_equal(halves.optimizer_state_[slot][key], a)


def test_an_unweighted_fit_compiles_no_weighted_code():
    from fastnn.backends.numba import introspect

    net, _ = _fit("numba", CASES[0], sample_weight=None)
    assert net.costs_
    # full_batch's last argument is the weights: None, pruned before typing
    assert any(sig.endswith("none)") for sig in introspect.compiled()["full_batch"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_exp_output_is_a_packed_loop(dtype):
    # Each polynomial activation (sigmoid's e^x, tanh's expm1, the exp output's
    # e^x) is a loop whose vector body rounds a whole register at once
    # (vrndscale/vroundp/roundp: the polynomial's n = floor(x log2 e + 1/2));
    # without the exp branch, or with it scalar, float64 has two.
    import re

    import numba

    from fastnn.backends.numba import layers

    kernel = layers.activation_forward
    options = {k: v for k, v in kernel.targetoptions.items() if k != "nopython"}
    fresh = numba.njit(**dict(options, cache=False))(kernel.py_func)  # disassemblable
    z, a = np.zeros(16, dtype), np.zeros(16, dtype)
    fresh(np.int64(layers.EXP), dtype(0.5), z, a)  # z += b, a = e^z
    np.testing.assert_allclose(a, np.exp(0.5), rtol=1e-6)
    asm = fresh.inspect_asm(fresh.signatures[0])
    packed = re.findall(r"\b(?:v?roundp[sd]|vrndscalep[sd])\b[^\n]*%[xyz]mm", asm)
    assert len(packed) >= 3, len(packed)
