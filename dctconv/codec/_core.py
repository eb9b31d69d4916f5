"""The codec: block DCT, frequency-weighted quantization, channel-conditional entropy coding.

:func:`encode` turns a grayscale image into the bytes of a compressed file
(:mod:`dctconv.codec._dctz`), :func:`decode` turns them back into pixels. The work is
in three modules: :mod:`dctconv.codec._quantize` (the steps), :mod:`dctconv.codec._entropy`
(the model and the range coder) and :mod:`dctconv.codec._dctz` (the format).
"""

from __future__ import annotations

import math
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ._bound import (apply_residual, check_max_error, decode_mask, encode_mask, fill_nans, float32_spacing,
                     no_levels_step, residual_sections, REFINE_DELTAS, TRIAL_QUALITIES, trial_crop, trial_steps)
from ._dctz import FORMAT_VERSION, MODES, CodecHeader, classic_sections, pack, read_header, section, sections
from ._partition import REGION, SIZES, Partition
from ._zigzag import check_keep, check_step, check_threshold, keep_mask, zigzag_order
from ._entropy import MAX_BITS, CodedLevels, channel_classes, decode_integer_map
from ._entropy import decode_levels as _decode_coded
from ..errors import CodecFileError, InvalidCompressionError, InvalidImageError, OutOfMemoryError
from ..io._images import to_pixels
from ..limits import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_PIXELS
from ._quantize import DEAD_ZONE, DEFAULT_QUALITY, check_quality, rdoq_lambda, step_table
from ..transform import forward, inverse
from .._validation import check_block_size, check_image

_DTYPE_MODES = {np.dtype(dtype): mode for mode, dtype in MODES.items()}
#: Share of the data range kept as the bound when an image other than 8-bit is
#: compressed with no quality, step or bound (:func:`default_max_error`).
DEFAULT_ERROR_SHARE = 0.01
#: Levels must stay below this in magnitude (the DC residual of four of them fits the coder).
LEVEL_LIMIT = 2 ** (MAX_BITS - 2)


@dataclass(frozen=True)
class Levels:
    """What a compressed file holds, decoded as far as the quantization levels."""

    header: CodecHeader
    levels: np.ndarray
    """(n*n, rows, columns): integer levels, zero outside the K kept channels (int64 from
    the encoder; from :func:`decode_levels`, the narrowest of int16, int32 and int64 that
    holds them); float64 coefficients when ``header.quantization`` is "none"."""
    steps: np.ndarray
    """(n*n,) float64 step of each channel (all 0 for "none")."""
    offsets: np.ndarray | None = None
    """(2, n*n) reconstruction offsets (quality only): a level of magnitude 1 decodes
    to ``(1 - offsets[0]) * step``, a larger one to ``(|level| - offsets[1]) * step``,
    with its sign. None: ``level * step``."""

    passes: tuple[LevelPass, ...] = ()
    """Block sizes chosen per region (``header.partitioned``): the levels of the blocks of each
    size, 16, 8 and 4, each on its own grid; :attr:`levels`, :attr:`steps` and :attr:`offsets`
    are then those of the 16 x 16 pass. Empty for a file of one block size."""
    partition: Partition | None = None
    """The partition of a file of block sizes chosen per region (``partition.sizes``: the side
    of the block covering each 4 x 4 cell); None for a file of one block size."""

    @cached_property
    def coefficients(self) -> np.ndarray:
        """The decoded coefficient maps, float64 (n*n, rows, columns); computed once (compress
        reads them for the maps picture). Decoding pixels never makes them whole: it
        dequantizes a band of block rows at a time (:func:`prediction_pixels`)."""
        return dequantize(self.levels, self.steps, self.offsets, self.header.quantization)


@dataclass(frozen=True)
class LevelPass:
    """The levels of the blocks of one size of a file whose block sizes are chosen per region."""

    block_size: int
    levels: np.ndarray
    """(n*n, rows, columns) int levels on the grid of this size (of the image padded to a
    multiple of 16); 0 in the blocks of the other sizes."""
    steps: np.ndarray
    """(n*n,) float64 steps of this size."""
    offsets: np.ndarray | None
    """(2, n*n) reconstruction offsets of this size (quality only), as in :class:`Levels`."""
    present: np.ndarray
    """(rows, columns) bool: the blocks of this size."""

    @property
    def coefficients(self) -> np.ndarray:
        """float64 coefficient maps of this pass (0 outside its blocks)."""
        return dequantize(self.levels, self.steps, self.offsets, "quality" if self.offsets is not None else "step")


#: float32's largest finite number: a data range must stay within it.
_FLOAT32_MAX = float(np.finfo(np.float32).max)

def dequantize(levels: np.ndarray, steps: np.ndarray, offsets: np.ndarray | None, quantization: str) -> np.ndarray:
    """float64 coefficients of (n*n, rows, columns) levels (or of any band of their block rows): see :class:`Levels`."""
    if quantization == "none":
        return np.asarray(levels, np.float64)
    if offsets is None:
        return levels * steps[:, None, None]
    # Most levels are 0 and their coefficients 0: compute only the nonzero ones.
    coefficients = np.zeros(levels.shape)
    index = np.flatnonzero(levels)
    flat = levels.reshape(-1)[index]
    channel = index // (levels.shape[1] * levels.shape[2])
    step = steps[channel]
    offset = np.where(np.abs(flat) == 1, offsets[0][channel], offsets[1][channel])
    value = flat * step
    value -= np.sign(flat) * offset * step
    coefficients.reshape(-1)[index] = value
    return coefficients


def narrowest_levels(levels: np.ndarray) -> np.ndarray:
    """``levels`` (held until the pixels are made: a quarter of int64's bytes for most files) in the narrowest of int16, int32 and int64 that holds them and their
    magnitudes (so that ``np.abs`` cannot wrap); a float array is returned as it is."""
    if levels.dtype.kind not in "iu" or levels.size == 0:
        return levels
    low, high = int(levels.min()), int(levels.max())
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if -info.max <= low and high <= info.max:
            return levels if levels.dtype == dtype else levels.astype(dtype)
    return levels


