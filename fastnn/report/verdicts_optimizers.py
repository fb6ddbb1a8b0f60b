"""The verdicts of the report's optimizer section (section 10), as data: what
Adam and dropout add to an epoch per backend, fastnn's Adam epoch against its
peers' and against the GEMM peak, the fastest on digits -- each ratio held to
its goal, met or missed from the measurements alone. Built by
:func:`optimizers`, part of :func:`.verdicts.build`.

A goal is judged on the compiled backends only (the goals were set for them);
the other fastnn backends' ratios are computed and shown without a verdict.
"""

from dataclasses import dataclass

from .verdicts import Checks, Versus, capability, versus

__all__ = ["optimizers", "Goal", "goal", "Optimizers", "COST_GOALS", "PEER_GOALS", "PEAK_GOAL",
           "PEAK_BATCH", "ADAM_KINDS"]

#: An epoch with this variant over one of plain gradient descent, at batch
#: sizes ≥ 32: at most this many times (compiled backends).
COST_GOALS = {"adam": 1.15, "dropout": 1.25}
#: A compiled backend's Adam epoch (``optim-adam-*``) at least this many times
#: faster than the peer's.
PEER_GOALS = {"peer:sklearn": 3.0, "peer:torch": 3.0, "peer:jax": 1.5}
#: ... and at least this fraction of the GEMM peak of the threads it ran on.
PEAK_GOAL = 0.65
PEAK_BATCH = 200


@dataclass(frozen=True)
class Goal:
    """A ratio against its goal. ``value`` is the ratio of medians; ``bound`` the
    same ratio taken quartile against quartile on the side the noise could
    flatter (the slow quartile of the one that should be fast). ``outcome``:
    "met" (``bound`` reaches the goal), "medians" (only ``value`` does),
    "missed", or None when the goal does not apply (not a compiled backend)."""

    value: float
    bound: float
    target: float
    at_most: bool
    outcome: str = None


def goal(value, bound, target, at_most, judged=True):
    """The :class:`Goal` of ``value`` (and its noise-proof ``bound``) against ``target``."""
    if not judged:
        return Goal(value, bound, target, at_most)
    ok = (lambda x: x <= target) if at_most else (lambda x: x >= target)
    return Goal(value, bound, target, at_most,
                "met" if ok(bound) else "medians" if ok(value) else "missed")


@dataclass(frozen=True)
class Cost:
    """One backend, dtype and batch size: ``variant`` ("adam", "dropout") over "gd"."""

    dtype: str
    batch_size: int
    backend: str
    variant: str
    gd: object      # Timing
    timing: object  # Timing
    goal: Goal


#: The Adam groups: ``optim-adam-<dtype>`` on one thread, ``optim-adamall-<dtype>``
#: with every implementation at its thread defaults (every core).
ADAM_KINDS = {"adam": "one thread", "adamall": "every core"}


@dataclass(frozen=True)
class Against:
    """A fastnn backend's Adam epoch against a peer's (``vs.ratio`` > 1: fastnn
    faster), with the goal when one is set for that peer; ``cores`` says the
    group's threads (:data:`ADAM_KINDS`)."""

    dtype: str
    vs: Versus
    goal: Goal = None
    #: The epoch time the goal allows (the peer's median over the goal) and the
    #: epoch's products alone at one-thread BLAS (``products_s``), seconds, where
    #: the group measured them on the thread count fastnn's epoch ran on.
    allowed: float = None
    floor: float = None
    cores: str = "one thread"


@dataclass(frozen=True)
class Peak:
    """A fastnn backend's Adam epoch in GFLOP/s (the epoch's products, forward and
    backward, over its median time) against the GEMM peak of its threads."""

    dtype: str
    backend: str
    gflops: float
    peak: float
    threads: int
    goal: Goal
    cores: str = "one thread"


@dataclass(frozen=True)
class Fastest:
    """The fastest implementation of a digits group and the runner-up."""

    dtype: str
    batch_size: int
    best: str
    vs: Versus = None


@dataclass
class Optimizers:
    cost: list
    against: list
    peaks: list
    fastest: list
    #: Compiled backends that ran no group here for want of HAS_OPTIMIZERS.
    pending: list
    check: Checks
    #: ``[(impl, reason, [group])]`` of what the groups did not run.
    not_run: list
    #: Whether a compiled backend ran at all (the goals were judged).
    judged: bool
    #: The thread counts fastnn's backends ran on; what the groups share.
    threads: list
    meta: dict


def _kind(group):
    return group.split("-")[1]


