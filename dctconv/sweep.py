"""Rate-distortion sweep: quality against file size for zonal block-DCT compression and for JPEG.

Each point is one compressed version of the same gray image: its size in bytes and
bits per pixel, and its PSNR and SSIM against the original (see
:mod:`dctconv.metrics`). The block DCT is swept over K = 1 .. n*n at a fixed step;
Pillow's JPEG encoder (libjpeg) over a range of qualities.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

import numpy as np

from .compression import compress
from .errors import InvalidImageError
from .image_io import to_pixels
from .limits import DEFAULT_BLOCK_SIZE
from .metrics import compare
from .transform import forward
from .validation import check_block_size, check_image

#: Pillow JPEG qualities of the sweep: 5, 10, ..., 95.
JPEG_QUALITIES = tuple(range(5, 100, 5))

#: Columns of the sweep CSV, in order.
COLUMNS = ("method", "keep", "quality", "bytes", "bits_per_pixel", "psnr_db", "ssim")


@dataclass(frozen=True)
class SweepPoint:
    """One point of the rate-distortion curve."""

    method: str
    """"dct" (zonal block DCT of dctconv) or "jpeg" (Pillow's encoder)."""
    keep: int | None
    """K for "dct", None for "jpeg"."""
    quality: int | None
    """JPEG quality for "jpeg", None for "dct"."""
    bytes: int
    """Size of the compressed file."""
    bits_per_pixel: float
    """8 * bytes / (H * W)."""
    psnr_db: float | None
    """PSNR against the original; None when identical."""
    ssim: float | None

    def as_dict(self) -> dict:
        return asdict(self)


def dct_sweep(
    image,
    *,
    image_mode: str,
    data_range: float,
    block_size: int = DEFAULT_BLOCK_SIZE,
    step: float = 1.0,
    threshold: float = 0.0,
    source: str = "",
) -> list[SweepPoint]:
    """Compress ``image`` with every K from 1 to n*n and measure each result.

    Each point is exactly what :func:`dctconv.compression.compress` with that K
    gives: its size is that of the compressed file (written to memory with the
    same ``save_compressed``, the same header and ``source``, so it matches the
    file on disk byte for byte), its metrics compare the original with the
    reconstruction rounded and clipped to ``image_mode``.

    Parameters
    ----------
    image : array_like, shape (H, W)
        The source pixels.
    image_mode : str
        Gray mode of the source ("L", "I;16", "I", "F"): the reconstruction is
        rounded and clipped to it.
    data_range : float
        Full range of the source bit depth, for PSNR and SSIM.
    block_size, step, threshold, source
        As for :func:`dctconv.compression.compress`; ``source`` is the file name
        recorded in the header.

    Returns
    -------
    list of SweepPoint, K = 1 .. n*n in order
    """
    n = check_block_size(block_size)
    image = check_image(image)
    coefficients = forward(image, n, dtype=np.float64)  # converted tile by tile: no float copy
    points = []
    for keep in range(1, n * n + 1):
        result = compress(image, block_size=n, keep=keep, step=step, threshold=threshold,
                          coefficients=coefficients)
        size = result.file_size(image_mode, source)
        quality = compare(image, to_pixels(result.reconstruction, image_mode), data_range=data_range)
        points.append(SweepPoint("dct", keep, None, size, 8 * size / image.size, quality.psnr_db, quality.ssim))
    return points


def jpeg_sweep(image, *, qualities=JPEG_QUALITIES) -> list[SweepPoint]:
    """Encode an 8-bit gray image with Pillow's JPEG encoder at each quality and measure it.

    Pillow's defaults are used except ``quality`` and ``optimize=True`` (optimal
    Huffman tables, lossless, the smallest file libjpeg makes at that quality).
    PSNR and SSIM use ``data_range`` 255.

    Raises
    ------
    InvalidImageError
        If ``image`` is not a 2-D uint8 array: JPEG here is 8-bit only.
    """
    from PIL import Image

    image = check_image(image)
    if image.dtype != np.uint8:
        raise InvalidImageError(f"JPEG comparison needs 8-bit gray pixels, got {image.dtype}")
    points = []
    picture = Image.fromarray(image)
    for quality in qualities:
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=int(quality), optimize=True)
        size = buffer.getbuffer().nbytes
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            pixels = np.asarray(decoded.convert("L"))
        measured = compare(image, pixels, data_range=255.0)
        points.append(SweepPoint("jpeg", None, int(quality), size, 8 * size / image.size,
                                 measured.psnr_db, measured.ssim))
    return points


def write_csv(file, points) -> None:
    """Write sweep points to an open text file as CSV: a header of :data:`COLUMNS`, one row each.

    Open the file with ``newline=""`` (the csv module's rule). A missing value
    (the PSNR of an identical image, the K of a JPEG point) is an empty cell.
    """
    writer = csv.DictWriter(file, fieldnames=COLUMNS)
    writer.writeheader()
    for point in points:
        writer.writerow({key: ("" if value is None else value) for key, value in point.as_dict().items()})
