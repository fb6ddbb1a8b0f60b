"""``Network``: the course's L-layer fully-connected network, on any backend.

The class owns the parameters and all validation; the backend (see
:mod:`fastnn.backends._base`) owns the arithmetic. A network never calls a
kernel with anything it has not checked and coerced first.
"""

import threading

import numpy as np

from . import _io
from . import _validation as _v
from . import _validation_weights as _vw
from . import backends as _backends
from . import _fitting
from ._steps import _Steps

__all__ = ["Network"]

INITS = ("random", "zeros", "xavier", "he")


def _init_weights(init, shape, init_scale, rng):
    n_l, n_prev = shape
    if init == "zeros":
        return np.zeros(shape)
    # From a RandomState this is the course's np.random.randn(n_l, n_prev), draw for draw.
    Z = rng.standard_normal(shape)
    if init == "random":
        return Z * init_scale
    if init == "xavier":
        return Z / np.sqrt(n_prev)
    return Z * np.sqrt(2.0 / n_prev)  # he


class Network(_Steps):
    """An L-layer fully-connected network trained by batch gradient descent.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_x, n1, ..., n_L]``: input size, then the units of each layer.
    activations : sequence of str, optional
        One activation per layer (``len(layer_dims) - 1``), from ``sigmoid``,
        ``tanh``, ``relu``, ``leaky_relu`` (slope 0.01), ``identity``; the
        output layer may also be ``softmax`` (K >= 2 classes, one unit each)
        or ``exp`` (a = e^z, for the ``poisson`` loss).
        Overrides ``hidden_activation``/``output_activation``.
    hidden_activation, output_activation : str
        Activation of layers 1..L-1 and of layer L when ``activations`` is None.
    loss : {"cross_entropy", "mse", "poisson"}, optional
        ``None`` picks ``cross_entropy`` for a sigmoid or softmax output,
        ``poisson`` for an exp output, else ``mse``. ``cross_entropy``
        requires one of those outputs: the binary cross-entropy for sigmoid
        (Y in {0, 1}), the categorical one for softmax (Y one-hot (K, m), or
        integer labels 0..K-1 of shape (m,)). ``poisson`` (scikit-learn's half
        Poisson deviance, Y >= 0) requires the exp output, and a backend with
        ``HAS_POISSON`` (:func:`fastnn.backends.having`).
    init : {"random", "zeros", "xavier", "he"}
        Weights: ``randn * init_scale`` (the lecture's x 0.01), zeros (shows the
        symmetry problem), ``randn / sqrt(n_{l-1})``, ``randn * sqrt(2 / n_{l-1})``.
        Biases start at zero.
    init_scale : float
        Scale of the ``random`` init.
    seed : int, numpy.random.Generator, numpy.random.RandomState or None
        Seeds a ``numpy.random.Generator``; global random state is never used.
        A ``RandomState`` is drawn from as the course's ``initialize_parameters_*``
        draw from NumPy's global one -- ``randn(n_l, n_{l-1})`` layer by layer,
        biases not drawn -- so ``init="he", seed=np.random.RandomState(3)`` gives
        the course's He weights; it advances the RandomState as they do.
    backend : str
        One of :func:`fastnn.backends.names`; see :func:`fastnn.backends.available`.
    dtype : {"float64", "float32"}
        Dtype of the parameters and of the arithmetic.
    threads : int or None
        Threads for backends that use them; ``None`` lets the backend choose.
    relu_grad_at_zero : {1, 0}
        The derivative of ReLU and leaky ReLU at exactly 0 in backpropagation:
        1 as the lecture's slides (the default), or 0 -- the left-hand
        derivative: 0 for ReLU, 0.01 for leaky ReLU -- as the course's
        assignment code (``dZ[Z <= 0] = 0``), PyTorch, JAX and scikit-learn.
        It decides whether a unit whose input is exactly 0 can revive, so the
        course's published cost traces need 0.

    Attributes
    ----------
    costs_ : list of (int, float)
        After :meth:`fit`: ``(i, cost)`` at iterations 0, cost_every, ... and
        at the last iteration; the cost of iteration i (over all m examples)
        before its update.
    threads_used_ : (int, str)
        After :meth:`fit`: the threads the fit ran on, and why (``threads``
        asked for, or what ``threads=None`` found: see
        :mod:`fastnn.backends._threads`).
    """

    def __init__(self, layer_dims, activations=None, *, hidden_activation="relu",
                 output_activation="sigmoid", loss=None, init="random", init_scale=0.01,
                 seed=None, backend="numpy", dtype="float64", threads=None,
                 relu_grad_at_zero=1):
        dims = _v.check_layer_dims(layer_dims)
        L = len(dims) - 1
        if activations is None:
            _v.check_activation("hidden_activation", hidden_activation)
            _v.check_activation("output_activation", output_activation, output=True)
            activations = [hidden_activation] * (L - 1) + [output_activation]
        acts = _v.check_activations(activations, L)
        _v.check_choice("init", init, INITS)
        init_scale = _v.check_positive_float("init_scale", init_scale)
        rng = _v.check_init_seed("seed", seed)
        _v.check_output_units(acts, dims[-1])
        self._setup(acts, loss, backend, dtype, threads, relu_grad_at_zero)
        _v.check_network_size(dims, self._dtype)
        Ws = [_init_weights(init, (dims[l], dims[l - 1]), init_scale, rng).astype(self._dtype)
              for l in range(1, L + 1)]
        bs = [np.zeros((dims[l], 1), dtype=self._dtype) for l in range(1, L + 1)]
        self._state = (Ws, bs, [])
        self._optimizer = None  # (optimizer, state, steps) the last fit left

    def _setup(self, acts, loss, backend, dtype, threads, relu_grad_at_zero):
        """Validate and store everything but the parameters."""
        self._acts = acts
        self._loss = _v.check_loss(loss, acts[-1])
        self._dtype = _v.check_dtype(dtype)
        self._threads = _v.check_threads(threads)
        self._relu_grad_at_zero = _v.check_relu_grad_at_zero(relu_grad_at_zero)
        self._backend_name = _backends.resolve(backend)  # "auto": the fastest available
        self._backend = _backends.get(self._backend_name)
        _vw.check_backend_takes(self._loss, self._backend_name, self._backend)
        # Held while fit() runs: a second fit() at the same time is refused.
        self._busy = threading.Lock()

    # A backend is a module and the lock is the running process's: a pickle
    # holds the backend's name and gets both anew when it is loaded -- on the
    # fastest backend there, with a warning, where that one is missing (a
    # worker without numba, a laptop without a compiler).
    def __getstate__(self):
        state = dict(self.__dict__)
        del state["_backend"], state["_busy"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer", None)  # pickled before optimizers existed
        self._backend_name = _backends.fallback(self._backend_name, "a pickled Network")
        self._backend = _backends.get(self._backend_name)
        _vw.check_backend_takes(self._loss, self._backend_name, self._backend)
        self._busy = threading.Lock()

    @classmethod
    def from_params(cls, params, activations, *, loss=None, backend="numpy", dtype="float64",
                    threads=None, relu_grad_at_zero=1):
        """A network holding a copy of course-style ``params``.

        Parameters
        ----------
        params : dict
            ``{"W1": (n1, n0), "b1": (n1, 1), ..., "WL": (n_L, n_{L-1}), "bL": (n_L, 1)}``.
        activations : sequence of str
            One activation per layer.

        The other parameters are the constructor's.
        """
        net = cls.__new__(cls)
        dtype_ = _v.check_dtype(dtype)
        _, Ws, bs = _v.check_params(params, dtype_)
        acts = _v.check_activations(activations, len(Ws))
        _v.check_output_units(acts, Ws[-1].shape[0])
        net._setup(acts, loss, backend, dtype, threads, relu_grad_at_zero)
        net._state = (Ws, bs, [])
        net._optimizer = None
        return net

    # ---------------------------------------------------------------- properties
    # ``_state`` = (Ws, bs, costs) is replaced in one assignment when a fit
    # succeeds, so a reader in another thread, or a fit stopped by Ctrl-C, never
    # sees half of one fit's result.
    @property
    def _Ws(self):
        return self._state[0]

    @property
    def _bs(self):
        return self._state[1]

    @property
    def costs_(self):
        """After :meth:`fit`: ``(i, cost)`` at iterations 0, cost_every, ... and
        the last; the cost of iteration i before its update."""
        return list(self._state[2])

    @property
    def optimizer_(self):
        """After :meth:`fit`: the optimizer it trained with."""
        return None if self._optimizer is None else self._optimizer[0]

    @property
    def optimizer_state_(self):
        """After :meth:`fit`: a copy of the optimizer's state (the course's dicts,
        keyed like the gradients; see :mod:`fastnn.optimizers`)."""
        if self._optimizer is None:
            return None
        return {slot: {k: v.copy() for k, v in d.items()} for slot, d in self._optimizer[1].items()}

    @property
    def optimizer_steps_(self):
        """After :meth:`fit`: the updates taken so far (Adam's t), over every
        fit chained with ``resume=True``."""
        return 0 if self._optimizer is None else self._optimizer[2]

    @property
    def layer_dims(self):
        return [self._Ws[0].shape[1]] + [W.shape[0] for W in self._Ws]

    @property
    def activations(self):
        return list(self._acts)

    @property
    def dtype(self):
        return np.dtype(self._dtype).name

    # What the network was made with, read-only (see the constructor).
    loss = property(lambda self: self._loss)
    backend = property(lambda self: self._backend_name)
    threads = property(lambda self: self._threads)
    relu_grad_at_zero = property(lambda self: self._relu_grad_at_zero)

    @property
    def params(self):
        """A copy of the parameters as ``{"W1", "b1", ..., "WL", "bL"}``."""
        out = {}
        Ws, bs, _ = self._state
        for l, (W, b) in enumerate(zip(Ws, bs), start=1):
            out[f"W{l}"], out[f"b{l}"] = W.copy(), b.copy()
        return out

    def __repr__(self):
        convention = "" if self._relu_grad_at_zero == 1 else ", relu_grad_at_zero=0"
        return (f"Network(layer_dims={self.layer_dims}, activations={self.activations}, "
                f"loss={self._loss!r}, backend={self._backend_name!r}, dtype={self.dtype!r}"
                f"{convention})")

    # ---------------------------------------------------------------- validation
    def _X(self, X, per_unit=2, rows=False):
        X = _v.check_X(X, self._Ws[0].shape[1], self._dtype, rows)
        _v.check_workspace(self.layer_dims, X.shape[1], self._dtype, per_unit)
        return X

    def _XY(self, X, Y):
        X = self._X(X)
        return X, self._Y(Y, X.shape[1])

    def _Y(self, Y, m):
        return _v.check_Y(Y, self._Ws[-1].shape[0], m, self._loss, self._dtype, self._acts[-1])

    def fit(self, X, Y, *, learning_rate, num_iterations, cost_every=100, progress=False,
            gram=None, batch_size=None, seed=None, callback=None, optimizer="gd", lambd=0.0,
            keep_prob=1.0, decay_rate=0.0, time_interval=1, resume=False, on_epoch=None,
            orders=None, sample_weight=None):
        """Gradient descent, as the lecture: forward, cost, backward, update.

        Parameters
        ----------
        X : array_like of shape (n_x, m)
            One column per example. An F-contiguous X of the network's dtype
            -- ``rows.T``, the transpose of a C-contiguous (m, n_x) array such
            as scikit-learn's -- is not copied where the engine gathers its
            mini-batches from rows (``batch_size`` on the cython and numba
            backends): it reads those rows in place. Elsewhere, and for any other layout or
            dtype, X is copied to C-contiguous columns first.
        Y : array_like of shape (n_L, m), or (m,) when n_L == 1
            Labels in {0, 1} for a sigmoid output with ``cross_entropy``;
            one-hot columns, or integer class labels of shape (m,), for softmax;
            values >= 0 for ``poisson``.
        learning_rate : float > 0
        num_iterations : int >= 1
            Iterations: updates from the full batch, or epochs with ``batch_size``.
        cost_every : int >= 1 or None
            Record the cost every this many iterations, and at the last, in
            ``costs_``. None: record none (``costs_`` stays empty; no forward
            pass over all m examples), e.g. when ``on_epoch`` reports each
            epoch's loss, which the divergence watch then reads instead.
        progress : bool
            Show a progress bar with the latest cost.
        batch_size : int or None
            ``None``: the lecture's batch gradient descent, one update per
            iteration from all m examples. An int in 1..m: each iteration is
            one epoch of mini-batch gradient descent over a fresh shuffle of
            the examples, in batches of ``batch_size`` (the last one smaller
            when it does not divide m), one update each. The recorded costs
            are over all m examples, before each epoch.
        seed : int, numpy.random.Generator or None
            Seeds the shuffles of ``batch_size`` training and the key of the
            dropout masks (``keep_prob`` < 1, with or without ``batch_size``;
            otherwise ignored). An int gives bitwise the same fit every time on a backend
            with the same thread count (``threads=None`` may pick another on a
            machine with other cores); ``None`` draws fresh entropy.
        callback : callable or None
            ``callback(i, cost)`` at each recorded cost (iteration i, before
            its update); if it returns False, training stops right there and
            the network keeps the parameters it had reached (those whose cost
            this is), e.g. for early stopping. Training runs on copies: while
            ``fit`` runs, the network itself (``params``, ``predict``) still
            holds the parameters it had before the call, and takes the new
            ones when ``fit`` returns. If ``callback`` raises, the exception
            propagates and the network keeps the parameters it had before.
        on_epoch : callable or None
            ``on_epoch(i, loss)`` after each iteration (epoch) i, with its
            loss as its batches saw it: the sum over its mini-batches k of
            (B_k / m) (J_k + (lambd / 2 B_k) sum_l ||W_l||^2), J_k the cost of
            batch k (B_k examples; with dropout, of the dropped network it
            steps on) at the parameters it starts from -- scikit-learn's
            ``loss_curve_`` entry, at no extra forward pass. If it returns
            False, training stops after that epoch. On a backend whose engine
            does not report epoch losses
            (:func:`fastnn._validation_optim.epoch_losses`), the fit runs
            under the driver's Python loop over its forward and backward.
        orders : callable or None
            With ``batch_size``: ``orders(count)`` gives the example orders
            of the next ``count`` epochs, an integer array of shape
            (count, m), each row a permutation of range(m) (checked), in
            place of the shuffles drawn from ``seed`` -- e.g. scikit-learn's
            ``shuffle(idx, random_state=...)`` each epoch. It is called in
            epoch order, only for epochs about to run.
        sample_weight : array_like of shape (m,) or None
            Per-example weights w_i >= 0 (finite), as scikit-learn's: each
            step's objective is the weighted mean (1 / S) sum_i w_i L_i +
            (lambd / 2S) sum_l ||W_l||^2 over its batch, S = sum_i w_i of that
            batch (a batch whose weights are all 0 -- a mini-batch, or all of
            them -- has loss and gradient 0 and the optimizer still steps,
            where scikit-learn divides by zero);
            recorded costs and epoch losses are weighted likewise. None: every
            example counts 1, exactly as without the argument. Needs a backend
            with ``HAS_SAMPLE_WEIGHT`` (:func:`fastnn.backends.having`).
        gram : bool or None
            Layer 1's training path. ``False``: the lecture's algorithm, W1 X and
            dZ1 X^T from X every iteration (what every comparison with another
            library uses). ``True``: the Gram rewrite (Z1 updated through X^T X,
            W1 formed at the end: exact in real arithmetic), on backends that
            have it (``HAS_GRAM``). ``None``: the backend decides.
        optimizer : {"gd", "momentum", "rmsprop", "adam"} or a fastnn.optimizers object
            The update rule (the course's second part; "gd" is the lecture's
            ``W -= learning_rate * dW``). Its state starts at zero; after the
            fit the network keeps it as ``optimizer_state_`` with
            ``optimizer_steps_``, the updates taken (Adam's t).
        resume : bool
            Continue from the optimizer state and step count the last fit left
            (the same optimizer required), e.g. to train on in several calls.
            Each call is otherwise a run of its own: its decay counts its own
            epochs from 0, its dropout masks take a new key from ``seed``, and
            its shuffles come from ``seed`` (pass both calls one Generator to
            continue one stream). Without decay and dropout, two fits of 10
            epochs sharing a Generator are bitwise one fit of 20.
        lambd : float >= 0
            L2 regularization: the objective J + (lambd / 2m) sum_l ||W_l||^2,
            m the examples of the batch each step is taken on (biases are not
            regularized). Recorded costs include the term.
        keep_prob : float in (0, 1], or one per hidden layer
            Inverted dropout on the hidden layers while training (1: none). The
            masks follow from ``seed``; recorded costs are of the network
            without dropout, as :meth:`cost` computes them.
        decay_rate, time_interval : float >= 0, int >= 1
            Learning-rate decay as the course's model loop: iteration (epoch) 0
            trains at ``learning_rate``, and after iteration i the rate becomes
            ``fastnn.schedules.schedule_lr_decay(learning_rate, i, decay_rate,
            time_interval)``.

        The second course's options need a backend with ``HAS_OPTIMIZERS``
        (:func:`fastnn.backends.having`).

        Returns
        -------
        self

        Raises
        ------
        FloatingPointError
            If training diverges (learning rate too large): a recorded cost
            not finite or ``fastnn._watch.COST_GROWTH`` times above its start,
            or a parameter not finite or past the square root of the dtype's
            largest value. The parameters are then left as they were.
        RuntimeError
            If another thread is fitting this network right now.
        KeyboardInterrupt
            Ctrl-C; the parameters are left as they were before ``fit``.
        """
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                "fit() is already running on this Network in another thread; a second fit at "
                "the same time would overwrite one of the two. Wait for the first to return, "
                "or fit a copy (net.to(net.backend)).")
        try:
            state = _fitting.run(self, X, Y, learning_rate, num_iterations, cost_every, progress,
                                 gram, batch_size, seed, callback, {
                                     "optimizer": optimizer, "lambd": lambd,
                                     "keep_prob": keep_prob, "decay_rate": decay_rate,
                                     "time_interval": time_interval}, resume, on_epoch,
                                 orders, sample_weight)
            self._state, self._optimizer, self.threads_used_ = state
        finally:
            self._busy.release()
        return self

    # ---------------------------------------------------------------- conversion, I/O
    def to(self, backend, *, threads=None):
        """A new network with the same parameters on another backend.

        ``threads`` is validated as in the constructor; ``None`` keeps this
        network's.
        """
        threads = self._threads if threads is None else _v.check_threads(threads)
        return Network.from_params(self.params, self._acts, loss=self._loss, backend=backend,
                                   dtype=self.dtype, threads=threads,
                                   relu_grad_at_zero=self._relu_grad_at_zero)

    def save(self, path):
        """Save parameters, activations, loss, dtype, ``relu_grad_at_zero`` and
        the backend's name to an ``.npz`` file (:func:`fastnn.load` runs it on
        that backend again, or on the fastest one there if it is missing).

        ``.npz`` is appended to ``path`` unless it ends with it (as
        :func:`numpy.savez` does); :func:`load` finds the file under either
        name. Returns the path written, a :class:`pathlib.Path`.
        """
        return _io.save(path, self.params, self._acts, self._loss, self.dtype,
                        self._relu_grad_at_zero, self._backend_name)

