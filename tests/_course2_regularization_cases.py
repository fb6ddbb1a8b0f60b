"""The course's published values for its regularization assignment (course 2, week 1,
assignment 2): ``compute_cost_with_regularization``, ``backward_propagation_with_regularization``,
``forward_propagation_with_dropout`` and ``backward_propagation_with_dropout`` -- each
case's inputs (built as the course's test-case generator builds them), its expected
outputs and where they were transcribed from. The copies are in learners' public
repositories; no official public source was found. The transcribed numbers (expected
values, literal inputs) are in ``data/course2_published.json``, read as
:mod:`_course2_cases` reads its own; the draws are code, here.
"""

import numpy as np

from _course2_cases import published, shared


def _regularization_params(rs):
    """W1 (2, 3), b1 (2, 1), W2 (3, 2), b2 (3, 1), W3 (1, 3), b3 (1, 1), in that order."""
    shapes = {"W1": (2, 3), "b1": (2, 1), "W2": (3, 2), "b2": (3, 1), "W3": (1, 3),
              "b3": (1, 1)}
    return {key: rs.randn(*shape) for key, shape in shapes.items()}


def compute_cost_with_regularization():
    """``compute_cost_with_regularization_test_case()``: ``np.random.seed(1)``, Y literal,
    then W1, b1, W2, b2, W3, b3 drawn; A3 literal; lambd 0.1.

    J = cross-entropy(A3, Y) + (1/m)(λ/2) Σ_l ‖W_l‖²_F. The earlier notebook printed the
    same float as ``cost = 1.78648594516`` (12 significant digits).
    """
    rs = np.random.RandomState(1)
    case = published("compute_cost_with_regularization")
    return {"inputs": {**case["inputs"], "parameters": _regularization_params(rs), "lambd": 0.1},
            "expected": case["expected"], "source": case["source"]}


def _published_weights():
    """W1 (2, 3), b1 (2, 1), W2 (3, 2), b2 (3, 1), W3 (1, 3), b3 (1, 1) as the course's
    caches print them: the same in every regularization test case."""
    return shared("regularization_weights")


def _backward_case(name, **hyper):
    """A backward test case: ``np.random.seed(1)``, X = randn(3, 5), Y and the cache
    published as literals (a forward pass of X with weights other than those of
    :func:`_regularization_params`: :func:`_published_weights`), then ``hyper``."""
    case = published(name)
    published_inputs = case["inputs"]
    inputs = {"X": np.random.RandomState(1).randn(3, 5), "Y": published_inputs["Y"],
              "cache": {**_published_weights(), **published_inputs["cache"]}, **hyper}
    return {"inputs": inputs, "expected": case["expected"], "source": case["source"]}


def backward_propagation_with_regularization():
    """``backward_propagation_with_regularization_test_case()``: ``np.random.seed(1)``,
    X = randn(3, 5), Y literal, the cache literal (the course's tuple
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3), here by name); lambd 0.7.

    dW_l = (1/m) dZ_l A_{l-1}ᵀ + (λ/m) W_l; ReLU hidden layers, dZ = dA ∗ (A > 0).
    """
    return _backward_case("backward_propagation_with_regularization", lambd=0.7)


def forward_propagation_with_dropout():
    """``forward_propagation_with_dropout_test_case()``: ``np.random.seed(1)``,
    X = randn(3, 5), then W1, b1, W2, b2, W3, b3 drawn as in
    :func:`_regularization_params`; keep_prob 0.7.

    The masks are the course function's own draws: it calls ``np.random.seed(1)``
    first, then D1 = rand(2, 5) < keep_prob after layer 1's ReLU and
    D2 = rand(3, 5) < keep_prob after layer 2's; A_l = relu(Z_l) ∗ D_l / keep_prob
    (inverted dropout), none on the sigmoid output. ``mask_seed`` and
    ``mask_shapes`` say so; the published cache holds the masks that come out.
    """
    rs = np.random.RandomState(1)
    X = rs.randn(3, 5)
    case = published("forward_propagation_with_dropout")
    expected = case["expected"]
    return {
        "inputs": {"X": X, "parameters": _regularization_params(rs), "keep_prob": 0.7,
                   "mask_seed": 1, "mask_shapes": {"D1": (2, 5), "D2": (3, 5)}},
        "expected": {"A3": expected["A3"],
                     "cache": {**expected["cache"], **_published_weights()}},
        "source": case["source"],
    }


def backward_propagation_with_dropout():
    """``backward_propagation_with_dropout_test_case()``: ``np.random.seed(1)``,
    X = randn(3, 5), Y literal, the cache literal (the course's tuple
    (Z1, D1, A1, W1, b1, Z2, D2, A2, W2, b2, Z3, A3, W3, b3), here by name); keep_prob 0.8.

    dA_l = (W_{l+1}ᵀ dZ_{l+1}) ∗ D_l / keep_prob, then dZ_l = dA_l ∗ (A_l > 0). Note the
    course's quirk, kept: the cache was made with keep_prob 0.5 (its A1 is
    relu(Z1) ∗ D1 / 0.5) while the backward pass is run with 0.8; the expected values
    are for exactly these inputs.
    """
    return _backward_case("backward_propagation_with_dropout", keep_prob=0.8)


REGULARIZATION_CASES = [compute_cost_with_regularization,
                        backward_propagation_with_regularization,
                        forward_propagation_with_dropout, backward_propagation_with_dropout]
