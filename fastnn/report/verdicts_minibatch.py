"""The verdicts of the report's mini-batch section (section 8), as data: the
fastest fastnn backend at each batch size, its lead over the fastest peer, the
comparison with scikit-learn's MLPClassifier, the per-batch overhead, the
checks. Built by :func:`minibatch`, part of :func:`.verdicts.build`.
"""

from dataclasses import dataclass

from .results import compare
from .verdicts import Checks, Versus, capability, versus

__all__ = ["minibatch", "minibatch_best", "peer_best", "Minibatch", "MlpComparison",
           "MLP_BATCH", "MLP_TARGET"]

#: The comparison with scikit-learn's MLPClassifier that fastnn's mini-batch
#: training set out to win: an epoch at this batch size ...
MLP_BATCH = 32
#: ... at least this many times faster, quartile against quartile.
MLP_TARGET = 3.0


def minibatch_best(res):
    """``{B: impl}``: the fastest (median) fastnn backend at each batch size --
    among the compiled ones when any ran there, else among all."""
    best = {}
    for b in sorted({b for pts in res.minibatch.values() for b in pts}):
        here = {i: pts[b] for i, pts in res.minibatch.items()
                if b in pts and not i.startswith("peer:")}
        pool = [i for i in here if capability(i, "COMPILED")] or list(here)
        if pool:
            best[b] = min(pool, key=lambda i: here[i].median)
    return best


def peer_best(res, b):
    """The fastest peer at batch size ``b``, or None."""
    peers = {i: pts[b] for i, pts in res.minibatch.items() if i.startswith("peer:") and b in pts}
    return min(peers, key=lambda i: peers[i].median) if peers else None


@dataclass
class MlpComparison:
    """The fastest fastnn backend against MLPClassifier at ``MLP_BATCH``:
    ``outcome`` "meets" (quartile against quartile), "medians" (only the
    medians reach the target), "short", "not faster" or "not run"."""

    outcome: str
    vs: Versus = None
    quartiles: float = None


def _mlp(res, best):
    b = MLP_BATCH
    if b not in best:
        return None
    sk = res.minibatch.get("peer:sklearn", {}).get(b)
    if sk is None:
        return MlpComparison("not run")
    f = res.minibatch[best[b]][b]
    vs = versus(best[b], f, "peer:sklearn", sk)
    if vs.verdict != "faster":
        return MlpComparison("not faster", vs)
    # Met only beyond the noise: scikit-learn's fast quartile against fastnn's slow one.
    quartiles = sk.q1 / f.q3
    outcome = "meets" if quartiles >= MLP_TARGET else \
        "medians" if vs.ratio >= MLP_TARGET else "short"
    return MlpComparison(outcome, vs, quartiles)


def _minibatch_check(res):
    worst, peers, failed, lowered = 0.0, None, [], []
    for impl, pts in res.minibatch.items():
        for b, t in pts.items():
            d = t.get("max_rel_diff_vs_numpy")
            if t.get("cost_after") is not None and not t.get("cost_after") < t.get("cost_start"):
                lowered.append((impl, b))
            if d is None:
                continue
            if impl.startswith("peer:"):
                peers = max(peers or 0.0, d)
            else:
                worst = max(worst, d)
                if t.get("check_passed") is False:
                    failed.append((impl, b))
    return Checks(worst, failed, peers, lowered)


@dataclass
class Minibatch:
    #: ``{B: impl}`` of :func:`minibatch_best`, and its batch sizes.
    best: dict
    sizes: list
    #: Whether a compiled backend is among the best.
    compiled: bool
    #: ``{B: Versus}``: the best against the fastest peer.
    leads: dict
    #: The batch sizes of the largest and (when another) the smallest lead that
    #: stands out of the noise; those where none does.
    top: int
    low: int
    lost: list
    mlp: MlpComparison
    #: ``[(impl, ratio)]``: an epoch at the smallest B over one at the largest.
    overhead: list
    check: Checks
    #: ``[(impl, reason, [B])]`` of the implementations a group did not run.
    not_run: list


def minibatch(res):
    if not res.minibatch:
        return None
    mb = res.minibatch
    best = minibatch_best(res)
    sizes = sorted(best)
    leads = {}
    for b in sizes:
        peer = peer_best(res, b)
        if peer is not None:
            leads[b] = versus(best[b], mb[best[b]][b], peer, mb[peer][b])
    won = {b: v for b, v in leads.items() if v.verdict == "faster"}
    top = max(won, key=lambda b: won[b].ratio) if won else None
    low = min(won, key=lambda b: won[b].ratio) if won else None
    # An epoch is the same arithmetic at every B: B = 1 against B = m is the
    # per-batch overhead, said where the spreads separate.
    overhead = []
    if sizes and sizes[0] != sizes[-1]:
        lo, hi = sizes[0], sizes[-1]
        for impl in dict.fromkeys(("numpy", best[lo]) if "numpy" in mb else (best[lo],)):
            pts = mb.get(impl, {})
            if lo in pts and hi in pts and compare(pts[hi], pts[lo])[0] == "faster":
                overhead.append((impl, pts[lo].median / pts[hi].median))
    skipped = {}
    for impl, why in res.minibatch_skipped.items():
        for b, reason in why.items():
            skipped.setdefault((impl, reason), []).append(b)
    not_run = [(impl, reason, sorted(bs)) for (impl, reason), bs in skipped.items()]
    return Minibatch(best, sizes, any(capability(i, "COMPILED") for i in best.values()),
                     leads, top, low if low != top else None,
                     [b for b, v in leads.items() if v.verdict != "faster"], _mlp(res, best),
                     overhead, _minibatch_check(res), not_run)
