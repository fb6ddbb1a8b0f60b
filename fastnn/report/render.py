"""Writing REPORT.md and its PNG plots from benchmark JSON and a machine probe.

Seven sections, each a table a person can read plus, where a picture helps, a
plot: machine, ladder, scaling, SIMD ablation, efficiency, SIMD evidence,
correctness. Plots use matplotlib's Agg backend (no display needed); times are
per training iteration, on log axes where they span decades.
"""

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .results import LADDER_ORDER, crossovers, format_seconds, ladder, rows  # noqa: E402
from .workloads import WORKLOADS  # noqa: E402

__all__ = ["write_report", "SECTIONS"]

SECTIONS = ["1. Machine", "2. The ladder", "3. Scaling with m", "4. SIMD ablation",
            "5. Efficiency", "6. SIMD evidence", "7. Correctness"]

COLORS = {"loops": "#9e9e9e", "per_example": "#8d6e63", "numpy": "#1f77b4", "numba": "#2ca02c",
          "cython": "#d62728", "cython:direct": "#f4a3a3",
          "cython:blas": "#8c1c1c", "peer:torch": "#ff7f0e",
          "peer:jax": "#9467bd",
          "peer:sklearn": "#17becf"}


def _label(impl):
    return impl.replace("peer:", "") + (" (peer)" if impl.startswith("peer:") else "")


def _ordered(impls):
    return sorted(impls, key=lambda i: LADDER_ORDER.index(i) if i in LADDER_ORDER else 99)


def _table(header, body):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _ratio(a, b):
    return f"{a / b:.3g}×" if a and b else "—"


# -- 1. machine ---------------------------------------------------------------

def _machine(machine):
    cpu = machine.get("cpu", {})
    v = machine.get("versions", {})
    out = [_table(["", ""], [
        ["CPU", f"{cpu.get('model')} ({cpu.get('arch')}, {cpu.get('hz_advertised')})"],
        ["cores (logical)", cpu.get("logical_cores")],
        ["SIMD", ", ".join(cpu.get("simd", [])) or "—"],
        ["platform", machine.get("platform")],
        ["measured peak (BLAS GEMM, n = %s)" % machine.get("gemm_probe_n"),
         "%.1f GFLOP/s float64, %.1f GFLOP/s float32" % (
             machine["peak_gflops"]["float64"], machine["peak_gflops"]["float32"])],
        ["benchmark environment", ", ".join(f"{k}={val}" for k, val in
                                            machine.get("omp_env", {}).items())
         + " (idle OpenMP threads of one backend spin only briefly, so they do not slow the "
         "next one)"],
        ["load average (1 min) before / after the run",
         f"{machine.get('load_average', '?')} / {machine.get('load_average_after', '?')} "
         f"on {cpu.get('logical_cores')} cores (above ~1, other processes competed for the "
         "cores: thread-scaling rows suffer most)"],
        ["BLAS environment", ", ".join(f"{k}={val}" for k, val in machine.get("blas_env", {}).items())
         or "none set"],
        ["measured memory bandwidth (copy)", "%.1f GB/s" % machine.get("memory_gbps", float("nan"))],
        ["versions", ", ".join(f"{k} {val}" for k, val in v.items() if val)],
    ])]
    blas = [[p.get("internal_api"), p.get("version"), p.get("num_threads"), p.get("architecture"),
             Path(p.get("filepath") or "").name] for p in machine.get("blas", []) if "error" not in p]
    if blas:
        out += ["", "Thread pools (threadpoolctl):", "",
                _table(["library", "version", "threads", "kernel arch", "file"], blas)]
    body = []
    for name, b in machine.get("backends", {}).items():
        if not b.get("available"):
            body.append([name, "no", b.get("reason", "")])
            continue
        info = b.get("info")
        detail = b.get("description", "")
        if isinstance(info, dict):
            detail += "<br>" + "; ".join(f"{k}: {_short(val, 1000)}" for k, val in info.items())
        body.append([name, "yes", detail])
    out += ["", "Backends (compile flags and threads from each backend's `info()`):", "",
            _table(["backend", "available", "description / build"], body)]
    return "\n".join(out)


def _short(value, limit=300):
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|")[:limit]


# -- 2. ladder ----------------------------------------------------------------

