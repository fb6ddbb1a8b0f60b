"""The biases' gradients are summed in one fixed order in every cython build, and
threads split a matrix's columns at whole 64-byte lines where its rows are lines.

db = sum_i dZ[:, i] / m comes from ``_rows.h``: eight partial sums (an 8-lane
vector, four rows side by side), reduced as ((s0 + s4) + (s1 + s5)) + ((s2 +
s6) + (s3 + s7)), then the tail past the last whole eight one by one; on k
threads each thread sums its chunk of columns (``_column_chunks``) so and the
chunks' sums are added in thread order. That order is written out here in
NumPy, one IEEE operation at a time in the network's dtype, and each kernel set
and its novec twin must give exactly its bits: so every build (and the scalar
rows past the last four) sums alike, and a reordering -- even one within
rounding -- fails. (The sign of a NaN sum is not part of it: GCC may swap the
operands of a vector add, and x86 returns the first operand's NaN.)
"""

import importlib

import numpy as np
import pytest

from fastnn import Network

from _helpers import require_backend

cb = require_backend("cython")
# The module (the package's ``engine`` attribute is its engine() function).
engine = importlib.import_module("fastnn.backends.cython.engine")


def _fixed_order_sum(x):
    """x (1-D) summed in _rows.h's order, each add rounded to x's dtype."""
    end = len(x) // 8 * 8
    s = np.zeros(8, x.dtype)
    for q in range(0, end, 8):
        s = s + x[q:q + 8]
    t = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
    for v in x[end:]:
        t = t + v
    return t


def _expected_db(dZ, chunks):
    """db from each thread's chunk of columns, the chunks' sums added in order."""
    m = dZ.shape[1]
    db = np.empty(dZ.shape[0], dZ.dtype)
    for j, row in enumerate(dZ):
        sums = [_fixed_order_sum(row[c0:c1]) for c0, c1 in chunks]
        total = sums[0]
        for part in sums[1:]:
            total = total + part
        db[j] = total / dZ.dtype.type(m)
    return db


