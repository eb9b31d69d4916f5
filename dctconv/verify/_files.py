"""Checking files: an image file by the ten checks, and a coefficient file against its image.

The checks themselves are pure math (:mod:`dctconv.verify._checks`); this module reads the
files, the images through :func:`dctconv.io._images.read_image` and the coefficient
files only through :mod:`dctconv.io._npz`, whose reader treats them as
hostile.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..io import _npz as _coefficient_file
from .. import transform as _transform
from ._checks import (
    DEFAULT_BLOCK_SIZES,
    FILE_MATCHES_IMAGE,
    CheckResult,
    image_checks,
    product_terms,
    tolerance,
)
from ..errors import CoefficientFileError, ImageMismatchError
from ..io._images import ImageInfo
from ..limits import DEFAULT_MAX_PIXELS
from ..transform import work_dtype
from .._validation import check_image


@dataclass(frozen=True)
class ImageChecks:
    """The checks of one image file, and what reading it changed (for notes)."""

    source: Path
    checks: list[CheckResult]
    info: ImageInfo


def verify_image_file(path, block_sizes=DEFAULT_BLOCK_SIZES, *, max_pixels=None) -> ImageChecks:
    """Read an image file (as ``dctconv transform`` does) and run :func:`image_checks` on it."""
    from ..io._images import read_image

    path = Path(path)
    image, info = read_image(path, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
    return ImageChecks(path, image_checks(image, block_sizes, label=path.name), info)


# ---------------------------------------------------------------- a file against its image


@dataclass(frozen=True)
class Location:
    """Where a coefficient lives: its block and its frequency (x = row, y = column)."""

    block_row: int
    block_column: int
    x: int
    y: int

    def __str__(self) -> str:
        return f"block row {self.block_row}, block column {self.block_column}, frequency ({self.x}, {self.y})"


@dataclass(frozen=True)
class FileVerification:
    """Whether a coefficient file holds what its image says it should, and the worst coefficient."""

    check: CheckResult
    kind: str
    """"transform" or "compressed"."""
    location: Location | None
    """Coefficient of the largest difference; None when every compared one is identical."""
    compared: int
    """Number of coefficients compared."""
    skipped: int
    """Zeros of a compressed file's kept channels that were not compared (see verify_file)."""
    reason: str
    """One line saying what was found."""
    skipped_what: str = "zeros of kept channels not compared (below the file's --threshold)"
    """What the ``skipped`` coefficients are, after their count."""
    unit: str = "coefficients"
    """What ``compared`` counts: "coefficients", or "decoded pixels" for a file with a bound."""
    trusted: dict = field(default_factory=dict)
    """The settings taken from the file as it records them, which the image cannot confirm
    (the block size; for a compressed file, what it kept and how it quantized): the
    caller should show them. The image's size and mode are checked, not trusted."""


#: The gray modes as the user knows them.
MODE_NAMES = {"L": "an 8-bit gray (L)", "I;16": "a 16-bit gray (I;16)", "I": "a 32-bit integer (I)",
              "F": "a float (F)"}


