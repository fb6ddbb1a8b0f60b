"""The words of the report's optimizer section (section 10), made from the
verdicts of :mod:`.verdicts_optimizers` as :mod:`.phrasing` makes the others'."""

from .phrasing import label, versus
from .results import format_seconds

__all__ = ["intro", "pending", "goal_cell", "verdict_cell", "against_verdict", "against_products",
           "peak_cell", "peak_verdict", "seconds", "cost_text", "where", "adam_text", "digits_text",
           "fastest_item", "check", "not_run", "COST_LEGEND", "ADAM_LEGEND", "DIGITS_LEGEND"]

INTRO = ("The course's second part — Adam, inverted dropout — measured on **{cpu}** ({cores} "
         "logical cores). Times are **per epoch** (m / B updates of B examples, the last batch "
         "smaller), the median over the interleaved rounds of one group per workload, batch "
         "size and dtype, float64 and float32 side by side. An epoch of fastnn is what `fit(..., "
         "batch_size=B)` trains (the same engine, shuffles and thread decision) without the "
         "full-data cost `fit` records, which no peer computes. Threads: NumPy's BLAS and "
         "PyTorch ran {blas}, so fastnn's backends chose {threads} (`threads=None`); JAX ran "
         "XLA's defaults. A goal is judged on the compiled backends, for which it was set: "
         "**met** when the ratio reaches it quartile against quartile (beyond the noise), "
         "**met at the medians** when only the medians do, else **missed**; the other fastnn "
         "backends' ratios are shown without a verdict.")
PENDING = ("**Not judged in this run:** {names} {verb} not train with the course's second part "
           "in this build (`fastnn.backends.having(\"HAS_OPTIMIZERS\")` does not list {them}), so "
           "{no} compiled backend ran these groups and every goal set for the compiled backends "
           "is left open; the numpy backend's figures stand in for information.")
OUTCOME = {"met": "**met**", "medians": "met at the medians", "missed": "**missed**"}

COST_INTRO = ("**What Adam and dropout add to an epoch** — {workload}, m = {m:,}, learning rate "
              "{lr}; per backend, plain gradient descent (`gd`), Adam (`adam`) and gradient "
              "descent with dropout, keep_prob {keep} on every hidden layer (`dropout`), timed "
              "interleaved. Goals (compiled backends, B ≥ 32): an Adam epoch ≤ {adam:g}× a plain "
              "one, a dropout epoch ≤ {dropout:g}×.")
COST_LEGEND = ("Cells: median epoch time ± half its IQR; ratio: medians (quartile against "
               "quartile, the slow side, in brackets).")
ADAM_INTRO = ("**fastnn's Adam against its peers** — {workload}, m = {m:,}, B = {b}, Adam "
              "(β1 0.9, β2 0.999, ε 1e-8, learning rate {lr}), every implementation from the same "
              "initial arrays: the course's NumPy loop (`update_parameters_with_adam`), PyTorch "
              "(`optim.Adam`), JAX (optax's `adam` in a jitted `lax.scan` epoch) and "
              "`MLPClassifier(solver=\"adam\", alpha=0)`. Goals for a compiled backend: ≥ "
              "{sk:g}× faster than scikit-learn, ≥ {torch:g}× than PyTorch, ≥ {jax:g}× than JAX, "
              "and ≥ {peak:.0%} of the GEMM peak. An epoch's work is counted as its products, "
              "forward and backward (Z = W A, dW = dZ Aᵀ, dA = Wᵀ dZ but for the first layer): "
              "{gflop:.3g} GFLOP; the peak is a BLAS GEMM (1024³) measured on the epoch's one "
              "thread before and after the group, the best kept ({peaks}).")
EVERY_CORE = ("**Every core**: the same group again with every implementation at its thread "
              "defaults, what a fit gets on this machine — NumPy's BLAS on its pool ({blas} "
              "threads), PyTorch on its intra-op threads ({torch}), JAX on XLA's, fastnn's "
              "backends on `threads=None` (their own choice, in the records) — the GEMM peak "
              "that of BLAS's pool ({peak_threads} threads), judged where a backend ran on as "
              "many.")
ADAM_LEGEND = ("Ratio: the peer's median epoch over fastnn's (> 1: fastnn faster; the peer's "
               "fast quartile over fastnn's slow one in brackets); GEMM peak: the epoch's "
               "GFLOP/s over the peak's. A missed peer goal on one thread is set against the "
               "epoch's products alone — every step's Z = W A, dW = dZ Aᵀ and dA = Wᵀ dZ at "
               "the group's shapes, run by NumPy's BLAS on one thread into preallocated "
               "arrays with nothing else, the best of 5 epochs before and after the group: an "
               "epoch whose products run at that BLAS's speed takes longer; \"below the "
               "floor\" where the goal allows less.")
DIGITS_INTRO = ("**Digits with Adam** — a {dims} relu/softmax net on {data}, m = {m:,}, learning "
                "rate {lr}, at B = {sizes}: every fastnn backend and every peer. Fastest of all: "
                "{items}.")
DIGITS_LEGEND = "Cells: median epoch time ± half its IQR; the fastest of each column in bold."
FASTEST = {"faster": "{best} at {where} ({vs})", "overlap": "{best} at {where}, within the "
           "noise of {other} ({ratio:.2g}×)", "alone": "{best} at {where} (alone)"}
CHECK_OK = ("Checked after timing: every implementation lowered the full-data cost, and fresh "
            "copies of the fastnn backends trained {epochs} epoch(s) match the numpy backend's "
            "parameters within 1e-9 in float64 (worst {worst:.1e}){peers}.")
