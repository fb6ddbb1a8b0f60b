"""What the measurements say, as data: every verdict of the report, computed
once from a :class:`~fastnn.report.results.Results` by :func:`build`.

A verdict is numbers, names and booleans -- never words. Comparisons follow
the noise rule of :func:`~fastnn.report.results.compare` (a ratio counts only
when the two spreads separate). :mod:`.phrasing` turns verdicts into
sentences, :mod:`.markdown` lays out the tables, :mod:`.plots` draws them.
"""

from dataclasses import dataclass, field

from .results import Timing, compare, crossovers
from .workloads import WORKLOADS, working_set

__all__ = ["Versus", "versus", "fastest", "capability", "build", "busy", "bandwidth_ceiling",
           "FASTNN", "ABLATIONS"]

#: Rungs of the headline comparison: the fastnn backends (lecture's algorithm).
FASTNN = ("numba", "cython")
#: The ablation kinds: ``(kind, group prefix, the variant it starts from)``.
ABLATIONS = [("vectorize", "simd-vectorize", "off"), ("dtype", "simd-dtype-", "float64"),
             ("threads", "simd-threads-", "1 thread")]


@dataclass(frozen=True)
class Versus:
    """``a`` against ``b``: ``verdict`` is "faster", "slower" or "overlap" (the
    spreads do not separate), ``ratio`` = b.median / a.median (> 1: a is faster)."""

    a: str
    b: str
    verdict: str
    ratio: float
    a_median: float
    b_median: float


def versus(a_name, a, b_name, b):
    """The :class:`Versus` of Timing ``a`` (named ``a_name``) against ``b``."""
    verdict, ratio = compare(a, b)
    return Versus(a_name, b_name, verdict, ratio, a.median, b.median)


def capability(name, flag):
    """A backend's ``SLOW`` or ``COMPILED`` (False for peers, extras, unknown names)."""
    from .. import backends

    return name in backends.names() and backends.available()[name] is True \
        and bool(getattr(backends.get(name), flag))


def fastest(timings, kind):
    """The fastest (median) fastnn rung (``kind`` "fastnn") or peer ("peer")."""
    names = [n for n in timings if (n.startswith("peer:") if kind == "peer" else n in FASTNN)]
    return min(names, key=lambda n: timings[n].median) if names else None


# -- the machine --------------------------------------------------------------------------

@dataclass(frozen=True)
class Busy:
    """Whether the 1-minute load average before or after the run exceeded half
    the logical cores."""

    busy: bool
    before: float
    after: float
    cores: int


def busy(machine):
    cores = machine.get("cpu", {}).get("logical_cores") or 1
    before, after = machine.get("load_average"), machine.get("load_average_after")
    known = [x for x in (before, after) if isinstance(x, (int, float))]
    return Busy(bool(known) and max(known) > cores / 2, before, after, cores)


def bandwidth_ceiling(machine, nbytes):
    """``(level, GB/s)``: the bandwidth that bounds a working set of ``nbytes``
    -- ``"L3"`` (the L3 read probe) when it fits in the L3 cache, else
    ``"DRAM"`` (the copy probe). ``"DRAM"`` too when the probe has no L3 figures
    (an older benchmark JSON)."""
    l3, l3_gbps = machine.get("l3_bytes"), machine.get("l3_gbps")
    if l3 and l3_gbps and nbytes is not None and nbytes <= l3:
        return "L3", l3_gbps
    return "DRAM", machine.get("memory_gbps")


# -- 2. the ladder --------------------------------------------------------------------------

@dataclass
class Rungs:
    """One workload of the ladder: what vectorizing and then compiling bought
    (numpy against the slow rung, the fastest fastnn rung against numpy), the
    fastest fastnn rung against the fastest peer, the Gram rewrite against cython."""

    workload: str
    steps: list
    peer: Versus = None
    gram: Versus = None


