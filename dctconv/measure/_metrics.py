"""How far a reconstruction is from its original: PSNR, SSIM, MSE, largest error, error picture.

PSNR and SSIM are scikit-image's formulas, computed here operation for operation as
:func:`skimage.metrics.peak_signal_noise_ratio` and
:func:`skimage.metrics.structural_similarity` compute them (the same float64 numbers;
the tests compare with scikit-image's functions), without importing those modules:
they import scipy.stats, most of the start-up of a ``--jobs`` run of small files
(docs/performance.md). The SSIM map is computed in compiled loops
(:mod:`dctconv.measure._ssim`). Compare the original with the reconstruction as it
is written to disk (as :func:`dctconv.decode` gives it), and pass the width of the
compressed file's data range as ``data_range``: 255 for 8-bit images, ``high - low``
of the image's own values (or of ``--data-range``) for the others, the range the
codec scales its steps to. :func:`loss_notes` says when a reconstruction lost the
image, whatever its PSNR.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InvalidImageError
from .._validation import check_image

#: Share of the pixels whose error is drawn below full white by :func:`error_picture`.
ERROR_PERCENTILE = 99.0

#: Side of scikit-image's default SSIM window; smaller images use their smaller side.
SSIM_WINDOW = 7
#: scikit-image's (and Wang et al.'s) SSIM constants.
SSIM_K1, SSIM_K2 = 0.01, 0.03


#: Pixels in one band of rows: the error and SSIM are computed a band at a time, so
#: that their temporaries (scikit-image's SSIM makes about fifteen, each as large as
#: its input) stay in the CPU's caches instead of being full-size arrays. On a 4096 x
#: 4096 photo SSIM took 13 s over the whole image, 3 s in bands of 256 rows, with
#: the same value to 2e-16 (docs/performance.md).
BAND_PIXELS = 1 << 20


def _pair(original, reconstruction) -> tuple[np.ndarray, np.ndarray]:
    original = check_image(original)
    reconstruction = check_image(reconstruction)
    if original.shape != reconstruction.shape:
        raise InvalidImageError(
            f"original is {original.shape[1]} x {original.shape[0]} but the reconstruction is "
            f"{reconstruction.shape[1]} x {reconstruction.shape[0]}"
        )
    return original, reconstruction


def _bands(height: int, width: int, *, start: int = 0, stop: int | None = None):
    """(top, bottom) of bands of rows from ``start`` to ``stop`` (default ``height``), about BAND_PIXELS each."""
    stop = height if stop is None else stop
    rows = max(1, BAND_PIXELS // max(1, width))
    return [(top, min(top + rows, stop)) for top in range(start, stop, rows)]


def _float64(band) -> np.ndarray:
    """A band in float64, for scikit-image and for differences.

    scikit-image computes in float32 when given float32 images: PSNR and SSIM of a
    float (F) image were then off in the 8th digit, and squared errors of large pixel
    values overflowed to an infinite MSE and a PSNR of -inf. Pixels of every gray mode
    are exact in float64 and their squares stay finite.
    """
    return band.astype(np.float64, copy=False)


@dataclass(frozen=True)
class _Errors:
    """The error of every pixel and the sums the measures need, from one pass over the images."""

    absolute: np.ndarray
    """|original - reconstruction| per pixel: uint8 or uint16 when both images are
    (then it holds every error exactly), else float64."""
    squared_sum: float
    largest: float


def _errors(original, reconstruction) -> _Errors:
    """|original - reconstruction| of every pixel, and the sum of the squares and the maximum, in float64.

    The differences are taken in float64 a band of rows at a time: no full-size
    float64 copy of either image.
    """
    height, width = original.shape
    kind = np.result_type(original.dtype, reconstruction.dtype)
    # Unsigned 8- and 16-bit pixels differ by at most their own range: their errors fit
    # their own type, four or eight times smaller than float64.
    dtype = kind if kind in (np.uint8, np.uint16) else np.float64
    absolute = np.empty((height, width), dtype)
    squared_sum, largest = 0.0, 0.0
    for top, bottom in _bands(height, width):
        difference = _float64(original[top:bottom]) - reconstruction[top:bottom]
        np.abs(difference, out=difference)
        largest = max(largest, float(difference.max()))
        absolute[top:bottom] = difference
        squared_sum += float(np.sum(np.square(difference, out=difference)))
    return _Errors(absolute, squared_sum, largest)


def mse(original, reconstruction) -> float:
    """Mean squared error, in squared pixel units, computed in float64."""
    original, reconstruction = _pair(original, reconstruction)
    return _errors(original, reconstruction).squared_sum / original.size


def max_abs_error(original, reconstruction) -> float:
    """Largest absolute pixel difference, in pixel units."""
    return _errors(*_pair(original, reconstruction)).largest


def psnr(original, reconstruction, *, data_range: float) -> float | None:
    r"""Peak signal-to-noise ratio in dB, or None when the images are identical.

    :math:`10 \log_{10}(R^2 / \mathrm{MSE})` with R = ``data_range``, computed as
    :func:`skimage.metrics.peak_signal_noise_ratio` does. Identical images have an
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
    >>> from dctconv.measure._metrics import psnr
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8                  # MSE = 64 / 64 = 1
    >>> round(psnr(a, b, data_range=255), 4)       # 20 log10(255)
    48.1308
    >>> psnr(a, a, data_range=255) is None
    True
    """
    original, reconstruction = _pair(original, reconstruction)
    return _psnr(original, reconstruction, data_range, np.array_equal(original, reconstruction))


def _psnr(original, reconstruction, data_range, identical: bool) -> float | None:
    if identical:
        return None
    return _skimage_psnr(_float64(original), _float64(reconstruction), data_range)


def _exact_sum(original, reconstruction, errors: _Errors) -> bool:
    """True when ``errors.squared_sum`` is the exact sum of the squared errors, whatever its order.

    Integer pixels differ by whole numbers; while the largest square times the number of
    pixels stays within 2**53 every square and every partial sum is a whole float64,
    exact. scikit-image's ``np.mean`` of the squares then adds the same exact numbers.
    """
    whole = original.dtype.kind in "iu" and reconstruction.dtype.kind in "iu"
    return whole and errors.largest**2 * original.size <= 2.0**53


def _psnr_of(original, reconstruction, data_range, errors: _Errors) -> float | None:
    """:func:`_psnr`, from the sum of the squared errors when it is exact (:func:`_exact_sum`).

    scikit-image's MSE is that sum divided by the number of pixels, so the PSNR is the
    same float64 number, without the four float64 images of scikit-image's computation.
    """
    if errors.largest == 0:
        return None
    if _exact_sum(original, reconstruction, errors):
        return _psnr_of_mse(errors.squared_sum / original.size, data_range)
    return _psnr(original, reconstruction, data_range, False)


def _psnr_of_mse(error, data_range) -> float:
    """scikit-image's last step of ``peak_signal_noise_ratio``: 10 log10(R**2 / MSE)."""
    return float(10 * np.log10((float(data_range) ** 2) / np.float64(error)))


