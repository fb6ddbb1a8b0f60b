"""The performance report: REPORT.md with all seven sections and valid PNG plots.

Rendering runs from a small pytest-benchmark JSON built here (the real suite
takes a minute); one test runs the real suite on a single benchmark to show
the runner and the JSON round trip work.
"""

import json
import math
import re

import matplotlib.image
import pytest

from fastnn.cli import main
from fastnn.report import render, results, suite
from fastnn.report import workloads as wl

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

MACHINE = {
    "cpu": {"model": "Test CPU", "arch": "X86_64", "hz_advertised": "2.5 GHz",
            "logical_cores": 2, "simd": ["avx2", "avx512f"]},
    "platform": "test",
    "blas": [{"internal_api": "openblas", "version": "0.3", "num_threads": 2,
              "architecture": "Haswell", "filepath": "/x/libopenblas.so"}],
    "versions": {"python": "3.11", "numpy": "2.4"},
    "backends": {"numpy": {"available": True, "description": "vectorized"},
                 "numba": {"available": True, "description": "compiled",
                           "info": {"threads": 2},
                           "simd_evidence": {"tanh_array": {"packed": 22, "scalar": 0}}},
                 "cython": {"available": False, "reason": "not built"}},
    "peak_gflops": {"float64": 40.0, "float32": 80.0},
    "gemm_probe_n": 1024,
    "memory_gbps": 20.0,
}


def _bench(group, name, median, **info):
    info.setdefault("iterations", 1)
    return {"group": group, "name": name, "stats": {"median": median, "rounds": 3},
            "extra_info": info}


def _data():
    benches = []
    for w in wl.WORKLOADS.values():
        for impl, t in [("numpy", 1e-3), ("numba", 4e-4), ("peer:torch", 2e-3)]:
            benches.append(_bench(f"ladder-{w.name}", f"test_ladder[{w.name}-{impl}]", t * 10,
                                  iterations=10, impl=impl, workload=w.name, m=w.m,
                                  flops=wl.flops(w), bytes=wl.min_bytes(w), first_call_s=0.1,
                                  max_rel_diff_vs_numpy=0.0 if impl == "numpy" else 1e-15))
    for m in (100, 1000, 10000):
        for impl, t in [("numpy", 20e-6 + m * 1e-8), ("numba", 2e-6 + m * 5e-8)]:
            benches.append(_bench(f"sweep-m={m}", f"test_sweep[{m}-{impl}]", t, impl=impl,
                                  workload="sweep", m=m, flops=1, bytes=1))
    benches += [_bench("dot-1e6", "test_dot[python loop]", 0.1, impl="python loop"),
                _bench("dot-1e6", "test_dot[np.dot]", 3e-4, impl="np.dot")]
    for variant, t in [("on", 1e-3), ("off", 4e-3)]:
        benches.append(_bench("simd-vectorize-numba", f"v[{variant}]", t, impl=f"numba {variant}",
                              backend="numba", variant=variant, workload="sweep", m=1000,
                              simd_evidence={"tanh_array": {"packed": 22 if variant == "on" else 0,
                                                            "scalar": 22}}))
    for variant, t in [("float64", 2e-3), ("float32", 1e-3)]:
        benches.append(_bench("simd-dtype-wide", f"d[{variant}]", t, impl="numba",
                              variant=variant, workload="wide", m=10000))
    for variant, t in [("1 thread", 2e-3), ("2 threads", 1.1e-3)]:
        benches.append(_bench("simd-threads-wide", f"t[{variant}]", t, impl="numba",
                              variant=variant, workload="wide", m=10000))
    return {"version": "5.2.3", "datetime": "now", "benchmarks": benches,
            "fastnn_machine": MACHINE, "fastnn_mode": "quick"}


def _check_report(out):
    text = (out / "REPORT.md").read_text()
    for section in render.SECTIONS:
        assert f"## {section}" in text
    pngs = sorted(out.glob("*.png"))
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert f"]({png.name})" in text  # every plot is shown in the report
    return text, {p.name for p in pngs}


def test_report_from_json_has_seven_sections_and_valid_pngs(tmp_path, capsys):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(_data()))
    assert main(["report", "--from-json", str(path), "--out", str(tmp_path / "out")]) == 0
    assert "REPORT.md" in capsys.readouterr().out
    text, pngs = _check_report(tmp_path / "out")
    assert pngs == {"ladder.png", "scaling.png", "ablation.png", "efficiency.png"}
    # The numbers land where they belong: numba 2.5x numpy on every ladder row,
    # vectorization 4x, float32 2x, the lecture's demo 333x.
    assert text.count("| 2.5× |") >= len(wl.WORKLOADS)
    assert "| 4× |" in text and "| 2× |" in text and "333×" in text
    crossing = re.search(r"m ≈ ([\d,]+): numpy becomes faster than numba", text)
    assert crossing and 100 < int(crossing.group(1).replace(",", "")) < 1000


def test_report_without_benchmarks_still_has_every_section(tmp_path):
    data = {"benchmarks": [], "fastnn_machine": MACHINE}
    path = render.write_report(data, MACHINE, tmp_path)
    text, pngs = _check_report(tmp_path)
    assert path.name == "REPORT.md" and pngs == set()
    assert "No ladder benchmarks" in text


def test_per_iteration_time_divides_by_iterations():
    rows = results.rows({"benchmarks": [_bench("ladder-planar", "x", 0.5, iterations=100,
                                               impl="numpy", workload="planar")]}, "ladder-")
    assert rows[0]["seconds"] == pytest.approx(5e-3, rel=1e-12)


def test_crossover_is_interpolated_log_log():
    # a: 1 -> 10, b: 2 -> 5 between m = 100 and 1000: equal at sqrt(100 * 1000).
    cross = results.crossovers({"a": {100: 1.0, 1000: 10.0}, "b": {100: 2.0, 1000: 5.0}})
    assert len(cross) == 1
    m_star, faster_above, faster_below = cross[0]
    assert m_star == pytest.approx(math.sqrt(100 * 1000), rel=1e-12)
    assert (faster_above, faster_below) == ("b", "a")


def test_flops_of_planar_iteration():
    # layer 1 (4x2): forward + dW; layer 2 (1x4): forward + dW + dA.
    assert wl.flops(wl.WORKLOADS["planar"]) == 2 * 400 * (4 * 2 * 2 + 1 * 4 * 3)


def test_suite_runner_writes_benchmark_json(tmp_path):
    json_path = tmp_path / "dot.json"
    run = suite.run(json_path, quick=True, select="test_dot and np.dot")
    assert run["failed"] == 0 and run["passed"] == 1, run["log"][-2000:]
    data = results.load(json_path)
    (row,) = results.rows(data, "dot-1e6")
    assert row["impl"] == "np.dot" and row["seconds"] > 0


def test_quick_report_end_to_end(tmp_path):
    # The README's main job, as a user runs it: the whole quick suite, then the
    # report with its seven sections and plots (about a minute here).
    import subprocess
    import sys

    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "fastnn", "report", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(out / "REPORT.md") in proc.stdout
    text, pngs = _check_report(out)
    assert pngs == {"ladder.png", "scaling.png", "ablation.png", "efficiency.png"}
    # Every available backend has a measured time on every ladder row it runs.
    for impl in ("numpy", "numba", "cython"):
        assert re.search(rf"\n\| {impl} \| [\d.]+ [mµn]?s \|", text), impl
