"""The mini-batch benchmark group and its report section (section 8).

The section renders from a small suite JSON built here; one group of the real
benchmark runs in its quick mode with a stand-in pytest-benchmark fixture (the
numpy backend and the course's NumPy loop only: seconds, not minutes), and its
JSON record feeds the report. No assertion depends on wall-clock times.
"""

import json
import re
import types

import numpy as np
import pytest

import fastnn
from fastnn import backends
from fastnn.benchmarks import _harness, peers
from fastnn.benchmarks import bench_minibatch as mb
from fastnn.report import results
from fastnn.report import workloads as wl

from _helpers import BenchmarkStandIn, run_python
from test_report import _data, _empty_report, _machine, _report, _samples, _write


def _group(b, impls, data="sklearn"):
    records = {impl: {"samples": _samples(t, jitter), "iterations": 3, "first_call_s": 0.1,
                      "batch_size": b, "cost_start": 2.3, "cost_after": 0.5,
                      **({"max_rel_diff_vs_numpy": 1e-15, "check_passed": True}
                         if not impl.startswith("peer:") else {})}
               for impl, (t, jitter) in impls.items()}
    return {"group": f"minibatch-B={b}", "name": f"test_minibatch[B={b}]",
            "stats": {"median": 1.0, "rounds": 5},
            "extra_info": {"rounds": 5, "impls": records, "skipped": {}, "workload": "digits",
                           "m": 1347, "batch_size": b, "data": data, "layer_dims": [64, 64, 10],
                           "learning_rate": 0.1, "blas_threads": 1, "torch_threads": 1}}


def _minibatch_data(overlap=False):
    """numba well ahead of every peer at B = 1 (20×), less at 32 (5×) and 1347 (1.5×);
    with ``overlap`` every peer's spread covers numba's."""
    data = _data()
    jitter = 0.9 if overlap else 0.02
    for b, numba, jax, sk in [(1, 5e-3, 0.1, 0.5), (32, 1e-3, 6e-3, 5e-3),
                              (1347, 1e-3, 1.5e-3, 3e-3)]:
        if overlap:
            jax = sk = numba * 1.2
        data["benchmarks"].append(_group(b, {
            "numpy": (10 * numba, 0.02), "numba": (numba, 0.02), "peer:course": (40 * numba, 0.02),
            "peer:jax": (jax, jitter), "peer:sklearn": (sk, jitter)}))
    return data


def _section(text):
    return text.split("## 8. Mini-batch training")[1]


def test_minibatch_section_states_the_lead_and_the_sklearn_ratio(tmp_path):
    text, pngs = _report(tmp_path, _minibatch_data())
    assert "minibatch.png" in pngs
    section = _section(text)
    assert "scikit-learn's digits" in section and "**per epoch**" in section
    assert "lead over the fastest peer is largest at **B = 1**: numba is 20× faster than jax " \
           "(peer)" in section
    assert "It is smallest at B = 1,347 (1.5×)" in section
    assert "B = 32, measured side by side on scikit-learn's digits" in section
    assert "**5× faster**, which meets the target of ≥ 3×" in section
    assert "an epoch at B = 1 takes 5× as long as one at B = 1,347 for numpy, 5× for numba" \
        in section
    assert re.search(r"\| numba \| 5 ms ±\d+% \| 1 ms ±\d+% \| 1 ms ±\d+% \|", section)
    assert "| course NumPy (peer) |" in section
    assert "5×" in section.split("**fastest fastnn ÷ fastest peer**")[1].split("\n")[0]
    assert "fastnn backends within 1e-9" in section and "FAILED" not in section
    assert "scikit-learn) ran 1, PyTorch 1" in section


def test_minibatch_section_claims_nothing_when_spreads_overlap(tmp_path):
    text, _ = _report(tmp_path, _minibatch_data(overlap=True))
    section = _section(text)
    assert "At no batch size is the fastest fastnn backend ahead of the fastest peer" in section
    assert "largest at" not in section and "which meets" not in section
    assert "within each other's noise" in section and "is not shown by this run" in section
    assert "≈ (" in section  # the lead row marks the overlap


def test_synthetic_data_and_a_missing_sklearn_are_said(tmp_path):
    data = _minibatch_data()
    for bench in data["benchmarks"]:
        if bench["group"].startswith("minibatch-"):
            bench["extra_info"]["data"] = "synthetic"
            bench["extra_info"]["impls"].pop("peer:sklearn")
    section = _section(_report(tmp_path, data)[0])
    assert "synthetic stand-in for scikit-learn's digits" in section
    assert "scikit-learn did not run at B = 32" in section


