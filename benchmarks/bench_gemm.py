"""fastnn's own GEMM (``fastnn_ext/_gemm.h``) against BLAS, one thread, on the
products the networks run.

The cython backend runs one single-threaded GEMM per OpenMP thread on its
chunk of examples, so the wide net's products are timed at the per-thread
size: m = 10 000 split in two chunks of 5000 columns, read in place from the
full arrays (row stride 10 000) as the backend reads them. The deep net's
first layer is timed whole (m = 209). Every implementation runs through
the same entry (``fastnn_ext._testing.gemm``: the kernel module's own gemm), BLAS
limited to one thread, and the result is checked against a float64 NumPy
product after timing.

Group ``gemm-<product>``; ``extra_info`` carries ``impl`` (own <isa> / blas),
``dtype``, ``M``, ``N``, ``K``, ``kernel`` and ``flops`` (2 M N K), so
GFLOP/s is ``flops / time``. ``own avx512`` and ``own avx2`` force that
kernel set; on a CPU that cannot run it the case is skipped.
"""

import numpy as np
import pytest

from ._harness import MODE, ci, require_backend

#: (M, K, N, layout of A, layout of B) per product. Layouts: "row" a C-ordered
#: array; "row^T" the transpose of one; "chunk" the first half of the columns
#: of a C-ordered array twice as wide (one thread's examples); "chunk^T" its
#: transpose.
PRODUCTS = {
    "wide Z1 = W1 X": (256, 784, 5000, "row", "chunk"),
    "wide dW1 = dZ1 X^T": (256, 5000, 784, "chunk", "chunk^T"),
    "wide dA1 = W2^T dZ2": (256, 128, 5000, "row^T", "chunk"),
    "wide Z2 = W2 A1": (128, 256, 5000, "row", "chunk"),
    "wide dW2 = dZ2 A1^T": (128, 5000, 256, "chunk", "chunk^T"),
    "deep Z1 = W1 X": (20, 12288, 209, "row", "row"),
    "deep dW1 = dZ1 X^T": (20, 209, 12288, "row", "row^T"),
}
QUICK = ("wide Z1 = W1 X", "deep Z1 = W1 X")
#: max |C - C_ref| / max |C_ref| against the float64 product of the same
#: (rounded) operands: about 10x what either implementation shows here
#: (<= 1.1e-15 float64, <= 7.4e-7 float32).
RTOL = {"float64": 1e-14, "float32": 1e-5}


def _operand(rows, cols, layout, dtype, rng):
    if layout == "row":
        return rng.standard_normal((rows, cols)).astype(dtype)
    if layout == "row^T":
        return rng.standard_normal((cols, rows)).astype(dtype).T
    if layout == "chunk":
        return rng.standard_normal((rows, 2 * cols)).astype(dtype)[:, :cols]
    if layout == "chunk^T":
        return rng.standard_normal((cols, 2 * rows)).astype(dtype)[:, :rows].T
    raise ValueError(f"unknown layout {layout!r}")


_last = {}


def _operands(product, dtype):
    """A, B and the float64 product for ``product`` (the last one kept: a wide
    product's full X is 63 MB)."""
    key = (product, dtype)
    if key not in _last:
        _last.clear()
        M, K, N, la, lb = PRODUCTS[product]
        rng = np.random.default_rng(0)
        A, B = _operand(M, K, la, dtype, rng), _operand(K, N, lb, dtype, rng)
        _last[key] = A, B, A.astype(np.float64) @ B.astype(np.float64)
    return _last[key]


#: The implementations timed: fastnn's GEMM in each kernel set that has one
#: (forced with ``settings(isa=...)``, so an AVX-512 machine times both), and BLAS.
IMPLS = ["own avx512", "own avx2", "blas"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("product", list(PRODUCTS))
def test_gemm(benchmark, product, impl, dtype):
    if MODE == "quick" and not ci(benchmark) and product not in QUICK:
        pytest.skip("FASTNN_BENCH=quick times two products")
    cb = require_backend("cython")
    from fastnn.backends import _blas
    from fastnn.backends.cython import paths
    from fastnn_ext._testing import gemm as gemm_check

    gemm, _, isa = impl.partition(" ")
    if isa and isa not in cb.isas():
        pytest.skip(f"this CPU (or build) cannot run the {isa} kernels; it runs {cb.isas()}")
    M, K, N, _, _ = PRODUCTS[product]
    A, B, ref = _operands(product, dtype)
    C = np.empty((M, N), dtype)
    benchmark.group = f"gemm-{product}"
    with cb.settings(isa=isa or None, gemm=gemm), _blas.limit(1):
        ext = paths.active()
        benchmark.extra_info.update(impl=impl, dtype=dtype, M=M, N=N, K=K, flops=2 * M * N * K,
                                    threads=1, kernel=ext.GEMM_KERNEL, blas=_blas.describe())
        gemm_check(ext, A, B, C, 1.0, 0.0)  # warm-up: packing buffers, BLAS start-up
        benchmark(gemm_check, ext, A, B, C, 1.0, 0.0)
    err = float(np.max(np.abs(C - ref))) / float(np.max(np.abs(ref)))
    benchmark.extra_info["max_rel_diff_vs_numpy"] = err
    assert err <= RTOL[dtype], f"{impl} {dtype} {product}: relative error {err:.2e}"
