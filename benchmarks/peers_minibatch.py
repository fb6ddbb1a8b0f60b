"""The mini-batch peers of :func:`.peers.make_minibatch`: epochs of shuffled
mini-batches, ``run(num_epochs)``, on a sigmoid or softmax output, each in the
fastest plain form its library offers for it:

- ``course``: the course's own NumPy code (course 2, "Optimization methods"):
  ``random_mini_batches`` each epoch, then per batch forward, the batch's cost
  (the assignment's ``model`` accumulates it), backward with the assignment's
  ``dZ[Z <= 0] = 0``, and ``parameters["W" + str(l)] = W - lr * dW``. Needs
  only NumPy.
- ``torch``: rows as examples, ``F.linear``, ``F.cross_entropy``, autograd and
  ``torch.optim.SGD`` (no momentum) over index batches of a shuffled order,
  with whatever intra-op threads the caller set (the benchmark: one).
- ``jax``: one jitted function per epoch: the shuffled data cut into full
  batches that ``lax.scan`` steps through (value_and_grad, SGD), the last
  smaller batch one more jitted step -- no Python per mini-batch, as fastnn's
  compiled backends.
- ``sklearn``: ``MLPClassifier(solver="sgd", batch_size=B, shuffle=True,
  momentum=0, alpha=0)`` with ``warm_start``, ``max_iter = num_epochs`` and
  ``tol=0``, so one ``fit`` runs exactly that many epochs (checked through
  ``n_iter_``). Its per-epoch
  extras are its own: per batch it computes the batch's loss and the
  L2 term (sum of squared weights, even at alpha = 0), per epoch it records
  the loss curve and tests for convergence, per call it validates X and y.

``course``, ``torch`` and ``jax`` shuffle with ``rng.permutation(m)`` of a
``numpy.random.Generator`` seeded as fastnn's ``fit(seed=...)`` is, one per
epoch, so they see fastnn's batches exactly; scikit-learn draws its own.
"""

import warnings

import numpy as np

__all__ = ["CourseMinibatch", "TorchMinibatch", "JaxMinibatch", "SklearnMinibatch"]


class CourseMinibatch:
    """The course's NumPy mini-batch loop, written as the assignment writes it."""

    def __init__(self, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
        if set(acts[:-1]) - {"relu"}:
            raise ValueError("the course's mini-batch code has relu hidden layers only")
        self.parameters = {}
        for l, (W, b) in enumerate(zip(Ws, bs), start=1):
            self.parameters["W" + str(l)] = W.copy()
            self.parameters["b" + str(l)] = b.copy()
        self.acts, self.X, self.Y = list(acts), X, Y
        self.learning_rate, self.batch_size = learning_rate, batch_size
        self.rng = np.random.default_rng(seed)
        self.costs = []

    def random_mini_batches(self, X, Y, mini_batch_size):
        m = X.shape[1]
        permutation = list(self.rng.permutation(m))
        shuffled_X = X[:, permutation]
        shuffled_Y = Y[:, permutation]
        mini_batches = []
        num_complete_minibatches = m // mini_batch_size
        for k in range(num_complete_minibatches):
            mini_batch_X = shuffled_X[:, k * mini_batch_size:(k + 1) * mini_batch_size]
            mini_batch_Y = shuffled_Y[:, k * mini_batch_size:(k + 1) * mini_batch_size]
            mini_batches.append((mini_batch_X, mini_batch_Y))
        if m % mini_batch_size != 0:
            mini_batch_X = shuffled_X[:, num_complete_minibatches * mini_batch_size:]
            mini_batch_Y = shuffled_Y[:, num_complete_minibatches * mini_batch_size:]
            mini_batches.append((mini_batch_X, mini_batch_Y))
        return mini_batches

    def forward_propagation(self, X):
        caches = []
        A = X
        L = len(self.acts)
        for l in range(1, L + 1):
            A_prev = A
            Z = np.dot(self.parameters["W" + str(l)], A_prev) + self.parameters["b" + str(l)]
            if l < L:
                A = np.maximum(0, Z)
            elif self.acts[-1] == "softmax":
                T = np.exp(Z - np.max(Z, axis=0, keepdims=True))
                A = T / np.sum(T, axis=0, keepdims=True)
            else:
                A = 1 / (1 + np.exp(-Z))
            caches.append((A_prev, Z))
        return A, caches

    def compute_cost(self, AL, Y):
        m = Y.shape[1]
        # Clipped so a probability that underflows costs a large number, not log(0).
        logp = np.log(np.maximum(AL, np.finfo(AL.dtype).tiny))
        if self.acts[-1] == "softmax":
            return -np.sum(Y * logp) / m
        log1mp = np.log(np.maximum(1 - AL, np.finfo(AL.dtype).tiny))
        return -np.sum(Y * logp + (1 - Y) * log1mp) / m

    def backward_propagation(self, AL, Y, caches):
        grads = {}
        L = len(caches)
        m = AL.shape[1]
        dZ = AL - Y
        for l in reversed(range(1, L + 1)):
            A_prev, _ = caches[l - 1]
            grads["dW" + str(l)] = 1. / m * np.dot(dZ, A_prev.T)
            grads["db" + str(l)] = 1. / m * np.sum(dZ, axis=1, keepdims=True)
            if l > 1:
                dA_prev = np.dot(self.parameters["W" + str(l)].T, dZ)
                dZ = np.array(dA_prev, copy=True)
                dZ[caches[l - 2][1] <= 0] = 0
        return grads

    def update_parameters_with_gd(self, grads):
        for l in range(1, len(self.acts) + 1):
            self.parameters["W" + str(l)] = (self.parameters["W" + str(l)]
                                             - self.learning_rate * grads["dW" + str(l)])
            self.parameters["b" + str(l)] = (self.parameters["b" + str(l)]
                                             - self.learning_rate * grads["db" + str(l)])

    def run(self, num_epochs):
        m = self.X.shape[1]
        for _ in range(num_epochs):
            cost_total = 0
            for minibatch_X, minibatch_Y in self.random_mini_batches(self.X, self.Y,
                                                                      self.batch_size):
                AL, caches = self.forward_propagation(minibatch_X)
                cost_total += self.compute_cost(AL, minibatch_Y) * minibatch_Y.shape[1]
                grads = self.backward_propagation(AL, minibatch_Y, caches)
                self.update_parameters(grads)
            self.costs.append(cost_total / m)

    def update_parameters(self, grads):
        """One mini-batch's update: the assignment's gradient descent step."""
        self.update_parameters_with_gd(grads)

    def params(self):
        L = len(self.acts)
        return ([self.parameters["W" + str(l)].copy() for l in range(1, L + 1)],
                [self.parameters["b" + str(l)].copy() for l in range(1, L + 1)])


_TORCH_HIDDEN = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}


