"""fastnn's performance report: run the benchmark suite (or read its saved
JSON), probe the machine, and write ``REPORT.md`` with PNG plots.

``generate(out_dir, quick=False, from_json=None)`` is what ``fastnn report``
calls: :mod:`.suite` runs the suite (``fastnn.benchmarks``), :mod:`.machine`
probes the CPU and its ceilings, :mod:`.results` builds the results model
once, :mod:`.verdicts` judges it (numbers and booleans), :mod:`.phrasing` puts
the verdicts in words, :mod:`.plots` draws every PNG and :mod:`.markdown` lays
out REPORT.md.
"""

import os
import time
from pathlib import Path

__all__ = ["generate", "check_out_dir"]


def check_out_dir(out_dir):
    """Create ``out_dir`` (and parents) or raise ValueError naming it: before any
    minutes are spent measuring."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"--out {out_dir}: cannot create the output folder ({exc.strerror})") \
            from None
    if not os.access(out, os.W_OK):
        raise ValueError(f"--out {out_dir}: the output folder is not writable")
    return out


def generate(out_dir, *, quick=False, from_json=None, console=None):
    """Write ``out_dir/REPORT.md`` (+ PNGs); return ``(path, summary)``.

    With ``from_json`` the suite is not run: the report is made from that
    JSON, using the machine probe saved in it (or probing now if it has none).
    Otherwise the suite runs, and its JSON -- with the probe attached -- is kept
    as ``out_dir/benchmarks.json`` for later re-rendering.
    """
    from . import suite

    suite.require_report_extra()
    from . import machine, markdown, results

    out = check_out_dir(out_dir)
    start = time.perf_counter()
    summary = {}
    if from_json is not None:
        data = results.load(from_json)  # its errors name the file
        probe = data.get("fastnn_machine") or machine.probe(quick=True)
        source = str(from_json)
    else:
        json_path = out / "benchmarks.json"
        if console is not None:
            console.print("[bold]probing the machine[/] (GEMM peak, L3 and DRAM bandwidth) ...")
        probe = machine.probe(quick=quick)
        summary = suite.run(json_path, quick=quick, console=console)
        # Probe the ceilings again after the run and keep the best: on a shared
        # machine a probe disturbed by other load would understate the peak.
        n = probe["gemm_probe_n"]
        for dtype in ("float64", "float32"):
            probe["peak_gflops"][dtype] = max(probe["peak_gflops"][dtype],
                                              machine.gemm_peak(dtype, n))
        probe["load_average_after"] = machine.load()
        probe["memory_gbps"] = max(probe["memory_gbps"],
                                   machine.memory_bandwidth(128 if quick else 512))
        if probe["l3_bytes"]:
            probe["l3_gbps"] = max(probe["l3_gbps"], machine.l3_bandwidth(probe["l3_bytes"]))
        suite.attach(json_path, "fastnn_machine", probe)
        suite.attach(json_path, "fastnn_mode", "quick" if quick else "full")
        data = results.load(json_path)
        source = json_path.name
    try:
        res = results.build(data, probe, source=source)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        if from_json is None:
            raise
        raise ValueError(f"--from-json {from_json}: not a benchmark JSON this fastnn can read "
                         f"({type(exc).__name__}: {exc})") from None
    path = markdown.write(res, out)
    summary = {k: v for k, v in summary.items() if k != "log"}
    summary["seconds"] = time.perf_counter() - start
    summary["benchmarks"] = len(data["benchmarks"])
    return path, summary
