"""What ``encode(..., max_error=E)`` and NaN pixels add to the codec: a bounded residual and a mask.

The bound (section RESD of format version 4, docs/formats.md): after the DCT levels are
decoded into the prediction ``P`` (the pixels :func:`dctconv.decode` would give
without the residual), each pixel's residual ``r = x - P`` is quantized so that the
decoded pixel is within E of ``x``:

* integer pixels (L, I;16, I), with ``e = floor(E)`` as JPEG-LS's NEAR [1]_:
  ``q = sign(r) floor((|r| + e) / (2e + 1))``, decoded as ``P + q (2e + 1)``;
  ``|x - decoded| <= e``, and ``e = 0`` is lossless;
* float pixels (F): ``q = rint(r / d)`` with ``d = 2 (E - u)``, where ``u`` is the
  spacing of float32 numbers at the larger magnitude of the data range, decoded as
  ``float32(P + q d)``: the rounding to float32 adds at most ``u / 2``, so
  ``|x - decoded| <= E - u / 2``. A bound below ``u`` cannot be kept and is refused.

``q`` is 0 wherever the prediction is already within the bound; the map of ``q`` is
coded by :func:`dctconv.codec._entropy.encode_integer_map`. Decoded pixels are then
clipped to the data range, which contains ``x``, so clipping never moves a pixel away
from it.

NaN pixels (float rasters' no-data, section NANM) are replaced before the DCT by a
smooth fill of their surroundings (:func:`fill_nans`), so that they cost no
coefficients, and their mask is stored on its own (:func:`encode_mask`).

References
----------
.. [1] ITU-T T.87 (JPEG-LS), 1998, A.4.4: near-lossless quantization of the prediction error.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from ..errors import CodecFileError, InvalidCompressionError


def check_max_error(max_error, mode: str, data_range) -> float | None:
    """``max_error`` as a float >= 0 (None: no bound), or InvalidCompressionError."""
    if max_error is None:
        return None
    try:
        value = float(max_error)
    except (TypeError, ValueError):
        raise InvalidCompressionError(f"max error must be a number >= 0, got {max_error!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise InvalidCompressionError(f"max error must be a finite number >= 0, got {max_error!r}")
    if mode == "F" and value <= float32_spacing(data_range):
        raise InvalidCompressionError(
            f"max error {value:g} is below the resolution of float32 values up to "
            f"{max(abs(data_range[0]), abs(data_range[1])):g} ({float32_spacing(data_range):.3g}); "
            "give a larger bound"
        )
    return value


def float32_spacing(data_range) -> float:
    """Spacing of float32 numbers at the larger magnitude of ``data_range`` (u above)."""
    top = np.float32(max(abs(float(data_range[0])), abs(float(data_range[1]))))
    if top == np.finfo(np.float32).max:  # np.spacing is inf there: the binade's spacing is that of its neighbour below
        top = np.nextafter(top, np.float32(0))
    return float(np.spacing(top))


def residual_step(max_error: float, mode: str, data_range) -> float:
    """The residual's quantization step: ``2 floor(E) + 1`` for integers, ``2 (E - u)`` for floats."""
    if mode == "F":
        return 2.0 * (max_error - float32_spacing(data_range))
    return float(2 * math.floor(max_error) + 1)


def quantize_residual(image, prediction, max_error: float, mode: str, data_range) -> np.ndarray:
    """The int64 map q of the residual ``image - prediction`` (0 at NaN pixels)."""
    step = residual_step(max_error, mode, data_range)
    residual = image.astype(np.float64) - prediction.astype(np.float64)
    if mode == "F":
        q = np.rint(residual / step)
    else:
        near = math.floor(max_error)
        q = np.sign(residual) * np.floor((np.abs(residual) + near) / step)
    q[np.isnan(q)] = 0
    from ._engine import LEVEL_LIMIT

    if q.size and not np.abs(q).max() < LEVEL_LIMIT:
        # Only a float bound a hair above float32's resolution makes the step this small.
        raise InvalidCompressionError(
            f"max error {max_error:g} is too close to the resolution of float32 values up to "
            f"{max(abs(data_range[0]), abs(data_range[1])):g} ({float32_spacing(data_range):.3g}): the residual "
            "needs levels beyond 2**59; give a larger bound"
        )
    return q.astype(np.int64)


