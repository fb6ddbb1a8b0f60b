"""Shared machinery of the benchmark suite: implementations to time, and the
interleaved timer the report relies on.

Every benchmark is also a test: under plain ``pytest`` (``--benchmark-disable``
in pyproject) each group runs every implementation once and checks it against
NumPy, on modest sizes. ``pytest benchmarks --benchmark-only`` times them; the
environment variable ``FASTNN_BENCH=quick`` trims sizes and rounds so ``fastnn
report --quick`` takes a few minutes.

Timing is **interleaved**: one benchmark per group (a workload, a size, an
ablation) times every implementation once per round, in an order rotated each
round, for several rounds. A burst of load from another process then lands on
all implementations alike instead of on whichever ran during it, and the
report can show each one's spread (min, quartiles) over the same rounds.

What the report reads (``fastnn.report.results``): ``benchmark.group`` is
``ladder-<workload>``, ``sweep-m=<m>``, ``dot-1e6``, ``simd-vectorize``,
``simd-dtype-<workload>`` or ``simd-threads-<workload>``; ``extra_info`` has
``workload``, ``m``, ``rounds``, ``impls`` = ``{impl: {"samples": [seconds per
iteration, one per round], "iterations", "first_call_s", "flops", "bytes",
"dtype", "variant", "max_rel_diff_vs_numpy", "check_iterations",
"check_passed", ...}}`` and ``skipped`` = ``{impl: reason}`` (a reason does not
name the workload -- the group does -- so the report can list the workloads
that share one). pytest-benchmark's own statistics are those of whole rounds.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from fastnn import backends
from fastnn._testing import max_rel_diff, reference_params, train
from fastnn.report import workloads as wl

from . import peers

MODE = os.environ.get("FASTNN_BENCH", "full")
if MODE not in ("quick", "full"):
    raise pytest.UsageError(f"FASTNN_BENCH must be 'quick' or 'full', got {MODE!r}")

BACKENDS = backends.names()
PEERS = peers.NAMES
#: Agreement with the float64 NumPy reference after the same iterations.
RTOL = {"float64": 1e-9, "float32": 1e-3}
#: Iterations of the fresh copy each implementation is checked with (at most
#: its timed call's): the path taken does not depend on the count, since every
#: switch (gram, settings, threads) is explicit or depends on the shapes only.
CHECK_ITERATIONS = 3
#: Interleaved rounds per group.
ROUNDS = {"quick": 5, "full": 9}


def rounds_override():
    """``FASTNN_BENCH_ROUNDS``: an int >= 2 of rounds every group runs in place
    of its mode's (a smoke run whose timings nobody reads, as the packaging
    test's report), or None."""
    value = os.environ.get("FASTNN_BENCH_ROUNDS")
    if value is None:
        return None
    if not value.isdigit() or int(value) < 2:
        raise pytest.UsageError(f"FASTNN_BENCH_ROUNDS must be an int >= 2, got {value!r}")
    return int(value)


#: FASTNN_BENCH_ROUNDS's rounds for every group, or None (each mode's own).
ROUNDS_OVERRIDE = rounds_override()
if ROUNDS_OVERRIDE is not None:
    ROUNDS = {mode: ROUNDS_OVERRIDE for mode in ROUNDS}

#: The cython backend with layer 1 trained through the Gram matrix X^T X.
CYTHON_GRAM = "cython:gram"
#: The cython backend with its products on BLAS instead of its own GEMM.
CYTHON_BLAS = "cython:blas"
#: NumPy with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (its own process):
#: run only when the environment sets them, to show the BLAS both ways.
NUMPY_BLAS_DEFAULT = "numpy:blas-default"


def ci(benchmark):
    """True under plain pytest, where each implementation runs once."""
    return benchmark.disabled


def require_backend(name):
    ok = backends.available()[name]
    if ok is not True:
        pytest.skip(f"backend {name!r} unavailable: {ok}")
    return backends.get(name)


def require_peer(name, module=peers):
    """Skip unless peer ``name`` of ``module`` (:mod:`.peers`, :mod:`.peers_adam`) runs here."""
    ok = module.available(name)
    if ok is not True:
        pytest.skip(f"peer {name!r} unavailable: {ok}")


def is_slow(name):
    """Whether backend ``name`` loops over examples in Python (its ``SLOW``)."""
    return backends.available()[name] is True and backends.get(name).SLOW


def too_slow(workload, name):
    """Why backend ``name`` does not run ``workload`` here, or None."""
    if not is_slow(name):
        return None
    if not workload.slow_ok or (name == backends.ORACLE and not workload.oracle_ok):
        return f"{name} takes minutes per iteration on this net"
    return None


def cython_settings(**options):
    """``fastnn.backends.cython.settings(...)``: the backend's options for a block."""
    return require_backend("cython").settings(**options)


def isa_path(name):
    """The kernel set backend ``name`` runs here (``info()["isa"]``), or None."""
    module = backends.get(name)
    try:
        return module.info().get("isa") if hasattr(module, "info") else None
    except Exception:  # a broken hook must not fail a timing
        return None


