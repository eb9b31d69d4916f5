"""The coefficient file: a small versioned header kept apart from the coefficient arrays.

A coefficient file is an ``.npz`` archive (numpy's zip of ``.npy`` arrays) that is
always read with ``allow_pickle=False``, so loading one never runs code.
"""

from __future__ import annotations

import dataclasses
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CoefficientFileError
from .image_io import GRAY_MODES
from .kernels import MAX_BLOCK_SIZE, MIN_BLOCK_SIZE
from .transform import blocks_shape

FORMAT_VERSION = 1
KINDS = ("transform", "compressed")


@dataclass(frozen=True)
class CoefficientHeader:
    """What a decoder needs besides the arrays: block size, image shape and pixel mode."""

    block_size: int
    """n, the patch side."""
    image_shape: tuple[int, int]
    """(H, W) of the original image, before edge padding."""
    image_mode: str
    """Gray mode of the source ("L", "I;16", "I", "F"): the reconstruction is written in it."""
    source: str = ""
    """File name of the source image, for the record."""
    kind: str = "transform"
    """"transform" (all coefficients, float) or "compressed" (kept channels, quantized)."""
    step: float = 0.0
    """Quantization step of a compressed file; 0 means the values are stored unquantized."""
    threshold: float = 0.0
    """Threshold of a compressed file: kept AC coefficients with |c| below it were zeroed."""
    format_version: int = FORMAT_VERSION

    @property
    def grid(self) -> tuple[int, int]:
        """(block rows, block columns) of the coefficient maps."""
        return blocks_shape(self.image_shape, self.block_size)


def save_coefficients(file, coefficients, header: CoefficientHeader) -> None:
    """Write all coefficient maps (kind "transform") to ``file`` (a path or a binary file)."""
    arrays = {"coefficients": np.asarray(coefficients)}
    np.savez(file, **_header_arrays(dataclasses.replace(header, kind="transform")), **arrays)


def save_compressed(file, kept, channel_mask, header: CoefficientHeader) -> None:
    """Write only the kept channels (kind "compressed") with ``np.savez_compressed``.

    ``kept`` is (K, rows, columns): quantization levels (integers) when ``header.step``
    is positive, the raw float coefficients when it is 0. ``channel_mask`` is the
    boolean (n*n,) mask of the K kept channels.
    """
    arrays = {"kept": np.asarray(kept), "channel_mask": np.asarray(channel_mask, dtype=bool)}
    header = dataclasses.replace(header, kind="compressed")
    np.savez_compressed(file, **_header_arrays(header), **arrays)


def _header_arrays(header: CoefficientHeader) -> dict[str, np.ndarray]:
    return {
        "format_version": np.array(header.format_version, dtype=np.int64),
        "kind": np.array(header.kind),
        "block_size": np.array(header.block_size, dtype=np.int64),
        "image_shape": np.array(header.image_shape, dtype=np.int64),
        "image_mode": np.array(header.image_mode),
        "source": np.array(header.source),
        "step": np.array(header.step, dtype=np.float64),
        "threshold": np.array(header.threshold, dtype=np.float64),
    }


def load_coefficients(path) -> tuple[np.ndarray, CoefficientHeader]:
    """Read a coefficient file and return the full (n*n, rows, columns) maps and its header.

    A compressed file is decoded: kept channels are multiplied by the step, the
    others are zero.

    Raises
    ------
    CoefficientFileError
        If the file is not an npz archive, misses a key, holds a pickled object
        array, has an unknown format version, inconsistent shapes, or NaN/infinity.
    """
    header, arrays = _read(path)
    n = header.block_size
    rows, cols = header.grid
    if header.kind == "transform":
        coefficients = arrays["coefficients"]
        _expect_shape(coefficients, (n * n, rows, cols), "coefficients")
        if not np.issubdtype(coefficients.dtype, np.floating):
            raise CoefficientFileError(f"coefficients have dtype {coefficients.dtype}, expected float")
    else:
        mask, kept = arrays["channel_mask"], arrays["kept"]
        _expect_shape(mask, (n * n,), "channel_mask")
        if mask.dtype != bool:
            raise CoefficientFileError(f"channel_mask has dtype {mask.dtype}, expected bool")
        _expect_shape(kept, (int(mask.sum()), rows, cols), "kept")
        if not (np.issubdtype(kept.dtype, np.integer) or np.issubdtype(kept.dtype, np.floating)):
            raise CoefficientFileError(f"kept has dtype {kept.dtype}, expected integers or floats")
        coefficients = np.zeros((n * n, rows, cols), np.float64)
        coefficients[mask] = kept * header.step if header.step > 0 else kept
    if not np.isfinite(coefficients).all():
        raise CoefficientFileError("coefficients contain NaN or infinity")
    return coefficients, header


