"""Tests of dctconv.verify._checks: every check passes on the real transform, on an
independent scipy implementation, and FAILS on a deliberately wrong one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from references import (
    SAMPLE_NAMES,
    SAMPLES,
    reference_blockwise_dct,
    reference_blockwise_idct,
    tolerance,
)

from dctconv.verify import _checks as v
from dctconv.io._npz import CoefficientHeader, load_coefficients, save_coefficients
from dctconv.io._images import read_image
from dctconv.kernels import dct_kernels, dct_matrix
from dctconv.transform import forward, inverse

# ---------------------------------------------------------------- deliberately wrong parts


def transposed_kernels_forward(image, n):
    """Forward whose channel x*n+y uses kernel K[y,x], which is K[x,y] transposed."""
    c = forward(image, n)
    return c.reshape(n, n, *c.shape[1:]).transpose(1, 0, 2, 3).reshape(c.shape)


def shifted_forward(image, n):
    """Forward of the image shifted one pixel to the right (an off-by-one in the patch grid)."""
    return forward(np.roll(image, 1, axis=1), n)


def scaled_forward(image, n):
    return 1.01 * forward(image, n)


def lossy_inverse(coefficients, image_shape=None):
    """Inverse that rounds the pixels: fine for a picture, wrong as a transform."""
    return np.rint(inverse(coefficients, image_shape))


def transposed_kernels_inverse(coefficients, image_shape=None):
    nn = coefficients.shape[0]
    n = math.isqrt(nn)
    swapped = coefficients.reshape(n, n, *coefficients.shape[1:]).transpose(1, 0, 2, 3)
    return inverse(swapped.reshape(coefficients.shape), image_shape)


def transposed_kernels(n):
    return dct_kernels(n).transpose(0, 2, 1)


def dc_scale_bug_kernels(n):
    """The classic bug: a(0) = sqrt(2/n) like the other frequencies."""
    c = dct_matrix(n)
    c[0] *= math.sqrt(2)
    return np.einsum("xi,yj->xyij", c, c).reshape(n * n, n, n)


def random_image(rng, shape=(40, 56)):
    return 255 * rng.random(shape)


# ---------------------------------------------------------------- they pass on the real thing


@pytest.mark.parametrize("n", [2, 3, 4, 8, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_checks_pass(n, dtype):
    assert v.check_kernels_orthonormal(n, dtype=dtype).passed
    assert v.check_adjoint(n, dtype=dtype).passed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scale_n4_passes(dtype):
    result = v.check_scale_n4(dtype=dtype)
    assert result.passed and result.block_size == 4


def test_builtin_images_pass_for_block_sizes_2_to_16():
    results = v.run_checks(range(2, 17))
    failed = [r for r in results if not r.passed]
    assert failed == []
    assert {r.block_size for r in results} == set(range(2, 17))
    # every check ran, n = 4 scale included
    assert {r.name for r in results} == {
        v.KERNELS_ORTHONORMAL, v.FORWARD_IS_CORRELATION, v.FORWARD_IS_DCTN, v.ROUND_TRIP, v.PARSEVAL,
        v.ADJOINT, v.ZEROING_ENERGY, v.SCALE_N4, v.FILE_ROUND_TRIP, v.RESIDUAL_GRADIENT,
    }


# coins (303 rows: padding) and text (small, sharp) at every block size from 2 to 16; the two
# 512 x 512 images, which cost 3 times more each, at a spread of sizes to keep the suite short
# (README: a run of `dctconv verify sample_images/*.png -n N` for every N from 2 to 16 passes).
SAMPLE_BLOCK_SIZES = {
    "coins.png": range(2, 17),
    "text.png": range(2, 17),
    "camera.png": (2, 4, 7, 8, 16),
    "astronaut.png": (3, 4, 5, 8, 13),
}


@pytest.mark.parametrize("name", SAMPLE_NAMES)
def test_sample_images_pass(name):
    image, _ = read_image(SAMPLES / name)
    block_sizes = SAMPLE_BLOCK_SIZES[name]
    results = v.image_checks(image, block_sizes, label=name)
    assert [r for r in results if not r.passed] == []
    assert len(results) == len(block_sizes) * 6


def test_checks_accept_an_independent_implementation(rng):
    """The scipy-per-block reference of references.py, handed in as the transform, passes too:
    the checks test the mathematics, not dctconv's particular code."""
    image = random_image(rng, (37, 23))
    n = 4

    def scipy_forward(img, block_size):
        return reference_blockwise_dct(img, block_size)

    def scipy_inverse(c, shape=None):
        nn, rows, cols = c.shape
        size = math.isqrt(nn)
        return reference_blockwise_idct(c, shape or (rows * size, cols * size))

    assert v.check_forward_is_correlation(image, n, forward=scipy_forward).passed
    assert v.check_forward_is_dctn(image, n, forward=scipy_forward).passed
    assert v.check_round_trip(image, n, forward=scipy_forward, inverse=scipy_inverse).passed
    assert v.check_parseval(image, n, forward=scipy_forward).passed
    assert v.check_adjoint(n, forward=scipy_forward, inverse=scipy_inverse).passed
    assert v.check_zeroing_energy(image, n, forward=scipy_forward, inverse=scipy_inverse).passed
    assert v.check_file_round_trip(image, n, forward=scipy_forward, inverse=scipy_inverse).passed


