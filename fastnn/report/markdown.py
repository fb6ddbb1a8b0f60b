"""REPORT.md from a :class:`~fastnn.report.results.Results`: the layout.

:func:`write` judges the results once (:func:`.verdicts.build`), has
:func:`.plots.draw` write every PNG, and lays out each section: its sentences
from :mod:`.phrasing` (section 8: :mod:`.phrasing_minibatch`; sections 1 and
6: :mod:`.machine_text`; section 9, sweeps: :mod:`.sweeps`; section 10:
:mod:`.phrasing_optimizers`; section 11: :mod:`.phrasing_dropin`), its tables
from the timings. A plot is shown where it was drawn.
"""

from . import machine_text, plots, sweeps, verdicts
from . import phrasing_dropin as say_dropin
from . import phrasing as say
from . import phrasing_minibatch as say_mb
from . import phrasing_optimizers as say_opt
from . import verdicts_optimizers as vo
from .machine_text import table
from .results import format_seconds

__all__ = ["write", "SECTIONS"]

SECTIONS = ["1. Machine", "2. The ladder", "3. Scaling with m", "4. SIMD ablation",
            "5. Efficiency", "6. SIMD evidence", "7. Correctness", "8. Mini-batch training",
            "9. Sweeps", "10. Optimizers", say_dropin.TITLE]


def _image(name, drawn):
    return [f"![{name}]({name}.png)"] if f"{name}.png" in drawn else []


def _ladder(res, v, drawn):
    if not res.ladder:
        return "No ladder benchmarks in this run."
    impls = list(dict.fromkeys(i for t in res.ladder.values() for i in t))
    columns = [i for i in impls if i not in say.EXTRA] + [i for i in impls if i in say.EXTRA]
    body = [[say.title(n)] + [say.cell(t.get(i)) for i in columns] for n, t in res.ladder.items()]
    text = say.ladder_intro(v.ladder) + [""] + say.per_example_note(v.ladder) + [
        "", say.ladder_legend([i for i in columns if i in say.EXTRA]), "",
        table(["workload"] + [say.label(i) for i in columns], body), ""]
    text += say.not_run(v.ladder)
    for name, t in res.ladder.items():
        base = t.get("numpy")
        rows = [[say.label(i), format_seconds(x.median), format_seconds(x.min),
                 f"{format_seconds(x.q1)} – {format_seconds(x.q3)}",
                 say.ratio_cell(verdicts.versus(i, x, "numpy", base)) if base else "—",
                 x.get("iterations", "?"), format_seconds(x.get("first_call_s"))]
                for i, x in t.items()]
        text += [f"**{say.title(name)}**", "",
                 table(["implementation", "median", "min", "IQR", "speedup vs numpy",
                        "iterations per timed call", "first call (compile; not timed)"], rows),
                 ""]
    if res.dot:
        loop = res.dot.get("python loop")
        rows = [[i, format_seconds(t.median), format_seconds(t.min),
                 say.ratio_cell(verdicts.versus(i, t, "python loop", loop)) if loop else "—"]
                for i, t in res.dot.items()]
        text += [say.dot_intro(v.ladder), "",
                 table(["implementation", "median", "min", "speedup vs Python loop"], rows), ""]
    return "\n".join(text + _image("ladder", drawn))


def _scaling(res, v, drawn):
    if v.scaling is None:
        return "No sweep benchmarks in this run."
    sizes = v.scaling.sizes
    body = [[say.label(i)] + [say.cell(pts.get(m)) for m in sizes] for i, pts in res.sweep.items()]
    return "\n".join(say.scaling_intro(v.scaling) + [
        "", table(["backend"] + [f"m = {m:,}" for m in sizes], body), ""]
        + _image("scaling", drawn))


