"""The tests' data makers and tolerance helpers: one home, :mod:`fastnn._testing`
(shared with the benchmark suite, which travels with the installed package)."""

from fastnn._testing import (assert_close, binary_data, max_rel_diff, network_problem,  # noqa: F401
                             reference_params, regression_data, rel_diff)


class BenchmarkStandIn:
    """What the benchmark harness uses of pytest-benchmark's fixture, timing
    nothing itself: ``disabled`` as under plain pytest (one round on modest
    sizes, checked) or not (the rounds the suite asks for)."""

    def __init__(self, disabled=False):
        self.disabled = disabled
        self.extra_info, self.group = {}, None

    def pedantic(self, target, rounds, iterations, warmup_rounds):
        for _ in range(rounds):
            target()

    def record(self):
        """The group as it stands in the suite's JSON."""
        return {"group": self.group, "name": f"test[{self.group}]",
                "stats": {"median": 1.0, "rounds": 5}, "extra_info": self.extra_info}
