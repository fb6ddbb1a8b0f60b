"""glibc's mmap threshold while a Python engine trains, where the environment froze it.

glibc serves each allocation of at least its mmap threshold (128 KiB) with a
fresh mapping, whose pages the kernel zeroes one by one on first touch, and
normally raises that threshold when it sees such blocks freed: so the
temporaries of a training step (``Z``, ``A``, ``dZ`` of a mini-batch, a few
hundred KiB each) soon come from the heap and cost nothing to reuse. Setting any
of ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_`` or
``MALLOC_MMAP_MAX_`` in the environment freezes the threshold at 128 KiB -- and
Dask's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker it starts.
There each of the numpy backend's temporaries was a new mapping: a fit of the
sweeps benchmark's grid search (batch 256, 100-128-64-3) took 2.57 s instead of
1.21 s, and the numpy grid search under Dask ran slower than serially.

So while a fit runs on the driver's Python engine in such an environment, the
threshold is :data:`THRESHOLD` (as if glibc had raised it), and so is the top
pad, the free memory a trim leaves at the heap's top (without it, each step's
temporaries grew the heap and the 64 KiB trim gave it back: 1.58 s where 0.97
s is the norm). Both go back to the environment's ``MALLOC_MMAP_THRESHOLD_`` /
``MALLOC_TOP_PAD_`` or glibc's 128 KiB when the last such fit in the process
ends, and the heap's free top goes back to the system (``malloc_trim``); the
trim threshold the environment chose is never touched. Measured with
the change: 1.20 s for that fit (Zen 4). Elsewhere (no such variable, or not
glibc) nothing is touched.
"""

import contextlib
import ctypes
import ctypes.util
import os
import threading

__all__ = ["THRESHOLD", "frozen", "raise_threshold", "step_allocations"]

#: The mmap threshold and top pad while a Python engine trains (glibc's dynamic
#: ceiling on 64-bit is 32 MiB; a step's temporaries are far below this).
THRESHOLD = 16 << 20
_GLIBC_DEFAULT = 128 << 10
_DYNAMIC_MAX = 32 << 20  # glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # mallopt's parameter numbers (malloc.h)
_FREEZING = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
             "MALLOC_MMAP_MAX_")

_lock = threading.Lock()
_active = 0
_mallopt = None  # glibc's mallopt, found on first use (False: none here)
_malloc_trim = None
_libc = None


def frozen():
    """Whether the environment froze glibc's mmap threshold (see the module doc)."""
    return any(var in os.environ for var in _FREEZING)


def _libc_mallopt():
    """glibc's ``mallopt`` (and ``malloc_trim``), found once; False elsewhere.
    Published only when probed, so a concurrent first fit never sees half of it."""
    global _mallopt, _malloc_trim, _libc
    if _mallopt is None:
        found, trim = False, None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            if hasattr(libc, "gnu_get_libc_version"):  # glibc: mallopt's numbers apply
                found, trim = libc.mallopt, libc.malloc_trim
                found.argtypes, found.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
                libc.malloc.argtypes, libc.malloc.restype = [ctypes.c_size_t], ctypes.c_void_p
                libc.free.argtypes, libc.free.restype = [ctypes.c_void_p], None
                _libc = libc
        except OSError:
            pass
        _malloc_trim = trim
        _mallopt = found
    return _mallopt


def raise_threshold(nbytes):
    """Have glibc serve allocations below ``nbytes`` (at most 32 MiB) from its
    heap and keep up to twice that free at the heap's top, as it does on its
    own once it sees a block that large freed: one is mapped and freed here.

    Without it, calls that each allocate and free a few arrays of a few
    hundred KiB to a few MiB (L-BFGS's evaluations a block at a time) find the
    threshold at 128 KiB, or at most at their largest array, and the trim
    threshold at twice that: their arrays, freed together at the heap's top,
    went back to the system after each call and came back as pages the kernel
    zeroed on first touch (19 000 page faults per pass of the blocks'
    forwards over a 50 000 x 100 X; none after). Does nothing elsewhere (not
    glibc) or where the environment froze the threshold (:func:`step_allocations`
    holds it there)."""
    if not _libc_mallopt() or frozen():
        return
    nbytes = min(int(nbytes), _DYNAMIC_MAX - (64 << 10))  # its chunk, header included
    if nbytes > _GLIBC_DEFAULT:
        _libc.free(_libc.malloc(nbytes))


def _restored(var):
    """The value ``var`` gives its parameter, or glibc's default (128 KiB for both)."""
    try:
        return int(os.environ.get(var, _GLIBC_DEFAULT))
    except ValueError:
        return _GLIBC_DEFAULT


@contextlib.contextmanager
def step_allocations():
    """Hold the mmap threshold and the top pad at :data:`THRESHOLD` while the
    block runs, where the environment froze them on glibc; otherwise do nothing."""
    global _active
    mallopt = _libc_mallopt() if frozen() else False
    if not mallopt:
        yield
        return
    with _lock:
        _active += 1
        if _active == 1:
            mallopt(_M_MMAP_THRESHOLD, THRESHOLD)
            mallopt(_M_TOP_PAD, THRESHOLD)
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                mallopt(_M_MMAP_THRESHOLD, _restored("MALLOC_MMAP_THRESHOLD_"))
                mallopt(_M_TOP_PAD, _restored("MALLOC_TOP_PAD_"))
                _malloc_trim(0)  # the padded heap's free top back to the system