def _check_pixels(image) -> tuple[np.ndarray, str]:
    image = check_image(image)
    mode = _DTYPE_MODES.get(image.dtype)
    if mode is None:
        raise InvalidImageError(
            f"image pixels must be uint8, uint16, int32 or float32 (the modes L, I;16, I, F), got {image.dtype}"
        )
    if mode == "F":
        infinite = int(np.count_nonzero(np.isinf(image)))
        if infinite:
            raise InvalidImageError(
                f"image contains {infinite:,} infinite value{'s' if infinite > 1 else ''}; "
                "replace them with NaN (no data) or with finite values"
            )
    return image, mode


def value_extremes(image) -> tuple[float, float]:
    """(smallest, largest) value of an image, NaN pixels left out (NaN, NaN if every one is)."""
    if image.dtype.kind == "f":
        finite = image[~np.isnan(image)] if np.isnan(image).any() else image
        if finite.size == 0:
            return math.nan, math.nan
        return float(finite.min()), float(finite.max())
    return float(image.min()), float(image.max())


def check_data_range(image, mode: str, data_range=None) -> tuple[float, float]:
    """The data range (low, high) :func:`encode` scales its quality steps to and clips decoded pixels to.

    8-bit images (mode L) keep 0 .. 255: a photo's black is 0 whatever it contains.
    Other images take the range of their own values (NaN left out); a constant image
    gets ``low .. low + w``, w = ``max(1, |low| / 2**23)`` (a width float32 can hold),
    or ``low - w .. low`` where ``low + w`` passes float32's largest number. A given ``data_range`` must hold two finite numbers
    ``low < high`` that contain every value of the image.

    Raises
    ------
    InvalidCompressionError
        If ``data_range`` is not two finite numbers low < high, or does not contain the image.

    Examples
    --------
    >>> import numpy as np
    >>> from dctconv.codec._core import check_data_range
    >>> check_data_range(np.array([[3, 215]], np.uint16), "I;16")
    (3.0, 215.0)
    >>> check_data_range(np.array([[3, 215]], np.uint8), "L")
    (0.0, 255.0)
    """
    smallest, largest = value_extremes(image)
    if data_range is None:
        if mode == "L":
            return 0.0, 255.0
        if math.isnan(smallest):
            return 0.0, 1.0
        if largest > smallest:
            return smallest, largest
        # A constant image: a width of 1, or of float32's spacing where 1 is below it (at
        # 2**53, smallest + 1 == smallest and every step would be 0); below the value
        # where above it would pass float32's largest number (the bound's spacing is inf there).
        width = max(1.0, abs(smallest) * 2.0**-23)
        if smallest + width > _FLOAT32_MAX:
            return smallest - width, smallest
        return smallest, smallest + width
    try:
        low, high = (float(value) for value in data_range)
    except (TypeError, ValueError):
        raise InvalidCompressionError(f"data range must be two numbers (low, high), got {data_range!r}") from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise InvalidCompressionError(f"data range {low:g}:{high:g} is not two finite numbers with low < high")
    if not math.isnan(smallest) and (smallest < low or largest > high):
        raise InvalidCompressionError(
            f"data range {low:g}:{high:g} does not contain the image's values ({smallest:g} .. {largest:g}); "
            "give a range that contains them"
        )
    return low, high


def settings_header(
    image_shape, mode: str, *, block_size=DEFAULT_BLOCK_SIZE, quality=None, step=None, keep=None, threshold=0.0,
    data_range=None, max_error=None,
) -> CodecHeader:
    """Check the settings of :func:`encode` and return them as a header (without section sizes)."""
    partitioned = isinstance(block_size, str) and block_size == "auto"
    if partitioned:
        _check_auto_settings(step=step, keep=keep, threshold=threshold)
        block_size = REGION
    n = check_block_size(block_size)
    if quality is not None and step is not None:
        raise InvalidCompressionError("give quality or step, not both")
    if step is None:
        quality = DEFAULT_QUALITY if quality is None else check_quality(quality)
        kind = "quality"
    else:
        step = check_step(step)
        kind = "step" if step > 0 else "none"
    keep = n * n if keep is None else check_keep(n, keep)
    return CodecHeader(
        block_size=n,
        image_shape=tuple(int(side) for side in image_shape),
        mode=mode,
        quantization=kind,
        quality=quality,
        step=step,
        keep=keep,
        threshold=check_threshold(threshold),
        dead_zone=DEAD_ZONE if kind == "quality" else 0,
        data_range=data_range,
        max_error=max_error,
        partitioned=partitioned,
    )


def _check_auto_settings(*, step, keep, threshold) -> None:
    """Block sizes chosen per region need quantized levels of every frequency."""
    if keep is not None:
        raise InvalidCompressionError("block size auto keeps every frequency of each block; drop keep (--keep) "
                                      "or give one block size")
    if threshold:
        raise InvalidCompressionError("block size auto takes no threshold; drop threshold (--threshold) "
                                      "or give one block size")
    if step is not None and step == 0:
        raise InvalidCompressionError("block size auto chooses among quantized levels; step 0 stores the "
                                      "coefficients unquantized: give a step > 0 or one block size")


def channel_steps(header: CodecHeader) -> np.ndarray:
    """(n*n,) steps of a header's quantization (zeros for "none")."""
    if header.quantization == "quality":
        # Files before version 4 record no range: theirs was the container's (value_range).
        return step_table(header.block_size, quality=header.quality, data_range=header.value_range,
                          flattened=header.partitioned)
    return step_table(header.block_size, step=header.step)


