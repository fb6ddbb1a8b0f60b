"""The ``fastnn`` command line.

``fastnn flower``     train the course's planar "flower" 2-4-1 tanh net with every backend
``fastnn train ...``  train one network on a toy dataset, optionally plot its decision boundary
``fastnn backends``   which backends run here, why not, versions, threads, compile flags
``fastnn bench``      the ladder table in the terminal
``fastnn report``     the performance report: REPORT.md + PNG plots

Bad arguments print one line ``fastnn: error: ...`` and exit with status 2,
before any training or measuring starts. Results go to stdout; progress goes
to stderr (a bar on a terminal, plain lines otherwise).
"""

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass

__all__ = ["main"]

DATASETS = ["planar", "moons", "circles", "blobs"]

#: The SLOW backends (Python loops over examples) train the flower for at most
#: this many iterations (they take ms per iteration); their cost is checked
#: against numpy's after the same number.
FLOWER_SLOW_ITERATIONS = 300


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
    parser = _Parser(prog="fastnn", description="The course's neural networks five ways (loops, "
                     "per_example, numpy, numba, cython), and the benchmarks that show what "
                     "vectorization and SIMD buy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    flower = sub.add_parser("flower", help="train the planar flower 2-4-1 tanh net with every "
                            "available backend; final cost, accuracy, time per iteration")
    flower.add_argument("--iterations", type=_positive_int, default=10_000,
                        help="default 10000, the course's")
    flower.add_argument("--learning-rate", type=_positive_float, default=1.2,
                        help="default 1.2, the course's")

    train = sub.add_parser("train", help="train one network on a toy dataset")
    train.add_argument("--dataset", choices=DATASETS, default="planar")
    train.add_argument("--m", type=_positive_int, default=400, help="number of examples")
    train.add_argument("--layers", type=_layers, default=[2, 4, 1],
                       help="layer sizes n_x,n_1,...,n_L (default 2,4,1)")
    train.add_argument("--activation", default="tanh",
                       help="hidden activation (default tanh, the course's planar net; the "
                       "API's default is relu)")
    train.add_argument("--backend", default="numpy", help="default numpy, as the API")
    train.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    train.add_argument("--threads", type=_positive_int, default=None,
                       help="default: the backend decides, as the API")
    train.add_argument("--iterations", type=_positive_int, default=10_000,
                       help="default 10000, the course's (the API has no default)")
    train.add_argument("--learning-rate", type=_positive_float, default=1.2,
                       help="default 1.2, the course's (the API has no default)")
    train.add_argument("--cost-every", type=_positive_int, default=1000,
                       help="print the cost every this many iterations (default 1000, the "
                       "course's; the API records every 100); the final cost is always printed")
    train.add_argument("--init", default="random", help="default random (x 0.01), as the API")
    train.add_argument("--seed", type=int, default=2,
                       help="default 2, the course's planar seed, so runs repeat (the API's "
                       "seed=None draws a fresh one)")
    train.add_argument("--plot", metavar="PNG", help="save the decision boundary with the data")

    sub.add_parser("backends", help="availability, versions, threads and compile flags")

    bench = sub.add_parser("bench", help="the ladder table in the terminal (minutes: the "
                           "README gives measured times)")
    bench.add_argument("--quick", action="store_true", help="fewer rounds and iterations")

    report = sub.add_parser("report", help="write REPORT.md and PNG plots (minutes: the "
                            "README gives measured times)")
    report.add_argument("--quick", action="store_true", help="fewer rounds, smaller sweeps")
    report.add_argument("--out", default="report", metavar="DIR",
                        help="output directory (default ./report)")
    report.add_argument("--from-json", metavar="FILE",
                        help="render from the benchmarks.json of an earlier report instead of "
                        "running")
    return parser


def _console():
    from rich.console import Console

    # Off a terminal rich assumes 80 columns and would cut the tables' cells:
    # 120 there, unless COLUMNS says how wide (rich reads it).
    return Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 120)


# -- commands --------------------------------------------------------------------------

def _load_dataset(name, m, seed=None):
    from . import datasets

    kwargs = {"m": m} if seed is None else {"m": m, "seed": seed}
    return getattr(datasets, name)(**kwargs)


