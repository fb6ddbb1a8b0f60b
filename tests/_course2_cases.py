"""The course's published values for its second part, "Improving Deep Neural Networks".

Test data only. Each case is a function that builds its inputs the way the
course's test-case generator does -- ``np.random.seed(s)`` followed by
``np.random.randn(...)`` calls -- drawing the same numbers in the same order from
``np.random.RandomState(s)`` (which leaves NumPy's global state alone), and
returns a dict with ``inputs``, ``expected`` (transcribed from the published
files) and ``source``.

Published arrays are the course's prints: 8 decimals, so each entry is within
5e-9 of the exact value; arrays printed in scientific notation carry 9
significant digits (noted where they occur). Every value below was recomputed
from its inputs with the course's formulas (fastnn's optimizers, schedules,
``random_mini_batches`` and ``Network(init=..., seed=RandomState(...))``; for the
regularization and dropout cases, which fastnn has no API for yet, the
course's functions written out in NumPy) and came out.

Sources, as ``repository: path @ commit`` on GitHub: copies of the course's
notebooks, ``testCases.py``/``test_cases.py`` and ``public_tests.py`` kept in
learners' public repositories.
"""

import numpy as np

# The current version of the assignments (public_tests.py + test_cases.py):
INIT_TESTS = ("shivamaggarwal513/coursera-deep-learning-specialization: "
              "c2-improving-deep-neural-networks/week-1/a1-initialization/public_tests.py "
              "@ 3b8731ebb2fabcbb3a80991c339ec2aef1d9ec8c")
OPT_TESTS = ("shivamaggarwal513/coursera-deep-learning-specialization: "
             "c2-improving-deep-neural-networks/week-2/a1-optimization-algorithms/public_tests.py "
             "(inputs: test_cases.py in the same folder) "
             "@ ded9d4c0a0f755e277c9c805374f8b339f6743dd")
# An earlier version of the same public_tests.py (W2 of shape (3, 3); its inputs come from
# the earlier generator, OPT_V1B_CASES below):
OPT_TESTS_EARLIER = ("greyhatguy007/deep-learning-specialization: C2-Improving Deep Neural "
                     "Networks: Hyperparameter Tuning, Regularization and Optimization/week2/"
                     "pogramming assignments/W2A1/public_tests.py "
                     "@ 4f3647d753aee4a80fddb6a58495e0c7b9073072")
# The earlier notebook, Optimization_methods_v1b (its printed cell outputs), and its generator:
OPT_V1B = ("amanchadha/coursera-deep-learning-specialization: C2 - Improving Deep Neural "
           "Networks Hyperparameter tuning, Regularization and Optimization/Week 2/"
           "Optimization_methods_v1b.ipynb @ 3f055e4a8db0d76efbfb6f5a0e7e854535a3e2ec")
OPT_V1B_CASES = ("amanchadha/coursera-deep-learning-specialization: C2 - Improving Deep Neural "
                 "Networks Hyperparameter tuning, Regularization and Optimization/Week 2/"
                 "testCases.py @ 835e099dfeb8b63caeabe25311ae400b0590a4a1")


def _params_and_grads(rs, W2_shape):
    """The optimization test cases' draw: W1 (2, 3), b1 (2, 1), W2, b2 (3, 1), then
    dW1, db1, dW2, db2 of the same shapes, in that order."""
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": W2_shape, "b2": (3, 1)}
    params = {key: rs.randn(*shape) for key, shape in shapes.items()}
    grads = {"d" + key: rs.randn(*shape) for key, shape in shapes.items()}
    return params, grads


def _zeros_like_grads(params):
    return {"d" + key: np.zeros(W.shape) for key, W in params.items()}


# -- initialization (week 1, assignment 1) ----------------------------------------------------

