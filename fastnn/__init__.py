"""fastnn: the networks of "Neural Networks and Deep Learning", five ways.

The same math -- forward, cost, backward, batch gradient descent -- as the
lecture's explicit loops, a loop over examples, vectorized NumPy, Numba kernels
and a Cython extension, behind one :class:`Network`. ``X`` has shape (n_x, m), one column
per example; ``Y`` has shape (1, m); parameters are ``{"W1", "b1", ...}``.
"""

from . import backends, datasets, optimizers, schedules
from .gradcheck import gradient_check
from ._io import load
from .network import Network

__all__ = ["Network", "load", "gradient_check", "backends", "datasets", "optimizers", "schedules"]
__version__ = "0.1.0"
