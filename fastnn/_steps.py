"""The lecture's steps on a network's parameters -- forward, backward, cost,
predictions -- as :class:`fastnn.Network` offers them: each argument checked
and coerced, then handed to the network's backend.

A mixin of :class:`fastnn.Network`, which holds ``_state`` (the parameters),
``_acts``, ``_loss``, ``_dtype``, ``_threads``, ``_relu_grad_at_zero`` and
``_backend``, and the input checks ``_X``/``_Y``/``_XY``.
"""

import numpy as np

from . import _validation as _v
from . import _validation_optim as _vo
from . import _validation_weights as _vw
from . import backends as _backends
from . import losses as _losses
from . import regularization as _reg

__all__ = []


def _check_caches(caches, shapes, m, dtype, keep_probs=None):
    """``backward``'s caches: the list ``forward`` returned, one ``((A_prev, W,
    b), Z)`` per layer with the shapes of a network whose weights have
    ``shapes`` -- ``((A_prev, W, b), Z, D)`` for a hidden layer whose
    ``keep_probs`` entry is below 1 -- returned as arrays of ``dtype`` (D as
    bool)."""
    L = len(shapes)
    if not isinstance(caches, (list, tuple)) or len(caches) != L:
        raise ValueError(f"caches must be the list of {L} per-layer entries returned by "
                         f"forward(); got {type(caches).__name__}")
    checked = []
    for l, entry in enumerate(caches, start=1):
        dropped = keep_probs is not None and l < L and keep_probs[l - 1] < 1
        try:
            if dropped:
                (A_prev, W, b), Z, D = entry
            else:
                (A_prev, W, b), Z = entry
        except (TypeError, ValueError):
            form = "((A_prev, W, b), Z, D)" if dropped else "((A_prev, W, b), Z)"
            raise ValueError(f"caches[{l - 1}] must be {form} as returned by forward()"
                             + (" with the same keep_prob" if keep_probs is not None else "")
                             ) from None
        W = _v.as_float_array(f"caches[{l - 1}] W", W, dtype)
        b = _v.as_float_array(f"caches[{l - 1}] b", b, dtype)
        A_prev = _v.as_float_array(f"caches[{l - 1}] A_prev", A_prev, dtype)
        Z = _v.as_float_array(f"caches[{l - 1}] Z", Z, dtype)
        n, n_prev = shapes[l - 1]
        for name, arr, shape in (("A_prev", A_prev, (n_prev, m)), ("W", W, (n, n_prev)),
                                 ("b", b, (n, 1)), ("Z", Z, (n, m))):
            if arr.shape != shape:
                raise ValueError(f"caches[{l - 1}] {name} must have shape {shape}; "
                                 f"got {arr.shape}")
            _v.check_finite(f"caches[{l - 1}] {name}", arr)
        if not dropped:
            checked.append(((A_prev, W, b), Z))
            continue
        D = np.asarray(D)
        if D.shape != (n, m) or D.dtype.kind not in "biuf" or not np.isin(D, (0, 1)).all():
            raise ValueError(f"caches[{l - 1}] D must be a 0/1 mask of shape {(n, m)}; got "
                             f"{D.dtype} {D.shape}")
        checked.append(((A_prev, W, b), Z, D.astype(bool)))
    return checked


def _own_weights(AL, caches):
    """``(AL, caches)`` with copies of W and b in each cache entry: the backends
    cache the network's own arrays, which a caller's in-place edit of a cache
    would change behind the network's checks."""
    return AL, [((A_prev, W.copy(), b.copy()), *rest) for (A_prev, W, b), *rest in caches]