# ---------------------------------------------------------------- each check can fail


@pytest.mark.parametrize("wrong", [dc_scale_bug_kernels, lambda n: 1.01 * dct_kernels(n)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check1_fails_on_non_orthonormal_kernels(wrong, dtype):
    result = v.check_kernels_orthonormal(4, dtype=dtype, kernels=wrong)
    assert not result.passed
    assert result.max_error > 1e3 * result.tolerance


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("wrong", [
    {"forward": transposed_kernels_forward},
    {"forward": shifted_forward},
    {"kernels": transposed_kernels},  # reference built with other kernels than forward's
])
def test_check2_fails(rng, wrong, dtype):
    result = v.check_forward_is_correlation(random_image(rng).astype(dtype), 4, **wrong)
    assert not result.passed


@pytest.mark.parametrize("wrong", [transposed_kernels_forward, shifted_forward, scaled_forward])
def test_check3_fails(rng, wrong):
    assert not v.check_forward_is_dctn(random_image(rng), 4, forward=wrong).passed


@pytest.mark.parametrize("wrong", [
    {"inverse": lossy_inverse},
    {"forward": shifted_forward},
    {"inverse": lambda c, shape=None: inverse(c)[-shape[0]:, -shape[1]:]},  # crops the wrong corner
])
def test_check4_fails(rng, wrong):
    assert not v.check_round_trip(random_image(rng, (37, 23)), 4, **wrong).passed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_check5_fails_on_a_wrong_scale(rng, dtype):
    result = v.check_parseval(random_image(rng).astype(dtype), 4, forward=scaled_forward)
    assert not result.passed


def test_check5_fails_when_padding_is_not_edge_padding(rng):
    def zero_padded_forward(image, n):
        h, w = image.shape
        return forward(np.pad(image, ((0, -h % n), (0, -w % n))), n)

    assert not v.check_parseval(random_image(rng, (37, 23)), 4, forward=zero_padded_forward).passed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("wrong", [
    {"inverse": transposed_kernels_inverse},
    {"inverse": lossy_inverse},
    {"forward": scaled_forward},
])
def test_check6_fails(wrong, dtype):
    assert not v.check_adjoint(4, dtype=dtype, **wrong).passed


@pytest.mark.parametrize("wrong", [
    {"inverse": lossy_inverse},
    {"forward": lambda image, n: 2 * forward(image, n)},
    {"inverse": transposed_kernels_inverse},
])
def test_check7_fails(rng, wrong):
    assert not v.check_zeroing_energy(random_image(rng), 4, **wrong).passed


@pytest.mark.parametrize("wrong", [
    transposed_kernels,
    dc_scale_bug_kernels,
    lambda n: dct_kernels(n) / 4,  # a(x) a(y) = d(x) d(y), the factor 4 forgotten
])
def test_check8_fails(wrong):
    assert not v.check_scale_n4(kernels=wrong).passed


def test_check9_fails_on_a_lossy_save(rng):
    def save_as_float32(path, coefficients, header):
        save_coefficients(path, coefficients.astype(np.float32).astype(np.float64), header)

    result = v.check_file_round_trip(random_image(rng), 4, save=save_as_float32)
    assert not result.passed and 0 < result.max_error < 1e-3


def test_check9_fails_on_a_changed_dtype(rng):
    def save_float32(path, coefficients, header):
        save_coefficients(path, coefficients.astype(np.float32), header)

    result = v.check_file_round_trip(random_image(rng), 4, save=save_float32)
    assert not result.passed and result.max_error == math.inf
    assert "float32" in result.detail


def test_check9_fails_on_a_corrupted_file(rng):
    def save_then_corrupt(path, coefficients, header):
        save_coefficients(path, coefficients, header)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    result = v.check_file_round_trip(random_image(rng), 4, save=save_then_corrupt)
    assert not result.passed
    assert result.detail.startswith("written file did not load")


def test_check9_fails_on_a_wrong_header(rng):
    def load_transposed_shape(path):
        coefficients, header = load_coefficients(path)
        return coefficients, CoefficientHeader(header.block_size, header.image_shape[::-1], header.image_mode)

    result = v.check_file_round_trip(random_image(rng), 4, load=load_transposed_shape)
    assert not result.passed and "header" in result.detail


# ---------------------------------------------------------------- the numbers reported


def test_max_error_is_the_injected_error(rng):
    """A forward off by 0.25 in one coefficient is reported as off by 0.25, at any block size."""
    image = random_image(rng)

    def off_by_a_quarter(img, n):
        c = forward(img, n)
        c[n + 2, 1, 2] += 0.25
        return c

    for check in (v.check_forward_is_correlation, v.check_forward_is_dctn):
        result = check(image, 4, forward=off_by_a_quarter)
        assert not result.passed
        # the rest of the difference is float64 rounding at magnitude n * 255
        assert abs(result.max_error - 0.25) <= tolerance(np.float64, 4 * 255)


def test_tolerance_table():
    # eps from IEEE 754: 2**-52 and 2**-23
    assert v.EPSILON[np.dtype(np.float64)] == 2.0**-52
    assert v.EPSILON[np.dtype(np.float32)] == 2.0**-23
    assert v.tolerance(np.float64, terms=19, magnitude=1020) == 2.0**-52 * 19 * 1020
    assert v.tolerance(np.uint8, terms=1, magnitude=1) == 2.0**-52  # uint8 images compute in float64
    assert v.product_terms(8) == 67


def test_correlation_is_cropped_on_large_images(rng):
    image = random_image(rng, (300, 200))
    result = v.check_forward_is_correlation(image, 4, label="big")
    assert result.passed and result.input == "big (bottom-right 128x128)"
    # the corner holds the padding: an error in the last (padded) block row is caught
    def wrong_last_row(img, n):
        c = forward(img, n)
        c[0, -1, -1] += 1.0
        return c

    assert not v.check_forward_is_correlation(image, 4, forward=wrong_last_row).passed
    # n = 16: 2 x 2 blocks still fit the budget
    assert v.check_forward_is_correlation(image, 16, label="big").input == "big (bottom-right 32x32)"


def test_as_dict_has_the_json_keys_and_no_infinity():
    result = v.CheckResult("x", False, math.inf, 0.0, 4, "in", "why")
    assert result.as_dict() == {
        "name": "x", "passed": False, "max_error": None, "tolerance": 0.0, "block_size": 4, "input": "in",
    }




# ---------------------------------------------------------------- 10. a residual block's chain rule


@pytest.mark.parametrize("n", [2, 3, 8, 16])
def test_residual_gradient_passes(n):
    result = v.check_residual_gradient(n)
    assert result.passed, result
    assert result.name == v.RESIDUAL_GRADIENT and result.block_size == n


def test_residual_gradient_fails_for_a_wrong_transform_and_names_the_terms():
    scaled = v.check_residual_gradient(4, forward=lambda x, n: 1.01 * forward(x, n))
    assert not scaled.passed and scaled.max_error > 1e3 * scaled.tolerance
    assert "dF/dx" in scaled.detail and "dG/dx, S' = 0" in scaled.detail
    shifted = v.check_residual_gradient(4, inverse=lambda c: np.roll(inverse(c), 1, axis=-1))
    assert not shifted.passed and shifted.max_error > 0.1


def test_soft_shrink_is_sign_times_the_excess():
    c = np.array([-3.0, -1.0, 0.0, 0.5, 2.5])
    np.testing.assert_array_equal(v.soft_shrink(c, 1.0), [-2.0, 0.0, 0.0, 0.0, 1.5])
