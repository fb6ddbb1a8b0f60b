"""REPORT.md from a :class:`~fastnn.report.results.Results`: the words and tables.

Each section opens with a few sentences computed from the data: every
comparison goes through :func:`~fastnn.report.results.compare`, so "N× faster"
is said only when the two spreads do not overlap, and "within the noise"
otherwise. The plots are drawn by :mod:`.plots`; the machine and SIMD-evidence
sections by :mod:`.machine_text`.
"""

from . import machine_text, plots
from .machine_text import table
from .results import WIDE_SPREAD, compare, format_seconds
from .workloads import WORKLOADS

__all__ = ["write", "SECTIONS", "versus", "cell", "fastest_of", "minibatch_best"]

SECTIONS = ["1. Machine", "2. The ladder", "3. Scaling with m", "4. SIMD ablation",
            "5. Efficiency", "6. SIMD evidence", "7. Correctness", "8. Mini-batch training"]

#: Rungs of the headline comparison: the fastnn backends (lecture's algorithm).
FASTNN = ("numba", "cython")


def cell(t):
    """A timing's median, with its spread when that is wide."""
    if t is None:
        return "—"
    return format_seconds(t.median) + (f" (IQR {100 * t.spread:.0f}%)" if t.wide else "")


def versus(a_name, a, b_name, b):
    """``a`` against ``b`` in words, claiming a ratio only when spreads separate."""
    verdict, ratio = compare(a, b)
    if verdict == "faster":
        return f"{plots.label(a_name)} is {ratio:.3g}× faster than {plots.label(b_name)}"
    if verdict == "slower":
        return f"{plots.label(a_name)} is {1 / ratio:.3g}× slower than {plots.label(b_name)}"
    return (f"{plots.label(a_name)} and {plots.label(b_name)} are within each other's noise "
            f"(medians {format_seconds(a.median)} and {format_seconds(b.median)})")


def ratio_cell(a, b):
    """How many times faster ``a`` is than ``b`` (b.median / a.median), as a table
    cell; "≈" marks overlapping spreads."""
    verdict, ratio = compare(a, b)
    return f"{ratio:.3g}×" if verdict != "overlap" else f"≈ ({ratio:.2g}×)"


def _slow(name):
    """A backend's SLOW capability (False for peers and labelled extras)."""
    from .. import backends

    return name in backends.names() and backends.available()[name] is True \
        and backends.get(name).SLOW


def _title(name):
    return WORKLOADS[name].title if name in WORKLOADS else name


def fastest_of(timings, prefix):
    """The fastest (median) fastnn rung (``prefix`` "fastnn") or peer ("peer")."""
    names = [n for n in timings if (n.startswith("peer:") if prefix == "peer" else n in FASTNN)]
    return min(names, key=lambda n: timings[n].median) if names else None


# -- 2. the ladder ---------------------------------------------------------------------

def _ladder_intro(res):
    vec, peers, gram = [], [], []
    for name, t in res.ladder.items():
        slow = next((n for n in t if _slow(n)), None)
        best = fastest_of(t, "fastnn")
        steps = []
        if "numpy" in t and slow:
            steps.append(versus("numpy", t["numpy"], slow, t[slow]))
        if best and "numpy" in t:
            steps.append(versus(best, t[best], "numpy", t["numpy"]))
        if steps:
            vec.append(f"{name}: " + ", then ".join(steps))
        peer = fastest_of(t, "peer")
        if best and peer:
            peers.append(f"{name}: {versus(best, t[best], peer, t[peer])}")
        if "cython:gram" in t and "cython" in t:
            gram.append(f"{name}: {versus('cython:gram', t['cython:gram'], 'cython', t['cython'])}")
    out = []
    if vec:
        out.append("What vectorizing across examples and then compiling the loop bought — "
                   + "; ".join(vec) + ".")
    if peers:
        out.append("Fastest fastnn backend against the fastest peer, both running the lecture's "
                   "algorithm — " + "; ".join(peers) + ".")
    else:
        out.append("No peer (PyTorch, JAX, scikit-learn) ran, so nothing is compared with them "
                   "(`pip install \"fastnn[compare]\"` adds them).")
    if gram:
        out.append("The Gram rewrite of layer 1 (its own column: not the lecture's algorithm, "
                   "so not part of the comparison with peers) — " + "; ".join(gram) + ".")
    return out


