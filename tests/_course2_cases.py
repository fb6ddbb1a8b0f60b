"""The course's published values for its second part, "Improving Deep Neural Networks".

Test data only. Each case is a function that builds its inputs the way the
course's test-case generator does -- ``np.random.seed(s)`` followed by
``np.random.randn(...)`` calls -- drawing the same numbers in the same order from
``np.random.RandomState(s)`` (which leaves NumPy's global state alone), and
returns a dict with ``inputs``, ``expected`` (transcribed from the published
files) and ``source``. The transcribed numbers -- expected values and literal input
arrays, each case's with its source -- are data, in ``data/course2_published.json``
beside this module (:func:`published` reads a case); the draws are code, here.

Published arrays are the course's prints: 8 decimals, so each entry is within
5e-9 of the exact value; arrays printed in scientific notation carry 9
significant digits (noted where they occur). Every published value was recomputed
from its inputs with the course's formulas (fastnn's optimizers, schedules,
``random_mini_batches`` and ``Network(init=..., seed=RandomState(...))``; for the
regularization and dropout cases the course's functions written out in NumPy,
which the tests hold fastnn's ``cost``/``forward``/``backward`` to) and came out.

Sources, as ``repository: path @ commit`` on GitHub (the data file's ``sources``):
copies of the course's notebooks, ``testCases.py``/``test_cases.py`` and
``public_tests.py`` kept in learners' public repositories.
"""

import functools
import json
import pathlib

import numpy as np

#: The course's published values: per case its expected values, literal input arrays
#: and source; ``sources`` (where each comes from) and ``shared`` (arrays several cases
#: publish alike) beside them.
DATA = pathlib.Path(__file__).parent / "data" / "course2_published.json"


@functools.cache
def _data():
    with open(DATA, encoding="utf-8") as f:
        return json.load(f)


def _arrays(tree):
    """``tree`` with each numeric (nested) list as a new NumPy array: float64, as every
    published number is written with a decimal point; the boolean and integer inputs
    (masks, labels, shapes) keep their kind. A list of objects stays a list."""
    if isinstance(tree, dict):
        return {key: _arrays(value) for key, value in tree.items()}
    if isinstance(tree, list) and tree and isinstance(tree[0], dict):
        return [_arrays(value) for value in tree]
    return np.array(tree) if isinstance(tree, list) else tree


def published(name):
    """Case ``name`` of :data:`DATA`: its ``inputs`` and ``expected`` as arrays (fresh
    on each call), its ``source`` written out."""
    data = _data()
    where = {key: source["at"] for key, source in data["sources"].items()}
    case = {key: _arrays(value) if key in ("inputs", "expected") else value
            for key, value in data["cases"][name].items()}
    return {**case, "source": case["source"].format(**where)}


def shared(name):
    """An entry of :data:`DATA`'s ``shared``, as arrays."""
    return _arrays(_data()["shared"][name])


def _case(name, inputs, expected=None, **extra):
    """Case ``name`` as the functions below return it: ``inputs``, the published
    ``expected`` (passed through ``expected`` when given), ``extra``, ``source``."""
    case = published(name)
    return {"inputs": inputs,
            "expected": case["expected"] if expected is None else expected(case["expected"]),
            **extra, "source": case["source"]}


def _params_and_grads(rs, W2_shape):
    """The optimization test cases' draw: W1 (2, 3), b1 (2, 1), W2, b2 (3, 1), then
    dW1, db1, dW2, db2 of the same shapes, in that order."""
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": W2_shape, "b2": (3, 1)}
    params = {key: rs.randn(*shape) for key, shape in shapes.items()}
    grads = {"d" + key: rs.randn(*shape) for key, shape in shapes.items()}
    return params, grads


def _zeros_like_grads(params):
    return {"d" + key: np.zeros(W.shape) for key, W in params.items()}


