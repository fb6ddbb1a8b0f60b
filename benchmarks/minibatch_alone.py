"""One implementation's epoch time on the mini-batch workload, alone in its process.

The suite (``bench_minibatch.py``) times every implementation interleaved in
one process, where the peers' thread pools (JAX's, PyTorch's, OpenBLAS's) keep
spinning after their calls and weigh on whoever runs next. This script times
one at a time, for figures free of that::

    python -m fastnn.benchmarks.minibatch_alone cython 1 32 1347
    python -m fastnn.benchmarks.minibatch_alone jax 32

The first argument is a fastnn backend or a mini-batch peer (``course``,
``torch``, ``jax``, ``sklearn``); the others are batch sizes. Prints the
median over ``--rounds`` calls of ``--epochs`` epochs each, in ms per epoch.
"""

import argparse
import statistics
import time

import numpy as np

from fastnn import _peers, _testing, backends
from fastnn.report.workloads import DIGITS, digits_problem


def _fastnn_run(name, Ws0, bs0, acts, X, Y, batch_size):
    backend = backends.get(name)
    Ws, bs = [W.copy() for W in Ws0], [b.copy() for b in bs0]
    rng = np.random.default_rng(0)

    def run(epochs):
        _testing.train(backend, Ws, bs, acts, "cross_entropy", X, Y, DIGITS.learning_rate, epochs,
                       epochs, None, None, batch_size=batch_size, rng=rng)

    return run


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", help=f"one of {backends.names()} or {list(_peers.MINIBATCH_NAMES)}")
    parser.add_argument("batch_sizes", type=int, nargs="+")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per timed call")
    parser.add_argument("--rounds", type=int, default=5, help="timed calls")
    args = parser.parse_args(argv)
    Ws0, bs0, acts, X, Y, source = digits_problem()
    for batch_size in args.batch_sizes:
        if args.impl in backends.names():
            run = _fastnn_run(args.impl, Ws0, bs0, acts, X, Y, batch_size)
        else:
            run = _peers.make_minibatch(args.impl, Ws0, bs0, acts, X, Y, DIGITS.learning_rate,
                                        batch_size, 0).run
        run(2)  # compile, warm caches
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            run(args.epochs)
            times.append((time.perf_counter() - start) / args.epochs)
        print(f"{args.impl} B={batch_size}: {1e3 * statistics.median(times):.3f} ms per epoch "
              f"(median of {args.rounds} calls of {args.epochs} epochs; {source} digits, "
              f"m = {X.shape[1]})")


if __name__ == "__main__":
    main()
