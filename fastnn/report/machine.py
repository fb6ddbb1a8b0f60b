"""What the numbers were measured on: CPU, SIMD flags, caches, BLAS, versions,
backend build info, and three measured ceilings -- a BLAS GEMM probe
(achievable peak GFLOP/s), a read of a buffer that fits in the L3 cache (L3
bandwidth, GB/s) and a copy of one far larger than it (DRAM bandwidth, GB/s).
A workload whose working set fits in L3 is held to the first bandwidth, any
other to the second.
"""

import contextlib
import importlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from .._caches import cpu0_caches
from .._caches import size_bytes as _size

__all__ = ["probe", "gemm_peak", "gemm_peak_blas_default", "memory_bandwidth", "l3_bandwidth",
           "l3_bytes", "load", "first_call_costs"]

#: OpenBLAS settings that force slower kernels on some machines: the report
#: shows the BLAS baseline both with them and (in a probe subprocess only)
#: without them. Unset together, since OPENBLAS_L2_SIZE tunes the CORETYPE's.
BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: The SIMD extensions worth naming, widest last.
SIMD_FLAGS = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512dq", "avx512vl", "avx512_vnni"]


def _best_time(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_peak(dtype="float64", n=1536, repeats=10):
    """Best GFLOP/s of an n x n BLAS GEMM (2 n^3 flops): the achievable peak."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n)).astype(dtype), rng.random((n, n)).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    np.matmul(a, b, out=c)  # warm the thread pool
    return 2 * n**3 / _best_time(lambda: np.matmul(a, b, out=c), repeats) / 1e9


def gemm_peak_blas_default(n=1536):
    """The GEMM peaks (float64, float32) measured in a subprocess whose environment
    lacks BLAS_ENV_VARS; None when neither is set here."""
    if not any(v in os.environ for v in BLAS_ENV_VARS):
        return None
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV_VARS}
    code = ("import json; from fastnn.report.machine import gemm_peak; "
            f"print(json.dumps({{d: gemm_peak(d, {int(n)}) for d in ('float64', 'float32')}}))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1:] or ["failed"]}
    return json.loads(proc.stdout)


def memory_bandwidth(megabytes=256, repeats=5):
    """Best GB/s of copying an array far larger than cache (read + write counted):
    the DRAM ceiling."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    return 2 * src.nbytes / _best_time(lambda: np.copyto(dst, src), repeats) / 1e9


def l3_bandwidth(l3, repeats=30):
    """Best GB/s of reading two vectors that together fill half of an ``l3``-byte
    L3 cache by BLAS ``dot`` (both reads counted): the ceiling of a workload
    whose working set stays in L3. Half, so the two vectors stay there beside
    whatever else the cache holds. Best of BLAS on one thread and on all: on a
    busy machine a pool of two waits for its descheduled thread at every call
    (measured: 190 GB/s once, then 1.7 GB/s, on 2 cores at load 7)."""
    from threadpoolctl import ThreadpoolController

    n = l3 // 4 // 8
    a, b = np.ones(n), np.ones(n)
    controller, best = ThreadpoolController(), 0.0
    for one_thread in (True, False):
        with (controller.limit(limits=1, user_api="blas") if one_thread
              else contextlib.nullcontext()):
            np.dot(a, b)  # brings both into the cache, wakes the BLAS threads
            best = max(best, 2 * a.nbytes / _best_time(lambda: np.dot(a, b), repeats) / 1e9)
    return best


def l3_bytes():
    """The L3 cache size in bytes (the one CPU 0 sees: Linux's sysfs, else
    py-cpuinfo), or None when neither says."""
    for level, size, _ in cpu0_caches():
        if level == 3:
            return size
    try:
        import cpuinfo

        return _size(cpuinfo.get_cpu_info().get("l3_cache_size"))
    except Exception:  # py-cpuinfo can fail on exotic hosts; the report still runs
        return None


#: What :func:`first_call_costs` times in a fresh process: importing fastnn and a
#: first 1-iteration fit of the planar 2-4-1 tanh net (JIT compile included).
FIRST_FIT = ("import time; t0 = time.perf_counter()\n"
             "import fastnn\n"
             "X, Y = fastnn.datasets.planar()\n"
             "net = fastnn.Network([2, 4, 1], hidden_activation='tanh', backend={name!r})\n"
             "net.fit(X, Y, learning_rate=1.2, num_iterations=1)\n"
             "print(time.perf_counter() - t0)\n")


def first_call_costs(name, timeout=600):
    """``{"cold": s, "cached": s}``: a fresh process's first call of backend ``name``
    (:data:`FIRST_FIT`), with an empty Numba cache (a new ``NUMBA_CACHE_DIR``),
    then again with the cache the first run filled. An error line instead of
    seconds for a run that failed."""
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory(prefix="fastnn-first-call-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for kind in ("cold", "cached"):
            try:
                done = subprocess.run([sys.executable, "-c", FIRST_FIT.format(name=name)],
                                      env=env, capture_output=True, text=True, timeout=timeout)
            except subprocess.TimeoutExpired:
                out[kind] = f"timed out after {timeout} s"
                continue
            lines = done.stdout.split()
            out[kind] = (float(lines[-1]) if done.returncode == 0 and lines
                         else (done.stderr.strip().splitlines() or ["failed"])[-1])
    return out


def _version(module):
    try:
        return getattr(importlib.import_module(module), "__version__", "?")
    except ImportError:
        return None


def _cpu():
    try:
        import cpuinfo

        info = cpuinfo.get_cpu_info()
    except Exception:  # py-cpuinfo can fail on exotic hosts; the report still runs
        info = {}
    flags = set(info.get("flags", []))
    return {
        "model": info.get("brand_raw") or platform.processor() or "unknown",
        "arch": info.get("arch", platform.machine()),
        "hz_advertised": info.get("hz_advertised_friendly"),
        "logical_cores": os.cpu_count(),
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "l2_cache": info.get("l2_cache_size"),
        "l3_cache": info.get("l3_cache_size"),
    }


def _blas():
    try:
        from threadpoolctl import threadpool_info

        return [{k: pool.get(k) for k in ("user_api", "internal_api", "version", "num_threads",
                                          "architecture", "filepath")}
                for pool in threadpool_info()]
    except Exception as exc:
        return [{"error": f"{type(exc).__name__}: {exc}"}]


def _backends():
    from .. import backends
    from . import simd

    rows = {}
    for name, ok in backends.available().items():
        row = {"available": ok is True}
        if ok is not True:
            row["reason"] = ok
        else:
            module = backends.get(name)
            row["description"] = getattr(module, "DESCRIPTION", "")
            row["compiled"] = bool(getattr(module, "COMPILED", False))
            row["hot_code"] = hasattr(module, "hot_code")
            if row["compiled"]:  # what its first call costs, compile included
                row["first_call"] = first_call_costs(name)
            # hot_code(): the kernels this CPU runs; older builds only had simd_evidence().
            hooks = {"info": getattr(module, "info", None),
                     "simd_evidence": (lambda m=module: simd.evidence(m)) if row["hot_code"]
                     else getattr(module, "simd_evidence", None)}
            for hook, fn in hooks.items():
                if fn is not None:
                    try:
                        row[hook] = fn()
                    except Exception as exc:  # a broken hook is reported, not fatal
                        row[hook] = f"unavailable: {type(exc).__name__}: {exc}"
        rows[name] = row
    return rows


def load():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # not on every platform
        return None


def _omp_env():
    """The OpenMP settings the suite runs under: the user's, else the suite's."""
    from .suite import BENCH_ENV, OMP_ENV_VARS

    env = {**BENCH_ENV, **os.environ}
    return {k: env.get(k, "unset") for k in OMP_ENV_VARS}


def probe(quick=False):
    """Everything section 1 of the report shows, as a JSON-able dict."""
    # The peers are benchmark code (fastnn.benchmarks), imported only here, by the report.
    from ..benchmarks import peers

    versions = {"python": platform.python_version()}
    for module in ["fastnn", "numpy", "scipy", "numba", "Cython", "threadpoolctl", "matplotlib"]:
        versions[module] = _version(module)
    for peer in peers.NAMES:
        versions[peer] = peers.version(peer)
    n = 1024 if quick else 2048
    l3 = l3_bytes()
    return {
        "cpu": _cpu(),
        "platform": platform.platform(),
        "load_average": load(),
        "omp_env": _omp_env(),
        # OPENBLAS_CORETYPE pins OpenBLAS's kernels (e.g. Haswell = AVX2 on an AVX-512 CPU).
        "blas_env": {k: v for k, v in sorted(os.environ.items())
                     if k.startswith(("OPENBLAS_", "MKL_", "BLIS_"))},
        "blas": _blas(),
        "versions": versions,
        "backends": _backends(),
        "peak_gflops": {"float64": gemm_peak("float64", n), "float32": gemm_peak("float32", n)},
        "gemm_probe_n": n,
        "peak_gflops_blas_default": gemm_peak_blas_default(n),
        "memory_gbps": memory_bandwidth(128 if quick else 512),
        "l3_bytes": l3,
        "l3_gbps": l3_bandwidth(l3) if l3 else None,
    }