def initialize_parameters_he():
    """``initialize_parameters_he([3, 1, 2])``: ``np.random.seed(3)`` inside the function,
    then ``randn(layers_dims[l], layers_dims[l-1]) * sqrt(2 / layers_dims[l-1])`` per layer,
    biases ``np.zeros``."""
    return {
        "inputs": {"layers_dims": [3, 1, 2], "seed": 3},
        "expected": {"W1": np.array([[1.46040903, 0.3564088, 0.07878985]]),
                     "b1": np.array([[0.]]),
                     "W2": np.array([[-2.63537665], [-0.39228616]]),
                     "b2": np.array([[0.], [0.]])},
        "source": INIT_TESTS + " (initialize_parameters_he_test)",
    }


def initialize_parameters_random():
    """``initialize_parameters_random([3, 2, 1])``: ``np.random.seed(3)``, then
    ``randn(layers_dims[l], layers_dims[l-1]) * 10`` per layer, biases zeros."""
    return {
        "inputs": {"layers_dims": [3, 2, 1], "seed": 3, "scale": 10},
        "expected": {"W1": np.array([[17.88628473, 4.36509851, 0.96497468],
                                     [-18.63492703, -2.77388203, -3.54758979]]),
                     "b1": np.array([[0.], [0.]]),
                     "W2": np.array([[-0.82741481, -6.27000677]]),
                     "b2": np.array([[0.]])},
        "source": INIT_TESTS + " (initialize_parameters_random_test)",
    }


# -- optimization (week 2, assignment 1) ------------------------------------------------------

def update_parameters_with_gd():
    """``update_parameters_with_gd_test_case()``: ``np.random.seed(1)``, params and grads
    drawn as in :func:`_params_and_grads` with W2 (3, 2); learning_rate 0.01."""
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 2))
    return {
        "inputs": {"params": params, "grads": grads, "learning_rate": 0.01},
        "expected": {"params": {
            "W1": np.array([[1.63312395, -0.61217855, -0.5339999],
                            [-1.06196243, 0.85396039, -2.3105546]]),
            "b1": np.array([[1.73978682], [-0.77021546]]),
            "W2": np.array([[0.32587637, -0.24814147],
                            [1.47146563, -2.05746183],
                            [-0.32772076, -0.37713775]]),
            "b2": np.array([[1.13773698], [-1.09301954], [-0.16397615]])}},
        "source": OPT_TESTS + " (update_parameters_with_gd_test)",
    }


def update_parameters_with_gd_v1b():
    """The earlier ``update_parameters_with_gd_test_case()``: as above with W2 (3, 3)."""
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 3))
    return {
        "inputs": {"params": params, "grads": grads, "learning_rate": 0.01},
        "expected": {"params": {
            "W1": np.array([[1.63535156, -0.62320365, -0.53718766],
                            [-1.07799357, 0.85639907, -2.29470142]]),
            "b1": np.array([[1.74604067], [-0.75184921]]),
            "W2": np.array([[0.32171798, -0.25467393, 1.46902454],
                            [-2.05617317, -0.31554548, -0.3756023],
                            [1.1404819, -1.09976462, -0.1612551]]),
            "b2": np.array([[-0.88020257], [0.02561572], [0.57539477]])}},
        "source": OPT_V1B + " (cell 3 output); inputs " + OPT_V1B_CASES,
    }


def update_parameters_with_momentum():
    """``update_parameters_with_momentum_test_case()``: ``np.random.seed(1)``, params and
    grads with W2 (3, 2), v all zeros; beta 0.9, learning_rate 0.01."""
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 2))
    return {
        "inputs": {"params": params, "grads": grads, "v": _zeros_like_grads(params),
                   "beta": 0.9, "learning_rate": 0.01},
        "expected": {
            "params": {"W1": np.array([[1.62522322, -0.61179863, -0.52875457],
                                       [-1.071868, 0.86426291, -2.30244029]]),
                       "b1": np.array([[1.74430927], [-0.76210776]]),
                       "W2": np.array([[0.31972282, -0.24924749],
                                       [1.46304371, -2.05987282],
                                       [-0.32294756, -0.38336269]]),
                       "b2": np.array([[1.1341662], [-1.09920409], [-0.171583]])},
            "v": {"dW1": np.array([[-0.08778584, 0.00422137, 0.05828152],
                                   [-0.11006192, 0.11447237, 0.09015907]]),
                  "dW2": np.array([[-0.06837279, -0.01228902],
                                   [-0.09357694, -0.02678881],
                                   [0.05303555, -0.06916608]]),
                  "db1": np.array([[0.05024943], [0.09008559]]),
                  "db2": np.array([[-0.03967535], [-0.06871727], [-0.08452056]])}},
        "source": OPT_TESTS + " (update_parameters_with_momentum_test)",
    }


