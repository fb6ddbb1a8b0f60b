"""Checks of per-example weights and of the Poisson loss: ``sample_weight``
(``fit``, ``cost``, ``backward``), and which backends take them (the
``HAS_SAMPLE_WEIGHT`` and ``HAS_POISSON`` capabilities). Each raises
``TypeError`` or ``ValueError`` naming the argument and what was expected,
before any work.
"""

import numpy as np

from . import _validation_optim as _vo

__all__ = ["check_sample_weight", "check_backend_takes"]


def _refuse(capability, what, backend):
    from . import backends

    raise ValueError(f"{what} needs a backend with {capability}: one of "
                     f"{backends.having(capability)}; this network runs on {backend!r}")


def check_sample_weight(sample_weight, m, dtype, backend, module):
    """None, or per-example weights as a new C-contiguous 1-D array of shape (m,)
    in ``dtype``: array_like of shape (m,) or (1, m), real, finite, >= 0 (all
    zeros too: the weighted mean over a zero sum is 0, as for a mini-batch of
    zero weights), representable in ``dtype``; on a backend (named ``backend``, its ``module``) with
    ``HAS_SAMPLE_WEIGHT``."""
    if sample_weight is None:
        return None
    if not getattr(module, "HAS_SAMPLE_WEIGHT", False):
        _refuse("HAS_SAMPLE_WEIGHT", "sample_weight", backend)
    array = _vo.check_numeric_array("sample_weight", sample_weight)
    if array.shape not in ((m,), (1, m)):
        raise ValueError(f"sample_weight must have shape ({m},) (or (1, {m})), one weight per "
                         f"example of X; got shape {array.shape}")
    array = np.array(array.reshape(m), dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
    if bad.size:
        raise ValueError(f"sample_weight must hold finite numbers >= 0; it holds "
                         f"{array[bad[0]]} at index {int(bad[0])}")
    with np.errstate(over="ignore"):  # a weight past float32's range: refused just below
        out = np.ascontiguousarray(array, dtype=dtype)
    if not np.all(np.isfinite(out)) or (np.sum(array) > 0
                                        and not np.sum(out, dtype=np.float64) > 0):
        raise ValueError(f"sample_weight must be representable in {np.dtype(dtype).name}; got "
                         f"values that overflow or vanish in it")
    return out


def check_backend_takes(loss, backend, module):
    """Refuse the ``poisson`` loss (its ``exp`` output) on a backend without
    ``HAS_POISSON``."""
    if loss == "poisson" and not getattr(module, "HAS_POISSON", False):
        _refuse("HAS_POISSON", "the poisson loss (an exp output)", backend)
