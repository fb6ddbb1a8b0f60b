"""L-BFGS's evaluations a block of examples at a time
(:mod:`fastnn._sklearn_lbfgs`): the same loss and gradient as one block over
all examples, to 1e-12, with and without per-example weights (a block whose
weights are all 0 included), whether the blocks run one after the other or
shared by threads; the blocks' size from the cache; glibc's heap kept
between the blocks' calls. The fits against scikit-learn's are in
test_sklearn_equivalence.py, test_sklearn_weights.py and test_sklearn_sparse.py.
"""

import ctypes

import numpy as np
import pytest

pytest.importorskip("sklearn")

from fastnn import _sklearn_lbfgs, backends  # noqa: E402
from fastnn.sklearn import NetworkClassifier, NetworkRegressor  # noqa: E402

from _helpers import run_python  # noqa: E402
from _sklearn_cases import FAST, WEIGHTED  # noqa: E402


def _captured(estimator, X, y, sample_weight, monkeypatch):
    """What ``fit`` hands to ``fit_lbfgs``: (est, X, Y, sample_weight)."""
    seen = []
    monkeypatch.setattr(_sklearn_lbfgs, "fit_lbfgs", lambda *args: seen.append(args))
    estimator.fit(X, y, sample_weight=sample_weight)
    return seen[0]


# (estimator, backend, weights): softmax cross-entropy and squared error over two
# targets (its loss divided by them), each backend, no weights, weights with a
# zero-weight block, plain weights.
CASES = [(NetworkClassifier, b, w) for b, w in zip(FAST, ["zero block", None, "plain"] * 3)] + [
    (NetworkRegressor, FAST[-1], "zero block"), (NetworkRegressor, FAST[0], None)]


@pytest.mark.parametrize("Estimator, backend, weights", CASES)
def test_blocks_give_the_loss_and_gradient_of_one_block(Estimator, backend, weights,
                                                        monkeypatch):
    if weights and backend not in WEIGHTED:
        pytest.skip(f"backend {backend!r} has no HAS_SAMPLE_WEIGHT")
    rng = np.random.default_rng(0)
    m = 103
    X = rng.standard_normal((m, 6))
    y = (rng.integers(0, 3, m) if Estimator is NetworkClassifier
         else np.column_stack([X[:, 0] * X[:, 1], X[:, 2]]))
    w = None if weights is None else rng.uniform(0, 2, m)
    if weights == "zero block":
        w[10:20] = 0
    est = Estimator(hidden_layer_sizes=(7, 5), solver="lbfgs", alpha=0.3, backend=backend, random_state=0)
    est, X, Y, w = _captured(est, X, y, w, monkeypatch)
    args = (est.network_, X, Y, w, est.alpha, est._loss_divisor)
    whole = _sklearn_lbfgs.Objective(*args)
    assert len(whole.blocks) == 1
    theta = rng.standard_normal(whole.ends[-1])
    J, grad = whole(theta)
    for columns in (10, 33):
        blocked = _sklearn_lbfgs.Objective(*args, columns=columns)
        # 103 columns in blocks of 10 (the second all zero-weight: left out) or 33.
        assert len(blocked.blocks) == -(-m // columns) - (weights == "zero block"
                                                           and columns == 10)
        Jb, gradb = blocked(theta)
        assert Jb == pytest.approx(J, rel=1e-12)
        assert gradb.dtype == np.float64 and gradb.shape == grad.shape
        np.testing.assert_allclose(gradb, grad, rtol=1e-12, atol=1e-12 * np.abs(grad).max())
    # The blocks are X's columns, each once, C-contiguous; no whole copy beside them.
    Xs = [XT for XT, *_ in blocked.blocks]
    assert all(XT.flags.c_contiguous for XT in Xs)
    np.testing.assert_array_equal(np.hstack(Xs), X.T)


