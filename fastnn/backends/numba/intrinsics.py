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
overload compiles per layout combination and the shape check it compiles as
another (each through Numba's whole pipeline and LLVM, in a first fit).

:func:`prefetch_row` asks for a row of a matrix ahead of its use (LLVM's
``llvm.prefetch``, a ``prefetcht1`` on x86-64), which Numba has no way to say.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.core.errors import TypingError
from numba.extending import intrinsic
from numba.np import linalg
from numba.np.arrayobj import make_array, populate_array

__all__ = ["view", "dot_into", "prefetch_row"]


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


def _gemm_codegen(context, builder, signature, args):
    """Numba's ``np.dot(a, b, out)`` lowering for matrices (``linalg.dot_3_mm``)
    minus its shape check, which Numba compiles as a function of its own per
    layout combination: the callers' shapes come from the network's layout.
    The same BLAS choice: dot for (1, k) x (k, 1), gemv when either side is a
    vector, else gemm."""
    xty, yty, outty = signature.args
    x, y, out = (make_array(t)(context, builder, v) for t, v in zip(signature.args, args))
    x_shapes = cgutils.unpack_tuple(builder, x.shape)
    y_shapes = cgutils.unpack_tuple(builder, y.shape)
    out_shapes = cgutils.unpack_tuple(builder, out.shape)
    m, k = x_shapes
    n = y_shapes[1]
    for size in (m, k, n):
        linalg.check_c_int(context, builder, size)
    zero, one = context.get_constant(types.intp, 0), context.get_constant(types.intp, 1)
    is_empty = builder.or_(builder.icmp_signed("==", k, zero),
                           builder.or_(builder.icmp_signed("==", m, zero),
                                       builder.icmp_signed("==", n, zero)))
    with builder.if_else(is_empty, likely=False) as (empty, nonempty):
        with empty:
            cgutils.memset(builder, out.data, builder.mul(out.itemsize, out.nitems), 0)
        with nonempty:
            is_left_vec = builder.icmp_signed("==", m, one)
            with builder.if_else(builder.icmp_signed("==", n, one)) as (r_vec, r_mat):
                with r_vec:
                    with builder.if_else(is_left_vec) as (v_v, m_v):
                        with v_v:
                            linalg.call_xxdot(context, builder, False, xty.dtype, k, x.data,
                                              y.data, out.data)
                        with m_v:
                            linalg.call_xxgemv(context, builder, xty.layout == outty.layout, xty,
                                               x_shapes, x.data, y.data, out.data)
                with r_mat:
                    with builder.if_else(is_left_vec) as (v_m, m_m):
                        with v_m:
                            linalg.call_xxgemv(context, builder, yty.layout != outty.layout, yty,
                                               y_shapes, y.data, x.data, out.data)
                        with m_m:
                            linalg.call_xxgemm(context, builder, xty, x_shapes, x.data, yty,
                                               y_shapes, y.data, outty, out_shapes, out.data)
    return impl_ret_borrowed(context, builder, outty, out._getvalue())


@intrinsic
def dot_into(typingctx, a, b, out):
    """``out = a @ b`` through BLAS, as ``np.dot(a, b, out)``: a (m, k), b (k, n)
    C- or F-contiguous, out (m, n) C-contiguous, one float dtype; out returned.
    The shapes are not checked: the callers' come from the network's layout."""
    if not all(isinstance(x, types.Array) and x.ndim == 2 and x.layout in "CF"
               for x in (a, b, out)) or out.layout != "C":
        return None
    if a.dtype != b.dtype or a.dtype != out.dtype:
        raise TypingError("dot_into: a, b and out must have one dtype")

    def codegen(context, builder, signature, args):
        linalg.ensure_blas()
        return _gemm_codegen(context, builder, signature, args)

    return out(a, b, out), codegen


@intrinsic
def _prefetch(typingctx, a, i, j):
    """Ask for the cache line holding ``a[i, j]`` (a 2-D C-contiguous array; not
    checked: a prefetch of any address is harmless), for reading, into L2
    (locality 2: x86-64's ``prefetcht1``)."""
    if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
        return None

    def codegen(context, builder, signature, args):
        arr = make_array(signature.args[0])(context, builder, args[0])
        row, col = (context.cast(builder, v, t, types.intp)
                    for v, t in zip(args[1:], signature.args[1:]))
        cols = cgutils.unpack_tuple(builder, arr.shape)[1]
        address = builder.gep(arr.data, [builder.add(builder.mul(row, cols), col)])
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [address.type, i32, i32, i32]),
            "llvm.prefetch.p0")
        builder.call(fn, [address, i32(0), i32(2), i32(1)])  # read, L2, data
        return context.get_dummy_value()

    return types.void(a, i, j), codegen


@njit(nogil=True, inline="always")
def prefetch_row(a, i):
    """Ask for every 64-byte line of row i of ``a`` (2-D, C-contiguous) ahead of
    its use: the mini-batch gather reads rows at random, which no hardware
    prefetcher foresees (:func:`.engine_room.gather_rows`)."""
    n = a.shape[1]
    for j in range(0, n, max(1, 64 // a.itemsize)):
        _prefetch(a, i, j)
    if n > 0:
        _prefetch(a, i, n - 1)  # the last line, when the row does not start one
