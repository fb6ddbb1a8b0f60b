"""What :mod:`fastnn.sklearn`'s estimators do with their parameters: the
constraints scikit-learn checks (``PARAMETER_CONSTRAINTS``, MLPClassifier's
plus fastnn's), the checks it cannot express, each naming the parameter, the
backend ``"auto"`` resolves to, scikit-learn's initial weights, and
``batch_size`` as a number.

It imports scikit-learn only inside :func:`constraints`, so the rest is
testable without it.
"""

import numbers

import numpy as np

from . import _validation as _v
from . import _validation_optim as _vo
from . import backends as _backends
from . import optimizers as _optimizers

__all__ = ["ACTIVATIONS", "OUT_ACTIVATION", "SOLVERS", "constraints", "check_params",
           "random_state", "needs", "choose_backend", "optimizer", "initial_params",
           "network_batch_size"]

#: The hidden activations, scikit-learn's names and fastnn's -> fastnn's.
ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu",
               "sigmoid": "sigmoid", "leaky_relu": "leaky_relu"}

#: fastnn's output activation -> scikit-learn's name for it (``out_activation_``).
OUT_ACTIVATION = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity",
                  "exp": "exp"}

#: scikit-learn's solvers.
SOLVERS = ("lbfgs", "sgd", "adam")

#: Backends from the fastest; ``backend="auto"`` takes the first available one
#: that trains the solver.
_SPEED_ORDER = tuple(_backends.AUTO_ORDER) + tuple(
    n for n in reversed(_backends.names()) if n not in _backends.AUTO_ORDER)


def constraints(regressor):
    """``_parameter_constraints`` of an estimator: MLPClassifier's (or
    MLPRegressor's, ``regressor``), plus fastnn's parameters (and the
    classifier's ``class_weight``)."""
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    base = dict((MLPRegressor if regressor else MLPClassifier)._parameter_constraints)
    base.update({
        "activation": [StrOptions(set(ACTIVATIONS))],
        "batch_size": base["batch_size"] + [None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"),
                             Options(numbers.Real, {np.inf})],
        "random_state": ["random_state", np.random.Generator],
        "backend": [StrOptions(set(_backends.names()) | {_backends.AUTO})],
        "dtype": [StrOptions({"float64", "float32"}), None],
        "threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "relu_grad_at_zero": [Options(numbers.Integral, {0, 1})],
        "keep_prob": [Interval(numbers.Real, 0, 1, closed="right"), "array-like"],
        "callback": [callable, None],
    })
    if not regressor:
        base["class_weight"] = [dict, StrOptions({"balanced"}), None]
    return base


def _hidden_layer_sizes(hidden_layer_sizes):
    sizes = hidden_layer_sizes
    if isinstance(sizes, numbers.Integral) and not isinstance(sizes, (bool, np.bool_)):
        sizes = (sizes,)  # as MLPClassifier: an int is one hidden layer
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise TypeError(f"hidden_layer_sizes must be an int or a sequence of positive ints, "
                        f"one per hidden layer; got {hidden_layer_sizes!r}")
    return [_v.check_positive_int(f"hidden_layer_sizes[{i}]", n) for i, n in enumerate(sizes)]


def check_params(est):
    """What the constraints cannot say, checked: returns the hidden sizes,
    the fastnn activation and the dtype (None: X's, float32 or float64)."""
    hidden = _hidden_layer_sizes(est.hidden_layer_sizes)
    if isinstance(est.tol, bool):
        raise TypeError(f"tol must be a non-negative number; got {est.tol!r}")
    if not est.tol < np.inf:
        raise ValueError(f"tol must be a non-negative finite number; got {est.tol}")
    random_state(est.random_state)
    _vo.check_keep_probs(est.keep_prob, len(hidden))
    dtype = None if est.dtype is None else _v.check_dtype(est.dtype)
    _v.check_threads(est.threads)
    _v.check_relu_grad_at_zero(est.relu_grad_at_zero)
    return hidden, ACTIVATIONS[est.activation], dtype


def random_state(seed):
    """scikit-learn's ``check_random_state`` (None: NumPy's global RandomState,
    which ``np.random.seed`` seeds), plus a ``numpy.random.Generator`` (it
    seeds a new RandomState): the init, the shuffles and the validation split
    draw from it in MLPClassifier's order."""
    if isinstance(seed, np.random.RandomState):
        return seed
    if seed is None:  # NumPy's global RandomState, as check_random_state(None)
        return np.random.mtrand._rand
    if isinstance(seed, np.random.Generator):
        return np.random.RandomState(seed.integers(2 ** 32))
    return np.random.RandomState(_vo.check_random_state_seed("random_state", seed))


