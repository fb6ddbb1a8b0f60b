"""The report's words about the machine: the header (with the busy-machine
warning, from :func:`.verdicts.busy`), section 1 (what ran where) and section
6 (SIMD evidence), from the probe :mod:`.machine` saved with the results. Raw
counts stay in the JSON; these are the short tables a person reads.
"""

from pathlib import Path

from .results import WIDE_SPREAD

__all__ = ["header", "machine", "evidence", "table"]


def table(header_row, body):
    """A markdown table."""
    lines = ["| " + " | ".join(str(c) for c in header_row) + " |", "|" + "---|" * len(header_row)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _known(x):
    return "?" if x is None else x


def header(res, busy):
    """The report's opening lines: mode, source, how times were taken, warnings
    (``busy``: the :class:`.verdicts.Busy` of the run)."""
    wide, total = res.wide_count()
    load = (f"load average (1 min) {_known(busy.before)} before and {_known(busy.after)} after "
            f"the run on {busy.cores} cores")
    lines = []
    if busy.busy:
        lines += [f"> **Warning: the machine was busy** — {load}: other processes competed for "
                  f"the cores, so times are inflated and noisier ({wide} of {total} timings have "
                  f"an interquartile range above {100 * WIDE_SPREAD:.0f}% of their median). "
                  "Comparisons below are stated only where spreads do not overlap; for figures to "
                  "quote, re-run on an idle machine.", ""]
    lines.append(
        f"Mode: **{res.mode}**. pytest-benchmark {res.meta.get('version')}, "
        f"{res.meta.get('datetime')}" + (f", from `{res.source}`" if res.source else "") + ". "
        f"Every time is per training iteration of batch gradient descent (forward, backward, "
        f"update; section 8: per epoch of mini-batch training), JIT compile excluded (a warm-up "
        f"call outside the timer). Within each group "
        f"the implementations were timed **interleaved**, one call each per round in a rotating "
        f"order, over {res.rounds} rounds, so load from other processes falls on all of them "
        f"alike; tables give the median and the spread. {load.capitalize()}"
        + ("." if busy.busy else "; the machine was quiet."))
    return lines


def _short_flags(flags):
    if not flags:
        return "—"
    keep = [f for f in str(flags).split() if f.startswith(("-O", "-march", "-m", "-fopenmp"))]
    return " ".join(keep) or str(flags)[:60]


def first_call_text(costs):
    """``{"cold": s, "cached": s}`` (see :func:`.machine.first_call_costs`) in words."""
    if not isinstance(costs, dict):
        return "no compile step"
    def fmt(s):
        return f"{s:.1f} s" if isinstance(s, (int, float)) else f"failed: {s}"[:80]

    return f"{fmt(costs.get('cold'))} cold / {fmt(costs.get('cached'))} cached"


def _backend_rows(backends):
    rows = []
    for name, b in backends.items():
        if not b.get("available"):
            rows.append([name, "no: " + str(b.get("reason", ""))[:120], "", "", "", "", ""])
            continue
        info = b.get("info") if isinstance(b.get("info"), dict) else {}
        isa = info.get("isa") or ("—" if not b.get("compiled") else "not reported")
        paths = info.get("isas")
        rows.append([name, "yes", f"`{isa}`" + (f" (CPU can run: {', '.join(paths)})" if paths
                                               else ""),
                     str(info.get("gemm", "BLAS" if name == "numpy" else "—")).replace("|", "/"),
                     info.get("threads", info.get("threads_max", "—")),
                     info.get("march") or _short_flags(info.get("compile_flags"))
                     or info.get("numba", ""), first_call_text(b.get("first_call"))])
    return rows


def machine(res):
    m = res.machine
    cpu = m.get("cpu", {})
    peak = m.get("peak_gflops", {})
    backends = m.get("backends", {})
    isas = {n: b["info"].get("isa") for n, b in backends.items()
            if b.get("available") and isinstance(b.get("info"), dict) and b["info"].get("isa")}
    blas_env = m.get("blas_env", {})
    intro = [f"Measured on {cpu.get('model', 'an unknown CPU')} ({cpu.get('logical_cores')} "
             f"logical cores; SIMD: {', '.join(cpu.get('simd', [])) or 'unknown'})."]
    if isas:
        intro.append("The compiled backends ran these kernel sets: "
                     + ", ".join(f"{n} `{i}`" for n, i in isas.items()) + ".")
    if peak.get("float64"):
        l3 = (f"reading from L3 {m['l3_gbps']:.1f} GB/s, " if m.get("l3_gbps") else "")
        intro.append(f"The machine's measured limits: BLAS GEMM {peak['float64']:.1f} GFLOP/s "
                     f"float64 on all cores, {l3}copying in DRAM "
                     f"{m.get('memory_gbps', 0):.1f} GB/s.")
    rows = [["CPU", f"{cpu.get('model')} ({cpu.get('arch')}, {cpu.get('hz_advertised')})"],
            ["logical cores", cpu.get("logical_cores")],
            ["SIMD extensions", ", ".join(cpu.get("simd", [])) or "—"],
            ["platform", m.get("platform")],
            [f"BLAS GEMM peak (n = {m.get('gemm_probe_n')})",
             f"{peak.get('float64', 0):.1f} GFLOP/s float64, {peak.get('float32', 0):.1f} "
             "float32"],
            ["BLAS environment", ", ".join(f"{k}={v}" for k, v in blas_env.items()) or "none set"]]
    default = m.get("peak_gflops_blas_default")
    if default:
        rows.append(["BLAS GEMM peak with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset (in that "
                     "probe's process only)", f"{default.get('float64', 0):.1f} GFLOP/s float64, "
                     f"{default.get('float32', 0):.1f} float32"])
    if m.get("l3_bytes"):
        rows.append(["L3 cache", f"{m['l3_bytes'] / 2**20:.3g} MiB"])
    if m.get("l3_gbps"):
        rows.append(["L3 bandwidth (BLAS dot of two vectors filling half the L3, both read)",
                     f"{m['l3_gbps']:.1f} GB/s"])
    rows += [["DRAM bandwidth (copy of a buffer far larger than the caches, read + write)",
              f"{m.get('memory_gbps', float('nan')):.1f} GB/s"],
             ["load average (1 min), before / after",
              f"{m.get('load_average', '?')} / {m.get('load_average_after', '?')}"],
             ["OpenMP environment of the suite",
              ", ".join(f"{k}={v}" for k, v in m.get("omp_env", {}).items())],
             ["versions", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)]]
    text = [" ".join(intro), "", table(["", ""], rows)]
    pools = [[p.get("internal_api"), p.get("version"), p.get("num_threads"),
              p.get("architecture"), Path(p.get("filepath") or "").name]
             for p in m.get("blas", []) if "error" not in p]
    if pools:
        text += ["", "Thread pools (threadpoolctl):", "",
                 table(["library", "version", "threads", "kernel arch", "file"], pools)]
    if backends:
        text += ["", "Backends (from each backend's `info()`; `fastnn backends` lists all of it):",
                 "", table(["backend", "available", "kernel set in use", "products",
                             "threads", "build", "first call (fresh process, 1-iteration "
                             "planar fit): empty / filled JIT cache"],
                            _backend_rows(backends))]
    return "\n".join(text)


