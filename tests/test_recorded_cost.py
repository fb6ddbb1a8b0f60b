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

#: backend -> (the module holding COST_BLOCK, the engine class, its blocked method)
ENGINES = {"cython": ("fastnn.backends.cython.engine", "Engine", "_blocked_cost"),
           "numba": ("fastnn.backends.numba.engine_room", "_Engine", "blocked_cost")}


def _blocks(backend, engine):
    """The block widths an engine's recorded costs went through ([]: over all m at once)."""
    if backend == "cython":
        return sorted(engine._cost_plans)
    return sorted(k for k in engine._cost_blocks if k != "X")  # "X": X's column copy


#        backend   output      weights   lambd threads dtype   m    optimizer layout rtol
# ("gd" without L2 on numba: the first part's MiniBatchEngine; the rest its second part's)
CASES = [("cython", "softmax", None, 0.3, 1, "float64", 301, "adam", "C", 1e-13),
         ("cython", "sigmoid", "random", 0.0, 2, "float64", 320, "gd", "rows", 1e-13),
         ("cython", "identity", "zero block", 0.5, 1, "float32", 301, "gd", "C", 1e-5),
         ("cython", "softmax", "random", 0.2, 2, "float32", 320, "adam", "C", 1e-5),
         ("numba", "softmax", "zero block", 0.0, 2, "float64", 320, "adam", "C", 1e-13),
         ("numba", "sigmoid", None, 0.4, 1, "float64", 301, "momentum", "rows", 1e-13),
         ("numba", "identity", None, 0.0, 2, "float32", 320, "gd", "C", 1e-5),
         ("numba", "softmax", "random", 0.3, 1, "float32", 301, "adam", "rows", 1e-5)]


def _fit(backend, output, weights, lambd, threads, dtype, m, optimizer, layout, block,
         n0=6, hidden=8):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n0, m))
    if layout == "rows":  # the examples as rows: X^T C-contiguous, X itself F-contiguous
        X = np.asfortranarray(X)
    if output == "softmax":
        dims, Y = [n0, hidden, 3], np.eye(3)[rng.integers(0, 3, m)].T
    elif output == "sigmoid":
        dims, Y = [n0, hidden, 1], (rng.random((1, m)) < 0.5) * 1.0
    else:
        dims, Y = [n0, hidden, 2], rng.standard_normal((2, m))
    loss = "mse" if output == "identity" else "cross_entropy"
    w = None if weights is None else rng.random(m) * 2
    if weights == "zero block":
        w[:64] = 0  # the first block of 64 weighs nothing
    require_backend(backend)
    module_name, class_name, method = ENGINES[backend]
    module = importlib.import_module(module_name)
    engine_class = getattr(module, class_name)
    net = Network(dims, ["tanh", output], loss=loss, seed=3, backend=backend, dtype=dtype,
                  threads=threads)
    engines = []
    inner = getattr(engine_class, method)

    def spy(engine):
        engines.append(engine)
        return inner(engine)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "COST_BLOCK", block)
        mp.setattr(engine_class, method, spy)
        net.fit(X, Y, learning_rate=0.05, num_iterations=8, batch_size=32, seed=5,
                optimizer=optimizer, lambd=lambd, sample_weight=w, cost_every=2)
    return net, [_blocks(backend, engine) for engine in engines]


@pytest.mark.parametrize("case", CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[5]}-{c[6]}-{c[8]}" for c in CASES])
def test_blocked_costs_are_the_whole_plans_costs(case):
    *fit_case, rtol = case
    backend, m = fit_case[0], fit_case[6]
    whole, whole_blocks = _fit(*fit_case, block=10**9)
    blocked, blocks = _fit(*fit_case, block=64)
    # cython: no blocks, its plan over all m; numba: its buffers over all m
    assert whole_blocks in ([], [[]] * 5)
    # iterations 0, 2, 4, 6 and the last, each through blocks of 64 (and a last of 45)
    assert blocks == [[45, 64] if m % 64 else [64]] * 5
    assert [i for i, _ in blocked.costs_] == [i for i, _ in whole.costs_] == [0, 2, 4, 6, 7]
    np.testing.assert_allclose([J for _, J in blocked.costs_], [J for _, J in whole.costs_],
                               rtol=rtol)
    for name, value in whole.params.items():
        np.testing.assert_array_equal(blocked.params[name], value, err_msg=name)


@pytest.mark.parametrize("backend", sorted(ENGINES))
def test_wide_inputs_over_few_units_keep_the_buffers_over_all_m(backend):
    """Blocks of 64 would hold a copy of 200 input rows; the buffers over all m
    only the 3 units' Z and A (and dZ): the engine keeps those."""
    case = (backend, "sigmoid", None, 0.0, 1, "float64", 301, "gd", "C")
    net, blocks = _fit(*case, block=64, n0=200, hidden=2)
    assert blocks in ([], [[]] * 5)
    assert len(net.costs_) == 5 and all(np.isfinite(J) for _, J in net.costs_)