_REQUIRED = {
    "transform": ("coefficients",),
    "compressed": ("kept", "channel_mask"),
}


def _read(path) -> tuple[CoefficientHeader, dict[str, np.ndarray]]:
    try:
        with np.load(Path(path), allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise CoefficientFileError("not an .npz archive (a single .npy array?)")
            keys = set(archive.files)
            missing = [k for k in ("format_version", "block_size", "image_shape") if k not in keys]
            if missing:
                raise CoefficientFileError(
                    f"not a dctconv coefficient file: missing {', '.join(missing)}"
                )
            version = _scalar(archive, "format_version", int)
            if version != FORMAT_VERSION:
                raise CoefficientFileError(
                    f"format version {version} is not supported (this dctconv reads version "
                    f"{FORMAT_VERSION}); upgrade dctconv or re-create the file"
                )
            header = _header(archive, keys)
            missing = [k for k in _REQUIRED[header.kind] if k not in keys]
            if missing:
                raise CoefficientFileError(f"{header.kind} file is missing {', '.join(missing)}")
            arrays = {k: archive[k] for k in _REQUIRED[header.kind]}
    except CoefficientFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc) or "pickle" in str(exc).lower():
            raise CoefficientFileError(
                "holds a pickled object array; refused (dctconv never unpickles)"
            ) from None
        raise CoefficientFileError(f"cannot read coefficient file: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CoefficientFileError(f"cannot read coefficient file: {exc}") from None
    return header, arrays


def _scalar(archive, key: str, kind):
    value = archive[key]
    if value.shape != () or value.dtype.kind not in {int: "iu", float: "iuf", str: "U"}[kind]:
        raise CoefficientFileError(f"{key} must be a single {kind.__name__}, got {value.dtype} {value.shape}")
    return kind(value)


def _header(archive, keys) -> CoefficientHeader:
    block_size = _scalar(archive, "block_size", int)
    if not MIN_BLOCK_SIZE <= block_size <= MAX_BLOCK_SIZE:
        raise CoefficientFileError(f"block_size {block_size} is not from 2 to 64")
    shape = archive["image_shape"]
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 1).any():
        raise CoefficientFileError(f"image_shape must be two positive integers, got {shape.tolist()}")
    kind = _scalar(archive, "kind", str) if "kind" in keys else "transform"
    if kind not in KINDS:
        raise CoefficientFileError(f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    mode = _scalar(archive, "image_mode", str) if "image_mode" in keys else "F"
    if mode not in GRAY_MODES:
        raise CoefficientFileError(f"unknown image_mode {mode!r} (expected one of {', '.join(GRAY_MODES)})")
    step = _scalar(archive, "step", float) if "step" in keys else 0.0
    if not math.isfinite(step) or step < 0:
        raise CoefficientFileError(f"step must be a finite number >= 0, got {step}")
    threshold = _scalar(archive, "threshold", float) if "threshold" in keys else 0.0
    if not math.isfinite(threshold) or threshold < 0:
        raise CoefficientFileError(f"threshold must be a finite number >= 0, got {threshold}")
    source = _scalar(archive, "source", str) if "source" in keys else ""
    return CoefficientHeader(
        block_size=block_size,
        image_shape=(int(shape[0]), int(shape[1])),
        image_mode=mode,
        source=source,
        kind=kind,
        step=step,
        threshold=threshold,
    )


def _expect_shape(array, shape, name) -> None:
    if array.shape != tuple(shape):
        raise CoefficientFileError(
            f"{name} has shape {array.shape}, expected {tuple(shape)} for this block size and image shape"
        )
