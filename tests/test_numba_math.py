"""The numba backend's polynomial exp/tanh/sigmoid against NumPy, float64 and float32."""

import numpy as np
import pytest

pytest.importorskip("numba")
simd_math = pytest.importorskip("fastnn.backends.numba.simd_math")


def _apply(kernel, x):
    out = np.empty_like(x)
    kernel(x, out)
    return out


def test_exp_matches_numpy_to_1e_14_over_the_whole_normal_range():
    x = np.concatenate([np.linspace(-708.0, 709.7, 400_001), np.linspace(-2.0, 2.0, 10_001),
                        [0.0, -0.0, 1e-300, -1e-300, 5e-324, 1e-10, -1e-10]])
    got = _apply(simd_math.exp_array, x)
    ref = np.exp(x)
    assert np.max(np.abs(got - ref) / ref) <= 1e-14


def test_exp_limits_are_those_of_np_exp():
    x = np.array([710.0, 1000.0, np.inf, -746.0, -1000.0, -np.inf, np.nan, 709.78])
    got = _apply(simd_math.exp_array, x)
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    np.testing.assert_array_equal(got[:7], ref[:7])
    assert np.isfinite(got[7]) and abs(got[7] / ref[7] - 1) <= 1e-14
    # subnormal results: a few ulp of the smallest normal, not garbage
    sub = np.linspace(-745.0, -709.0, 1001)
    assert np.max(np.abs(_apply(simd_math.exp_array, sub) - np.exp(sub))) <= 1e-320


def test_tanh_keeps_relative_precision_from_tiny_to_huge_z():
    z = np.concatenate([np.linspace(-25.0, 25.0, 200_001), np.geomspace(1e-300, 1.0, 2001),
                        -np.geomspace(1e-300, 1.0, 2001)])
    z = z[z != 0.0]
    got = _apply(simd_math.tanh_array, z)
    ref = np.tanh(z)
    assert np.max(np.abs(got - ref) / np.abs(ref)) <= 1e-14
    ends = _apply(simd_math.tanh_array, np.array([-1000.0, 1000.0, -np.inf, np.inf, 0.0, np.nan]))
    np.testing.assert_array_equal(ends[:5], [-1.0, 1.0, -1.0, 1.0, 0.0])
    assert np.isnan(ends[5])


def test_sigmoid_is_exactly_0_and_1_at_plus_minus_1000_without_nan():
    z = np.concatenate([np.linspace(-700.0, 36.0, 200_001), [-1000.0, 1000.0, -np.inf, np.inf]])
    got = _apply(simd_math.sigmoid_array, z)
    assert not np.isnan(got).any()
    np.testing.assert_array_equal(got[-4:], [0.0, 1.0, 0.0, 1.0])
    with np.errstate(over="ignore"):
        ref = 1.0 / (1.0 + np.exp(-z[:-4]))
    assert np.max(np.abs(got[:-4] - ref) / ref) <= 1e-14


def test_float32_activations_are_single_precision_accurate():
    z = np.linspace(-80.0, 80.0, 400_001).astype(np.float32)
    z = z[z != 0]
    z64 = z.astype(np.float64)
    tanh32, sig32 = _apply(simd_math.tanh_array, z), _apply(simd_math.sigmoid_array, z)
    assert tanh32.dtype == sig32.dtype == np.float32
    assert np.max(np.abs(tanh32 - np.tanh(z64)) / np.abs(np.tanh(z64))) <= 1e-6
    sig64 = 1.0 / (1.0 + np.exp(-z64))
    assert np.max(np.abs(sig32 - sig64) / sig64) <= 1e-6
    ends = np.float32([-1000.0, 1000.0, np.inf, -np.inf])
    np.testing.assert_array_equal(_apply(simd_math.sigmoid_array, ends), [0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(_apply(simd_math.tanh_array, ends), [-1.0, 1.0, 1.0, -1.0])


