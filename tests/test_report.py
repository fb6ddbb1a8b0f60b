"""The performance report: the results model, its noise rules, and REPORT.md with
all seven sections and valid PNG plots.

Rendering runs from a small suite JSON built here (the real suite takes
minutes; tests/test_packaging.py runs it end to end from an installed wheel);
one test runs the real suite on the dot demo to show the runner and the JSON
round trip work.
"""

import itertools
import json
import math
import re

import matplotlib.image
import matplotlib.pyplot as plt
import pytest

from fastnn.cli import main
from fastnn.report import _ticks, generate, markdown, plots, results, suite, verdicts
from fastnn.report import machine as machine_probe
from fastnn.report import workloads as wl

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

EVIDENCE = {"tanh float64": {"packed": 30, "packed_xmm": 0, "packed_ymm": 0, "packed_zmm": 30,
                             "scalar": 2, "libmvec_calls": {}},
            "update float64": {"packed": 0, "packed_xmm": 0, "packed_ymm": 0, "packed_zmm": 0,
                               "scalar": 9, "libmvec_calls": {}}}


def _machine(load=0.1, load_after=0.2):
    return {
        "cpu": {"model": "Test CPU", "arch": "X86_64", "hz_advertised": "2.5 GHz",
                "logical_cores": 2, "simd": ["avx2", "avx512f"]},
        "platform": "test", "load_average": load, "load_average_after": load_after,
        "blas": [{"internal_api": "openblas", "version": "0.3", "num_threads": 2,
                  "architecture": "SkylakeX", "filepath": "/x/libopenblas.so"}],
        "versions": {"python": "3.11", "numpy": "2.4"},
        "backends": {"numpy": {"available": True, "description": "vectorized"},
                     "numba": {"available": True, "compiled": True, "hot_code": True,
                               "info": {"isa": "avx2", "threads": 2},
                               "simd_evidence": EVIDENCE},
                     "cython": {"available": False, "reason": "not built"}},
        "peak_gflops": {"float64": 40.0, "float32": 80.0}, "gemm_probe_n": 1024,
        "memory_gbps": 20.0,
    }


def _samples(t, jitter=0.02):
    """Five rounds around t: spread `jitter` of t either side."""
    return [t * (1 + jitter * k) for k in (-1, -0.5, 0, 0.5, 1)]


def _group(group, impls, **info):
    records = {}
    for impl, (t, extra) in impls.items():
        records[impl] = {"samples": _samples(t, extra.pop("jitter", 0.02)), "iterations": 10,
                         "first_call_s": 0.1, **extra}
    return {"group": group, "name": f"test[{group}]", "stats": {"median": 1.0, "rounds": 5},
            "extra_info": {"rounds": 5, "impls": records, "skipped": {}, **info}}


def _data(load=0.1):
    benches = []
    for w in wl.WORKLOADS.values():
        impls = {impl: (t, {"flops": wl.flops(w), "bytes": wl.min_bytes(w),
                            "max_rel_diff_vs_numpy": 0.0 if impl == "numpy" else 1e-15,
                            "check_passed": True, "check_iterations": 10})
                 for impl, t in [("numpy", 1e-3), ("numba", 4e-4), ("peer:torch", 2e-3),
                                 ("peer:jax", 4.02e-4)]}
        if w.name == "planar":
            impls["loops"] = (1e-2, {})
            impls["per_example"] = (4e-2, {})
        benches.append(_group(f"ladder-{w.name}", impls, workload=w.name, m=w.m))
    for m in (100, 1000, 10000):
        benches.append(_group(f"sweep-m={m}", {"numpy": (20e-6 + m * 1e-8, {}),
                                               "numba": (2e-6 + m * 5e-8, {})},
                              workload="sweep", m=m))
    benches.append(_group("dot-1e6", {"python loop": (0.1, {}), "np.dot": (3e-4, {})}))
    benches.append(_group("simd-vectorize", {
        "numba vectorize on": (1e-3, {"backend": "numba", "variant": "on", "isa": "avx2",
                                      "threads": 1}),
        "numba vectorize off": (4e-3, {"backend": "numba", "variant": "off", "isa": "avx2",
                                       "threads": 1,
                                       "simd_evidence": {"tanh float64": {"packed": 0,
                                                                          "scalar": 40}}})},
        workload="sweep", m=1000))
    benches.append(_group("simd-dtype-wide", {
        "numba float64": (2e-3, {"backend": "numba", "variant": "float64", "threads": 1}),
        "numba float32": (1e-3, {"backend": "numba", "variant": "float32", "threads": 1})},
        workload="wide", m=10000))
    benches.append(_group("simd-threads-wide", {
        "numba 1 thread": (2e-3, {"backend": "numba", "variant": "1 thread", "jitter": 0.5,
                                  "threads": 1}),
        "numba 2 threads": (1.9e-3, {"backend": "numba", "variant": "2 threads", "threads": 2})},
        workload="wide", m=10000))
    return {"version": "5.2.3", "datetime": "now", "benchmarks": benches,
            "fastnn_machine": _machine(load), "fastnn_mode": "quick"}