def verify_file(coefficient_path, image, *, max_pixels=None, image_name=None, image_mode=None,
                forward=_transform.forward) -> FileVerification:
    """Check that a coefficient file holds the transform (or compression) of ``image``.

    A compressed file of :func:`dctconv.encode` (told by its magic bytes) is checked by
    :func:`verify_compressed_file`. For a ``.npz`` file, the file's coefficients are compared with ``forward(image)`` at the file's block
    size, and the largest difference is reported with its location.

    * kind "transform": every coefficient is compared; the image is transformed in the
      file's dtype (float32 files come from float32 images). Tolerance
      ``EPSILON[dtype] * (n*n + 3) * n max|x|`` as in check 3.
    * kind "compressed": only the kept channels are compared, since the others were
      dropped on purpose. A kept coefficient stored as ``level * step`` was rounded
      to the nearest multiple of step, so it may differ from the true coefficient by
      up to step/2; the tolerance is ``step/2`` plus the float64 one. A kept AC
      coefficient stored as exactly 0 whose true value is below the file's recorded
      ``compress --threshold`` (plus the float64 tolerance, for ties) was zeroed on
      purpose and is not compared (counted in ``skipped``); any other value in a
      kept channel, zeros included, is compared, so a changed image or a corrupted,
      misplaced or wrongly zeroed value is reported. DC is never thresholded.

    Parameters
    ----------
    coefficient_path : str or Path
        A ``.npz`` file written by ``dctconv transform`` or ``dctconv compress``.
    image : str, Path or array_like
        The image file (read as ``dctconv transform`` reads it) or its pixels.
    max_pixels : int, optional
        Largest image allowed, in pixels: the limit of
        :func:`dctconv.io._npz.load_coefficients` for the size the file records
        and of :func:`dctconv.io._images.read_image` when ``image`` is a path. Default
        :data:`dctconv.io._images.DEFAULT_MAX_PIXELS`.
    image_name : str, optional
        How to name the image in the reason; default its file name, or "the image".
    image_mode : str, optional
        Gray mode of the image ("L", "I;16", "I", "F"), as read_image gives it; taken from
        the file when ``image`` is a path. The file must record the same mode (its
        reconstruction is written in it). None with an array: not checked.

    Returns
    -------
    FileVerification
        ``.check.passed`` is False when some difference exceeds the tolerance.

    Raises
    ------
    CoefficientFileError
        If the file cannot be read.
    TooManyPixelsError
        If the file records, or the image file has, more than ``max_pixels`` pixels.
    ImageReadError
        If ``image`` is a path that cannot be read as an image.
    ImageMismatchError
        If the image does not have the shape, or the mode, the file records.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from dctconv import forward
    >>> from dctconv.io._npz import CoefficientHeader, save_coefficients
    >>> image = np.arange(64.0).reshape(8, 8)
    >>> path = os.path.join(tempfile.mkdtemp(), "c.npz")
    >>> save_coefficients(path, forward(image), CoefficientHeader(4, (8, 8), "F"))
    >>> image[4:, 4:] += 1
    >>> print(verify_file(path, image).location)
    block row 1, block column 1, frequency (0, 0)
    """
    from ..io import _kinds as kinds
    from ..io._images import read_image

    coefficient_path = Path(coefficient_path)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    kind = kinds.kind_of(coefficient_path)
    problem = kinds.wrong_kind(kind, kinds.COEFFICIENT_KINDS,
                               image_fix="give the coefficient file first, then its image: dctconv verify FILE IMAGE")
    if problem:
        raise CoefficientFileError(problem)
    if kind is kinds.COMPRESSED:
        return verify_compressed_file(coefficient_path, image, max_pixels=max_pixels, image_name=image_name)
    read = _coefficient_file.read_coefficient_file(coefficient_path, max_pixels=max_pixels)
    coefficients, header = read.coefficients, read.header
    if isinstance(image, (str, os.PathLike)):
        image_name = image_name or Path(image).name
        image, info = read_image(image, max_pixels=max_pixels)
        image_mode = info.mode
    image_name = image_name or "the image"
    image = check_image(image)
    if tuple(image.shape) != tuple(header.image_shape):
        raise ImageMismatchError(
            f"{image_name} is {image.shape[1]} x {image.shape[0]} pixels but the file holds the "
            f"{header.kind} of a {header.image_shape[1]} x {header.image_shape[0]} image"
        )
    if image_mode is not None and image_mode != header.image_mode:
        raise ImageMismatchError(
            f"{image_name} is {MODE_NAMES.get(image_mode, image_mode)} image but the file records "
            f"{MODE_NAMES.get(header.image_mode, header.image_mode)} one"
        )
    n = header.block_size
    magnitude = n * float(np.max(np.abs(image.astype(np.float64))))
    skipped = 0
    if header.kind == "compressed":
        dtype = np.dtype(np.float64)
        # compress computes in float64 whatever the image; so does this reference (forward
        # alone would keep a float32 image in float32, 1e-7 off).
        expected = np.asarray(forward(image.astype(dtype, copy=False), n), dtype=np.float64)
        kept = read.channel_mask
        tol = header.step / 2 + tolerance(dtype, terms=product_terms(n), magnitude=magnitude)
        compared = np.broadcast_to(kept[:, None, None], coefficients.shape).copy()
        # A zero that quantization explains (|c| <= step/2) is compared like any value;
        # one below the recorded threshold was zeroed on purpose.
        eps = tolerance(dtype, terms=product_terms(n), magnitude=magnitude)
        thresholded = compared & (coefficients == 0) & (np.abs(expected) < header.threshold + eps)
        thresholded &= np.abs(expected) > tol
        thresholded[0] = False
        skipped = int(thresholded.sum())
        compared &= ~thresholded
        what = (f"the compression of {image_name} (kept channels, quantization step {header.step:g})")
    else:
        dtype = work_dtype(coefficients.dtype)
        # In the file's precision: transform writes float64 coefficients of float32 images too.
        expected = np.asarray(forward(image.astype(dtype, copy=False), n))
        compared = np.ones(coefficients.shape, bool)
        tol = tolerance(dtype, terms=product_terms(n), magnitude=magnitude)
        what = f"the transform of {image_name}"
    difference = np.where(compared, np.abs(coefficients.astype(np.float64) - expected.astype(np.float64)), 0.0)
    count = int(compared.sum())
    location, error = _largest(difference, n)
    passed = error <= tol
    name = str(coefficient_path)
    if passed:
        reason = (f"{name} holds {what}: largest difference {error:.3g}"
                  + (f" at {location}" if location else "") + f", within the tolerance {tol:.3g}")
    else:
        reason = (f"{name} does not hold {what}: the coefficient at {location} differs by {error:.3g}, "
                  f"more than the tolerance {tol:.3g}")
    check = CheckResult(FILE_MATCHES_IMAGE, bool(passed), error, float(tol), n, f"{name} vs {image_name}")
    trusted = {"block_size": n}
    if header.kind == "compressed":
        trusted.update(kept_channels=int(np.count_nonzero(read.channel_mask)), step=header.step,
                       threshold=header.threshold)
    return FileVerification(check, header.kind, location, count, skipped, reason, trusted=trusted)


