"""The forward block DCT as a strided convolution, and its inverse as a transposed one."""

from __future__ import annotations

import math

import numpy as np

from .errors import InvalidCoefficientsError, InvalidImageError
from .kernels import DEFAULT_BLOCK_SIZE, check_block_size, kernel_matrix

# Bytes of float data per strip: small enough that a strip, its patch matrix and its
# output stay in a 2-core machine's L2/L3 cache between the copy and the matmul.
STRIP_BYTES = 1 << 20


def check_image(image) -> np.ndarray:
    """Return ``image`` as a 2-D real ndarray, or raise InvalidImageError."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise InvalidImageError(
            f"image must be 2-D (rows, columns), got an array of shape {image.shape}"
        )
    if image.size == 0:
        raise InvalidImageError(f"image is empty (shape {image.shape})")
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == bool) or np.iscomplexobj(image):
        raise InvalidImageError(f"image must hold real numbers, got dtype {image.dtype}")
    return image


def check_coefficients(coefficients) -> tuple[np.ndarray, int]:
    """Return ``coefficients`` as an ndarray and its block size, or raise InvalidCoefficientsError."""
    coefficients = np.asarray(coefficients)
    if coefficients.ndim != 3:
        raise InvalidCoefficientsError(
            "coefficients must be 3-D (n*n, block rows, block columns), "
            f"got an array of shape {coefficients.shape}"
        )
    channels, rows, cols = coefficients.shape
    n = math.isqrt(channels)
    if n * n != channels or not 2 <= n <= 64:
        raise InvalidCoefficientsError(
            f"coefficients have {channels} channels, which is not n*n for a block size n from 2 to 64"
        )
    if rows == 0 or cols == 0:
        raise InvalidCoefficientsError(f"coefficients are empty (shape {coefficients.shape})")
    if not np.issubdtype(coefficients.dtype, np.number) or np.iscomplexobj(coefficients):
        raise InvalidCoefficientsError(
            f"coefficients must hold real numbers, got dtype {coefficients.dtype}"
        )
    return coefficients, n


def work_dtype(dtype) -> np.dtype:
    """Return float32 for float32 input and float64 for anything else."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float32 else np.dtype(np.float64)


