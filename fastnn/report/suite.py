"""Running the benchmark suite: pytest-benchmark in a subprocess, with progress.

The suite lives in the source checkout's ``benchmarks/`` directory (it is a
set of tests, not part of the installed package), so ``fastnn report`` and
``fastnn bench`` need a checkout -- ``pip install -e .`` gives one.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["benchmarks_dir", "run"]

#: pytest-benchmark settings per mode: rounds and time budget per benchmark.
SETTINGS = {
    "quick": ["--benchmark-min-rounds=3", "--benchmark-max-time=0.05"],
    "full": ["--benchmark-min-rounds=7", "--benchmark-max-time=1.0"],
}
_COLLECTED = re.compile(r"collected (\d+) items?(?: / (\d+) deselected)?")
_RESULT = re.compile(r"^(\S+::\S+)\s+(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)")

#: Environment defaults of the benchmark suite (a user's own settings win).
#: Idle libgomp threads (numba's omp layer, fastnn_ext, PyTorch) spin before
#: they sleep; by default long enough (~ms) that on 2 cores the pool of one
#: backend slowed the next backend's BLAS up to 8x (numpy deep 17 ms -> 136 ms
#: after a numba run). OMP_WAIT_POLICY=PASSIVE (no spin) cures that but puts a
#: futex wake-up in every parallel region: cython's 2-thread planar at
#: m = 2000 went from 9 to 170 us per iteration. A short spin keeps both.
BENCH_ENV = {"GOMP_SPINCOUNT": "10000"}
#: The OpenMP variables the suite's header and the report show.
OMP_ENV_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def benchmarks_dir():
    """The checkout's ``benchmarks/`` directory, or a clear error."""
    root = Path(__file__).resolve().parents[2]
    path = root / "benchmarks"
    if not (path / "conftest.py").is_file():
        raise FileNotFoundError(
            f"benchmark suite not found at {path}; run from a source checkout installed with "
            f"`pip install -e .`, or pass --from-json FILE")
    return path


def _pytest(args, env, cwd):
    return subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)


def run(json_path, *, quick=False, select=None, console=None):
    """Run the suite, writing pytest-benchmark JSON to ``json_path``.

    Parameters
    ----------
    quick : bool
        Fewer rounds, smaller sweeps, no minute-long rungs (~1 minute here).
    select : str, optional
        A pytest ``-k`` expression (``fastnn bench`` runs only the ladder).
    console : rich.console.Console, optional
        Where progress is drawn; None runs silently.

    Returns
    -------
    dict
        ``{"passed", "failed", "skipped", "log"}``; the JSON is at ``json_path``.
    """
    bench = benchmarks_dir()
    mode = "quick" if quick else "full"
    env = {**BENCH_ENV, **os.environ, "FASTNN_BENCH": mode}
    common = ["-p", "no:cacheprovider", str(bench)] + (["-k", select] if select else [])
    args = [*common, "-v", "-rs", "--benchmark-enable", "--benchmark-only",
            f"--benchmark-json={json_path}", "--benchmark-sort=name", *SETTINGS[mode]]
    counts = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0, "ERROR": 0}
    log = []
    proc = _pytest(args, env, bench.parent)
    progress = None
    if console is not None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("[bold]benchmarks[/]"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("{task.description}"),
                            console=console, transient=True)
        progress.start()
        task = progress.add_task("collecting", total=None)
    try:
        for line in proc.stdout:
            log.append(line)
            collected = _COLLECTED.search(line)
            if collected and progress is not None:
                selected = int(collected.group(1)) - int(collected.group(2) or 0)
                progress.update(task, total=selected)
            match = _RESULT.match(line.strip())
            if match:
                status = match.group(2)
                counts[status] = counts.get(status, 0) + 1
                if progress is not None:
                    progress.update(task, advance=1,
                                    description=match.group(1).split("::")[-1][:50])
        proc.wait()
    finally:
        if progress is not None:
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