def _v1b_first_velocity():
    """v after one update from zero with beta = 0.9 on the earlier test case's grads,
    as the earlier notebook prints it for momentum and for Adam alike."""
    return {"dW1": np.array([[-0.11006192, 0.11447237, 0.09015907],
                             [0.05024943, 0.09008559, -0.06837279]]),
            "db1": np.array([[-0.01228902], [-0.09357694]]),
            "dW2": np.array([[-0.02678881, 0.05303555, -0.06916608],
                             [-0.03967535, -0.06871727, -0.08452056],
                             [-0.06712461, -0.00126646, -0.11173103]]),
            "db2": np.array([[0.02344157], [0.16598022], [0.07420442]])}


def update_parameters_with_momentum_v1b():
    """The earlier test case: as above with W2 (3, 3)."""
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 3))
    return {
        "inputs": {"params": params, "grads": grads, "v": _zeros_like_grads(params),
                   "beta": 0.9, "learning_rate": 0.01},
        "expected": {
            "params": {"W1": np.array([[1.62544598, -0.61290114, -0.52907334],
                                       [-1.07347112, 0.86450677, -2.30085497]]),
                       "b1": np.array([[1.74493465], [-0.76027113]]),
                       "W2": np.array([[0.31930698, -0.24990073, 1.4627996],
                                       [-2.05974396, -0.32173003, -0.38320915],
                                       [1.13444069, -1.0998786, -0.1713109]]),
                       "b2": np.array([[-0.87809283], [0.04055394], [0.58207317]])},
            "v": _v1b_first_velocity()},
        "source": (OPT_V1B + " (cell 9 output) and, the same values, " + OPT_TESTS_EARLIER
                   + " (update_parameters_with_momentum_test); inputs " + OPT_V1B_CASES),
    }


def update_parameters_with_adam():
    """``update_parameters_with_adam_test_case()``: ``np.random.seed(1)``, v and s zeros,
    params and grads with W2 (3, 2); t 2, learning_rate 0.02, beta1 0.8, beta2 0.888,
    epsilon 1e-2. The test publishes the first row of each array (``x[0]``) only."""
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 2))
    return {
        "inputs": {"params": params, "grads": grads, "v": _zeros_like_grads(params),
                   "s": _zeros_like_grads(params), "t": 2, "learning_rate": 0.02,
                   "beta1": 0.8, "beta2": 0.888, "epsilon": 1e-2},
        "expected": {  # first rows
            "v": {"dW1": np.array([-0.17557168, 0.00844275, 0.11656304]),
                  "dW2": np.array([-0.13674557, -0.02457805]),
                  "db1": np.array([0.10049887]),
                  "db2": np.array([-0.07935071])},
            "s": {"dW1": np.array([0.08631117, 0.00019958, 0.03804344]),
                  "dW2": np.array([0.05235818, 0.00169142]),
                  "db1": np.array([0.02828006]),
                  "db2": np.array([0.0176303])},
            "params": {"W1": np.array([1.63937725, -0.62327448, -0.54308727]),
                       "W2": np.array([0.33400549, -0.23563857]),
                       "b1": np.array([1.72995096]),
                       "b2": np.array([1.14852557])}},
        "source": OPT_TESTS + " (update_parameters_with_adam_test)",
    }


