"""Input checks shared by ``Network`` and the public helpers.

Everything a backend receives passes through here first: compiled kernels
assume C-contiguous arrays of the network's dtype with consistent shapes and
finite values, and never check again. Each error names the argument and what
was expected.
"""

import numbers
import re

import numpy as np

from . import activations as _act
from . import losses as _losses

DTYPES = {"float64": np.float64, "float32": np.float32}


def check_choice(argument, value, choices):
    """``value`` if it is one of ``choices`` (strings), else a clear error."""
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, one of {list(choices)}; got {value!r}")
    if value not in choices:
        raise ValueError(f"unknown {argument} {value!r}; expected one of {list(choices)}")
    return value


def check_activation(argument, value):
    return check_choice(argument, value, _act.names())


def check_dtype(dtype):
    """The NumPy scalar type for ``dtype`` ("float64", "float32" or an equivalent)."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if dtype is None or resolved is None or resolved.name not in DTYPES or isinstance(dtype, bool):
        raise ValueError(f"dtype must be one of {list(DTYPES)}; got {dtype!r}")
    return DTYPES[resolved.name]


def check_positive_int(argument, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument} must be a positive int; got {value!r}")
    if value < 1:
        raise ValueError(f"{argument} must be a positive int; got {value}")
    return int(value)


def check_positive_float(argument, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{argument} must be a positive finite number; got {value!r}")
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{argument} must be a positive finite number; got {value}")
    return value


def check_threads(threads):
    if threads is None:
        return None
    return check_positive_int("threads", threads)


def check_layer_dims(layer_dims):
    if isinstance(layer_dims, (str, bytes)) or not hasattr(layer_dims, "__len__"):
        raise TypeError(f"layer_dims must be a sequence of positive ints [n_x, n1, ..., n_L]; "
                        f"got {layer_dims!r}")
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ValueError(f"layer_dims must have at least 2 entries [n_x, ..., n_L]; got {dims}")
    return [check_positive_int(f"layer_dims[{i}]", n) for i, n in enumerate(dims)]


def as_float_array(argument, value, dtype):
    """``value`` as a C-contiguous array of ``dtype``, rejecting non-numeric data."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as exc:
            raise TypeError(f"{argument} must be a numeric array; got {type(value).__name__} "
                            f"({exc})") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{argument} must be a real numeric array (bool, int or float); "
                        f"got dtype {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def check_finite(argument, array):
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{argument} must be finite; it holds {array[tuple(bad)]} at index "
                         f"{tuple(int(i) for i in bad)}")


def check_X(X, n_x, dtype):
    """X as a validated (n_x, m) array of ``dtype``."""
    X = as_float_array("X", X, dtype)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_x, m) = ({n_x}, m), one column per example; "
                         f"got {X.ndim}-D shape {X.shape}")
    if X.shape[0] != n_x:
        raise ValueError(f"X must have shape (n_x, m) = ({n_x}, m), one column per example; "
                         f"got {X.shape} (pass X.T if your examples are rows)")
    if X.shape[1] == 0:
        raise ValueError(f"X must hold at least one example (m >= 1); got shape {X.shape}")
    check_finite("X", X)
    return X


def check_Y(Y, n_L, m, loss, dtype):
    """Y as a validated (n_L, m) array of ``dtype``; (m,) is accepted when n_L == 1."""
    Y = as_float_array("Y", Y, dtype)
    if Y.ndim == 1 and n_L == 1:
        Y = Y.reshape(1, -1)
    if Y.ndim != 2 or Y.shape != (n_L, m):
        expected = f"({n_L}, {m})" + (f" or ({m},)" if n_L == 1 else "")
        raise ValueError(f"Y must have shape {expected} to match X with m = {m} examples; "
                         f"got {Y.shape}")
    check_finite("Y", Y)
    if loss == "cross_entropy" and not np.all((Y == 0) | (Y == 1)):
        bad = np.unique(Y[(Y != 0) & (Y != 1)])[:5]
        raise ValueError(f"Y must hold labels in {{0, 1}} for the cross_entropy loss; "
                         f"found {bad.tolist()}")
    return Y


def check_params(params, dtype):
    """A course-style dict {"W1", "b1", ..., "WL", "bL"} -> (layer_dims, Ws, bs), copied."""
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict {{'W1': (n1, n0), 'b1': (n1, 1), ...}}; "
                        f"got {type(params).__name__}")
    indices = [int(m.group(1)) for key in params
               if isinstance(key, str) and (m := re.fullmatch(r"[Wb]([1-9][0-9]*)", key))]
    L = max(indices, default=0)
    if L == 0:
        raise ValueError("params must hold at least W1 and b1; got keys "
                         f"{sorted(map(str, params))}")
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    missing, extra = expected - set(params), set(params) - expected
    if missing or extra:
        raise ValueError(f"params must have exactly the keys W1, b1, ..., W{L}, b{L}; "
                         f"missing {sorted(missing)}, unexpected {sorted(map(str, extra))}")
    Ws, bs = [], []
    layer_dims = None
    for l in range(1, L + 1):
        W = as_float_array(f"params['W{l}']", params[f"W{l}"], dtype)
        b = as_float_array(f"params['b{l}']", params[f"b{l}"], dtype)
        if W.ndim != 2 or W.size == 0:
            raise ValueError(f"params['W{l}'] must be a non-empty 2-D array (n{l}, n{l - 1}); "
                             f"got shape {W.shape}")
        if layer_dims is None:
            layer_dims = [W.shape[1]]
        if W.shape[1] != layer_dims[-1]:
            raise ValueError(f"params['W{l}'] must have shape (n{l}, {layer_dims[-1]}) to follow "
                             f"W{l - 1}; got {W.shape}")
        layer_dims.append(W.shape[0])
        if b.shape != (W.shape[0], 1):
            raise ValueError(f"params['b{l}'] must have shape ({W.shape[0]}, 1); got {b.shape}")
        check_finite(f"params['W{l}']", W)
        check_finite(f"params['b{l}']", b)
        Ws.append(W.copy())
        bs.append(b.copy())
    return layer_dims, Ws, bs


def check_activations(activations, L):
    if isinstance(activations, str) or not hasattr(activations, "__len__"):
        raise TypeError(f"activations must be a sequence of {L} names, one per layer, from "
                        f"{_act.names()}; got {activations!r}")
    acts = list(activations)
    if len(acts) != L:
        raise ValueError(f"activations must have one name per layer ({L}); got {len(acts)}: "
                         f"{acts}")
    return tuple(check_activation(f"activations[{i}]", a) for i, a in enumerate(acts))


def check_loss(loss, output_activation):
    if loss is None:
        return _losses.default_for(output_activation)
    check_choice("loss", loss, list(_losses.LOSSES))
    required = _losses.LOSSES[loss]
    if required is not None and output_activation != required:
        raise ValueError(f"loss {loss!r} needs a {required!r} output activation; "
                         f"got {output_activation!r}")
    return loss