def _not_run(res):
    """The rungs that did not run, one line per reason."""
    by_reason = {}
    for name, skipped in res.skipped.items():
        for impl, why in skipped.items():
            by_reason.setdefault(why.replace(f" on {name}", ""), {}).setdefault(
                impl, []).append(name)
    lines = [f"{plots.label(i)} on {', '.join(ws)}: {why}" for why, impls in by_reason.items()
             for i, ws in impls.items()]
    return ["Not run: " + "; ".join(lines) + ".", ""] if lines else []


def _per_example_note(res):
    planar = res.ladder.get("planar", {})
    if "per_example" not in planar or "loops" not in planar:
        return []
    verdict, _ = compare(planar["per_example"], planar["loops"])
    wider = [n for n, t in res.ladder.items() if n != "planar" and "per_example" in t
             and "loops" in t]
    text = (f"Why per_example is where it is on planar ({versus('per_example', planar['per_example'], 'loops', planar['loops'])}): "
            "it calls NumPy once per example and layer, and on a 2-4-1 net each call does at "
            "most 8 multiply-adds — far less than the microsecond of set-up every NumPy call "
            "costs, while the loops backend's plain Python arithmetic on a few floats has no "
            "such fixed cost.")
    if verdict != "slower":
        text = text.replace("Why per_example is where it is", "per_example on planar")
    if wider:
        n = wider[0]
        text += (f" Per-example vectorization pays where each example is a long vector: on "
                 f"{n}, {versus('per_example', res.ladder[n]['per_example'], 'loops', res.ladder[n]['loops'])}.")
    return [text]


def _ladder(res, out):
    if not res.ladder:
        return "No ladder benchmarks in this run."
    impls = list(dict.fromkeys(i for t in res.ladder.values() for i in t))
    head = [i for i in impls if i not in plots.EXTRA]
    extra = [i for i in impls if i in plots.EXTRA]
    body = [[_title(n)] + [cell(t.get(i)) for i in head + extra] for n, t in res.ladder.items()]
    legend = ("Median time per training iteration over the interleaved rounds (float64, full "
              "batch, default threads; “(IQR N%)”: a wide spread — the interquartile range is above "
              f"{100 * WIDE_SPREAD:.0f}% of the median, treat that figure with care). Every fastnn column trains layer 1 directly "
              "from X each iteration (`gram=False`), as the peers do.")
    if extra:
        legend += (" The last columns are labelled extras, outside that comparison: "
                   + "; ".join(f"*{plots.label(i)}*" for i in extra) + ".")
    text = _ladder_intro(res) + [""] + _per_example_note(res) + [
        "", legend, "", table(["workload"] + [plots.label(i) for i in head + extra], body), ""]
    text += _not_run(res)
    for name, t in res.ladder.items():
        base = t.get("numpy")
        rows = [[plots.label(i), format_seconds(x.median), format_seconds(x.min),
                 f"{format_seconds(x.q1)} – {format_seconds(x.q3)}",
                 ratio_cell(x, base) if base else "—", x.get("iterations", "?"),
                 format_seconds(x.get("first_call_s"))] for i, x in t.items()]
        text += [f"**{_title(name)}**", "",
                 table(["implementation", "median", "min", "IQR", "speedup vs numpy",
                        "iterations per timed call", "first call (compile; not timed)"], rows),
                 ""]
    if res.dot:
        text += _dot(res.dot)
    plots.ladder(res, out / "ladder.png")
    return "\n".join(text + ["![ladder](ladder.png)"])


def _dot(dot):
    loop = dot.get("python loop")
    text = ["**The lecture's demo — dot product of two 10⁶-element vectors** (the lecture "
            "measured about 300×; all three on one core: np.dot's BLAS is limited to one "
            "thread, like the loops)."]
    if loop and "np.dot" in dot:
        text[0] += " " + versus("np.dot", dot["np.dot"], "python loop", loop) + "."
    if "numba loop" in dot and "np.dot" in dot:
        text[0] += " The same loop compiled by Numba: " + versus(
            "numba loop", dot["numba loop"], "np.dot", dot["np.dot"]) + "."
    rows = [[i, format_seconds(t.median), format_seconds(t.min),
             ratio_cell(t, loop) if loop else "—"] for i, t in dot.items()]
    return text + ["", table(["implementation", "median", "min", "speedup vs Python loop"], rows),
                   ""]