def _check_plot_path(path):
    """Fail before training, not after: the folder exists and matplotlib can draw."""
    from pathlib import Path

    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"--plot {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"--plot {path}: folder {parent} is not writable")
    if Path(path).suffix.lower() != ".png":
        raise UsageError(f"--plot {path}: expected a .png file name")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError('--plot needs matplotlib: pip install "fastnn[report]"') from None


def _fit(net, X, Y, *, label, **kwargs):
    """``net.fit`` with progress on stderr: the bar on a terminal, else two plain lines."""
    if sys.stderr.isatty():
        return net.fit(X, Y, progress=True, **kwargs)
    print(f"fastnn: training {label}: {kwargs['num_iterations']} iterations ...",
          file=sys.stderr, flush=True)
    start = time.perf_counter()
    net.fit(X, Y, **kwargs)
    print(f"fastnn: trained {label} in {time.perf_counter() - start:.1f} s", file=sys.stderr,
          flush=True)
    return net


def cmd_train(args, console):
    from . import Network

    if args.plot:
        _check_plot_path(args.plot)
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
    # A copy (net.to) compiles, outside the timer; net itself starts untrained.
    net.to(args.backend).fit(X, Y, learning_rate=args.learning_rate, num_iterations=1)
    warm = time.perf_counter() - warm
    start = time.perf_counter()
    _fit(net, X, Y, label=args.backend, learning_rate=args.learning_rate,
         num_iterations=args.iterations, cost_every=args.cost_every)
    elapsed = time.perf_counter() - start
    for i, cost in net.costs_:
        console.print(f"Cost after iteration {i}: {cost:.6f}")
    console.print(f"final cost (after all {args.iterations} iterations): "
                  f"[bold]{net.cost(X, Y):.6f}[/]")
    accuracy = 100 * net.accuracy(X, Y)
    console.print(f"accuracy on the training set: [bold]{accuracy:.1f}%[/]")
    console.print(f"time per iteration: [bold]{_fmt(elapsed / args.iterations)}[/] "
                  f"(first call incl. compile: {_fmt(warm)})")
    if args.plot:
        _plot_boundary(net, X, Y, args.plot, f"{args.dataset}: {net.backend}, "
                       f"layers {args.layers}, accuracy {accuracy:.1f}%")
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


@dataclass
class _FlowerRun:
    iterations: int
    cost: float
    accuracy: float
    seconds_per_iteration: float
    first_call: float


def cmd_flower(args, console):
    from rich.table import Table

    from . import Network, backends, datasets

    X, Y = datasets.planar()

    def make(name):
        return Network([2, 4, 1], hidden_activation="tanh", init="random", seed=2, backend=name)

    runs, notes = {}, []
    for name, ok in backends.available().items():
        if ok is not True:
            notes.append(f"{name}: unavailable ({ok})")
            continue
        slow = backends.get(name).SLOW
        n = min(args.iterations, FLOWER_SLOW_ITERATIONS) if slow else args.iterations
        warm = time.perf_counter()
        make(name).fit(X, Y, learning_rate=args.learning_rate, num_iterations=1)
        warm = time.perf_counter() - warm
        net = make(name)
        start = time.perf_counter()
        # No progress bar: the table below holds the one final cost.
        print(f"fastnn: {name}: {n} iterations ...", file=sys.stderr, flush=True)
        net.fit(X, Y, learning_rate=args.learning_rate, num_iterations=n, cost_every=n)
        runs[name] = _FlowerRun(n, net.cost(X, Y), net.accuracy(X, Y),
                                (time.perf_counter() - start) / n, warm)
        if n < args.iterations:
            same = make("numpy").fit(X, Y, learning_rate=args.learning_rate,
                                     num_iterations=n).cost(X, Y)
            notes.append(f"* {name} ran {n} iterations (slow on purpose); its cost "
                         f"{runs[name].cost:.12f} vs numpy's after {n} iterations {same:.12f} "
                         f"(relative difference {abs(runs[name].cost - same) / abs(same):.1e})")
    table = Table(title=f"planar flower, 2-4-1 tanh/sigmoid, m = {X.shape[1]}, "
                        f"learning_rate {args.learning_rate}, float64")
    for column in ["backend", "iters", "final cost", "accuracy", "time/iter", "1st call",
                   "vs numpy"]:
        table.add_column(column, justify="left" if column == "backend" else "right",
                         no_wrap=True)
    base = runs["numpy"].seconds_per_iteration if "numpy" in runs else None
    for name, r in runs.items():
        table.add_row(name, f"{r.iterations}" + ("*" if r.iterations < args.iterations else ""),
                      f"{r.cost:.6f}", f"{100 * r.accuracy:.1f}%", _fmt(r.seconds_per_iteration),
                      _fmt(r.first_call),
                      f"{base / r.seconds_per_iteration:.2g}×" if base else "—")
    console.print(table)
    console.print("final cost: after the last iteration's update; time/iter: one fit's wall "
                  "time / iterations (a single run: expect noise on a busy machine; `fastnn "
                  "bench` times them interleaved); vs numpy: numpy's time/iter over this one; "
                  "1st call: a 1-iteration fit before timing (JIT compile).")
    for note in notes:
        console.print(note)
    return 0


