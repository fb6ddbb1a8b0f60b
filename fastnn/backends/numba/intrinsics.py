"""The ``numba`` backend's intrinsics: a flat buffer's block as a matrix, and
the BLAS product into a given array, each lowered directly.

The engine room keeps parameters and activations in flat buffers and works on
(rows, cols) blocks of them. ``flat[o:o + r * c].reshape((r, c))`` says that,
but Numba lowers each slice and reshape to general code (bounds clipping, the
no-copy reshape search, its exception paths) at every one of a training
loop's ~30 call sites; LLVM then optimizes all of it, which was a large part
of a cold first fit's compile. :func:`view` builds the same C-contiguous view
from the buffer's data pointer in a handful of instructions. The engine room
computes every offset from the network's layout, so nothing is checked here.

:func:`dot_into` is ``np.dot(a, b, out)`` for C- or F-contiguous matrices:
Numba's own lowering of that call (the same BLAS gemm/gemv/dot choice, so
bitwise the same products), without the wrapper function Numba's ``np.dot``
overload compiles per layout combination (three compiles, each through
Numba's whole pipeline and LLVM, in a first fit).
"""

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np import linalg
from numba.np.arrayobj import make_array, populate_array

__all__ = ["view", "dot_into"]


@intrinsic
def view(typingctx, flat, offset, rows, cols):
    """``flat[offset:offset + rows * cols].reshape((rows, cols))``, unchecked:
    flat a 1-D C-contiguous array, offset/rows/cols integers; the view shares
    flat's memory (and keeps it alive)."""
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"):
        return None
    out = types.Array(flat.dtype, 2, "C")

    def codegen(context, builder, signature, args):
        src = make_array(signature.args[0])(context, builder, args[0])
        off, r, c = (context.cast(builder, v, t, types.intp)
                     for v, t in zip(args[1:], signature.args[1:]))
        dst = make_array(out)(context, builder)
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(flat.dtype)))
        populate_array(dst, data=builder.gep(src.data, [off]),
                       shape=cgutils.pack_array(builder, [r, c]),
                       strides=cgutils.pack_array(builder, [builder.mul(c, itemsize), itemsize]),
                       itemsize=itemsize, meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, out, dst._getvalue())

    return out(flat, offset, rows, cols), codegen


@intrinsic
def dot_into(typingctx, a, b, out):
    """``out = a @ b`` through BLAS, as ``np.dot(a, b, out)``: a (m, k), b (k, n)
    C- or F-contiguous, out (m, n) C-contiguous, one float dtype; out returned."""
    if not all(isinstance(x, types.Array) and x.ndim == 2 and x.layout in "CF"
               for x in (a, b, out)) or out.layout != "C":
        return None
    if a.dtype != b.dtype or a.dtype != out.dtype:
        raise TypingError("dot_into: a, b and out must have one dtype")

    def codegen(context, builder, signature, args):
        linalg.ensure_blas()
        return linalg.dot_3_mm(context, builder, signature, args)

    return out(a, b, out), codegen