# -- 3. scaling -------------------------------------------------------------------------

def _scaling(res, out):
    from .results import crossovers

    if not res.sweep:
        return "No sweep benchmarks in this run."
    all_m = sorted({m for pts in res.sweep.values() for m in pts})
    fastest = []
    for m in (all_m[0], all_m[-1]):
        here = {i: pts[m] for i, pts in res.sweep.items() if m in pts}
        best = min(here, key=lambda i: here[i].median)
        rivals = [i for i in here if i != best]
        second = min(rivals, key=lambda i: here[i].median) if rivals else None
        if second and compare(here[best], here[second])[0] == "overlap":
            fastest.append(f"at m = {m:,} {versus(best, here[best], second, here[second])}, "
                           "ahead of the rest")
        else:
            fastest.append(f"at m = {m:,} the fastest is **{best}**"
                           + (f" ({versus(best, here[best], second, here[second])})" if second
                              else ""))
    cross = crossovers(res.sweep)
    intro = ["On the planar 2-4-1 net, " + "; ".join(fastest) + ". Small m is bound by the "
             "fixed cost of each iteration (calls, thread start-up), large m by streaming the "
             "examples through the SIMD lanes."]
    if cross:
        intro.append("Where the order changes (only where the spreads separate on both sides; "
                      "m interpolated log-log between the measured sizes): "
                      + "; ".join(f"above m ≈ {m:,.0f} {a} is faster than {b}"
                                  for m, a, b in cross) + ".")
    else:
        intro.append("No crossover stands out of the noise: no pair of backends swaps order "
                     "with separated spreads on both sides.")
    body = [[plots.label(i)] + [cell(pts.get(m)) for m in all_m] for i, pts in res.sweep.items()]
    plots.scaling(res, out / "scaling.png")
    return "\n".join(intro + ["", table(["backend"] + [f"m = {m:,}" for m in all_m], body), "",
                              "![scaling](scaling.png)"])


# -- 4. SIMD ablation -------------------------------------------------------------------

KINDS = [("simd-vectorize", "auto-vectorization off → on", "off"),
         ("simd-dtype-", "float64 → float32", "float64"),
         ("simd-threads-", "1 thread → 2 threads", "1 thread")]


def ablation_pairs(res):
    """``[(kind title, row label, base Timing, new Timing, backend, isa)]``."""
    pairs = []
    for prefix, title, base_variant in KINDS:
        for group, timings in res.ablations.items():
            if not group.startswith(prefix):
                continue
            by_backend = {}
            for t in timings.values():
                by_backend.setdefault(t.get("backend", t.impl), {})[str(t.get("variant"))] = t
            for backend, variants in by_backend.items():
                base = variants.get(base_variant)
                for variant, t in variants.items():
                    if base is None or variant == base_variant:
                        continue
                    name = "planar 2-4-1" if t.get("workload") == "sweep" else t.get("workload")
                    where = f"{name}, m = {t.get('m'):,}"
                    pairs.append((title, f"{backend} ({where})", base, t, backend, t.get("isa")))
    return pairs


def _gain(base, new):
    """What switching from ``base`` to ``new`` did, in words (noise rule included)."""
    verdict, ratio = compare(new, base)
    if verdict == "faster":
        return f"ran {ratio:.3g}× faster"
    if verdict == "slower":
        return f"ran {1 / ratio:.3g}× slower"
    return f"changed nothing beyond the noise ({ratio:.2g}×)"


