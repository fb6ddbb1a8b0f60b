"""The Adam peers of the optimizer group (``bench_optimizers.py``): the
mini-batch peers of :mod:`.peers_minibatch` with Adam in place of plain SGD,
``run(num_epochs)`` each, in the fastest plain form its library offers:

- ``course``: the course's NumPy loop (course 2, "Optimization methods"):
  ``random_mini_batches``, and per batch forward, cost, backward and
  ``update_parameters_with_adam`` (``t`` counts the updates), as the
  assignment writes it.
- ``torch``: the same loop as the SGD peer with ``torch.optim.Adam``.
- ``jax``: one jitted epoch, ``lax.scan`` over the batches, each step
  ``value_and_grad`` then optax's ``adam`` (``optax.apply_updates``).
- ``sklearn``: ``MLPClassifier(solver="adam", alpha=0)``, one ``fit`` of
  exactly n epochs with ``warm_start`` (scikit-learn rebuilds its Adam state at
  each ``fit``: moments restart at every timed call, which changes no time).

Every one runs the course's Adam -- β1 0.9, β2 0.999, ε 1e-8 outside the root,
bias-corrected -- as fastnn's ``optimizers.Adam()`` does; scikit-learn folds the
bias correction into its step size, the same update up to where ε sits.
``course``, ``torch`` and ``jax`` shuffle as fastnn does, so they train the
same batches.
"""

import importlib

import numpy as np

from .peers_minibatch import CourseMinibatch, JaxMinibatch, SklearnMinibatch, TorchMinibatch

__all__ = ["NAMES", "available", "make", "BETA1", "BETA2", "EPSILON"]

NAMES = ["course", "torch", "jax", "sklearn"]
#: fastnn's ``optimizers.Adam()`` defaults, given to every peer.
BETA1, BETA2, EPSILON = 0.9, 0.999, 1e-8
_MODULES = {"course": ["numpy"], "torch": ["torch"], "jax": ["jax", "optax"],
            "sklearn": ["sklearn"]}


def available(name):
    """True, or why Adam peer ``name`` cannot run here."""
    for module in _MODULES[name]:
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{module} not installed; pip install \"fastnn[compare]\""
    return True


def make(name, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
    """An Adam peer starting from copies of ``Ws``/``bs`` on ``X``, ``Y`` (one-hot
    ``(K, m)`` for a softmax output); shuffles from ``default_rng(seed)``."""
    if acts[-1] != "softmax":
        raise ValueError(f"the Adam peers train a softmax output, not {acts[-1]!r}")
    return {"course": CourseAdam, "torch": TorchAdam, "jax": JaxAdam, "sklearn": SklearnAdam}[
        name](Ws, bs, acts, X, Y, learning_rate, batch_size, seed)


class CourseAdam(CourseMinibatch):
    """The course's mini-batch loop with its ``update_parameters_with_adam``."""

    def __init__(self, *args):
        super().__init__(*args)
        self.v, self.s = {}, {}
        for key, W in self.parameters.items():  # initialize_adam
            self.v["d" + key] = np.zeros_like(W)
            self.s["d" + key] = np.zeros_like(W)
        self.t = 0

    def update_parameters_with_adam(self, grads, beta1=BETA1, beta2=BETA2, epsilon=EPSILON):
        for l in range(1, len(self.acts) + 1):
            for p in ("W", "b"):
                key, d = p + str(l), "d" + p + str(l)
                self.v[d] = beta1 * self.v[d] + (1 - beta1) * grads[d]
                v_corrected = self.v[d] / (1 - beta1 ** self.t)
                self.s[d] = beta2 * self.s[d] + (1 - beta2) * np.square(grads[d])
                s_corrected = self.s[d] / (1 - beta2 ** self.t)
                self.parameters[key] = (self.parameters[key] - self.learning_rate
                                        * v_corrected / (np.sqrt(s_corrected) + epsilon))

    def update_parameters(self, grads):
        self.t += 1
        self.update_parameters_with_adam(grads)


class TorchAdam(TorchMinibatch):
    """PyTorch's loop of the SGD peer with ``torch.optim.Adam`` (its defaults: the
    single-tensor implementation on CPU)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.opt = self.torch.optim.Adam(self.Ws + self.bs, lr=args[5], betas=(BETA1, BETA2),
                                         eps=EPSILON)


class JaxAdam(JaxMinibatch):
    """The SGD peer's jitted epoch with optax's ``adam``: the scan carries the
    parameters and the optimizer's state."""

    _compiled = {}

    @staticmethod
    def _update(grad, learning_rate):
        import optax

        tx = optax.adam(learning_rate, b1=BETA1, b2=BETA2, eps=EPSILON)

        def step(carry, X, Y):
            params, state = carry
            updates, state = tx.update(grad(params, X, Y), state, params)
            return optax.apply_updates(params, updates), state

        return step, lambda params: (params, tx.init(params))

    @staticmethod
    def _weights(carry):
        return carry[0]


class SklearnAdam(SklearnMinibatch):
    """``MLPClassifier`` of the SGD peer switched to ``solver="adam"``."""

    def __init__(self, *args):
        super().__init__(*args)
        self.clf.set_params(solver="adam", beta_1=BETA1, beta_2=BETA2, epsilon=EPSILON)
