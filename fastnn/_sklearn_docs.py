"""The parameter and attribute sections of :mod:`fastnn.sklearn`'s docstrings."""

PARAMETERS = """
    Parameters
    ----------
    Every parameter of scikit-learn's MLPClassifier / MLPRegressor, with its
    meaning and default, then fastnn's own.

    hidden_layer_sizes : int or sequence of int, default=(100,)
        Units of each hidden layer; ``()`` for none.
    activation : {"relu", "tanh", "logistic", "identity", "sigmoid", "leaky_relu"}, default="relu"
        Activation of the hidden layers: scikit-learn's names, plus fastnn's
        ``"sigmoid"`` (= ``"logistic"``) and ``"leaky_relu"`` (slope 0.01).
    solver : {"adam", "sgd", "lbfgs"}, default="adam"
        scikit-learn's update rules: ``"adam"`` is
        :class:`fastnn.optimizers.SklearnAdam`, ``"sgd"``
        :class:`fastnn.optimizers.SklearnSGD` (not the course's Adam and
        Momentum: see there), ``"lbfgs"`` SciPy's L-BFGS-B on the full batch.
    alpha : float >= 0, default=0.0001
        L2 penalty, as scikit-learn scales it: 0.5 * alpha * sum ||W||^2 / m
        on each batch of m samples, i.e. the course's ``lambd`` = alpha.
    batch_size : int, "auto" or None, default="auto"
        Examples per update of the stochastic solvers: ``"auto"`` is
        ``min(200, n_samples)``; None all of them (the lecture's full batch);
        an int larger than n_samples is clipped to it, with a warning.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        solver="sgd" only: after each epoch ``"invscaling"`` sets the rate to
        ``learning_rate_init / (t_ + 1) ** power_t``; ``"adaptive"`` divides
        it by 5 where training would stop, until it is 1e-6 or less.
    learning_rate_init : float > 0, default=0.001
        The initial (solver="sgd") or base (solver="adam") learning rate.
    power_t : float >= 0, default=0.5
        The exponent of ``"invscaling"``.
    max_iter : int, default=200
        Maximum epochs (stochastic solvers) or L-BFGS iterations.
    shuffle : bool, default=True
        Shuffle the samples before each epoch (stochastic solvers).
    random_state : int, RandomState, Generator or None, default=None
        The initial weights, the shuffles, the validation split (and the
        dropout masks) draw from it, in MLPClassifier's order: the same int
        gives the same initial weights and shuffles as MLPClassifier's.
    tol : float >= 0, default=1e-4
        The improvement that counts: training stops (or, "adaptive", the rate
        drops) once the training loss (or with ``early_stopping`` the
        validation score) has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs in a row; lbfgs's ``gtol``.
    verbose : bool, default=False
        Print the loss after each epoch.
    warm_start : bool, default=False
        ``fit`` continues from the weights of the last fit (with a new
        optimizer state, as scikit-learn).
    momentum : float in [0, 1], default=0.9
        solver="sgd": the momentum mu of ``v = mu v - lr dW``.
    nesterovs_momentum : bool, default=True
        solver="sgd" with momentum > 0: Nesterov's momentum.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the samples (stratified by class
        for a single-label classifier) and stop on their score
        (accuracy, R^2), keeping the best epoch's weights.
    validation_fraction : float in [0, 1), default=0.1
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
        solver="adam": the decay rates of the running means of the gradients
        and of their squares.
    epsilon : float > 0, default=1e-8
        solver="adam": added to the root of the running mean of the squares.
    n_iter_no_change : int >= 1 or inf, default=10
        See ``tol``.
    max_fun : int >= 1, default=15000
        solver="lbfgs": the most loss evaluations.
    backend : str, default="auto"
        The fastnn backend that computes. ``"auto"``: the fastest available
        one that trains the solver (lbfgs needs only forward and backward;
        sgd and adam need the backend's engine to train the update rule --
        sgd with momentum=0, alpha=0 and no dropout is gradient descent --
        and to report each epoch's loss for ``loss_curve_``; per-example
        weights and ``loss="poisson"`` need ``HAS_SAMPLE_WEIGHT`` and
        ``HAS_POISSON``); ``backend_`` says which. A backend that cannot train
        the fit is refused, naming those that can.
    dtype : {"float64", "float32"} or None, default=None
        Dtype of the parameters and the arithmetic. None: float32 X stays
        float32, anything else becomes float64 (as MLPClassifier).
    threads : int or None, default=None
        Threads for backends that use them; None lets the backend choose.
    relu_grad_at_zero : {0, 1}, default=0
        ReLU's derivative at exactly 0: 0 as scikit-learn, 1 as the lecture.
    keep_prob : float in (0, 1] or one per hidden layer, default=1.0
        Inverted dropout on the hidden layers while training (not in
        scikit-learn); 1 is none. Stochastic solvers only.
    callback : callable or None, default=None
        ``callback(estimator)`` after each epoch (``loss_curve_``, ``n_iter_``,
        ``validation_scores_`` are up to date); returning False stops
        training there (not in scikit-learn).
"""

ATTRIBUTES = """
    loss_ : float
        The loss of the last epoch (stochastic) or at the L-BFGS optimum, L2
        term included, as scikit-learn computes it.
    loss_curve_ : list of float
        Stochastic solvers: the loss of each epoch, the mean of its
        mini-batch losses (scikit-learn's).
    best_loss_ : float or None
        The smallest entry of ``loss_curve_`` (None with ``early_stopping``).
    validation_scores_ : list of float or None
        With ``early_stopping``: the score on the held-out samples after each epoch.
    best_validation_score_ : float or None
        The best of them.
    validation_loss_curve_ : list of float or None
        With ``early_stopping``: the loss on the held-out samples after each
        epoch (weighted as the training loss), beside ``loss_curve_`` (not in
        scikit-learn; no L2 term).
    t_ : int
        Training samples seen by the stochastic solver.
    n_iter_ : int
        Epochs run (L-BFGS: iterations).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When X has string column names.
    n_layers_ : int
        Layers, input and output included.
    n_outputs_ : int
        Units of the output layer.
    out_activation_ : str
        The output activation, in scikit-learn's names.
    coefs_ : list of ndarray
        ``coefs_[i]`` of shape (units of layer i, units of layer i + 1)
        (copies of ``network_``'s ``W.T``).
    intercepts_ : list of ndarray
        ``intercepts_[i]`` of shape (units of layer i + 1,) (copies).
    backend_ : str
        The backend that trained (what ``backend="auto"`` chose).
    network_ : fastnn.Network
        The trained network (examples as columns: ``network_.predict_proba(X.T)``).
    threads_used_ : (int, str)
        The threads the last ``Network.fit`` of the training ran on and why.
"""
