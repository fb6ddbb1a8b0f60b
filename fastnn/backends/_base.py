"""The contract every backend implements, and the one training driver they all
run under.

A backend is a module. ``fastnn.Network`` has already validated and coerced
everything it passes: ``X``, ``Y``, every ``W`` and ``b`` are C-contiguous
arrays of one float dtype (float32 or float64) with matching shapes, ``Y`` is
2-D ``(n_L, m)``, ``acts`` names valid activations, ``loss`` a valid loss
compatible with the output activation. A backend never validates.

Every backend has

``forward(Ws, bs, acts, X, threads) -> (AL, caches)``
    ``Ws[l-1]``/``bs[l-1]`` are layer l's ``(n_l, n_{l-1})`` weights and
    ``(n_l, 1)`` biases; ``acts[l-1]`` its activation name. ``caches`` is the
    course's list, one entry per layer: ``((A_prev, W, b), Z)``.

``backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=1) -> (dWs, dbs)``
    Gradients of the cost J = (1/m) sum L with respect to each W and b, with
    the shapes of W and b. ``relu_grad_at_zero`` (1 or 0) is the value ReLU's
    and leaky ReLU's derivative takes at Z == 0 (0: the left-hand derivative,
    LEAKY_SLOPE for leaky ReLU); see :mod:`fastnn.activations`.

and may have

``engine(fit) -> engine``
    Its own way to run the training arithmetic of one :class:`Fit` (compiled
    backends: whole iterations or epochs in machine code). Without it the
    driver runs :class:`PythonEngine` over ``forward``/``backward``. An
    engine has three methods:

    - ``cost() -> float``: the cost J over all m examples at the current
      parameters (the recorded cost of the iteration about to run; with
      ``sample_weight``, the weighted J_w of ``HAS_SAMPLE_WEIGHT``);
    - ``run(count, orders, last)``: ``count`` iterations of full-batch
      gradient descent (``orders`` None), or ``count`` epochs of mini-batches,
      ``orders[e]`` (int64, shape (count, m)) the example order of epoch e, cut
      into batches ``order[k:k + batch_size]``, each with its own mean; ``last``
      says no cost will be asked for afterwards;
    - ``close()``: the trained parameters into ``fit.Ws``/``fit.bs`` (in
      place). Always called, also after an exception or Ctrl-C.

    With ``fit.schedule.epoch_loss`` (see :class:`Schedule`), ``run`` returns
    each iteration's (epoch's) loss as scikit-learn's ``loss_curve_`` counts
    it, float64 of shape (count,): sum over its batches k of (B_k / m) (J_k +
    lambd / (2 B_k) sum_l ||W_l||^2), J_k the loss of batch k's forward (the
    one its step trains on, dropout included) at the parameters it starts
    from; no second forward. Otherwise ``run`` returns None and computes none
    of it. A backend whose engine does this says so as ``EPOCH_LOSSES =
    True`` (an engine that declares ``OPTIMIZER_NAMES`` is taken to; the
    ``PythonEngine`` always does: :func:`fastnn._validation_optim.epoch_losses`);
    the driver runs a fit that needs them on any other under the
    ``PythonEngine``.

    Splitting a run into calls changes no result: ``run(a); run(b)`` is
    bitwise ``run(a + b)``. Nothing is allocated in proportion to
    ``num_iterations``. An engine runs on exactly ``fit.threads`` threads
    (fewer only where its build has no more: no OpenMP, fewer examples than
    threads), BLAS included.

The driver (:func:`train`) owns everything around the arithmetic: which
iterations record a cost (every ``cost_every``-th and the last: :func:`recorded`),
calls of about :data:`SLICE_SECONDS` between which Python runs (Ctrl-C, the
``on_cost`` callback, the divergence watch), the shuffles (:func:`epoch_orders`,
at most :data:`MAX_ORDER_ENTRIES` indices drawn at once, or the caller's:
``Fit.orders``) and the thread count (:mod:`._threads`).

``acts[-1]`` may be ``"softmax"`` (the only activation that is not
element-wise, see :mod:`fastnn.activations`), always with the
``cross_entropy`` loss: the categorical cost from the logits, and dZ_L =
A_L - Y. Y is then one-hot (n_L, m). On a backend with ``HAS_POISSON`` it
may be ``"exp"`` (a = e^z, output only), always with the ``poisson`` loss
(half Poisson deviance from the logits, :func:`fastnn.losses.per_example`;
dZ_L = A_L - Y; Y >= 0).

Capability attributes (``SLOW``, ``COMPILED`` and ``HAS_OPTIMIZERS`` required,
``HAS_GRAM``, ``HAS_SAMPLE_WEIGHT``, ``HAS_POISSON`` and ``HAS_ROW_BATCHES`` only where True; ask
:func:`fastnn.backends.having` rather than reading them off modules):

``SLOW``
    True for backends that run Python-level loops per example (the lecture's
    oracle rungs): given fewer iterations, skipped on big workloads.
``COMPILED``
    True for backends whose arithmetic runs as machine code of their own
    (threads, ISA paths, SIMD evidence apply).
``HAS_GRAM``
    True if the engine implements ``gram=True``.
``HAS_OPTIMIZERS``
    True if the engine trains with the course's second part too (the
    optimizers, L2, dropout, learning-rate decay: :class:`Schedule`), and
    ``forward`` takes ``dropout`` and ``backward`` ``lambd``/``keep_probs``::

        forward(Ws, bs, acts, X, threads, dropout=None)
        backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=1,
                 lambd=0.0, keep_probs=None)

    ``dropout`` has one entry per layer, None or ``(D, keep_prob)`` (hidden
    layers only, :func:`fastnn.regularization.fit_masks` in a fit); such a layer's
    cache is ``((A_prev, W, b), Z, D)`` and its A is ``A * D / keep_prob``.
    ``backward`` adds ``(lambd / m) W`` to each dW and applies each cached
    mask (``dA * D / keep_probs[l]``) before g′, taken at g(Z).
``HAS_SAMPLE_WEIGHT``
    True if the backend trains and differentiates with per-example weights
    (``Problem.sample_weight``): ``backward`` takes them as a keyword, a 1-D
    array of shape (m,) in the network's dtype, or None::

        backward(AL, Y, caches, acts, loss, threads, relu_grad_at_zero=1,
                 lambd=0.0, keep_probs=None, sample_weight=None)

    and then computes the gradients of J_w = (1/S) sum_i w_i L_i + (lambd /
    2S) sum_l ||W_l||^2, S = sum_i w_i: dZ_L's column i times w_i
    (:func:`fastnn.losses.weight_delta`), and every layer's dW = dZ A_prev^T
    / S + (lambd / S) W, db = sum_i dZ[:, i] / S -- dividing by S as
    ``scale = 1 / S if S > 0 else 0`` (:func:`fastnn.losses.mean_scale`): a
    batch whose weights sum to 0 has gradient 0, and the optimizer still
    steps. Its engine does the same on each batch (``order[k:k + B]`` gathers
    the weights as the columns), ``cost()`` is J_w over all m examples (S the
    sum of all weights), and an epoch's loss is sum_k (B_k / m) J_w,k, B_k
    the batch's example count (scikit-learn's ``loss_curve_``). Without
    weights (None) it computes exactly what it computes without this flag.
``HAS_POISSON``
    True if forward, backward and the engine (epoch losses included) take the
    ``exp`` output with the ``poisson`` loss (code
    ``fastnn.losses.CODES["poisson"]``, ``fastnn.activations.CODES["exp"]``).
``HAS_ROW_BATCHES``
    True if the engine's mini-batches are gathered from X's rows (X.T, one
    example a row): on that path (:func:`reads_rows`) ``Problem.X`` may be
    F-contiguous -- X.T C-contiguous, e.g. scikit-learn's (n_samples,
    n_features) array transposed -- and the engine reads those rows in place
    instead of copying X twice (to columns, and back to rows). Everywhere
    else ``Problem.X`` is C-contiguous.
``AUTO_THREADS_MIN_WORK``
    ``{"full": units, "batch": units}`` (backends that run on threads: the
    compiled ones, and numpy, whose products run on BLAS's): ``threads=None``
    runs on more than one thread only from this much work per iteration (per
    mini-batch), counted by :func:`._threads.work_units`. A backend without it
    runs on one thread, whatever ``threads`` asks.

Optional: ``DESCRIPTION`` (one line for ``fastnn backends``); ``info()`` -> dict
(versions, compile flags, threads, and for compiled backends ``"isa"``, the
kernel set in use) for reports; ``hot_code()`` -> ``{"<kernel> <dtype>":
assembly text}`` of the hot kernels that run on this CPU with the current
settings, which :mod:`fastnn.report` reads for its SIMD evidence.
"""