def quantize_image(image, header: CodecHeader, *, coefficients=None, rdoq: bool = True) -> Levels:
    r"""The levels and offsets :func:`encode` computes for ``image`` with the settings of ``header``.

    For every channel c kept (the first K of the zigzag order) and every block, the
    orthonormal DCT coefficient ``x`` (``forward(image, n)`` in float64) is zeroed
    if ``|x| < T`` (except DC) and then quantized with the step ``s = step[c]``:

    * flat ``step``: ``q = rint(x / s)`` (ties to even), as in the old zonal ``_compressed.npz`` files;
    * ``quality``: DC as above; AC with a dead zone ``z = dead_zone / 256``:
      :math:`q = \mathrm{sign}(x) \lfloor |x|/s + 1/2 - z \rfloor`. Rounding small
      values towards zero saves more bits than it costs in error;
    * "none": ``x`` itself is kept.

    Channels not kept are 0. With ``quality``, for 8-bit images without a bound
    (``max_error``) and ``rdoq`` true, the AC levels are then chosen by rate-distortion
    cost (:mod:`dctconv.codec._rdoq`): each nonzero level may move one towards zero or
    to 0, and each block's last level move forward, where the bits saved outweigh the
    error, with lambda :func:`dctconv.codec._quantize.rdoq_lambda`. At n = 8 (JPEG's
    tables) the choice starts from plain rounding and takes the largest lambda whose
    decoded pixels are no further from the image (squared error) than plain rounding's
    decoded with no offsets (:func:`dctconv.codec._rdoq.rdoq_within`); its offsets are
    then the fitted ones or none, whichever decodes closer. ``rdoq=False`` gives the
    rounded levels (what files written before RDOQ hold). With ``quality`` the encoder also fits reconstruction
    offsets, per channel class (:func:`dctconv.codec._entropy.channel_classes`) and
    separately for ``|q| = 1`` and ``|q| >= 2``: the mean of ``|q| - |x|/s`` over those
    coefficients (the centroid of their quantization cells), clipped to 0 .. 127/256
    and rounded to 1/256. Decoding puts a level at ``sign(q) (|q| - offset) s``.

    Raises
    ------
    InvalidCompressionError
        If a level reaches :data:`LEVEL_LIMIT` (2**59) in magnitude: the step is too small.
    """
    n = header.block_size
    if coefficients is None:
        coefficients = forward(image, n, dtype=np.float64)
    steps = channel_steps(header)
    mask = keep_mask(n, header.keep)
    if header.quantization == "none":
        kept = coefficients * mask[:, None, None] if header.keep < n * n else coefficients.copy()
    else:
        # One pass: the division writes the working array (x / s is 0 where x is 0, so
        # zeroing before or after it gives the same levels).
        kept = np.divide(coefficients, steps[:, None, None])
        if header.keep < n * n:
            kept *= mask[:, None, None]
    if header.threshold > 0:
        small = np.abs(coefficients) < header.threshold
        small[0] = False
        kept[small] = 0.0
    if header.quantization == "none":
        return Levels(header, kept, steps)
    lam = rdoq_lambda(steps, n) if rdoq and header.mode == "L" and header.max_error is None else None
    # At n = 8 (JPEG's tables) RDOQ starts from plain rounding, the error it must not exceed.
    # (Block sizes chosen per region have flattened steps at n = 8 too: the plain choice there.)
    jpeg_tables = n == 8 and not header.partitioned
    plain = np.rint(kept).astype(np.int64) if lam is not None and jpeg_tables else None
    if header.dead_zone:
        np.rint(kept[:1], out=kept[:1])
        magnitude = np.empty(kept.shape[1:])
        for channel in kept[1:]:  # one channel at a time: the temporary stays small
            np.abs(channel, out=magnitude)
            magnitude += 0.5 - header.dead_zone / 256
            np.floor(magnitude, out=magnitude)
            np.copysign(magnitude, channel, out=channel)
    else:
        np.rint(kept, out=kept)
    peak = max(float(kept.max()), -float(kept.min()))  # the largest |level|, without a copy
    if not peak < LEVEL_LIMIT:
        raise InvalidCompressionError(
            f"quantization levels reach {peak:g}, beyond the codec's limit of 2**59; use a larger step"
        )
    levels = _as_levels(kept)
    if header.quantization != "quality":
        return Levels(header, levels, steps)
    offsets = fit_offsets(levels, coefficients, steps, n)
    if lam is not None:
        from ._rdoq import rdoq_within, rdoq as choose

        if jpeg_tables:
            levels, offsets = rdoq_within(plain, coefficients, steps, n, lam,
                                          keep=header.keep, fit=lambda lv: fit_offsets(lv, coefficients, steps, n),
                                          error=lambda lv, off: _pixel_error(image, lv, steps, off, header))
        else:
            choose(levels, coefficients, steps, n, lam, keep=header.keep, offsets=offsets)
            offsets = fit_offsets(levels, coefficients, steps, n)
    return Levels(header, levels, steps, offsets)


def _as_levels(kept: np.ndarray) -> np.ndarray:
    """The integral float64 array ``kept`` as int64, converted in its own memory, a band at a time: a
    second array of the image's size would be fresh memory, whose page faults cost more than the copy."""
    if not (kept.flags.c_contiguous and kept.flags.writeable and kept.dtype == np.float64):
        return kept.astype(np.int64)
    flat = kept.reshape(-1)
    levels = flat.view(np.int64)
    band = 1 << 18
    for start in range(0, flat.size, band):
        levels[start : start + band] = flat[start : start + band]  # numpy copies the overlapping band first
    return levels.reshape(kept.shape)


def _pixel_error(image, levels, steps, offsets, header) -> float:
    """Squared error of the pixels ``levels`` decode to (no residual), summed."""
    coefficients = dequantize(levels, steps, offsets, "quality")
    pixels = _pixels_of(inverse(coefficients, image.shape), header)
    difference = pixels.astype(np.float64) - image
    return float(np.einsum("ij,ij->", difference, difference))


