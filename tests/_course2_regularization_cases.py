"""The course's published values for its regularization assignment (course 2, week 1,
assignment 2): ``compute_cost_with_regularization``, ``backward_propagation_with_regularization``,
``forward_propagation_with_dropout`` and ``backward_propagation_with_dropout`` -- each
case's inputs (built as the course's test-case generator builds them), its expected
outputs and where they were transcribed from. The copies are in learners' public
repositories; no official public source was found.
"""

import numpy as np

REG_TESTS = ("shivamaggarwal513/coursera-deep-learning-specialization: "
             "c2-improving-deep-neural-networks/week-1/a2-regularization/public_tests.py "
             "(inputs: test_cases.py in the same folder) "
             "@ 3b8731ebb2fabcbb3a80991c339ec2aef1d9ec8c")


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
    return {
        "inputs": {"A3": np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111,
                                    0.40682402]]),
                   "Y": np.array([[1, 1, 0, 1, 0]]),
                   "parameters": _regularization_params(rs), "lambd": 0.1},
        "expected": {"cost": 1.7864859451590758},
        "source": REG_TESTS + " (compute_cost_with_regularization_test)",
    }


def _published_weights():
    """W1 (2, 3), b1 (2, 1), W2 (3, 2), b2 (3, 1), W3 (1, 3), b3 (1, 1) as the course's
    caches print them: the same in every regularization test case."""
    return {
        "W1": np.array([[-1.09989127, -0.17242821, -0.87785842],
                        [0.04221375, 0.58281521, -1.10061918]]),
        "b1": np.array([[1.14472371], [0.90159072]]),
        "W2": np.array([[0.50249434, 0.90085595],
                        [-0.68372786, -0.12289023],
                        [-0.93576943, -0.26788808]]),
        "b2": np.array([[0.53035547], [-0.69166075], [-0.39675353]]),
        "W3": np.array([[-0.6871727, -0.84520564, -0.67124613]]),
        "b3": np.array([[-0.0126646]]),
    }


def _regularization_cache():
    """The backward test case's cache, published as literals (a forward pass of
    X with weights other than those of :func:`_regularization_params`)."""
    return {
        **_published_weights(),
        "Z1": np.array([[-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115],
                        [-1.98043538, 4.1600994, 0.79051021, 1.46493512, -0.45506242]]),
        "A1": np.array([[0., 3.32524635, 2.13994541, 2.60700654, 0.],
                        [0., 4.1600994, 0.79051021, 1.46493512, 0.]]),
        "Z2": np.array([[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547],
                        [-0.69166075, -3.47645987, -2.25194702, -2.65416996, -0.69166075],
                        [-0.39675353, -4.62285846, -2.61101729, -3.22874921, -0.39675353]]),
        "A2": np.array([[0.53035547, 5.94892323, 2.31780174, 3.16005701, 0.53035547],
                        [0., 0., 0., 0., 0.],
                        [0., 0., 0., 0., 0.]]),
        "Z3": np.array([[-0.3771104, -4.10060224, -1.60539468, -2.18416951, -0.3771104]]),
        "A3": np.array([[0.40682402, 0.01629284, 0.16722898, 0.10118111, 0.40682402]]),
    }