def _plot_ladder(table, dot, path):
    names = list(table)
    panels = len(names) + (1 if dot else 0)
    cols = 2 if panels > 1 else 1
    nrows = math.ceil(panels / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 3.2 * nrows), squeeze=False)
    flat = list(axes.flat)
    for ax, name in zip(flat, names):
        impls = _ordered(table[name])
        times = [table[name][i]["seconds"] * 1e6 for i in impls]
        ax.barh(range(len(impls)), times, color=[COLORS.get(i, "grey") for i in impls])
        ax.set_yticks(range(len(impls)), [_label(i) for i in impls])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("time per training iteration (µs, log scale)")
        ax.set_title(WORKLOADS[name].title if name in WORKLOADS else name, fontsize=10)
        base = table[name].get("numpy", {}).get("seconds")
        for y, (impl, t) in enumerate(zip(impls, times)):
            note = format_seconds(t * 1e-6)
            if base:
                note += f"  ({base / (t * 1e-6):.2g}× numpy)"
            ax.text(t, y, " " + note, va="center", fontsize=8)
        ax.set_xlim(min(times) / 2, max(times) * 25)
        ax.grid(axis="x", which="major", alpha=0.3)
    if dot:
        ax = flat[len(names)]
        impls = list(dot)
        times = [dot[i] * 1e3 for i in impls]
        ax.barh(range(len(impls)), times, color=["#9e9e9e", "#1f77b4", "#2ca02c"][:len(impls)])
        ax.set_yticks(range(len(impls)), impls)
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel("time per dot product (ms, log scale)")
        ax.set_title("the lecture's demo: dot product of two 10⁶-vectors", fontsize=10)
        slowest = max(times)
        for y, t in enumerate(times):
            ax.text(t, y, f" {format_seconds(t * 1e-3)}  ({slowest / t:.0f}× the loop)"
                    if t < slowest else " " + format_seconds(t * 1e-3), va="center", fontsize=8)
        ax.set_xlim(min(times) / 2, max(times) * 20)
    for ax in flat[panels:]:
        ax.set_visible(False)
    fig.suptitle("The ladder: loops → per_example → numpy → numba → cython (float64)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _iterations_text(data):
    """"planar 1000, deep 100, ...": iterations per timed call of the fast rungs."""
    counts = {}
    for r in rows(data, "ladder-"):
        if r["impl"] not in ("loops", "per_example"):
            counts.setdefault(r.get("workload", "?"), set()).add(r.get("iterations", 1))
    return ", ".join(f"{w} {'/'.join(map(str, sorted(n)))}" for w, n in counts.items())


def _ladder(data, out, plots):
    table = ladder(data)
    dot = {r["impl"]: r["seconds"] for r in rows(data, "dot-1e6")}
    if not table:
        return "No ladder benchmarks in this run."
    impls = _ordered({i for t in table.values() for i in t})
    summary = [[WORKLOADS[n].title if n in WORKLOADS else n]
               + [format_seconds(table[n][i]["seconds"]) if i in table[n] else "—" for i in impls]
               for n in table]
    text = ["Time per training iteration (best of rounds; float64, full batch, default threads). "
            "“—”: not run (too slow here, or not installed). Each timed call is a fit of several "
            f"iterations ({_iterations_text(data)}), so per-fit set-up is amortized as in "
            "training. "
            "On deep and logreg (n_0 = 12288 > m = 209) `cython` rewrites layer 1 exactly through "
            "the Gram matrix XᵀX (computed once per fit; no pass over X per iteration) — it does "
            "less arithmetic than the others, so its GFLOP/s and GB/s below are *effective* "
            "figures; `cython:direct` is the same backend without the rewrite. `cython:blas` is "
            "the backend with its products on scipy's BLAS instead of fastnn's own AVX-512 GEMM "
            "(see the machine section for the BLAS core type in force).", "",
            _table(["workload"] + [_label(i) for i in impls], summary), ""]
    for name, t in table.items():
        loops = t.get("loops", {}).get("seconds")
        numpy = t.get("numpy", {}).get("seconds")
        body = [[_label(i), format_seconds(t[i]["seconds"]), _ratio(loops, t[i]["seconds"]),
                 _ratio(numpy, t[i]["seconds"]), format_seconds(t[i].get("first_call_s"))]
                for i in _ordered(t)]
        text += [f"**{WORKLOADS[name].title if name in WORKLOADS else name}**", "",
                 _table(["implementation", "time / iteration", "speedup vs loops",
                         "speedup vs numpy", "first call (JIT, not timed)"], body), ""]
    if dot:
        base = dot.get("python loop")
        text += ["**The lecture's demo — dot product of two 10⁶-element vectors** "
                 "(the lecture measured ~300×):", "",
                 _table(["implementation", "time", "speedup vs Python loop"],
                        [[i, format_seconds(s), _ratio(base, s)] for i, s in dot.items()]), ""]
    _plot_ladder(table, dot, out / "ladder.png")
    plots.append("ladder.png")
    text.append("![ladder](ladder.png)")
    return "\n".join(text)


# -- 3. scaling ---------------------------------------------------------------

def _scaling(data, out, plots):
    series = {}
    for r in rows(data, "sweep-"):
        series.setdefault(r["impl"], {})[r["m"]] = r["seconds"]
    if not series:
        return "No sweep benchmarks in this run."
    series = {i: series[i] for i in _ordered(series)}
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for impl, pts in series.items():
        ms = sorted(pts)
        ax.plot(ms, [pts[m] * 1e6 for m in ms], "o-", label=_label(impl), color=COLORS.get(impl))
        ax2.plot(ms, [pts[m] / m * 1e9 for m in ms], "o-", label=_label(impl),
                 color=COLORS.get(impl))
    ax.set(xscale="log", yscale="log", xlabel="m (examples, log scale)",
           ylabel="time per training iteration (µs, log scale)",
           title="planar 2-4-1 tanh/sigmoid: time vs m")
    ax2.set(xscale="log", yscale="log", xlabel="m (examples, log scale)",
            ylabel="time per example per iteration (ns, log scale)",
            title="cost per example: flat = streaming, falling = fixed overhead")
    for a in (ax, ax2):
        a.grid(which="major", alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "scaling.png", dpi=110)
    plt.close(fig)
    plots.append("scaling.png")
    all_m = sorted({m for pts in series.values() for m in pts})
    body = [[_label(i)] + [format_seconds(series[i].get(m)) if m in series[i] else "—"
                           for m in all_m] for i in series]
    fastest = []
    for m in all_m:
        here = {i: pts[m] for i, pts in series.items() if m in pts}
        fastest.append(f"m = {m}: **{_label(min(here, key=here.get))}**")
    cross = crossovers(series)
    text = [_table(["backend"] + [f"m = {m}" for m in all_m], body), "",
            "Fastest at each size: " + "; ".join(fastest) + ".", ""]
    if cross:
        text += ["Crossover points (times interpolated log-log between measured sizes):", ""]
        text += [f"- m ≈ {m_star:,.0f}: {_label(above)} becomes faster than {_label(below)}"
                 for m_star, above, below in cross]
    else:
        text.append("No crossovers: the order of the backends is the same at every measured m.")
    text += ["", "![scaling](scaling.png)"]
    return "\n".join(text)


# -- 4. SIMD ablation -----------------------------------------------------------

def _ablation(data, out, plots):
    groups = {}
    for r in rows(data, "simd-"):
        groups.setdefault(r["group"], []).append(r)
    if not groups:
        return "No SIMD ablation benchmarks in this run."
    text = []
    panels = []
    for kind, title, base_variant in [
            ("simd-vectorize-", "auto-vectorization off → on", "off"),
            ("simd-dtype-", "float64 → float32", "float64"),
            ("simd-threads-", "1 thread → 2 threads", "1 thread")]:
        body = []
        for group in sorted(g for g in groups if g.startswith(kind)):
            by_backend = {}
            for r in groups[group]:
                backend = r.get("backend") or r["impl"]
                by_backend.setdefault(backend, {})[str(r.get("variant"))] = r
            for backend, variants in by_backend.items():
                base = variants.get(base_variant)
                for variant, r in variants.items():
                    if variant == base_variant:
                        continue
                    workload = r.get("workload", group[len(kind):])
                    label = f"{backend} ({workload}, m = {r.get('m')})"
                    body.append([label, format_seconds(base["seconds"]) if base else "—",
                                 format_seconds(r["seconds"]),
                                 _ratio(base["seconds"], r["seconds"]) if base else "—"])
                    if base:
                        panels.append((title, label, base["seconds"] / r["seconds"]))
        if body:
            new = title.split(" → ")[1]
            text += [f"**{title}**", "", _table(["kernel (workload)", title.split(" → ")[0], new,
                                                 f"speedup of {new}"], body), ""]
        else:
            text += [f"**{title}**: not measured in this run (backend or hook unavailable).", ""]
    if panels:
        titles = list(dict.fromkeys(p[0] for p in panels))
        fig, axes = plt.subplots(1, len(titles), figsize=(5.2 * len(titles), 3.8), squeeze=False)
        for ax, title in zip(axes.flat, titles):
            mine = [p for p in panels if p[0] == title]
            ax.barh(range(len(mine)), [p[2] for p in mine],
                    color=["#2ca02c" if p[2] >= 1 else "#d62728" for p in mine])
            ax.set_yticks(range(len(mine)), [p[1] for p in mine], fontsize=8)
            ax.invert_yaxis()
            ax.axvline(1.0, color="black", lw=0.8)
            ax.set_xlabel("speedup (×, >1 = faster)")
            ax.set_title(title, fontsize=10)
            for y, p in enumerate(mine):
                ax.text(p[2], y, f" {p[2]:.2f}×", va="center", fontsize=8)
            ax.set_xlim(0, max(p[2] for p in mine) * 1.3)
        fig.suptitle("SIMD ablation: time per training iteration, ratio of the two variants")
        fig.tight_layout()
        fig.savefig(out / "ablation.png", dpi=110)
        plt.close(fig)
        plots.append("ablation.png")
        text.append("![ablation](ablation.png)")
    return "\n".join(text)


# -- 5. efficiency --------------------------------------------------------------

def _efficiency(data, machine, out, plots):
    table = ladder(data)
    peak = machine.get("peak_gflops", {}).get("float64")
    bandwidth = machine.get("memory_gbps")
    body, bars = [], []
    for name, t in table.items():
        bound = WORKLOADS[name].bound if name in WORKLOADS else "?"
        for impl in _ordered(t):
            r = t[impl]
            gflops = r["flops"] / r["seconds"] / 1e9
            gbps = r["bytes"] / r["seconds"] / 1e9
            body.append([WORKLOADS[name].title if name in WORKLOADS else name, bound, _label(impl),
                         f"{gflops:.3g}", f"{100 * gflops / peak:.1f}%" if peak else "—",
                         f"{gbps:.3g}", f"{100 * gbps / bandwidth:.0f}%" if bandwidth else "—"])
            bars.append((name, impl, gflops, gbps))
    if not body:
        return "No ladder benchmarks in this run."
    text = [f"Measured ceilings: **{peak:.1f} GFLOP/s** float64 (BLAS GEMM probe), "
            f"**{bandwidth:.1f} GB/s** (streaming copy). FLOPs count the GEMM-shaped work "
            "(forward Z = WA, dW = dZ Aᵀ, dA = Wᵀ dZ); bytes the compulsory traffic (X read once, "
            "activations written and read once, parameters). % of peak is the meaningful figure "
            "for GEMM-bound rows, % of bandwidth for memory-bound rows; planar is bound by "
            "per-iteration overhead. The FLOPs are the lecture's nominal count: a backend that "
            "does less arithmetic (e.g. the Cython backend's Gram trick for a huge first layer) "
            "or keeps X in cache across the passes can exceed 100%. The ceilings are the best of "
            "probes before and after the run.", "",
            _table(["workload", "bound", "implementation", "GFLOP/s", "% of peak",
                    "GB/s", "% of bandwidth"], body), ""]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    for a, key, ceiling, unit in ((ax, 2, peak, "GFLOP/s"), (ax2, 3, bandwidth, "GB/s")):
        names = list(table)
        impls = _ordered({b[1] for b in bars})
        width = 0.8 / max(len(impls), 1)
        for k, impl in enumerate(impls):
            xs = [names.index(b[0]) + k * width for b in bars if b[1] == impl]
            ys = [b[key] for b in bars if b[1] == impl]
            a.bar(xs, ys, width, label=_label(impl), color=COLORS.get(impl))
        a.set_xticks([i + 0.4 - width / 2 for i in range(len(names))],
                     [f"{n}\n({WORKLOADS[n].bound}-bound)" if n in WORKLOADS else n
                      for n in names])
        a.set_yscale("log")
        if ceiling:
            a.axhline(ceiling, color="black", ls="--", lw=1,
                      label=f"measured ceiling ({ceiling:.0f} {unit})")
        a.set_ylabel(f"achieved {unit} (log scale)")
        a.grid(axis="y", alpha=0.3)
    ax.set_title("compute: GFLOP/s vs measured GEMM peak")
    ax2.set_title("memory: GB/s vs measured copy bandwidth")
    for a in (ax, ax2):
        a.legend(*[[h for h, lab in zip(*a.get_legend_handles_labels()) if "ceiling" in lab],
                   [lab for lab in a.get_legend_handles_labels()[1] if "ceiling" in lab]],
                 fontsize=8, loc="upper left")
    handles, labels = ax.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels) if "ceiling" not in lab]
    fig.legend([h for h, _ in keep], [lab for _, lab in keep], loc="lower center",
               ncol=len(keep), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(out / "efficiency.png", dpi=110)
    plt.close(fig)
    plots.append("efficiency.png")
    text.append("![efficiency](efficiency.png)")
    return "\n".join(text)


# -- 6. SIMD evidence ---------------------------------------------------------------

def _evidence_rows(source, evidence):
    """Table rows from a ``simd_evidence()`` result of any reasonable shape."""
    if isinstance(evidence, dict) and evidence and all(isinstance(v, dict)
                                                       for v in evidence.values()):
        out = []
        for kernel, counts in evidence.items():
            packed, scalar = counts.get("packed"), counts.get("scalar")
            rest = {k: v for k, v in counts.items() if k not in ("packed", "scalar")}
            out.append([source, kernel, packed, scalar, _short(rest) if rest else ""])
        return out
    return [[source, "—", "—", "—", _short(evidence)]]


def _evidence(data, machine):
    body = []
    for name, b in machine.get("backends", {}).items():
        if b.get("available") and "simd_evidence" in b:
            body += _evidence_rows(name, b["simd_evidence"])
    for r in rows(data, "simd-vectorize-"):
        if r.get("simd_evidence") is not None:
            body += _evidence_rows(f"{r['impl']} (worker)", r["simd_evidence"])
    text = ["Counts of packed (SIMD, `…pd`/`…ps` on xmm/ymm/zmm) vs scalar (`…sd`/`…ss`) "
            "floating-point instructions in each backend's compiled hot loops (Numba "
            "`inspect_asm`, `objdump -d` of the extension), as reported by the backend's "
            "`simd_evidence()`."]
    if not body:
        return "\n".join(text + ["", "No backend reports `simd_evidence()` in this run."])
    return "\n".join(text + ["", _table(["source", "kernel", "packed", "scalar", "details"], body)])


# -- 7. correctness --------------------------------------------------------------------

def _correctness(data):
    table = ladder(data)
    impls = _ordered({i for t in table.values() for i in t})
    body = []
    for name, t in table.items():
        cells = []
        for impl in impls:
            row = t.get(impl, {})
            d = row.get("max_rel_diff_vs_numpy")
            cell = "—" if d is None else f"{d:.1e} ({row.get('check_iterations', '?')} it.)"
            if row.get("check_passed") is False:
                cell += " **FAILED**"
            cells.append(cell)
        body.append([WORKLOADS[name].title if name in WORKLOADS else name] + cells)
    return "\n".join([
        "Max relative difference, max|p − p_numpy| / max|p_numpy| over every W and b, after "
        "training a fresh copy for as many iterations as one timed call (shown in brackets; so "
        "the code path checked is the one timed) from the same initial parameters (float64). "
        "Backends must be ≤ 1e-9: the benchmark asserts it, and a row that failed is marked "
        "**FAILED**. Peers are shown for information: PyTorch, JAX and "
        "scikit-learn take ReLU'(0) = 0 where the lecture takes 1, which matters on the relu "
        "nets because zero-initialized biases give Z = 0 exactly for dead units.", "",
        _table(["workload"] + [_label(i) for i in impls], body)])


# -- the whole report ------------------------------------------------------------------

def write_report(data, machine, out_dir, *, mode="full", source=None):
    """Write ``out_dir/REPORT.md`` and its PNGs; return the REPORT.md path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    parts = [
        "# fastnn performance report",
        "",
        f"Mode: **{mode}**. Benchmarks: pytest-benchmark {data.get('version', '?')}, "
        f"{data.get('datetime', '?')}" + (f", from `{source}`" if source else "") + ". "
        "Every time is per training iteration of batch gradient descent (forward, backward, "
        "update; the cost computed once per timed call), the best of several rounds (other "
        "load on the machine only adds time), JIT compile "
        "excluded (warm-up call outside the timer).",
    ]
    sections = [
        _machine(machine), _ladder(data, out, plots), _scaling(data, out, plots),
        _ablation(data, out, plots), _efficiency(data, machine, out, plots),
        _evidence(data, machine), _correctness(data),
    ]
    for title, body in zip(SECTIONS, sections):
        parts += ["", f"## {title}", "", body]
    path = out / "REPORT.md"
    path.write_text("\n".join(parts) + "\n")
    return path
