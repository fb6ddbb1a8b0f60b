"""The small classification problem and estimator the sweep and fallback tests share."""

from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from fastnn.sklearn import NetworkClassifier


#: Plain mini-batch gradient descent: what every backend trains.
PLAIN_GD = dict(solver="sgd", momentum=0, alpha=0)


def data_3class(m=300, n_x=10, seed=0):
    X, y = make_classification(n_samples=m, n_features=n_x, n_informative=6, n_classes=3,
                               random_state=seed)
    return StandardScaler().fit_transform(X), y


def estimator(backend, **kwargs):
    params = dict(batch_size=32, learning_rate_init=0.1, max_iter=8, tol=0, random_state=0,
                  backend=backend, **PLAIN_GD)
    return NetworkClassifier((16,), **{**params, **kwargs})
