"""How :mod:`fastnn.sklearn`'s estimators hand their examples to a Network:
rows of X (n_samples, n_features) become the Network's columns (n_features,
m), dense or from a sparse X a batch at a time; and the per-example weights
(``sample_weight`` times ``class_weight``), checked.

Design
------
A sparse X (CSR or CSC; scikit-learn's ``accept_sparse=["csr", "csc"]``
converts the other formats) is never densified whole unless its dense copy
is small (at most :data:`CHUNK_BYTES`): the engines train on dense columns,
and a 50 000 x 10 000 X densified once would take 3.7 GiB (twice that while
transposed), where its CSR at 0.5 % density takes 29 MiB. Training densifies
one mini-batch at a time -- its rows gathered from the CSR, transposed (a
CSC, no copy) and written out in C order, about 2 ms for 200 x 10 000 --
and takes its step on it (one ``Network.fit`` per batch); predictions and
L-BFGS's evaluations densify blocks of at most :data:`CHUNK_BYTES`. Measured
(README, "Sparse X"): one batch per call beat chunks of several batches
(whose columns the engine gathers again, strided, from a wide block) and a
dense copy of the whole X.
"""

import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.validation import _check_sample_weight

__all__ = ["CHUNK_BYTES", "Examples", "too_large", "output", "cost", "sample_weights",
           "with_weights"]

#: Bytes of the dense columns (n_features, c) of one block of a sparse X
#: (predictions, L-BFGS); a sparse X whose dense copy is smaller is densified once.
CHUNK_BYTES = 16 * 2 ** 20


def too_large(X):
    """Whether X is sparse and its dense copy exceeds :data:`CHUNK_BYTES` (then
    it is densified a batch or a block at a time, never whole)."""
    return sp.issparse(X) and X.shape[0] * X.shape[1] * X.dtype.itemsize > CHUNK_BYTES


class Examples:
    """X (n_samples, n_features), validated, as the Network's columns.

    Dense X is transposed once (``XT``, C-contiguous) -- or, with
    ``rows=True`` (a backend whose engine gathers its mini-batches from rows:
    ``HAS_ROW_BATCHES``), viewed as ``X.T`` with no copy when X is
    C-contiguous: ``Network.fit`` then hands that engine X's own rows. A
    sparse X is kept as a CSR (``sparse``) and densified by :meth:`columns` a
    batch or a block at a time, unless its dense copy is at most
    :data:`CHUNK_BYTES` (then it is densified once, as a dense X).
    """

    def __init__(self, X, rows=False):
        self.m, self.n_x = X.shape
        self.itemsize = X.dtype.itemsize
        self.sparse = too_large(X)
        if self.sparse:
            self.X, self.XT = X.tocsr(), None
        else:
            dense = X.toarray() if sp.issparse(X) else X
            self.X = None
            self.XT = (dense.T if rows and dense.flags.c_contiguous
                       else np.ascontiguousarray(dense.T))

    def block(self):
        """Examples per block of a sparse X: as many as :data:`CHUNK_BYTES`
        holds (at least one); all of them for a dense X."""
        if not self.sparse:
            return self.m
        return min(self.m, max(1, CHUNK_BYTES // (self.n_x * self.itemsize)))

    def columns(self, idx):
        """The examples ``idx`` (indices or a slice) as dense columns,
        shape (n_features, len(idx)), C-contiguous (a copy)."""
        if self.XT is not None:
            return np.ascontiguousarray(self.XT[:, idx])
        return self.X[idx].T.toarray(order="C")


def output(network, X):
    """The network's output for X (n_samples, n_features), dense or sparse,
    as (n_samples, n_outputs): a sparse X a block at a time."""
    if not sp.issparse(X):
        return network.predict_proba(np.ascontiguousarray(X.T)).T
    data = Examples(X)
    size = data.block()
    out = np.empty((data.m, network.layer_dims[-1]), dtype=network.dtype)
    for start in range(0, data.m, size):
        part = slice(start, start + size)
        out[part] = network.predict_proba(data.columns(part)).T
    return out


def cost(network, X, Y, sample_weight=None):
    """``network.cost`` of X (n_samples, n_features), dense or sparse, and Y
    (n_outputs, n_samples), weighted by ``sample_weight`` (or not): a sparse X
    a block at a time, each block's cost weighted by its share of the
    examples (or of the weights)."""
    if not sp.issparse(X):
        XT = np.ascontiguousarray(X.T, dtype=network.dtype)
        return network.cost(XT, Y, **with_weights(sample_weight))
    data = Examples(X)
    size = data.block()
    total = data.m if sample_weight is None else float(sample_weight.sum(dtype=np.float64))
    J = 0.0
    for start in range(0, data.m, size):
        part = slice(start, start + size)
        if sample_weight is None:
            share = min(size, data.m - start) / total
        else:
            share = float(sample_weight[part].sum(dtype=np.float64)) / total
            if share == 0:
                continue
        J += share * network.cost(data.columns(part), Y[:, part],
                                  **with_weights(None if sample_weight is None
                                                 else sample_weight[part]))
    return J


def sample_weights(sample_weight, X, y=None, class_weight=None, incremental=False):
    """The per-example weights of a fit, shape (n_samples,) in X's dtype, or
    None (no weights: the unweighted path): scikit-learn's
    ``_check_sample_weight`` (a 1-D array or a number, finite, >= 0, not
    all 0), times ``compute_sample_weight(class_weight, y)`` for a
    classifier's ``class_weight``."""
    if class_weight is not None:
        if y.ndim == 2 and y.shape[1] > 1:
            raise ValueError("class_weight weighs the samples of each class; a multilabel y "
                             "(one column per label) gives a sample several classes, so it "
                             "is not supported there: pass sample_weight instead")
        if isinstance(class_weight, dict):
            for label, weight in class_weight.items():
                if (not isinstance(weight, numbers.Real) or isinstance(weight, bool)
                        or not 0 <= weight < np.inf):
                    raise ValueError(f"class_weight must map each class to a finite "
                                     f"non-negative number; got {weight!r} for class "
                                     f"{label!r}")
        elif incremental:  # SGDClassifier's rule and message
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit. In order to use "
                "'balanced' weights, use compute_class_weight('balanced', classes=classes, "
                "y=y). In place of y you can use a large enough sample of the full training "
                "set target to properly estimate the class frequency distributions. Pass the "
                "resulting weights as the class_weight parameter.")
    if sample_weight is None and class_weight is None:
        return None
    if sample_weight is not None:
        try:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=X.dtype,
                                                 ensure_non_negative=True)
        except (TypeError, ValueError) as exc:  # scikit-learn's error, naming the argument
            if "sample_weight" in str(exc) or "Sample weights" in str(exc):
                raise
            raise type(exc)(f"sample_weight: {exc}") from exc
    if class_weight is not None:
        by_class = compute_sample_weight(class_weight, np.ravel(y)).astype(X.dtype)
        sample_weight = by_class if sample_weight is None else sample_weight * by_class
        if not sample_weight.sum() > 0:
            raise ValueError("class_weight gives every sample weight zero; at least one "
                             "sample must have a positive weight")
    total = sample_weight.sum(dtype=np.float64)
    if not np.isfinite(total):
        raise ValueError(f"sample_weight must have a finite sum; got {total}")
    return np.ascontiguousarray(sample_weight)


def with_weights(sample_weight):
    """``Network.fit``'s keyword for the weights: none without them (the
    unweighted path, bitwise as before)."""
    return {} if sample_weight is None else {"sample_weight": sample_weight}
