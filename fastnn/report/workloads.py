"""The benchmark workloads, defined once for the suite, the report and the CLI.

Each workload is a network shape, its activations, a number of examples m and a
learning rate. Data follow the compiled-backend issue: X standard normal, Y
random 0/1, xavier init (randn / sqrt(n_{l-1}), biases zero), fixed seeds, so
every backend and peer starts from the same arrays.

``flops`` and ``min_bytes`` give the work of one training iteration so the
report can turn a time into GFLOP/s and GB/s:

- flops counts the GEMM-shaped multiply-adds (2 flops each): Z = W A (forward),
  dW = dZ A^T, and dA_prev = W^T dZ for every layer but the first. Elementwise
  work is O(sum n_l m) and ignored.
- min_bytes is the compulsory memory traffic: X read once (a fused kernel can
  do forward and dW in one pass when the first layer is small), every hidden
  A/Z written and read back once, parameters read and written.
"""

from dataclasses import dataclass

from .._testing import network_problem

__all__ = ["Workload", "WORKLOADS", "SWEEP", "problem", "flops", "min_bytes"]


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
    """GEMM flops of one training iteration (forward + backward)."""
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
