"""Checks of the course's second part: the optimizers' hyper-parameters, the
learning-rate schedules' numbers, dicts of arrays keyed like the parameters,
and course-layout data for the mini-batches. Each raises ``TypeError`` or
``ValueError`` naming the argument and what was expected.
"""

import numbers

import numpy as np

__all__ = ["check_unit_interval", "check_bool", "COURSE_OPTIMIZER_NAMES", "optimizer_names",
           "trains", "check_trains", "check_keep_probs", "check_rng", "check_random_state_seed",
           "check_non_negative_int", "check_non_negative_float", "check_decay",
           "check_numeric_array", "check_is_dict", "check_array_dict", "check_like",
           "check_examples", "epoch_losses", "check_on_epoch", "check_orders"]


def check_random_state_seed(argument, seed):
    """An int seed for ``numpy.random.RandomState``: 0 <= seed < 2**32."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{argument} must be an int (a numpy.random.RandomState seed); "
                        f"got {seed!r}")
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"{argument} must be an int in [0, 2**32); got {seed}")
    return int(seed)


def check_non_negative_int(argument, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be a non-negative int; got {value!r}")
    if value < 0:
        raise ValueError(f"{argument} must be a non-negative int; got {value}")
    return int(value)


def check_non_negative_float(argument, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a non-negative finite number; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{argument} must be a non-negative finite number; got {value}")
    return value


def check_decay(argument, value):
    """An exponential-average decay rate beta in [0, 1), as a float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number in [0, 1); got {value!r}")
    value = float(value)
    if not 0 <= value < 1:  # also refuses nan
        raise ValueError(f"{argument} must be in [0, 1) (the weight of the running average; "
                         f"1 would never let a gradient in); got {value}")
    return value


def check_numeric_array(argument, value):
    """``value`` as an ndarray of real numbers (bool, int or float), not copied when it is one."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{argument} must be a numeric array; got {type(value).__name__} "
                        f"({exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{argument} must be a real numeric array (bool, int or float); "
                        f"got dtype {array.dtype}")
    return array


def check_is_dict(argument, value):
    """``value`` is a dict (of arrays keyed like the course's parameters)."""
    if not isinstance(value, dict):
        raise TypeError(f"{argument} must be a dict of arrays, e.g. {{'W1': (n1, n0), "
                        f"'b1': (n1, 1), ...}}; got {type(value).__name__}")


def check_array_dict(argument, value):
    """A non-empty dict of str -> numeric array, as a new dict of ndarrays (not copies)."""
    check_is_dict(argument, value)
    if not value:
        raise ValueError(f"{argument} must hold at least one array; got an empty dict")
    bad = [key for key in value if not isinstance(key, str)]
    if bad:
        raise TypeError(f"{argument} keys must be str; got {bad[:3]!r}")
    return {key: check_numeric_array(f"{argument}[{key!r}]", array)
            for key, array in value.items()}


def check_like(argument, value, shapes, of):
    """A dict of arrays with exactly the keys and shapes of ``shapes`` (key -> shape),
    as a new dict of ndarrays; ``of`` names what the shapes belong to, for the message."""
    arrays = check_array_dict(argument, value)
    missing, extra = set(shapes) - set(arrays), set(arrays) - set(shapes)
    if missing or extra:
        raise ValueError(f"{argument} must have exactly the keys {sorted(shapes)} (one per "
                         f"parameter of {of}); missing {sorted(missing)}, unexpected "
                         f"{sorted(extra)}")
    for key, shape in shapes.items():
        if arrays[key].shape != shape:
            raise ValueError(f"{argument}[{key!r}] must have shape {shape}, that of its "
                             f"parameter in {of}; got {arrays[key].shape}")
    return arrays


def check_examples(argument, value, m=None):
    """A course-layout data array: 2-D (rows, m) with m >= 1 columns, one per example,
    or, for labels, 1-D (m,) taken as (1, m). ``m``: the number of columns required."""
    array = check_numeric_array(argument, value)
    shape = array.shape
    if array.ndim == 1 and m is not None:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise ValueError(f"{argument} must be 2-D, one column per example; got "
                         f"{array.ndim}-D shape {array.shape}")
    if m is None and array.shape[1] == 0:
        raise ValueError(f"{argument} must hold at least one example (column); got shape "
                         f"{array.shape}")
    if m is not None and array.shape[1] != m:
        raise ValueError(f"{argument} must have m = {m} columns, one per example of X; got "
                         f"shape {shape}")
    return array


def check_keep_probs(keep_prob, n_hidden):
    """Inverted dropout's keep probabilities: one number in (0, 1] for every
    hidden layer, or a sequence of ``n_hidden`` of them; as a tuple of floats,
    or None when every one is 1 (no dropout)."""
    if isinstance(keep_prob, (numbers.Real, np.floating)) and not isinstance(
            keep_prob, (bool, np.bool_)):
        values = [keep_prob]  # checked even where there is no hidden layer to drop on
    elif isinstance(keep_prob, (list, tuple, np.ndarray)):
        values = list(np.asarray(keep_prob, dtype=object).ravel())
        if len(values) != n_hidden:
            raise ValueError(f"keep_prob must be one number, or one per hidden layer "
                             f"({n_hidden}); got {len(values)} values")
    else:
        raise TypeError(f"keep_prob must be a number in (0, 1] or a sequence of one per "
                        f"hidden layer; got {keep_prob!r}")
    out = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"keep_prob must hold numbers in (0, 1]; got {value!r}")
        if not 0 < float(value) <= 1:  # also refuses nan
            raise ValueError(f"keep_prob must be in (0, 1] (the probability of keeping a "
                             f"unit); got {float(value)}")
        out.append(float(value))
    if len(out) != n_hidden:
        out *= n_hidden  # one number for every hidden layer (none: [])
    return None if all(v == 1 for v in out) else tuple(out)