def fit_offsets(levels: np.ndarray, coefficients: np.ndarray, steps: np.ndarray, block_size: int) -> np.ndarray:
    """Reconstruction offsets of :func:`quantize_image`, (2, n*n) per channel, from its nonzero levels."""
    from ._rdoq import offset_sums

    classes = channel_classes(block_size)
    count = int(classes.max()) + 1
    # One compiled pass (numpy's took index, magnitude and error arrays of every nonzero level).
    total, number = offset_sums(np.asarray(levels, np.int64), np.asarray(coefficients, np.float64),
                                np.asarray(steps, np.float64), classes.astype(np.int64), count)
    mean = np.divide(total, number, out=np.zeros(2 * count), where=number > 0)
    codes = np.clip(np.rint(mean * 256), 0, 127).astype(np.uint8)
    return _offsets_of(codes.tobytes(), block_size)


def _offsets_of(data: bytes, block_size: int) -> np.ndarray:
    """(2, n*n) offsets per channel from the bytes :func:`fit_offsets` wrote; checks them."""
    classes = channel_classes(block_size)
    codes = np.frombuffer(data, dtype=np.uint8).reshape(2, -1)
    if codes.max(initial=0) > 127:
        raise CodecFileError("reconstruction offsets beyond half a step")
    return codes[:, classes] / 256.0


def _class_representatives(block_size: int) -> np.ndarray:
    """One channel of each class, in class order."""
    classes = channel_classes(block_size)
    return np.array([int(np.flatnonzero(classes == k)[0]) for k in range(int(classes.max()) + 1)])


def offsets_size(header: CodecHeader) -> int:
    """Bytes of reconstruction offsets at the start of the model section (of every size's, in
    order 16, 8, 4, for block sizes chosen per region)."""
    if header.quantization != "quality":
        return 0
    sizes = SIZES if header.partitioned else (header.block_size,)
    return sum(2 * (int(channel_classes(n).max()) + 1) for n in sizes)


def _pass_header(header: CodecHeader, size: int) -> CodecHeader:
    """The header of one block size of a partitioned file, for its steps (:func:`channel_steps`) and its
    quantization (:func:`quantize_image`)."""
    return replace(header, block_size=size, keep=size * size)


