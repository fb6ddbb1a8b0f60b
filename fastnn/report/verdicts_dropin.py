"""The verdicts of the report's drop-in section (section 11), as data:
``fastnn.sklearn``'s estimators against scikit-learn's with both their
defaults -- whole fits to the same test score, and per epoch (iteration) of
each solver -- each ratio held to its goal from the measurements alone.

A ratio is scikit-learn's median over fastnn's (> 1: fastnn faster), judged
as every goal of the report is (:func:`.verdicts_optimizers.goal`): **met**
when the noise-proof bound (scikit-learn's fast quartile over fastnn's slow
one) reaches it, met at the medians when only the medians do, else missed. A
fit's goal needs the two test scores within ``SCORE_GAP`` too.
"""

import statistics
from dataclasses import dataclass

from .verdicts_optimizers import Goal, goal

__all__ = ["dropin", "Dropin", "FitRow", "EpochRow", "Floor", "FIT_GOAL", "EPOCH_GOALS",
           "FLOOR_GOAL", "SCORE_GAP", "JUDGED", "FLOOR_JUDGED"]

#: fastnn's default fit in at most a third of scikit-learn's.
FIT_GOAL = 3.0
#: Per epoch (iteration) of each solver: at least this many times faster.
EPOCH_GOALS = {"sgd": 3.0, "adam": 3.0, "lbfgs": 1.0}
#: lbfgs's iteration within this factor of its GEMM floor.
FLOOR_GOAL = 1.3
#: "The same test accuracy": within half a point.
SCORE_GAP = 0.005
#: The problems the goals were set on (the others are reported).
JUDGED = ("digits", "dense", "regression")
#: Where lbfgs's products make it GEMM-bound, so the floor is its ceiling.
FLOOR_JUDGED = ("dense",)


@dataclass(frozen=True)
class FitRow:
    """One problem, dtype and thread policy: the two default fits."""

    problem: str
    dtype: str
    threads: str
    sklearn: object  # Timing, seconds per fit
    fastnn: object
    speed: Goal      # sklearn / fastnn (wall clock)
    cpu: float       # the same ratio in process CPU time (medians)
    scores: tuple    # (sklearn, fastnn) test accuracy or R²
    same_score: bool
    outcome: str     # the goal with the scores: "met", "medians", "missed", None


@dataclass(frozen=True)
class Floor:
    """lbfgs's iteration against the GEMM floor: its products (``gflop`` per
    iteration: the evaluations per iteration times each one's) at ``peak``."""

    gflop: float
    peak: float
    evaluations: float  # per iteration
    seconds: float      # the floor
    goal: Goal          # fastnn / floor (at most FLOOR_GOAL)
    sklearn: float      # scikit-learn / floor


@dataclass(frozen=True)
class EpochRow:
    problem: str
    solver: str
    dtype: str
    threads: str
    sklearn: object  # Timing, seconds per epoch (iteration)
    fastnn: object
    speed: Goal
    cpu: float
    floor: Floor = None
    #: One thread: the epoch's (iteration's) products alone at one-thread BLAS,
    #: seconds (``products_s``), the least an epoch there can take; else None.
    products: float = None
    allowed: float = None  # the fastnn epoch the goal allows: scikit-learn's median / goal


@dataclass
class Dropin:
    fits: list
    epochs: list
    #: {problem: (kind, description, n_samples, n_features)}.
    problems: dict
    #: What the section says it ran on: load averages seen, the backend fastnn took.
    load: tuple
    backends: list


def _cpu_ratio(a, b):
    ca, cb = a.get("cpu_samples"), b.get("cpu_samples")
    return statistics.median(ca) / statistics.median(cb) if ca and cb else None


def _speed(sk, fn, target, judged):
    return goal(sk.median / fn.median, sk.q1 / fn.q3, target, False, judged)


def _fit(meta, timings):
    sk, fn = timings["sklearn"], timings["fastnn"]
    judged = meta["problem"] in JUDGED
    speed = _speed(sk, fn, FIT_GOAL, judged)
    scores = (sk.get("score"), fn.get("score"))
    same = None not in scores and abs(scores[1] - scores[0]) <= SCORE_GAP
    outcome = speed.outcome if same or speed.outcome is None else "missed"
    return FitRow(meta["problem"], meta["dtype"], meta["threads"], sk, fn, speed,
                  _cpu_ratio(sk, fn), scores, same, outcome)


def _floor(meta, fn, sk):
    peak, flops = meta.get("peak_gflops"), meta.get("flops_per_evaluation")
    evaluations, iterations = fn.get("evaluations"), fn.get("lbfgs_iterations")
    if not (peak and flops and evaluations and iterations):
        return None
    per = evaluations / iterations
    gflop = flops * per / 1e9
    floor = gflop / peak
    judged = meta["problem"] in FLOOR_JUDGED
    return Floor(gflop, peak, per, floor,
                 goal(fn.median / floor, fn.q3 / floor, FLOOR_GOAL, True, judged),
                 sk.median / floor)


def _epoch(meta, timings):
    sk, fn = timings["sklearn"], timings["fastnn"]
    solver = meta["solver"]
    speed = _speed(sk, fn, EPOCH_GOALS[solver], meta["problem"] in JUDGED)
    return EpochRow(meta["problem"], solver, meta["dtype"], meta["threads"], sk, fn, speed,
                    _cpu_ratio(sk, fn), _floor(meta, fn, sk) if solver == "lbfgs" else None,
                    meta.get("products_s") if meta["threads"] == "one" else None,
                    sk.median / EPOCH_GOALS[solver])


_ORDER = {"problem": ("digits", "dense", "regression", "cat"), "dtype": ("float64", "float32"),
          "threads": ("all", "one"), "solver": ("sgd", "adam", "lbfgs")}


def _rank(row, fields):
    return tuple(_ORDER[f].index(getattr(row, f)) if getattr(row, f) in _ORDER[f] else 99
                 for f in fields)


def dropin(res):
    """The :class:`Dropin` of ``res`` (its ``dropin-*`` groups), or None."""
    fits, epochs, problems, loads, backends = [], [], {}, [], set()
    for group, timings in res.dropin.items():
        meta = res.dropin_meta[group]
        if not {"sklearn", "fastnn"} <= set(timings):
            continue
        problems[meta["problem"]] = (meta.get("kind"), meta.get("description"),
                                     meta.get("n_samples"), meta.get("n_features"))
        loads += list(meta.get("load_before") or []) + list(meta.get("load_after") or [])
        if timings["fastnn"].get("backend"):
            backends.add(timings["fastnn"].get("backend"))
        if group.startswith("dropin-fit-"):
            fits.append(_fit(meta, timings))
        else:
            epochs.append(_epoch(meta, timings))
    if not fits and not epochs:
        return None
    fits.sort(key=lambda r: _rank(r, ("problem", "dtype", "threads")))
    epochs.sort(key=lambda r: _rank(r, ("problem", "solver", "dtype", "threads")))
    return Dropin(fits, epochs, problems, (min(loads), max(loads)) if loads else None,
                  sorted(backends))