@pytest.mark.parametrize("variant", ["vec", "novec"])
@pytest.mark.parametrize("isa", cb.ISAS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_build_sums_the_bias_gradient_in_the_one_fixed_order(isa, variant, dtype):
    if isa not in cb.isas():
        pytest.skip(f"this CPU (or build) cannot run the {isa} kernels; it runs {cb.isas()}")
    rng = np.random.default_rng(7)
    itemsize = np.dtype(dtype).itemsize
    # An identity output with the squared error: dZ is exactly AL - Y.
    # Rows: four side by side, then 1-3 alone; columns: under eight, whole
    # eights, a tail, on two threads chunks of odd widths, and rows of whole
    # lines, whose split chunk_start moves to a line (200 float64, 400 float32).
    for n, m, threads in ((1, 5, 1), (4, 8, 1), (7, 203, 1), (9, 64, 2), (6, 203, 2),
                          (5, 64 * 25 // itemsize, 3)):
        net = Network([3, n], ["identity"], loss="mse", seed=1, backend="cython", dtype=dtype,
                      threads=threads)
        # The threads the engine runs (one without OpenMP, or in a child forked after a team ran).
        T = engine._threads_for(cb.paths.active(), threads, [np.empty((n, 3))], m)
        chunks = cb.paths.active()._column_chunks(m, T, itemsize)
        X = rng.standard_normal((3, m)).astype(dtype)
        # Magnitudes spread over 2^-20..2^20, so the order of the adds shows in the bits.
        Y = (rng.standard_normal((n, m)) * 2.0 ** rng.integers(-20, 21, (n, m))).astype(dtype)
        with cb.settings(isa=isa, variant=variant):
            AL, caches = net.forward(X)
            grads = net.backward(AL, Y, caches)
        dZ = AL - Y
        assert dZ.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(grads["db1"].ravel(), _expected_db(dZ, chunks),
                                      err_msg=f"n={n} m={m} threads={T} chunks={chunks}")


# -- threads split the columns at whole lines -------------------------------------------

@pytest.mark.parametrize("itemsize", [8, 4])
@pytest.mark.parametrize("threads", [2, 3, 4])
def test_threads_split_whole_line_rows_at_lines_and_other_rows_evenly(itemsize, threads):
    ext = cb.paths.active()
    lanes = 64 // itemsize
    # Whole-line rows too narrow to round (2 lanes), and wide enough (8 lanes a thread).
    for m in (1, 7, 2 * lanes, 2 * lanes * threads - 1, 8 * lanes * threads, 200, 201, 1000, 1347,
              4096):
        chunks = ext._column_chunks(m, threads, itemsize)
        assert chunks[0][0] == 0 and chunks[-1][1] == m
        assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:]))
        even = [m * t // threads for t in range(threads + 1)]
        if (m * itemsize) % 64 == 0 and m >= 2 * lanes * threads:
            for t, (c0, c1) in enumerate(chunks):
                assert c0 % lanes == 0, (m, t, chunks)
                assert abs(c0 - even[t]) <= lanes // 2 and c1 > c0, (m, t, chunks)
        else:
            assert chunks == list(zip(even, even[1:])), (m, chunks)


def test_forwards_Z_and_A_start_on_a_line():
    net = Network([30, 16, 3], ["relu", "softmax"], seed=0, backend="cython", threads=2)
    X = np.random.default_rng(0).standard_normal((30, 200))
    AL, caches = net.forward(X)
    As = [cache[0][0] for cache in caches[1:]] + [AL]   # each layer's A, from layer 1
    for cache, A in zip(caches, As):
        Z = cache[1]
        assert Z.ctypes.data % 64 == 0 and A.ctypes.data % 64 == 0


# -- a batch's columns as a block per thread -----------------------------------------

# (inputs, threads, batch, layout of layer 1's input, loss, output activation, optimizer,
#  keep_prob, lambd, weighted)
BLOCKED_CASES = [
    (64, 2, 140, "rows", "cross_entropy", "softmax", "adam", 0.8, 0.0, True),
    (20, 2, 64, "columns", "cross_entropy", "softmax", "momentum", 1.0, 0.0, True),
    (20, 3, 96, "columns", "mse", "identity", "adam", 0.9, 0.1, False),
]


def _gathers_rows(ext, n0, threads, batch, dtype):
    """Whether a plan of the test's net gathers a batch as rows (input_rows)."""
    Ws = [np.zeros((48, n0), dtype), np.zeros((20, 48), dtype), np.zeros((3, 20), dtype)]
    codes = [ext.ACTIVATION_CODES["relu"]] * 2 + [ext.ACTIVATION_CODES["softmax"]]
    plan = ext._Net(Ws, [np.zeros((W.shape[0], 1), dtype) for W in Ws], codes,
                    np.empty((n0, batch), dtype), threads, None, None, 1)
    return plan.gathers_rows(batch)


@pytest.mark.parametrize("case", BLOCKED_CASES, ids=lambda c: f"{c[0]}-{c[1]}threads-{c[4]}")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_blocked_batches_train_bitwise_as_the_same_columns_in_place(dtype, case):
    """Two or more threads run a batch's columns as blocks of their own
    (``_blocked_stage``): the same kernels on the same columns, so the
    parameters come out bitwise as with the columns in place, as ranges of
    shared rows -- through dropout's hashed masks (their positions in the
    batch), sample weights, a batch gathered as rows and as columns, three
    threads' rounded chunks, and a last batch (of 203 examples) smaller than
    the rest; the epoch losses, L2's term included, within rounding (their
    sum now goes block by block)."""
    n0, threads, batch, layout, loss, out, optimizer, keep_prob, lambd, weighted = case
    ext = cb.paths.active()
    if engine._threads_for(ext, threads, [np.empty((48, n0))], 10**6) < threads:
        pytest.skip(f"the engine runs fewer than {threads} threads here (no OpenMP, few CPUs, "
                    "or a child forked after a team ran)")
    assert _gathers_rows(ext, n0, threads, batch, dtype) == (layout == "rows")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((n0, 203)).astype(dtype)
    Y = np.eye(3)[rng.integers(0, 3, 203)].T if loss == "cross_entropy" else \
        rng.standard_normal((3, 203))
    weights = rng.random(203) + 0.5 if weighted else None
    fits = []
    for blocked in (False, True):
        before = ext._blocked_batches(blocked)
        try:
            net = Network([n0, 48, 20, 3], ["relu", "relu", out], loss=loss, seed=2,
                          backend="cython", dtype=dtype, threads=threads)
            losses = []
            net.fit(X, Y, learning_rate=0.01, num_iterations=3, batch_size=batch, seed=5,
                    optimizer=optimizer, keep_prob=keep_prob, lambd=lambd,
                    sample_weight=weights, on_epoch=lambda epoch, J: losses.append(J))
        finally:
            ext._blocked_batches(before)
        assert net.threads_used_[0] == threads
        fits.append(({k: np.array(v) for k, v in net.params.items()}, losses))
    (in_place, losses_in_place), (blocked, losses_blocked) = fits
    for name in in_place:
        np.testing.assert_array_equal(blocked[name], in_place[name], err_msg=name)
    assert len(losses_blocked) == 3
    np.testing.assert_allclose(losses_blocked, losses_in_place, rtol=1e-12)
