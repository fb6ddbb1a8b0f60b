"""The course's update rules, once, by name: the NumPy page of the optimizers.

An optimizer is a small immutable object holding its hyper-parameters, with two
functions in the shape of the course's code:

- ``init(params) -> state``: zeros shaped like the gradients -- the course's
  ``initialize_velocity`` and ``initialize_adam``. ``state`` is a dict of the
  course's dicts, each keyed like the gradients (``"dW1"``, ``"db1"``, ...):
  ``{}`` for GradientDescent, ``{"v": v}`` for Momentum, ``{"s": s}`` for
  RMSprop, ``{"v": v, "s": s}`` for Adam.
- ``update(params, grads, state, learning_rate, t=1) -> (params, state)``: one
  step -- the course's ``update_parameters_with_gd``, ``_with_momentum`` and
  ``_with_adam`` -- returning new dicts of new arrays; the inputs are never
  modified. ``t`` is the 1-based number of this update (Adam's bias correction).

For each parameter W with gradient dW (the same for b and db):

=================  =================================================================
GradientDescent    W = W - α dW
Momentum           v = β v + (1 - β) dW;    W = W - α v
RMSprop            s = β s + (1 - β) dW²;   W = W - α dW / (√s + ε)   (the lecture's:
                   no bias correction)
Adam               v = β₁ v + (1 - β₁) dW;  s = β₂ s + (1 - β₂) dW²;
                   v̂ = v / (1 - β₁ᵗ);  ŝ = s / (1 - β₂ᵗ);  W = W - α v̂ / (√ŝ + ε)
=================  =================================================================

Each formula has one home, the four functions below; the optimizers only say
which of them to chain. ``OPTIMIZERS`` maps each name to its class, and
:func:`get` resolves a name or validates an optimizer object.
"""

import dataclasses
from typing import ClassVar

import numpy as np

from . import _validation as _v
from . import _validation_optim as _vo

__all__ = ["Optimizer", "GradientDescent", "Momentum", "RMSprop", "Adam", "OPTIMIZERS", "get",
           "SklearnSGD", "SklearnAdam", "SKLEARN_OPTIMIZERS",
           "exponential_average", "bias_corrected", "rms_scaled", "step"]


# -- the formulas -----------------------------------------------------------------------------

def exponential_average(average, value, beta):
    """β · average + (1 − β) · value: the lecture's exponentially weighted average."""
    return beta * average + (1 - beta) * value


def bias_corrected(average, beta, t):
    """average / (1 − βᵗ): undoes the pull of an average started at zero, at update t."""
    return average / (1 - beta ** t)


def rms_scaled(direction, s, epsilon):
    """direction / (√s + ε): each entry divided by its running root mean square.

    ε sits outside the root, as the course writes it, and keeps a never-moving
    parameter (s = 0) from dividing by zero.
    """
    return direction / (np.sqrt(s) + epsilon)


def step(param, direction, learning_rate):
    """param − α · direction: a step downhill."""
    return param - learning_rate * direction


# -- the optimizers ---------------------------------------------------------------------------