def test_blocks_come_from_the_cache_size(monkeypatch):
    """Half the cache per thread; equal blocks, a multiple of the threads
    sharing them; one block when all fits."""
    monkeypatch.setattr(_sklearn_lbfgs, "cache_bytes", lambda: 17 << 20)
    digits = [64, 100, 10]
    assert _sklearn_lbfgs.block_columns(digits, 8, 1347) == 1347
    assert _sklearn_lbfgs.block_columns(digits, 8, 1347, threads=2) == 674
    dense = [100, 100, 4]  # 3296 bytes per float64 column: 2704 fit in 8.5 MiB
    for itemsize, threads, size in [(8, 1, 2632), (8, 2, 2500), (4, 1, 5000), (4, 2, 5000)]:
        assert _sklearn_lbfgs.block_columns(dense, itemsize, 50_000, threads) == size
        assert size * _sklearn_lbfgs.column_bytes(dense, itemsize) <= (17 << 20) / 2
        assert -(-50_000 // size) % threads == 0


COMPILED = [b for b in FAST if backends.get(b).COMPILED]


@pytest.mark.parametrize("backend", COMPILED)
def test_threads_sharing_the_blocks_give_the_same_sums(backend, monkeypatch):
    """threads=2: the blocks shared by two threads, each block on one; the
    result bitwise that of the blocks one after the other, and within 1e-12
    of one block on one thread."""
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((103, 6)), rng.integers(0, 3, 103)
    fits = {}
    for threads in (1, 2):
        est = NetworkClassifier((7,), solver="lbfgs", alpha=0.1, backend=backend,
                                threads=threads, random_state=0)
        est, Xc, Y, w = _captured(est, X, y, None, monkeypatch)
        fits[threads] = (est.network_, Xc, Y, w, est.alpha, est._loss_divisor)
    whole = _sklearn_lbfgs.Objective(*fits[1])
    assert (len(whole.blocks), whole.workers, whole.threads) == (1, 1, 1)
    halves = _sklearn_lbfgs.Objective(*fits[2])
    assert (len(halves.blocks), halves.workers, halves.threads) == (2, 2, 1)
    blocked = _sklearn_lbfgs.Objective(*fits[2], columns=10)
    assert (len(blocked.blocks), blocked.workers, blocked.threads) == (11, 2, 1)
    theta = rng.standard_normal(whole.ends[-1])
    J, grad = whole(theta)
    for objective in (halves, blocked):
        in_turn = objective(theta)
        with objective:
            shared = [objective(theta) for _ in range(3)]
        for Js, grads in shared:
            assert Js == in_turn[0]
            np.testing.assert_array_equal(grads, in_turn[1])
        assert in_turn[0] == pytest.approx(J, rel=1e-12)
        np.testing.assert_allclose(in_turn[1], grad, rtol=1e-12,
                                   atol=1e-12 * np.abs(grad).max())


RAISED = """
import ctypes, numpy as np
from fastnn.backends import _malloc
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena ordblks smblks hblks hblkhd "
                "usmblks fsmblks uordblks fordblks keepcost").split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
def mapped(mib):
    before = libc.mallinfo2().hblks
    a = np.ones(mib << 17)
    return libc.mallinfo2().hblks - before
seen = [mapped(6), mapped(12)]  # each above the threshold glibc has seen so far
_malloc.raise_threshold(32 << 20)
print(seen + [mapped(24)])
"""


@pytest.mark.parametrize("frozen", [False, True])
def test_blocks_arrays_come_from_the_heap(frozen):
    """After ``raise_threshold`` an array below it is no mapping of its own
    (glibc raised its threshold as if it had seen such a block freed), except
    where the environment froze the threshold (left alone there)."""
    from fastnn.backends import _malloc
    if not _malloc._libc_mallopt() or not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("not glibc >= 2.33 (its dynamic mmap threshold and mallinfo2)")
    out = run_python(RAISED, env={"MALLOC_TRIM_THRESHOLD_": "65536"} if frozen else None)
    assert eval(out.strip().splitlines()[-1]) == [1, 1, 1 if frozen else 0]