class _Steps:
    """forward / backward / cost / predict_proba / predict / accuracy."""

    def forward(self, X, keep_prob=1.0, rng=None):
        """Forward propagation.

        Parameters
        ----------
        X : array_like of shape (n_x, m)
        keep_prob : float in (0, 1], or one per hidden layer
            Inverted dropout on the hidden layers (1: none): each hidden layer's
            mask, from layer 1 up, is ``D = rng.random(A.shape) < keep_prob``
            (``rng.rand(*A.shape)`` for a ``RandomState``, as the course), and
            ``A = A * D / keep_prob``.
        rng : numpy.random.Generator, numpy.random.RandomState, int or None
            Draws the masks (only with ``keep_prob`` < 1).

        Returns
        -------
        AL : ndarray of shape (n_L, m)
        caches : list, one entry per layer
            ``((A_prev, W, b), Z)``, or ``((A_prev, W, b), Z, D)`` for a layer
            with dropout.
        """
        Ws, bs, _ = self._state
        X = self._X(X)
        keep_probs = _vo.check_keep_probs(keep_prob, len(Ws) - 1)
        if keep_probs is None:
            _vo.check_rng("rng", rng, draw=False)  # checked, though no mask is drawn
            return _own_weights(*self._backend.forward(Ws, bs, self._acts, X, self._threads))
        self._needs("HAS_OPTIMIZERS", "keep_prob < 1")
        dropout = _reg.draw_masks(_vo.check_rng("rng", rng), self.layer_dims, X.shape[1],
                                  keep_probs)
        return _own_weights(*self._backend.forward(Ws, bs, self._acts, X, self._threads,
                                                   dropout))

    def _needs(self, capability, what):
        if not getattr(self._backend, capability, False):
            raise ValueError(f"{what} needs a backend with {capability}: one of "
                             f"{_backends.having(capability)}; this network runs on "
                             f"{self._backend_name!r}")

    def backward(self, AL, Y, caches, lambd=0.0, keep_prob=1.0, sample_weight=None):
        """Backward propagation from :meth:`forward`'s output.

        ``lambd`` adds L2's ``(lambd / m) W`` to each dW; ``keep_prob`` must be
        the one :meth:`forward` dropped with: each cached mask D is applied as
        ``dA * D / keep_prob`` before g'. ``sample_weight`` (shape (m,), w_i >=
        0; a backend with ``HAS_SAMPLE_WEIGHT``): the gradients of the weighted
        cost (1 / S) sum_i w_i L_i + (lambd / 2S) sum_l ||W_l||^2, S = sum_i
        w_i (all 0 when S is 0).

        Returns
        -------
        grads : dict
            ``{"dW1": (n1, n0), "db1": (n1, 1), ...}``, gradients of the cost.
        """
        n_L = self._Ws[-1].shape[0]
        AL = _v.as_float_array("AL", AL, self._dtype)
        if AL.ndim != 2 or AL.shape[0] != n_L or AL.shape[1] == 0:
            raise ValueError(f"AL must have shape ({n_L}, m) as returned by forward(); "
                             f"got {AL.shape}")
        _v.check_finite("AL", AL)
        m = AL.shape[1]
        lambd = _vo.check_non_negative_float("lambd", lambd)
        keep_probs = _vo.check_keep_probs(keep_prob, len(self._Ws) - 1)
        caches = _check_caches(caches, [W.shape for W in self._Ws], m, self._dtype,
                                 keep_probs)
        Y = self._Y(Y, m)
        weights = _vw.check_sample_weight(sample_weight, m, self._dtype, self._backend_name,
                                          self._backend)
        extra = ()
        if lambd or keep_probs is not None:
            self._needs("HAS_OPTIMIZERS", "lambd or keep_prob")
            extra = (lambd, keep_probs)
        kw = {} if weights is None else {"sample_weight": weights}
        dWs, dbs = self._backend.backward(AL, Y, caches, self._acts, self._loss, self._threads,
                                          self._relu_grad_at_zero, *extra, **kw)
        grads = {}
        for l, (dW, db) in enumerate(zip(dWs, dbs), start=1):
            grads[f"dW{l}"], grads[f"db{l}"] = dW, db
        return grads

    def cost(self, X, Y, lambd=0.0, sample_weight=None):
        """The cost J = (1/m) sum of the loss over the m examples of (X, Y), plus
        L2's (lambd / 2m) sum_l ||W_l||^2. Never with dropout.

        With ``sample_weight`` (shape (m,), w_i >= 0; a backend with
        ``HAS_SAMPLE_WEIGHT``): the weighted J_w = (1 / S) sum_i w_i L_i +
        (lambd / 2S) sum_l ||W_l||^2, S = sum_i w_i, as scikit-learn's
        weighted loss (0 when S is 0)."""
        X, Y = self._XY(X, Y)
        lambd = _vo.check_non_negative_float("lambd", lambd)
        weights = _vw.check_sample_weight(sample_weight, X.shape[1], self._dtype,
                                          self._backend_name, self._backend)
        Ws, bs, _ = self._state
        AL, caches = self._backend.forward(Ws, bs, self._acts, X, self._threads)
        J = _losses.cost(self._loss, AL, caches[-1][1], Y, self._acts[-1], weights)
        m = X.shape[1] if weights is None else _losses.weight_sum(weights)
        return J + _reg.l2_penalty(Ws, lambd, m)

    def predict_proba(self, X):
        """The output A_L, shape (n_L, m): P(y = 1 | x) for a sigmoid output,
        P(class k | x) in row k for a softmax output."""
        Ws, bs, _ = self._state
        return self._backend.forward(Ws, bs, self._acts, self._X(X), self._threads)[0]

    def predict(self, X):
        """Class labels: 0/1 (A_L > 0.5), shape (n_L, m), for a sigmoid output;
        the class index (argmax over the units), shape (1, m), for softmax;
        for ``mse`` and ``poisson``, the output A_L."""
        AL = self.predict_proba(X)
        if self._loss in ("mse", "poisson"):
            return AL
        if self._acts[-1] == "softmax":
            return np.argmax(AL, axis=0).reshape(1, -1).astype(np.int64)
        return (AL > 0.5).astype(np.int64)

    def accuracy(self, X, Y):
        """Fraction of predicted labels equal to Y's (cross_entropy only; for
        softmax, per example: the argmax against Y's class)."""
        if self._loss != "cross_entropy":
            raise ValueError(f"accuracy needs the cross_entropy loss; this network uses "
                             f"{self._loss!r}")
        X, Y = self._XY(X, Y)
        if self._acts[-1] == "softmax":
            Y = np.argmax(Y, axis=0).reshape(1, -1)
        return float(np.mean(self.predict(X) == Y))