def _optimizer_inputs(W2_shape, state=(), **hyper):
    """``np.random.seed(1)``, params and grads drawn as in :func:`_params_and_grads`,
    the optimizer's ``state`` ("v", "s") all zeros, then the hyperparameters."""
    params, grads = _params_and_grads(np.random.RandomState(1), W2_shape)
    return {"params": params, "grads": grads,
            **{key: _zeros_like_grads(params) for key in state}, **hyper}


# -- initialization (week 1, assignment 1) ----------------------------------------------------

def initialize_parameters_he():
    """``initialize_parameters_he([3, 1, 2])``: ``np.random.seed(3)`` inside the function,
    then ``randn(layers_dims[l], layers_dims[l-1]) * sqrt(2 / layers_dims[l-1])`` per layer,
    biases ``np.zeros``."""
    return _case("initialize_parameters_he", {"layers_dims": [3, 1, 2], "seed": 3})


def initialize_parameters_random():
    """``initialize_parameters_random([3, 2, 1])``: ``np.random.seed(3)``, then
    ``randn(layers_dims[l], layers_dims[l-1]) * 10`` per layer, biases zeros."""
    return _case("initialize_parameters_random",
                 {"layers_dims": [3, 2, 1], "seed": 3, "scale": 10})


# -- optimization (week 2, assignment 1) ------------------------------------------------------

def update_parameters_with_gd():
    """``update_parameters_with_gd_test_case()``: ``np.random.seed(1)``, params and grads
    drawn as in :func:`_params_and_grads` with W2 (3, 2); learning_rate 0.01."""
    return _case("update_parameters_with_gd", _optimizer_inputs((3, 2), learning_rate=0.01))


def update_parameters_with_gd_v1b():
    """The earlier ``update_parameters_with_gd_test_case()``: as above with W2 (3, 3)."""
    return _case("update_parameters_with_gd_v1b", _optimizer_inputs((3, 3), learning_rate=0.01))


def update_parameters_with_momentum():
    """``update_parameters_with_momentum_test_case()``: ``np.random.seed(1)``, params and
    grads with W2 (3, 2), v all zeros; beta 0.9, learning_rate 0.01."""
    return _case("update_parameters_with_momentum",
                 _optimizer_inputs((3, 2), ["v"], beta=0.9, learning_rate=0.01))


def _v1b_first_velocity():
    """v after one update from zero with beta = 0.9 on the earlier test case's grads,
    as the earlier notebook prints it for momentum and for Adam alike."""
    return shared("v1b_first_velocity")


def update_parameters_with_momentum_v1b():
    """The earlier test case: as above with W2 (3, 3)."""
    return _case("update_parameters_with_momentum_v1b",
                 _optimizer_inputs((3, 3), ["v"], beta=0.9, learning_rate=0.01),
                 lambda expected: {**expected, "v": _v1b_first_velocity()})


def update_parameters_with_adam():
    """``update_parameters_with_adam_test_case()``: ``np.random.seed(1)``, v and s zeros,
    params and grads with W2 (3, 2); t 2, learning_rate 0.02, beta1 0.8, beta2 0.888,
    epsilon 1e-2. The test publishes the first row of each array (``x[0]``) only."""
    return _case("update_parameters_with_adam",
                 _optimizer_inputs((3, 2), ["v", "s"], t=2, learning_rate=0.02, beta1=0.8,
                                   beta2=0.888, epsilon=1e-2))


def update_parameters_with_adam_earlier():
    """The earlier public test: the earlier test case (W2 (3, 3), v and s zeros) with
    t 2, learning_rate 0.02, beta1 0.8, beta2 0.888, epsilon 1e-2; first rows only.

    Another copy of this earlier public_tests.py in circulation expects
    W1[0] = [1.63949493, -0.62691477, -0.54326465]: that is
    W - α v̂ / √(ŝ + ε), ε inside the root -- not the course's formula (nor the
    notebook's), so not used here.
    """
    return _case("update_parameters_with_adam_earlier",
                 _optimizer_inputs((3, 3), ["v", "s"], t=2, learning_rate=0.02, beta1=0.8,
                                   beta2=0.888, epsilon=1e-2))