def backward_propagation_with_regularization():
    """``backward_propagation_with_regularization_test_case()``: ``np.random.seed(1)``,
    X = randn(3, 5), Y literal, the cache literal (the course's tuple
    (Z1, A1, W1, b1, Z2, A2, W2, b2, Z3, A3, W3, b3), here by name); lambd 0.7.

    dW_l = (1/m) dZ_l A_{l-1}ᵀ + (λ/m) W_l; ReLU hidden layers, dZ = dA ∗ (A > 0).
    """
    rs = np.random.RandomState(1)
    return {
        "inputs": {"X": rs.randn(3, 5), "Y": np.array([[1, 1, 0, 1, 0]]),
                   "cache": _regularization_cache(), "lambd": 0.7},
        "expected": {
            "dZ3": np.array([[-0.59317598, -0.98370716, 0.16722898, -0.89881889,
                              0.40682402]]),
            "dW3": np.array([[-1.77691347, -0.11832879, -0.09397446]]),
            "db3": np.array([[-0.38032981]]),
            "dA2": np.array([[0.40761434, 0.67597671, -0.11491519, 0.6176438, -0.27955836],
                             [0.50135568, 0.83143484, -0.14134288, 0.7596868, -0.34384996],
                             [0.39816708, 0.66030962, -0.11225181, 0.6033287, -0.27307905]]),
            "dZ2": np.array([[0.40761434, 0.67597671, -0.11491519, 0.6176438, -0.27955836],
                             [0., 0., -0., 0., -0.],
                             [0., 0., -0., 0., -0.]]),
            "dW2": np.array([[0.79276486, 0.85133918],
                             [-0.0957219, -0.01720463],
                             [-0.13100772, -0.03750433]]),
            "db2": np.array([[0.26135226], [0.], [0.]]),
            "dA1": np.array([[0.2048239, 0.33967447, -0.05774423, 0.31036252, -0.14047649],
                             [0.3672018, 0.60895764, -0.10352203, 0.5564081, -0.25184181]]),
            "dZ1": np.array([[0., 0.33967447, -0.05774423, 0.31036252, -0.],
                             [0., 0.60895764, -0.10352203, 0.5564081, -0.]]),
            "dW1": np.array([[-0.25604646, 0.12298827, -0.28297129],
                             [-0.17706303, 0.34536094, -0.4410571]]),
            "db1": np.array([[0.11845855], [0.21236874]])},
        "source": REG_TESTS + " (backward_propagation_with_regularization_test)",
    }


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
    return {
        "inputs": {"X": X, "parameters": _regularization_params(rs), "keep_prob": 0.7,
                   "mask_seed": 1, "mask_shapes": {"D1": (2, 5), "D2": (3, 5)}},
        "expected": {
            "A3": np.array([[0.36974721, 0.00305176, 0.04565099, 0.49683389, 0.36974721]]),
            "cache": {
                "Z1": np.array([[-1.52855314, 3.32524635, 2.13994541, 2.60700654,
                                 -0.75942115],
                                [-1.98043538, 4.1600994, 0.79051021, 1.46493512,
                                 -0.45506242]]),
                "D1": np.array([[True, False, True, True, True],
                                [True, True, True, True, True]]),
                "A1": np.array([[0., 0., 3.05706487, 3.72429505, 0.],
                                [0., 5.94299915, 1.1293003, 2.09276446, 0.]]),
                "Z2": np.array([[0.53035547, 5.88414161, 3.08385015, 4.28707196, 0.53035547],
                                [-0.69166075, -1.42199726, -2.92064114, -3.49524533,
                                 -0.69166075],
                                [-0.39675353, -1.98881216, -3.55998747, -4.44246165,
                                 -0.39675353]]),
                "D2": np.array([[True, True, True, False, True],
                                [True, True, True, True, True],
                                [False, False, True, True, False]]),
                "A2": np.array([[0.75765067, 8.40591658, 4.40550021, 0., 0.75765067],
                                [0., 0., 0., 0., 0.],
                                [0., 0., 0., 0., 0.]]),
                "Z3": np.array([[-0.53330145, -5.78898099, -3.04000407, -0.0126646,
                                 -0.53330145]]),
                "A3": np.array([[0.36974721, 0.00305176, 0.04565099, 0.49683389,
                                 0.36974721]]),
                **_published_weights()}},
        "source": REG_TESTS + " (forward_propagation_with_dropout_test)",
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
    rs = np.random.RandomState(1)
    cache = {
        **_published_weights(),
        "Z1": np.array([[-1.52855314, 3.32524635, 2.13994541, 2.60700654, -0.75942115],
                        [-1.98043538, 4.1600994, 0.79051021, 1.46493512, -0.45506242]]),
        "D1": np.array([[True, False, True, True, True],
                        [True, True, True, True, False]]),
        "A1": np.array([[0., 0., 4.27989081, 5.21401307, 0.],
                        [0., 8.32019881, 1.58102041, 2.92987024, 0.]]),
        "Z2": np.array([[0.53035547, 8.02565606, 4.10524802, 5.78975856, 0.53035547],
                        [-0.69166075, -1.71413186, -3.81223329, -4.61667916, -0.69166075],
                        [-0.39675353, -2.62563561, -4.82528105, -6.0607449, -0.39675353]]),
        "D2": np.array([[True, False, True, False, True],
                        [False, True, False, True, True],
                        [False, False, True, False, False]]),
        "A2": np.array([[1.06071093, 0., 8.21049603, 0., 1.06071093],
                        [0., 0., 0., 0., 0.],
                        [0., 0., 0., 0., 0.]]),
        "Z3": np.array([[-0.7415562, -0.0126646, -5.65469333, -0.0126646, -0.7415562]]),
        "A3": np.array([[0.32266394, 0.49683389, 0.00348883, 0.49683389, 0.32266394]]),
    }
    return {
        "inputs": {"X": rs.randn(3, 5), "Y": np.array([[1, 1, 0, 1, 0]]), "cache": cache,
                   "keep_prob": 0.8},
        "expected": {
            "dZ3": np.array([[-0.67733606, -0.50316611, 0.00348883, -0.50316611,
                              0.32266394]]),
            "dW3": np.array([[-0.06951191, 0., 0.]]),
            "db3": np.array([[-0.2715031]]),
            "dA2": np.array([[0.58180856, 0., -0.00299679, 0., -0.27715731],
                             [0., 0.53159854, -0., 0.53159854, -0.34089673],
                             [0., 0., -0.00292733, 0., -0.]]),
            "dZ2": np.array([[0.58180856, 0., -0.00299679, 0., -0.27715731],
                             [0., 0., -0., 0., -0.],
                             [0., 0., -0., 0., -0.]]),
            "dW2": np.array([[-0.00256518, -0.0009476],
                             [0., 0.],
                             [0., 0.]]),
            "db2": np.array([[0.06033089], [0.], [0.]]),
            "dA1": np.array([[0.36544439, 0., -0.00188233, 0., -0.17408748],
                             [0.65515713, 0., -0.00337459, 0., -0.]]),
            "dZ1": np.array([[0., 0., -0.00188233, 0., -0.],
                             [0., 0., -0.00337459, 0., -0.]]),
            "dW1": np.array([[0.00019884, 0.00028657, 0.00012138],
                             [0.00035647, 0.00051375, 0.00021761]]),
            "db1": np.array([[-0.00037647], [-0.00067492]])},
        "source": REG_TESTS + " (backward_propagation_with_dropout_test)",
    }


REGULARIZATION_CASES = [compute_cost_with_regularization,
                        backward_propagation_with_regularization,
                        forward_propagation_with_dropout, backward_propagation_with_dropout]
