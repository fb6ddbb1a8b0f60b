"""The report's "sweeps" section: its verdicts and text from the sweep rows."""


def _row(workload, impl, engine, seconds, threads=(1,)):
    return {"workload": workload, "impl": impl, "engine": engine,
            "n_jobs": 1 if engine == "serial" else 2, "seconds": seconds, "fits": 16,
            "threads": list(threads), "threads_why": [f"auto: {engine}"]}


def test_the_sweeps_section_gives_each_verdict():
    from fastnn.report import sweeps as report

    rows = [_row("grid", "cython", "serial", 10.0, (2,)), _row("grid", "cython", "loky", 10.9),
            _row("grid", "numba", "serial", 10.0), _row("grid", "numba", "loky", 12.0),
            _row("digits16", "cython", "serial", 8.0), _row("digits16", "cython", "dask", 4.9),
            _row("digits16", "numba", "serial", 8.0), _row("digits16", "numba", "dask", 5.1)]
    got = {(w, i, kind): ok for w, i, kind, ok, _ in report.verdicts({"rows": rows})}
    assert got == {("grid", "cython", "no slower"): True,       # within the 10 % of noise
                   ("grid", "numba", "no slower"): False,
                   ("digits16", "cython", "no slower"): True,
                   ("digits16", "cython", ">= 1.6x"): True,      # 8 / 4.9 = 1.63
                   ("digits16", "numba", "no slower"): True,
                   ("digits16", "numba", ">= 1.6x"): False}      # 8 / 5.1 = 1.57
    text = report.section({"cpu": "AMD EPYC", "cpus": 2, "load_before": [0.5],
                           "load_after": [1.0], "rows": rows})
    assert "| grid | cython | 10.00 s, threads 2 | 10.90 s (0.92x), threads 1 |" in text
    assert "AMD EPYC" in text and "**slower in parallel**" in text and "auto: loky" in text
    bench = {"benchmarks": [{"group": "sweeps", "extra_info": {"rows": rows[:2]}},
                            {"group": "ladder-planar", "extra_info": {}}]}
    assert report.from_benchmarks(bench)["rows"] == rows[:2]
    assert "No sweep was measured" in report.section({"rows": []})
