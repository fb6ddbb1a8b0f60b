"""The words of the report's mini-batch section (section 8), made from the
verdicts of :mod:`.verdicts_minibatch` as :mod:`.phrasing` makes the others'."""

from .phrasing import label, ratio_cell, versus
from .results import format_seconds
from .verdicts_minibatch import MLP_BATCH, MLP_TARGET

__all__ = ["intro", "notes", "check", "lead_cell", "not_run", "LEGEND", "data_name"]

#: The target the comparison with MLPClassifier is held to.
TARGET = f"the target of ≥ {MLP_TARGET:g}×"
MLP = "`MLPClassifier(solver=\"sgd\", momentum=0, alpha=0)`"

INTRO = ("Mini-batch gradient descent on a {dims} relu/softmax net (float64, learning rate "
         "{lr}) with m = {m:,} examples of {data}. Times are **per epoch** — m / B updates of B "
         "examples each (the last batch smaller) — the median over the interleaved rounds of "
         "one group per batch size; the spread (IQR) is given in every cell.")
DATA = {"sklearn": "scikit-learn's digits (1797 8×8 images, pixels / 16; the first {m:,} of a "
                   "seeded permutation, a 75/25 split)",
        "synthetic": "a synthetic stand-in for scikit-learn's digits (64 features in [0, 1], 10 "
                     "classes, scikit-learn not installed)"}
LEAD = {
    "top": "The {kind} lead over the fastest peer is largest at **B = {b:,}**: {vs}.",
    "low": " It is smallest at B = {b:,} ({ratio:.3g}×).",
    "lost": " At B = {sizes} the fastest fastnn backend does not beat the fastest peer beyond "
            "the noise ({items}).",
    "none": "At no batch size is the fastest fastnn backend ahead of the fastest peer with "
            "separated spreads, so no lead is claimed.",
    "no peer": "No peer ran (`pip install \"fastnn[compare]\"` adds PyTorch, JAX and "
               "scikit-learn; the course's NumPy loop needs none), so no lead is computed.",
}
#: The comparison with MLPClassifier, by its outcome (:class:`.MlpComparison`).
AGAINST_MLP = {
    "meets": ", which meets " + TARGET,
    "medians": " at the medians but {quartiles:.3g}× quartile against quartile, so this run "
               "does not show " + TARGET + " beyond the noise",
    "short": ", which falls short of " + TARGET,
}
MLP_FASTER = ("Against " + MLP + " with the same sizes at B = {b}, measured side by side on "
              "{data}: an epoch of {impl} takes {a_median}, scikit-learn's {b_median} — "
              "**{ratio:.3g}× faster**{outcome}.")
MLP_OTHER = {
    "not faster": "Against " + MLP + " at B = {b}, on {data}: {vs}, so " + TARGET
                  + " is not shown by this run.",
    "not run": "scikit-learn did not run at B = {b}, so the comparison with MLPClassifier is not "
               "made here.",
}
OVERHEAD = ("An epoch is the same arithmetic at every B; what grows as B shrinks is the number "
            "of updates (m / B), each with its fixed overhead: an epoch at B = {lo:,} takes "
            "{first:.3g}× as long as one at B = {hi:,} for {impl}{rest}.")
LEGEND = ("Cells: median epoch time ± half its interquartile range (as % of the median). Last "
          "row: how many times faster the fastest fastnn backend (compiled, when one ran) is than "
          "the fastest peer; ≈ marks overlapping spreads, where no lead is claimed.")
NOTES = ("Every implementation starts from the same initial arrays and data; fastnn backends, "
         "the course's loop, PyTorch and JAX shuffle with the same seeded `rng.permutation(m)` "
         "per epoch (so they train the same batches), scikit-learn with its own. Per call, "
         "fastnn's `train` evaluates the full-data cost of its first and last epoch, as `fit` "
         "records it; the course's loop computes each batch's cost as the assignment does; "
         "MLPClassifier computes each batch's loss and L2 term (even at alpha = 0), and at each "
         "epoch's end updates its loss curve and convergence test — its own per-epoch overhead, "
         "part of what it costs to train with it.")