def _largest(difference, n: int):
    """(Location, value) of the largest entry of ``difference`` (n*n, h, w); (None, 0.0) where all
    are zero (no "where"), and an infinite error where any is not finite."""
    location, error = None, 0.0
    if difference.max(initial=0.0) > 0:
        channel, row, col = np.unravel_index(int(np.argmax(difference)), difference.shape)
        x, y = divmod(int(channel), n)
        location = Location(int(row), int(col), x, y)
        error = float(difference[channel, row, col])
    if not np.isfinite(difference).all():
        error = math.inf
    return location, error


def _verify_bound(path: Path, data, stored, image, nan, image_name: str) -> FileVerification:
    """A file with a promised largest error: decode it and check every pixel against the image.

    The promise is what such a file is for, and what this checks: the decoded pixels
    (:func:`dctconv.decode`) are within the bound of the image's, ``floor`` of it for
    integer pixels, and NaN exactly where the image has NaN. The levels are not compared
    (the residual makes up for any level a different machine's rounding moved).
    """
    from ..codec._core import decoded_pixels

    header = stored.header
    bound = header.max_error if header.mode == "F" else float(math.floor(header.max_error))
    decoded = decoded_pixels(data, stored)
    name, n = str(path), header.block_size
    moved = nan != (np.isnan(decoded) if decoded.dtype.kind == "f" else np.zeros(nan.shape, bool))
    error = np.abs(decoded.astype(np.float64) - image.astype(np.float64))
    error[nan] = 0.0
    error[moved] = math.inf
    largest = float(error.max())
    wrong = int(np.count_nonzero(error > bound))
    passed = wrong == 0
    what = f"the compression of {image_name} ({_settings_text(header)}, every pixel within {header.max_error:g})"
    if passed:
        reason = (f"{name} holds {what}: every decoded pixel is within {bound:g} of the image's "
                  f"(largest error {largest:g}" + (f", {int(nan.sum()):,} NaN pixels in place)" if nan.any() else ")"))
    elif moved.any():
        reason = f"{name} does not hold {what}: {int(moved.sum()):,} pixels are NaN in one and not the other"
    else:
        reason = (f"{name} does not hold {what}: {wrong:,} of {error.size:,} decoded pixels are more than "
                  f"{bound:g} from the image's, the largest by {largest:g}")
    check = CheckResult(FILE_MATCHES_IMAGE, passed, largest, bound, n, f"{name} vs {image_name}")
    trusted = {"block_size": n, "quantization": header.quantization}
    if header.quality is not None:
        trusted["quality"] = header.quality
    if header.step is not None:
        trusted["step"] = header.step
    if not header.partitioned:
        trusted["kept_channels"] = header.keep
    trusted["threshold"] = header.threshold
    return FileVerification(check, "compressed", None, error.size, 0, reason,
                            skipped_what="pixels not compared", unit="decoded pixels", trusted=trusted)


