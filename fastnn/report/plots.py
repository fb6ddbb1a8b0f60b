"""The report's PNG plots: :func:`draw` writes every one of them, from a
:class:`~fastnn.report.results.Results` and its :mod:`.verdicts` (section 10's
figures are drawn by :mod:`.plots_optimizers`).

matplotlib's Agg backend (no display needed). Times are per training
iteration; a bar or point is the median over the interleaved rounds and its
whisker or band the spread (min to 3rd quartile on bars, the interquartile
range on lines), so a reader sees at once which differences are real. Each
``*_figure`` function returns its figure unsaved (the tests look at them).
"""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter  # noqa: E402

from . import plots_dropin as _dropin  # noqa: E402
from . import plots_optimizers as _opt  # noqa: E402
from ._ticks import tight  # noqa: E402
from .phrasing import ABLATION_TITLES, label, pair_label, title  # noqa: E402
from .results import format_seconds  # noqa: E402
from .verdicts_minibatch import MLP_BATCH, MLP_TARGET  # noqa: E402
from .workloads import WORKLOADS  # noqa: E402

__all__ = ["draw", "ladder_figure", "scaling_figure", "ablation_figure", "efficiency_figure",
           "minibatch_figure", "COLORS"]

COLORS = {"loops": "#9e9e9e", "per_example": "#8d6e63", "numpy": "#1f77b4",
          "numpy:blas-default": "#6baed6", "numba": "#2ca02c", "cython": "#d62728",
          "cython:gram": "#f4a3a3", "cython:blas": "#8c1c1c", "peer:torch": "#ff7f0e",
          "peer:jax": "#9467bd", "peer:sklearn": "#17becf", "peer:course": "#bcbd22",
          "python loop": "#9e9e9e", "np.dot": "#1f77b4", "numba loop": "#2ca02c"}



def draw(res, v, out_dir):
    """Write every plot the results have data for into ``out_dir``; return the
    names of the files written."""
    figures = {"ladder.png": res.ladder and (lambda: ladder_figure(res)),
               "scaling.png": res.sweep and (lambda: scaling_figure(res)),
               "ablation.png": v.ablation.pairs and (lambda: ablation_figure(v.ablation)),
               "efficiency.png": v.efficiency and (lambda: efficiency_figure(v.efficiency)),
               "minibatch.png": v.minibatch and (lambda: minibatch_figure(res, v.minibatch.best)),
               "optim_cost.png": v.optimizers and v.optimizers.cost
               and (lambda: _opt.cost_figure(v.optimizers)),
               "optim_adam.png": v.optimizers and any(
                   g.split("-")[1] == "adam" for g in res.optimizers)
               and (lambda: _opt.adam_figure(res)),
               "optim_digits.png": v.optimizers and v.optimizers.fastest
               and (lambda: _opt.digits_figure(res)),
               "dropin.png": v.dropin and (lambda: _dropin.figure(v.dropin))}
    drawn = set()
    for name, make in figures.items():
        if make:
            fig = make()
            fig.savefig(out_dir / name, dpi=110)
            plt.close(fig)
            drawn.add(name)
    return drawn


def _log_decades(ax, lo, hi, axis="x"):
    """A log axis from the decade at or below ``lo`` to the one at or above ``hi``:
    at least two labelled decades, and no labels on the minor ticks -- with one
    decade in view matplotlib labels every minor tick, and "2×10³ 3×10³ 4×10³"
    ran into each other."""
    lo, hi = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
    if hi <= lo:
        hi = lo * 10
    getattr(ax, f"set_{axis}scale")("log")
    getattr(ax, f"set_{axis}lim")(lo, hi)
    which = ax.xaxis if axis == "x" else ax.yaxis
    which.set_major_locator(LogLocator(base=10, numticks=12))
    which.set_minor_formatter(NullFormatter())