def residual_sections(image, source, nan, prediction, max_error: float, mode: str, data_range, *,
                      codings=("ADRS", "ADRP")) -> dict:
    """The section of the residual of a bound, the smaller of its ``codings`` (none when every q is 0).

    ``ADRS`` codes q as it is (:func:`dctconv.codec._engine.encode_map`), ``ADRP`` predicts
    each q from its decoded neighbours (:func:`dctconv.codec._engine.encode_predicted_map`):
    the first wins where the prediction ``prediction`` already leaves an unstructured
    residual, the second where q still holds the image's structure (no DCT levels, or
    coarse ones). At NaN pixels (``nan``) q is 0 for ADRS; for ADRP it is the residual of
    the filled ``source`` there, which continues the field around the holes (those pixels
    decode as NaN whatever their q).
    """
    from ._engine import encode_map, encode_predicted_map

    q = quantize_residual(image, prediction, max_error, mode, data_range)
    if not q.any():
        return {}
    coded = []
    if "ADRS" in codings:
        coded.append(("ADRS", encode_map(q[None])))
    if "ADRP" in codings:
        filled = q if nan is None else np.where(nan, quantize_residual(source, prediction, max_error, mode, data_range), q)
        coded.append(("ADRP", encode_predicted_map(filled)))
    tag, data = min(coded, key=lambda coding: len(coding[1]))
    return {tag: data}


def no_levels_step(data_range, block_size: int) -> float:
    """A flat step under which every DCT level of an image within ``data_range`` is 0.

    An orthonormal n x n DCT coefficient is at most n times the largest magnitude of the
    block's pixels; four times that rounds to 0. The decoded levels are then a constant
    image, and the residual q of a bound is the image itself, quantized as JPEG-LS's
    near-lossless mode does, for ADRP's per-pixel prediction to code.
    """
    top = max(abs(float(data_range[0])), abs(float(data_range[1])), 1.0)
    return 4.0 * block_size * top


def apply_residual(prediction, q, max_error: float, mode: str, data_range) -> np.ndarray:
    """The decoded pixels: ``prediction + q * step`` in the prediction's dtype, clipped to the data range."""
    step = residual_step(max_error, mode, data_range)
    low, high = data_range
    if mode == "F":
        values = prediction.astype(np.float64) + q * step
        return np.clip(values, low, high).astype(np.float32)
    values = prediction.astype(np.int64) + q * int(step)
    return np.clip(values, math.ceil(low), math.floor(high)).astype(prediction.dtype)


