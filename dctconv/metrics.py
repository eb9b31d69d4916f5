"""How far a reconstruction is from its original: PSNR, SSIM, MSE, largest error, error picture.

PSNR and SSIM are scikit-image's. Compare the original with the reconstruction as it
is written to disk (rounded and clipped by :func:`dctconv.image_io.to_pixels`), and
pass the full range of the source's bit depth as ``data_range`` (255 for 8-bit,
65535 for 16-bit: :attr:`dctconv.image_io.ImageInfo.data_range`), not the range
the image happens to use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import InvalidImageError
from .validation import check_image

#: Share of the pixels whose error is drawn below full white by :func:`error_picture`.
ERROR_PERCENTILE = 99.0

#: Side of scikit-image's default SSIM window; smaller images use their smaller side.
SSIM_WINDOW = 7


def _pair(original, reconstruction) -> tuple[np.ndarray, np.ndarray]:
    original = check_image(original)
    reconstruction = check_image(reconstruction)
    if original.shape != reconstruction.shape:
        raise InvalidImageError(
            f"original is {original.shape[1]} x {original.shape[0]} but the reconstruction is "
            f"{reconstruction.shape[1]} x {reconstruction.shape[0]}"
        )
    return original, reconstruction


def _float64_pair(original, reconstruction) -> tuple[np.ndarray, np.ndarray]:
    """Both images in float64, for scikit-image.

    scikit-image computes in float32 when given float32 images: PSNR and SSIM of a
    float (F) image were then off in the 8th digit, and squared errors of large pixel
    values overflowed to an infinite MSE and a PSNR of -inf. Pixels of every gray mode
    are exact in float64 and their squares stay finite.
    """
    original, reconstruction = _pair(original, reconstruction)
    return original.astype(np.float64, copy=False), reconstruction.astype(np.float64, copy=False)


def mse(original, reconstruction) -> float:
    """Mean squared error, in squared pixel units, computed in float64."""
    return _mse(*_float64_pair(original, reconstruction))


def _mse(original, reconstruction) -> float:
    difference = original - reconstruction
    return float(np.mean(np.square(difference, out=difference)))


def max_abs_error(original, reconstruction) -> float:
    """Largest absolute pixel difference, in pixel units."""
    return _max_abs_error(*_float64_pair(original, reconstruction))


def _max_abs_error(original, reconstruction) -> float:
    difference = original - reconstruction
    return float(np.max(np.abs(difference, out=difference)))


def psnr(original, reconstruction, *, data_range: float) -> float | None:
    r"""Peak signal-to-noise ratio in dB, or None when the images are identical.

    :math:`10 \log_{10}(R^2 / \mathrm{MSE})` with R = ``data_range``, computed by
    :func:`skimage.metrics.peak_signal_noise_ratio`. Identical images have an
    infinite PSNR, returned as None (it has no JSON number).

    Parameters
    ----------
    original, reconstruction : array_like, shape (H, W)
    data_range : float
        Full range of the source bit depth: 255 for 8-bit, 65535 for 16-bit.

    References
    ----------
    .. [1] https://en.wikipedia.org/wiki/Peak_signal-to-noise_ratio

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.metrics import psnr
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8                  # MSE = 64 / 64 = 1
    >>> round(psnr(a, b, data_range=255), 4)       # 20 log10(255)
    48.1308
    >>> psnr(a, a, data_range=255) is None
    True
    """
    return _psnr(*_float64_pair(original, reconstruction), data_range)


def _psnr(original, reconstruction, data_range) -> float | None:
    from skimage.metrics import peak_signal_noise_ratio

    if np.array_equal(original, reconstruction):
        return None
    return float(peak_signal_noise_ratio(original, reconstruction, data_range=data_range))


def ssim(original, reconstruction, *, data_range: float) -> float | None:
    """Mean structural similarity (1 for identical images), or None for images under 3 pixels wide.

    :func:`skimage.metrics.structural_similarity` with its defaults (7 x 7 uniform
    window, K1 = 0.01, K2 = 0.03, sample covariance) and the given ``data_range``.
    An image with a side under 7 pixels uses the largest odd window that fits; one
    with a side under 3 has no SSIM.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh, E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Trans.
       Image Processing 13(4), 2004, pp. 600-612.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.metrics import ssim
    >>> a = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))
    >>> ssim(a, a, data_range=255)
    1.0
    """
    return _ssim(*_float64_pair(original, reconstruction), data_range)


def _ssim(original, reconstruction, data_range) -> float | None:
    from skimage.metrics import structural_similarity

    window = min(SSIM_WINDOW, *original.shape)
    window -= 1 - window % 2  # the window side must be odd
    if window < 3:
        return None
    return float(structural_similarity(original, reconstruction, data_range=data_range, win_size=window))


@dataclass(frozen=True)
class Quality:
    """The four numbers comparing a reconstruction with its original."""

    psnr_db: float | None
    ssim: float | None
    mse: float
    max_abs_error: float

    def as_dict(self) -> dict:
        return asdict(self)


def compare(original, reconstruction, *, data_range: float) -> Quality:
    """PSNR, SSIM, MSE and largest error of ``reconstruction`` against ``original``.

    The images are checked and converted to float64 once, for all four measures.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.metrics import compare
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8
    >>> quality = compare(a, b, data_range=255)
    >>> quality.mse, quality.max_abs_error
    (1.0, 8.0)
    """
    return _compare(*_float64_pair(original, reconstruction), data_range)


def _compare(original, reconstruction, data_range) -> Quality:
    return Quality(
        psnr_db=_psnr(original, reconstruction, data_range),
        ssim=_ssim(original, reconstruction, data_range),
        mse=_mse(original, reconstruction),
        max_abs_error=_max_abs_error(original, reconstruction),
    )


def measure(original, reconstruction, *, data_range: float) -> tuple[Quality, np.ndarray, float]:
    """:func:`compare` and :func:`error_picture` at once, the images checked and converted once.

    Returns
    -------
    quality : Quality
    picture : ndarray of uint8, shape (H, W)
    error_scale : float
        As returned by :func:`error_picture`.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.metrics import measure
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8
    >>> quality, picture, scale = measure(a, b, data_range=255)
    >>> quality.max_abs_error, int(picture.max()), scale
    (8.0, 255, 86.14864864864924)
    """
    original, reconstruction = _float64_pair(original, reconstruction)
    return (_compare(original, reconstruction, data_range), *_error_picture(original, reconstruction))


def error_picture(original, reconstruction) -> tuple[np.ndarray, float]:
    """|original - reconstruction| as an 8-bit picture, stretched so that small errors show.

    Gray value = ``min(255, rint(|e| * scale))``. The scale makes the 99th
    percentile of |e| full white (the largest |e| if that percentile is 0), so the
    picture shows where the error is even when it is a few gray levels; the top 1 %
    saturates. Identical images give a black picture and scale 1.

    Returns
    -------
    picture : ndarray of uint8, shape (H, W)
    error_scale : float
        Gray values per unit of error: divide a gray value by it to read the error.
    """
    return _error_picture(*_float64_pair(original, reconstruction))


def _error_picture(original, reconstruction) -> tuple[np.ndarray, float]:
    error = np.abs(original - reconstruction)
    white = float(np.percentile(error, ERROR_PERCENTILE))
    if white == 0:
        white = float(error.max())
    scale = 255.0 / white if white > 0 else 1.0
    picture = np.minimum(np.rint(error * scale), 255).astype(np.uint8)
    return picture, scale
