"""The benchmark workloads, defined once for the suite, the report and the CLI.

Each workload is a network shape, its activations, a number of examples m and a
learning rate. Data: X standard normal, Y random 0/1, xavier init (randn / sqrt(n_{l-1}),
biases zero), fixed seeds, so every backend and peer starts from the same arrays.

``flops`` and ``min_bytes`` give the work of one training iteration so the
report can turn a time into GFLOP/s and GB/s, and ``working_set`` the memory
it touches, which says which bandwidth ceiling applies (L3 or DRAM):

- flops counts the GEMM-shaped multiply-adds (2 flops each): Z = W A (forward),
  dW = dZ A^T, and dA_prev = W^T dZ for every layer but the first. Elementwise
  work is O(sum n_l m) and ignored.
- min_bytes is the compulsory memory traffic: X read once (a fused kernel can
  do forward and dW in one pass when the first layer is small), every hidden
  A/Z written and read back once, parameters read and written.
- working_set is every array one iteration touches: X, Y, each layer's Z and
  A, each W and b and their gradients.
"""

from dataclasses import dataclass

import numpy as np

from .._testing import network_problem

__all__ = ["Workload", "WORKLOADS", "SWEEP", "DIGITS", "CLASSES", "problem", "digits_problem",
           "classes_problem", "flops", "min_bytes", "working_set"]


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    layer_dims: tuple
    activations: tuple
    m: int
    learning_rate: float
    #: "overhead", "memory" or "gemm": which efficiency figure is meaningful.
    bound: str
    #: Whether the SLOW backends (Python loops over examples) run it at all, and
    #: whether the oracle (loops over units and features too) does: on the big
    #: nets they take minutes per iteration.
    slow_ok: bool = True
    oracle_ok: bool = True


WORKLOADS = {
    w.name: w
    for w in [
        Workload("planar", "planar 2-4-1 tanh/sigmoid, m = 400", (2, 4, 1), ("tanh", "sigmoid"),
                 400, 1.2, "overhead"),
        Workload("deep", "deep 12288-20-7-5-1 relu, m = 209", (12288, 20, 7, 5, 1),
                 ("relu", "relu", "relu", "sigmoid"), 209, 0.0075, "memory", oracle_ok=False),
        Workload("logreg", "logistic regression 12288 -> 1, m = 209", (12288, 1), ("sigmoid",),
                 209, 0.005, "memory"),
        Workload("wide", "wide 784-256-128-1 relu, m = 10 000", (784, 256, 128, 1),
                 ("relu", "relu", "sigmoid"), 10_000, 0.01, "gemm",
                 slow_ok=False, oracle_ok=False),
    ]
}

#: The m-sweep: planar's 2-4-1 tanh net (overhead-bound at small m, streaming at
#: large m), where the ladder's crossovers are visible.
SWEEP = Workload("sweep", "planar 2-4-1 tanh/sigmoid, m swept", (2, 4, 1), ("tanh", "sigmoid"),
                 0, 1.2, "overhead")


#: The mini-batch workload (``bench_minibatch.py``): scikit-learn's digits problem
#: -- 64 features (8x8 pixels scaled to [0, 1]), 10
#: classes, a 75/25 split leaving m = 1347 training examples -- on a 64-64-10
#: relu/softmax net, lr 0.1, swept over the batch size. See :func:`digits_problem`.
DIGITS = Workload("digits", "digits 64-64-10 relu/softmax, m = 1347", (64, 64, 10),
                  ("relu", "softmax"), 1347, 0.1, "overhead")

#: Seeds of the digits problem: the 75/25 split (or the synthetic draw) and the init.
DIGITS_SEED = 0


def digits_problem(dtype="float64", source="auto", seed=DIGITS_SEED):
    """Fresh arrays of the digits workload: ``(Ws, bs, acts, X, Y, source)``.

    ``source="sklearn"`` is scikit-learn's bundled digits (``load_digits``:
    1797 images, pixels 0..16 divided by 16), the first 1347 of a seeded
    permutation (the 75 % training part of a 75/25 split). ``"synthetic"``
    draws a data set of the same shape and character without scikit-learn or
    any data file: ten fixed 8x8 "stroke" prototypes, each example its class's
    prototype plus noise, clipped to [0, 1] and quantized to digits' 17 grey
    levels, classes balanced. ``"auto"`` (the suite's choice) is sklearn's
    digits when scikit-learn is installed -- exactly when the report can put
    MLPClassifier beside fastnn, so the comparison with it is made on the
    real data -- and the synthetic set otherwise. Every time measured depends on
    the shapes only (dense products, element-wise activations), not on the values.

    Returns
    -------
    Ws, bs : lists of C-contiguous ndarrays of shape (n_l, n_{l-1}) and (n_l, 1)
        xavier init (randn / sqrt(n_{l-1})), biases zero, from ``seed``.
    acts : list of str, ``["relu", "softmax"]``
    X : ndarray of shape (64, 1347), values in [0, 1]
    Y : ndarray of shape (10, 1347), one-hot
    source : str, ``"sklearn"`` or ``"synthetic"``
    """
    if source not in ("auto", "sklearn", "synthetic"):
        raise ValueError(f"source must be 'auto', 'sklearn' or 'synthetic', got {source!r}")
    w = DIGITS
    rng = np.random.default_rng(seed)
    data = None
    if source != "synthetic":
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            if source == "sklearn":
                raise
        else:
            digits = load_digits()
            order = rng.permutation(len(digits.target))[:w.m]
            data = digits.data.T[:, order] / 16.0, digits.target[order], "sklearn"
    if data is None:
        data = (*_synthetic_digits(w.m, rng), "synthetic")
    pixels, labels, used = data
    X = np.ascontiguousarray(pixels, dtype=dtype)
    Y = np.zeros((w.layer_dims[-1], w.m), dtype=dtype)
    Y[labels, np.arange(w.m)] = 1
    init = np.random.default_rng([seed, 1])
    dims = w.layer_dims
    Ws = [np.ascontiguousarray((init.standard_normal((dims[l], dims[l - 1]))
                                / np.sqrt(dims[l - 1])).astype(dtype))
          for l in range(1, len(dims))]
    bs = [np.zeros((n, 1), dtype=dtype) for n in dims[1:]]
    return Ws, bs, list(w.activations), X, Y, used