def _skimage_psnr(original, reconstruction, data_range) -> float:
    """scikit-image's ``peak_signal_noise_ratio`` of two float64 arrays, its operations in its order."""
    return _psnr_of_mse(np.mean((original - reconstruction) ** 2, dtype=np.float64), data_range)


def ssim(original, reconstruction, *, data_range: float) -> float | None:
    """Mean structural similarity (1 for identical images), or None for images under 3 pixels wide.

    :func:`skimage.metrics.structural_similarity`'s, with its defaults (7 x 7 uniform
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
    >>> from dctconv.measure._metrics import ssim
    >>> a = np.tile(np.arange(16, dtype=np.uint8) * 16, (16, 1))
    >>> ssim(a, a, data_range=255)
    1.0
    """
    return _ssim(*_pair(original, reconstruction), data_range)


def _ssim(original, reconstruction, data_range) -> float | None:
    """scikit-image's mean SSIM, computed over bands of rows (:data:`BAND_PIXELS`).

    scikit-image averages its SSIM map without the ``pad = (window - 1) // 2`` pixels
    along each edge, whose windows would reach past the image. Each band's map is
    computed with ``pad`` more rows of context above and below, and only its own
    rows of the map are summed: the window of every summed pixel lies in the band
    given, so the map values are those of the whole image (up to the rounding of the
    running sums, which start at each band's top: about 1e-16). Each row is summed
    with compensation and the rows' sums are added correctly rounded (``math.fsum``).
    """
    window = min(SSIM_WINDOW, *original.shape)
    window -= 1 - window % 2  # the window side must be odd
    if window < 3:
        return None
    pad = (window - 1) // 2
    height, width = original.shape

    def band_sums(band) -> np.ndarray:
        top, bottom = band
        return _ssim_rows(original[top - pad : bottom + pad], reconstruction[top - pad : bottom + pad],
                          data_range, window, pad, pad + bottom - top)

    bands = _bands(height, width, start=pad, stop=height - pad)
    workers = min(len(bands), _threads())
    if workers > 1:  # the compiled loop releases the GIL: bands side by side
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="dctconv-ssim") as pool:
            sums = list(pool.map(band_sums, bands))
    else:
        sums = list(map(band_sums, bands))
    # Correctly rounded: the same number in any order of the rows.
    return math.fsum(np.concatenate(sums).tolist()) / ((height - 2 * pad) * (width - 2 * pad))


