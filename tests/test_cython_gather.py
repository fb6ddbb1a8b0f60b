"""The mini-batch gather's prefetches are in the compiled kernels.

The gather asks for each example's rows of X^T and Y^T GATHER_AHEAD examples
before it copies them (``fastnn_prefetch_span``, an ``asm volatile``
``prefetcht1`` on x86-64). Nothing numeric depends on them, so only the
binary can tell whether they are there: gcc once deleted every one of them
(a loop of ``__builtin_prefetch`` alone is dead code to it), silently.
"""

import platform
import re
import shutil

import pytest

from _helpers import require_backend

cb = require_backend("cython")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason="prefetcht1 is x86-64's; elsewhere __builtin_prefetch")
@pytest.mark.skipif(shutil.which("objdump") is None,
                    reason="objdump absent (apt-get install binutils)")
@pytest.mark.parametrize("isa", cb.ISAS)
def test_every_kernel_set_prefetches_the_rows_it_gathers_into_l2(isa):
    from fastnn.backends.cython import introspect

    if isa not in cb.isas():
        pytest.skip(f"this CPU (or build) cannot run the {isa} kernels; it runs {cb.isas()}")
    with cb.settings(isa=isa):
        ext = introspect._active()
    stem = ext.__name__.rsplit(".", 1)[1]
    # _gather_chunk, inlined into _stage (the batch stage that runs it) or not,
    # in its two fused specializations (0: float32, 1: float64); gcc may split
    # either into .cold/.part/.constprop pieces.
    where = re.compile(rf"^__pyx_fuse_([01])__pyx_f_10fastnn_ext_{len(stem)}{stem}_"
                       rf"(_stage|_gather_chunk)(\.\w+)*$")
    found = {"0": [], "1": []}
    for name, asm in introspect._functions(ext.__file__).items():
        match = where.match(name)
        if match:
            found[match.group(1)].append(asm)
    for fused, dtype in (("0", "float32"), ("1", "float64")):
        assert found[fused], f"no {dtype} _stage or _gather_chunk in {ext.__file__}"
        assert any("prefetcht1" in asm for asm in found[fused]), \
            f"no prefetcht1 in the {dtype} gather: its prefetches are gone"