def update_parameters_with_adam_earlier():
    """The earlier public test: the earlier test case (W2 (3, 3), v and s zeros) with
    t 2, learning_rate 0.02, beta1 0.8, beta2 0.888, epsilon 1e-2; first rows only.

    Another copy of this earlier public_tests.py in circulation expects
    W1[0] = [1.63949493, -0.62691477, -0.54326465]: that is
    W - α v̂ / √(ŝ + ε), ε inside the root -- not the course's formula (nor the
    notebook's), so not used here.
    """
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 3))
    return {
        "inputs": {"params": params, "grads": grads, "v": _zeros_like_grads(params),
                   "s": _zeros_like_grads(params), "t": 2, "learning_rate": 0.02,
                   "beta1": 0.8, "beta2": 0.888, "epsilon": 1e-2},
        "expected": {  # first rows
            "v": {"dW1": np.array([-0.22012384, 0.22894474, 0.18031814]),
                  "dW2": np.array([-0.05357762, 0.10607109, -0.13833215]),
                  "db1": np.array([-0.02457805]),
                  "db2": np.array([0.04688314])},
            "s": {"dW1": np.array([0.13567261, 0.14676395, 0.09104097]),
                  "dW2": np.array([8.03757060e-03, 3.15030152e-02, 5.35801947e-02]),
                  "db1": np.array([0.00169142]),
                  "db2": np.array([0.00615448])},
            "params": {"W1": np.array([1.63942428, -0.6268425, -0.54320974]),
                       "W2": np.array([0.33356139, -0.26425199, 1.47707772]),
                       "b1": np.array([1.75854357]),
                       "b2": np.array([-0.89228024])}},
        "source": OPT_TESTS_EARLIER + " (update_parameters_with_adam_test); inputs "
                  + OPT_V1B_CASES,
    }


