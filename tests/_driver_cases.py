"""Small fits built at the driver's level (``_base.Fit``), which the cython
engine tests hand to the engine and to the loops oracle alike: a 4-6-n_out
network on m seeded random examples, epoch losses on."""

import numpy as np

from fastnn.backends import _base

OUTPUTS = {  # output activation -> (loss, output units)
    "exp": ("poisson", 2),
    "sigmoid": ("cross_entropy", 1),
    "softmax": ("cross_entropy", 3),
    "identity": ("mse", 2),
}


def small_fit(output, dtype=np.float64, m=21, hidden="tanh", weights=None, orders=None,
              **schedule):
    """The fit (X, Y and the parameters drawn from one seeded generator);
    ``weights(rng, dtype)``, if given, draws the per-example weights after the
    parameters; ``schedule`` overrides the Schedule's defaults (learning rate
    0.05, 4 iterations, a cost every 2, epoch losses on)."""
    rng = np.random.default_rng(5)
    loss, n_out = OUTPUTS[output]
    dims = [4, 6, n_out]
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    if output == "exp":
        Y = rng.poisson(1.5, (n_out, m)).astype(dtype)
    elif output == "softmax":
        Y = np.eye(n_out, dtype=dtype)[:, rng.integers(0, n_out, m)]
    elif output == "sigmoid":
        Y = (rng.random((1, m)) < 0.5).astype(dtype)
    else:
        Y = rng.standard_normal((n_out, m)).astype(dtype)
    Ws = [(rng.standard_normal((dims[l + 1], dims[l])) * 0.5).astype(dtype) for l in range(2)]
    bs = [(rng.standard_normal((dims[l + 1], 1)) * 0.1).astype(dtype) for l in range(2)]
    w = None if weights is None else weights(rng, dtype)
    options = dict(learning_rate=0.05, num_iterations=4, cost_every=2, epoch_loss=True)
    options.update(schedule)
    optimizer = options.get("optimizer")
    params = {f"{p}{l}": a for l, (W, b) in enumerate(zip(Ws, bs), 1)
              for p, a in (("W", W), ("b", b))}
    return _base.Fit(_base.Problem(np.ascontiguousarray(X), np.ascontiguousarray(Y),
                                   (hidden, output), loss, 1, sample_weight=w),
                     _base.Schedule(**options), Ws, bs, rng=np.random.default_rng(9),
                     optimizer_state=None if optimizer is None else optimizer.init(params),
                     orders=orders)


def train(backend, fit, threads=1):
    """``(epoch losses as [(i, loss)], recorded costs)`` of ``fit`` on ``backend``."""
    seen = []
    costs = _base.train(backend, fit, lambda i, cost: None, threads=threads,
                        on_epoch=lambda i, loss: seen.append((i, loss)))
    return seen, costs