def _ablation(res, out):
    pairs = ablation_pairs(res)
    if not pairs:
        return "No SIMD ablation benchmarks in this run."
    isas = sorted({f"{p[4]}: `{p[5]}`" for p in pairs if p[5]})
    intro = ["Each pair ran interleaved in one group, on the kernel set this CPU runs"
             + (f" ({', '.join(isas)})" if isas else "") + "."]
    text = []
    for _, title, _ in KINDS:
        mine = [p for p in pairs if p[0] == title]
        if not mine:
            text += [f"**{title}**: not measured in this run.", ""]
            continue
        new = title.split(" → ")[1]
        intro.append(f"{title.capitalize()}: " + "; ".join(
            f"{p[1]} {_gain(p[2], p[3])}" for p in mine) + ".")
        rows = [[p[1], cell(p[2]), cell(p[3]), ratio_cell(p[3], p[2])] for p in mine]
        text += [f"**{title}**", "", table(["backend (workload)", title.split(" → ")[0], new,
                                            f"speedup of {new}"], rows), ""]
    plots.ablation([p[:4] for p in pairs], out / "ablation.png")
    return "\n".join(intro + [""] + text + ["![ablation](ablation.png)"])


# -- 5. efficiency ----------------------------------------------------------------------

def _efficiency(res, out):
    peak = res.machine.get("peak_gflops", {}).get("float64")
    bandwidth = res.machine.get("memory_gbps")
    rows = []
    for name, t in res.ladder.items():
        for impl, x in t.items():
            rows.append({"workload": name, "impl": impl, "gflops": x.get("flops", 0) / x.median / 1e9,
                         "gbps": x.get("bytes", 0) / x.median / 1e9})
    if not rows or not peak:
        return "No ladder benchmarks (or no measured peak) in this run."
    intro = []
    for name in res.ladder:
        w = WORKLOADS.get(name)
        mine = [r for r in rows if r["workload"] == name and r["impl"] in FASTNN + ("numpy",)]
        if not w or not mine:
            continue
        key, ceiling, unit = (("gflops", peak, "GFLOP/s") if w.bound == "gemm" else
                              ("gbps", bandwidth, "GB/s") if w.bound == "memory" else
                              (None, None, None))
        if key is None:
            best = max(mine, key=lambda r: r["gflops"])
            intro.append(f"{name} is bound by per-iteration overhead, not arithmetic "
                         f"({best['impl']} reaches {best['gflops']:.2g} GFLOP/s)")
            continue
        best = max(mine, key=lambda r: r[key])
        intro.append(f"{name} ({w.bound}-bound): {best['impl']} reaches {best[key]:.3g} {unit}, "
                     f"{100 * best[key] / ceiling:.0f}% of the measured {ceiling:.3g} {unit}")
    body = [[_title(r["workload"]), plots.label(r["impl"]), f"{r['gflops']:.3g}",
             f"{100 * r['gflops'] / peak:.1f}%", f"{r['gbps']:.3g}",
             f"{100 * r['gbps'] / bandwidth:.0f}%" if bandwidth else "—"] for r in rows]
    plots.efficiency(rows, peak, bandwidth, out / "efficiency.png")
    return "\n".join([
        "How close to the machine's limits, from the median times: " + "; ".join(intro) + ".",
        "",
        f"Ceilings: **{peak:.1f} GFLOP/s** float64 (BLAS GEMM probe, all cores) and "
        f"**{bandwidth:.1f} GB/s** (streaming copy), best of probes before and after the run. "
        "FLOPs count the GEMM-shaped work of the lecture's algorithm (Z = WA, dW = dZ Aᵀ, "
        "dA = Wᵀ dZ); bytes the compulsory traffic (X read once, activations written and read "
        "once, parameters)."
        + (" The Gram rewrite does less arithmetic than that count, so its row can exceed "
           "100%." if any(r["impl"].endswith(":gram") for r in rows) else ""), "",
        table(["workload", "implementation", "GFLOP/s", "% of peak", "GB/s", "% of bandwidth"],
              body), "", "![efficiency](efficiency.png)"])


# -- 7. correctness ---------------------------------------------------------------------

