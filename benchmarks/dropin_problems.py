"""The data sets of the drop-in comparison (:mod:`.bench_dropin`), in
scikit-learn's orientation: ``(X_train, y_train, X_test, y_test)``, X of
shape (n_samples, n_features), float64 (each group casts to its dtype).

- ``digits``: scikit-learn's ``load_digits`` / 16, a stratified 75/25 split
  (1347 training images, 64 features, 10 classes);
- ``dense``: ``make_classification`` of 60 000 x 100 (10 informative features,
  4 classes, ``class_sep=2.5``, no flipped labels), 50 000 to train and 10 000 to test. Chosen
  so that both estimators' defaults stop by their own rule (about 35 epochs)
  instead of running ``max_iter=200`` epochs of a problem whose loss never
  settles: a fit of the default is a fit a user would make;
- ``regression``: ``make_regression`` of 60 000 x 100 (20 informative
  features, noise 10, the target scaled to unit variance), 50 000 / 10 000;
- ``cat``: the course's cat/non-cat images (209 training and 50 test images
  of 64 x 64 x 3, pixels / 255, 12 288 features), read from
  ``$FASTNN_COURSE1_DATA/catvnoncat.npz`` or ``../shared/course1-data`` beside
  the checkout; absent on a user's install, where its groups skip.
"""

import functools
import os
from pathlib import Path

import numpy as np

__all__ = ["PROBLEMS", "CLASSIFICATION", "load", "cat_path", "why_not"]

#: name -> (kind, description) of each problem.
PROBLEMS = {
    "digits": ("classification", "digits, 1347 x 64, 10 classes"),
    "dense": ("classification", "make_classification 50 000 x 100, 4 classes"),
    "regression": ("regression", "make_regression 50 000 x 100"),
    "cat": ("classification", "cat/non-cat, 209 x 12 288, 2 classes"),
}
CLASSIFICATION = {name for name, (kind, _) in PROBLEMS.items() if kind == "classification"}
SEED = 0
N_SAMPLES, N_TEST, N_FEATURES = 60_000, 10_000, 100


def cat_path():
    """Where the course's cat/non-cat file is, or None."""
    here = Path(__file__).resolve().parent
    candidates = [Path(os.environ["FASTNN_COURSE1_DATA"])] if "FASTNN_COURSE1_DATA" in \
        os.environ else []
    candidates.append(here.parent.parent / "shared" / "course1-data")
    for folder in candidates:
        if (folder / "catvnoncat.npz").is_file():
            return folder / "catvnoncat.npz"
    return None


def why_not(name):
    """Why problem ``name`` cannot run here, or None."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return "scikit-learn is not installed (pip install \"fastnn[compare]\")"
    if name == "cat" and cat_path() is None:
        return ("the course's catvnoncat.npz was not found (set FASTNN_COURSE1_DATA to its "
                "folder)")
    return None


@functools.lru_cache(maxsize=None)
def load(name):
    """``(X_train, y_train, X_test, y_test)`` of problem ``name`` (read-only arrays)."""
    from sklearn.datasets import load_digits, make_classification, make_regression
    from sklearn.model_selection import train_test_split

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        parts = train_test_split(X / 16.0, y, test_size=0.25, stratify=y, random_state=SEED)
    elif name == "dense":
        X, y = make_classification(n_samples=N_SAMPLES, n_features=N_FEATURES, n_informative=10,
                                   n_redundant=0, n_classes=4, class_sep=2.5, flip_y=0.0,
                                   random_state=SEED)
        parts = train_test_split(X, y, test_size=N_TEST, stratify=y, random_state=SEED)
    elif name == "regression":
        X, y = make_regression(n_samples=N_SAMPLES, n_features=N_FEATURES, n_informative=20,
                               noise=10.0, random_state=SEED)
        parts = train_test_split(X, y / y.std(), test_size=N_TEST, random_state=SEED)
    elif name == "cat":
        with np.load(cat_path()) as data:
            X = data["train_x"].reshape(len(data["train_x"]), -1) / 255.0
            Xt = data["test_x"].reshape(len(data["test_x"]), -1) / 255.0
            parts = X, Xt, data["train_y"].ravel(), data["test_y"].ravel()
    else:
        raise ValueError(f"problem must be one of {sorted(PROBLEMS)}, got {name!r}")
    X, Xt, y, yt = parts
    out = (np.ascontiguousarray(X), y, np.ascontiguousarray(Xt), yt)
    for a in out:
        a.setflags(write=False)
    return out
