"""The ``numba`` backend's view of a flat buffer as a matrix, built directly.

The engine room keeps parameters and activations in flat buffers and works on
(rows, cols) blocks of them. ``flat[o:o + r * c].reshape((r, c))`` says that,
but Numba lowers each slice and reshape to general code (bounds clipping, the
no-copy reshape search, its exception paths) at every one of a training
loop's ~30 call sites; LLVM then optimizes all of it, which was a large part
of a cold first fit's compile. :func:`view` builds the same C-contiguous view
from the buffer's data pointer in a handful of instructions. The engine room
computes every offset from the network's layout, so nothing is checked here.
"""

from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

__all__ = ["view"]


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