def _correctness(res):
    impls = list(dict.fromkeys(i for t in res.ladder.values() for i in t))
    body, worst, failed = [], 0.0, []
    for name, t in res.ladder.items():
        cells = []
        for impl in impls:
            x = t.get(impl)
            d = None if x is None else x.get("max_rel_diff_vs_numpy")
            cells.append("—" if d is None else f"{d:.1e} ({x.get('check_iterations', '?')} it.)"
                         + (" **FAILED**" if x.get("check_passed") is False else ""))
            if d is not None and not impl.startswith("peer:"):
                worst = max(worst, d)
                if x.get("check_passed") is False:
                    failed.append(f"{impl} on {name}")
        body.append([_title(name)] + cells)
    if not body:
        return "No ladder benchmarks in this run."
    intro = (f"**{len(failed)} check(s) FAILED**: {', '.join(failed)}." if failed else
             f"Every fastnn rung agrees with NumPy within 1e-9 (worst {worst:.1e}).")
    return "\n".join([
        intro + " Each cell trained a fresh copy with the settings of the timed calls for the "
        "iterations shown and compares every W and b with NumPy's: max|p − p_numpy| / "
        "max|p_numpy|. Peers are shown for information: PyTorch, JAX and scikit-learn take "
        "ReLU'(0) = 0 where the lecture takes 1, which matters on the relu nets because "
        "zero-initialized biases give Z = 0 exactly for dead units.", "",
        table(["workload"] + [plots.label(i) for i in impls], body)])


# -- 8. mini-batch training ------------------------------------------------------------

#: The batch size of issue 12's comparison with MLPClassifier.
SKLEARN_BATCH = 32
#: What issue 12 asks of that comparison: an epoch at least this many times faster.
SKLEARN_TARGET = 3.0


def _compiled(name):
    """A backend's COMPILED capability (False for peers, extras, unknown names)."""
    from .. import backends

    return name in backends.names() and backends.available()[name] is True \
        and backends.get(name).COMPILED


def minibatch_best(res):
    """``{B: impl}``: the fastest (median) fastnn backend at each batch size --
    among the compiled ones when any ran there, else among all."""
    best = {}
    for b in sorted({b for pts in res.minibatch.values() for b in pts}):
        here = {i: pts[b] for i, pts in res.minibatch.items()
                if b in pts and not i.startswith("peer:")}
        pool = [i for i in here if _compiled(i)] or list(here)
        if pool:
            best[b] = min(pool, key=lambda i: here[i].median)
    return best


def _peer_best(res, b):
    peers = {i: pts[b] for i, pts in res.minibatch.items() if i.startswith("peer:") and b in pts}
    return min(peers, key=lambda i: peers[i].median) if peers else None


