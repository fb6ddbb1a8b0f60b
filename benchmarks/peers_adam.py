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

from .peers_minibatch import CourseMinibatch, SklearnMinibatch, TorchMinibatch

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

    def run(self, num_epochs):
        m = self.X.shape[1]
        for _ in range(num_epochs):
            cost_total = 0
            for minibatch_X, minibatch_Y in self.random_mini_batches(self.X, self.Y,
                                                                      self.batch_size):
                AL, caches = self.forward_propagation(minibatch_X)
                cost_total += self.compute_cost(AL, minibatch_Y) * minibatch_Y.shape[1]
                grads = self.backward_propagation(AL, minibatch_Y, caches)
                self.t += 1
                self.update_parameters_with_adam(grads)
            self.costs.append(cost_total / m)


class TorchAdam(TorchMinibatch):
    """PyTorch's loop of the SGD peer with ``torch.optim.Adam`` (its defaults: the
    single-tensor implementation on CPU)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.opt = self.torch.optim.Adam(self.Ws + self.bs, lr=args[5], betas=(BETA1, BETA2),
                                         eps=EPSILON)


class JaxAdam:
    #: One jitted epoch per (activations, learning rate); jax.jit then keeps one
    #: compile per batch size, dtype and shapes, shared by the timed and the check copy.
    _compiled = {}

    def __init__(self, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import optax

        key = (tuple(acts), float(learning_rate))
        if key not in self._compiled:
            tx = optax.adam(learning_rate, b1=BETA1, b2=BETA2, eps=EPSILON)
            self._compiled[key] = tx, self._epoch(jax, jnp, optax, tx, list(acts))
        tx, self.epoch = self._compiled[key]
        self.jax = jax
        self.params_ = [jnp.asarray(a) for W, b in zip(Ws, bs) for a in (W, b)]
        self.state = tx.init(self.params_)
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _epoch(jax, jnp, optax, tx, acts):
        funcs = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}

        def cost(params, X, Y):  # softmax cross-entropy from the logits
            A = X
            for l, act in enumerate(acts):
                Z = params[2 * l] @ A + params[2 * l + 1]
                A = funcs[act](Z) if l < len(acts) - 1 else Z
            return jnp.mean(jax.nn.logsumexp(A, axis=0) - jnp.sum(Y * A, axis=0))

        grad = jax.grad(cost)

        def step(carry, X, Y):
            params, state = carry
            updates, state = tx.update(grad(params, X, Y), state, params)
            return optax.apply_updates(params, updates), state

        def epoch(params, state, X, Y, order, batch_size):
            m = X.shape[1]
            full = m // batch_size
            Xs, Ys = X[:, order], Y[:, order]

            def cut(A):  # (n, full * B) -> (full, n, B): one slice per scan step
                return A[:, :full * batch_size].reshape(A.shape[0], full, batch_size) \
                    .transpose(1, 0, 2)

            carry, _ = jax.lax.scan(lambda c, xy: (step(c, *xy), None), (params, state),
                                    (cut(Xs), cut(Ys)))
            if m % batch_size:
                carry = step(carry, Xs[:, full * batch_size:], Ys[:, full * batch_size:])
            return carry

        return jax.jit(epoch, static_argnums=5)

    def run(self, num_epochs):
        m = self.X.shape[1]
        for _ in range(num_epochs):
            order = self.rng.permutation(m)
            self.params_, self.state = self.epoch(self.params_, self.state, self.X, self.Y,
                                                  order, self.batch_size)
        self.jax.block_until_ready(self.params_)

    def params(self):
        arrays = [np.asarray(p, dtype=np.float64) for p in self.params_]
        return arrays[0::2], arrays[1::2]


class SklearnAdam(SklearnMinibatch):
    """``MLPClassifier`` of the SGD peer switched to ``solver="adam"``."""

    def __init__(self, *args):
        super().__init__(*args)
        self.clf.set_params(solver="adam", beta_1=BETA1, beta_2=BETA2, epsilon=EPSILON)
