"""fastnn_ext: the Cython kernels behind fastnn's ``cython`` backend.

``_kernels_<isa>`` (isa: ``avx512``, ``avx2``, ``baseline``) and their
``_kernels_<isa>_novec`` twins are one source (``_core.pxi``) compiled per x86-64
kernel set, with and without auto-vectorization; ``_cpu`` says which this CPU
runs. See setup.py for the flags and fastnn.backends.cython for the choice.

The extension is optional: an install without a C compiler has this package
but none of its modules, and :func:`build_status` says why.
"""

import json
import os

__all__ = ["build_status"]

_STATUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_build_status.json")


def build_status():
    """What setup.py built here, or None for a build that left no record.

    ``{"extension": True | reason, "kernel_sets": {isa: True | reason},
    "openmp": True | reason, "libmvec": [functions], "compiler": command}``:
    the extension as a whole, and each kernel set (with its novec twin), is
    ``True`` when built, else the reason it was not (no compiler, a failed
    compile and the compiler's error line, not requested, not x86-64).
    """
    try:
        with open(_STATUS, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None
