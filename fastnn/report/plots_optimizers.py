"""The optimizer section's figures (section 10), which :func:`.plots.draw`
writes: each returns its figure unsaved."""

import matplotlib.pyplot as plt

from ._ticks import tight
from .phrasing import label
from .verdicts_optimizers import COST_GOALS

__all__ = ["cost_figure", "adam_figure", "digits_figure"]


def _groups(res, kind):
    """``{(dtype, batch_size): group}`` of the optim-<kind>-* groups."""
    return {(m.get("dtype"), m.get("batch_size")): g for g, m in res.optimizers_meta.items()
            if g.split("-")[1] == kind}


def _dtypes(keys):
    return sorted({d for d, _ in keys}, key=lambda d: d != "float64")


def _per_dtype(res, kind, width, height):
    """The optim-<kind>-* groups and a figure of one panel per dtype (float64
    first), ``width`` x ``height`` inches each: ``(groups, fig, axes, dtypes)``."""
    groups = _groups(res, kind)
    dtypes = _dtypes(groups)
    fig, axes = plt.subplots(1, len(dtypes), figsize=(width * len(dtypes), height), squeeze=False)
    return groups, fig, axes, dtypes


def _titled(fig, title, **layout):
    """``fig`` with its title, laid out (``layout``: ``tight_layout``'s)."""
    fig.suptitle(title, fontsize=10)
    tight(fig, **layout)
    return fig


def cost_figure(o):
    """Adam's and dropout's epoch over plain GD's, per backend, dtype and B, against
    the goals; the whisker spans the ratios of the quartiles. Green: met (light:
    at the medians), red: missed, grey: not judged (not a compiled backend)."""
    kinds = [k for k in COST_GOALS if any(c.variant == k for c in o.cost)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.6 * len(kinds), 0.9 + 0.32 * len(o.cost)),
                             squeeze=False)
    for ax, kind in zip(axes.flat, kinds):
        mine = [c for c in o.cost if c.variant == kind]
        ratios = [c.timing.median / c.gd.median for c in mine]
        lo = [max(r - c.timing.q1 / c.gd.q3, 0) for r, c in zip(ratios, mine)]
        hi = [max(c.timing.q3 / c.gd.q1 - r, 0) for r, c in zip(ratios, mine)]
        ax.barh(range(len(mine)), ratios, xerr=[lo, hi], capsize=2,
                color=[{"met": "#2ca02c", "medians": "#98df8a", "missed": "#d62728"}.get(
                    c.goal.outcome, "#9e9e9e") for c in mine])
        ax.set_yticks(range(len(mine)), [f"{c.backend} {c.dtype} B={c.batch_size}" for c in mine],
                      fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", lw=0.8)
        ax.axvline(COST_GOALS[kind], color="grey", ls=":", lw=1)
        ax.text(COST_GOALS[kind], len(mine) - 0.45, f" goal ≤ {COST_GOALS[kind]:g}×", fontsize=7,
                color="grey")
        for y, r in enumerate(ratios):
            ax.text(r, y + 0.3, f" {r:.2f}×", fontsize=7)
        ax.set_xlim(0, max(hi[i] + ratios[i] for i in range(len(mine))) * 1.2)
        ax.set_xlabel(f"{kind} epoch ÷ gd epoch (medians; whisker: quartiles)", fontsize=8)
        ax.set_title(f"{kind} vs plain gradient descent", fontsize=10)
    return _titled(fig, "What the course's second part adds to an epoch (goals: compiled backends)")


def adam_figure(res):
    """Time per Adam epoch of every implementation, one panel per dtype."""
    from .plots import _bars

    groups, fig, axes, dtypes = _per_dtype(res, "adam", 6.8, 3.6)
    for ax, dtype in zip(axes.flat, dtypes):
        group = next(g for (d, _), g in groups.items() if d == dtype)
        _bars(ax, res.optimizers[group], 1e3, "ms per epoch")
        meta = res.optimizers_meta[group]
        ax.set_title(f"{dtype}, B = {meta.get('batch_size')}, m = {meta.get('m', 0):,}",
                     fontsize=10)
    return _titled(fig, "An epoch with Adam: fastnn and its peers (100-128-64-5 relu/softmax)")


def digits_figure(res):
    """Time per Adam epoch against B on digits, one panel per dtype (median, IQR band)."""
    from .plots import COLORS

    groups, fig, axes, dtypes = _per_dtype(res, "digits", 6.2, 4.4)
    for ax, dtype in zip(axes.flat, dtypes):
        sizes = sorted(b for d, b in groups if d == dtype)
        impls = list(dict.fromkeys(i for b in sizes for i in res.optimizers[groups[dtype, b]]))
        for impl in impls:
            pts = [(b, res.optimizers[groups[dtype, b]][impl]) for b in sizes
                   if impl in res.optimizers[groups[dtype, b]]]
            color = COLORS.get(impl)
            ax.plot([b for b, _ in pts], [t.median * 1e3 for _, t in pts],
                    "s--" if impl.startswith("peer:") else "o-", label=label(impl), color=color,
                    ms=3)
            ax.fill_between([b for b, _ in pts], [t.q1 * 1e3 for _, t in pts],
                            [t.q3 * 1e3 for _, t in pts], color=color, alpha=0.2, lw=0)
        ax.set(xscale="log", yscale="log", xlabel="batch size B (log scale)",
               ylabel="ms per epoch (log scale)", title=f"{dtype} (band: IQR)")
        ax.set_xticks(sizes, [f"{b:,}" for b in sizes])
        ax.minorticks_off()
        ax.grid(which="major", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8,
               frameon=False)
    return _titled(fig, "digits 64-64-10 with Adam: time per epoch vs batch size",
                   rect=(0, 0.1, 1, 1))