def _reads_as(c):
    """The widest SIMD register the kernel's arithmetic uses, or "scalar only"."""
    for reg, bits in (("zmm", 512), ("ymm", 256), ("xmm", 128)):
        if c.get(f"packed_{reg}", c.get(reg, 0)):
            return f"SIMD, {bits}-bit"
    if c.get("packed"):
        return "SIMD"
    return "scalar only" if c.get("scalar") else "no FP arithmetic"


def _evidence_table(counts):
    rows = []
    for kernel, c in counts.items():
        if not isinstance(c, dict) or "packed" not in c or "functions" in c:
            continue  # older simd_evidence() also gave totals over kernels
        calls = c.get("libmvec_calls") or {}
        widths = "/".join(str(c.get(f"packed_{r}", c.get(r, "—"))) for r in ("zmm", "ymm", "xmm"))
        rows.append([kernel, c.get("packed", 0), widths, c.get("scalar", 0),
                     ", ".join(f"`{s}`" for s in sorted(calls)) or "—", _reads_as(c)])
    return table(["kernel", "packed", "zmm/ymm/xmm", "scalar", "libmvec calls", "reads as"],
                  rows) if rows else None


def evidence(res):
    parts = ["Floating-point arithmetic instructions in each compiled backend's hot kernels — "
             "the code that runs on this CPU with the settings in force (`hot_code()`), counted "
             "by `fastnn.report.simd.count`: packed (SIMD: `…pd`/`…ps` on xmm/ymm/zmm) against "
             "scalar (`…sd`/`…ss`), and calls to glibc's libmvec vector exp/tanh. These are "
             "static counts: a SIMD kernel keeps some scalar code for loop remainders, so "
             "“reads as” names the widest register its arithmetic uses. The raw counts are in "
             "the benchmark JSON."]
    found = False
    for name, b in res.machine.get("backends", {}).items():
        counts = b.get("simd_evidence")
        if not b.get("available") or not isinstance(counts, dict):
            if isinstance(counts, str):
                parts += ["", f"**{name}**: {counts}"]
            continue
        info = b.get("info") if isinstance(b.get("info"), dict) else {}
        isa = info.get("isa")
        t = _evidence_table(counts)
        if t is None:
            continue
        found = True
        rows = [c for c in counts.values()
                if isinstance(c, dict) and "packed" in c and "functions" not in c]
        simd = sum(_reads_as(c).startswith("SIMD") for c in rows)
        kernels = len(rows)
        legacy = "" if b.get("hot_code") else (
            " (this build has no `hot_code()`: counts from its older `simd_evidence()`, which "
            "may include code for paths this CPU does not run)")
        parts += ["", f"**{name}** — kernel set `{isa or 'not reported'}`: {simd} of {kernels} "
                  f"hot kernels are SIMD{legacy}.", "", t]
    for group, timings in res.ablations.items():
        for impl, t in timings.items():
            c = t.get("simd_evidence")
            if isinstance(c, dict) and t.get("variant") == "off":
                packed = sum(k.get("packed", 0) for k in c.values() if isinstance(k, dict))
                parts += ["", f"With auto-vectorization off ({impl}, the ablation's worker), the "
                          f"same kernels hold {packed} packed instructions in all."]
    if not found:
        parts += ["", "No backend reported its hot code in this run."]
    return "\n".join(parts)
