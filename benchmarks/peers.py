"""Optional peer implementations of the lecture's training loop, for the benchmarks.

``pip install -e ".[compare]"`` brings PyTorch, JAX and scikit-learn; without them
:func:`available` says why and the benchmarks skip. Every peer runs the same
batch gradient descent as fastnn (same initial arrays, same cross-entropy
cost, plain SGD, full batch) so times and results are comparable:

- ``torch``: autograd + ``torch.optim.SGD``, CPU, all cores.
- ``jax``: the whole loop jitted (``lax.fori_loop`` over value_and_grad), x64.
- ``sklearn``: ``MLPClassifier(solver="sgd", batch_size=m)``, no momentum, no
  L2, constant learning rate -- its own Python loop over BLAS.

A peer is made from fastnn-style arrays with :func:`make` and returns an
object with ``run(num_iterations)`` (train in place) and ``params()`` (course
``(Ws, bs)`` as float64 ndarrays).

Mini-batch peers (:func:`make_minibatch`, names :data:`MINIBATCH_NAMES`) train
epochs of shuffled mini-batches instead, ``run(num_epochs)``; they live in
:mod:`.peers_minibatch`, which says how each one trains.

They are benchmark code: the package ``fastnn.benchmarks`` ships them, and
nothing under ``fastnn`` proper imports them.
"""

import importlib
import warnings

import numpy as np

__all__ = ["NAMES", "MINIBATCH_NAMES", "available", "make", "make_minibatch", "version"]

NAMES = ["torch", "jax", "sklearn"]
MINIBATCH_NAMES = ["course", "torch", "jax", "sklearn"]
_MODULE = {"torch": "torch", "jax": "jax", "sklearn": "sklearn", "course": "numpy"}


def available(name):
    """True, or the reason peer ``name`` cannot run here."""
    try:
        importlib.import_module(_MODULE[name])
    except ImportError:
        return f"{_MODULE[name]} not installed; pip install \"fastnn[compare]\""
    return True


def version(name):
    try:
        return importlib.import_module(_MODULE[name]).__version__
    except ImportError:
        return None


def make(name, Ws, bs, acts, X, Y, learning_rate):
    """A peer trainer starting from copies of ``Ws``/``bs`` on data ``X``, ``Y``."""
    return {"torch": _Torch, "jax": _Jax, "sklearn": _Sklearn}[name](
        Ws, bs, acts, X, Y, learning_rate)


class _Torch:
    def __init__(self, Ws, bs, acts, X, Y, learning_rate):
        import torch

        self.torch = torch
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        self.params_ = []
        for W, b in zip(Ws, bs):
            self.params_ += [torch.tensor(W, dtype=dtype, requires_grad=True),
                             torch.tensor(b, dtype=dtype, requires_grad=True)]
        self.X = torch.tensor(X, dtype=dtype)
        self.Y = torch.tensor(Y, dtype=dtype)
        self.acts = acts
        self.opt = torch.optim.SGD(self.params_, lr=learning_rate)
        self.funcs = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
                      "identity": lambda z: z}

    def run(self, num_iterations):
        torch = self.torch
        for _ in range(num_iterations):
            A = self.X
            for l, act in enumerate(self.acts):
                Z = torch.addmm(self.params_[2 * l + 1], self.params_[2 * l], A)
                A = self.funcs[act](Z) if l < len(self.acts) - 1 else Z
            # The output layer's sigmoid folded into the loss: L = softplus(z) - y z.
            loss = torch.nn.functional.binary_cross_entropy_with_logits(A, self.Y)
            self.opt.zero_grad(set_to_none=False)
            loss.backward()
            self.opt.step()

    def params(self):
        arrays = [p.detach().numpy().astype(np.float64) for p in self.params_]
        return arrays[0::2], arrays[1::2]