def _minibatch_intro(res, best):
    mb, meta = res.minibatch, res.minibatch_meta
    sizes = sorted(best)
    out = []
    # Where the lead over the fastest peer is largest: only separated spreads count.
    leads = {}
    for b in sizes:
        peer = _peer_best(res, b)
        if peer is not None:
            leads[b] = (peer, *compare(mb[best[b]][b], mb[peer][b]))
    won = {b: v for b, v in leads.items() if v[1] == "faster"}
    kind = "compiled backends'" if any(_compiled(i) for i in best.values()) else "fastnn backends'"
    if won:
        top = max(won, key=lambda b: won[b][2])
        text = (f"The {kind} lead over the fastest peer is largest at **B = {top:,}**: "
                + versus(best[top], mb[best[top]][top], won[top][0], mb[won[top][0]][top]) + ".")
        low = min(won, key=lambda b: won[b][2])
        if low != top:
            text += f" It is smallest at B = {low:,} ({won[low][2]:.3g}×)."
        lost = [b for b, v in leads.items() if v[1] != "faster"]
        if lost:
            text += (" At B = " + ", ".join(f"{b:,}" for b in lost) + " the fastest fastnn "
                     "backend does not beat the fastest peer beyond the noise ("
                     + "; ".join(versus(best[b], mb[best[b]][b], leads[b][0], mb[leads[b][0]][b])
                                 for b in lost) + ").")
        out.append(text)
    elif leads:
        out.append("At no batch size is the fastest fastnn backend ahead of the fastest peer with "
                   "separated spreads, so no lead is claimed.")
    else:
        out.append("No peer ran (`pip install \"fastnn[compare]\"` adds PyTorch, JAX and "
                   "scikit-learn; the course's NumPy loop needs none), so no lead is computed.")
    # Issue 12's side-by-side comparison with MLPClassifier at B = 32.
    b = SKLEARN_BATCH
    sk = mb.get("peer:sklearn", {}).get(b)
    data = "scikit-learn's digits" if meta.get("data") == "sklearn" else \
        "the synthetic stand-in for digits (same shape; times depend on shapes only)"
    if sk is not None and b in best:
        f = mb[best[b]][b]
        verdict, ratio = compare(f, sk)
        if verdict == "faster":
            # The target is met only beyond the noise: scikit-learn's fast
            # quartile against fastnn's slow one.
            worst = sk.q1 / f.q3
            target = f"issue 12's ≥ {SKLEARN_TARGET:g}×"
            if worst >= SKLEARN_TARGET:
                verdict = f", which meets {target}"
            elif ratio >= SKLEARN_TARGET:
                verdict = (f" at the medians but {worst:.3g}× quartile against quartile, so "
                           f"this run does not show {target} beyond the noise")
            else:
                verdict = f", which falls short of {target}"
            out.append(f"Against `MLPClassifier(solver=\"sgd\", momentum=0, alpha=0)` with the "
                       f"same sizes at B = {b}, measured side by side on {data}: an epoch of "
                       f"{best[b]} takes {format_seconds(f.median)}, scikit-learn's "
                       f"{format_seconds(sk.median)} — **{ratio:.3g}× faster**{verdict}.")
        else:
            out.append(f"Against `MLPClassifier(solver=\"sgd\", momentum=0, alpha=0)` at "
                       f"B = {b}, on {data}: "
                       + versus(best[b], f, "peer:sklearn", sk)
                       + f", so issue 12's ≥ {SKLEARN_TARGET:g}× is not shown by this run.")
    elif b in best:
        out.append(f"scikit-learn did not run at B = {b}, so issue 12's comparison with "
                   "MLPClassifier is not made here.")
    # How much of an epoch is per-batch overhead: B = 1 (m updates) against B = m (one).
    lo, hi = sizes[0], sizes[-1]
    if lo != hi:
        per = []
        for impl in dict.fromkeys(("numpy", best[lo]) if "numpy" in mb else (best[lo],)):
            pts = mb.get(impl, {})
            if lo in pts and hi in pts and compare(pts[hi], pts[lo])[0] == "faster":
                per.append((impl, pts[lo].median / pts[hi].median))
        if per:
            out.append(f"An epoch is the same arithmetic at every B; what grows as B shrinks is "
                       f"the number of updates (m / B), each with its fixed overhead: an epoch "
                       f"at B = {lo:,} takes {per[0][1]:.3g}× as long as one at B = {hi:,} for "
                       f"{per[0][0]}" + "".join(f", {r:.3g}× for {i}" for i, r in per[1:]) + ".")
    return out


def _minibatch_notes(res):
    notes = ["Every implementation starts from the same initial arrays and data; fastnn "
             "backends, the course's loop, PyTorch and JAX shuffle with the same seeded "
             "`rng.permutation(m)` per epoch (so they train the same batches), scikit-learn with "
             "its own. Per call, fastnn's `train` evaluates the full-data cost of its first and "
             "last epoch, as `fit` records it; the course's loop computes each batch's cost as "
             "the assignment does; MLPClassifier computes each batch's loss and L2 term (even "
             "at alpha = 0), and at each epoch's end updates its loss curve and convergence test "
             "— its own per-epoch overhead, part of what it costs to train with it."]
    meta = res.minibatch_meta
    if meta.get("blas_threads") or meta.get("torch_threads"):
        notes.append(f"Threads: NumPy's BLAS (numpy, the course's loop, scikit-learn) ran "
                     f"{meta.get('blas_threads', '?')}, PyTorch "
                     f"{meta.get('torch_threads', '?')} — products of 64 × B gain "
                     "nothing from a second, and on a shared machine a 2-thread pool waits for "
                     "its descheduled thread; fastnn backends chose their own (`threads=None`), "
                     "JAX ran XLA's defaults.")
    return notes