def update_parameters_with_adam_v1b():
    """The earlier notebook's cell: the earlier test case (W2 (3, 3)), the function's
    defaults learning_rate 0.01, beta1 0.9, beta2 0.999, epsilon 1e-8, and t = 2.

    The notebook's "Expected Output" table beside it has two typos
    (W2[2, 1] -1.09245036 and b2[0] -0.88529978); the printed output, used here,
    is what the formula gives. s["db1"], s["dW2"], s["db2"] were printed in scientific
    notation (``scientific``).
    """
    return _case("update_parameters_with_adam_v1b",
                 _optimizer_inputs((3, 3), ["v", "s"], t=2, learning_rate=0.01, beta1=0.9,
                                   beta2=0.999, epsilon=1e-8),
                 lambda expected: {"params": expected["params"], "v": _v1b_first_velocity(),
                                   "s": expected["s"]},
                 scientific={"s": ("db1", "dW2", "db2")})


def _calls(name):
    """A published function's calls, as ``[(args, expected), ...]``."""
    case = published(name)
    return {"calls": [(tuple(call["args"]), call["expected"]) for call in case["calls"]],
            "source": case["source"]}


def update_lr():
    """``update_lr(learning_rate0, epoch_num, decay_rate)``."""
    return _calls("update_lr")


def schedule_lr_decay():
    """``schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval)``.

    The test compares with ``np.isclose``; 0.085714285 is 0.3 / 3.5 cut to 9 digits.
    """
    return _calls("schedule_lr_decay")


def _mini_batch_inputs(X_shape, mini_batch_size):
    """``np.random.seed(1)``, X = randn(*X_shape), Y = randn(1, m) < 0.5 (bool), the
    function's default seed 0."""
    rs = np.random.RandomState(1)
    X = rs.randn(*X_shape)
    Y = rs.randn(1, X_shape[1]) < 0.5
    return {"X": X, "Y": Y, "mini_batch_size": mini_batch_size, "seed": 0}


def _batches(expected):
    return [(batch["X"], batch["Y"]) for batch in expected]


def random_mini_batches():
    """``random_mini_batches_test``: ``np.random.seed(1)``, X = randn(5, 7),
    Y = randn(1, 7) < 0.5 (bool), mini_batch_size 2, the function's default seed 0."""
    return _case("random_mini_batches", _mini_batch_inputs((5, 7), 2), _batches)


def random_mini_batches_earlier():
    """The earlier ``random_mini_batches_test``: ``np.random.seed(1)``, X = randn(7, 3),
    Y = randn(1, 3) < 0.5, mini_batch_size 2, seed 0."""
    return _case("random_mini_batches_earlier", _mini_batch_inputs((7, 3), 2), _batches)


def random_mini_batches_v1b():
    """``random_mini_batches_test_case()``: ``np.random.seed(1)``, X = randn(12288, 148),
    Y = randn(1, 148) < 0.5, mini_batch_size 64, seed 0. The notebook prints the
    batches' shapes and ``mini_batches[0][0][0][0:3]``."""
    def shapes(expected):
        return {**{key: [tuple(shape) for shape in expected[key].tolist()]
                   for key in ("X_shapes", "Y_shapes")},
                "first_X_row0_first3": expected["first_X_row0_first3"]}
    return _case("random_mini_batches_v1b", _mini_batch_inputs((12288, 148), 64), shapes)


OPTIMIZER_CASES = {
    "gd": [update_parameters_with_gd, update_parameters_with_gd_v1b],
    "momentum": [update_parameters_with_momentum, update_parameters_with_momentum_v1b],
    "adam": [update_parameters_with_adam, update_parameters_with_adam_earlier,
             update_parameters_with_adam_v1b],
}
MINI_BATCH_CASES = [random_mini_batches, random_mini_batches_earlier]