class _Jax:
    #: One jitted training loop per (activations, learning rate): a second trainer
    #: on the same shapes (the benchmark's correctness copy) reuses the compile.
    _compiled = {}

    def __init__(self, Ws, bs, acts, X, Y, learning_rate):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        key = (tuple(acts), float(learning_rate))
        if key not in self._compiled:
            self._compiled[key] = jax.jit(self._loop(jax, jnp, list(acts), learning_rate))
        self.jax = jax
        self.train = self._compiled[key]
        self.params_ = [jnp.asarray(a) for W, b in zip(Ws, bs) for a in (W, b)]
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)

    @staticmethod
    def _loop(jax, jnp, acts, learning_rate):
        funcs = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid,
                 "identity": lambda z: z}

        def cost(params, X, Y):
            A = X
            for l, act in enumerate(acts):
                W, b = params[2 * l], params[2 * l + 1]
                Z = W @ A + b
                A = funcs[act](Z) if l < len(acts) - 1 else Z
            return jnp.mean(jax.nn.softplus(A) - Y * A)

        grad = jax.grad(cost)

        def train(params, X, Y, n):
            def step(_, p):
                g = grad(p, X, Y)
                return [pi - learning_rate * gi for pi, gi in zip(p, g)]
            return jax.lax.fori_loop(0, n, step, params)

        return train

    def run(self, num_iterations):
        self.params_ = self.train(self.params_, self.X, self.Y, num_iterations)
        self.jax.block_until_ready(self.params_)

    def params(self):
        arrays = [np.asarray(p, dtype=np.float64) for p in self.params_]
        return arrays[0::2], arrays[1::2]


class _Sklearn:
    def __init__(self, Ws, bs, acts, X, Y, learning_rate):
        from sklearn.neural_network import MLPClassifier

        hidden = set(acts[:-1])
        if len(hidden) > 1 or acts[-1] != "sigmoid":
            raise ValueError("MLPClassifier needs one hidden activation and a sigmoid output")
        activation = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic",
                      "identity": "identity"}[hidden.pop() if hidden else "relu"]
        self.Xt, self.y = np.ascontiguousarray(X.T), Y[0].astype(int)
        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(W.shape[0] for W in Ws[:-1]), activation=activation,
            solver="sgd", batch_size=X.shape[1], learning_rate="constant",
            learning_rate_init=learning_rate, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
            shuffle=False, tol=0.0, n_iter_no_change=10**9, early_stopping=False,
            warm_start=True, max_iter=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.fit(self.Xt, self.y)  # builds the layers; overwritten next
        self.clf.coefs_ = [np.ascontiguousarray(W.T, dtype=X.dtype) for W in Ws]
        self.clf.intercepts_ = [b[:, 0].astype(X.dtype) for b in bs]

    def run(self, num_iterations):
        self.clf.max_iter = num_iterations
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: we asked for exactly n steps
            self.clf.fit(self.Xt, self.y)

    def params(self):
        Ws = [np.ascontiguousarray(c.T, dtype=np.float64) for c in self.clf.coefs_]
        bs = [i[:, None].astype(np.float64) for i in self.clf.intercepts_]
        return Ws, bs


# -- mini-batch peers ---------------------------------------------------------------------

def make_minibatch(name, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
    """A mini-batch peer starting from copies of ``Ws``/``bs`` on ``X``, ``Y``.

    ``run(num_epochs)`` trains that many epochs of ``batch_size`` mini-batches
    (the last one smaller); the shuffles come from
    ``numpy.random.default_rng(seed)`` (scikit-learn: its ``random_state=seed``).
    ``acts[-1]`` is ``"softmax"`` (Y one-hot ``(K, m)``) or ``"sigmoid"``.
    """
    from . import peers_minibatch as mb

    if acts[-1] not in ("softmax", "sigmoid"):
        raise ValueError(f"mini-batch peers need a softmax or sigmoid output, not {acts[-1]!r}")
    return {"course": mb.CourseMinibatch, "torch": mb.TorchMinibatch, "jax": mb.JaxMinibatch,
            "sklearn": mb.SklearnMinibatch}[name](Ws, bs, acts, X, Y, learning_rate,
                                                  batch_size, seed)