import dataclasses
import time

import numpy as np

from .. import _validation_optim as _vo
from .. import activations as _act
from .. import losses as _losses
from .. import schedules as _schedules
from . import _threads
from ._python_engine import PythonEngine, batches  # noqa: F401  (re-exported)

__all__ = ["Problem", "Schedule", "Fit", "PythonEngine", "train", "reads_rows", "recorded",
           "next_recorded", "epoch_orders", "batches", "SLICE_SECONDS", "MAX_ORDER_ENTRIES"]

#: A fit returns to Python (where Ctrl-C, the callback and the divergence watch
#: run) about this often, whatever ``num_iterations`` and ``cost_every`` are.
SLICE_SECONDS = 0.2
#: Mini-batch training draws the shuffles of one call's epochs at once: at most
#: this many int64 indices (8 MiB).
MAX_ORDER_ENTRIES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Problem:
    """What is trained on: validated arrays and the network's description.

    ``X`` (n_x, m) and ``Y`` (n_L, m) are C-contiguous in the network's dtype
    (X may be F-contiguous on a path that :func:`reads_rows`);
    ``acts`` the activation name of each layer; ``loss`` the loss's name;
    ``relu_grad_at_zero`` ReLU′(0), 1 or 0; ``sample_weight`` None, or the
    per-example weights, C-contiguous of shape (m,) in the network's dtype,
    finite, >= 0 (their sum may be 0: a zero mean, see the contract above; only
    on a backend with ``HAS_SAMPLE_WEIGHT``).
    """

    X: np.ndarray
    Y: np.ndarray
    acts: tuple
    loss: str
    relu_grad_at_zero: int = 1
    sample_weight: np.ndarray = None

    @property
    def m(self):
        return self.X.shape[1]

    @property
    def dtype(self):
        return self.X.dtype

    @property
    def codes(self):
        """The activations as the integer codes compiled kernels switch on."""
        return np.array([_act.CODES[a] for a in self.acts], dtype=np.int64)

    @property
    def loss_code(self):
        return _losses.CODES[self.loss]


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How it is trained: ``num_iterations`` full-batch iterations, or epochs of
    mini-batches of ``batch_size``; a cost recorded every ``cost_every``-th
    iteration and at the last (None: none, no ``cost()`` asked); ``gram``
    layer 1's path (None: the backend picks; True only for a backend with
    ``HAS_GRAM`` and never with ``batch_size``).

    The course's second part (only for a backend with ``HAS_OPTIMIZERS``
    unless all are at their defaults): ``optimizer`` (a
    :mod:`fastnn.optimizers` object; None is plain gradient descent), ``lambd``
    (L2), ``keep_probs`` (inverted dropout: one keep probability per hidden
    layer, or None), ``decay_rate`` and ``time_interval`` (the learning rate of
    iteration i is :meth:`learning_rate_at`).

    ``epoch_loss``: each ``run`` returns its iterations' (epochs') losses as
    its batches saw them (see the module docstring), which :func:`train`
    hands to its ``on_epoch``.
    """

    learning_rate: float
    num_iterations: int
    cost_every: int = 100
    batch_size: int = None
    gram: bool = None
    optimizer: object = None
    lambd: float = 0.0
    keep_probs: tuple = None
    decay_rate: float = 0.0
    time_interval: int = 1
    epoch_loss: bool = False

    @property
    def plain(self):
        """Whether this is the first course's gradient descent (no optimizer,
        L2, dropout or decay)."""
        return (self.optimizer is None or self.optimizer.name == "gd") and not self.lambd \
            and self.keep_probs is None and not self.decay_rate

    def learning_rate_at(self, i):
        """The learning rate iteration (epoch) i trains at, as the course's model
        loop: ``learning_rate`` for iteration 0, and after iteration i the
        rate becomes ``schedule_lr_decay(learning_rate, i, decay_rate,
        time_interval)``."""
        if not self.decay_rate or i == 0:
            return self.learning_rate
        return _schedules.schedule_lr_decay(self.learning_rate, i - 1, self.decay_rate,
                                            self.time_interval)


@dataclasses.dataclass
class Fit:
    """One training run: what a backend's engine gets.

    ``Ws``/``bs`` are the network's scratch copies of its parameters, which the
    engine leaves trained on ``close()``; ``threads`` the count the driver
    decided (``threads_why`` says why); ``rng`` draws the shuffles and the
    dropout masks' key (:meth:`dropout_key`). ``orders``, when given,
    replaces the shuffles: ``orders(count)`` returns the example orders of the
    next ``count`` epochs, int64 of shape (count, m), each row a permutation
    of range(m), already checked (e.g. scikit-learn's shuffles, drawn from its
    RandomState); it is called in epoch order, for the epochs about to run.
    """

    problem: Problem
    schedule: Schedule
    Ws: list
    bs: list
    threads: int = 1
    threads_why: str = ""
    #: The threads the engine ran on (its ``threads``: fewer than asked where its
    #: build or the examples have no more), set when training starts.
    threads_ran: int = None
    #: Why the engine ran fewer than decided, where it says (its ``threads_why``).
    threads_ran_why: str = ""
    rng: np.random.Generator = None
    #: The optimizer's state (course dicts keyed like the gradients, see
    #: :mod:`fastnn.optimizers`), which the engine leaves current on
    #: ``close()``, and the updates taken so far (Adam's t), which the driver
    #: counts after each ``run``.
    optimizer_state: dict = None
    steps: int = 0
    orders: object = None

    @property
    def dims(self):
        return [self.Ws[0].shape[1]] + [W.shape[0] for W in self.Ws]

    def dropout_key(self):
        """The uint64 key of the fit's dropout masks
        (:func:`fastnn.regularization.fit_mask`), drawn from a child of
        ``rng``'s seed (``Generator.spawn``), so it never moves the shuffles."""
        return int(self.rng.spawn(1)[0].integers(0, 2 ** 64, dtype=np.uint64))


