"""The report's words: sentences made from the verdicts of :mod:`.verdicts`.

Nothing here measures or decides. Each sentence is a template filled from
verdict data; where a verdict changes what is said, the verdict picks the
template (``VERSUS[v.verdict]``), so no sentence is edited after it is made.
The machine's sections (1, 6) are :mod:`.machine_text`'s, the mini-batch
section's (8) :mod:`.phrasing_minibatch`'s.
"""

from .results import WIDE_SPREAD, format_seconds
from .workloads import WORKLOADS

__all__ = ["label", "title", "cell", "spread_cell", "ratio_cell", "megabytes", "versus", "EXTRA",
           "ladder_intro", "per_example_note", "not_run", "ladder_legend", "dot_intro",
           "scaling_intro", "ABLATION_TITLES", "ablation_intro", "pair_label", "efficiency_intro",
           "efficiency_ceilings", "correctness_intro"]

#: Short names of the labelled extra rungs.
EXTRA = {"cython:gram": "cython, Gram rewrite", "cython:blas": "cython, BLAS products",
         "numpy:blas-default": "numpy, OPENBLAS_* unset", "peer:course": "course NumPy (peer)"}


def label(impl):
    """How an implementation is named in tables and plots."""
    if impl in EXTRA:
        return EXTRA[impl]
    return impl[5:] + " (peer)" if impl.startswith("peer:") else impl


def title(workload):
    return WORKLOADS[workload].title if workload in WORKLOADS else workload


def cell(t):
    """A timing's median, with its spread when that is wide."""
    if t is None:
        return "—"
    return format_seconds(t.median) + (f" (IQR {100 * t.spread:.0f}%)" if t.wide else "")


def ratio_cell(v):
    """How many times faster ``v.a`` is than ``v.b``, as a table cell; "≈" marks
    overlapping spreads."""
    return f"{v.ratio:.3g}×" if v.verdict != "overlap" else f"≈ ({v.ratio:.2g}×)"


def spread_cell(t):
    """A timing's median ± half its interquartile range, always."""
    return "—" if t is None else f"{format_seconds(t.median)} ±{50 * t.spread:.0f}%"


def megabytes(nbytes):
    return f"{nbytes / 2**20:.3g} MiB"


#: A :class:`~.verdicts.Versus` in words, by its verdict.
VERSUS = {"faster": "{a} is {ratio:.3g}× faster than {b}",
          "slower": "{a} is {inverse:.3g}× slower than {b}",
          "overlap": "{a} and {b} are within each other's noise (medians {a_median} and "
                     "{b_median})"}


def _fields(v):
    return {"a": label(v.a), "b": label(v.b), "ratio": v.ratio, "inverse": 1 / v.ratio,
            "a_median": format_seconds(v.a_median), "b_median": format_seconds(v.b_median)}


def versus(v):
    """``a`` against ``b`` in words, claiming a ratio only when spreads separate."""
    return VERSUS[v.verdict].format(**_fields(v))


# -- 2. the ladder --------------------------------------------------------------------------

LADDER = {
    "vectorized": "What vectorizing across examples and then compiling the loop bought — {items}.",
    "peers": "Fastest fastnn backend against the fastest peer, both running the lecture's "
             "algorithm — {items}.",
    "no peers": "No peer (PyTorch, JAX, scikit-learn) ran, so nothing is compared with them "
                "(`pip install \"fastnn[compare]\"` adds them).",
    "gram": "The Gram rewrite of layer 1 (its own column: not the lecture's algorithm, so not "
            "part of the comparison with peers) — {items}.",
}


def ladder_intro(ladder):
    vec = [f"{r.workload}: " + ", then ".join(versus(s) for s in r.steps)
           for r in ladder.rungs if r.steps]
    peers = [f"{r.workload}: {versus(r.peer)}" for r in ladder.rungs if r.peer]
    gram = [f"{r.workload}: {versus(r.gram)}" for r in ladder.rungs if r.gram]
    out = [LADDER["vectorized"].format(items="; ".join(vec))] if vec else []
    out.append(LADDER["peers"].format(items="; ".join(peers)) if peers else LADDER["no peers"])
    if gram:
        out.append(LADDER["gram"].format(items="; ".join(gram)))
    return out


#: Opening of the per_example note: an explanation only when it is slower.
PER_EXAMPLE = {"slower": "Why per_example is where it is on planar ({vs}): {why}",
               "faster": "per_example on planar ({vs}): {why}",
               "overlap": "per_example on planar ({vs}): {why}"}