THREADS = ("Threads: NumPy's BLAS (numpy, the course's loop, scikit-learn) ran {blas}, PyTorch "
           "{torch} — products of 64 × B gain nothing from a second, and on a shared machine a "
           "2-thread pool waits for its descheduled thread; fastnn backends chose their own "
           "(`threads=None`), JAX ran XLA's defaults.")


def data_name(meta, short=False):
    """What the mini-batch data were, from the groups' ``data`` record."""
    if short:
        return "scikit-learn's digits" if meta.get("data") == "sklearn" else \
            "the synthetic stand-in for digits (same shape; times depend on shapes only)"
    return DATA.get(meta.get("data"), "digits").format(m=meta.get("m", 0))


def intro(v, meta):
    """The section's opening paragraph, from the verdicts ``v`` and the groups' ``meta``."""
    dims = "-".join(map(str, meta.get("layer_dims") or ())) or "64-64-10"
    out = [INTRO.format(dims=dims, lr=meta.get("learning_rate", "?"), m=meta.get("m", 0),
                        data=data_name(meta))]
    if v.top is not None:
        kind = "compiled backends'" if v.compiled else "fastnn backends'"
        text = LEAD["top"].format(kind=kind, b=v.top, vs=versus(v.leads[v.top]))
        if v.low is not None:
            text += LEAD["low"].format(b=v.low, ratio=v.leads[v.low].ratio)
        if v.lost:
            text += LEAD["lost"].format(sizes=", ".join(f"{b:,}" for b in v.lost),
                                        items="; ".join(versus(v.leads[b]) for b in v.lost))
        out.append(text)
    else:
        out.append(LEAD["none"] if v.leads else LEAD["no peer"])
    mlp = v.mlp
    if mlp is not None:
        data = data_name(meta, short=True)
        if mlp.outcome in AGAINST_MLP:
            outcome = AGAINST_MLP[mlp.outcome].format(quartiles=mlp.quartiles)
            out.append(MLP_FASTER.format(
                b=MLP_BATCH, data=data, impl=mlp.vs.a, a_median=format_seconds(mlp.vs.a_median),
                b_median=format_seconds(mlp.vs.b_median), ratio=mlp.vs.ratio, outcome=outcome))
        else:
            out.append(MLP_OTHER[mlp.outcome].format(b=MLP_BATCH, data=data,
                                                     vs=mlp.vs and versus(mlp.vs)))
    if v.overhead:
        (impl, first), rest = v.overhead[0], v.overhead[1:]
        out.append(OVERHEAD.format(lo=v.sizes[0], hi=v.sizes[-1], first=first, impl=impl,
                                   rest="".join(f", {r:.3g}× for {i}" for i, r in rest)))
    return out


def notes(meta):
    out = [NOTES]
    if meta.get("blas_threads") or meta.get("torch_threads"):
        out.append(THREADS.format(blas=meta.get("blas_threads", "?"),
                                  torch=meta.get("torch_threads", "?")))
    return out


def check(c):
    """The checks after timing (a :class:`.verdicts.Checks`) in one sentence."""
    if c.failed or c.not_lowered:
        return ("**Checks FAILED**: " + ", ".join(
            [f"{impl} at B = {b} differs from numpy" for impl, b in c.failed]
            + [f"{impl} at B = {b} did not lower the cost" for impl, b in c.not_lowered]) + ".")
    return ("Checked after timing: every implementation lowered the full-data cost, and fresh "
            "copies trained with the timed settings match the numpy backend's parameters — "
            f"fastnn backends within 1e-9 (worst {c.worst:.1e})"
            + (f", the peers that share the shuffles within {c.peers:.1e} (scikit-learn shuffles "
               "its own way)" if c.peers is not None else "") + ".")


def lead_cell(v):
    """The last row's cell at one batch size: ``v`` best against the fastest peer."""
    return "—" if v is None else f"{ratio_cell(v)} ({v.a} vs {label(v.b)})"


def not_run(v):
    """The implementations a group did not run, by reason."""
    items = [f"{label(impl)} at B = {', '.join(f'{b:,}' for b in bs)}: {why}"
             for impl, why, bs in v.not_run]
    return ["Not run: " + "; ".join(items) + ".", ""] if items else []
