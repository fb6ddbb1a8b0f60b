"""The ``fastnn`` command line.

``fastnn flower``     train the course's planar "flower" 2-4-1 tanh net with every backend
``fastnn train ...``  train one network on a toy dataset, optionally plot its decision boundary
``fastnn backends``   which backends run here, why not, versions, threads, compile flags
``fastnn bench``      the ladder table in the terminal
``fastnn report``     the full performance report: REPORT.md + PNG plots

Bad arguments print one line ``fastnn: error: ...`` and exit with status 2.
"""

import argparse
import sys
import tempfile
import time

__all__ = ["main"]

DATASETS = ["planar", "moons", "circles", "blobs"]

#: Pure-Python rungs train the flower for fewer iterations (they take ms per
#: iteration); their cost is checked against numpy's at the same iteration.
FLOWER_SLOW = {"loops": 300, "per_example": 300}


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _layers(text):
    try:
        dims = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 2,4,1; got {text!r}") from None
    if len(dims) < 2 or min(dims) < 1:
        raise argparse.ArgumentTypeError(
            f"expected at least two positive layer sizes such as 2,4,1; got {text!r}")
    return dims


def _parser():
    parser = _Parser(prog="fastnn", description="The course's neural networks four ways, "
                     "and the benchmarks that show what vectorization and SIMD buy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    flower = sub.add_parser("flower", help="train the planar flower 2-4-1 tanh net with every "
                            "available backend; cost, accuracy, time per iteration")
    flower.add_argument("--iterations", type=_positive_int, default=10_000)
    flower.add_argument("--learning-rate", type=_positive_float, default=1.2)

    train = sub.add_parser("train", help="train one network on a toy dataset")
    train.add_argument("--dataset", choices=DATASETS, default="planar")
    train.add_argument("--m", type=_positive_int, default=400, help="number of examples")
    train.add_argument("--layers", type=_layers, default=[2, 4, 1],
                       help="layer sizes n_x,n_1,...,n_L (default 2,4,1)")
    train.add_argument("--activation", default="tanh", help="hidden activation (default tanh)")
    train.add_argument("--backend", default="numpy")
    train.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    train.add_argument("--threads", type=_positive_int, default=None)
    train.add_argument("--iterations", type=_positive_int, default=10_000)
    train.add_argument("--learning-rate", type=_positive_float, default=1.2)
    train.add_argument("--cost-every", type=_positive_int, default=1000)
    train.add_argument("--init", default="xavier")
    train.add_argument("--seed", type=int, default=3)
    train.add_argument("--plot", metavar="PNG", help="save the decision boundary with the data")

    sub.add_parser("backends", help="availability, versions, threads and compile flags")

    bench = sub.add_parser("bench", help="the ladder table in the terminal")
    bench.add_argument("--quick", action="store_true", help="fewer rounds (about 30 s)")

    report = sub.add_parser("report", help="write REPORT.md and PNG plots")
    report.add_argument("--quick", action="store_true", help="about a minute instead of ~10")
    report.add_argument("--out", default="report", metavar="DIR",
                        help="output directory (default ./report)")
    report.add_argument("--from-json", metavar="FILE",
                        help="render from a saved pytest-benchmark JSON instead of running")
    return parser


def _console():
    from rich.console import Console

    return Console()


# -- commands --------------------------------------------------------------------------

def _load_dataset(name, m, seed=None):
    from . import datasets

    kwargs = {"m": m} if seed is None else {"m": m, "seed": seed}
    return getattr(datasets, name)(**kwargs)