class Trainer:
    """``run(n)`` trains n iterations in place; ``params()`` -> ``Ws + bs``."""

    def __init__(self, run, params, close=None):
        self.run, self.params, self.close = run, params, close or (lambda: None)


def fresh_params(make, n):
    """``Ws + bs`` of a fresh Trainer from ``make()`` after ``n`` iterations."""
    trainer = make()
    try:
        trainer.run(n)
        return trainer.params()
    finally:
        trainer.close()


def epoch_peer_trainer(peer):
    """A Trainer of a mini-batch ``peer`` (``run(num_epochs)``, ``params()`` ->
    ``(Ws, bs)``); ``info`` has its intra-op ``threads`` where it says them."""

    def params():
        Ws, bs = peer.params()
        return Ws + bs

    trainer = Trainer(peer.run, params)
    trainer.info = {"threads": peer.threads} if hasattr(peer, "threads") else {}
    return trainer


def backend_trainer(name, workload, m, dtype, threads=None, *, gram=False, settings=None):
    """Backend ``name`` on fresh arrays; ``gram=False`` is the lecture's algorithm."""
    backend = require_backend(name)
    Ws, bs, acts, X, Y = wl.problem(workload, m, dtype)

    def run(n):
        with cython_settings(**settings) if settings else contextlib.nullcontext():
            train(backend, Ws, bs, acts, "cross_entropy", X, Y, workload.learning_rate, n, n,
                  threads, None, gram=gram)

    return Trainer(run, lambda: Ws + bs)


def peer_trainer(name, workload, m, dtype):
    require_peer(name)
    Ws, bs, acts, X, Y = wl.problem(workload, m, dtype)
    try:
        peer = peers.make(name, Ws, bs, acts, X, Y, workload.learning_rate)
    except ValueError as exc:
        pytest.skip(f"peer {name!r} cannot run this net: {exc}")

    def params():
        Ws, bs = peer.params()
        return Ws + bs

    return Trainer(peer.run, params)