def _ablation(v, drawn):
    pairs = v.ablation.pairs
    if not pairs:
        return "No SIMD ablation benchmarks in this run."
    text = []
    for kind, (name, base, new) in say.ABLATION_TITLES.items():
        mine = [p for p in pairs if p.kind == kind]
        if not mine:
            text += [f"**{name}**: not measured in this run.", ""]
            continue
        rows = [[say.pair_label(p), say.cell(p.base), say.cell(p.new), say.ratio_cell(p.gain)]
                for p in mine]
        text += [f"**{name}**", "",
                 table(["backend (workload)", base, new, f"speedup of {new}"], rows), ""]
    return "\n".join(say.ablation_intro(v.ablation) + [""] + text + _image("ablation", drawn))


def _efficiency(v, drawn):
    e = v.efficiency
    if e is None:
        return "No ladder benchmarks (or no measured peak) in this run."
    body = [[say.title(r.workload), say.label(r.impl), f"{r.gflops:.3g}",
             f"{100 * r.gflops / e.peak:.1f}%", f"{r.gbps:.3g}",
             say.megabytes(r.working_set) if r.working_set else "—",
             f"{r.level}, {r.ceiling_gbps:.3g}" if r.ceiling_gbps else "—",
             f"{100 * r.gbps / r.ceiling_gbps:.0f}%" if r.ceiling_gbps else "—"] for r in e.rows]
    return "\n".join([say.efficiency_intro(e), "", say.efficiency_ceilings(e), "",
                      table(["workload", "implementation", "GFLOP/s", "% of peak", "GB/s",
                             "working set", "bandwidth ceiling (GB/s)", "% of that ceiling"],
                            body), ""] + _image("efficiency", drawn))


def _correctness(res, v):
    impls = list(dict.fromkeys(i for t in res.ladder.values() for i in t))
    body = []
    for name, t in res.ladder.items():
        cells = []
        for impl in impls:
            x = t.get(impl)
            d = None if x is None else x.get("max_rel_diff_vs_numpy")
            cells.append("—" if d is None else f"{d:.1e} ({x.get('check_iterations', '?')} it.)"
                         + (" **FAILED**" if x.get("check_passed") is False else ""))
        body.append([say.title(name)] + cells)
    if not body:
        return "No ladder benchmarks in this run."
    return "\n".join([say.correctness_intro(v.correctness), "",
                      table(["workload"] + [say.label(i) for i in impls], body)])


def _minibatch(res, v, drawn):
    mb = v.minibatch
    if mb is None:
        return "No mini-batch benchmarks in this run."
    sizes = sorted({b for pts in res.minibatch.values() for b in pts})
    body = [[say.label(i)] + [say.spread_cell(pts.get(b)) for b in sizes]
            for i, pts in res.minibatch.items()]
    body.append(["**fastest fastnn ÷ fastest peer**"]
                + [say_mb.lead_cell(mb.leads.get(b)) for b in sizes])
    meta = res.minibatch_meta
    return "\n".join([" ".join(say_mb.intro(mb, meta)), "",
                      table(["implementation"] + [f"B = {b:,}" for b in sizes], body), "",
                      say_mb.LEGEND, ""] + say_mb.not_run(mb)
                     + [" ".join(say_mb.notes(meta)), "", say_mb.check(mb.check), ""]
                     + _image("minibatch", drawn))


