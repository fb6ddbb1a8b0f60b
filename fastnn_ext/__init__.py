"""fastnn_ext: the Cython kernels behind fastnn's ``cython`` backend.

``_kernels`` and ``_kernels_novec`` are the same source (``_core.pxi``) built
with and without auto-vectorization; see setup.py for the flags.
"""