def cmd_train(args, console):
    from . import Network

    X, Y = _load_dataset(args.dataset, args.m)
    if args.layers[0] != X.shape[0]:
        raise UsageError(f"--layers must start with {X.shape[0]} (the {args.dataset} dataset has "
                         f"{X.shape[0]} features), got {','.join(map(str, args.layers))}")
    net = Network(args.layers, hidden_activation=args.activation, output_activation="sigmoid",
                  init=args.init, seed=args.seed, backend=args.backend, dtype=args.dtype,
                  threads=args.threads)
    console.print(f"training {net!r} on {args.dataset} (m = {X.shape[1]}), "
                  f"{args.iterations} iterations, learning_rate {args.learning_rate}")
    warm = time.perf_counter()
    net.to(args.backend).fit(X, Y, learning_rate=args.learning_rate, num_iterations=1)
    warm = time.perf_counter() - warm  # JIT compile, outside the timer
    start = time.perf_counter()
    net.fit(X, Y, learning_rate=args.learning_rate, num_iterations=args.iterations,
            cost_every=args.cost_every, progress=True)
    elapsed = time.perf_counter() - start
    for i, cost in net.costs_:
        console.print(f"Cost after iteration {i}: {cost:.6f}")
    console.print(f"accuracy on the training set: [bold]{100 * net.accuracy(X, Y):.1f}%[/]")
    console.print(f"time per iteration: [bold]{_fmt(elapsed / args.iterations)}[/] "
                  f"(first call incl. compile: {_fmt(warm)})")
    if args.plot:
        _plot_boundary(net, X, Y, args.plot, f"{args.dataset}: {net.backend}, "
                       f"layers {args.layers}, accuracy {100 * net.accuracy(X, Y):.1f}%")
        console.print(f"decision boundary saved to {args.plot}")
    return 0


