"""What watches a fit from the outside: divergence, and the progress bar.

Both hang off the ``on_cost(i, cost)`` callback every backend calls at each
recorded cost (the compiled ones between their compiled chunks), so watching
costs nothing inside the training loop.
"""

import numpy as np

from . import activations as _act
from . import losses as _losses

__all__ = ["COST_GROWTH", "Divergence", "ProgressBar"]

#: A recorded cost this many times above both its start and the cost of the
#: trivial predictor (Z_L = 0: log 2 per output for cross-entropy) means the fit
#: has left every basin. Gradient descent that converges can rise for a while
#: (an oscillation along the sharpest direction before it settles) but not by
#: four orders of magnitude over the trivial predictor: for cross-entropy that
#: is logits ~7000 on the wrong side on average.
COST_GROWTH = 1e4


class Divergence:
    """Watches a fit for divergence at no measurable cost: O(1) per recorded
    cost (the compiled backends report them between their compiled chunks) and
    one read of the parameters at the end."""

    def __init__(self, loss, output_activation, Y, bar):
        self._trivial_of = (loss, output_activation, Y)
        self._start = None
        self._epochs = False
        self._bar = bar
        self.stop = None  # (iteration or None, why)

    def _trivial(self):
        """The cost of Z_L = 0, worked out only when a cost is already suspect."""
        loss, output_activation, Y = self._trivial_of
        ZL = np.zeros(Y.shape)
        return _losses.cost(loss, _act.forward(output_activation, ZL), ZL, Y, output_activation)

    def start_from_trivial(self):
        """Measure growth from the trivial predictor's cost: for a fit that
        records no cost of its initial parameters and is watched through its
        epoch losses, whose first one already holds an epoch of steps."""
        self._start = self._trivial()
        self._epochs = True  # its cost at i = 0 is of an epoch's steps, not of the start

    def on_cost(self, i, cost):
        if self._bar is not None:
            self._bar.update(i, cost)
        if self._start is None:
            self._start = cost
        if not np.isfinite(cost):
            self.stop = (i, "the cost is not finite")
        elif cost > COST_GROWTH * self._start and cost > COST_GROWTH * self._trivial():
            self.stop = (i, f"the cost {cost:.3g} is over {COST_GROWTH:g} times "
                            f"max(its start {self._start:.3g}, the trivial predictor's "
                            f"{self._trivial():.3g})")
        return self.stop is None

    def check(self, params, learning_rate):
        """Raise FloatingPointError if the fit diverged."""
        if self.stop is not None and self.stop[0] == 0 and not self._epochs:
            raise FloatingPointError(
                "the cost of the initial parameters is not finite: X is too large for this "
                "network (overflow before any update); rescale X. The network's parameters "
                "were left unchanged.")
        # The bound is sqrt of the dtype's largest value (1.3e154 in float64,
        # 1.8e19 in float32): backprop multiplies a weight by itself (dZ_{l-1}
        # = W_l^T dZ_l, and dZ_l grows with W_l through Z_l), so past it the
        # gradients of any input of order one overflow. No converging fit holds
        # such a parameter. min and max read each array once, no temporary.
        bound = float(np.sqrt(np.finfo(params[0].dtype).max))
        if self.stop is None:
            low = np.min([P.min() for P in params])  # np.min, unlike min(), keeps a NaN
            high = np.max([P.max() for P in params])
            if not (np.isfinite(low) and np.isfinite(high)):
                self.stop = (None, "a parameter is not finite")
            elif not (-bound <= low and high <= bound):
                worst = low if low < -bound else high
                self.stop = (None, f"a parameter reached {worst:.3g}, past +-{bound:.3g}")
        if self.stop is not None:
            i, why = self.stop
            where = "by the last iteration" if i is None else f"at iteration {i}"
            raise FloatingPointError(
                f"training diverged {where} ({why}) with learning_rate={learning_rate}; try a "
                f"smaller learning_rate. The network's parameters were left unchanged.")


class ProgressBar:
    """A rich progress bar that shows the latest recorded cost."""

    def __init__(self, total):
        from rich.progress import Progress

        self._progress = Progress(*Progress.get_default_columns(), "cost {task.fields[cost]}")
        self._task = self._progress.add_task("training", total=total, cost="-")
        self._progress.start()

    def update(self, i, cost):
        self._progress.update(self._task, completed=i, cost=f"{cost:.6f}")

    def close(self):
        self._progress.update(self._task, completed=self._progress.tasks[0].total)
        self._progress.stop()
