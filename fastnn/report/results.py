"""Reading pytest-benchmark JSON into the rows the report and ``fastnn bench`` show.

Every timed call of the suite runs ``extra_info["iterations"]`` training
iterations; a row's ``seconds`` is the call's **minimum** over rounds divided
by that, i.e. time per training iteration. The minimum (timeit's advice) is the
run least disturbed by other processes: on a 2-core machine any other load
only ever adds time. ``median_seconds`` is kept beside it.
"""

import json
import math

from .workloads import WORKLOADS

__all__ = ["load", "rows", "ladder", "LADDER_ORDER", "format_seconds", "crossovers"]

#: Column order of the ladder: the lecture's rungs, then the peers.
LADDER_ORDER = ["loops", "per_example", "numpy", "numba", "cython", "cython:direct", "cython:blas",
                "peer:torch", "peer:jax", "peer:sklearn"]


def load(path):
    with open(path) as f:
        data = json.load(f)
    if "benchmarks" not in data:
        raise ValueError(f"{path} is not a pytest-benchmark JSON file (no 'benchmarks' key)")
    return data


def rows(data, prefix):
    """Flat dicts for every benchmark whose group starts with ``prefix``."""
    out = []
    for bench in data["benchmarks"]:
        group = bench.get("group") or ""
        if not group.startswith(prefix):
            continue
        info = dict(bench.get("extra_info", {}))
        iterations = info.get("iterations", 1) or 1
        row = {**info, "group": group, "name": bench["name"],
               "seconds": bench["stats"].get("min", bench["stats"]["median"]) / iterations,
               "median_seconds": bench["stats"]["median"] / iterations,
               "rounds": bench["stats"].get("rounds")}
        out.append(row)
    return out


def ladder(data):
    """``{workload: {impl: row}}`` for the ladder groups, workloads in suite order."""
    table = {name: {} for name in WORKLOADS}
    for row in rows(data, "ladder-"):
        table.setdefault(row["workload"], {})[row["impl"]] = row
    return {name: impls for name, impls in table.items() if impls}


def format_seconds(seconds):
    """A time with the unit that keeps 3 significant digits readable."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def crossovers(series):
    """Where one backend overtakes another along m.

    ``series`` is ``{impl: {m: seconds}}``. Returns ``[(m_star, faster_above,
    faster_below)]`` with m_star interpolated geometrically between the two
    sizes where the ratio of times changes sign.
    """
    out = []
    impls = list(series)
    for i, a in enumerate(impls):
        for b in impls[i + 1:]:
            ms = sorted(set(series[a]) & set(series[b]))
            for m0, m1 in zip(ms, ms[1:]):
                r0 = math.log(series[a][m0] / series[b][m0])
                r1 = math.log(series[a][m1] / series[b][m1])
                if r0 * r1 < 0:
                    frac = r0 / (r0 - r1)
                    m_star = math.exp(math.log(m0) + frac * (math.log(m1) - math.log(m0)))
                    above, below = (a, b) if r1 < 0 else (b, a)
                    out.append((m_star, above, below))
    return sorted(out)