def cmd_backends(args, console):
    from rich.table import Table

    from . import backends

    from .report.machine import first_call_costs
    from .report.machine_text import first_call_text

    table = Table(title="fastnn backends")
    for column in ["backend", "available", "description", "info (versions, threads, flags)",
                   "first call: cold / cached"]:
        table.add_column(column, overflow="fold")
    for name, ok in backends.available().items():
        if ok is not True:
            table.add_row(name, "[red]no[/]", ok, "", "")
            continue
        module = backends.get(name)
        info = ""
        if hasattr(module, "info"):
            try:
                info = "\n".join(f"{k}: {v}" for k, v in module.info().items())
            except Exception as exc:  # show a broken hook, don't crash the listing
                info = f"info() failed: {type(exc).__name__}: {exc}"
        first = first_call_costs(name) if getattr(module, "COMPILED", False) else None
        table.add_row(name, "[green]yes[/]", getattr(module, "DESCRIPTION", ""), info,
                      first_call_text(first))
    console.print(table)
    from .backends import _threads

    budget, why = _threads.cpu_budget()
    console.print(f"threads=None here: up to {budget} thread(s) per fit ({why}); a fit whose "
                  "work is too small for a second thread runs on one")
    console.print("first call: a fresh process importing fastnn and fitting the planar 2-4-1 "
                  "net for 1 iteration, with an empty JIT cache (cold: Numba compiles what the "
                  "fit runs) and again with the cache that run filled (cached).")
    return 0


def cmd_bench(args, console):
    from rich.table import Table

    from .report import phrasing, results, suite, verdicts

    with tempfile.TemporaryDirectory(prefix="fastnn-bench-") as tmp:
        json_path = f"{tmp}/ladder.json"
        run = suite.run(json_path, quick=args.quick, select="test_ladder or test_dot",
                        console=console)
        res = results.build(results.load(json_path), {}, source="fastnn bench")
    impls = list(dict.fromkeys(i for t in res.ladder.values() for i in t))
    table = Table(title=f"median time per training iteration over {res.rounds} interleaved "
                  "rounds (float64; IQR shown when wide)")
    table.add_column("workload")
    for impl in impls:
        table.add_column(phrasing.label(impl), justify="right")
    for name, t in res.ladder.items():
        table.add_row(name, *[phrasing.cell(t.get(i)) for i in impls])
    console.print(table)
    v = verdicts.build(res)
    for rungs in v.ladder.rungs:
        if rungs.peer:
            console.print(f"{rungs.workload}: {phrasing.versus(rungs.peer)}")
    if v.ladder.dot_numpy:
        console.print("lecture demo, dot product of 10⁶-vectors: "
                      + phrasing.versus(v.ladder.dot_numpy))
    if run["failed"]:
        console.print(f"[red]{run['failed']} benchmark(s) failed[/]")
        return 1
    return 0


def cmd_report(args, console):
    from .report import generate

    path, summary = generate(args.out, quick=args.quick, from_json=args.from_json,
                             console=console)
    console.print(f"report written to [bold]{path}[/] ({summary['benchmarks']} benchmark "
                  f"groups, {summary['seconds']:.0f} s)")
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
                raise UsageError(f"--from-json {args.from_json}: no such file")
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
