# Design: the fastnn kernels, _kernels_novec build; the source and its design notes are in _core.pxi.
# cython: language_level=3
include "_core.pxi"