def _threads() -> int:
    """Threads for the SSIM's bands: the transform's share of the CPUs (one per ``--jobs`` worker on 2 CPUs)."""
    from ..transform import default_workers

    return default_workers()


def _ssim_rows(x, y, data_range, window: int, first: int, last: int) -> np.ndarray:
    """Sums of rows ``first`` to ``last`` of scikit-image's SSIM map of ``x`` and ``y``, over the
    columns whose windows lie in the image (:func:`dctconv.measure._ssim.ssim_rows`)."""
    from ._ssim import ssim_rows

    return ssim_rows(x, y, data_range, window, SSIM_K1, SSIM_K2, first, last)[0]


def _ssim_map(x, y, data_range, window: int) -> np.ndarray:
    """scikit-image's SSIM map (``structural_similarity(..., full=True)``'s ``S``) of two images with a
    uniform ``window`` x ``window`` filter: its operations in its order (:func:`dctconv.measure._ssim.ssim_map`)."""
    from ._ssim import ssim_map

    return ssim_map(x, y, data_range, window, SSIM_K1, SSIM_K2)


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
    >>> from dctconv.measure._metrics import compare
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8
    >>> quality = compare(a, b, data_range=255)
    >>> quality.mse, quality.max_abs_error
    (1.0, 8.0)
    """
    original, reconstruction = _pair(original, reconstruction)
    return _quality(original, reconstruction, data_range, _errors(original, reconstruction))


def _quality(original, reconstruction, data_range, errors: _Errors, *, psnr_db=None) -> Quality:
    """The four numbers; ``psnr_db``, if given, a callable giving the PSNR computed elsewhere."""
    if psnr_db is None:
        psnr_db = _now(_psnr_of, original, reconstruction, data_range, errors)
    ssim = _ssim(original, reconstruction, data_range)
    return Quality(
        psnr_db=psnr_db(),
        ssim=ssim,
        mse=errors.squared_sum / original.size,
        max_abs_error=errors.largest,
    )


def measure(original, reconstruction, *, data_range: float,
            on_error_picture=None, submit=None) -> tuple[Quality, np.ndarray, float]:
    """:func:`compare` and :func:`error_picture` at once, each pixel's error computed once.

    ``on_error_picture``, if given, is called as ``on_error_picture(picture,
    error_scale, largest_error)`` as soon as the error picture is made, before SSIM
    and PSNR (most of the time): ``compress`` starts encoding the picture then.
    ``submit``, if given, is called as ``submit(function, *args)`` to compute the
    PSNR elsewhere (another thread) while the SSIM is computed here, and returns a
    callable that gives the result; the numbers are the same. Integer images need no
    such work: their PSNR comes from the sum of the squared errors (:func:`_psnr_of`).

    Returns
    -------
    quality : Quality
    picture : ndarray of uint8, shape (H, W)
    error_scale : float
        As returned by :func:`error_picture`.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.measure._metrics import measure
    >>> a = np.zeros((8, 8), np.uint8)
    >>> b = a.copy(); b[0, 0] = 8
    >>> quality, picture, scale = measure(a, b, data_range=255)
    >>> quality.max_abs_error, int(picture.max()), scale
    (8.0, 255, 86.14864864864924)
    """
    original, reconstruction = _pair(original, reconstruction)
    errors = _errors(original, reconstruction)
    picture, scale = _error_picture(errors)
    psnr_db = None
    if submit is not None and not _exact_sum(original, reconstruction, errors):
        psnr_db = submit(_psnr, original, reconstruction, data_range, errors.largest == 0)
    if on_error_picture is not None:
        on_error_picture(picture, scale, errors.largest)
    return _quality(original, reconstruction, data_range, errors, psnr_db=psnr_db), picture, scale


def _now(function, *args):
    result = function(*args)
    return lambda: result


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
    return _error_picture(_errors(*_pair(original, reconstruction)))


def _percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile(values, q)`` (linear interpolation); for uint8 and uint16 from a histogram.

    The two values around the percentile's place are found by counting each value
    instead of partitioning a copy, then interpolated with numpy's own arithmetic:
    place ``(n - 1) * q / 100``, weight ``g`` its fraction, ``a + (b - a) g`` below
    one half and ``b - (b - a)(1 - g)`` from it (the tests compare with numpy).
    """
    if values.dtype not in (np.uint8, np.uint16) or values.size == 0:
        return float(np.percentile(values, q))
    counts = np.cumsum(np.bincount(values.reshape(-1)))
    place = (values.size - 1) * np.true_divide(q, 100)
    below = np.floor(place)
    weight = place - below
    low, high = np.searchsorted(counts, [below, min(below + 1, values.size - 1)], side="right")
    low, high = np.float64(low), np.float64(high)
    if weight >= 0.5:
        return float(high - (high - low) * (1 - weight))
    return float(low + (high - low) * weight)


