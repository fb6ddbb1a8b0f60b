"""The report's "sweeps" section: a sweep's wall time against ``n_jobs`` and
the engine, with the threads each fit used, and the two verdicts.

Input is what :mod:`fastnn.benchmarks.sweeps` measures -- ``{"cpu", "cpus",
"load_before", "load_after", "rows": [...]}`` from ``--json`` -- or the
benchmark suite's JSON, whose ``sweeps`` group carries the same rows in
``extra_info`` (:func:`from_benchmarks`). A row: ``workload`` ("grid",
"digits16", or the suite's small ones), ``impl``, ``engine`` ("serial",
"loky", "threading", "dask"), ``n_jobs``, ``seconds`` (median of
``samples``), ``fits``, ``threads`` (the distinct counts the fits ran on)
and ``threads_why``.

Verdicts, per workload and implementation, against its serial run:

- never slower in parallel: every parallel engine within :data:`NOISE` of
  the serial time or faster;
- the independent fits (``digits16``) at least :data:`SPEEDUP_2` times faster
  with 2 jobs.
"""

__all__ = ["NOISE", "SPEEDUP_2", "section", "from_benchmarks", "verdicts"]

#: A parallel sweep up to this much slower than the serial one counts as
#: "no slower" (run-to-run noise on a shared machine).
NOISE = 0.10
#: The speedup 2 jobs should give a sweep of independent fits.
SPEEDUP_2 = 1.6
#: The workloads whose fits are independent and equal: the speedup applies.
SPEEDUP_WORKLOADS = ("digits16",)
ENGINE_ORDER = ("serial", "loky", "threading", "dask", "ray")


def from_benchmarks(data):
    """The rows of a pytest-benchmark JSON's ``sweeps`` group (its
    ``extra_info["rows"]``), in a dict :func:`section` takes."""
    rows = [row for bench in data.get("benchmarks", []) if bench.get("group") == "sweeps"
            for row in bench.get("extra_info", {}).get("rows", [])]
    cpu = data.get("machine_info", {}).get("cpu") or {}
    return {"cpu": cpu.get("brand_raw"), "cpus": cpu.get("count"), "rows": rows}


def _by_cell(rows):
    cells = {}
    for row in rows:
        cells.setdefault((row["workload"], row["impl"]), {})[row["engine"]] = row
    return cells


def verdicts(result):
    """``[(workload, impl, kind, ok, text)]``: each verdict and the line saying it."""
    out = []
    for (workload, impl), engines in _by_cell(result["rows"]).items():
        serial = engines.get("serial")
        if serial is None:
            continue
        t1 = serial["seconds"]
        parallel = {e: r for e, r in engines.items() if e != "serial"}
        if not parallel:
            continue
        slower = {e: r["seconds"] / t1 for e, r in parallel.items()
                  if r["seconds"] > t1 * (1 + NOISE)}
        text = ", ".join(f"{e} {t1 / r['seconds']:.2f}x" for e, r in parallel.items())
        if slower:
            worst = ", ".join(f"{e} {ratio:.2f}x the serial time" for e, ratio in slower.items())
            out.append((workload, impl, "no slower", False,
                        f"**slower in parallel**: {worst} (speedups: {text})"))
        else:
            out.append((workload, impl, "no slower", True,
                        f"no slower in parallel (speedups over serial: {text})"))
        if workload in SPEEDUP_WORKLOADS:
            two = {e: t1 / r["seconds"] for e, r in parallel.items() if r["n_jobs"] == 2}
            short = {e: s for e, s in two.items() if s < SPEEDUP_2}
            ok = not short
            lines = ", ".join(f"{e} {s:.2f}x" for e, s in two.items())
            out.append((workload, impl, f">= {SPEEDUP_2}x", ok,
                        f"2 jobs {'reach' if ok else '**miss**'} {SPEEDUP_2}x: {lines}"))
    return out


def _threads(row):
    return ", ".join(str(t) for t in row["threads"]) or "?"


def section(result):
    """The markdown of the "sweeps" section for ``result`` (see the module doc)."""
    rows = result.get("rows", [])
    if not rows:
        return ("No sweep was measured (`python -m fastnn.benchmarks.sweeps --json "
                "sweeps.json` measures them).")
    engines = [e for e in ENGINE_ORDER if any(r["engine"] == e for r in rows)]
    head = ["workload", "implementation"] + [
        f"{e} (n_jobs={next(r['n_jobs'] for r in rows if r['engine'] == e)})" for e in engines]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (workload, impl), cells in _by_cell(rows).items():
        t1 = cells.get("serial", {}).get("seconds")
        out = [workload, impl]
        for engine in engines:
            row = cells.get(engine)
            if row is None:
                out.append("—")
                continue
            speed = "" if t1 is None or engine == "serial" else f" ({t1 / row['seconds']:.2f}x)"
            out.append(f"{row['seconds']:.2f} s{speed}, threads {_threads(row)}")
        lines.append("| " + " | ".join(out) + " |")
    why = {}
    for row in rows:
        for text in row.get("threads_why", []):
            why.setdefault(row["engine"], set()).add(text)
    machine = [f"CPU: {result.get('cpu') or 'unknown'}"]
    if result.get("cpus"):
        machine.append(f"{result['cpus']} CPUs")
    if result.get("load_before") is not None:
        machine.append(f"load average {result['load_before']} before, "
                       f"{result.get('load_after')} after")
    parts = [
        "The same sweep run serially and by each engine: wall time of the whole sweep (workers "
        "started and warmed first), its speedup over the serial run, and the threads each fit "
        "ran on (`threads_used_`; for MLPClassifier the BLAS pool where it ran). "
        + "; ".join(machine) + ".", "",
        *lines, "",
        "Why the fits got those threads:", "",
        *[f"- {engine}: " + " / ".join(sorted(texts)) for engine, texts in why.items()], "",
        f"Verdicts (parallel no slower than serial within {NOISE:.0%}; independent fits at "
        f"least {SPEEDUP_2}x faster with 2 jobs):", "",
        *[f"- {workload}, {impl}: {text}" for workload, impl, _, _, text in verdicts(result)],
    ]
    return "\n".join(parts)