#: The optimizer group's big workload (``bench_optimizers.py``): 45 000 synthetic
#: examples of 5 classes with 100 standardized features, a 100-128-64-5
#: relu/softmax net, Adam's usual learning rate. See :func:`classes_problem`.
CLASSES = Workload("classes", "classes 100-128-64-5 relu/softmax, m = 45 000", (100, 128, 64, 5),
                   ("relu", "relu", "softmax"), 45_000, 0.001, "gemm", slow_ok=False,
                   oracle_ok=False)


def classes_problem(m=None, dtype="float64", seed=0):
    """Fresh arrays of the :data:`CLASSES` workload: ``(Ws, bs, acts, X, Y)``.

    Each class has a random centre in feature space (N(0, 1) per feature); an
    example is its class's centre plus N(0, 1.5²) noise, so the classes overlap
    and a net has something to learn for many epochs. Classes are balanced and
    shuffled; every feature is then standardized (mean 0, variance 1 over the m
    examples), as one would before training.

    Returns
    -------
    Ws, bs : lists of C-contiguous ndarrays of shape (n_l, n_{l-1}) and (n_l, 1)
        xavier init (randn / sqrt(n_{l-1})), biases zero.
    acts : list of str, ``["relu", "relu", "softmax"]``
    X : ndarray of shape (100, m), standardized
    Y : ndarray of shape (5, m), one-hot
    """
    w = CLASSES
    m = w.m if m is None else m
    dims = w.layer_dims
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((dims[-1], dims[0]))
    labels = rng.permutation(np.arange(m) % dims[-1])
    X = centres[labels].T + 1.5 * rng.standard_normal((dims[0], m))
    X = (X - X.mean(axis=1, keepdims=True)) / X.std(axis=1, keepdims=True)
    Y = np.zeros((dims[-1], m), dtype=dtype)
    Y[labels, np.arange(m)] = 1
    init = np.random.default_rng([seed, 1])
    Ws = [np.ascontiguousarray((init.standard_normal((dims[l], dims[l - 1]))
                                / np.sqrt(dims[l - 1])).astype(dtype))
          for l in range(1, len(dims))]
    bs = [np.zeros((n, 1), dtype=dtype) for n in dims[1:]]
    return Ws, bs, list(w.activations), np.ascontiguousarray(X, dtype=dtype), Y


def _synthetic_digits(m, rng, classes=10, n_x=64):
    """``(pixels (n_x, m) in [0, 1] on 17 levels, labels (m,))``, balanced classes."""
    # A prototype lights about a third of its pixels, as a digit's strokes do.
    prototypes = (rng.random((classes, n_x)) < 0.35) * rng.uniform(0.5, 1.0, (classes, n_x))
    labels = rng.permutation(np.arange(m) % classes)
    pixels = np.clip(prototypes[labels].T + 0.25 * rng.standard_normal((n_x, m)), 0.0, 1.0)
    return np.round(pixels * 16) / 16, labels


def problem(workload, m=None, dtype="float64", seed=0):
    """Fresh arrays for ``workload``: ``(Ws, bs, acts, X, Y)``.

    Returns
    -------
    Ws, bs : lists of C-contiguous ndarrays of shape (n_l, n_{l-1}) and (n_l, 1)
    acts : list of str
    X : ndarray of shape (n_x, m)
    Y : ndarray of shape (1, m) with values in {0, 1}
    """
    m = workload.m if m is None else m
    Ws, bs, X, Y = network_problem(workload.layer_dims, m, dtype, seed)
    return Ws, bs, list(workload.activations), X, Y


def flops(workload, m=None):
    """GEMM flops of one training iteration (forward + backward); of one epoch
    for a mini-batch run (the same products, cut into batches)."""
    m = workload.m if m is None else m
    dims = workload.layer_dims
    total = 0
    for l in range(1, len(dims)):
        passes = 3 if l > 1 else 2  # no dA_0: X needs no gradient
        total += 2 * dims[l] * dims[l - 1] * m * passes
    return total


def min_bytes(workload, m=None, itemsize=8):
    """Compulsory memory traffic of one training iteration, in bytes."""
    m = workload.m if m is None else m
    dims = workload.layer_dims
    x = dims[0] * m
    activations = sum(dims[1:]) * m * 2  # each A (or Z) written once, read back once
    params = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims))) * 2
    return (x + activations + params + dims[-1] * m) * itemsize


def working_set(workload, m=None, itemsize=8):
    """Bytes of every array one training iteration touches: X and Y, each
    layer's Z and A, each W and b and their gradients."""
    m = workload.m if m is None else m
    dims = workload.layer_dims
    params = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims)))
    return (dims[0] * m + dims[-1] * m + 2 * sum(dims[1:]) * m + 2 * params) * itemsize
