"""The report's results model, built once from the suite's JSON.

Every benchmark group of the suite (``fastnn.benchmarks``) timed its
implementations interleaved over several rounds and saved, per implementation,
one time per round (``samples``, seconds per training iteration). This module
turns that JSON into a :class:`Results` -- ladder, sweep, dot demo, ablations,
mini-batch sweep (seconds per epoch there), each a mapping to :class:`Timing`
-- which :mod:`.verdicts` judges, :mod:`.markdown` and :mod:`.plots` render,
and ``fastnn bench`` prints.

Noise rules, used by every sentence that compares: a timing's spread is its
interquartile range over the rounds; it is *wide* when that exceeds
``WIDE_SPREAD`` of the median; A is faster than B only when A's whole IQR lies
below B's (:func:`compare`), and the ratio quoted is of medians.
"""

import json
import math
import statistics
from dataclasses import dataclass, field

from . import sweeps as _sweeps
from .workloads import WORKLOADS

__all__ = ["Timing", "Results", "load", "build", "compare", "crossovers", "format_seconds",
           "LADDER_ORDER", "WIDE_SPREAD"]

#: Column order of the ladder: the lecture's rungs, then the peers.
LADDER_ORDER = ["loops", "per_example", "numpy", "numba", "cython", "peer:course", "peer:torch",
                "peer:jax", "peer:sklearn"]
#: A timing whose interquartile range exceeds this fraction of its median is marked.
WIDE_SPREAD = 0.25


def _quantile(sorted_values, q):
    """Linear-interpolated quantile of an already sorted list."""
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass
class Timing:
    """One implementation in one group: its per-round times and what was recorded."""

    impl: str
    samples: list
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.samples:
            raise ValueError(f"{self.impl}: no timing samples")
        s = sorted(self.samples)
        self.min, self.median = s[0], statistics.median(s)
        self.q1, self.q3 = _quantile(s, 0.25), _quantile(s, 0.75)

    @property
    def spread(self):
        """Interquartile range relative to the median."""
        return (self.q3 - self.q1) / self.median

    @property
    def wide(self):
        return self.spread > WIDE_SPREAD

    def get(self, key, default=None):
        return self.info.get(key, default)


def compare(a, b):
    """How ``a`` relates to ``b``: ``("faster", ratio)``, ``("slower", ratio)`` or
    ``("overlap", ratio)``; ratio = b.median / a.median (> 1: a is faster).

    "faster"/"slower" only when the interquartile ranges do not overlap.
    """
    ratio = b.median / a.median
    if a.q3 < b.q1:
        return "faster", ratio
    if b.q3 < a.q1:
        return "slower", ratio
    return "overlap", ratio


@dataclass
class Results:
    """Everything the report shows, built once by :func:`build`."""

    mode: str
    source: str
    machine: dict
    meta: dict
    #: {workload: {impl: Timing}}, workloads in suite order.
    ladder: dict
    #: {workload: {impl: reason}} of the rungs that did not run.
    skipped: dict
    #: {impl: {m: Timing}}.
    sweep: dict
    #: {impl: Timing}.
    dot: dict
    #: {group: {impl: Timing}} for the simd-* groups.
    ablations: dict
    rounds: int
    #: {impl: {batch_size: Timing}} of the minibatch-B=* groups (seconds per epoch).
    minibatch: dict = field(default_factory=dict)
    #: What the mini-batch groups share: ``m``, ``data`` ("sklearn" or
    #: "synthetic" digits), ``layer_dims``, ``learning_rate``, ``blas_threads``,
    #: ``torch_threads``.
    minibatch_meta: dict = field(default_factory=dict)
    #: {impl: reason} of the implementations a mini-batch group did not run.
    minibatch_skipped: dict = field(default_factory=dict)
    #: The ``sweeps`` group's rows (:func:`fastnn.report.sweeps.from_benchmarks`).
    sweeps: dict = field(default_factory=dict)
    #: {group: {impl: Timing}} of the optim-* groups (seconds per epoch), and per
    #: group what it shares (``OPTIMIZER_META``) and what it did not run.
    optimizers: dict = field(default_factory=dict)
    optimizers_meta: dict = field(default_factory=dict)
    optimizers_skipped: dict = field(default_factory=dict)
    #: {group: {impl: Timing}} of the dropin-* groups (seconds per fit, or per
    #: epoch), and per group what it recorded beside them (``bench_dropin.py``).
    dropin: dict = field(default_factory=dict)
    dropin_meta: dict = field(default_factory=dict)

    def wide_count(self):
        """How many timings in the report have a wide spread, and how many there are."""
        groups = list(self.ladder.values()) + [self.dot] + list(self.ablations.values())
        groups += [{m: t for m, t in pts.items()} for pts in self.sweep.values()]
        groups += list(self.minibatch.values()) + list(self.optimizers.values())
        groups += list(self.dropin.values())
        timings = [t for g in groups for t in g.values()]
        return sum(t.wide for t in timings), len(timings)