def _error_picture(errors: _Errors) -> tuple[np.ndarray, float]:
    error = errors.absolute
    # The percentile of integer errors is the same number as of their float64 copy.
    white = _percentile(error, ERROR_PERCENTILE)
    if white == 0:
        white = errors.largest
    scale = 255.0 / white if white > 0 else 1.0
    height, width = error.shape
    if error.dtype in (np.uint8, np.uint16):
        # Each possible error's gray, computed as below, then looked up: the same picture.
        values = np.arange(int(errors.largest) + 1)
        grays = np.minimum(np.rint(np.multiply(values, scale, dtype=np.float64)), 255).astype(np.uint8)
        return np.take(grays, error), scale
    picture = np.empty((height, width), np.uint8)
    for top, bottom in _bands(height, width):
        shown = np.multiply(error[top:bottom], scale, dtype=np.float64)
        np.minimum(np.rint(shown, out=shown), 255, out=shown)
        picture[top:bottom] = shown
    return picture, scale


#: A reconstruction that keeps fewer distinct values than this share of the original's
#: (when the original has at least :data:`DISTINCT_MINIMUM`) gets a note: it lost the
#: image's levels (a 16-bit slice decoded to one or three values).
LOST_DISTINCT_SHARE = 0.25
DISTINCT_MINIMUM = 16
#: A largest error above this share of the data range gets a note. JPEG-like quality 25
#: to 95 keeps 8-bit photos under it (their largest errors are 5 to 19 % of 255); the
#: reconstructions that lost the image reach 48 % and more.
LARGE_ERROR_SHARE = 0.25


def distinct_values(image) -> int:
    """Number of distinct values of an image (NaN left out); a count of each value for 8- and 16-bit."""
    image = np.asarray(image)
    if image.dtype in (np.uint8, np.uint16):
        return int(np.count_nonzero(np.bincount(image.reshape(-1), minlength=1)))
    values = image.reshape(-1)
    if values.dtype.kind == "f":
        values = values[~np.isnan(values)]
    return int(np.unique(values).size)


def loss_notes(original, reconstruction, *, data_range, largest_error: float) -> list[str]:
    """``Note:`` lines for a reconstruction that lost the image, whatever its PSNR.

    Two signs, with the thresholds above: the reconstruction keeps far fewer distinct
    values than the original (:data:`LOST_DISTINCT_SHARE`), or its largest error is a
    large share of the data range (:data:`LARGE_ERROR_SHARE`).

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.measure._metrics import loss_notes
    >>> image = np.arange(256, dtype=np.uint16).reshape(16, 16)
    >>> for note in loss_notes(image, np.zeros_like(image), data_range=(0, 255), largest_error=255):
    ...     print(note)
    the reconstruction keeps 1 distinct value of the original's 256: it lost the image's levels, whatever its PSNR says
    the largest error, 255, is 100 % of the data range 0 .. 255
    """
    low, high = data_range
    notes = []
    before, after = distinct_values(original), distinct_values(reconstruction)
    if before >= DISTINCT_MINIMUM and after < LOST_DISTINCT_SHARE * before:
        notes.append(f"the reconstruction keeps {after:,} distinct value{'s' if after != 1 else ''} of the "
                     f"original's {before:,}: it lost the image's levels, whatever its PSNR says")
    share = largest_error / (high - low)
    if share > LARGE_ERROR_SHARE:
        notes.append(f"the largest error, {largest_error:.6g}, is {100 * share:.0f} % of the data range "
                     f"{low:.6g} .. {high:.6g}")
    return notes


def over_valid(quality: Quality, original, reconstruction, valid, *, data_range: float) -> Quality:
    """``quality`` with PSNR and MSE computed over the ``valid`` pixels only (NaN left out).

    PSNR is scikit-image's over those pixels, with the same ``data_range``.
    """
    a = np.asarray(original)[valid].astype(np.float64)
    b = np.asarray(reconstruction)[valid].astype(np.float64)
    if a.size == 0 or np.array_equal(a, b):
        return Quality(None, quality.ssim, 0.0, quality.max_abs_error)
    psnr_db = _skimage_psnr(a, b, data_range)
    return Quality(psnr_db, quality.ssim, float(np.mean((a - b) ** 2)), quality.max_abs_error)