def _plot_boundary(net, X, Y, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    pad = 0.5
    x0, x1 = np.meshgrid(np.linspace(X[0].min() - pad, X[0].max() + pad, 300),
                         np.linspace(X[1].min() - pad, X[1].max() + pad, 300))
    grid = np.vstack([x0.ravel(), x1.ravel()])
    P = net.predict_proba(grid).reshape(x0.shape)
    fig, ax = plt.subplots(figsize=(6, 5))
    contour = ax.contourf(x0, x1, P, levels=np.linspace(0, 1, 11), cmap="RdBu", alpha=0.6)
    ax.contour(x0, x1, P, levels=[0.5], colors="black", linewidths=1)
    ax.scatter(X[0], X[1], c=Y[0], cmap="RdBu", edgecolors="black", s=14)
    fig.colorbar(contour, ax=ax, label="predicted probability of class 1")
    ax.set(xlabel="x₁", ylabel="x₂", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def cmd_flower(args, console):
    from rich.table import Table

    from . import Network, backends, datasets

    X, Y = datasets.planar()
    table = Table(title=f"planar flower, 2-4-1 tanh/sigmoid, m = {X.shape[1]}, "
                        f"learning_rate {args.learning_rate}, float64")
    for column in ["backend", "iters", "cost", "accuracy", "time/iter", "1st call", "vs numpy"]:
        table.add_column(column, justify="left" if column == "backend" else "right",
                         no_wrap=True)
    results, notes = {}, []
    for name, ok in backends.available().items():
        if ok is not True:
            notes.append(f"{name}: unavailable ({ok})")
            continue
        n = min(args.iterations, FLOWER_SLOW.get(name, args.iterations))
        net = Network([2, 4, 1], hidden_activation="tanh", init="random", seed=2,
                      backend=name)
        console.print(f"[bold]{name}[/]: {n} iterations ...")
        warm = time.perf_counter()
        net.to(name).fit(X, Y, learning_rate=args.learning_rate, num_iterations=1)
        warm = time.perf_counter() - warm
        start = time.perf_counter()
        net.fit(X, Y, learning_rate=args.learning_rate, num_iterations=n,
                cost_every=min(1000, n // 3), progress=True)
        per_iteration = (time.perf_counter() - start) / n
        results[name] = (n, net.cost(X, Y), net.accuracy(X, Y), per_iteration, warm, net)
    base = results.get("numpy", (None,) * 4)[3]
    for name, (n, cost, acc, t, warm, net) in results.items():
        table.add_row(name, f"{n}" + ("*" if n < args.iterations else ""), f"{cost:.6f}",
                      f"{100 * acc:.1f}%", _fmt(t), _fmt(warm),
                      f"{base / t:.2g}×" if base else "—")
        if n < args.iterations:
            check = Network([2, 4, 1], hidden_activation="tanh", init="random", seed=2)
            same = check.fit(X, Y, learning_rate=args.learning_rate, num_iterations=n).cost(X, Y)
            notes.append(f"* {name} ran {n} iterations (slow on purpose); its cost "
                         f"{cost:.12f} vs numpy's after {n} iterations {same:.12f} (relative "
                         f"difference {abs(cost - same) / abs(same):.1e})")
    console.print(table)
    console.print("cost: after the last iteration; time/iter: wall time of fit / iterations"
                  "; 1st call: a 1-iteration fit before timing (JIT compile).")
    for note in notes:
        console.print(note)
    return 0


def cmd_backends(args, console):
    from rich.table import Table

    from . import backends

    table = Table(title="fastnn backends")
    for column in ["backend", "available", "description", "info (versions, threads, flags)"]:
        table.add_column(column, overflow="fold")
    for name, ok in backends.available().items():
        if ok is not True:
            table.add_row(name, "[red]no[/]", ok, "")
            continue
        module = backends.get(name)
        info = ""
        if hasattr(module, "info"):
            try:
                info = "\n".join(f"{k}: {v}" for k, v in module.info().items())
            except Exception as exc:  # show a broken hook, don't crash the listing
                info = f"info() failed: {type(exc).__name__}: {exc}"
        table.add_row(name, "[green]yes[/]", getattr(module, "DESCRIPTION", ""), info)
    console.print(table)
    return 0


def cmd_bench(args, console):
    from rich.table import Table

    from .report import results, suite

    with tempfile.TemporaryDirectory(prefix="fastnn-bench-") as tmp:
        json_path = f"{tmp}/ladder.json"
        run = suite.run(json_path, quick=args.quick, select="test_ladder or test_dot",
                        console=console)
        data = results.load(json_path)
    table_data = results.ladder(data)
    impls = [i for i in results.LADDER_ORDER if any(i in t for t in table_data.values())]
    table = Table(title="time per training iteration (best of rounds, float64); ×: speedup vs numpy")
    table.add_column("workload")
    for impl in impls:
        table.add_column(impl.replace("peer:", ""), justify="right")
    for name, t in table_data.items():
        numpy = t.get("numpy", {}).get("seconds")
        cells = []
        for impl in impls:
            if impl not in t:
                cells.append("—")
                continue
            s = t[impl]["seconds"]
            cells.append(results.format_seconds(s) + (f"\n{numpy / s:.2g}×" if numpy else ""))
        table.add_row(name, *cells)
    console.print(table)
    dot = {r["impl"]: r["seconds"] for r in results.rows(data, "dot-1e6")}
    if "python loop" in dot and "np.dot" in dot:
        console.print(f"lecture demo, dot product of 10⁶-vectors: Python loop "
                      f"{results.format_seconds(dot['python loop'])}, np.dot "
                      f"{results.format_seconds(dot['np.dot'])} "
                      f"({dot['python loop'] / dot['np.dot']:.0f}×)")
    if run["failed"]:
        console.print(f"[red]{run['failed']} benchmark(s) failed[/]")
        return 1
    return 0


def cmd_report(args, console):
    from .report import generate

    path, summary = generate(args.out, quick=args.quick, from_json=args.from_json,
                             console=console)
    console.print(f"report written to [bold]{path}[/] ({summary['benchmarks']} benchmarks, "
                  f"{summary['seconds']:.0f} s)")
    if summary.get("failed"):
        console.print(f"[red]{summary['failed']} benchmark(s) failed[/]; see the run's output")
        return 1
    return 0


def _fmt(seconds):
    from .report.results import format_seconds

    return format_seconds(seconds)


COMMANDS = {"flower": cmd_flower, "train": cmd_train, "backends": cmd_backends,
            "bench": cmd_bench, "report": cmd_report}


def main(argv=None):
    """Run the ``fastnn`` command line; return the exit status."""
    try:
        args = _parser().parse_args(argv)
        if args.command == "report" and args.from_json is not None:
            from pathlib import Path

            if not Path(args.from_json).is_file():
                raise UsageError(f"--from-json: no such file: {args.from_json}")
        return COMMANDS[args.command](args, _console())
    except (UsageError, ValueError, TypeError, FileNotFoundError) as exc:
        # The library validates everything (unknown backend/activation, bad
        # shapes) with messages that name the argument: show just that line.
        print(f"fastnn: error: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, FloatingPointError) as exc:
        # A failed benchmark run, or training that diverged: not a usage error.
        print(f"fastnn: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