def _optimizers(res, v, drawn):
    o = v.optimizers
    if o is None:
        return "No optimizer benchmarks in this run."
    text = [say_opt.intro(o, res.machine), ""] + say_opt.pending(o)
    groups = res.optimizers_meta
    first = {kind: next((m for g, m in groups.items() if g.split("-")[1] == kind), None)
             for kind in ("cost", "adam", "digits")}
    if o.cost:
        rows = {}
        for c in o.cost:
            row = rows.setdefault((c.backend, c.dtype, c.batch_size),
                                  [c.backend, c.dtype, f"{c.batch_size:,}",
                                   say_opt.seconds(c.gd)] + ["—"] * 6)
            at = 4 if c.variant == "adam" else 7
            row[at:at + 3] = [say_opt.seconds(c.timing), say_opt.goal_cell(c.goal),
                              say_opt.verdict_cell(c.goal)]
        text += [say_opt.cost_text(first["cost"], vo.COST_GOALS), "",
                 table(["backend", "dtype", "B", "gd epoch", "adam epoch", "adam ÷ gd",
                        "goal", "dropout epoch", "dropout ÷ gd", "goal"], list(rows.values())),
                 "", say_opt.COST_LEGEND, ""] + _image("optim_cost", drawn) + [""]
    if first["adam"] is not None:
        adam = {(m["dtype"], g.split("-")[1]): g for g, m in groups.items()
                if g.split("-")[1] in vo.ADAM_KINDS}
        cols = sorted(adam, key=lambda k: (k[1] != "adam", k[0] != "float64"))
        impls = list(dict.fromkeys(i for k in cols for i in res.optimizers[adam[k]]))
        body = [[say.label(i)] + [say_opt.seconds(res.optimizers[adam[k]].get(i)) for k in cols]
                for i in impls]
        goals = [[say_opt.where(a.dtype, a.cores), a.vs.a, say.label(a.vs.b),
                  say_opt.goal_cell(a.goal) if a.goal else say.ratio_cell(a.vs),
                  say_opt.against_verdict(a)] for a in o.against]
        goals += [[say_opt.where(p.dtype, p.cores), p.backend,
                   f"GEMM peak, {p.threads} thread{'s' if p.threads > 1 else ''}",
                   say_opt.peak_cell(p), say_opt.peak_verdict(p)] for p in o.peaks]
        peaks = {say_opt.where(d, vo.ADAM_KINDS[kind]): groups[adam[d, kind]].get("peak_gflops")
                 for d, kind in cols if groups[adam[d, kind]].get("peak_gflops")}
        every = [groups[adam[k]] for k in cols if k[1] == "adamall"]
        text += [say_opt.adam_text(first["adam"], vo.PEER_GOALS, vo.PEAK_GOAL, peaks,
                                   every[0] if every else None), "",
                 table(["implementation"] + [f"{say_opt.where(d, vo.ADAM_KINDS[kind])} epoch"
                                             for d, kind in cols], body), "",
                 table(["dtype", "fastnn", "against", "ratio", "goal"], goals), "",
                 say_opt.ADAM_LEGEND, ""] + _image("optim_adam", drawn) + [""]
    if o.fastest:
        digits = {(m["dtype"], m["batch_size"]): g for g, m in groups.items()
                  if g.split("-")[1] == "digits"}
        cols = sorted(digits, key=lambda k: (k[0] != "float64", k[1]))
        impls = list(dict.fromkeys(i for k in cols for i in res.optimizers[digits[k]]))
        best = {(f.dtype, f.batch_size): f.best for f in o.fastest}
        body = [[say.label(i)] + [("**{}**" if best.get(k) == i else "{}").format(
            say_opt.seconds(res.optimizers[digits[k]].get(i))) for k in cols] for i in impls]
        text += [say_opt.digits_text(o, first["digits"], say_mb.data_name(first["digits"])), "",
                 table(["implementation"] + [f"{d}, B = {b}" for d, b in cols], body), "",
                 say_opt.DIGITS_LEGEND, ""] + _image("optim_digits", drawn) + [""]
    epochs = sorted({t.get("check_iterations") for g in res.optimizers.values()
                     for t in g.values() if t.get("check_iterations")})
    text += say_opt.not_run(o) + [say_opt.check(o.check, "/".join(map(str, epochs)) or "?")]
    return "\n".join(text)


def write(res, out_dir):
    """Write ``out_dir/REPORT.md`` and its PNGs from ``res``; return the REPORT.md path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    v = verdicts.build(res)
    drawn = plots.draw(res, v, out_dir)
    parts = ["# fastnn performance report", ""] + machine_text.header(res, v.busy) + [""]
    sections = [machine_text.machine(res), _ladder(res, v, drawn), _scaling(res, v, drawn),
                _ablation(v, drawn), _efficiency(v, drawn), machine_text.evidence(res),
                _correctness(res, v), _minibatch(res, v, drawn), sweeps.section(res.sweeps),
                _optimizers(res, v, drawn), say_dropin.section(res, v.dropin, drawn)]
    for title, body in zip(SECTIONS, sections):
        parts += ["", f"## {title}", "", body]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
