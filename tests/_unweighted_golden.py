"""Unweighted fits as fastnn computed them before per-example weights existed.

``data/unweighted_before.npz`` holds, for every backend, the results of
:func:`runs` made with the code of the commit before weights and the Poisson
loss came in (the parent of the ``contract:`` commit): run this module as a
script with that commit's ``fastnn`` first on ``PYTHONPATH`` to make it again::

    git archive <commit> fastnn | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old python tests/_unweighted_golden.py

``test_weights_poisson.py`` checks that ``sample_weight=None`` still computes
exactly these (bitwise) on every backend -- where the environment matches the
recording's (:func:`fingerprint`: same CPU kernels, BLAS and library versions),
since rounding legitimately differs between those. Only APIs both versions have
are used here.
"""

import json
import pathlib
import platform
import sys

import numpy as np

PATH = pathlib.Path(__file__).with_name("data") / "unweighted_before.npz"


def fingerprint():
    """What the bits of a fit depend on besides fastnn's code (the CPU, the
    library versions and builds, the compiled kernel set), as a JSON string."""
    import llvmlite.binding
    import numba
    import scipy

    from fastnn import backends

    def blas(module):
        dep = module.__config__.CONFIG["Build Dependencies"]["blas"]
        return f"{dep.get('name')} {dep.get('version')}"

    info = {"machine": platform.machine(), "cpu": llvmlite.binding.get_host_cpu_name(),
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "numba": numba.__version__,
            "blas": [blas(np), blas(scipy)]}
    if backends.available()["numba"] is True:
        info["numba_isa"] = backends.get("numba").info()["isa"]
    if backends.available()["cython"] is True:
        c = backends.get("cython").info()
        info["cython"] = [c["isa"], c["compile_flags"]]
    return json.dumps(info, sort_keys=True)


def _data(n_L, m=12, seed=0, kind="binary"):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, m))
    if kind == "binary":
        Y = (rng.random((n_L, m)) < 0.5).astype(np.float64)
    elif kind == "onehot":
        Y = np.eye(n_L)[:, rng.integers(0, n_L, m)]
    else:
        Y = rng.standard_normal((n_L, m))
    return X, Y


#: name -> (layer_dims, activations, data kind, fit keywords); small: the loops
#: oracle runs them too.
FITS = {
    "full-gd": ([3, 4, 2, 1], ["tanh", "relu", "sigmoid"], "binary",
                dict(learning_rate=0.3, num_iterations=6, cost_every=2)),
    "batch-adam-l2-dropout": ([3, 4, 2], ["relu", "identity"], "regression",
                              dict(learning_rate=0.02, num_iterations=4, cost_every=3,
                                   batch_size=5, seed=3, optimizer="adam", lambd=0.3,
                                   keep_prob=0.8)),
    "batch-momentum-softmax": ([3, 5, 3], ["sigmoid", "softmax"], "onehot",
                               dict(learning_rate=0.2, num_iterations=3, cost_every=1,
                                    batch_size=4, seed=5, optimizer="momentum",
                                    decay_rate=0.5)),
}


def runs(backend):
    """``{key: array}`` of one backend's results: each fit's parameters, recorded
    costs, epoch losses (``on_epoch``) and optimizer state, and the cost and
    gradients of its network before training (with L2)."""
    import fastnn

    out = {}
    for name, (dims, acts, kind, options) in FITS.items():
        X, Y = _data(dims[-1], kind=kind)
        net = fastnn.Network(dims, acts, init="xavier", seed=1, backend=backend, threads=1)
        out[f"{name}/cost"] = np.array([net.cost(X, Y, lambd=0.3)])
        AL, caches = net.forward(X)
        grads = net.backward(AL, Y, caches, lambd=0.3)
        for key, value in grads.items():
            out[f"{name}/grad/{key}"] = value
        losses = []
        net.fit(X, Y, **options, on_epoch=lambda i, loss: losses.append(loss))
        out[f"{name}/costs"] = np.array([c for _, c in net.costs_])
        out[f"{name}/epoch_losses"] = np.array(losses)
        for key, value in net.params.items():
            out[f"{name}/params/{key}"] = value
        for slot, arrays in (net.optimizer_state_ or {}).items():
            for key, value in arrays.items():
                out[f"{name}/state/{slot}/{key}"] = value
    return out


def record():
    from fastnn import backends

    arrays = {"fingerprint": np.array(fingerprint())}
    for backend in backends.names():
        if backends.available()[backend] is not True:
            sys.exit(f"backend {backend!r} is unavailable: record with every backend")
        for key, value in runs(backend).items():
            arrays[f"{backend}/{key}"] = value
    np.savez(PATH, **arrays)
    print(f"wrote {PATH} ({len(arrays)} arrays)")


if __name__ == "__main__":
    record()
