"""fastnn_ext: the Cython kernels behind fastnn's ``cython`` backend.

``_kernels_<isa>`` (isa: ``avx512``, ``avx2``, ``baseline``) and their
``_kernels_<isa>_novec`` twins are one source (``_core.pxi``) compiled per x86-64
kernel set, with and without auto-vectorization; ``_cpu`` says which this CPU
runs. See setup.py for the flags and fastnn.backends.cython for the choice.
"""