def _report(tmp_path, data):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(data))
    assert main(["report", "--from-json", str(path), "--out", str(tmp_path / "out")]) == 0
    return _check_report(tmp_path / "out")


def _check_report(out):
    text = (out / "REPORT.md").read_text(encoding="utf-8")
    for section in markdown.SECTIONS:
        assert f"## {section}" in text
    pngs = sorted(out.glob("*.png"))
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert f"]({png.name})" in text  # every plot is shown in the report
    return text, {p.name for p in pngs}


def _write(res, out):
    """``res``'s report written to ``out`` and checked: ``(path, text, pngs)``."""
    path = markdown.write(res, out)
    return (path, *_check_report(out))


def _empty_report(out):
    """The report of a run without benchmarks, on the test machine: ``(path, text, pngs)``."""
    return _write(results.build({"benchmarks": []}, _machine()), out)


def test_report_from_json_has_seven_sections_plots_and_computed_sentences(tmp_path):
    text, pngs = _report(tmp_path, _data())
    assert pngs == {"ladder.png", "scaling.png", "ablation.png", "efficiency.png"}
    # Separated spreads give a ratio of medians; overlapping ones give no claim.
    assert "numba is 2.5× faster than numpy" in text
    assert "numba and jax (peer) are within each other's noise" in text
    assert "numba is 2.5× faster than jax" not in text
    assert "np.dot is 333× faster than python loop" in text
    assert "| 4× |" in text and "| 2× |" in text  # vectorization and float32 speedups
    # 1 vs 2 threads overlap (the 1-thread timing is noisy): no speedup claimed, spread shown.
    assert "numba (wide, m = 10,000) changed nothing beyond the noise" in text
    assert "numba (planar 2-4-1, m = 1,000) ran 4× faster" in text
    assert "(IQR " in text
    crossing = re.search(r"above m ≈ ([\d,]+) numpy is faster than numba", text)
    assert crossing and 100 < int(crossing.group(1).replace(",", "")) < 1000
    # per_example's slowness on the tiny planar net is explained.
    assert "per_example is 4× slower than loops" in text and "set-up every NumPy call" in text
    # No busy warning on a quiet machine; no text about columns that are not shown.
    assert "machine was busy" not in text
    assert "Gram" not in text.split("## 3.")[0].split("## 2.")[1]
    assert "BLAS products" not in text
    # The SIMD pairs ran on one thread, and the report says so.
    assert "The vectorization and dtype pairs ran on one thread" in text
    # Nothing a reader sees points to an issue tracker.
    assert not re.search(r"\bissues?\b|#\d", text, re.IGNORECASE)


def test_busy_machine_gets_a_warning_at_the_top(tmp_path):
    text, _ = _report(tmp_path, _data(load=3.5))
    assert text.index("Warning: the machine was busy") < text.index("## 1. Machine")
    assert "3.5 before" in text


def test_simd_evidence_is_a_short_table_naming_the_path(tmp_path):
    text, _ = _report(tmp_path, _data())
    section = text.split("## 6. SIMD evidence")[1].split("## 7.")[0]
    assert "**numba** — kernel set `avx2`: 1 of 2 hot kernels are SIMD" in section
    assert "| tanh float64 | 30 | 30/0/0 | 2 | — | SIMD, 512-bit |" in section
    assert "| update float64 | 0 | 0/0/0 | 9 | — | scalar only |" in section
    assert "{" not in section  # no raw dicts


def test_blas_baseline_is_shown_both_ways_when_openblas_is_pinned(tmp_path):
    data = _data()
    data["fastnn_machine"]["blas_env"] = {"OPENBLAS_CORETYPE": "Haswell"}
    data["fastnn_machine"]["peak_gflops_blas_default"] = {"float64": 55.0, "float32": 110.0}
    text, _ = _report(tmp_path, data)
    machine = text.split("## 2.")[0]
    assert "| BLAS environment | OPENBLAS_CORETYPE=Haswell |" in machine
    assert "OPENBLAS_L2_SIZE unset (in that probe's process only) | 55.0 GFLOP/s" in machine