def optimizer(est):
    """The :mod:`fastnn.optimizers` object of the estimator's stochastic
    solver (None for lbfgs). sgd without momentum is gradient descent, which
    every backend trains: v = 0·v − α dW adds −α dW, bitwise the same step."""
    if est.solver == "sgd" and est.momentum == 0:
        return _optimizers.GradientDescent()
    if est.solver == "sgd":
        return _optimizers.SklearnSGD(momentum=est.momentum, nesterov=est.nesterovs_momentum)
    if est.solver == "adam":
        return _optimizers.SklearnAdam(beta1=est.beta_1, beta2=est.beta_2, epsilon=est.epsilon)
    return None


#: The capabilities a fit may need beyond its update rule -> what needs it.
_NEEDS = {"HAS_SAMPLE_WEIGHT": "sample_weight (or class_weight)",
          "HAS_POISSON": "loss='poisson'"}


def needs(weighted, loss):
    """The backend capabilities a fit needs: per-example weights, the Poisson loss."""
    return tuple(flag for flag, wanted in [("HAS_SAMPLE_WEIGHT", weighted),
                                           ("HAS_POISSON", loss == "poisson")] if wanted)


def _trains(module, rule, plain):
    """Whether a backend trains with ``rule`` (None: lbfgs, forward and backward
    only); ``plain``: no L2 or dropout either (every backend trains gradient descent)."""
    if rule is None or (plain and rule.name == "gd"):
        return True
    return bool(getattr(module, "HAS_OPTIMIZERS", False)) and _vo.trains(module, rule.name)


def _has(module, flags):
    return all(getattr(module, flag, False) for flag in flags)


def choose_backend(name, rule, plain, flags=()):
    """The backend that trains: ``name``, checked to train ``rule`` (an
    optimizer, or None for lbfgs) with L2 or dropout unless ``plain``, and to
    have the capabilities ``flags`` (:func:`needs`); or for ``"auto"`` the
    fastest available one that does -- for a stochastic solver, all in its
    engine: the rule and the epoch losses of ``loss_curve_`` (a backend whose
    engine does not report them yet trains under the driver's Python loop over
    its forward and backward, which ``"auto"`` leaves aside)."""
    status = _backends.available()
    able = [n for n in _SPEED_ORDER if status[n] is True
            and _trains(_backends.get(n), rule, plain)]
    having = [n for n in able if _has(_backends.get(n), flags)]
    wanted = " and ".join(_NEEDS[flag] for flag in flags)
    if name == _backends.AUTO:
        engines = [n for n in having if rule is None or _vo.epoch_losses(_backends.get(n))]
        if engines:
            return engines[0]
        if not flags or "numpy" in having:
            return "numpy"  # numpy trains everything, epoch losses included
        raise ValueError(f"no backend available here trains this solver with {wanted}; "
                         f"backends that train it: {able}")
    module = _backends.get(name)
    if not _trains(module, rule, plain):
        raise ValueError(f"backend {name!r} cannot train this solver: the update rule "
                         f"{rule.name!r}" + ("" if plain else " with alpha > 0 or dropout")
                         + f"; backends that can: {able} (or backend='auto')")
    if not _has(module, flags):
        raise ValueError(f"backend {name!r} cannot train with {wanted}; backends that can: "
                         f"{having} (or backend='auto')")
    return name


def initial_params(rng, layer_units, activation, dtype):
    """MLPClassifier's initial weights (Glorot's uniform, ``_init_coef``) drawn
    from the RandomState ``rng`` in its order, as course-style params."""
    factor = 2.0 if activation == "sigmoid" else 6.0
    params = {}
    for l, (fan_in, fan_out) in enumerate(zip(layer_units, layer_units[1:]), start=1):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False)
        intercept = rng.uniform(-bound, bound, fan_out).astype(dtype, copy=False)
        params[f"W{l}"] = np.ascontiguousarray(coef.T)
        params[f"b{l}"] = intercept.reshape(-1, 1)
    return params


def network_batch_size(batch_size, n_samples):
    """The examples per update for a (checked) ``batch_size``: ``"auto"`` is
    min(200, n_samples), None all of them, an int is clipped to n_samples
    (the fit warns once, as scikit-learn: ``_sklearn_train``)."""
    if batch_size is None:
        return n_samples
    if batch_size == "auto":
        return min(200, n_samples)
    return int(min(batch_size, n_samples))
