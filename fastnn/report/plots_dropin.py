"""The drop-in section's figure (section 11), which :func:`.plots.draw` writes."""

import matplotlib.pyplot as plt

from . import verdicts_dropin as vd
from ._ticks import tight

__all__ = ["figure"]

COLORS = {"met": "#2ca02c", "medians": "#98df8a", "missed": "#d62728", None: "#9e9e9e"}


def _panel(ax, rows, labels, goals, outcomes, title):
    ratios = [r.speed.value for r in rows]
    lo = [max(r.speed.value - r.sklearn.q1 / r.fastnn.q3, 0) for r in rows]
    hi = [max(r.sklearn.q3 / r.fastnn.q1 - r.speed.value, 0) for r in rows]
    ax.barh(range(len(rows)), ratios, xerr=[lo, hi], capsize=2,
            color=[COLORS.get(o, COLORS[None]) for o in outcomes])
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", lw=0.8)
    for y, (g, r) in enumerate(zip(goals, ratios)):
        ax.plot([g, g], [y - 0.4, y + 0.4], color="black", ls=":", lw=1)
        ax.text(r, y + 0.3, f" {r:.2f}×", fontsize=7)
    cpu = [(y, r.cpu) for y, r in enumerate(rows) if r.cpu is not None]
    if cpu:
        ax.plot([c for _, c in cpu], [y for y, _ in cpu], "D", color="black", ms=3)
    ax.set_xlim(0, max([h + r for h, r in zip(hi, ratios)] + goals + [c for _, c in cpu]) * 1.15)
    ax.set_xlabel("scikit-learn's time ÷ fastnn's (medians, whisker: quartiles; ◆: CPU time; "
                  "dotted: goal)", fontsize=7)
    ax.set_title(title, fontsize=10)


def figure(d):
    """Speedups over scikit-learn: whole default fits (left) and per epoch (right).
    Green: met (light: at the medians), red: missed, grey: reported only."""
    panels = [p for p in ("fits", "epochs") if getattr(d, p)]
    n = max(len(getattr(d, p)) for p in panels)
    height = max(2.6, 1.0 + 0.26 * n)  # a one-row panel still reads
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), height), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        if panel == "fits":
            rows = d.fits
            _panel(ax, rows, [f"{r.problem} {r.dtype} {r.threads}" for r in rows],
                   [vd.FIT_GOAL] * len(rows), [r.outcome for r in rows],
                   "default fit, same test score")
        else:
            rows = d.epochs
            _panel(ax, rows, [f"{r.problem} {r.solver} {r.dtype} {r.threads}" for r in rows],
                   [vd.EPOCH_GOALS[r.solver] for r in rows], [r.speed.outcome for r in rows],
                   "per epoch (lbfgs: per iteration)")
    fig.suptitle("fastnn.sklearn against scikit-learn, both with their defaults", fontsize=10)
    tight(fig)
    return fig