def blocks_shape(image_shape, block_size: int) -> tuple[int, int]:
    """Return (block rows, block columns) of an image of ``image_shape``: its sides over n, rounded up."""
    height, width = image_shape
    return -(-height // block_size), -(-width // block_size)


def _strips(block_rows: int, row_bytes: int):
    """Yield (first, stop) block-row ranges of about STRIP_BYTES each."""
    per_strip = max(1, STRIP_BYTES // max(1, row_bytes))
    for first in range(0, block_rows, per_strip):
        yield first, min(block_rows, first + per_strip)


def _padded_strip(image: np.ndarray, top: int, bottom: int, width: int, dtype) -> np.ndarray:
    """Rows top:bottom of the edge-padded image, ``width`` columns wide, as ``dtype``."""
    height, image_width = image.shape
    strip = np.empty((bottom - top, width), dtype)
    real = min(bottom, height) - top
    strip[:real, :image_width] = image[top : top + real]
    if width > image_width:
        strip[:real, image_width:] = strip[:real, image_width - 1 : image_width]
    if real < bottom - top:
        strip[real:] = strip[real - 1]
    return strip


def forward(image, block_size: int = DEFAULT_BLOCK_SIZE) -> np.ndarray:
    r"""Block DCT-II of an image, computed as a stride-n convolution with n*n kernels.

    The image is cut into non-overlapping n x n patches. For the patch whose top-left
    pixel is (n r, n s) the output holds, in channel ``x*n + y``,

    .. math::

        c_{x,y}(r, s) = \sum_{i=0}^{n-1}\sum_{j=0}^{n-1} K_{x,y}(i, j)\, u(n r + i, n s + j)

    with :math:`K_{x,y}` from :func:`dct_kernels`. That is a correlation with stride n (a
    convolutional layer with n*n output channels, kernel size n, stride n, no bias), and
    it equals ``scipy.fft.dctn(patch, norm="ortho")[x, y]`` for every patch.

    Because the stride equals the kernel size, the patches do not overlap and im2col is
    a reshape: the layer is a single matrix product of the (n*n, n*n) kernel matrix with
    the (n*n, patches) patch matrix. It is computed in row strips that stay in cache and
    are written straight into the channel-first output.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Grayscale image. Sides that are not multiples of n are first padded at the
        bottom and right by repeating the edge pixels, as JPEG encoders do.
    block_size : int, optional
        n, the patch side, from 2 to 64. Default 4.

    Returns
    -------
    coefficients : ndarray, shape (n*n, ceil(H/n), ceil(W/n))
        Channel ``x*n + y`` is the map of frequency (row x, column y). float32 for a
        float32 image, float64 for any other dtype. NaN or infinity in the image
        spreads to the coefficients of its patch.

    Raises
    ------
    InvalidImageError
        If ``image`` is not a non-empty 2-D array of real numbers.
    InvalidBlockSizeError
        If ``block_size`` is not an integer from 2 to 64.

    See Also
    --------
    inverse : the transposed convolution that undoes this one.

    Notes
    -----
    The kernels are orthonormal, so the transform keeps energy (Parseval): the sum of
    squared coefficients equals the sum of squared pixels of the padded image.

    References
    ----------
    .. [1] K. R. Rao, P. Yip, "Discrete Cosine Transform: Algorithms, Advantages,
       Applications", Academic Press, 1990, ch. 2 (the orthonormal DCT-II).
    .. [2] V. Dumoulin, F. Visin, "A guide to convolution arithmetic for deep
       learning", arXiv:1603.07285, 2016 (strided and transposed convolution).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv import forward
    >>> image = np.arange(64.0).reshape(8, 8)
    >>> c = forward(image, block_size=4)
    >>> c.shape
    (16, 2, 2)
    >>> float(c[0, 0, 0])       # DC = n * mean of the top-left patch
    54.0
    """
    n = check_block_size(block_size)
    image = check_image(image)
    dtype = work_dtype(image.dtype)
    rows, cols = blocks_shape(image.shape, n)
    weights = kernel_matrix(n).astype(dtype)
    out = np.empty((n * n, rows, cols), dtype)
    for first, stop in _strips(rows, n * cols * n * dtype.itemsize):
        strip = _padded_strip(image, first * n, stop * n, cols * n, dtype)
        # im2col with stride == kernel size: split rows and columns into (block, offset)
        # and bring the two offsets (i, j) to the front as the n*n patch-vector axis.
        patches = strip.reshape(stop - first, n, cols, n).transpose(1, 3, 0, 2)
        patches = patches.reshape(n * n, (stop - first) * cols)
        # copy=False: a silent copy here would make matmul write into a temporary.
        target = np.reshape(out[:, first:stop, :], (n * n, -1), copy=False)
        np.matmul(weights, patches, out=target)
    return out


def inverse(coefficients, image_shape=None) -> np.ndarray:
    r"""Image from its block DCT coefficients: the transposed strided convolution.

    Each patch is the sum of the kernels weighted by its coefficients,

    .. math::

        u(n r + i, n s + j) = \sum_{x=0}^{n-1}\sum_{y=0}^{n-1} c_{x,y}(r, s)\, K_{x,y}(i, j),

    which is a transposed convolution (stride n, kernel size n) with the same kernels as
    :func:`forward`; since they are orthonormal it is the exact inverse, and it equals
    ``scipy.fft.idctn(block, norm="ortho")`` on every block.

    Parameters
    ----------
    coefficients : array_like, shape (n*n, rows, columns)
        Coefficient maps as returned by :func:`forward`; n is deduced from the number
        of channels.
    image_shape : tuple of int (H, W), optional
        Crop the result to this shape, undoing the edge padding of :func:`forward`.
        It must round up to the coefficient grid: ``ceil(H/n) == rows`` and
        ``ceil(W/n) == columns``. Default: the full ``(n*rows, n*columns)``.

    Returns
    -------
    image : ndarray, shape image_shape
        float32 for float32 coefficients, float64 otherwise.
        ``inverse(forward(x), x.shape)`` returns ``x`` to within 1e-10 in float64.

    Raises
    ------
    InvalidCoefficientsError
        If the array is not (n*n, rows, columns) with n from 2 to 64, or
        ``image_shape`` does not fit the coefficient grid.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv import forward, inverse
    >>> image = np.random.default_rng(0).random((5, 7))
    >>> restored = inverse(forward(image), image.shape)
    >>> bool(np.allclose(restored, image, rtol=0, atol=1e-12))
    True
    """
    coefficients, n = check_coefficients(coefficients)
    _, rows, cols = coefficients.shape
    if image_shape is None:
        image_shape = (rows * n, cols * n)
    height, width = _check_image_shape(image_shape, (rows, cols), n)
    dtype = work_dtype(coefficients.dtype)
    weights_t = np.ascontiguousarray(kernel_matrix(n).T.astype(dtype))
    out = np.empty((height, width), dtype)
    full_cols = width // n
    for first, stop in _strips(rows, n * cols * n * dtype.itemsize):
        count = stop - first
        block = coefficients[:, first:stop, :].reshape(n * n, count * cols).astype(dtype, copy=False)
        # col2im is the reverse reshape: (i, j, r, s) -> rows (r, i), columns (s, j).
        pixels = (weights_t @ block).reshape(n, n, count, cols)
        top, bottom = first * n, min(stop * n, height)
        if bottom - top == count * n and full_cols == cols:
            # Whole blocks: scatter straight into the output, no intermediate image.
            out[top:bottom].reshape(count, n, cols, n).transpose(1, 3, 0, 2)[...] = pixels
        else:
            strip = pixels.transpose(2, 0, 3, 1).reshape(count * n, cols * n)
            out[top:bottom] = strip[: bottom - top, :width]
    return out


def _check_image_shape(image_shape, grid, n) -> tuple[int, int]:
    """Return ``image_shape`` as (H, W) if it rounds up to ``grid`` at block size n."""
    try:
        height, width = (int(side) for side in image_shape)
    except (TypeError, ValueError):
        raise InvalidCoefficientsError(
            f"image_shape must be two integers (H, W), got {image_shape!r}"
        ) from None
    if height < 1 or width < 1 or blocks_shape((height, width), n) != tuple(grid):
        raise InvalidCoefficientsError(
            f"image_shape {height} x {width} does not fit a grid of {grid[0]} x {grid[1]} "
            f"blocks of {n} x {n}"
        )
    return height, width