def recorded(i, cost_every, num_iterations):
    """Whether iteration i's cost is recorded: every cost_every-th, and the last."""
    return i % cost_every == 0 or i == num_iterations - 1


def next_recorded(i, cost_every, num_iterations):
    """The first recorded iteration after i (num_iterations if none)."""
    return min((i // cost_every + 1) * cost_every, max(num_iterations - 1, i + 1))


def epoch_orders(rng, m, count):
    """The example orders of the next ``count`` epochs, shape (count, m), int64.

    One ``rng.permutation(m)`` per epoch, drawn in epoch order: the same
    sequence whether a backend asks for one epoch at a time or many.
    """
    orders = np.empty((count, m), dtype=np.int64)
    for e in range(count):
        orders[e] = rng.permutation(m)
    return orders


def _slices(count, most):
    """Split ``count`` iterations (or epochs) into calls of about SLICE_SECONDS,
    yielding each call's size: 1 first, then doubling until the time of the
    calls so far says how many fit; ``most`` caps a call. The caller's work
    between two yields is what is timed."""
    step = 1
    while count > 0:
        n = min(step, count, most)
        t0 = time.perf_counter()
        yield n
        per_item = (time.perf_counter() - t0) / n
        count -= n
        step = max(1, int(min(2 * step, SLICE_SECONDS / max(per_item, 1e-9))))


def _step_work(backend, fit):
    """``(min_work, rows)``: the backend's ``AUTO_THREADS_MIN_WORK`` for this
    fit's kind of step (None: it has none) and the examples of one step."""
    s = fit.schedule
    kind, rows = ("full", fit.problem.m) if s.batch_size is None else ("batch", s.batch_size)
    return getattr(backend, "AUTO_THREADS_MIN_WORK", {}).get(kind), rows


def decide_threads(backend, fit, requested):
    """``(threads, why)`` for ``fit`` on ``backend`` (see :mod:`._threads`)."""
    min_work, rows = _step_work(backend, fit)
    if min_work is None:
        return _threads.Decision(1, "Python loops: one thread")
    return _threads.decide(requested, fit.dims, rows, min_work)


def _native(backend, schedule):
    """Whether ``backend``'s own engine trains ``schedule`` (a fit needing epoch
    losses its engine lacks runs :class:`PythonEngine` instead)."""
    return hasattr(backend, "engine") and (not schedule.epoch_loss
                                           or _vo.epoch_losses(backend))


def reads_rows(backend, schedule):
    """Whether ``backend`` trains ``schedule`` on an engine that gathers its
    mini-batches from X's rows (``HAS_ROW_BATCHES``): only then may
    ``Problem.X`` be F-contiguous (read in place, not copied)."""
    return (schedule.batch_size is not None and bool(getattr(backend, "HAS_ROW_BATCHES", False))
            and _native(backend, schedule))


def train(backend, fit, on_cost, threads=None, on_epoch=None):
    """Train ``fit`` on ``backend``; the recorded costs as ``[(i, cost)]``.

    ``on_cost(i, cost)`` is called at each recorded cost as it is recorded
    (iteration i, before its update); training stops right there if it returns
    False. With ``fit.schedule.epoch_loss``, ``on_epoch(i, loss)`` is called
    after each iteration (epoch) i with its loss as its batches saw it, and
    training stops after that iteration if it returns False (the engine then
    runs one iteration per call). ``threads`` is the network's request (None:
    auto), decided here into ``fit.threads``/``fit.threads_why``. Ctrl-C
    raises ``KeyboardInterrupt`` within about SLICE_SECONDS; ``fit.Ws`` and
    ``fit.bs`` then hold a finished iteration or epoch.
    """
    s, m = fit.schedule, fit.problem.m
    most = m if s.batch_size is None else max(1, MAX_ORDER_ENTRIES // m)
    if s.epoch_loss:
        most = 1  # on_epoch may stop after any epoch
    costs = []
    draw = fit.orders if fit.orders is not None else (lambda n: epoch_orders(fit.rng, m, n))
    native = _native(backend, s)
    if not (fit.problem.X.flags.c_contiguous or reads_rows(backend, s)):
        # The kernels index X as C-contiguous columns: never hand them another layout.
        raise ValueError("Problem.X must be C-contiguous here: only an engine that "
                         "reads_rows() takes an F-contiguous X")
    min_work, rows = _step_work(backend, fit)
    bound = not native and _threads.gil_bound(min_work, fit.dims, rows)  # see turn()
    # Waiting for a turn is not running: a fit counts for others' budgets once it has it.
    with _threads.turn(bound), _threads.running():
        fit.threads, fit.threads_why = decide_threads(backend, fit, threads)
        engine = backend.engine(fit) if native else PythonEngine(backend, fit)
        fit.threads_ran = getattr(engine, "threads", fit.threads)
        fit.threads_ran_why = getattr(engine, "threads_why", "")
        try:
            i = 0
            while i < s.num_iterations:  # i is a recorded iteration here, if any is
                nxt = s.num_iterations
                if s.cost_every is not None:
                    J = float(engine.cost())
                    costs.append((i, J))
                    if on_cost(i, J) is False:
                        break
                    nxt = next_recorded(i, s.cost_every, s.num_iterations)
                stop = False
                for n in _slices(nxt - i, most if s.batch_size is not None or s.epoch_loss
                                 else nxt - i):
                    orders = None if s.batch_size is None else draw(n)
                    losses = engine.run(n, orders, i + n == s.num_iterations)
                    if s.epoch_loss and losses is None:
                        raise RuntimeError(f"{type(engine).__name__}.run: no epoch losses")
                    fit.steps += n if s.batch_size is None else n * -(-m // s.batch_size)
                    if s.epoch_loss:
                        stop = on_epoch(i, float(losses[0])) is False
                    i += n
                    if stop:
                        break
                if stop:
                    break
        finally:
            engine.close()
    return costs