def fill_nans(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` (float32) with its NaN pixels (``mask``) replaced by a smooth fill of the pixels around them.

    Each NaN pixel first takes its nearest pixel's value
    (``scipy.ndimage.distance_transform_edt``), then the holes are smoothed by a few
    rounds of a 5 x 5 mean in which the known pixels stay fixed: the blocks under a
    hole then hold few and small coefficients.
    """
    from scipy import ndimage

    if mask.all():
        return np.zeros(image.shape, np.float32)
    index = ndimage.distance_transform_edt(mask, return_distances=False, return_indices=True)
    filled = image[tuple(index)].astype(np.float64)
    for _ in range(8):
        smooth = ndimage.uniform_filter(filled, 5, mode="nearest")
        filled[mask] = smooth[mask]
    return filled.astype(np.float32)


def encode_mask(mask: np.ndarray) -> bytes:
    """The NANM section: one kind byte, then the mask as the smaller of two codings.

    Kind 0: the lengths of the runs of equal values along the rows (the first run of
    zeros, then alternating; row after row as one sequence), as LEB128 varints,
    zlib-compressed. Kind 2: the mask (0 or 1) as the engine codes an integer map
    (:func:`dctconv.codec._engine.encode_map`). Kind 1, :func:`encode_integer_map` of
    the mask, is what files before the engine may hold; it is read, not written.
    """
    from ._engine import encode_map

    flat = mask.reshape(-1).astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    runs = np.diff(bounds)
    if flat[0]:
        runs = np.concatenate([[0], runs])
    kinds = [b"\x00" + zlib.compress(_varints(runs), 9), b"\x02" + encode_map(mask[None].astype(np.int64))]
    return min(kinds, key=len)


def decode_mask(data: bytes, shape) -> np.ndarray:
    """The bool mask of ``shape`` :func:`encode_mask` wrote; CodecFileError if it does not fit."""
    from ._entropy import decode_integer_map

    if not data:
        raise CodecFileError("section NANM is empty")
    size = int(shape[0]) * int(shape[1])
    if data[0] in (1, 2):
        if data[0] == 1:
            values = decode_integer_map(data[1:], (1, *shape), section="NANM")[0]
        else:
            from ._engine import decode_map

            values = decode_map(data[1:], (1, *shape), tag="NANM")[0]
        if not np.isin(values, (0, 1)).all():
            raise CodecFileError("section NANM holds values other than 0 and 1")
        return values.astype(bool)
    if data[0] != 0:
        raise CodecFileError(f"section NANM has unknown kind {data[0]}")
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data[1:], 10 * size + 16)
    except zlib.error as exc:
        raise CodecFileError(f"section NANM damaged: {exc}") from None
    if not inflater.eof:
        raise CodecFileError("section NANM ends early (its zlib stream is not complete)")
    if inflater.unused_data:
        left = len(inflater.unused_data)
        raise CodecFileError(f"section NANM has {left} byte{'s' if left != 1 else ''} left over after its zlib stream")
    runs = _from_varints(raw)
    if runs.sum() != size:
        raise CodecFileError("section NANM's runs do not cover the image exactly")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(shape)


def _varints(values: np.ndarray) -> bytes:
    out = bytearray()
    for value in values.tolist():
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _from_varints(data: bytes) -> np.ndarray:
    values, value, shift = [], 0, 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise CodecFileError("section NANM holds a run longer than any image")
        else:
            values.append(value)
            value, shift = 0, 0
    if shift:
        raise CodecFileError("section NANM ends inside a run length")
    return np.array(values, np.int64)


#: Qualities tried by ``encode(..., max_error=E)`` without ``quality`` or ``step``.
TRIAL_QUALITIES = (50, 75, 90, 95)
#: When a quality gives the smallest trial file, the qualities this far on either side of
#: it are tried next, in this order (a descent: 10, then 5, then 2 around the better one).
REFINE_DELTAS = (10, 5, 2)
#: Flat DCT steps tried by ``encode(..., max_error=E)`` without ``quality`` or ``step``,
#: as multiples of ``max(E, 1/2)`` for integers and of E for floats; the candidate giving
#: the smallest file is kept (docs/science.md).
STEP_FACTORS = (1.0, 2.0, 4.0)
#: Side of the central crop the candidate steps are tried on for larger images.
TRIAL_SIDE = 384


def trial_steps(max_error: float, mode: str) -> list[float]:
    """The candidate flat steps for a bound E."""
    unit = max(max_error, 0.5) if mode != "F" else max_error
    return [unit * factor for factor in STEP_FACTORS]


def trial_crop(image: np.ndarray) -> np.ndarray:
    """The central TRIAL_SIDE x TRIAL_SIDE crop of ``image`` (all of it if smaller)."""
    height, width = image.shape
    top, left = max(0, (height - TRIAL_SIDE) // 2), max(0, (width - TRIAL_SIDE) // 2)
    return image[top : top + TRIAL_SIDE, left : left + TRIAL_SIDE]