def _cost(res):
    rows = []
    for group, timings in res.optimizers.items():
        if _kind(group) != "cost":
            continue
        meta = res.optimizers_meta[group]
        by = {(t.get("backend"), t.get("variant")): t for t in timings.values()}
        for (backend, variant), t in by.items():
            gd = by.get((backend, "gd"))
            if variant not in COST_GOALS or gd is None:
                continue
            rows.append(Cost(meta.get("dtype"), meta.get("batch_size"), backend, variant, gd, t,
                             goal(t.median / gd.median, t.q3 / gd.q1, COST_GOALS[variant], True,
                                  capability(backend, "COMPILED"))))
    return sorted(rows, key=lambda r: (r.dtype != "float64", r.batch_size, r.backend, r.variant))


def _adam(res):
    against, peaks = [], []
    for group, timings in res.optimizers.items():
        if _kind(group) not in ADAM_KINDS:
            continue
        cores = ADAM_KINDS[_kind(group)]
        meta = res.optimizers_meta[group]
        dtype = meta.get("dtype")
        fastnn = [i for i in timings if not i.startswith("peer:")]
        for impl in fastnn:
            t = timings[impl]
            compiled = capability(impl, "COMPILED")
            threads = t.get("threads") or 1
            floor = meta.get("products_s") if threads == meta.get("peak_threads", 1) else None
            for peer in (i for i in timings if i.startswith("peer:")):
                p = timings[peer]
                g = allowed = None
                if peer in PEER_GOALS:
                    g = goal(p.median / t.median, p.q1 / t.q3, PEER_GOALS[peer], False, compiled)
                    allowed = p.median / PEER_GOALS[peer]
                against.append(Against(dtype, versus(impl, t, peer, p), g, allowed,
                                       floor if allowed else None, cores))
            peak, flops = meta.get("peak_gflops"), meta.get("flops")
            if peak and flops and threads == meta.get("peak_threads", 1):
                gflops = flops / t.median / 1e9
                peaks.append(Peak(dtype, impl, gflops, peak, threads,
                                  goal(gflops / peak, flops / t.q3 / 1e9 / peak, PEAK_GOAL, False,
                                       compiled), cores))
    # One thread first, float64 first; a stable sort: the rest as measured.
    order = (lambda r: (r.cores != ADAM_KINDS["adam"], r.dtype != "float64"))
    return sorted(against, key=order), sorted(peaks, key=order)


def _fastest(res):
    out = []
    for group, timings in res.optimizers.items():
        if _kind(group) != "digits" or not timings:
            continue
        meta = res.optimizers_meta[group]
        ranked = sorted(timings, key=lambda i: timings[i].median)
        best = ranked[0]
        vs = versus(best, timings[best], ranked[1], timings[ranked[1]]) if len(ranked) > 1 \
            else None
        out.append(Fastest(meta.get("dtype"), meta.get("batch_size"), best, vs))
    return sorted(out, key=lambda r: (r.dtype != "float64", r.batch_size))


def _check(res):
    worst, peers, failed, lowered = 0.0, None, [], []
    for group, timings in res.optimizers.items():
        for impl, t in timings.items():
            if t.get("cost_after") is not None and not t.get("cost_after") < t.get("cost_start"):
                lowered.append((impl, group))
            d = t.get("max_rel_diff_vs_numpy")
            if d is None:
                continue
            if impl.startswith("peer:"):
                peers = max(peers or 0.0, d)
            elif t.get("check_passed") is not None:
                worst = max(worst, d)
                if t.get("check_passed") is False:
                    failed.append((impl, group))
    return Checks(worst, failed, peers, lowered)


def optimizers(res):
    if not res.optimizers:
        return None
    against, peaks = _adam(res)
    skipped = {}
    for group, why in res.optimizers_skipped.items():
        for impl, reason in why.items():
            skipped.setdefault((impl.split(" ")[0], reason), {})[group] = None
    not_run = [(impl, reason, list(groups)) for (impl, reason), groups in skipped.items()]
    from .. import backends

    without = {n for meta in res.optimizers_meta.values()
               for n in meta.get("without_optimizers") or ()}
    pending = [n for n in backends.names() if n in without and capability(n, "COMPILED")]
    ran = {t.get("backend") or i for g in res.optimizers.values() for i, t in g.items()}
    one_thread = {g: t for g, t in res.optimizers.items() if _kind(g) != "adamall"}
    threads = sorted({t.get("threads") for g in one_thread.values() for i, t in g.items()
                      if not i.startswith("peer:") and t.get("threads")})
    meta = next((m for g, m in res.optimizers_meta.items() if g in one_thread), {})
    return Optimizers(_cost(res), against, peaks, _fastest(res), pending, _check(res), not_run,
                      any(capability(i, "COMPILED") for i in ran), threads, meta)