def update_parameters_with_adam_v1b():
    """The earlier notebook's cell: the earlier test case (W2 (3, 3)), the function's
    defaults learning_rate 0.01, beta1 0.9, beta2 0.999, epsilon 1e-8, and t = 2.

    The notebook's "Expected Output" table beside it has two typos
    (W2[2, 1] -1.09245036 and b2[0] -0.88529978); the printed output, used here,
    is what the formula gives.
    """
    params, grads = _params_and_grads(np.random.RandomState(1), (3, 3))
    return {
        "inputs": {"params": params, "grads": grads, "v": _zeros_like_grads(params),
                   "s": _zeros_like_grads(params), "t": 2, "learning_rate": 0.01,
                   "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8},
        "expected": {
            "params": {"W1": np.array([[1.63178673, -0.61919778, -0.53561312],
                                       [-1.08040999, 0.85796626, -2.29409733]]),
                       "b1": np.array([[1.75225313], [-0.75376553]]),
                       "W2": np.array([[0.32648046, -0.25681174, 1.46954931],
                                       [-2.05269934, -0.31497584, -0.37661299],
                                       [1.14121081, -1.09244991, -0.16498684]]),
                       "b2": np.array([[-0.88529979], [0.03477238], [0.57537385]])},
            "v": _v1b_first_velocity(),
            # s["db1"], s["dW2"], s["db2"] were printed in scientific notation.
            "s": {"dW1": np.array([[0.00121136, 0.00131039, 0.00081287],
                                   [0.0002525, 0.00081154, 0.00046748]]),
                  "db1": np.array([[1.51020075e-05], [8.75664434e-04]]),
                  "dW2": np.array([[7.17640232e-05, 2.81276921e-04, 4.78394595e-04],
                                   [1.57413361e-04, 4.72206320e-04, 7.14372576e-04],
                                   [4.50571368e-04, 1.60392066e-07, 1.24838242e-03]]),
                  "db2": np.array([[5.49507194e-05], [2.75494327e-03], [5.50629536e-04]])}},
        "scientific": {"s": ("db1", "dW2", "db2")},
        "source": OPT_V1B + " (cell 13 output); inputs " + OPT_V1B_CASES,
    }


def update_lr():
    """``update_lr(learning_rate0, epoch_num, decay_rate)``."""
    return {
        "calls": [((0.5, 2, 1), 0.16666666666666666)],
        "source": OPT_TESTS + " (update_lr_test)",
    }


def schedule_lr_decay():
    """``schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval)``.

    The test compares with ``np.isclose``; 0.085714285 is 0.3 / 3.5 cut to 9 digits.
    """
    return {
        "calls": [((0.5, 100, 1, 100), 0.25), ((0.5, 10, 1, 100), 0.5),
                  ((0.3, 1000, 0.25, 100), 0.085714285), ((0.3, 100, 0.25, 100), 0.24)],
        "source": OPT_TESTS + " (schedule_lr_decay_test)",
    }


def random_mini_batches():
    """``random_mini_batches_test``: ``np.random.seed(1)``, X = randn(5, 7),
    Y = randn(1, 7) < 0.5 (bool), mini_batch_size 2, the function's default seed 0."""
    rs = np.random.RandomState(1)
    X = rs.randn(5, 7)
    Y = rs.randn(1, 7) < 0.5
    return {
        "inputs": {"X": X, "Y": Y, "mini_batch_size": 2, "seed": 0},
        "expected": [
            (np.array([[1.74481176, -0.52817175], [-0.38405435, -0.24937038],
                       [-1.10061918, -0.17242821], [-0.93576943, 0.50249434],
                       [-0.67124613, -0.69166075]]), np.array([[True, True]])),
            (np.array([[-0.61175641, -1.07296862], [0.3190391, 1.46210794],
                       [-1.09989127, -0.87785842], [0.90159072, 0.90085595],
                       [0.53035547, -0.39675353]]), np.array([[True, False]])),
            (np.array([[1.62434536, -2.3015387], [-0.7612069, -0.3224172],
                       [1.13376944, 0.58281521], [1.14472371, -0.12289023],
                       [-0.26788808, -0.84520564]]), np.array([[True, True]])),
            (np.array([[0.86540763], [-2.06014071], [0.04221375], [-0.68372786],
                       [-0.6871727]]), np.array([[False]]))],
        "source": OPT_TESTS + " (random_mini_batches_test)",
    }


def random_mini_batches_earlier():
    """The earlier ``random_mini_batches_test``: ``np.random.seed(1)``, X = randn(7, 3),
    Y = randn(1, 3) < 0.5, mini_batch_size 2, seed 0."""
    rs = np.random.RandomState(1)
    X = rs.randn(7, 3)
    Y = rs.randn(1, 3) < 0.5
    return {
        "inputs": {"X": X, "Y": Y, "mini_batch_size": 2, "seed": 0},
        "expected": [
            (np.array([[-0.52817175, -0.61175641], [-2.3015387, 0.86540763],
                       [0.3190391, -0.7612069], [-2.06014071, 1.46210794],
                       [1.13376944, -0.38405435], [-0.87785842, -0.17242821],
                       [-1.10061918, 0.58281521]]), np.array([[False, False]])),
            (np.array([[1.62434536], [-1.07296862], [1.74481176], [-0.24937038],
                       [-0.3224172], [-1.09989127], [0.04221375]]), np.array([[False]]))],
        "source": OPT_TESTS_EARLIER + " (random_mini_batches_test)",
    }


def random_mini_batches_v1b():
    """``random_mini_batches_test_case()``: ``np.random.seed(1)``, X = randn(12288, 148),
    Y = randn(1, 148) < 0.5, mini_batch_size 64, seed 0. The notebook prints the
    batches' shapes and ``mini_batches[0][0][0][0:3]``."""
    rs = np.random.RandomState(1)
    X = rs.randn(12288, 148)
    Y = rs.randn(1, 148) < 0.5
    return {
        "inputs": {"X": X, "Y": Y, "mini_batch_size": 64, "seed": 0},
        "expected": {"X_shapes": [(12288, 64), (12288, 64), (12288, 20)],
                     "Y_shapes": [(1, 64), (1, 64), (1, 20)],
                     "first_X_row0_first3": np.array([0.90085595, -0.7612069, 0.2344157])},
        "source": OPT_V1B + " (cell 5 output); inputs " + OPT_V1B_CASES,
    }


OPTIMIZER_CASES = {
    "gd": [update_parameters_with_gd, update_parameters_with_gd_v1b],
    "momentum": [update_parameters_with_momentum, update_parameters_with_momentum_v1b],
    "adam": [update_parameters_with_adam, update_parameters_with_adam_earlier,
             update_parameters_with_adam_v1b],
}
MINI_BATCH_CASES = [random_mini_batches, random_mini_batches_earlier]
