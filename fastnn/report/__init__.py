"""fastnn's performance report: run the benchmark suite (or read its saved
JSON), probe the machine, and write ``REPORT.md`` with PNG plots.

``generate(out_dir, quick=False, from_json=None)`` is what ``fastnn report``
calls; :mod:`.suite` runs pytest-benchmark, :mod:`.machine` probes the CPU,
:mod:`.results` reads the JSON, :mod:`.render` writes the report.
"""

import time
from pathlib import Path

__all__ = ["generate"]


def generate(out_dir, *, quick=False, from_json=None, console=None):
    """Write ``out_dir/REPORT.md`` (+ PNGs); return ``(path, summary)``.

    With ``from_json`` the suite is not run: the report is made from that
    pytest-benchmark JSON, using the machine probe saved in it (or probing now
    if it has none). Otherwise the suite runs, and its JSON -- with the probe
    attached -- is kept as ``out_dir/benchmarks.json`` for later re-rendering.
    """
    from . import machine, render, results, suite

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    summary = {}
    if from_json is not None:
        data = results.load(from_json)
        probe = data.get("fastnn_machine")
        if probe is None:
            probe = machine.probe(quick=True)
        mode = data.get("fastnn_mode", "unknown")
        source = str(from_json)
    else:
        json_path = out / "benchmarks.json"
        if console is not None:
            console.print("[bold]probing the machine[/] (GEMM peak, memory bandwidth) ...")
        probe = machine.probe(quick=quick)
        mode = "quick" if quick else "full"
        summary = suite.run(json_path, quick=quick, console=console)
        # Probe the ceilings again after the run and keep the best: on a shared
        # machine a probe disturbed by other load would understate the peak.
        n = probe["gemm_probe_n"]
        for dtype in ("float64", "float32"):
            probe["peak_gflops"][dtype] = max(probe["peak_gflops"][dtype],
                                              machine.gemm_peak(dtype, n))
        probe["load_average_after"] = machine._load()
        probe["memory_gbps"] = max(probe["memory_gbps"],
                                   machine.memory_bandwidth(128 if quick else 512))
        suite.attach(json_path, "fastnn_machine", probe)
        suite.attach(json_path, "fastnn_mode", mode)
        data = results.load(json_path)
        source = json_path.name
    path = render.write_report(data, probe, out, mode=mode, source=source)
    summary = {k: v for k, v in summary.items() if k != "log"}
    summary["seconds"] = time.perf_counter() - start
    summary["benchmarks"] = len(data["benchmarks"])
    return path, summary
