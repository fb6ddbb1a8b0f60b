"""``fastnn.sklearn.NetworkClassifier`` against ``MLPClassifier`` on digits, per epoch.

The side-by-side comparison with MLPClassifier, through the estimators users
call: the same 64-64-10 ReLU/softmax sizes, batch size 32, learning rate 0.1,
plain SGD (``solver="sgd", momentum=0, alpha=0``), stopping rule off so both
run every epoch; all fitted interleaved, round after round, in one process::

    python -m fastnn.benchmarks.estimator_vs_mlp            # numpy, numba, cython
    python -m fastnn.benchmarks.estimator_vs_mlp --epochs 10 --rounds 3 numba

Needs scikit-learn (``pip install "fastnn[sklearn]"``). Prints ms per epoch
(fit time / ``n_iter_``, median over rounds), the speedup over MLPClassifier
and the test accuracy.
"""

import argparse
import statistics
import time
import warnings


def _makers(backends, epochs):
    from sklearn.neural_network import MLPClassifier

    from fastnn.sklearn import NetworkClassifier

    never = 10**9  # n_iter_no_change: the stopping rule never fires
    makers = {"MLPClassifier": lambda: MLPClassifier(
        (64,), solver="sgd", momentum=0, alpha=0, batch_size=32, learning_rate_init=0.1,
        max_iter=epochs, tol=0, n_iter_no_change=never, random_state=0)}
    for name in backends:
        makers[f"NetworkClassifier {name}"] = lambda name=name: NetworkClassifier(
            (64,), solver="sgd", momentum=0, alpha=0, engine_epochs=True, batch_size=32,
            learning_rate_init=0.1, max_iter=epochs, tol=0, n_iter_no_change=never,
            random_state=0, backend=name)
    return makers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", default=["numpy", "numba", "cython"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    makers = _makers(args.backends, args.epochs)
    times = {name: [] for name in makers}
    accuracy = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the point
        for make in makers.values():  # compile, warm caches
            make().fit(X_train, y_train)
        for _ in range(args.rounds):
            for name, make in makers.items():
                estimator = make()
                start = time.perf_counter()
                estimator.fit(X_train, y_train)
                times[name].append((time.perf_counter() - start) / estimator.n_iter_)
                accuracy[name] = estimator.score(X_test, y_test)
    base = statistics.median(times["MLPClassifier"])
    for name, ts in times.items():
        t = statistics.median(ts)
        print(f"{name:26s} {1e3 * t:8.3f} ms per epoch  {base / t:5.2f}x MLPClassifier's speed  "
              f"test accuracy {accuracy[name]:.3f}")


if __name__ == "__main__":
    main()