def check_rng(argument, rng, draw=True):
    """A ``numpy.random.Generator`` or ``RandomState`` (used as is), or an int
    seed or None (a new Generator; with ``draw=False`` only checked: None)."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_))):
        if not draw and rng is not None and rng < 0:
            raise ValueError(f"{argument} must be a non-negative int seed; got {rng}")
        return np.random.default_rng(rng) if draw else None
    raise TypeError(f"{argument} must be a numpy.random.Generator, a numpy.random.RandomState, "
                    f"an int seed or None; got {type(rng).__name__}")


def check_unit_interval(argument, value):
    """A number in [0, 1], as a float (scikit-learn's ``momentum``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a number in [0, 1]; got {value!r}")
    value = float(value)
    if not 0 <= value <= 1:  # also refuses nan
        raise ValueError(f"{argument} must be in [0, 1]; got {value}")
    return value


def check_bool(argument, value):
    """True or False (NumPy's bools too), as a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument} must be True or False; got {value!r}")
    return bool(value)


# -- which backend trains which update rule ---------------------------------------------------

#: The update rules of the course: what a backend with its own engine and
#: ``HAS_OPTIMIZERS`` trains unless it says otherwise.
COURSE_OPTIMIZER_NAMES = frozenset({"gd", "momentum", "rmsprop", "adam"})


def optimizer_names(module):
    """The names of the update rules (``Optimizer.name``) a backend module trains.

    A backend may declare them as ``OPTIMIZER_NAMES`` (a set of names). If it
    does not: without an ``engine`` of its own the driver runs the
    ``PythonEngine``, which calls any optimizer's ``_update`` (None: all); an
    engine with ``HAS_OPTIMIZERS`` trains the course's four; any other only
    ``"gd"``.
    """
    declared = getattr(module, "OPTIMIZER_NAMES", None)
    if declared is not None:
        return frozenset(declared)
    if not hasattr(module, "engine"):
        return None if getattr(module, "HAS_OPTIMIZERS", False) else frozenset({"gd"})
    return COURSE_OPTIMIZER_NAMES if getattr(module, "HAS_OPTIMIZERS", False) \
        else frozenset({"gd"})


def trains(module, name):
    """Whether a backend module trains the update rule called ``name``."""
    names = optimizer_names(module)
    return names is None or name in names


def check_trains(backend, module, optimizer):
    """Raise ``ValueError`` unless backend ``backend`` (its ``module``) trains
    ``optimizer``; the message names the available backends that do."""
    from . import backends
    if trains(module, optimizer.name):
        return
    able = [n for n, ok in backends.available().items()
            if ok is True and trains(backends.get(n), optimizer.name)]
    raise ValueError(f"backend {backend!r} cannot train the optimizer {optimizer.name!r} "
                     f"({type(optimizer).__name__}); backends that can: {able}")


def epoch_losses(module):
    """Whether a backend module's fits report epoch losses (``Schedule.epoch_loss``).

    A backend may declare it as ``EPOCH_LOSSES``. If it does not: without an
    ``engine`` of its own the driver's ``PythonEngine`` computes them; an engine
    does when it declares ``OPTIMIZER_NAMES`` (the contract that brought
    scikit-learn's update rules brought the epoch losses with them).
    """
    declared = getattr(module, "EPOCH_LOSSES", None)
    if declared is not None:
        return bool(declared)
    return not hasattr(module, "engine") or hasattr(module, "OPTIMIZER_NAMES")


def check_on_epoch(on_epoch):
    """``Network.fit``'s ``on_epoch``: None or a callable."""
    if on_epoch is not None and not callable(on_epoch):
        raise TypeError(f"on_epoch must be callable as on_epoch(i, loss), or None; "
                        f"got {on_epoch!r}")


def check_orders(orders, count, m):
    """What an ``orders`` callable returned for ``count`` epochs of m examples:
    an integer array of shape (count, m) whose every row is a permutation of
    0..m-1, as a new C-contiguous int64 array (compiled engines index with it)."""
    array = check_numeric_array("orders(count)", orders)
    if array.dtype.kind not in "iu":
        raise TypeError(f"orders(count) must return integer example indices; got dtype "
                        f"{array.dtype}")
    if array.shape != (count, m):
        raise ValueError(f"orders(count) must return shape (count, m) = ({count}, {m}): one "
                         f"order of the m examples per epoch; got shape {array.shape}")
    array = np.array(array, dtype=np.int64, order="C")
    for e, order in enumerate(array):
        if order.min() < 0 or order.max() >= m or \
                np.count_nonzero(np.bincount(order, minlength=m)) != m:
            raise ValueError(f"orders(count)[{e}] must be a permutation of 0..{m - 1} (each "
                             f"example once per epoch)")
    return array
