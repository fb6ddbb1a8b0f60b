"""REPORT.md from a :class:`~fastnn.report.results.Results`: the layout.

:func:`write` judges the results once (:func:`.verdicts.build`), has
:func:`.plots.draw` write every PNG, and lays out each section: its sentences
from :mod:`.phrasing` (section 8: :mod:`.phrasing_minibatch`; sections 1 and
6: :mod:`.machine_text`; section 9, sweeps: :mod:`.sweeps`), its tables from the timings. A plot is shown where
it was drawn.
"""

from . import machine_text, plots, sweeps, verdicts
from . import phrasing as say
from . import phrasing_minibatch as say_mb
from .machine_text import table
from .results import format_seconds

__all__ = ["write", "SECTIONS"]

SECTIONS = ["1. Machine", "2. The ladder", "3. Scaling with m", "4. SIMD ablation",
            "5. Efficiency", "6. SIMD evidence", "7. Correctness", "8. Mini-batch training",
            "9. Sweeps"]


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


def write(res, out_dir):
    """Write ``out_dir/REPORT.md`` and its PNGs from ``res``; return the REPORT.md path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    v = verdicts.build(res)
    drawn = plots.draw(res, v, out_dir)
    parts = ["# fastnn performance report", ""] + machine_text.header(res, v.busy) + [""]
    sections = [machine_text.machine(res), _ladder(res, v, drawn), _scaling(res, v, drawn),
                _ablation(v, drawn), _efficiency(v, drawn), machine_text.evidence(res),
                _correctness(res, v), _minibatch(res, v, drawn), sweeps.section(res.sweeps)]
    for title, body in zip(SECTIONS, sections):
        parts += ["", f"## {title}", "", body]
    path = out_dir / "REPORT.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