@dataclass
class Ladder:
    rungs: list
    #: per_example against loops on planar, and on the first wider net that ran both.
    per_example: Versus = None
    per_example_wider: tuple = None
    #: ``[(reason, impl, [workloads])]`` of the rungs that did not run.
    not_run: list = field(default_factory=list)
    #: The dot demo: np.dot against the Python loop, the Numba loop against np.dot.
    dot_numpy: Versus = None
    dot_numba: Versus = None


def _ladder(res):
    rungs = []
    for name, t in res.ladder.items():
        slow = next((n for n in t if capability(n, "SLOW")), None)
        best = fastest(t, "fastnn")
        steps = []
        if "numpy" in t and slow:
            steps.append(versus("numpy", t["numpy"], slow, t[slow]))
        if best and "numpy" in t:
            steps.append(versus(best, t[best], "numpy", t["numpy"]))
        peer = fastest(t, "peer")
        rungs.append(Rungs(
            name, steps, versus(best, t[best], peer, t[peer]) if best and peer else None,
            versus("cython:gram", t["cython:gram"], "cython", t["cython"])
            if "cython:gram" in t and "cython" in t else None))
    planar = res.ladder.get("planar", {})
    out = Ladder(rungs)
    if "per_example" in planar and "loops" in planar:
        out.per_example = versus("per_example", planar["per_example"], "loops", planar["loops"])
        wider = [n for n, t in res.ladder.items()
                 if n != "planar" and "per_example" in t and "loops" in t]
        if wider:
            t = res.ladder[wider[0]]
            out.per_example_wider = (wider[0], versus("per_example", t["per_example"], "loops",
                                                      t["loops"]))
    by_reason = {}
    for name, skipped in res.skipped.items():
        for impl, why in skipped.items():
            by_reason.setdefault((why, impl), []).append(name)
    out.not_run = [(why, impl, names) for (why, impl), names in by_reason.items()]
    dot = res.dot
    if "np.dot" in dot and "python loop" in dot:
        out.dot_numpy = versus("np.dot", dot["np.dot"], "python loop", dot["python loop"])
    if "numba loop" in dot and "np.dot" in dot:
        out.dot_numba = versus("numba loop", dot["numba loop"], "np.dot", dot["np.dot"])
    return out


# -- 3. scaling -------------------------------------------------------------------------------

@dataclass(frozen=True)
class End:
    """The fastest backend at one end of the sweep, against the runner-up."""

    m: int
    best: str
    runner_up: Versus = None


@dataclass
class Scaling:
    sizes: list
    #: The smallest and the largest m.
    ends: list
    #: ``[(m, faster above, faster below)]``, see :func:`.results.crossovers`.
    crossovers: list


def _scaling(res):
    if not res.sweep:
        return None
    sizes = sorted({m for pts in res.sweep.values() for m in pts})
    ends = []
    for m in (sizes[0], sizes[-1]):
        here = {i: pts[m] for i, pts in res.sweep.items() if m in pts}
        best = min(here, key=lambda i: here[i].median)
        rivals = [i for i in here if i != best]
        second = min(rivals, key=lambda i: here[i].median) if rivals else None
        ends.append(End(m, best, versus(best, here[best], second, here[second])
                        if second else None))
    return Scaling(sizes, ends, crossovers(res.sweep))


# -- 4. ablations -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    """One ablation pair: ``gain`` is ``new`` against ``base``."""

    kind: str
    backend: str
    workload: str
    m: int
    base: Timing
    new: Timing
    isa: str
    gain: Versus


@dataclass
class Ablation:
    pairs: list
    #: ``{kind: bool}``: whether every pair of the kind ran on one thread
    #: (False too when the benchmark JSON does not say, as older ones).
    one_thread: dict


def _ablation(res):
    pairs = []
    for kind, prefix, base_variant in ABLATIONS:
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
                    pairs.append(Pair(kind, backend, t.get("workload"), t.get("m"), base, t,
                                      t.get("isa"), versus(variant, t, base_variant, base)))
    one_thread = {}
    for kind, _, _ in ABLATIONS:
        mine = [p for p in pairs if p.kind == kind]
        one_thread[kind] = bool(mine) and all(
            p.base.get("threads") == p.new.get("threads") == 1 for p in mine)
    return Ablation(pairs, one_thread)