def _settings_text(header) -> str:
    """The quantization settings of a compressed file's header, in words."""
    n = header.block_size
    if header.quantization == "quality":
        parts = [f"quality {header.quality}"]
    else:
        parts = [f"step {header.step:g}" if header.quantization == "step" else "unquantized"]
    if header.keep < n * n:
        parts.append(f"K = {header.keep} of {n * n}")
    if header.threshold > 0:
        parts.append(f"threshold {header.threshold:g}")
    blocks = "16x16, 8x8 and 4x4 blocks chosen per region" if getattr(header, "partitioned", False) else f"{n}x{n} blocks"
    return f"{blocks}, " + ", ".join(parts)


def verify_compressed_file(path, image, *, max_pixels=None, image_name=None) -> FileVerification:
    """Check that a compressed file of :func:`dctconv.encode` holds exactly the levels of ``image``.

    The levels are computed again from the image with the settings the file's header
    records (:func:`dctconv.codec._core.quantize_image`: the same transform, threshold,
    steps and rounding as the encoder) and compared with the decoded ones, which
    must be equal. Two cases may go either way by float rounding (another machine's
    transform may differ in the last bits), so a level that differs there is not
    counted as wrong (counted in ``skipped``): a coefficient within the float64
    tolerance of a rounding boundary (an odd multiple of step/2, or where the encoder's
    dead zone moves it; the two levels then differ by one) or of the threshold (one of
    them 0). Unquantized files compare the stored coefficients with the transform
    within that tolerance.

    Parameters
    ----------
    path : str or Path
        The compressed file.
    image : str, Path or array_like
        The image file (read as ``dctconv compress`` reads it) or its pixels, of the
        pixel type the file records.
    max_pixels : int, optional
        Largest image allowed, for the file and the image file. Default
        :data:`dctconv.limits.DEFAULT_MAX_PIXELS`.
    image_name : str, optional
        How to name the image in the reason.

    Returns
    -------
    FileVerification
        ``.check.max_error`` is the largest difference of a compared coefficient, in
        coefficient units (a level difference times its step).

    Raises
    ------
    CodecFileError, CodecTooLargeError
        If the file cannot be read or decoded.
    ImageMismatchError
        If the image's size or pixel type is not the file's.

    Examples
    --------
    >>> import numpy as np, tempfile, os, dctconv
    >>> image = (np.add.outer(np.arange(16), np.arange(16)) * 8).astype(np.uint8)
    >>> path = os.path.join(tempfile.mkdtemp(), "c.dctz")
    >>> with open(path, "wb") as f:
    ...     _ = f.write(dctconv.encode(image, quality=50))
    >>> verify_compressed_file(path, image).check.passed
    True
    >>> image[8:, :4] += 20
    >>> print(verify_compressed_file(path, image).location)
    block row 2, block column 0, frequency (0, 0)
    """
    from ..codec._bound import fill_nans
    from ..codec._core import decode_levels, quantize_image
    from ..codec._dctz import read_file
    from ..io._images import read_image

    path = Path(path)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    data = read_file(path)
    stored = decode_levels(data, max_pixels=max_pixels)
    header = stored.header
    if isinstance(image, (str, os.PathLike)):
        image_name = image_name or Path(image).name
        image, _ = read_image(image, max_pixels=max_pixels, allow_nan=True)
    image_name = image_name or "the image"
    image = check_image(image)
    height, width = header.image_shape
    if tuple(image.shape) != (height, width):
        raise ImageMismatchError(
            f"{image_name} is {image.shape[1]} x {image.shape[0]} pixels but the file holds the "
            f"compression of a {width} x {height} image"
        )
    if image.dtype != header.dtype:
        raise ImageMismatchError(
            f"{image_name} has {image.dtype} pixels but the file holds the compression of an image "
            f"of {header.dtype} pixels (mode {header.mode})"
        )
    n = header.block_size
    nan = np.isnan(image) if image.dtype.kind == "f" else np.zeros(image.shape, bool)
    if header.max_error is not None:
        return _verify_bound(path, data, stored, image, nan, image_name)
    if nan.any():
        # The encoder filled the NaN pixels before the transform (dctconv.codec._bound.fill_nans).
        image = fill_nans(image, nan)
    if header.partitioned:
        # Each block size's levels against the image's, in the blocks the file gives that size.
        found = [_level_difference(_padded(image, 16), replace(header, block_size=p.block_size,
                                                                keep=p.block_size ** 2),
                                   p.levels, p.steps, p.present) for p in stored.passes]
        worst = max(range(len(found)), key=lambda k: found[k][0].max(initial=0.0))
        difference, skipped, tol = found[worst]
        n = stored.passes[worst].block_size
        skipped = sum(f[1] for f in found)
        count = sum(p.block_size ** 2 * int(p.present.sum()) for p in stored.passes) - skipped
    else:
        difference, skipped, tol = _level_difference(image, header, stored.levels, stored.steps, None)
        count = difference.size - skipped
    location, error = _largest(difference, n)
    passed = error <= tol
    what = f"the compression of {image_name} ({_settings_text(header)})"
    name = str(path)
    if passed:
        reason = (f"{name} holds {what}: every level is the one the image gives" if tol == 0 else
                  f"{name} holds {what}: largest difference {error:.3g}, within the tolerance {tol:.3g}")
    else:
        wrong = int(np.count_nonzero(difference > tol))
        where = f"{n}x{n} " if header.partitioned else ""
        reason = (f"{name} does not hold {what}: {wrong:,} of {count:,} coefficients differ, the one at "
                  f"{where}{location} by {error:.3g}, more than the tolerance {tol:.3g}")
    check = CheckResult(FILE_MATCHES_IMAGE, bool(passed), error, float(tol), n, f"{name} vs {image_name}")
    trusted = {"block_size": "auto" if header.partitioned else n, "quantization": header.quantization}
    if header.quality is not None:
        trusted["quality"] = header.quality
    if header.step is not None:
        trusted["step"] = header.step
    if not header.partitioned:
        trusted["kept_channels"] = header.keep
    trusted["threshold"] = header.threshold
    return FileVerification(
        check, "compressed", location, count, skipped, reason,
        skipped_what="coefficients within float rounding of a rounding tie or of the threshold not compared",
        trusted=trusted,
    )


