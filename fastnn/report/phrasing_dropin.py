"""The words and tables of the report's drop-in section (section 11), made
from the verdicts of :mod:`.verdicts_dropin`."""

from . import verdicts_dropin as vd
from .machine_text import table
from .phrasing_optimizers import against_products
from .results import format_seconds

__all__ = ["section", "TITLE"]

TITLE = "11. Drop-in: the same model, how fast"
OUTCOME = {"met": "**met**", "medians": "met at the medians", "missed": "**missed**",
           None: "— (reported)"}
THREADS = {"all": "all cores", "one": "1 thread"}
ESTIMATORS = {"classification": ("`NetworkClassifier()`", "`MLPClassifier()`"),
              "regression": ("`NetworkRegressor()`", "`MLPRegressor()`")}

INTRO = ("`fastnn.sklearn`'s estimators against scikit-learn's, each with **its defaults** "
         "(adam, batch 200, `max_iter=200`, the stopping rule on) and `random_state=0`, on "
         "**{cpu}** ({cores} logical cores; load average {load} during these groups). "
         "Every case timed interleaved — one fit of each per round, the order rotated every "
         "round — by the wall clock (the ratios judged) and by the process's CPU time (shown "
         "beside: what a fit cost whatever else ran on the machine). Threads: *all cores* is "
         "what a user gets (fastnn `threads=None`, scikit-learn's BLAS on every core), *1 "
         "thread* holds every pool to one. float32: X cast to float32 (scikit-learn keeps it, "
         "fastnn trains with `dtype=\"float32\"`). fastnn's `backend=\"auto\"` took {backends}.")
BUSY = ("**A busy machine:** the load average reached {load:.2g} on {cores} cores. Read the "
        "*all cores* rows with care: a multi-threaded BLAS whose threads meet at a barrier after "
        "every product waits whenever one of them is descheduled, which costs scikit-learn (its "
        "BLAS on every core, a few products per mini-batch) far more than on a quiet machine; "
        "the *1 thread* rows and the CPU-time ratios are the ones that hold.")
PROBLEMS = "Problems (training set; a held-out test set scores each fit): {items}."
FIT_INTRO = ("**Whole fits to the same model.** Goal: fastnn's default fit in **≤ 1/3** of "
             "scikit-learn's fit time (a speedup ≥ {goal:g}×), its test score (accuracy; R² for "
             "regression) within {gap:g} points of scikit-learn's, on {judged}; the cats are "
             "reported. Both train the same model (the same initial weights, shuffles and "
             "update rules), so both stop at the same epoch in float64.")
EPOCH_INTRO = ("**Per epoch of each solver** (the stopping rule off: `tol=0`, both run the "
               "same epochs), at the default batch size; lbfgs per iteration, on the whole "
               "training set. Goals: sgd and adam ≥ {sgd:g}× faster than scikit-learn's same "
               "solver, lbfgs at least level (≥ {lbfgs:g}×) and within {floor:g}× of the GEMM "
               "floor of its iteration on the 50 000 × 100 problem — its products (forward: Z "
               "= W A; backward: dW = dZ Aᵀ, and dA = Wᵀ dZ but for the first layer) times "
               "the loss-and-gradient evaluations per iteration (counted in a check fit), at "
               "the GEMM peak measured beside the group on the same threads (a BLAS 1024³ "
               "GEMM, the best of before and after). On one thread the same products run "
               "alone — through NumPy's BLAS into preallocated arrays, nothing between them, "
               "about a microsecond of Python a product included, the best of 5 before and 5 "
               "after — give the least time an epoch (iteration) can take with this BLAS at "
               "these shapes (the floor below which a missed goal's allowance falls); a missed "
               "goal says what it allows against that.")
LEGEND = ("Times: medians over the rounds ± half the IQR. Speedup: scikit-learn's median "
          "over fastnn's (in brackets: scikit-learn's fast quartile over fastnn's slow one, "
          "the bound a goal is judged on); CPU: the same ratio of process CPU time.")
CHECK = ("Checked after timing, in the benchmark itself: every fit's test score against "
         "scikit-learn's (within {gap:g} points, asserted but on the cats), and in every "
         "epoch group that both lowered the training loss and, in float64, ended on the same "
         "loss (relative difference ≤ 1e-6, asserted): the same model.")


def _seconds(t):
    return f"{format_seconds(t.median)} ±{50 * t.spread:.0f}%"


def _speed(g):
    return f"{g.value:.3g}× ({g.bound:.3g}×)"


def _cpu(x):
    return "—" if x is None else f"{x:.3g}×"


def _verdict(outcome, target, sign="≥"):
    return OUTCOME[outcome] + ("" if outcome is None else f" ({sign} {target:g}×)")


def _epoch_goal(r):
    """The per-epoch verdict; a missed one says what epoch time the goal allows
    and what the epoch's products alone take on one thread."""
    text = _verdict(r.speed.outcome, vd.EPOCH_GOALS[r.solver])
    if r.speed.outcome != "missed" or r.products is None:
        return text
    return text + against_products(r.allowed, r.products,
                                   "an iteration" if r.solver == "lbfgs" else "an epoch")