def _minibatch_check(res):
    worst, peers, failed, lowered = 0.0, None, [], []
    for impl, pts in res.minibatch.items():
        for b, t in pts.items():
            d = t.get("max_rel_diff_vs_numpy")
            if t.get("cost_after") is not None and not t.get("cost_after") < t.get("cost_start"):
                lowered.append(f"{impl} at B = {b}")
            if d is None:
                continue
            if impl.startswith("peer:"):
                peers = max(peers or 0.0, d)
            else:
                worst = max(worst, d)
                if t.get("check_passed") is False:
                    failed.append(f"{impl} at B = {b}")
    if failed or lowered:
        return (f"**Checks FAILED**: " + ", ".join(
            [f"{x} differs from numpy" for x in failed] + [f"{x} did not lower the cost"
                                                           for x in lowered]) + ".")
    return (f"Checked after timing: every implementation lowered the full-data cost, and fresh "
            f"copies trained with the timed settings match the numpy backend's parameters — "
            f"fastnn backends within 1e-9 (worst {worst:.1e})"
            + (f", the peers that share the shuffles within {peers:.1e} (scikit-learn shuffles "
               "its own way)" if peers is not None else "") + ".")


def _minibatch(res, out):
    if not res.minibatch:
        return "No mini-batch benchmarks in this run."
    best = minibatch_best(res)
    sizes = sorted({b for pts in res.minibatch.values() for b in pts})
    meta = res.minibatch_meta
    dims = "-".join(map(str, meta.get("layer_dims") or ())) or "64-64-10"
    data = {"sklearn": "scikit-learn's digits (1797 8×8 images, pixels / 16; the first "
                       f"{meta.get('m', '?'):,} of a seeded permutation, a 75/25 split)",
            "synthetic": "a synthetic stand-in for scikit-learn's digits (64 features in "
                         "[0, 1], 10 classes, scikit-learn not installed)"}.get(
        meta.get("data"), "digits")
    intro = [f"Mini-batch gradient descent on a {dims} relu/softmax net (float64, learning rate "
             f"{meta.get('learning_rate', '?')}) with m = {meta.get('m', 0):,} examples of "
             f"{data}. Times are **per epoch** — m / B updates of B examples each (the last "
             "batch smaller) — the median over the interleaved rounds of one group per batch "
             "size; the spread (IQR) is given in every cell."]
    intro += _minibatch_intro(res, best)

    def spread_cell(t):
        return "—" if t is None else f"{format_seconds(t.median)} ±{50 * t.spread:.0f}%"

    body = [[plots.label(i)] + [spread_cell(pts.get(b)) for b in sizes]
            for i, pts in res.minibatch.items()]
    lead = ["**fastest fastnn ÷ fastest peer**"]
    for b in sizes:
        peer = _peer_best(res, b)
        lead.append("—" if peer is None or b not in best else
                    f"{ratio_cell(res.minibatch[best[b]][b], res.minibatch[peer][b])} "
                    f"({best[b]} vs {plots.label(peer)})")
    body.append(lead)
    skipped = {}
    for impl, why in res.minibatch_skipped.items():
        for b, reason in why.items():
            skipped.setdefault((impl, reason), []).append(b)
    not_run = ["Not run: " + "; ".join(
        f"{plots.label(i)} at B = {', '.join(f'{b:,}' for b in sorted(bs))}: {why}"
        for (i, why), bs in skipped.items()) + ".", ""] if skipped else []
    plots.minibatch(res, best, out / "minibatch.png")
    return "\n".join([" ".join(intro), "",
                      table(["implementation"] + [f"B = {b:,}" for b in sizes], body), "",
                      "Cells: median epoch time ± half its interquartile range (as % of the "
                      "median). Last row: how many times faster the fastest fastnn backend "
                      "(compiled, when one ran) is than the fastest peer; ≈ marks overlapping "
                      "spreads, where no lead is claimed.", ""] + not_run
                     + [" ".join(_minibatch_notes(res)), "", _minibatch_check(res), "",
                        "![minibatch](minibatch.png)"])


# -- the whole report --------------------------------------------------------------------

def write(res, out_dir):
    """Write ``out_dir/REPORT.md`` and its PNGs from ``res``; return the REPORT.md path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# fastnn performance report", ""] + machine_text.header(res) + [""]
    sections = [machine_text.machine(res), _ladder(res, out_dir), _scaling(res, out_dir),
                _ablation(res, out_dir), _efficiency(res, out_dir), machine_text.evidence(res),
                _correctness(res), _minibatch(res, out_dir)]
    for title, body in zip(SECTIONS, sections):
        parts += ["", f"## {title}", "", body]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