def _bars(ax, timings, scale, unit):
    names = list(timings)
    med = [timings[n].median * scale for n in names]
    err = [[timings[n].median * scale - timings[n].min * scale for n in names],
           [timings[n].q3 * scale - timings[n].median * scale for n in names]]
    ax.barh(range(len(names)), med, xerr=err, capsize=2,
            color=[COLORS.get(n, "grey") for n in names], error_kw={"lw": 0.8})
    ax.set_yticks(range(len(names)), [label(n) for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"{unit} (median; whisker: min to 3rd quartile; log scale)", fontsize=8)
    for y, n in enumerate(names):
        ax.text(timings[n].q3 * scale, y, " " + format_seconds(timings[n].median)
                + (" (wide spread)" if timings[n].wide else ""), va="center", fontsize=7)
    # Room on the right for the labels beside the longest bar.
    _log_decades(ax, min(t.min for t in timings.values()) * scale / 2,
                 max(t.q3 for t in timings.values()) * scale * 12)
    ax.grid(axis="x", which="major", alpha=0.3)


def ladder_figure(results):
    """One panel per workload (+ the dot demo): time per iteration of every rung."""
    panels = [(n, t) for n, t in results.ladder.items()]
    if results.dot:
        panels.append(("dot", results.dot))
    cols = 2 if len(panels) > 1 else 1
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.8 * cols, 3.3 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax, (name, timings) in zip(flat, panels):
        if name == "dot":
            _bars(ax, timings, 1e3, "ms per dot product")
            ax.set_title("the lecture's demo: dot product of two 10⁶-vectors", fontsize=10)
        else:
            _bars(ax, timings, 1e6, "µs per training iteration")
            ax.set_title(title(name), fontsize=10)
    for ax in flat[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("The ladder (float64; every fastnn rung trains layer 1 the lecture's way "
                 "unless labelled Gram)", fontsize=10)
    tight(fig)
    return fig


def scaling_figure(results):
    """Time per iteration and per example against m, median with its IQR band."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
    units = ((ax, lambda s, m: s * 1e6), (ax2, lambda s, m: s / m * 1e9))
    for impl, pts in results.sweep.items():
        ms = sorted(pts)
        color = COLORS.get(impl)
        for a, unit in units:
            a.plot(ms, [unit(pts[m].median, m) for m in ms], "o-", label=label(impl),
                   color=color, ms=3)
            a.fill_between(ms, [unit(pts[m].q1, m) for m in ms],
                           [unit(pts[m].q3, m) for m in ms], color=color, alpha=0.2, lw=0)
    ax.set(xlabel="m (examples, log scale)", ylabel="µs per training iteration (log scale)",
           title="time vs m (band: IQR)")
    ax2.set(xlabel="m (examples, log scale)", ylabel="ns per example per iteration (log scale)",
            title="per example: flat = streaming, falling = fixed overhead")
    every_m = [m for pts in results.sweep.values() for m in pts]
    for a, unit in units:
        values = [unit(t, m) for pts in results.sweep.values() for m, x in pts.items()
                  for t in (x.q1, x.q3)]
        _log_decades(a, min(every_m), max(every_m))
        _log_decades(a, min(values), max(values), "y")
        a.grid(which="major", alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("planar 2-4-1 tanh/sigmoid, float64", fontsize=10)
    tight(fig)
    return fig


def ablation_figure(ablation):
    """Speedup bars of each ablation pair (:class:`.verdicts.Ablation`), one panel
    per kind; the whisker spans the ratios of the quartiles."""
    pairs = ablation.pairs
    kinds = [k for k in ABLATION_TITLES if any(p.kind == k for p in pairs)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.4 * len(kinds), 3.8), squeeze=False)
    for ax, kind in zip(axes.flat, kinds):
        mine = [p for p in pairs if p.kind == kind]
        ratios = [p.base.median / p.new.median for p in mine]
        lo = [r - p.base.q1 / p.new.q3 for r, p in zip(ratios, mine)]
        hi = [p.base.q3 / p.new.q1 - r for r, p in zip(ratios, mine)]
        ax.barh(range(len(mine)), ratios, xerr=[[max(x, 0) for x in lo], [max(x, 0) for x in hi]],
                capsize=2, color=["#2ca02c" if r >= 1 else "#d62728" for r in ratios])
        ax.set_yticks(range(len(mine)), [pair_label(p) for p in mine], fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xlabel("speedup, ratio of medians (whisker: ratio of quartiles)", fontsize=8)
        one_thread = " (1 thread)" if ablation.one_thread[kind] else ""
        ax.set_title(ABLATION_TITLES[kind][0] + one_thread, fontsize=10)
        for y, r in enumerate(ratios):
            ax.text(r, y - 0.3, f" {r:.2f}×", fontsize=8)
        ax.set_xlim(0, max(p.base.q3 / p.new.q1 for p in mine) * 1.25)
    fig.suptitle("SIMD ablation: time per training iteration, ratio of the two variants",
                 fontsize=10)
    tight(fig)
    return fig


def efficiency_figure(e):
    """Achieved GFLOP/s and GB/s per workload and rung (:class:`.verdicts.Efficiency`)
    against the measured ceilings: the GEMM peak, and for each workload the
    bandwidth of the level its working set reaches (L3 or DRAM)."""
    rows = e.rows
    names = list(dict.fromkeys(r.workload for r in rows))
    impls = list(dict.fromkeys(r.impl for r in rows))
    width = 0.8 / max(len(impls), 1)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    for a, key, unit in ((ax, "gflops", "GFLOP/s"), (ax2, "gbps", "GB/s")):
        for k, impl in enumerate(impls):
            mine = [r for r in rows if r.impl == impl]
            a.bar([names.index(r.workload) + k * width for r in mine],
                  [getattr(r, key) for r in mine], width, label=label(impl), color=COLORS.get(impl))
        a.set_xticks([i + 0.4 - width / 2 for i in range(len(names))],
                     [f"{n}\n({WORKLOADS[n].bound}-bound)" if n in WORKLOADS else n
                      for n in names], fontsize=8)
        a.set_ylabel(f"achieved {unit} (median; log scale)")
        a.grid(axis="y", alpha=0.3)
    ax.axhline(e.peak, color="black", ls="--", lw=1)
    ax.text(len(names) - 0.5, e.peak, f"measured GEMM peak {e.peak:.0f} GFLOP/s", ha="right",
            va="bottom", fontsize=8)
    ceilings = []
    for i, name in enumerate(names):
        r = next(r for r in rows if r.workload == name)
        if r.ceiling_gbps:
            ceilings.append(r.ceiling_gbps)
            ax2.hlines(r.ceiling_gbps, i - width / 2 - 0.05, i + 0.8 - width / 2 + 0.05,
                       color="black", ls="--", lw=1)
            ax2.text(i + 0.4 - width / 2, r.ceiling_gbps, f"{r.level} {r.ceiling_gbps:.0f} GB/s",
                     ha="center", va="bottom", fontsize=7)
    for a, values in ((ax, [r.gflops for r in rows] + [e.peak]),
                      (ax2, [r.gbps for r in rows] + ceilings)):
        values = [x for x in values if x and x > 0]
        if values:
            _log_decades(a, min(values), max(values) * 1.5, "y")
    ax.set_title("compute: GFLOP/s vs the measured GEMM peak", fontsize=10)
    ax2.set_title("memory: GB/s vs the bandwidth of the level each working set reaches",
                  fontsize=10)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)
    tight(fig, rect=(0, 0.1, 1, 1))
    return fig


def minibatch_figure(results, best):
    """Time per epoch against the batch size (log-log, median with its IQR band),
    and each peer's time over ``best``'s (``{B: impl}``: the fastest fastnn
    backend at each batch size), where that lead is read off."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.4))
    for impl, pts in results.minibatch.items():
        bs = sorted(pts)
        color = COLORS.get(impl)
        style = "s--" if impl.startswith("peer:") else "o-"
        ax.plot(bs, [pts[b].median * 1e3 for b in bs], style, label=label(impl), color=color,
                ms=3)
        ax.fill_between(bs, [pts[b].q1 * 1e3 for b in bs], [pts[b].q3 * 1e3 for b in bs],
                        color=color, alpha=0.2, lw=0)
        if not impl.startswith("peer:"):
            continue
        mine = [b for b in bs if b in best]
        ratios = [pts[b].median / results.minibatch[best[b]][b].median for b in mine]
        ax2.plot(mine, ratios, "s--", label=label(impl), color=color, ms=3)
        # Band: the ratio of quartiles, the noise rule's "do the spreads separate".
        ax2.fill_between(mine, [pts[b].q1 / results.minibatch[best[b]][b].q3 for b in mine],
                         [pts[b].q3 / results.minibatch[best[b]][b].q1 for b in mine],
                         color=color, alpha=0.2, lw=0)
    ax.set(xscale="log", yscale="log", xlabel="batch size B (log scale)",
           ylabel="ms per epoch (log scale)", title="time per epoch vs batch size (band: IQR)")
    sizes = sorted({b for pts in results.minibatch.values() for b in pts})
    ax2.axhline(1.0, color="black", lw=0.8)
    ax2.axhline(MLP_TARGET, color="grey", lw=0.8, ls=":")
    ax2.text(max(best) if best else 1, MLP_TARGET,
             f"{MLP_TARGET:g}× (the target against scikit-learn at B = {MLP_BATCH}) ",
             fontsize=7, va="bottom", ha="right", color="grey")
    ax2.set(xscale="log", yscale="log", xlabel="batch size B (log scale)",
            ylabel="peer time ÷ fastest fastnn time (log scale)",
            title=f"lead of the fastest fastnn backend\n"
                  f"({', '.join(dict.fromkeys(best.values()))}; above 1: fastnn faster)")
    for a in (ax, ax2):
        a.grid(which="major", alpha=0.3)
        a.set_xticks(sizes, [f"{b:,}" for b in sizes])
        a.minorticks_off()
    # One legend for both panels, below them: inside, it hid the lines it names.
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
               frameon=False)
    meta = results.minibatch_meta
    data = {"sklearn": "scikit-learn's digits", "synthetic": "synthetic digits-shaped data"}.get(
        meta.get("data"), "digits")
    dims = "-".join(map(str, meta.get("layer_dims") or (64, 64, 10)))
    fig.suptitle(f"mini-batch SGD, one epoch = m / B updates: {dims} relu/softmax, "
                 f"m = {meta.get('m', '?')}, {data}, float64", fontsize=10)
    tight(fig, rect=(0, 0.1, 1, 1))
    return fig