PEERS_CHECK = (", the peers that shuffle as fastnn does within {d:.1e} (recorded, not held to "
               "a tolerance: scikit-learn shuffles its own way)")


def intro(v, machine):
    cpu = machine.get("cpu", {})
    threads = v.threads
    return INTRO.format(cpu=cpu.get("model", "an unknown CPU"), cores=cpu.get("logical_cores"),
                        blas="one thread" if v.meta.get("blas_threads") == 1 else
                        f"{v.meta.get('blas_threads', '?')} threads",
                        threads=", ".join(map(str, threads)) or "their own")


def pending(v):
    if not v.pending:
        return []
    names = ", ".join(f"`{n}`" for n in v.pending)
    many = len(v.pending) > 1
    return [PENDING.format(names=names, verb="do" if many else "does",
                           them="them" if many else "it", no="no"), ""]


def goal_cell(g):
    """``1.08× (1.12×)``: the ratio of medians and the noise-proof bound."""
    return "—" if g is None else f"{g.value:.3g}× ({g.bound:.3g}×)"


def verdict_cell(g):
    if g is None:
        return "—"
    if g.outcome is None:
        return "— (not a compiled backend)"
    sign = "≤" if g.at_most else "≥"
    return f"{OUTCOME[g.outcome]} ({sign} {g.target:g}×)"


def against_verdict(a):
    """The verdict of an Adam ratio; a missed goal says what epoch time it allows
    and what the epoch's products alone take (``Against.floor``)."""
    text = verdict_cell(a.goal)
    if a.goal is None or a.goal.outcome != "missed" or a.floor is None:
        return text
    return text + against_products(a.allowed, a.floor)


def against_products(allowed, products, per="an epoch"):
    """What a missed speed goal allows (seconds ``per`` epoch or iteration)
    against what the products alone take at one-thread BLAS; "below the
    floor" where it allows less."""
    beyond = " — below the floor" if allowed < products else ""
    return (f": allows {format_seconds(allowed)} {per}; its products alone take "
            f"{format_seconds(products)} at one-thread BLAS{beyond}")


def peak_cell(p):
    g = p.goal
    return (f"{p.gflops:.3g} of {p.peak:.3g} GFLOP/s: {g.value:.0%} ({g.bound:.0%})")


def peak_verdict(p):
    g = p.goal
    if g.outcome is None:
        return "— (not a compiled backend)"
    return f"{OUTCOME[g.outcome]} (≥ {g.target:.0%})"


def cost_text(meta, goals):
    return COST_INTRO.format(workload=meta.get("workload"), m=meta.get("m", 0),
                             lr=meta.get("learning_rate"), keep=meta.get("keep_prob"),
                             adam=goals["adam"], dropout=goals["dropout"])


def where(dtype, cores):
    """A column or row label: ``float64`` on one thread, ``float64, every core``."""
    return dtype if cores == "one thread" else f"{dtype}, {cores}"


def adam_text(meta, goals, peak_goal, peaks, every=None):
    """The Adam groups' intro; ``every``: the meta of an every-core group, if one ran."""
    peaks_text = ", ".join(f"{d}: {p:.3g} GFLOP/s" for d, p in peaks.items()) or \
        "not measured in this run"
    text = ADAM_INTRO.format(workload=meta.get("workload"), m=meta.get("m", 0),
                             b=meta.get("batch_size"), lr=meta.get("learning_rate"),
                             sk=goals["peer:sklearn"], torch=goals["peer:torch"],
                             jax=goals["peer:jax"], peak=peak_goal,
                             gflop=(meta.get("flops") or 0) / 1e9, peaks=peaks_text)
    if every is None:
        return text
    return text + " " + EVERY_CORE.format(blas=every.get("blas_threads", "?"),
                                          torch=every.get("torch_threads") or "—",
                                          peak_threads=every.get("peak_threads", "?"))


def fastest_item(f):
    where = f"B = {f.batch_size}, {f.dtype}"
    if f.vs is None:
        return FASTEST["alone"].format(best=label(f.best), where=where)
    if f.vs.verdict == "overlap":
        return FASTEST["overlap"].format(best=label(f.best), where=where, other=label(f.vs.b),
                                         ratio=f.vs.ratio)
    return FASTEST["faster"].format(best=label(f.best), where=where, vs=versus(f.vs))


def digits_text(v, meta, data):
    sizes = ", ".join(str(b) for b in sorted({f.batch_size for f in v.fastest}))
    dims = "-".join(map(str, meta.get("layer_dims") or ())) or "64-64-10"
    return DIGITS_INTRO.format(dims=dims, data=data, m=meta.get("m", 0),
                               lr=meta.get("learning_rate"), sizes=sizes,
                               items="; ".join(fastest_item(f) for f in v.fastest))


def check(c, epochs):
    if c.failed or c.not_lowered:
        return ("**Checks FAILED**: " + ", ".join(
            [f"{impl} in {g} differs from numpy" for impl, g in c.failed]
            + [f"{impl} in {g} did not lower the cost" for impl, g in c.not_lowered]) + ".")
    return CHECK_OK.format(epochs=epochs, worst=c.worst,
                           peers="" if c.peers is None else PEERS_CHECK.format(d=c.peers))


def not_run(v):
    items = [f"{label(impl)} ({len(groups)} group{'s' if len(groups) > 1 else ''}): {why}"
             for impl, why, groups in v.not_run]
    return ["Not run: " + "; ".join(items) + ".", ""] if items else []


def seconds(t):
    return "—" if t is None else f"{format_seconds(t.median)} ±{50 * t.spread:.0f}%"