def load(path):
    """The suite's JSON at ``path``; ValueError naming the file if it is not one."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a JSON file ({exc})") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a directory, not a benchmark JSON file") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ValueError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
    for bench in data["benchmarks"]:
        if _kind(bench) and "impls" not in bench.get("extra_info", {}):
            raise ValueError(f"{path} was written by an older fastnn benchmark suite (no "
                             "interleaved samples per implementation); run `fastnn report` again")
    return data


#: The groups the report shows (others, e.g. ``gemm-*``, stay in the JSON only).
_GROUPS = ("ladder-", "sweep-", "dot-", "simd-", "minibatch-", "optim-", "dropin-")
#: What an optim-* group records beside its timings (``bench_optimizers.py``).
OPTIMIZER_META = ("workload", "m", "batch_size", "dtype", "layer_dims", "learning_rate",
                  "keep_prob", "flops", "blas_threads", "torch_threads", "without_optimizers",
                  "data", "peak_gflops", "peak_threads", "products_s")


def _kind(bench):
    group = bench.get("group") or ""
    return next((g for g in _GROUPS if group.startswith(g)), None)


def _timings(bench):
    info = bench["extra_info"]
    out = {}
    for impl, record in info["impls"].items():
        rest = {k: v for k, v in record.items() if k != "samples"}
        rest.setdefault("workload", info.get("workload"))
        rest.setdefault("m", info.get("m"))
        out[impl] = Timing(impl, list(record["samples"]), rest)
    return out


def build(data, machine=None, *, mode=None, source=None):
    """The :class:`Results` of a loaded suite JSON (see :func:`load`)."""
    ladder = {name: {} for name in WORKLOADS}
    skipped = {name: {} for name in WORKLOADS}
    sweep, dot, ablations, rounds = {}, {}, {}, 0
    minibatch, minibatch_meta, minibatch_skipped = {}, {}, {}
    optim, optim_meta, optim_skipped = {}, {}, {}
    dropin, dropin_meta = {}, {}
    for bench in data["benchmarks"]:
        if _kind(bench) is None:
            continue
        group = bench.get("group") or ""
        info = bench["extra_info"]
        timings = _timings(bench)
        rounds = max(rounds, info.get("rounds") or 0)
        if group.startswith("ladder-"):
            name = group[len("ladder-"):]
            ladder.setdefault(name, {}).update(timings)
            skipped.setdefault(name, {}).update(info.get("skipped", {}))
        elif group.startswith("sweep-"):
            for impl, t in timings.items():
                sweep.setdefault(impl, {})[info["m"]] = t
        elif group == "dot-1e6":
            dot.update(timings)
        elif group.startswith("simd-"):
            ablations[group] = timings
        elif group.startswith("minibatch-"):
            for impl, t in timings.items():
                minibatch.setdefault(impl, {})[info["batch_size"]] = t
            for impl, why in info.get("skipped", {}).items():
                minibatch_skipped.setdefault(impl, {})[info["batch_size"]] = why
            minibatch_meta.update({k: info[k] for k in ("m", "data", "layer_dims",
                                                         "learning_rate", "blas_threads",
                                                         "torch_threads") if k in info})
        elif group.startswith("optim-"):
            optim[group] = {i: timings[i] for i in _ordered(timings)}
            optim_meta[group] = {k: info[k] for k in OPTIMIZER_META if k in info}
            optim_skipped[group] = dict(info.get("skipped", {}))
        elif group.startswith("dropin-"):
            dropin[group] = timings
            dropin_meta[group] = {k: v for k, v in info.items() if k not in ("impls", "skipped")}
    ladder = {n: {i: t[i] for i in _ordered(t)} for n, t in ladder.items() if t}
    sweep = {i: dict(sorted(sweep[i].items())) for i in _ordered(sweep)}
    minibatch = {i: dict(sorted(minibatch[i].items())) for i in _ordered(minibatch)}
    return Results(
        mode=mode or data.get("fastnn_mode", "unknown"), source=source or "",
        machine=machine if machine is not None else data.get("fastnn_machine") or {},
        meta={"version": data.get("version", "?"), "datetime": data.get("datetime", "?")},
        ladder=ladder, skipped={n: s for n, s in skipped.items() if n in ladder}, sweep=sweep,
        dot=dot, ablations=dict(sorted(ablations.items())), rounds=rounds, minibatch=minibatch,
        minibatch_meta=minibatch_meta,
        minibatch_skipped={i: minibatch_skipped[i] for i in _ordered(minibatch_skipped)},
        sweeps=_sweeps.from_benchmarks(data), optimizers=dict(sorted(optim.items())),
        optimizers_meta=optim_meta, optimizers_skipped=optim_skipped, dropin=dropin,
        dropin_meta=dropin_meta)


def _ordered(impls):
    def key(impl):
        base = impl.split(":")[0] if not impl.startswith("peer:") else impl
        rank = LADDER_ORDER.index(base) if base in LADDER_ORDER else len(LADDER_ORDER)
        return rank, impl != base, impl
    return sorted(impls, key=key)


def format_seconds(seconds):
    """A time with the unit that keeps 3 significant digits readable."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def crossovers(series):
    """Where one implementation overtakes another along m, when the data show it.

    ``series`` is ``{impl: {m: Timing}}``. A crossover between two adjacent
    sizes is reported only when one is faster at the first and the other at the
    second, both with non-overlapping spreads (:func:`compare`). Returns
    ``[(m_star, faster_above, faster_below)]``, m_star interpolated log-log
    between the two sizes from the medians.
    """
    out = []
    impls = list(series)
    for i, a in enumerate(impls):
        for b in impls[i + 1:]:
            ms = sorted(set(series[a]) & set(series[b]))
            for m0, m1 in zip(ms, ms[1:]):
                v0, _ = compare(series[a][m0], series[b][m0])
                v1, _ = compare(series[a][m1], series[b][m1])
                if {v0, v1} != {"faster", "slower"}:
                    continue
                r0 = math.log(series[a][m0].median / series[b][m0].median)
                r1 = math.log(series[a][m1].median / series[b][m1].median)
                frac = r0 / (r0 - r1)
                m_star = math.exp(math.log(m0) + frac * (math.log(m1) - math.log(m0)))
                above, below = (a, b) if v1 == "faster" else (b, a)
                out.append((m_star, above, below))
    return sorted(out)
