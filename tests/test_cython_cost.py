"""A mini-batch fit's recorded costs on the Cython engine (``cost_every``): over
more than ``COST_BLOCK`` examples they go block by block through one plan of
that many columns (``Engine._blocked_cost``) instead of a plan over all m.
Against the plan over all m (COST_BLOCK raised past m) on the same fit: the
same training, bitwise, and the same costs within the rounding of adding the
blocks' sums -- weighted and not, L2 on, a last block shorter than the rest,
one and two threads, both dtypes (pairwise).
"""

import importlib

import numpy as np
import pytest

from fastnn import Network

from _helpers import require_backend

cb = require_backend("cython")
engine_module = importlib.import_module("fastnn.backends.cython.engine")

#        output      weighted lambd threads dtype      rtol
CASES = [("softmax", False, 0.3, 1, "float64", 1e-13),
         ("sigmoid", True, 0.0, 2, "float64", 1e-13),
         ("identity", True, 0.5, 1, "float32", 1e-5),
         ("softmax", True, 0.2, 2, "float32", 1e-5)]


def _fit(output, weighted, lambd, threads, dtype, block):
    rng = np.random.default_rng(7)
    m = 301  # blocks of 64: four and a last of 45
    X = rng.standard_normal((6, m))
    if output == "softmax":
        dims, Y = [6, 8, 3], np.eye(3)[rng.integers(0, 3, m)].T
    elif output == "sigmoid":
        dims, Y = [6, 8, 1], (rng.random((1, m)) < 0.5) * 1.0
    else:
        dims, Y = [6, 8, 2], rng.standard_normal((2, m))
    loss = "mse" if output == "identity" else "cross_entropy"
    weights = rng.random(m) * 2 if weighted else None
    net = Network(dims, ["tanh", output], loss=loss, seed=3, backend="cython", dtype=dtype,
                  threads=threads)
    blocked = []
    inner = engine_module.Engine._blocked_cost

    def spy(engine):
        blocked.append(engine)
        return inner(engine)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_module, "COST_BLOCK", block)
        mp.setattr(engine_module.Engine, "_blocked_cost", spy)
        net.fit(X, Y, learning_rate=0.05, num_iterations=8, batch_size=32, seed=5,
                optimizer="adam", lambd=lambd, sample_weight=weights, cost_every=2)
    return net, blocked


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[4]}-{c[3]}threads" for c in CASES])
def test_blocked_costs_are_the_whole_plans_costs(case):
    *fit_case, rtol = case
    whole, used_whole = _fit(*fit_case, block=10**9)
    blocked, used_blocked = _fit(*fit_case, block=64)
    assert not used_whole and len(used_blocked) == 5  # iterations 0, 2, 4, 6 and the last
    assert [i for i, _ in blocked.costs_] == [i for i, _ in whole.costs_] == [0, 2, 4, 6, 7]
    np.testing.assert_allclose([J for _, J in blocked.costs_], [J for _, J in whole.costs_],
                               rtol=rtol)
    for name, value in whole.params.items():
        np.testing.assert_array_equal(blocked.params[name], value, err_msg=name)
