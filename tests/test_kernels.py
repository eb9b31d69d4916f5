import math

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st

from references import TOLERANCE, textbook_kernel
from dctconv import dct_kernels
from dctconv.errors import InvalidBlockSizeError
from dctconv.kernels import dct_matrix, kernel_matrix


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16])
def test_kernels_match_textbook_formula(n):
    kernels = dct_kernels(n)
    assert kernels.shape == (n * n, n, n)
    for x in range(n):
        for y in range(n):
            np.testing.assert_allclose(
                kernels[x * n + y], textbook_kernel(n, x, y), rtol=0, atol=TOLERANCE[np.dtype(np.float64)]
            )


@pytest.mark.parametrize("n", [2, 4, 7, 8, 32])
def test_kernels_are_orthonormal(n):
    weights = kernel_matrix(n)
    np.testing.assert_allclose(weights @ weights.T, np.eye(n * n), rtol=0, atol=1e-13)
    np.testing.assert_allclose(weights.T @ weights, np.eye(n * n), rtol=0, atol=1e-13)


@pytest.mark.parametrize("n", [2, 4, 9, 64])
def test_dct_matrix_is_scipy_ortho_dct(n):
    # scipy.fft.dct of the identity's columns gives the DCT-II matrix column by column.
    np.testing.assert_allclose(dct_matrix(n), scipy.fft.dct(np.eye(n), axis=0, norm="ortho"), atol=1e-14)


def test_four_by_four_scale_is_4_d_x_d_y():
    # DEVELOPERS.md: for n = 4, a(x) a(y) = 4 d(x) d(y), d(0) = 1/4, d(k > 0) = sqrt(2)/4.
    d = [0.25] + [math.sqrt(2) / 4] * 3
    kernels = dct_kernels(4)
    for x in range(4):
        for y in range(4):
            cosines = np.outer(
                np.cos(np.pi * (np.arange(4) + 0.5) * x / 4), np.cos(np.pi * (np.arange(4) + 0.5) * y / 4)
            )
            np.testing.assert_allclose(kernels[x * 4 + y], 4 * d[x] * d[y] * cosines, atol=1e-15)


def test_dc_kernel_is_constant_over_n():
    # a(0)^2 = 1/n: the DC coefficient of a patch is n times its mean.
    for n in (2, 4, 8):
        np.testing.assert_allclose(dct_kernels(n)[0], np.full((n, n), 1.0 / n))


def test_default_block_size_is_4():
    assert dct_kernels().shape == (16, 4, 4)


@pytest.mark.parametrize("bad", [0, 1, 65, -4, 2.0, "4", True, None])
def test_bad_block_size_is_refused(bad):
    with pytest.raises(InvalidBlockSizeError):
        dct_kernels(bad)


def test_block_size_64_kernels_are_outer_products_of_scipy_dct():
    # The textbook loop is too slow at n = 64 (16 M terms); scipy's DCT matrix stands in.
    c = scipy.fft.dct(np.eye(64), axis=0, norm="ortho")
    kernels = dct_kernels(64)
    for channel in (0, 1, 64, 65, 2017, 4095):
        x, y = divmod(channel, 64)
        np.testing.assert_allclose(kernels[channel], np.outer(c[x], c[y]), atol=1e-15)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 64), seed=st.integers(0, 2**32 - 1))
def test_kernel_transform_keeps_inner_products(n, seed):
    # Orthonormal kernels: <K u, K v> = <u, v> for any two patches u, v.
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, n * n))
    weights = kernel_matrix(n)
    assert abs((weights @ u) @ (weights @ v) - u @ v) <= 1e-12 * n * n