def _floor_cell(r):
    f = r.floor
    if f is None:
        return "—"
    text = (f"{format_seconds(f.seconds)} ({f.gflop:.3g} GFLOP at {f.peak:.3g} GFLOP/s, "
            f"{f.evaluations:.2g} evaluations)")
    if r.products is not None:
        text += (f"; its products alone at one-thread BLAS: {format_seconds(r.products)} "
                 f"({r.products / f.seconds:.3g}× the floor)")
    return text


def _score(x, kind):
    if x is None:
        return "—"
    return f"{100 * x:.2f} %" if kind == "classification" else f"R² {x:.4f}"


def _summary(d):
    """One line per goal: how many cases met it."""
    lines = []
    for name, rows, get in (
            ("Fit in ≤ 1/3 of scikit-learn's time, the same test score",
             d.fits, lambda r: r.outcome),
            ("sgd and adam ≥ 3× per epoch", [r for r in d.epochs if r.solver != "lbfgs"],
             lambda r: r.speed.outcome),
            ("lbfgs level per iteration", [r for r in d.epochs if r.solver == "lbfgs"],
             lambda r: r.speed.outcome),
            (f"lbfgs within {vd.FLOOR_GOAL:g}× of its GEMM floor",
             [r for r in d.epochs if r.floor is not None], lambda r: r.floor.goal.outcome)):
        judged = [r for r in rows if get(r) is not None]
        if not judged:
            continue
        met = sum(get(r) == "met" for r in judged)
        medians = sum(get(r) == "medians" for r in judged)
        lines.append(f"- {name}: met in {met} of {len(judged)} cases"
                     + (f", at the medians in {medians} more" if medians else "") + ".")
    return lines


def _fits(d):
    body = []
    for r in d.fits:
        kind = d.problems[r.problem][0]
        n = (r.sklearn.get("n_iter") or [None])[-1], (r.fastnn.get("n_iter") or [None])[-1]
        body.append([r.problem, r.dtype, THREADS.get(r.threads, r.threads),
                     _seconds(r.sklearn), _seconds(r.fastnn), _speed(r.speed), _cpu(r.cpu),
                     f"{n[0]} / {n[1]}", f"{_score(r.scores[0], kind)} / "
                     f"{_score(r.scores[1], kind)}" + ("" if r.same_score else " **differ**"),
                     _verdict(r.outcome, vd.FIT_GOAL)])
    return table(["problem", "dtype", "threads", "scikit-learn fit", "fastnn fit", "speedup",
                  "CPU", "epochs (sklearn / fastnn)", "test score (sklearn / fastnn)", "goal"],
                 body)


def _epochs(d):
    body = []
    for r in d.epochs:
        f = r.floor
        body.append([r.problem, r.solver, r.dtype, THREADS.get(r.threads, r.threads),
                     _seconds(r.sklearn), _seconds(r.fastnn), _speed(r.speed), _cpu(r.cpu),
                     _epoch_goal(r), _floor_cell(r),
                     "—" if f is None else f"{f.goal.value:.3g}× (sklearn {f.sklearn:.3g}×)",
                     "—" if f is None else _verdict(f.goal.outcome, vd.FLOOR_GOAL, "≤")])
    return table(["problem", "solver", "dtype", "threads", "scikit-learn per epoch",
                  "fastnn per epoch", "speedup", "CPU", "goal", "lbfgs GEMM floor",
                  "fastnn ÷ floor", "floor goal"], body)


def section(res, d, drawn):
    """The section's markdown (``d``: :func:`.verdicts_dropin.dropin`, or None)."""
    if d is None:
        return "No drop-in benchmarks in this run."
    cpu = res.machine.get("cpu", {})
    load = "not recorded" if d.load is None else f"{d.load[0]:.2g}–{d.load[1]:.2g}"
    items = []
    for name, (kind, description, n, features) in d.problems.items():
        ours, theirs = ESTIMATORS.get(kind, ("fastnn", "scikit-learn"))
        items.append(f"{name}: {description} ({ours} against {theirs})")
    text = [INTRO.format(cpu=cpu.get("model", "an unknown CPU"), cores=cpu.get("logical_cores"),
                         load=load, backends=", ".join(f"`{b}`" for b in d.backends) or "—"),
            ""]
    cores = cpu.get("logical_cores") or 1
    if d.load is not None and d.load[1] > cores and any(r.threads == "all" for r in d.fits):
        text += [BUSY.format(load=d.load[1], cores=cores), ""]
    text += [PROBLEMS.format(items="; ".join(items)), ""] + _summary(d) + [""]
    if d.fits:
        text += [FIT_INTRO.format(goal=vd.FIT_GOAL, gap=100 * vd.SCORE_GAP,
                                  judged=", ".join(vd.JUDGED)), "", _fits(d), ""]
    if d.epochs:
        text += [EPOCH_INTRO.format(sgd=vd.EPOCH_GOALS["sgd"], lbfgs=vd.EPOCH_GOALS["lbfgs"],
                                    floor=vd.FLOOR_GOAL), "", _epochs(d), ""]
    text += [LEGEND, "", CHECK.format(gap=100 * vd.SCORE_GAP), ""]
    if "dropin.png" in drawn:
        text.append("![dropin](dropin.png)")
    return "\n".join(text)