def quantize_partitioned(image, header: CodecHeader, *, lam_factor: float | None = None) -> Levels:
    """The :class:`Levels` of block sizes chosen per region (:mod:`dctconv.codec._partition`).

    The image is edge-padded to a multiple of 16 and quantized whole at 16, 8 and 4 as
    :func:`quantize_image` does (the same dead zone); each block's distortion and rate
    (:func:`dctconv.codec._engine.level_costs`) give the partition; the reconstruction
    offsets of each size are then fitted on its chosen blocks only.
    """
    from . import _engine
    from ._partition import LAMBDA, choose

    height, width = image.shape
    rows, cols = -(-height // REGION), -(-width // REGION)
    padded = np.pad(image, ((0, rows * REGION - height), (0, cols * REGION - width)), mode="edge")
    quantized = header.quantization == "quality"
    distortion, rate, found = {}, {}, {}
    for size in SIZES:
        sub = _pass_header(header, size)
        coefficients = forward(padded, size, dtype=np.float64)
        levels = quantize_image(padded, sub, coefficients=coefficients)
        decoded = dequantize(levels.levels, levels.steps, levels.offsets, header.quantization)
        decoded -= coefficients
        np.square(decoded, out=decoded)
        distortion[size] = decoded.sum(axis=0)
        del decoded, coefficients
        rate[size] = _engine.level_costs(levels.levels, size, levels.steps)
        found[size] = levels
    steps = found[REGION].steps
    lam = (LAMBDA if lam_factor is None else lam_factor) * float(steps[0]) ** 2
    partition = choose(distortion, rate, lam)
    passes = []
    for size in SIZES:
        present = partition.present(size) == 1
        levels = found.pop(size)
        chosen = levels.levels * present
        offsets = None
        if quantized:
            coefficients = forward(padded, size, dtype=np.float64)
            offsets = fit_offsets(chosen, coefficients, levels.steps, size)
            del coefficients
        passes.append(LevelPass(size, chosen, levels.steps, offsets, present))
    first = passes[0]
    return Levels(header, first.levels, first.steps, first.offsets, passes=tuple(passes), partition=partition)


def encode(image, *, block_size=DEFAULT_BLOCK_SIZE, quality=None, step=None, keep=None, threshold=0.0,
           data_range=None, max_error=None) -> bytes:
    r"""Compress a grayscale image into the bytes of a dctconv compressed file.

    1. The image is cut into n x n blocks (edge-padded) and each block transformed by
       the orthonormal DCT-II (:func:`dctconv.forward`).
    2. All but the K lowest zigzag frequencies are zeroed (the zonal mode), and AC
       coefficients below the threshold T are zeroed.
    3. Each coefficient is divided by the step of its frequency and rounded to the
       nearest integer (ties to even): :func:`quantize_image`. ``quality`` uses
       libjpeg's scaled tables (:mod:`dctconv.codec._quantize`) scaled to the data
       range, ``step`` one step for every frequency.
    4. The levels are entropy coded channel by channel (:mod:`dctconv.codec._entropy`)
       and written in sections after a header (:mod:`dctconv.codec._dctz`).
    5. With ``max_error``, the residual of every pixel against the decoded image is
       quantized so that each decoded pixel is within ``max_error`` of the original
       and coded too (:mod:`dctconv.codec._bound`); the encoder decodes the bytes it
       made and checks every pixel before returning them.

    Parameters
    ----------
    image : array_like, shape (H, W)
        uint8, uint16, int32 or float32 pixels (the modes L, I;16, I, F), the dtype
        :func:`decode` returns. Float images may hold NaN (no data): they decode as
        NaN. Infinities are refused.
    block_size : int, optional
        n, from 2 to 64. Default 4.
    quality : int, optional
        1 to 100. With no ``quality``, ``step`` or ``max_error``: 75 for 8-bit images;
        other images are kept within 1 % of their data range instead
        (:func:`default_max_error`).
    step : float, optional
        One step for every frequency, in coefficient units (not scaled by the data
        range); 0 stores the coefficients unquantized (float64, deflated).
    keep : int, optional
        K, 1 to n*n: keep the K lowest zigzag frequencies. Default all.
    threshold : float, optional
        T >= 0: AC coefficients with ``|c| < T`` become 0. Default 0.
    data_range : (float, float), optional
        (low, high): the range the quality steps are scaled to (a quality means the
        same share of it for every image) and decoded pixels are clipped to. Default:
        0 .. 255 for 8-bit images, the smallest and largest value for the others
        (:func:`check_data_range`); a given range must contain every value.
    max_error : float, optional
        E >= 0: every decoded pixel is within E of the original, in pixel units (for
        integer images ``floor(E)``; 0 is lossless). Alone (no ``quality`` or
        ``step``), the DCT's steps are chosen among a few qualities and flat steps
        (multiples of E) as the ones giving the smallest file on a central crop
        (:data:`dctconv.codec._bound.TRIAL_QUALITIES`, ``STEP_FACTORS``).

    Returns
    -------
    bytes

    Raises
    ------
    InvalidImageError, InvalidBlockSizeError, InvalidCompressionError
        For a bad image (infinities: how many), block size or setting (a data range
        that does not contain the image, a negative bound), or levels beyond 2**59.

    References
    ----------
    .. [1] G. K. Wallace, "The JPEG still picture compression standard", Comm. ACM
       34(4), 1991.

    Examples
    --------
    >>> import numpy as np, dctconv
    >>> image = (np.add.outer(np.arange(32), np.arange(32)) * 4).astype(np.uint8)
    >>> data = dctconv.encode(image, quality=90)
    >>> decoded = dctconv.decode(data)
    >>> decoded.dtype, decoded.shape, int(np.abs(decoded.astype(int) - image).max()) <= 3
    (dtype('uint8'), (32, 32), True)
    >>> exact = dctconv.decode(dctconv.encode(image, max_error=0))
    >>> bool((exact == image).all())
    True
    """
    data, _ = encode_image(image, block_size=block_size, quality=quality, step=step, keep=keep, threshold=threshold,
                           data_range=data_range, max_error=max_error)
    return data


def encode_image(image, *, block_size=DEFAULT_BLOCK_SIZE, quality=None, step=None, keep=None, threshold=0.0,
                 data_range=None, max_error=None):
    """:func:`encode`, also returning the :class:`Levels` it coded (which decode to the same maps)."""
    image, mode = _check_pixels(image)
    low_high = check_data_range(image, mode, data_range)
    if mode != "L" and quality is None and step is None and max_error is None:
        quality, max_error = DEFAULT_QUALITY, default_max_error(mode, low_high)
    max_error = check_max_error(max_error, mode, low_high)
    nan = np.isnan(image) if mode == "F" else None
    if nan is not None and nan.any():
        source = fill_nans(image, nan)
    else:
        source, nan = image, None
    settings = dict(block_size=block_size, quality=quality, step=step, keep=keep, threshold=threshold,
                    data_range=low_high, max_error=max_error)
    if max_error is not None and quality is None and step is None:
        settings.update(_chosen_step(image, source, nan, settings))
    return _encode_settings(image, source, nan, mode, settings)


def default_max_error(mode: str, data_range) -> float:
    """The bound of an image other than 8-bit compressed with no setting: :data:`DEFAULT_ERROR_SHARE` of its range.

    Scientific data is compared in its own units: by default the steps of quality 75
    (over the data range) are used and every pixel is kept within 1 % of the data
    range (for integers ``floor`` of it: lossless below a range of 100). For floats the
    bound is at least twice the float32 spacing of the data (:func:`float32_spacing`).
    """
    low, high = data_range
    bound = DEFAULT_ERROR_SHARE * (high - low)
    if mode == "F":
        bound = max(bound, 2 * float32_spacing(data_range))
    return bound


def _chosen_step(image, source, nan, settings) -> dict:
    """The steps giving the smallest file under the bound, tried on a central crop:
    qualities :data:`TRIAL_QUALITIES`, flat steps :data:`STEP_FACTORS` times E and no
    levels at all, then, when a quality wins, the qualities :data:`REFINE_DELTAS` on
    either side of it."""
    crop, crop_source = trial_crop(image), trial_crop(source)
    crop_nan = None if nan is None else trial_crop(nan)
    if crop_nan is not None and not crop_nan.any():
        crop_nan = None
    mode = _DTYPE_MODES[image.dtype]
    sizes = {}

    def chosen(candidate: tuple) -> dict:
        # "levels", None: no DCT levels at all (a step that rounds every one to 0), the
        # residual then being the near-lossless image that ADRP predicts pixel by pixel.
        if candidate[0] == "levels":
            # Block sizes chosen per region have no choice to make without levels: one size, 16.
            n = REGION if settings["block_size"] == "auto" else settings["block_size"]
            return {"step": no_levels_step(settings["data_range"], n), "keep": 1, "block_size": n}
        return {candidate[0]: candidate[1]}

    def size(candidate: tuple) -> int:
        if candidate not in sizes:
            trial = dict(settings, **chosen(candidate))
            # Only the residual's coding that wins for such a candidate is tried (bench_science.py:
            # on its images ADRP beats ADRS under DCT levels by at most 1.5 %, and then no levels
            # wins), which keeps the trial's time that of a single coding.
            codings = ("ADRP",) if candidate[0] == "levels" else ("ADRS",)
            sizes[candidate] = len(_encode_settings(crop, crop_source, crop_nan, mode, trial, check=False,
                                                    codings=codings)[0])
        return sizes[candidate]

    candidates = [("quality", q) for q in TRIAL_QUALITIES]
    candidates += [("step", s) for s in trial_steps(settings["max_error"], mode)]
    candidates.append(("levels", None))
    best = min(candidates, key=size)
    # The size is smooth in the quality near its best: a few steps of a descent find a
    # better one between the grid's qualities (2-5 % smaller files at bounds of 0.5-2 %
    # of the range on 512 x 512 elevation maps and micrographs, bench_science.py).
    if best[0] == "quality":
        for delta in REFINE_DELTAS:
            around = [("quality", q) for q in (best[1] - delta, best[1] + delta) if 1 <= q <= 100]
            best = min([best, *around], key=size)
    return chosen(best)


def _encode_settings(image, source, nan, mode, settings, *, check=True, codings=("ADRS", "ADRP")):
    header = settings_header(image.shape, mode, **settings)
    levels = quantize_partitioned(source, header) if header.partitioned else quantize_image(source, header)
    n = header.block_size
    if header.partitioned:
        parts = _partitioned_sections(levels)
    elif header.quantization == "none":
        kept = levels.levels[keep_mask(n, header.keep)].astype("<f8")
        parts = classic_sections(b"", np.zeros(0, np.uint32), zlib.compress(kept.tobytes(), 6))
    else:
        from . import _engine

        offsets = b""
        if levels.offsets is not None:
            offsets = np.rint(levels.offsets[:, _class_representatives(n)] * 256).astype(np.uint8).tobytes()
        parts = {"ADPT": offsets + _engine.encode_levels(levels.levels, header.keep, n, levels.steps)}
    if header.max_error is not None:
        parts.update(residual_sections(image, source, nan, prediction_pixels(levels), header.max_error, mode,
                                       header.value_range, codings=codings))
    if nan is not None:
        parts["NANM"] = encode_mask(nan)
    data = pack(header, parts)
    if check and header.max_error is not None:
        # The promise is checked on what a decoder makes of these very bytes.
        decoded = decode(data, max_pixels=None)
        largest = _largest_error(image, decoded)
        if not largest <= header.max_error:
            raise InvalidCompressionError(
                f"internal error: decoded pixels are {largest:g} from the original, beyond the bound "
                f"{header.max_error:g}; nothing was written"
            )
    return data, levels


def _partitioned_sections(levels: Levels) -> dict[str, bytes]:
    """PART and ADPT of block sizes chosen per region (docs/formats.md, "Block sizes chosen per region")."""
    from . import _engine
    from ._partition import stand_ins

    partition = levels.partition
    offsets = b""
    passes = []
    for level_pass in levels.passes:
        size = level_pass.block_size
        if level_pass.offsets is not None:
            offsets += np.rint(level_pass.offsets[:, _class_representatives(size)] * 256).astype(np.uint8).tobytes()
        decoded = [p.levels for p in levels.passes if p.block_size > size]
        passes.append((level_pass.levels, partition.present(size), stand_ins(partition, size, decoded), size,
                       level_pass.steps))
    return {"PART": _engine.encode_partition(partition.split16, partition.split8),
            "ADPT": offsets + _engine.encode_passes(passes)}


def _largest_error(image, decoded) -> float:
    """Largest |image - decoded| over the pixels that are not NaN in both; inf if NaN moved."""
    if image.dtype.kind == "f":
        nan = np.isnan(image)
        if not np.array_equal(nan, np.isnan(decoded)):
            return math.inf
        if nan.all():
            return 0.0
        return float(np.max(np.abs(image[~nan].astype(np.float64) - decoded[~nan])))
    return float(np.max(np.abs(image.astype(np.int64) - decoded.astype(np.int64))))


def decode_levels(data, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Levels:
    """Decode a compressed file as far as its quantization levels and steps.

    Raises
    ------
    CodecTooLargeError
        If the image has more than ``max_pixels`` pixels (checked before allocating).
    CodecFileError
        If the file is damaged, truncated, of another version, or not one at all.
    OutOfMemoryError
        If the memory runs out, or the image could never fit in this machine's memory
        (checked before allocating), whatever ``max_pixels``.
    """
    header = read_header(data, max_pixels=max_pixels)
    check_decode_memory(header)
    with out_of_memory(header):
        return _levels_of(data, header)


def _levels_of(data, header: CodecHeader) -> Levels:
    model, words, raw = sections(data, header)
    n = header.block_size
    shape = (n * n, *header.grid)
    steps = channel_steps(header)
    if header.quantization == "none":
        return Levels(header, _stored_coefficients(raw, shape, keep_mask(n, header.keep)), steps)
    adaptive = section(data, header, "ADPT") if header.format_version >= 4 else b""
    if adaptive:
        model = adaptive
    split = offsets_size(header)
    if len(model) < split:
        raise CodecFileError(f"{'ADPT' if adaptive or header.partitioned else 'model'} section is shorter than its "
                             "reconstruction offsets")
    if header.partitioned:
        return _partitioned_levels(data, header, model[:split], model[split:])
    offsets = _offsets_of(model[:split], n) if split else None
    if adaptive:
        from . import _engine

        decoded = _engine.decode_levels(adaptive[split:], shape, header.keep, n, steps)
        return Levels(header, narrowest_levels(decoded), steps, offsets)
    coded = CodedLevels(model[split:], words, raw)
    channels = zigzag_order(n)[: header.keep]
    decoded = _decode_coded(coded, shape, channels, n, steps, version=header.format_version)
    return Levels(header, narrowest_levels(decoded), steps, offsets)


def _partitioned_levels(data, header: CodecHeader, offset_bytes: bytes, coded: bytes) -> Levels:
    """The :class:`Levels` of a file of block sizes chosen per region: PART, then the passes of ADPT."""
    from . import _engine
    from ._partition import stand_ins

    rows, cols = header.grid
    partition = Partition(*_engine.decode_partition(section(data, header, "PART"), rows, cols))
    steps, offsets, start = [], [], 0
    for size in SIZES:
        sub = _pass_header(header, size)
        steps.append(channel_steps(sub))
        count = 2 * (int(channel_classes(size).max()) + 1) if header.quantization == "quality" else 0
        offsets.append(_offsets_of(offset_bytes[start : start + count], size) if count else None)
        start += count

    def maps(size, decoded):
        return partition.present(size), stand_ins(partition, size, decoded)

    decoded = _engine.decode_passes(coded, SIZES, steps, maps)
    passes = tuple(
        LevelPass(size, narrowest_levels(levels), step, offset, partition.present(size) == 1)
        for size, levels, step, offset in zip(SIZES, decoded, steps, offsets)
    )
    first = passes[0]
    return Levels(header, first.levels, first.steps, first.offsets, passes=passes, partition=partition)


def _stored_coefficients(raw: bytes, shape, mask: np.ndarray) -> np.ndarray:
    """The float64 coefficients of quantization "none": the kept channels, inflated straight
    into their place, 64 KiB of input at a time (neither the inflated bytes of the whole
    image nor the rest of the input, zlib's unconsumed tail, is ever copied whole)."""
    coefficients = np.zeros(shape, np.float64)
    planes = [coefficients[channel].reshape(-1).view(np.uint8) for channel in np.flatnonzero(mask)]
    plane = shape[1] * shape[2] * 8
    inflater = zlib.decompressobj()
    source = memoryview(raw).cast("B")
    pieces = (source[start : start + (1 << 16)] for start in range(0, len(source), 1 << 16))
    filled, position = 0, 0  # planes filled, bytes written into the next one
    pending, draining = b"", False
    try:
        while not inflater.eof:
            if not pending and not draining:
                pending = next(pieces, None)
                if pending is None:  # all the input given: what zlib still holds comes out
                    pending, draining = b"", True
            values = inflater.decompress(pending, plane - position if filled < len(planes) else 1)
            pending = inflater.unconsumed_tail
            if values and filled == len(planes):
                raise CodecFileError("coefficient data does not hold the kept channels exactly")
            if draining and not values:
                break
            if values:
                planes[filled][position : position + len(values)] = np.frombuffer(values, np.uint8)
                position += len(values)
                if position == plane:
                    filled, position = filled + 1, 0
    except zlib.error as exc:
        raise CodecFileError(f"coefficient data damaged: {exc}") from None
    left_over = pending or inflater.unused_data or next(pieces, None)
    if filled != len(planes) or not inflater.eof or left_over:
        raise CodecFileError("coefficient data does not hold the kept channels exactly")
    for channel in np.flatnonzero(mask):
        if not np.isfinite(coefficients[channel]).all():
            raise CodecFileError("coefficients contain NaN or infinity")
    return coefficients


def decode(data, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decompress the bytes of a dctconv compressed file into pixels.

    The decoded coefficient maps (level times step) go through :func:`dctconv.inverse`,
    are cropped to the image size, then rounded and clipped to the source's pixel
    type and (format version 4) to the file's data range; a bound's residual is
    added and NaN pixels are put back (:func:`decoded_pixels`). This is done a band
    of block rows at a time, straight into the output array, so that decoding needs
    little more memory than the levels and the pixels themselves.

    Parameters
    ----------
    data : bytes-like
        The whole file, as :func:`encode` returned it.
    max_pixels : int or None, optional
        Refuse a file whose image has more pixels than this, before allocating
        anything. Default: Pillow's limit, 89,478,485. None lifts it.

    Returns
    -------
    pixels : ndarray, shape (H, W)
        uint8, uint16, int32 or float32, as the source was.

    Raises
    ------
    CodecTooLargeError, CodecFileError, OutOfMemoryError
        See :func:`decode_levels`.

    Examples
    --------
    >>> import numpy as np, dctconv
    >>> image = np.full((6, 9), 1000, np.uint16)
    >>> dctconv.decode(dctconv.encode(image, block_size=2, step=1.0))[0, :3]
    array([1000, 1000, 1000], dtype=uint16)
    >>> field = np.array([[1.5, np.nan], [2.0, 2.5]], np.float32)
    >>> dctconv.decode(dctconv.encode(field, block_size=2, max_error=0.01))
    array([[1.5, nan],
           [2. , 2.5]], dtype=float32)
    """
    levels = decode_levels(data, max_pixels=max_pixels)
    header = levels.header
    with out_of_memory(header):
        pixels = prediction_pixels(levels)
        del levels  # before the residual's map is decoded: the peak is the larger of the two stages
        return _with_sections(data, header, pixels)


#: Pixels of one band of the reconstruction, about: its float64 temporaries (the
#: coefficients, the inverse DCT, the rounding) take a few MB, and inverse still has
#: enough work for two threads (THREAD_MIN_PIXELS).
BAND_PIXELS = 1 << 19


#: Pixels of one row band when the residual of a bound is added (no inverse DCT there to keep busy).
RESIDUAL_BAND_PIXELS = 1 << 16


def band_rows(header: CodecHeader) -> int:
    """Block rows in one band of the reconstruction (:data:`BAND_PIXELS`, at least one row)."""
    n = header.block_size
    return max(1, BAND_PIXELS // (n * n * header.grid[1]))


def decode_memory(header: CodecHeader) -> int:
    """Bytes that decoding the image of ``header`` holds at least: its levels (int16) and its pixels."""
    n = header.block_size
    rows, cols = header.grid
    height, width = header.image_shape
    level_bytes = 8 if header.quantization == "none" else 2
    # Block sizes chosen per region: three passes of levels, each the size of the 16 x 16 grid's.
    level_bytes *= len(SIZES) if header.partitioned else 1
    return n * n * rows * cols * level_bytes + height * width * header.dtype.itemsize


def _machine_memory() -> int | None:
    """Bytes of memory this machine could ever give a process: RAM plus swap (None: unknown)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("SwapTotal:"):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total


def check_decode_memory(header: CodecHeader) -> None:
    """Raise :class:`OutOfMemoryError` before allocating when the image could never fit in memory.

    A file of a few bytes can claim an image of billions of pixels (an all-zero image
    is legitimately tiny); with ``max_pixels=None`` this is what refuses one that no
    amount of waiting would decode.
    """
    needed = decode_memory(header)
    available = _machine_memory()
    if available is not None and needed > available:
        raise OutOfMemoryError.decoding(*header.image_shape, needed)


@contextmanager
def out_of_memory(header: CodecHeader):
    """Turn a MemoryError inside the block into the one-line :class:`OutOfMemoryError` naming the image."""
    try:
        yield
    except OutOfMemoryError:
        raise
    except MemoryError:
        raise OutOfMemoryError.decoding(*header.image_shape, decode_memory(header)) from None


def prediction_pixels(levels: Levels) -> np.ndarray:
    """The pixels of decoded levels: the reconstruction rounded to the mode's type and, from
    version 4, clipped to the file's data range (before any residual or NaN mask).

    Computed a band of block rows at a time (:func:`band_rows`) straight into the
    output: the levels of a band are dequantized, inverse transformed, rounded and
    clipped. The result is the same to the last bit as for the whole image at once:
    each step works pixel by pixel, and :func:`dctconv.inverse` computes every block
    row the same way however the rows are grouped. A band whose levels are all 0
    reconstructs to 0.0 everywhere and is filled with the pixel of 0.0.
    """
    header = levels.header
    if header.partitioned:
        return _partitioned_pixels(levels)
    n = header.block_size
    height, width = header.image_shape
    pixels = np.empty((height, width), header.dtype)
    step = band_rows(header)
    quantized = header.quantization != "none"
    zero = None
    for top in range(0, header.grid[0], step):
        band = levels.levels[:, top : top + step]
        first, last = top * n, min(height, (top + step) * n)
        if quantized and not band.any():
            if zero is None:
                zero = _pixels_of(np.zeros((1, 1)), header)[0, 0]
            pixels[first:last] = zero
            continue
        coefficients = dequantize(band, levels.steps, levels.offsets, header.quantization)
        with np.errstate(over="ignore", invalid="ignore"):
            image = inverse(coefficients, (last - first, width))
        del coefficients
        if not np.isfinite(image).all():
            raise CodecFileError("decoded pixels overflow (NaN or infinity): the file is damaged")
        pixels[first:last] = _pixels_of(image, header)
    return pixels


def _partitioned_pixels(levels: Levels) -> np.ndarray:
    """:func:`prediction_pixels` of block sizes chosen per region: in bands of 16 x 16 regions, the
    reconstruction of each pass (0.0 outside its blocks, exactly) added up."""
    header = levels.header
    height, width = header.image_shape
    pixels = np.empty((height, width), header.dtype)
    step = band_rows(header)
    for top in range(0, header.grid[0], step):
        first, last = top * REGION, min(height, (top + step) * REGION)
        image = None
        for level_pass in levels.passes:
            size = level_pass.block_size
            k = REGION // size
            band = level_pass.levels[:, top * k : top * k - (-(last - first) // size), : -(-width // size)]
            if not band.any():
                continue
            coefficients = dequantize(band, level_pass.steps, level_pass.offsets, header.quantization)
            with np.errstate(over="ignore", invalid="ignore"):
                part = inverse(coefficients, (last - first, width))
            del coefficients
            if image is None:
                image = part
            else:
                image += part
        if image is None:
            image = np.zeros((last - first, width))
        if not np.isfinite(image).all():
            raise CodecFileError("decoded pixels overflow (NaN or infinity): the file is damaged")
        pixels[first:last] = _pixels_of(image, header)
    return pixels


def _pixels_of(image: np.ndarray, header: CodecHeader) -> np.ndarray:
    """A float64 reconstruction (or a band of it) rounded to the mode's type and, from
    version 4, clipped to the file's data range."""
    pixels = to_pixels(image, header.mode)
    if header.data_range is None:
        return pixels
    low, high = header.data_range
    if header.dtype.kind == "f":
        return np.clip(pixels, np.float32(low), np.float32(high), out=pixels)
    return np.clip(pixels, math.ceil(low), math.floor(high), out=pixels)


def decoded_pixels(data, levels: Levels) -> np.ndarray:
    """What :func:`decode` gives for a file and its decoded levels: the prediction, the
    residual of a bound (RESD) added, the NaN pixels (NANM) put back.

    Raises
    ------
    CodecFileError, OutOfMemoryError
        As :func:`decode`.
    """
    with out_of_memory(levels.header):
        return _with_sections(data, levels.header, prediction_pixels(levels))


def _with_sections(data, header: CodecHeader, pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (the prediction) with the file's residual added and its NaN pixels put back, in place."""
    # The file's own header: the one of encode's Levels has no section table.
    header = header if header.section_table else read_header(data, max_pixels=None)
    for tag in ("ADRS", "ADRP", "RESD"):
        residual = section(data, header, tag)
        if residual:
            break
    if residual:
        if header.max_error is None:
            raise CodecFileError(f"the file holds a residual ({tag}) but promises no largest error")
        if tag == "ADRS":
            from . import _engine

            q = _engine.decode_map(residual, (1, *header.image_shape))[0]
        elif tag == "ADRP":
            from . import _engine

            q = _engine.decode_predicted_map(residual, header.image_shape)
        else:
            q = decode_integer_map(residual, (1, *header.image_shape))[0]
        # Row bands of 64K pixels: the arithmetic makes four int64 or float64 temporaries
        # of the band, beside the int64 map of the whole image.
        step = max(1, RESIDUAL_BAND_PIXELS // header.image_shape[1])
        for top in range(0, header.image_shape[0], step):
            rows = slice(top, top + step)
            pixels[rows] = apply_residual(pixels[rows], q[rows], header.max_error, header.mode, header.value_range)
        del q
    mask = section(data, header, "NANM")
    if mask:
        if header.mode != "F":
            raise CodecFileError(f"the file holds a NaN mask (NANM) but its pixels are {header.mode}, not float")
        pixels[decode_mask(mask, header.image_shape)] = np.nan
    return pixels
