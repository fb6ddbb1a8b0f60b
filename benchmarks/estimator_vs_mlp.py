"""``fastnn.sklearn.NetworkClassifier`` against ``MLPClassifier``, per epoch.

The side-by-side comparison through the estimators users call, both with the
same parameters (scikit-learn's defaults: ``solver="adam"``, ``alpha=1e-4``,
or ``--solver sgd`` for its momentum SGD), the stopping rule off so both run
every epoch; all fitted interleaved, round after round, in one process, on
one thread (set the BLAS pools before starting Python)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m fastnn.benchmarks.estimator_vs_mlp
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python -m fastnn.benchmarks.estimator_vs_mlp \\
        --workloads digits200 --solver sgd --early-stopping --rounds 3 auto numpy

Workloads: ``digits200`` and ``digits32`` (load_digits, 64-64-10 ReLU/softmax,
batch size 200 and 32) and ``dense200`` (a 50 000 x 100, 10-class
``make_classification`` problem, 100-100-10, batch size 200). Backends are
fastnn's names or ``auto`` (the estimator's default: ``backend_`` says which
it took). Needs scikit-learn (``pip install "fastnn[sklearn]"``). Each fits
on a stratified 75 % of the data; prints ms per epoch (fit time / ``n_iter_``,
median over rounds), the speedup over MLPClassifier and the accuracy on the
held-out 25 % (of the last round).
"""

import argparse
import os
import statistics
import time
import warnings

#: name -> (data maker, hidden layers, batch size, epochs).
WORKLOADS = {
    "digits200": ("digits", (64,), 200, 40),
    "digits32": ("digits", (64,), 32, 20),
    "dense200": ("dense", (100,), 200, 8),
}


def _data(kind):
    from sklearn.datasets import load_digits, make_classification

    if kind == "digits":
        X, y = load_digits(return_X_y=True)
        return X / 16, y
    X, y = make_classification(n_samples=50_000, n_features=100, n_informative=40,
                               n_classes=10, random_state=0)
    return X, y


def _makers(backends, hidden, batch_size, epochs, solver, early_stopping=False):
    from sklearn.neural_network import MLPClassifier

    from fastnn.sklearn import NetworkClassifier

    common = dict(hidden_layer_sizes=hidden, solver=solver, batch_size=batch_size,
                  max_iter=epochs, tol=0, n_iter_no_change=10**9, random_state=0,
                  early_stopping=early_stopping)
    if solver == "sgd":
        common["learning_rate_init"] = 0.01
    makers = {"MLPClassifier": lambda: MLPClassifier(**common)}
    for name in backends:
        makers[f"NetworkClassifier {name}"] = lambda name=name: NetworkClassifier(
            backend=name, threads=1, **common)
    return makers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", default=["auto"])
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS),
                        default=list(WORKLOADS))
    parser.add_argument("--solver", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--early-stopping", action="store_true",
                        help="score 10 %% held out after every epoch (one Network.fit per epoch)")
    args = parser.parse_args(argv)
    from sklearn.exceptions import ConvergenceWarning

    print(f"one thread: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    from sklearn.model_selection import train_test_split

    for workload in args.workloads:
        kind, hidden, batch_size, epochs = WORKLOADS[workload]
        X, y = _data(kind)
        X, X_test, y, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
        makers = _makers(args.backends, hidden, batch_size, epochs, args.solver,
                         args.early_stopping)
        times = {name: [] for name in makers}
        chosen, accuracy = {}, {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the point
            for name, make in makers.items():  # compile, warm caches
                chosen[name] = getattr(make().set_params(max_iter=1).fit(X, y), "backend_", "")
            for _ in range(args.rounds):
                for name, make in makers.items():
                    estimator = make()
                    start = time.perf_counter()
                    estimator.fit(X, y)
                    times[name].append((time.perf_counter() - start) / estimator.n_iter_)
                    accuracy[name] = estimator.score(X_test, y_test)
        base = statistics.median(times["MLPClassifier"])
        print(f"{workload}: {X.shape[0]} x {X.shape[1]}, hidden {hidden}, batch {batch_size}, "
              f"{epochs} epochs, solver {args.solver}"
              + (", early stopping" if args.early_stopping else ""))
        for name, ts in times.items():
            t = statistics.median(ts)
            took = f" ({chosen[name]})" if chosen[name] else ""
            print(f"  {name + took:34s} {1e3 * t:9.3f} ms per epoch  "
                  f"{base / t:5.2f}x MLPClassifier's speed  test accuracy {accuracy[name]:.3f}")


if __name__ == "__main__":
    main()