def test_report_without_minibatch_groups_says_so(tmp_path):
    _, text, _ = _empty_report(tmp_path)
    assert "No mini-batch benchmarks in this run." in _section(text)


def test_digits_problem_is_deterministic_and_shaped_like_digits():
    a = wl.digits_problem(source="synthetic")
    b = wl.digits_problem(source="synthetic")
    for x, y in zip(a[:2] + a[3:5], b[:2] + b[3:5]):
        for p, q in zip(x if isinstance(x, list) else [x], y if isinstance(y, list) else [y]):
            np.testing.assert_array_equal(p, q)
    Ws, bs, acts, X, Y, source = a
    assert source == "synthetic" and acts == ["relu", "softmax"]
    assert X.shape == (64, 1347) and Y.shape == (10, 1347) and [W.shape for W in Ws] == [
        (64, 64), (10, 64)]
    assert X.min() >= 0 and X.max() <= 1 and np.all(np.isin(X * 16, np.arange(17)))
    assert np.all(Y.sum(axis=0) == 1) and np.all(Y.sum(axis=1) >= 134)  # every class present
    with pytest.raises(ValueError, match="source"):
        wl.digits_problem(source="mnist")


def _only(monkeypatch, backend_names, peer_names):
    monkeypatch.setattr(mb, "BACKENDS", backend_names)
    monkeypatch.setattr(peers, "MINIBATCH_NAMES", peer_names)


def test_a_quick_group_runs_checks_and_feeds_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(_harness, "MODE", "quick")  # 5 rounds, as FASTNN_BENCH=quick
    _only(monkeypatch, ["loops", "numpy"], ["course"])
    bench = BenchmarkStandIn()
    mb.run_group(bench, 32, quick=True)
    info = bench.extra_info
    assert bench.group == "minibatch-B=32" and info["batch_size"] == 32 and info["m"] == 1347
    assert "loops" in info["skipped"]  # the oracle: the full run at B = 32 only
    numpy, course = info["impls"]["numpy"], info["impls"]["peer:course"]
    assert len(numpy["samples"]) == info["rounds"] == 5
    assert numpy["iterations"] == course["iterations"] == mb.EPOCHS["quick"]
    assert numpy["cost_after"] < numpy["cost_start"] and course["cost_after"] < course["cost_start"]
    assert numpy["check_passed"] and numpy["max_rel_diff_vs_numpy"] == 0.0
    # The course's loop trains the same batches: the same parameters but for rounding.
    assert course["max_rel_diff_vs_numpy"] < 1e-12 and "check_passed" not in course
    data = {"benchmarks": [json.loads(json.dumps(bench.record(), default=str))]}
    res = results.build(data, _machine())
    assert set(res.minibatch) == {"numpy", "peer:course"} and list(res.minibatch["numpy"]) == [32]
    section = _section(_write(res, tmp_path)[1])
    assert "| numpy |" in section and "loops at B = 32" in section


def test_quick_sweep_is_small_and_the_full_one_spans_1_to_m():
    assert mb.BATCH_SIZES[0] == 1 and mb.BATCH_SIZES[-1] == wl.DIGITS.m
    assert set(mb.QUICK_BATCH_SIZES) < set(mb.BATCH_SIZES) and 32 in mb.QUICK_BATCH_SIZES
    impls = mb.minibatch_impls(1, quick=True)
    assert set(impls) == set(backends.names()) | {f"peer:{p}" for p in peers.MINIBATCH_NAMES}
    assert impls["per_example"].iterations == mb.SLOW_EPOCHS
    assert impls["numpy"].iterations == mb.EPOCHS["quick"]


def test_a_backend_without_minibatches_fails_the_group(monkeypatch):
    class FullBatchOnly:
        """An engine that trains full batches only."""

        def __init__(self, fit):
            pass

        def cost(self):
            return 0.5

        def run(self, count, orders=None, last=False):
            if orders is not None:
                raise TypeError("batch_size: this engine trains full batches only")

        def close(self):
            pass

    old = types.SimpleNamespace(engine=FullBatchOnly, SLOW=False, COMPILED=True,
                                AUTO_THREADS_MIN_WORK={"full": 1, "batch": 1})
    get, available = backends.get, backends.available
    monkeypatch.setattr(backends, "get", lambda n: old if n == "old" else get(n))
    monkeypatch.setattr(backends, "available", lambda: {**available(), "old": True})
    _only(monkeypatch, ["old"], [])
    with pytest.raises(TypeError, match="batch_size"):
        mb.run_group(BenchmarkStandIn(), 32, quick=True)