# -- 5. efficiency ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Achieved:
    """One rung on one workload: GFLOP/s and GB/s from its median time, and
    the bandwidth ceiling of the workload's working set."""

    workload: str
    impl: str
    gflops: float
    gbps: float
    working_set: int
    level: str
    ceiling_gbps: float


@dataclass(frozen=True)
class Limit:
    """How close the best headline rung came to the ceiling of a workload's bound
    (``bound`` "gemm" or "memory"; "overhead": ``value`` is its GFLOP/s, no ceiling)."""

    workload: str
    bound: str
    impl: str
    value: float
    ceiling: float = None
    level: str = None
    working_set: int = None


@dataclass
class Efficiency:
    rows: list
    limits: list
    peak: float
    l3_gbps: float
    dram_gbps: float
    l3_bytes: int
    #: Whether a Gram-rewrite row is shown (it does less arithmetic than counted).
    gram: bool


def _efficiency(res):
    m = res.machine
    peak = m.get("peak_gflops", {}).get("float64")
    rows = []
    for name, t in res.ladder.items():
        w = WORKLOADS.get(name)
        for impl, x in t.items():
            ws = working_set(w, x.get("m")) if w else None
            level, ceiling = bandwidth_ceiling(m, ws)
            rows.append(Achieved(name, impl, x.get("flops", 0) / x.median / 1e9,
                                 x.get("bytes", 0) / x.median / 1e9, ws, level, ceiling))
    if not rows or not peak:
        return None
    limits = []
    for name in res.ladder:
        w = WORKLOADS.get(name)
        mine = [r for r in rows if r.workload == name and r.impl in FASTNN + ("numpy",)]
        if not w or not mine:
            continue
        if w.bound == "gemm":
            best = max(mine, key=lambda r: r.gflops)
            limits.append(Limit(name, w.bound, best.impl, best.gflops, peak))
        elif w.bound == "memory":
            best = max(mine, key=lambda r: r.gbps)
            limits.append(Limit(name, w.bound, best.impl, best.gbps, best.ceiling_gbps,
                                best.level, best.working_set))
        else:
            best = max(mine, key=lambda r: r.gflops)
            limits.append(Limit(name, w.bound, best.impl, best.gflops))
    return Efficiency(rows, limits, peak, m.get("l3_gbps"), m.get("memory_gbps"),
                      m.get("l3_bytes"), any(r.impl.endswith(":gram") for r in rows))


# -- 7. correctness --------------------------------------------------------------------------

@dataclass
class Checks:
    """The checks after timing: the worst relative difference from numpy of a
    fastnn backend (and of the peers that train the same way, None if none),
    which failed, which did not lower the cost (mini-batch only)."""

    worst: float
    failed: list
    peers: float = None
    not_lowered: list = field(default_factory=list)


def _correctness(res):
    worst, failed = 0.0, []
    for name, t in res.ladder.items():
        for impl, x in t.items():
            d = x.get("max_rel_diff_vs_numpy")
            if d is None or impl.startswith("peer:"):
                continue
            worst = max(worst, d)
            if x.get("check_passed") is False:
                failed.append((impl, name))
    return Checks(worst, failed)


# -- all of it ----------------------------------------------------------------------------------

@dataclass
class Verdicts:
    """One field per section; None where the section has nothing to judge."""

    busy: Busy
    ladder: Ladder
    scaling: Scaling
    ablation: Ablation
    efficiency: Efficiency
    correctness: Checks
    minibatch: object  # verdicts_minibatch.Minibatch
    optimizers: object = None  # verdicts_optimizers.Optimizers
    dropin: object = None  # verdicts_dropin.Dropin


def build(res):
    """Every verdict of the report on ``res``."""
    # They build on this module's verdicts.
    from .verdicts_minibatch import minibatch
    from .verdicts_dropin import dropin
    from .verdicts_optimizers import optimizers

    return Verdicts(busy(res.machine), _ladder(res), _scaling(res), _ablation(res),
                    _efficiency(res), _correctness(res), minibatch(res), optimizers(res),
                    dropin(res))