def _padded(image, side: int):
    """``image`` edge-padded at the bottom and right to a multiple of ``side`` (as the encoder of block
    sizes chosen per region pads it)."""
    height, width = image.shape
    return np.pad(image, ((0, -height % side), (0, -width % side)), mode="edge")


def _in(levels, present):
    """``levels`` in the blocks of ``present`` (rows, cols) only, 0 elsewhere (None: all of them)."""
    return levels if present is None else levels * present


def _level_difference(image, header, stored_levels, stored_steps, present):
    """(difference per coefficient, coefficients skipped, tolerance) of stored levels against the image's
    (see :func:`verify_compressed_file`); ``present`` (rows, cols): compare those blocks only."""
    from ..codec._core import quantize_image

    n = header.block_size
    coefficients = np.asarray(_transform.forward(image, n, dtype=np.float64))
    expected = quantize_image(image, header, coefficients=coefficients)
    if header.quantization == "quality" and not np.array_equal(stored_levels, _in(expected.levels, present)):
        # Files written before the encoder chose its levels by rate-distortion cost hold them rounded.
        plain = quantize_image(image, header, coefficients=coefficients, rdoq=False)
        if (np.count_nonzero(stored_levels != _in(plain.levels, present))
                < np.count_nonzero(stored_levels != _in(expected.levels, present))):
            expected = plain
    magnitude = n * float(np.max(np.abs(image.astype(np.float64))))
    eps = tolerance(np.float64, terms=product_terms(n), magnitude=magnitude)
    size = np.abs(coefficients)
    # Either way by float rounding: near the threshold (one of the two is then 0) ...
    either_way = (np.abs(size - header.threshold) <= eps) if header.threshold > 0 else np.zeros(size.shape, bool)
    either_way[0] = False  # DC is never thresholded
    expected_levels = _in(expected.levels, present)
    if header.quantization == "none":
        tol = eps
        difference = np.abs(stored_levels - expected_levels)
    else:
        tol = 0.0
        steps = stored_steps[:, None, None]
        level_difference = np.abs(stored_levels - expected_levels)
        # ... or near a rounding boundary (the levels then differ by 1): |c| / step + 1/2 an
        # integer for plain rounding, |c| / step + 1/2 - z for AC levels with a dead zone z.
        shift = np.full((size.shape[0], 1, 1), 0.5)
        shift[1:] -= getattr(header, "dead_zone", 0) / 256
        moved = size / steps + shift
        either_way |= (np.abs(moved - np.rint(moved)) * steps <= eps) & (level_difference == 1)
        difference = level_difference * steps
    either_way &= difference > tol
    difference = np.where(either_way, 0.0, difference)
    return difference, int(either_way.sum()), tol
