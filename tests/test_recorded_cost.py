"""A mini-batch fit's recorded costs (``cost_every``) on the compiled engines:
over more than ``COST_BLOCK`` examples they go block by block through buffers
of that many columns (cython's ``Engine._blocked_cost``, numba's
``_Engine.blocked_cost``) instead of buffers over all m. Against one block
over all m (COST_BLOCK raised past m) on the same fit: the same training,
bitwise, and the same costs within the rounding of adding the blocks -- weighted
and not, L2 on, a last block shorter than the rest, one and two threads, both
dtypes (pairwise).
"""

import importlib

import numpy as np
import pytest

from fastnn import Network

from _helpers import require_backend

#: backend -> (the module holding COST_BLOCK, the engine class, its blocked method,
#: the engine's {columns: buffers} of the blocks it ran)
ENGINES = {"cython": ("fastnn.backends.cython.engine", "Engine", "_blocked_cost", "_cost_plans"),
           "numba": ("fastnn.backends.numba.engine_room", "_Engine", "blocked_cost",
                     "_cost_blocks")}

#        backend   output      weighted lambd threads dtype      rtol
CASES = [("cython", "softmax", False, 0.3, 1, "float64", 1e-13),
         ("cython", "sigmoid", True, 0.0, 2, "float64", 1e-13),
         ("cython", "identity", True, 0.5, 1, "float32", 1e-5),
         ("cython", "softmax", True, 0.2, 2, "float32", 1e-5),
         ("numba", "softmax", True, 0.0, 2, "float64", 1e-13),
         ("numba", "sigmoid", False, 0.4, 1, "float64", 1e-13),
         ("numba", "identity", False, 0.2, 2, "float32", 1e-5),
         ("numba", "softmax", True, 0.3, 1, "float32", 1e-5)]


def _fit(backend, output, weighted, lambd, threads, dtype, block):
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
    require_backend(backend)
    module_name, class_name, method, blocks = ENGINES[backend]
    module = importlib.import_module(module_name)
    engine_class = getattr(module, class_name)
    net = Network(dims, ["tanh", output], loss=loss, seed=3, backend=backend, dtype=dtype,
                  threads=threads)
    blocked = []
    inner = getattr(engine_class, method)

    def spy(engine):
        blocked.append(engine)
        return inner(engine)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "COST_BLOCK", block)
        mp.setattr(engine_class, method, spy)
        net.fit(X, Y, learning_rate=0.05, num_iterations=8, batch_size=32, seed=5,
                optimizer="adam", lambd=lambd, sample_weight=weights, cost_every=2)
    # the block sizes each recorded cost went through (none: the plan over all m)
    return net, [sorted(getattr(engine, blocks)) for engine in blocked]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}-{c[5]}-{c[4]}threads" for c in CASES])
def test_blocked_costs_are_the_whole_plans_costs(case):
    *fit_case, rtol = case
    whole, whole_blocks = _fit(*fit_case, block=10**9)
    blocked, blocks = _fit(*fit_case, block=64)
    assert whole_blocks in ([], [[301]] * 5)  # cython: its plan over all m; numba: one block
    assert blocks == [[45, 64]] * 5  # iterations 0, 2, 4, 6 and the last
    assert [i for i, _ in blocked.costs_] == [i for i, _ in whole.costs_] == [0, 2, 4, 6, 7]
    np.testing.assert_allclose([J for _, J in blocked.costs_], [J for _, J in whole.costs_],
                               rtol=rtol)
    for name, value in whole.params.items():
        np.testing.assert_array_equal(blocked.params[name], value, err_msg=name)