def test_report_without_benchmarks_still_has_every_section(tmp_path):
    path, text, pngs = _empty_report(tmp_path)
    assert path.name == "REPORT.md" and pngs == set()
    assert "No ladder benchmarks" in text


def test_timing_quartiles_and_spread():
    t = results.Timing("x", [5.0, 1.0, 3.0, 2.0, 4.0])
    assert (t.min, t.q1, t.median, t.q3) == (1.0, 2.0, 3.0, 4.0)
    assert t.spread == pytest.approx(2 / 3) and t.wide


def test_compare_claims_only_separated_spreads():
    fast = results.Timing("a", [1.0, 1.1, 1.2])
    slow = results.Timing("b", [2.0, 2.2, 2.4])
    noisy = results.Timing("c", [0.9, 1.1, 2.5])
    assert results.compare(fast, slow) == ("faster", pytest.approx(2.2 / 1.1))
    assert results.compare(slow, fast)[0] == "slower"
    assert results.compare(fast, noisy)[0] == "overlap"


def test_crossover_is_interpolated_log_log_and_needs_separation():
    def flat(t):
        return results.Timing("x", [t * 0.99, t, t * 1.01])

    # a: 1 -> 10, b: 2 -> 5 between m = 100 and 1000: equal at sqrt(100 * 1000).
    series = {"a": {100: flat(1.0), 1000: flat(10.0)}, "b": {100: flat(2.0), 1000: flat(5.0)}}
    (m_star, above, below), = results.crossovers(series)
    assert m_star == pytest.approx(math.sqrt(100 * 1000), rel=1e-12)
    assert (above, below) == ("b", "a")
    series["b"][1000] = results.Timing("x", [4.0, 9.0, 30.0])  # noise hides the swap
    assert results.crossovers(series) == []


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON file"),
    ('{"no": "benchmarks"}', "not a pytest-benchmark JSON file"),
    ('{"benchmarks": [{"group": "ladder-planar", "extra_info": {}}]}', "older fastnn"),
])
def test_from_json_errors_name_the_file(tmp_path, capsys, content, message):
    path = tmp_path / "saved.json"
    path.write_text(content)
    assert main(["report", "--from-json", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err and err.count("\n") == 1


def test_out_dir_is_checked_before_anything_runs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="--out .*cannot create"):
        generate(blocker / "report")


def test_flops_of_planar_iteration():
    # layer 1 (4x2): forward + dW; layer 2 (1x4): forward + dW + dA.
    assert wl.flops(wl.WORKLOADS["planar"]) == 2 * 400 * (4 * 2 * 2 + 1 * 4 * 3)


def test_suite_runner_writes_interleaved_samples(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the suite runs from the installed package, any folder
    # As inside a pytest-xdist worker: the suite's own session must still
    # benchmark (pytest-benchmark turns itself off where it sees this).
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    json_path = tmp_path / "dot.json"
    run = suite.run(json_path, quick=True, select="test_dot")
    assert run["failed"] == 0 and run["passed"] == 1, run["log"][-2000:]
    res = results.build(results.load(json_path), {})
    assert set(res.dot) == {"python loop", "np.dot", "numba loop"} or set(res.dot) == {
        "python loop", "np.dot"}
    assert all(len(t.samples) == res.rounds == 5 for t in res.dot.values())
    assert results.compare(res.dot["np.dot"], res.dot["python loop"])[0] == "faster"


def test_ablation_at_the_default_thread_count_is_said(tmp_path):
    """A benchmark JSON whose SIMD pairs do not record one thread (an older suite)."""
    data = _data()
    for bench in data["benchmarks"]:
        if bench["group"].startswith("simd-"):
            for record in bench["extra_info"]["impls"].values():
                record.pop("threads", None)
    section = _report(tmp_path, data)[0].split("## 4.")[1].split("## 5.")[0]
    assert "ran at the default thread count" in section and "ran on one thread" not in section


# -- the bandwidth ceiling of each workload ---------------------------------------------

L3 = 32 * 2**20


def test_the_bandwidth_ceiling_is_the_level_the_working_set_reaches():
    machine = {"l3_bytes": L3, "l3_gbps": 150.0, "memory_gbps": 20.0}
    assert verdicts.bandwidth_ceiling(machine, L3 // 2) == ("L3", 150.0)
    assert verdicts.bandwidth_ceiling(machine, L3) == ("L3", 150.0)
    assert verdicts.bandwidth_ceiling(machine, L3 + 1) == ("DRAM", 20.0)
    # Without an L3 probe (an older JSON) every working set is held to DRAM.
    assert verdicts.bandwidth_ceiling({"memory_gbps": 20.0}, 1000) == ("DRAM", 20.0)
    # logistic regression's X is 20 MB: L3 here; the wide net's arrays are not.
    sizes = {n: wl.working_set(w) for n, w in wl.WORKLOADS.items()}
    assert 12288 * 209 * 8 < sizes["logreg"] < L3 < sizes["wide"]


def test_efficiency_holds_each_workload_to_its_own_ceiling(tmp_path):
    data = _data()
    data["fastnn_machine"].update(l3_bytes=L3, l3_gbps=150.0, memory_gbps=20.0)
    text, _ = _report(tmp_path, data)
    section = text.split("## 5. Efficiency")[1].split("## 6.")[0]
    # numba on logreg: 51.9 GB/s (the bytes of the fixture over 0.4 ms): 35% of L3's
    # 150, where against the DRAM copy it read as 259%.
    logreg = wl.WORKLOADS["logreg"]
    gbps = wl.min_bytes(logreg) / 4e-4 / 1e9
    assert f"| {logreg.title} | numba | " in section
    row = next(line for line in section.splitlines()
               if line.startswith(f"| {logreg.title} | numba |"))
    assert f"| L3, 150 | {100 * gbps / 150:.0f}% |" in row
    wide = next(line for line in section.splitlines()
                if line.startswith(f"| {wl.WORKLOADS['wide'].title} | numba |"))
    assert "| DRAM, 20 |" in wide
    assert "logreg (memory-bound, a 19.8 MiB working set that fits in L3)" in section
    assert "**150.0 GB/s** from L3" in section and "**20.0 GB/s** from DRAM" in section
    machine = text.split("## 2.")[0]
    assert "| L3 cache | 32 MiB |" in machine and "| 150.0 GB/s |" in machine


def test_the_probe_reads_the_l3_size_and_measures_its_bandwidth():
    assert [machine_probe._size(x) for x in ("32768K", "32 MiB", "32768 KB", L3, "512K")] == [
        L3, L3, L3, L3, 512 * 1024]
    assert machine_probe._size("unknown") is None and machine_probe._size(None) is None
    size = machine_probe.l3_bytes()
    assert size is None or size >= 2**20
    assert machine_probe.l3_bandwidth(4 * 2**20, repeats=3) > 0


# -- the plots -------------------------------------------------------------------------

def _tick_labels(ax, renderer):
    """The x tick labels drawn inside the view: (text, box) of major and minor ticks."""
    lo, hi = sorted(ax.get_xlim())
    out = []
    for ticks in (ax.xaxis.get_major_ticks(), ax.xaxis.get_minor_ticks()):
        for tick in ticks:
            loc, text = tick.get_loc(), tick.label1
            if text.get_visible() and text.get_text() and lo * 0.999 <= loc <= hi * 1.001:
                out.append((text.get_text(), text.get_window_extent(renderer)))
    return out


def test_ladder_log_axes_have_no_overlapping_tick_labels():
    # Medians within one decade (3 to 8 ms): matplotlib alone would label every minor tick.
    data = _data()
    for bench in data["benchmarks"]:
        if bench["group"] == "ladder-logreg":
            for t, record in zip((3.75e-3, 5.2e-3, 7.35e-3, 5.6e-3),
                                 bench["extra_info"]["impls"].values()):
                record["samples"] = _samples(t)
    res = results.build(data, _machine())
    fig = plots.ladder_figure(res)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        labels = _tick_labels(ax, renderer)
        assert len(labels) >= 2, (ax.get_title(), labels)
        for (a, box_a), (b, box_b) in itertools.combinations(labels, 2):
            assert not box_a.overlaps(box_b), (ax.get_title(), a, b)
    plt.close(fig)


def test_log_axes_label_their_decades_without_mathtext():
    """matplotlib's log labels are mathtext ("$\\mathdefault{10^{-3}}$"), which
    loads its math fonts and, with a font cache that lacks them, logs a line
    per font on the report's console."""
    fig, ax = plt.subplots()
    try:
        plots._log_decades(ax, 2e-3, 30)
        _ticks.tight(fig)
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_xticklabels()
                  if t.get_text() and ax.get_xlim()[0] <= t.get_position()[0] <= ax.get_xlim()[1]]
    finally:
        plt.close(fig)
    assert labels == ["10⁻³", "10⁻²", "10⁻¹", "10⁰", "10¹", "10²"]
    assert _ticks.decade_label(0.5) == "0.5" and _ticks.decade_label(1e5) == "10⁵"