def test_sklearn_target_is_met_only_beyond_the_noise(tmp_path):
    # Medians 3.1x apart with 10% spreads: the quartiles separate (a lead), but
    # scikit-learn's fast quartile over numba's slow one is 3.1 * 0.95 / 1.05.
    data = _data()
    for b in (1, 32, 1347):
        sk = 3.1e-3 if b == 32 else 5e-3
        data["benchmarks"].append(_group(b, {
            "numpy": (1e-2, 0.02), "numba": (1e-3, 0.1), "peer:sklearn": (sk, 0.1)}))
    section = _section(_report(tmp_path, data)[0])
    assert "**3.1× faster** at the medians but 2.8× quartile against quartile, so this run " \
           "does not show the target of ≥ 3× beyond the noise." in section


@pytest.mark.parametrize("impl", ["numpy", "course"])
def test_minibatch_alone_times_one_implementation(impl, capsys):
    from fastnn.benchmarks import minibatch_alone

    minibatch_alone.main([impl, "64", "673", "--epochs", "1", "--rounds", "2"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"{impl} B=64", f"{impl} B=673"]
    assert all(re.search(r": [\d.]+ ms per epoch \(median of 2 calls of 1 epochs; \w+ digits, "
                         r"m = 1347\)$", line) for line in lines)


def test_estimator_vs_mlp_compares_through_the_estimators(capsys):
    pytest.importorskip("sklearn")
    from fastnn.benchmarks import estimator_vs_mlp

    estimator_vs_mlp.main(["numpy", "--workloads", "digits200", "--rounds", "1"])
    lines = capsys.readouterr().out.splitlines()[2:]  # after the thread and workload lines
    assert [line.strip().split("  ")[0] for line in lines] == [
        "MLPClassifier", "NetworkClassifier numpy (numpy)"]
    assert re.search(r"1\.00x MLPClassifier's speed", lines[0])
    assert all(re.search(r"[\d.]+ ms per epoch .* test accuracy 0\.\d{3}$", line)
               for line in lines)


def test_the_library_never_imports_the_peers():
    """The peers are benchmark code: ``import fastnn``, every backend and the
    estimators load nothing of ``fastnn.benchmarks``."""
    code = ("import sys, fastnn\n"
            "from fastnn import backends\n"
            "for name, ok in backends.available().items():\n"
            "    if ok is True:\n"
            "        backends.get(name)\n"
            "try:\n"
            "    import fastnn.sklearn\n"
            "except ImportError:\n"
            "    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('fastnn.benchmarks')))")
    assert run_python(code).strip() == "[]"
    assert not hasattr(fastnn, "_peers")


def test_one_thread_keeps_pytorch_on_one_thread_when_numbas_pool_starts():
    """Numba's OpenMP pool, started by a numba engine inside the block, sets the
    libgomp it shares with PyTorch to NUMBA_NUM_THREADS: ``one_thread`` starts
    it first, so PyTorch's one thread holds for the block (it ran two in the
    first group of a benchmark process, and twice as slow)."""
    pytest.importorskip("torch")
    if backends.available()["numba"] is not True:
        pytest.skip("numba is not available here")
    code = ("import torch\n"
            "from fastnn.benchmarks.bench_minibatch import one_thread\n"
            "from fastnn.benchmarks import bench_optimizers as bo\n"
            "print(torch.get_num_threads())\n"
            "with one_thread():\n"
            "    bo.Epochs('numba', ('classes', 400, 'float64'), 50, 'adam').run(1)\n"
            "    print(torch.get_num_threads())\n")
    default, inside = run_python(code, env={"NUMBA_NUM_THREADS": "2"}).split()[-2:]
    assert (default, inside) == ("2", "1") or default == "1"  # (a one-CPU machine: 1, 1)


@pytest.mark.parametrize("value, expected", [(None, None), ("2", 2), ("7", 7),
                                             ("1", "error"), ("two", "error"), ("-3", "error")])
def test_fastnn_bench_rounds_overrides_the_modes_rounds(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("FASTNN_BENCH_ROUNDS", raising=False)
    else:
        monkeypatch.setenv("FASTNN_BENCH_ROUNDS", value)
    if expected == "error":
        with pytest.raises(pytest.UsageError, match="FASTNN_BENCH_ROUNDS"):
            _harness.rounds_override()
    else:
        assert _harness.rounds_override() == expected
