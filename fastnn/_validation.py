"""Input checks shared by ``Network`` and the public helpers.

Everything a backend receives passes through here first: compiled kernels
assume C-contiguous arrays of the network's dtype with consistent shapes and
finite values, and never check again. Each error names the argument and what
was expected.
"""

import collections
import numbers
import os
import re

import numpy as np

from . import activations as _act
from . import _validation_optim as _vo
from . import losses as _losses

DTYPES = {"float64": np.float64, "float32": np.float32}


def check_choice(argument, value, choices):
    """``value`` if it is one of ``choices`` (strings), else a clear error."""
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, one of {list(choices)}; got {value!r}")
    if value not in choices:
        raise ValueError(f"unknown {argument} {value!r}; expected one of {list(choices)}")
    return value


def check_activation(argument, value, output=False):
    """An activation name; ``output``: the output layer's, which may also be
    an output-only one (softmax, exp)."""
    check_choice(argument, value, _act.names(output=True))
    if not output and value in _act.OUTPUT_ONLY:
        raise ValueError(f"{argument} {value!r} is an output activation (the output layer's, "
                         f"paired with the {_losses.PAIRS_WITH[value]} loss); hidden layers "
                         f"take one of {_act.names()}")
    return value


def check_relu_grad_at_zero(value):
    """1 or 0 (the ReLU/leaky ReLU derivative's value at 0), as an int."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"relu_grad_at_zero must be the int 1 or 0; got {value!r}")
    if int(value) not in _act.RELU_GRAD_AT_ZERO:
        raise ValueError(f"relu_grad_at_zero must be 1 (the lecture's g'(0) = 1) or 0 (the "
                         f"course's code, PyTorch, JAX, scikit-learn); got {value}")
    return int(value)


def check_seed(argument, seed):
    """A ``numpy.random.Generator`` from an int, a Generator (used as is) or None."""
    if not (seed is None or isinstance(seed, (numbers.Integral, np.random.Generator))) \
            or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{argument} must be an int, a numpy.random.Generator or None; "
                        f"got {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"{argument} must be a non-negative int; got {seed}")
    return np.random.default_rng(seed)


def check_batch_size(batch_size, m):
    """None (full batch) or an int in 1..m."""
    if batch_size is None:
        return None
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be None (full batch) or a positive int; "
                        f"got {batch_size!r}")
    if not 1 <= batch_size <= m:
        raise ValueError(f"batch_size must be between 1 and m = {m} (the number of examples); "
                         f"got {batch_size}")
    return int(batch_size)


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


def check_schedule(learning_rate, num_iterations, cost_every, batch_size, gram, m, backend,
                   course2=None):
    """``fit``'s training schedule, checked, as a :class:`fastnn.backends._base.Schedule`.

    ``backend`` is the backend module's name; ``course2`` the dict of the
    second course's options (optimizer, lambd, keep_prob, decay_rate,
    time_interval, and n_hidden, the network's hidden layers).
    """
    from . import optimizers
    from . import _validation_optim as _vo
    from .backends import _base, get, having

    module = get(backend)
    has_gram = getattr(module, "HAS_GRAM", False)

    learning_rate = check_positive_float("learning_rate", learning_rate)
    num_iterations = check_positive_int("num_iterations", num_iterations)
    if cost_every is not None:  # None: no recorded cost
        cost_every = check_positive_int("cost_every", cost_every)
    batch_size = check_batch_size(batch_size, m)
    if gram is not None and not isinstance(gram, (bool, np.bool_)):
        raise TypeError(f"gram must be True, False or None; got {gram!r}")
    if gram and not has_gram:
        raise ValueError(f"gram=True: backend {backend!r} has no Gram rewrite; "
                         f"backends that have one: {having('HAS_GRAM')}")
    if gram and batch_size is not None:
        raise ValueError("gram=True trains layer 1 through X^T X of the full batch; it "
                         "cannot be combined with batch_size (use gram=None or False)")
    gram = None if gram is None else bool(gram)
    extra = {}
    if course2 is not None:
        extra = {
            "optimizer": optimizers.get(course2["optimizer"]),
            "lambd": _vo.check_non_negative_float("lambd", course2["lambd"]),
            "keep_probs": _vo.check_keep_probs(course2["keep_prob"], course2["n_hidden"]),
            "decay_rate": _vo.check_non_negative_float("decay_rate", course2["decay_rate"]),
            "time_interval": check_positive_int("time_interval", course2["time_interval"]),
        }
    schedule = _base.Schedule(learning_rate, num_iterations, cost_every, batch_size, gram,
                              **extra)
    if not schedule.plain and not getattr(module, "HAS_OPTIMIZERS", False):
        raise ValueError(f"backend {backend!r} trains with plain gradient descent only; an "
                         f"optimizer, lambd, keep_prob or decay_rate needs one of "
                         f"{having('HAS_OPTIMIZERS')}")
    if schedule.optimizer is not None and not schedule.plain:
        _vo.check_trains(backend, module, schedule.optimizer)
    return schedule


def check_layer_dims(layer_dims):
    if isinstance(layer_dims, (str, bytes)) or not hasattr(layer_dims, "__len__"):
        raise TypeError(f"layer_dims must be a sequence of positive ints [n_x, n1, ..., n_L]; "
                        f"got {layer_dims!r}")
    dims = list(layer_dims)
    if len(dims) < 2:
        raise ValueError(f"layer_dims must have at least 2 entries [n_x, ..., n_L]; got {dims}")
    dims = [check_positive_int(f"layer_dims[{i}]", n) for i, n in enumerate(dims)]
    return dims


def check_network_size(layer_dims, dtype):
    """Refuse layer sizes whose parameters alone would not fit in RAM."""
    count = sum(n * (n_prev + 1) for n_prev, n in zip(layer_dims, layer_dims[1:]))
    check_memory(f"layer_dims {layer_dims}", count * np.dtype(dtype).itemsize,
                 f"{count:,} {np.dtype(dtype).name} parameters (W and b of every layer)")


def check_workspace(layer_dims, m, dtype, per_unit):
    """Refuse an X whose pass through the network would not fit in RAM.

    ``per_unit`` arrays of shape (n_l, m) per layer: the forward pass keeps Z
    and A of every layer (2), training also dZ (3).
    """
    count = per_unit * sum(layer_dims[1:]) * m
    check_memory("X", count * np.dtype(dtype).itemsize,
                 f"m = {m:,} examples through layer_dims {layer_dims} ({per_unit} arrays of "
                 f"shape (n_l, m) per layer)")


def physical_memory():
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _human(nbytes):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.1f} {unit}" if unit != "bytes" else f"{nbytes} bytes"
        nbytes /= 1024


def check_memory(argument, nbytes, what):
    """Refuse, before NumPy tries, an allocation larger than the machine's RAM.

    Such a request can only end in a MemoryError naming no argument, or in
    swapping for hours; the error here says which argument asked and how much.
    """
    total = physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{argument}: {what} would need {_human(nbytes)} ({nbytes:,} bytes); "
                         f"this machine has {_human(total)} of RAM")


def as_float_array(argument, value, dtype, rows=False):
    """``value`` as a C-contiguous array of ``dtype``, rejecting non-numeric data.

    ``rows=True`` also takes a 2-D F-contiguous array of ``dtype`` as it is
    (the transpose of a C-contiguous one: each column a row in memory), with
    no copy.

    A masked array is accepted only when nothing is masked (its data is then
    the whole truth); fastnn has no notion of a missing value, so a masked
    entry is an error rather than silently trained on.
    """
    if isinstance(value, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(value)
        if mask.any():
            index = tuple(int(i) for i in np.argwhere(mask)[0])
            raise ValueError(f"{argument} is a masked array with {int(mask.sum())} masked "
                             f"entries (the first at index {index}); fastnn has no notion of a "
                             f"missing value: drop or impute them (e.g. .filled(value))")
        value = np.ma.getdata(value)
    array = _vo.check_numeric_array(argument, value)
    if rows and array.ndim == 2 and array.flags.f_contiguous and array.dtype == dtype:
        return array
    if not (array.flags.c_contiguous and array.dtype == dtype):
        # A broadcast view holds no memory; its contiguous copy may not fit.
        check_memory(argument, array.size * np.dtype(dtype).itemsize,
                     f"a contiguous {np.dtype(dtype).name} copy of shape {array.shape}")
    return np.ascontiguousarray(array, dtype=dtype)


def check_finite(argument, array):
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{argument} must be finite; it holds {array[tuple(bad)]} at index "
                         f"{tuple(int(i) for i in bad)}")


def check_X(X, n_x, dtype, rows=False):
    """X as a validated (n_x, m) array of ``dtype``: C-contiguous, or with
    ``rows=True`` also F-contiguous as given (see :func:`as_float_array`)."""
    X = as_float_array("X", X, dtype, rows)
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


def _one_hot(Y, K, m, dtype):
    """Integer class labels of shape (m,) or (1, m) as the (K, m) one-hot matrix."""
    if Y.shape not in ((m,), (1, m)):
        raise ValueError(f"Y must have shape ({K}, {m}) (one-hot) or hold {m} integer class "
                         f"labels in 0..{K - 1} of shape ({m},) or (1, {m}); got {Y.shape}")
    labels = Y.reshape(-1)
    bad = labels[(labels != np.round(labels)) | (labels < 0) | (labels > K - 1)]
    if bad.size:
        raise ValueError(f"Y given as class labels must hold integers in 0..{K - 1} (the "
                         f"{K} output units); found {np.unique(bad)[:5].tolist()}")
    onehot = np.zeros((K, m), dtype=dtype)
    onehot[labels.astype(np.intp), np.arange(m)] = 1
    return onehot


def check_Y(Y, n_L, m, loss, dtype, output_activation=None):
    """Y as a validated (n_L, m) array of ``dtype``; (m,) is accepted when n_L == 1.

    For a softmax output, Y is one-hot (n_L, m) -- each column all zeros but
    one 1 -- or integer class labels of shape (m,) or (1, m), made one-hot here.
    """
    Y = as_float_array("Y", Y, dtype)
    if output_activation == "softmax":
        check_finite("Y", Y)
        if Y.shape != (n_L, m):
            Y = _one_hot(Y, n_L, m, dtype)
        if not (np.all((Y == 0) | (Y == 1)) and np.all(Y.sum(axis=0) == 1)):
            bad = np.flatnonzero(~np.all((Y == 0) | (Y == 1), axis=0) | (Y.sum(axis=0) != 1))
            raise ValueError(f"Y must be one-hot for a softmax output: each column all zeros "
                             f"but a single 1; columns {bad[:5].tolist()} are not")
        return Y
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
    if loss == "poisson" and np.any(Y < 0):
        raise ValueError(f"Y must be >= 0 for the poisson loss (counts or rates); found "
                         f"{np.unique(Y[Y < 0])[:5].tolist()}")
    return Y


def check_params(params, dtype):
    """A course-style dict {"W1", "b1", ..., "WL", "bL"} -> (layer_dims, Ws, bs), copied."""
    _vo.check_is_dict("params", params)
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
    Ws = [as_float_array(f"params['W{l}']", params[f"W{l}"], dtype) for l in range(1, L + 1)]
    bs = [as_float_array(f"params['b{l}']", params[f"b{l}"], dtype) for l in range(1, L + 1)]
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        if W.ndim != 2 or W.size == 0:
            raise ValueError(f"params['W{l}'] must be a non-empty 2-D array (n{l}, n{l - 1}); "
                             f"got shape {W.shape}")
        if b.ndim != 2 or b.shape[1] != 1:
            raise ValueError(f"params['b{l}'] must have shape ({W.shape[0]}, 1), a column; "
                             f"got {b.shape}")
    for l in range(1, L + 1):
        _check_units(l, Ws, bs)
    for l, (W, b) in enumerate(zip(Ws, bs), start=1):
        check_finite(f"params['W{l}']", W)
        check_finite(f"params['b{l}']", b)
    layer_dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    return layer_dims, [W.copy() for W in Ws], [b.copy() for b in bs]


def _check_units(l, Ws, bs):
    """Check n_l, which params state up to three times: the rows of W_l and of
    b_l and the columns of W_{l+1}. The one array outvoted by the others is the
    wrong one (W1 transposed is blamed on W1, not on b1); in a tie between W_L
    and b_L, b_L (the column that follows W_L) is blamed."""
    W = Ws[l - 1]
    witnesses = {f"W{l}": W.shape[0], f"b{l}": bs[l - 1].shape[0]}
    if l < len(Ws):
        witnesses[f"W{l + 1}"] = Ws[l].shape[1]
    counts = collections.Counter(witnesses.values())
    if len(counts) == 1:
        return
    n, votes = counts.most_common(1)[0]
    if votes == 1 and len(witnesses) == 3:
        raise ValueError("params disagree on n{}: {}".format(l, ", ".join(
            f"params['{k}'] says {v}" for k, v in witnesses.items())))
    if votes == 1:
        n = W.shape[0]
    if W.shape[0] != n:
        hint = " (transposed?)" if W.shape[1] == n else ""
        others = " and ".join(f"params[{k!r}]" for k in list(witnesses)[1:])
        raise ValueError(f"params['W{l}'] must have shape ({n}, n{l - 1}) to match {others}; "
                         f"got {W.shape}{hint}")
    if witnesses[f"b{l}"] != n:
        raise ValueError(f"params['b{l}'] must have shape ({n}, 1); got {bs[l - 1].shape}")
    raise ValueError(f"params['W{l + 1}'] must have shape (n{l + 1}, {n}) to follow W{l}; "
                     f"got {Ws[l].shape}")


def check_activations(activations, L):
    if isinstance(activations, str) or not hasattr(activations, "__len__"):
        raise TypeError(f"activations must be a sequence of {L} names, one per layer, from "
                        f"{_act.names()}; got {activations!r}")
    acts = list(activations)
    if len(acts) != L:
        raise ValueError(f"activations must have one name per layer ({L}); got {len(acts)}: "
                         f"{acts}")
    return tuple(check_activation(f"activations[{i}]", a, output=i == L - 1)
                 for i, a in enumerate(acts))


def check_output_units(activations, n_L):
    if activations[-1] == "softmax" and n_L < 2:
        raise ValueError(f"a softmax output needs n_L >= 2 units, one per class; got n_L = {n_L} "
                         f"(for two classes with one unit, use a sigmoid output)")


def check_loss(loss, output_activation):
    if loss is None:
        return _losses.default_for(output_activation)
    check_choice("loss", loss, list(_losses.LOSSES))
    required = _losses.LOSSES[loss]
    if required is not None and output_activation not in required:
        raise ValueError(f"loss {loss!r} needs one of the output activations {list(required)}; "
                         f"got {output_activation!r}")
    if output_activation in _act.OUTPUT_ONLY and loss != _losses.PAIRS_WITH[output_activation]:
        article = "an" if output_activation[0] in "aeiou" else "a"
        raise ValueError(f"{article} {output_activation!r} output needs the loss "
                         f"{_losses.PAIRS_WITH[output_activation]!r}; got {loss!r}")
    return loss


def check_init_seed(argument, seed):
    """An initialization seed: a ``numpy.random.RandomState`` (used as is, as the
    course's ``np.random.seed(...)`` then ``np.random.randn(...)``), else as
    :func:`check_seed` (an int, a Generator or None, as a Generator)."""
    if isinstance(seed, np.random.RandomState):
        return seed
    if not (seed is None or isinstance(seed, (numbers.Integral, np.random.Generator))) \
            or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"{argument} must be an int, a numpy.random.Generator, a "
                        f"numpy.random.RandomState or None; got {seed!r}")
    return check_seed(argument, seed)