class TorchMinibatch:
    def __init__(self, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
        import torch

        self.torch = torch
        self.F = torch.nn.functional
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        # PyTorch's layout: a row per example, W (out, in), b (out,) as nn.Linear has them.
        self.Ws = [torch.tensor(W, dtype=dtype, requires_grad=True) for W in Ws]
        self.bs = [torch.tensor(b[:, 0], dtype=dtype, requires_grad=True) for b in bs]
        self.X = torch.tensor(np.ascontiguousarray(X.T), dtype=dtype)
        self.softmax = acts[-1] == "softmax"
        self.target = (torch.tensor(np.argmax(Y, axis=0)) if self.softmax
                       else torch.tensor(Y[0], dtype=dtype))
        self.hidden = [getattr(torch, _TORCH_HIDDEN[a]) for a in acts[:-1]]
        self.opt = torch.optim.SGD(self.Ws + self.bs, lr=learning_rate, momentum=0.0)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.threads = torch.get_num_threads()

    def run(self, num_epochs):
        torch, F = self.torch, self.F
        if torch.get_num_threads() != self.threads:  # the threads the caller set, kept
            torch.set_num_threads(self.threads)
        m, B = self.X.shape[0], self.batch_size
        for _ in range(num_epochs):
            order = torch.from_numpy(self.rng.permutation(m))
            for k in range(0, m, B):
                idx = order[k:k + B]
                A = self.X.index_select(0, idx)
                for W, b, g in zip(self.Ws, self.bs, self.hidden):
                    A = g(F.linear(A, W, b))
                logits = F.linear(A, self.Ws[-1], self.bs[-1])
                target = self.target.index_select(0, idx)
                loss = (F.cross_entropy(logits, target) if self.softmax
                        else F.binary_cross_entropy_with_logits(logits[:, 0], target))
                self.opt.zero_grad(set_to_none=False)
                loss.backward()
                self.opt.step()

    def params(self):
        return ([W.detach().numpy().astype(np.float64) for W in self.Ws],
                [b.detach().numpy().astype(np.float64)[:, None] for b in self.bs])


class JaxMinibatch:
    """One jitted epoch: ``lax.scan`` over the full batches of the shuffled data,
    each step ``value_and_grad`` then the update, the last smaller batch one more
    step. The scan carries what :meth:`_update` says: here the parameters and
    plain SGD; :class:`.peers_adam.JaxAdam` carries Adam's state beside them."""

    #: One jitted epoch per (activations, learning rate) -- a subclass keeps its
    #: own -- and jax.jit then keeps one compile per batch size, dtype and
    #: shapes, shared by the timed and the check copy.
    _compiled = {}

    def __init__(self, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        key = (tuple(acts), float(learning_rate))
        if key not in self._compiled:
            self._compiled[key] = self._epoch(jax, jnp, list(acts), learning_rate)
        self.jax, (self.epoch, init) = jax, self._compiled[key]
        self.carry = init([jnp.asarray(a) for W, b in zip(Ws, bs) for a in (W, b)])
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def _update(grad, learning_rate):
        """``(step, init)``: ``step(carry, X, Y)`` -> the carry after one batch's
        update, ``init(params)`` -> the first carry. SGD carries the parameters."""

        def step(params, X, Y):
            return [p - learning_rate * g for p, g in zip(params, grad(params, X, Y))]

        return step, lambda params: params

    @staticmethod
    def _weights(carry):
        """The parameters ``[W1, b1, W2, ...]`` in a carry."""
        return carry

    @classmethod
    def _epoch(cls, jax, jnp, acts, learning_rate):
        funcs = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}

        def cost(params, X, Y):
            A = X
            for l, act in enumerate(acts):
                Z = params[2 * l] @ A + params[2 * l + 1]
                A = funcs[act](Z) if l < len(acts) - 1 else Z
            if acts[-1] == "softmax":  # from the logits: logsumexp(z) - z_y
                return jnp.mean(jax.nn.logsumexp(A, axis=0) - jnp.sum(Y * A, axis=0))
            return jnp.mean(jax.nn.softplus(A) - Y * A)

        step, init = cls._update(jax.grad(cost), learning_rate)

        def epoch(carry, X, Y, order, batch_size):
            m = X.shape[1]
            full = m // batch_size
            Xs, Ys = X[:, order], Y[:, order]

            def cut(A):  # (n, full * B) -> (full, n, B): one slice per scan step
                return A[:, :full * batch_size].reshape(A.shape[0], full, batch_size) \
                    .transpose(1, 0, 2)

            carry, _ = jax.lax.scan(lambda c, xy: (step(c, *xy), None), carry,
                                    (cut(Xs), cut(Ys)))
            if m % batch_size:
                carry = step(carry, Xs[:, full * batch_size:], Ys[:, full * batch_size:])
            return carry

        return jax.jit(epoch, static_argnums=4), init

    def run(self, num_epochs):
        m = self.X.shape[1]
        for _ in range(num_epochs):
            order = self.rng.permutation(m)
            self.carry = self.epoch(self.carry, self.X, self.Y, order, self.batch_size)
        self.jax.block_until_ready(self._weights(self.carry))

    def params(self):
        arrays = [np.asarray(p, dtype=np.float64) for p in self._weights(self.carry)]
        return arrays[0::2], arrays[1::2]


class SklearnMinibatch:
    def __init__(self, Ws, bs, acts, X, Y, learning_rate, batch_size, seed):
        from sklearn.neural_network import MLPClassifier

        hidden = set(acts[:-1])
        if len(hidden) != 1:
            raise ValueError("MLPClassifier needs one hidden activation for every layer")
        activation = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic",
                      "identity": "identity"}[hidden.pop()]
        self.Xt = np.ascontiguousarray(X.T)
        # K classes -> softmax output; 2 (one row of Y) -> logistic: as fastnn's acts say.
        self.y = np.argmax(Y, axis=0) if acts[-1] == "softmax" else Y[0].astype(int)
        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(W.shape[0] for W in Ws[:-1]), activation=activation,
            solver="sgd", batch_size=batch_size, learning_rate="constant",
            learning_rate_init=learning_rate, momentum=0.0, nesterovs_momentum=False, alpha=0.0,
            # A RandomState instance, not the int: each fit continues its stream,
            # where an int would restart it and repeat the same epochs' shuffles.
            shuffle=True, random_state=np.random.RandomState(seed), tol=0.0, n_iter_no_change=10**9,
            early_stopping=False, warm_start=True, max_iter=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.clf.fit(self.Xt, self.y)  # builds the layers; overwritten next
        # In place: with warm_start the optimizer is rebuilt from these arrays on each fit.
        for c, W in zip(self.clf.coefs_, Ws):
            c[...] = W.T
        for i, b in zip(self.clf.intercepts_, bs):
            i[...] = b[:, 0]

    def run(self, num_epochs):
        self.clf.max_iter = num_epochs
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning: we asked for exactly n epochs
            self.clf.fit(self.Xt, self.y)
        if self.clf.n_iter_ != num_epochs:  # fit counts its own epochs from 0
            raise RuntimeError(f"MLPClassifier ran {self.clf.n_iter_} epochs, not {num_epochs}")

    def params(self):
        Ws = [np.ascontiguousarray(c.T, dtype=np.float64) for c in self.clf.coefs_]
        bs = [i[:, None].astype(np.float64) for i in self.clf.intercepts_]
        return Ws, bs