PER_EXAMPLE_WHY = ("it calls NumPy once per example and layer, and on a 2-4-1 net each call does "
                   "at most 8 multiply-adds — far less than the microsecond of set-up every NumPy "
                   "call costs, while the loops backend's plain Python arithmetic on a few floats "
                   "has no such fixed cost.")
PER_EXAMPLE_WIDER = (" Per-example vectorization pays where each example is a long vector: on "
                     "{workload}, {vs}.")


def per_example_note(ladder):
    v = ladder.per_example
    if v is None:
        return []
    text = PER_EXAMPLE[v.verdict].format(vs=versus(v), why=PER_EXAMPLE_WHY)
    if ladder.per_example_wider:
        workload, wider = ladder.per_example_wider
        text += PER_EXAMPLE_WIDER.format(workload=workload, vs=versus(wider))
    return [text]


def not_run(ladder):
    """The rungs that did not run, one clause per reason and rung."""
    items = [f"{label(impl)} on {', '.join(names)}: {why}" for why, impl, names in ladder.not_run]
    return ["Not run: " + "; ".join(items) + ".", ""] if items else []


def ladder_legend(extras):
    text = ("Median time per training iteration over the interleaved rounds (float64, full "
            "batch, default threads; “(IQR N%)”: a wide spread — the interquartile range is "
            f"above {100 * WIDE_SPREAD:.0f}% of the median, treat that figure with care). Every "
            "fastnn column trains layer 1 directly from X each iteration (`gram=False`), as the "
            "peers do.")
    if extras:
        text += (" The last columns are labelled extras, outside that comparison: "
                 + "; ".join(f"*{label(i)}*" for i in extras) + ".")
    return text


def dot_intro(ladder):
    text = ("**The lecture's demo — dot product of two 10⁶-element vectors** (the lecture "
            "measured about 300×; all three on one core: np.dot's BLAS is limited to one "
            "thread, like the loops).")
    if ladder.dot_numpy:
        text += f" {versus(ladder.dot_numpy)}."
    if ladder.dot_numba:
        text += f" The same loop compiled by Numba: {versus(ladder.dot_numba)}."
    return text


# -- 3. scaling -------------------------------------------------------------------------------

SCALING = {
    "tie": "at m = {m:,} {vs}, ahead of the rest",
    "alone": "at m = {m:,} the fastest is **{best}**",
    "ahead": "at m = {m:,} the fastest is **{best}** ({vs})",
    "intro": "On the planar 2-4-1 net, {ends}. Small m is bound by the fixed cost of each "
             "iteration (calls, thread start-up), large m by streaming the examples through the "
             "SIMD lanes.",
    "crossovers": "Where the order changes (only where the spreads separate on both sides; m "
                  "interpolated log-log between the measured sizes): {items}.",
    "crossover": "above m ≈ {m:,.0f} {above} is faster than {below}",
    "no crossover": "No crossover stands out of the noise: no pair of backends swaps order with "
                    "separated spreads on both sides.",
}


def scaling_intro(scaling):
    ends = []
    for end in scaling.ends:
        v = end.runner_up
        kind = "alone" if v is None else "tie" if v.verdict == "overlap" else "ahead"
        ends.append(SCALING[kind].format(m=end.m, best=end.best, vs=v and versus(v)))
    out = [SCALING["intro"].format(ends="; ".join(ends))]
    if scaling.crossovers:
        out.append(SCALING["crossovers"].format(items="; ".join(
            SCALING["crossover"].format(m=m, above=a, below=b) for m, a, b in scaling.crossovers)))
    else:
        out.append(SCALING["no crossover"])
    return out


# -- 4. ablations -------------------------------------------------------------------------------

#: Each ablation kind: its title, and the column heads of the variant it starts
#: from and of the one it switches to.
ABLATION_TITLES = {"vectorize": ("auto-vectorization off → on", "auto-vectorization off", "on"),
                   "dtype": ("float64 → float32", "float64", "float32"),
                   "threads": ("1 thread → 2 threads", "1 thread", "2 threads")}
GAIN = {"faster": "ran {ratio:.3g}× faster",
        "slower": "ran {inverse:.3g}× slower",
        "overlap": "changed nothing beyond the noise ({ratio:.2g}×)"}
ONE_THREAD = {
    True: "The vectorization and dtype pairs ran on one thread (`threads=1`, BLAS held to one "
          "thread), so what they show is the SIMD lanes, not a thread pool's noise; the thread "
          "count has its own ablation.",
    False: "The vectorization and dtype pairs ran at the default thread count (this benchmark "
           "JSON does not record one thread for them), so on a shared machine thread noise can "
           "hide their SIMD gain.",
}


