"""Running the benchmark suite: pytest-benchmark in a subprocess, with progress.

The suite is the package ``fastnn.benchmarks`` -- in a checkout, the top-level
``benchmarks/`` folder (pyproject.toml maps the name onto it) -- so ``fastnn
report`` and ``fastnn bench`` run from any install, editable or not, and from
any folder. It needs the ``report`` extra (pytest, pytest-benchmark).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["benchmarks_dir", "run", "attach", "require_report_extra"]

_COLLECTED = re.compile(r"collected (\d+) items?(?: / (\d+) deselected)?")
#: A test's result line under -v; parametrized ids may contain spaces.
_RESULT = re.compile(r"^(\S+::.*?)\s+(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b")

#: Environment defaults of the benchmark suite (a user's own settings win).
#: Idle libgomp threads (numba's omp layer, fastnn_ext, PyTorch) spin before
#: they sleep; by default long enough (~ms) that on 2 cores the pool of one
#: backend slowed the next backend's BLAS up to 8x (numpy deep 17 ms -> 136 ms
#: after a numba run). OMP_WAIT_POLICY=PASSIVE (no spin) cures that but puts a
#: futex wake-up in every parallel region: cython's 2-thread planar at
#: m = 2000 went from 9 to 170 us per iteration. A short spin keeps both.
#: OpenBLAS's idle threads do the same: they spin 2^28 cycles (~0.1 s) after
#: each call before sleeping, and numpy and scipy each bring a pool. Timed
#: interleaved on 2 cores, logistic regression (numpy, then cython) ran 2.4x
#: (numpy) and 3.4x (cython) slower than with OPENBLAS_THREAD_TIMEOUT=4 (2^4
#: cycles), which only shortens that idle spin (not the kernels: CORETYPE and
#: L2_SIZE stay as the user set them).
BENCH_ENV = {"GOMP_SPINCOUNT": "10000", "OPENBLAS_THREAD_TIMEOUT": "4"}
#: The thread-pool variables the suite's header and the report show.
OMP_ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OPENBLAS_THREAD_TIMEOUT")


def benchmarks_dir():
    """The folder of the installed ``fastnn.benchmarks`` package, or a clear error."""
    spec = importlib.util.find_spec("fastnn.benchmarks")
    path = Path(next(iter(spec.submodule_search_locations))) if spec else None
    if path is None or not (path / "conftest.py").is_file():
        raise FileNotFoundError(
            f"fastnn's benchmark suite (fastnn.benchmarks) is not installed"
            f"{f' at {path}' if path else ''}; reinstall fastnn, or pass --from-json FILE")
    return path


def require_report_extra():
    """RuntimeError naming the install command when the ``report`` extra is missing."""
    missing = [m for m in ("pytest", "pytest_benchmark", "matplotlib")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise RuntimeError(f"the report needs {', '.join(missing)}, not installed here: "
                           f"pip install \"fastnn[report]\" (in a checkout: "
                           f"pip install -e \".[report]\")")


#: The pytest configuration the suite runs under, whatever folder it is run
#: from and whatever pytest configuration is found above it.
_INI = "[pytest]\naddopts =\nfilterwarnings =\n    error::RuntimeWarning\n"


def _pytest(args, env, cwd):
    return subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


class _Progress:
    """A rich bar on a terminal; else one plain line per finished benchmark on stderr."""

    def __init__(self, console):
        self.bar = None
        self.total = None
        self.done = 0
        self.start = time.perf_counter()
        if console is not None and console.is_terminal:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self.bar = Progress(TextColumn("[bold]benchmarks[/]"), BarColumn(),
                                MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.description}"), console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("collecting", total=None)
        self.plain = console is not None and self.bar is None

    def collected(self, n):
        self.total = n
        if self.bar is not None:
            self.bar.update(self.task, total=n)
        elif self.plain:
            print(f"fastnn: running {n} benchmark groups", file=sys.stderr, flush=True)

    def finished(self, test, status):
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=test[:50])
        elif self.plain:
            print(f"fastnn: [{self.done}/{self.total or '?'}] {test} {status.lower()} "
                  f"({time.perf_counter() - self.start:.0f} s)", file=sys.stderr, flush=True)

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


def run(json_path, *, quick=False, select=None, console=None):
    """Run the suite, writing pytest-benchmark JSON to ``json_path``.

    Parameters
    ----------
    quick : bool
        Fewer rounds, smaller sweeps, no minute-long rungs.
    select : str, optional
        A pytest ``-k`` expression (``fastnn bench`` runs only the ladder).
    console : rich.console.Console, optional
        Progress: a bar when it is a terminal, else plain lines on stderr; None
        runs silently.

    Returns
    -------
    dict
        ``{"passed", "failed", "skipped", "log"}``; the JSON is at ``json_path``.
    """
    require_report_extra()
    bench = benchmarks_dir()
    mode = "quick" if quick else "full"
    # The run is a pytest session of its own: launched from inside a
    # pytest-xdist worker it would inherit PYTEST_XDIST_WORKER, and
    # pytest-benchmark then disables itself as if it ran under xdist.
    env = {**BENCH_ENV, **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")},
           "FASTNN_BENCH": mode}
    counts = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0, "ERROR": 0}
    log = []
    progress = _Progress(console)
    with tempfile.TemporaryDirectory(prefix="fastnn-suite-") as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text(_INI)
        files = [str(f) for f in sorted(bench.glob("bench_*.py"))]
        args = ["-c", str(ini), f"--rootdir={bench}", "-p", "no:cacheprovider", *files,
                *(["-k", select] if select else []), "-v", "-rs", "--benchmark-enable",
                "--benchmark-only", f"--benchmark-json={Path(json_path).resolve()}",
                "--benchmark-sort=name"]
        proc = _pytest(args, env, tmp)
        try:
            for line in proc.stdout:
                log.append(line)
                collected = _COLLECTED.search(line)
                if collected:
                    progress.collected(int(collected.group(1)) - int(collected.group(2) or 0))
                match = _RESULT.match(line.strip())
                if match:
                    status = match.group(2)
                    counts[status] = counts.get(status, 0) + 1
                    progress.finished(match.group(1).split("/")[-1], status)
            proc.wait()
        finally:
            progress.stop()
    result = {"passed": counts["PASSED"], "failed": counts["FAILED"] + counts["ERROR"],
              "skipped": counts["SKIPPED"], "returncode": proc.returncode, "log": "".join(log)}
    if not Path(json_path).is_file():
        tail = "".join(log[-30:])
        raise RuntimeError(f"the benchmark run wrote no JSON (pytest exit {proc.returncode}):\n{tail}")
    return result


def attach(json_path, key, value):
    """Store ``value`` under ``key`` in the benchmark JSON (machine probe, mode)."""
    with open(json_path) as f:
        data = json.load(f)
    data[key] = value
    with open(json_path, "w") as f:
        json.dump(data, f, indent=1, default=str)