def _hyper(default, check):
    """A hyper-parameter field, validated (and coerced) by ``check(name, value)``."""
    return dataclasses.field(default=default, metadata={"check": check})


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """The shared shell: validation, ``init``, ``update``'s checks, introspection.

    A subclass sets ``name`` and ``slots`` (the names of its state dicts), declares
    its hyper-parameters as fields, and writes ``_update`` with the formulas above.
    """

    name: ClassVar[str] = ""
    slots: ClassVar[tuple] = ()

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = field.metadata["check"](field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)  # frozen: set once, validated

    def get_params(self):
        """The hyper-parameters as a dict, ``{name: value}``, in declaration order."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @property
    def hyperparameters(self):
        """The hyper-parameters' values as a tuple, in declaration order."""
        return tuple(self.get_params().values())

    def init(self, params):
        """The optimizer's state for ``params``: zeros shaped like the gradients.

        Parameters
        ----------
        params : dict of str -> ndarray
            The course's ``{"W1": (n1, n0), "b1": (n1, 1), ...}``.

        Returns
        -------
        state : dict of str -> dict of str -> ndarray
            One dict per slot (``"v"``, ``"s"``), keyed like the gradients
            (``"dW1"``, ``"db1"``, ...), each array zeros of its parameter's shape
            (float; float32 stays float32).
        """
        params = _vo.check_array_dict("params", params)
        return {slot: {"d" + key: np.zeros(W.shape, dtype=np.result_type(W.dtype, 1.0))
                       for key, W in params.items()}
                for slot in self.slots}

    def update(self, params, grads, state, learning_rate, t=1):
        """One update of every parameter; the inputs are left untouched.

        Parameters
        ----------
        params : dict of str -> ndarray
            ``{"W1": (n1, n0), "b1": (n1, 1), ...}``.
        grads : dict of str -> ndarray
            ``{"dW1": (n1, n0), "db1": (n1, 1), ...}``: ``"d"`` + each key of
            ``params``, of its shape.
        state : dict
            As returned by :meth:`init` or by the previous ``update``.
        learning_rate : float > 0
            α.
        t : int >= 1
            The number of this update, counted from 1 (Adam's bias correction;
            the others accept and ignore it).

        Returns
        -------
        params : dict of str -> ndarray
            New arrays.
        state : dict
            New arrays, to pass to the next update.

        Raises
        ------
        TypeError, ValueError
            Naming the argument, before anything is computed, when a key or a
            shape does not match or a value is out of range. Finiteness is not
            checked: a NaN gradient gives NaN parameters, as in the course.
        """
        learning_rate = _v.check_positive_float("learning_rate", learning_rate)
        t = _v.check_positive_int("t", t)
        params = _vo.check_array_dict("params", params)
        shapes = {"d" + key: W.shape for key, W in params.items()}
        grads = _vo.check_like("grads", grads, shapes, "params")
        state = self._check_state(state, shapes)
        return self._update(params, grads, state, learning_rate, t)

    def _check_state(self, state, shapes):
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict {type(self).__name__}.init(params) "
                            f"returned (slots {list(self.slots)}); got {type(state).__name__}")
        if set(state) != set(self.slots):
            raise ValueError(f"state must have exactly the slots {list(self.slots)} of "
                             f"{type(self).__name__} (as init(params) returns); got "
                             f"{sorted(map(str, state))}")
        return {slot: _vo.check_like(f"state[{slot!r}]", state[slot], shapes, "params")
                for slot in self.slots}

    def _update(self, params, grads, state, learning_rate, t):
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class GradientDescent(Optimizer):
    """W = W − α dW: the lecture's gradient descent (``update_parameters_with_gd``)."""

    name: ClassVar[str] = "gd"
    slots: ClassVar[tuple] = ()

    def _update(self, params, grads, state, learning_rate, t):
        return {key: step(W, grads["d" + key], learning_rate) for key, W in params.items()}, {}


@dataclasses.dataclass(frozen=True)
class Momentum(Optimizer):
    """v = β v + (1 − β) dW; W = W − α v (``update_parameters_with_momentum``).

    Parameters
    ----------
    beta : float in [0, 1)
        Weight of the running average; 0 is gradient descent.
    """

    name: ClassVar[str] = "momentum"
    slots: ClassVar[tuple] = ("v",)
    beta: float = _hyper(0.9, _vo.check_decay)

    def _update(self, params, grads, state, learning_rate, t):
        v = {d: exponential_average(state["v"][d], dW, self.beta) for d, dW in grads.items()}
        return {key: step(W, v["d" + key], learning_rate) for key, W in params.items()}, {"v": v}


@dataclasses.dataclass(frozen=True)
class RMSprop(Optimizer):
    """s = β s + (1 − β) dW²; W = W − α dW / (√s + ε), the lecture's (no bias correction).

    Parameters
    ----------
    beta : float in [0, 1)
        Weight of the running average of the squared gradients.
    epsilon : float > 0
        Added to √s.
    """

    name: ClassVar[str] = "rmsprop"
    slots: ClassVar[tuple] = ("s",)
    beta: float = _hyper(0.999, _vo.check_decay)
    epsilon: float = _hyper(1e-8, _v.check_positive_float)

    def _update(self, params, grads, state, learning_rate, t):
        s = {d: exponential_average(state["s"][d], np.square(dW), self.beta)
             for d, dW in grads.items()}
        return {key: step(W, rms_scaled(grads["d" + key], s["d" + key], self.epsilon),
                          learning_rate)
                for key, W in params.items()}, {"s": s}


@dataclasses.dataclass(frozen=True)
class Adam(Optimizer):
    """Momentum and RMSprop, each bias-corrected (``update_parameters_with_adam``).

    v = β₁ v + (1 − β₁) dW;  s = β₂ s + (1 − β₂) dW²;  v̂ = v / (1 − β₁ᵗ);
    ŝ = s / (1 − β₂ᵗ);  W = W − α v̂ / (√ŝ + ε).

    Parameters
    ----------
    beta1, beta2 : float in [0, 1)
        Weights of the running averages of the gradients and of their squares.
    epsilon : float > 0
        Added to √ŝ (outside the root, as the course).
    """

    name: ClassVar[str] = "adam"
    slots: ClassVar[tuple] = ("v", "s")
    beta1: float = _hyper(0.9, _vo.check_decay)
    beta2: float = _hyper(0.999, _vo.check_decay)
    epsilon: float = _hyper(1e-8, _v.check_positive_float)

    def _update(self, params, grads, state, learning_rate, t):
        v = {d: exponential_average(state["v"][d], dW, self.beta1) for d, dW in grads.items()}
        s = {d: exponential_average(state["s"][d], np.square(dW), self.beta2)
             for d, dW in grads.items()}
        new = {}
        for key, W in params.items():
            v_hat = bias_corrected(v["d" + key], self.beta1, t)
            s_hat = bias_corrected(s["d" + key], self.beta2, t)
            new[key] = step(W, rms_scaled(v_hat, s_hat, self.epsilon), learning_rate)
        return new, {"v": v, "s": s}


OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Momentum, RMSprop, Adam)}


def get(spec):
    """An optimizer from a name or an optimizer object.

    Parameters
    ----------
    spec : str or Optimizer
        One of ``OPTIMIZERS`` (``"gd"``, ``"momentum"``, ``"rmsprop"``,
        ``"adam"``), built with its defaults, or an optimizer object, returned
        as is once its hyper-parameters pass validation again (an object
        unpickled or altered with ``object.__setattr__`` skipped it).

    Raises
    ------
    ValueError
        An unknown name, or an object with an invalid hyper-parameter.
    TypeError
        Anything else; the message lists the choices.
    """
    if isinstance(spec, Optimizer):
        type(spec)(**spec.get_params())
        return spec
    if isinstance(spec, str):
        return OPTIMIZERS[_v.check_choice("optimizer", spec, list(OPTIMIZERS))]()
    raise TypeError(f"optimizer must be a name, one of {list(OPTIMIZERS)}, or an optimizer "
                    f"object such as fastnn.optimizers.Adam(beta1=0.9); got {spec!r}")


# -- scikit-learn's update rules ----------------------------------------------------------------
#
# MLPClassifier's solvers "sgd" and "adam" (sklearn/neural_network/_stochastic_optimizers.py)
# are other formulas than the course's Momentum and Adam, so they are other classes: the
# velocity carries the learning rate, and Adam's bias correction is folded into the
# learning rate with ε added to √s, not √ŝ. fastnn.sklearn trains with them to take
# scikit-learn's steps; any Python backend (its PythonEngine calls ``_update``) runs them.

@dataclasses.dataclass(frozen=True)
class SklearnSGD(Optimizer):
    """scikit-learn's ``SGDOptimizer`` step (``MLPClassifier(solver="sgd")``).

    v = μ v − α dW;  W = W + v, or with Nesterov's momentum W = W + μ v − α dW
    (v already updated). The velocity holds −α dW, so it carries the learning
    rate of the steps it averaged (not the course's (1 − β) dW). μ = 0 is
    gradient descent.

    Parameters
    ----------
    momentum : float in [0, 1]
        μ.
    nesterov : bool
        Nesterov's momentum (scikit-learn's ``nesterovs_momentum``).
    """

    name: ClassVar[str] = "sklearn_sgd"
    slots: ClassVar[tuple] = ("v",)
    momentum: float = _hyper(0.9, _vo.check_unit_interval)
    nesterov: bool = _hyper(True, _vo.check_bool)

    def _update(self, params, grads, state, learning_rate, t):
        v = {d: self.momentum * state["v"][d] - learning_rate * dW for d, dW in grads.items()}
        new = {}
        for key, W in params.items():
            d = "d" + key
            update = (self.momentum * v[d] - learning_rate * grads[d]) if self.nesterov else v[d]
            new[key] = W + update
        return new, {"v": v}


@dataclasses.dataclass(frozen=True)
class SklearnAdam(Adam):
    """scikit-learn's ``AdamOptimizer`` step (``MLPClassifier(solver="adam")``).

    v = β₁ v + (1 − β₁) dW;  s = β₂ s + (1 − β₂) dW²;
    αₜ = α √(1 − β₂ᵗ) / (1 − β₁ᵗ);  W = W − αₜ v / (√s + ε).

    Kingma and Ba's "efficient version": the bias correction sits in the rate
    and ε is added to √s, where the course's Adam adds it to √ŝ; the two
    differ where √s is comparable to ε (early steps, tiny gradients).

    Parameters
    ----------
    beta1, beta2 : float in [0, 1)
        scikit-learn's ``beta_1`` and ``beta_2``.
    epsilon : float > 0
        Added to √s.
    """

    name: ClassVar[str] = "sklearn_adam"

    def _update(self, params, grads, state, learning_rate, t):
        v = {d: self.beta1 * state["v"][d] + (1 - self.beta1) * dW for d, dW in grads.items()}
        s = {d: self.beta2 * state["s"][d] + (1 - self.beta2) * dW ** 2
             for d, dW in grads.items()}
        rate = learning_rate * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        new = {key: W + -rate * v["d" + key] / (np.sqrt(s["d" + key]) + self.epsilon)
               for key, W in params.items()}
        return new, {"v": v, "s": s}


#: scikit-learn's update rules by name; not in :data:`OPTIMIZERS` (the course's), and
#: :func:`get` takes them as objects.
SKLEARN_OPTIMIZERS = {cls.name: cls for cls in (SklearnSGD, SklearnAdam)}