class Worker:
    """A ``fastnn.report._worker`` subprocess training one backend under ``env``
    with ``threads``; ``run(n)`` trains n iterations there (the round trip is timed)."""

    def __init__(self, backend, workload, m, dtype, env, fresh_cache=False, unset=(),
                 threads=None):
        env = {k: v for k, v in {**os.environ, **env}.items() if k not in unset}
        # The SIMD evidence of the worker's own compiled code takes seconds to make.
        env.setdefault("FASTNN_WORKER_EVIDENCE", "1" if MODE == "full" else "0")
        if fresh_cache:
            env["NUMBA_CACHE_DIR"] = _private_cache(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastnn.report._worker", backend, workload.name, str(m), dtype,
             str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            raise RuntimeError(f"worker for {backend} exited with {self.proc.wait()}")
        self.ready = json.loads(line)

    def _ask(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def run(self, n):
        assert self._ask(f"run {n}").strip() == "done"

    def params(self):
        return [np.array(p) for p in json.loads(self._ask("params"))]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


_caches = {}


def _private_cache(env):
    """A Numba cache folder of this session for workers with this environment:
    code compiled under other settings (e.g. vectorized) is never reused, while
    the timed worker and its checking twin share one compile."""
    key = tuple(sorted((k, v) for k, v in env.items() if k.startswith("NUMBA_")))
    if key not in _caches:
        _caches[key] = tempfile.TemporaryDirectory(prefix="fastnn-numba-cache-")
    return _caches[key].name


def worker_trainer(name, workload, m, dtype, env=None, *, threads=None, fresh_cache=False,
                   unset=()):
    require_backend(name)
    worker = Worker(name, workload, m, dtype, env or {}, fresh_cache, unset, threads)
    trainer = Trainer(worker.run, worker.params, worker.close)
    trainer.ready = worker.ready
    return trainer


class Impl:
    """One implementation of a group: ``make()`` -> a Trainer, ``iterations`` per
    timed call, and fields recorded beside its samples (``variant``, ``dtype``...).
    ``check``: compare a fresh copy with NumPy after timing."""

    def __init__(self, make, iterations=1, *, dtype="float64", check=True, **info):
        self.make, self.iterations, self.dtype, self.check = make, iterations, dtype, check
        self.info = info

    @classmethod
    def skipped(cls, reason):
        """An implementation this group does not run here: recorded as skipped, with ``reason``."""

        def make():
            pytest.skip(reason)

        return cls(make)


def _check(impl_name, impl, workload, m, iterations):
    """Train a fresh copy as one timed call does (same settings, CHECK_ITERATIONS
    iterations at most); its difference from the NumPy reference."""
    iterations = min(CHECK_ITERATIONS, iterations)
    params = fresh_params(impl.make, iterations)
    ref = reference_params(workload.layer_dims, workload.activations, m, workload.learning_rate,
                           iterations)
    record = {"max_rel_diff_vs_numpy": max_rel_diff(params, ref), "check_iterations": iterations}
    if impl_name.startswith("peer:") and "relu" in workload.activations:
        # Peers take relu'(0) = 0, the lecture 1; with zero-initialized biases a
        # dead unit gives Z = 0 exactly, so only the gap is recorded.
        return record
    record["check_passed"] = record["max_rel_diff_vs_numpy"] <= RTOL[impl.dtype]
    return record


def interleave(benchmark, impls, *, workload=None, m=None, **extra):
    """Time ``impls`` (``{name: Impl}``) interleaved over rounds; record, check.

    Each implementation's first call (JIT compile, thread pools, caches) runs
    outside the timer. An implementation that skips (unavailable here) is
    recorded under ``skipped``; if all do, the test skips.
    """
    trainers, skipped, records = {}, {}, {}
    try:
        for name, impl in impls.items():
            try:
                trainer = impl.make()
            except pytest.skip.Exception as exc:
                skipped[name] = str(exc.msg if hasattr(exc, "msg") else exc)
                continue
            start = time.perf_counter()
            trainer.run(1)
            records[name] = {"first_call_s": time.perf_counter() - start, "dtype": impl.dtype,
                             **impl.info, **({"simd_evidence": trainer.ready["simd_evidence"]}
                                             if hasattr(trainer, "ready") else {})}
            trainers[name] = trainer
        if not trainers:
            pytest.skip("; ".join(f"{k}: {v}" for k, v in skipped.items()) or "nothing to time")
        counts = {name: 1 if ci(benchmark) else impls[name].iterations for name in trainers}
        order = list(trainers)
        samples = {name: [] for name in order}
        state = {"round": 0}

        def one_round():
            shift = state["round"] % len(order)
            state["round"] += 1
            for name in order[shift:] + order[:shift]:
                start = time.perf_counter()
                trainers[name].run(counts[name])
                samples[name].append((time.perf_counter() - start) / counts[name])

        rounds = 1 if ci(benchmark) else ROUNDS[MODE]
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=0)
        for name, trainer in trainers.items():
            for p in trainer.params():
                assert np.all(np.isfinite(p)), f"{name} produced non-finite parameters"
    finally:
        for trainer in trainers.values():
            trainer.close()
    for name in trainers:
        rec = records[name]
        rec.update(samples=samples[name], iterations=counts[name])
        if workload is not None:
            rec.update(flops=wl.flops(workload, m),
                       bytes=wl.min_bytes(workload, m, np.dtype(impls[name].dtype).itemsize))
            if impls[name].check:
                rec.update(_check(name, impls[name], workload, m, counts[name]))
    benchmark.extra_info.update(
        workload=None if workload is None else workload.name, m=m, rounds=state["round"],
        impls=records, skipped=skipped, **extra)
    assert_agree(records, RTOL)


def assert_agree(records, rtol):
    """No record whose check against NumPy failed (``check_passed`` False)."""
    failed = {n: r["max_rel_diff_vs_numpy"] for n, r in records.items()
              if r.get("check_passed") is False}
    assert not failed, f"differ from numpy by more than {rtol}: {failed}"


def interleave_epochs(benchmark, impls, workload_name, /, **extra):
    """Time a group of epochs (``{name: Impl}``) with :func:`interleave` and no
    per-iteration check (:func:`check_epochs` follows); ``extra_info["workload"]``
    is ``workload_name``, and each record gains what its trainer said (``info``:
    threads). Returns ``{name: the timed Trainer}``, for the check."""
    trained = {}

    def keep(name, make):
        def made():
            trained[name] = make()
            impls[name].info.update(getattr(trained[name], "info", {}))
            return trained[name]
        return made

    interleave(benchmark, {name: Impl(keep(name, impl.make), impl.iterations, dtype=impl.dtype,
                                      **impl.info) for name, impl in impls.items()}, **extra)
    benchmark.extra_info["workload"] = workload_name
    for name, rec in benchmark.extra_info["impls"].items():
        rec.update(impls[name].info)
    return trained


def check_epochs(records, impls, trained, *, cost, start, reference, epochs):
    """After timing a group of epochs: every implementation's trained parameters
    must have lowered ``cost`` (of ``Ws + bs``) from ``start``. A fresh copy of
    each fastnn backend, and of each peer that shuffles as fastnn does
    (``same_shuffles``), trains ``epochs`` epochs (at most its timed call's) and is
    compared with ``reference(name, epochs)``: within ``RTOL`` for fastnn backends
    in float64 (asserted), recorded for the rest."""
    for name, rec in records.items():
        rec.update(cost_start=start, cost_after=cost(trained[name].params()))
        peer = name.startswith("peer:")
        if peer and not impls[name].info.get("same_shuffles"):
            continue
        n = min(epochs, rec["iterations"])
        params = fresh_params(impls[name].make, n)
        rec.update(max_rel_diff_vs_numpy=max_rel_diff(params, reference(name, n)),
                   check_iterations=n)
        if not peer and impls[name].dtype == "float64":
            rec["check_passed"] = rec["max_rel_diff_vs_numpy"] <= RTOL["float64"]
    lowered = {n: (r["cost_start"], r["cost_after"]) for n, r in records.items()
               if not r["cost_after"] < r["cost_start"]}
    assert not lowered, f"training did not lower the cost (start, after): {lowered}"
    assert_agree(records, RTOL["float64"])
