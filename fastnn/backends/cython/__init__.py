"""Cython: runs of iterations (or epochs) in C (``fastnn_ext``), no Python per iteration.

The kernels live in ``fastnn_ext/``: the lecture page (``_lecture.pxi``, one
kernel per formula; ``_course2.pxi``, the second course's: the optimizers'
update rules, L2, dropout with the fit's hashed masks, the decay) and the
engine room (``_engine.pxi``: threads, the one-pass and Gram modes for a huge
first layer; ``_batches.pxi``: mini-batch epochs); ``_core.pxi`` is the index.
This package holds what Python does around them, a file per concern:

``engine.py``      the plans a forward, a backward and a fit run on, and
                   :func:`engine`, what the one training driver
                   (:mod:`fastnn.backends._base`) calls
``paths.py``       which kernel set runs (AVX-512, AVX2 + FMA, a baseline,
                   each with a novec twin; the best this CPU runs by default),
                   and :func:`settings`, which forces another path for a block
                   (``FASTNN_ISA`` does it from the environment)
``introspect.py``  :func:`info` and :func:`hot_code` (the kernels' machine code,
                   from objdump), for reports; never on a fit's path

Importing this package raises ImportError (``BackendUnavailable``, with the
reason setup.py recorded: no C compiler, MSVC, ...) when ``fastnn_ext`` is not
built; the backend registry then reports ``cython`` as unavailable and why.
"""

from .engine import AUTO_THREADS_MIN_WORK, backward, engine, forward
from .introspect import hot_code, info
from .paths import ISAS, built, current, isas, module, settings

__all__ = ["DESCRIPTION", "SLOW", "COMPILED", "HAS_GRAM", "HAS_OPTIMIZERS", "OPTIMIZER_NAMES",
           "HAS_SAMPLE_WEIGHT", "HAS_POISSON", "HAS_ROW_BATCHES", "AUTO_THREADS_MIN_WORK",
           "forward", "backward", "engine", "info", "hot_code", "settings", "current", "isas",
           "built", "module", "ISAS"]

DESCRIPTION = ("Cython fastnn_ext: training loop (and mini-batch epochs) in C, AVX-512/AVX2 "
               "kernels picked at run time, own GEMM and small-product tiles, "
               "libmvec-vectorized activations, OpenMP over examples")
SLOW = False
COMPILED = True
HAS_GRAM = True
HAS_OPTIMIZERS = True
#: Per-example weights (the kernels scale dZ_L's columns and take every mean
#: over their sum; a batch's gathered with its columns) and the Poisson loss
#: with its exp output, on every path the engine trains.
HAS_SAMPLE_WEIGHT = True
HAS_POISSON = True
#: The mini-batch engine gathers each batch from X's rows: an F-contiguous X
#: (X.T C-contiguous, as scikit-learn's X transposed) is read in place.
HAS_ROW_BATCHES = True
#: The update rules the kernels train (``Optimizer.name``): the course's four
#: and scikit-learn's two (``_course2.pxi``'s update_parameters).
OPTIMIZER_NAMES = frozenset({"gd", "momentum", "rmsprop", "adam", "sklearn_sgd",
                             "sklearn_adam"})