def pair_label(pair):
    """``numba (planar 2-4-1, m = 20,000)``: a pair's row."""
    where = "planar 2-4-1" if pair.workload == "sweep" else pair.workload
    return f"{pair.backend} ({where}, m = {pair.m:,})"


def ablation_intro(ablation):
    isas = sorted({f"{p.backend}: `{p.isa}`" for p in ablation.pairs if p.isa})
    out = ["Each pair ran interleaved in one group, on the kernel set this CPU runs"
           + (f" ({', '.join(isas)})" if isas else "") + "."]
    simd = [k for k in ("vectorize", "dtype") if any(p.kind == k for p in ablation.pairs)]
    if simd:
        out.append(ONE_THREAD[all(ablation.one_thread[k] for k in simd)])
    for kind, (name, _, _) in ABLATION_TITLES.items():
        mine = [p for p in ablation.pairs if p.kind == kind]
        if mine:
            out.append(f"{name.capitalize()}: " + "; ".join(
                f"{pair_label(p)} {GAIN[p.gain.verdict].format(**_fields(p.gain))}"
                for p in mine) + ".")
    return out


# -- 5. efficiency -------------------------------------------------------------------------------

EFFICIENCY = {
    "overhead": "{workload} is bound by per-iteration overhead, not arithmetic ({impl} reaches "
                "{value:.2g} GFLOP/s)",
    "gemm": "{workload} (gemm-bound): {impl} reaches {value:.3g} GFLOP/s, {pct:.0f}% of the "
            "measured {ceiling:.3g} GFLOP/s",
    "memory": "{workload} (memory-bound, a {ws} working set {within}): {impl} reaches "
              "{value:.3g} GB/s, {pct:.0f}% of the measured {level} bandwidth, {ceiling:.3g} GB/s",
}
#: Which bandwidth holds a memory-bound workload, by the level its working set reaches.
WITHIN = {"L3": "that fits in L3", "DRAM": "held to DRAM"}


def efficiency_intro(efficiency):
    items = [EFFICIENCY[x.bound].format(
        workload=x.workload, impl=x.impl, value=x.value, level=x.level,
        within=WITHIN.get(x.level),
        ceiling=x.ceiling, pct=100 * x.value / x.ceiling if x.ceiling else 0,
        ws=megabytes(x.working_set) if x.working_set else "?") for x in efficiency.limits]
    return "How close to the machine's limits, from the median times: " + "; ".join(items) + "."


def efficiency_ceilings(efficiency):
    e = efficiency
    if e.l3_gbps and e.l3_bytes:
        bandwidth = (f"and two bandwidths, each workload held to the one its working set "
                     f"reaches: **{e.l3_gbps:.1f} GB/s** from L3 for a working set that fits the "
                     f"{megabytes(e.l3_bytes)} L3 (BLAS dot of two vectors that fill half of it) "
                     f"and **{e.dram_gbps:.1f} GB/s** from DRAM for a larger one (a copy far "
                     "larger than the caches)")
    else:
        bandwidth = (f"and **{e.dram_gbps:.1f} GB/s** (a copy from DRAM; this benchmark JSON "
                     "has no L3 probe, so every workload is held to it)")
    return (f"Ceilings: **{e.peak:.1f} GFLOP/s** float64 (BLAS GEMM probe, all cores) "
            f"{bandwidth}; best of probes before and after the run. FLOPs count the "
            "GEMM-shaped work of the lecture's algorithm (Z = WA, dW = dZ Aᵀ, dA = Wᵀ dZ); bytes "
            "the compulsory traffic (X read once, activations written and read once, "
            "parameters); the working set every array an iteration touches (X, Y, each Z and "
            "A, the parameters and their gradients)."
            + (" The Gram rewrite does less arithmetic than that count, so its row can exceed "
               "100%." if e.gram else ""))


# -- 7. correctness -------------------------------------------------------------------------------

CORRECTNESS_NOTE = (
    " Each cell trained a fresh copy with the settings of the timed calls for the iterations "
    "shown and compares every W and b with NumPy's: max|p − p_numpy| / max|p_numpy|. Peers are "
    "shown for information: PyTorch, JAX and scikit-learn take ReLU'(0) = 0 where the lecture "
    "takes 1, which matters on the relu nets because zero-initialized biases give Z = 0 exactly "
    "for dead units.")


def correctness_intro(checks):
    if checks.failed:
        return (f"**{len(checks.failed)} check(s) FAILED**: "
                + ", ".join(f"{impl} on {name}" for impl, name in checks.failed) + "."
                + CORRECTNESS_NOTE)
    return (f"Every fastnn rung agrees with NumPy within 1e-9 (worst {checks.worst:.1e})."
            + CORRECTNESS_NOTE)
