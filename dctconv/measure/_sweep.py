"""Rate-distortion sweep: dctconv's codec against itself and against Pillow's JPEG, WebP and AVIF.

Each point is one compressed version of the same gray image: its size in bytes and
bits per pixel, and its PSNR and SSIM against the original (scikit-image, see
:mod:`dctconv.measure._metrics`) after decoding to the source's pixel type. The curves:

``dctconv``
    :func:`dctconv.encode` at ``quality`` 5, 10, ..., 95 and the block size, every
    frequency a candidate (no ``keep``, no ``threshold``).
``zonal``
    :func:`dctconv.encode` keeping the K lowest zigzag frequencies, K = 1 .. n², with
    the command's own quantization (its ``quality`` or ``step``, and ``threshold``).
``jpeg``, ``webp``, ``avif``
    Pillow's encoders at ``quality`` 5 .. 95: JPEG with ``optimize=True`` (optimal
    Huffman tables, the smallest file libjpeg makes at a quality), WebP with
    ``method=6`` (its slowest, best search), AVIF with Pillow's defaults (only where
    ``PIL.features.check("avif")``). These take 8-bit images only.

The Bjontegaard delta rate (BD-rate, [1]_) of the ``dctconv`` curve against each
other curve says how many percent more (positive) or fewer (negative) bits dctconv
needs for the same quality, averaged over the quality range both curves cover. It
is computed by the ``bjontegaard`` package [2]_, with Akima interpolation of log10
bits against the quality (PSNR or SSIM).

References
----------
.. [1] G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
   ITU-T SG16/Q6 VCEG-M33, 2001.
.. [2] https://github.com/FAU-LMS/bjontegaard
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InvalidImageError
from ._metrics import compare

#: Qualities of every quality-swept curve: 5, 10, ..., 95.
QUALITIES = tuple(range(5, 100, 5))

#: The curve the BD-rates are of; every other curve is an anchor.
TEST_CURVE = "dctconv"

#: Pillow's encoders, with the options each is run with besides ``quality``.
PILLOW_ENCODERS = {
    "jpeg": ("JPEG", {"optimize": True}),
    "webp": ("WEBP", {"method": 6}),
    "avif": ("AVIF", {}),
}

#: Short names of the curves, for notes and the printed BD-rates.
NAMES = {"dctconv": "dctconv", "zonal": "zonal", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}

#: What each curve is, for the JSON, the plot legend and the printed BD-rates.
CURVE_LABELS = {
    "dctconv": "dctconv, quality 5 .. 95",
    "zonal": "dctconv zonal, keep K = 1 .. n²",
    "jpeg": "Pillow JPEG (optimize), quality 5 .. 95",
    "webp": "Pillow WebP (method 6), quality 5 .. 95",
    "avif": "Pillow AVIF, quality 5 .. 95",
}

#: Interpolation of the BD-rate (``bjontegaard.bd_rate(method=...)``).
BD_METHOD = "akima"

#: Columns of the sweep CSV, in order.
COLUMNS = ("method", "keep", "quality", "bytes", "bits_per_pixel", "psnr_db", "ssim")

#: The quality measures the BD-rates are computed at: key of a point, name in the JSON.
BD_MEASURES = {"psnr_db": "psnr", "ssim": "ssim"}


@dataclass(frozen=True)
class SweepPoint:
    """One point of a rate-distortion curve."""

    method: str
    """Name of the curve: "dctconv", "zonal", "jpeg", "webp" or "avif"."""
    keep: int | None
    """K of a "zonal" point; None otherwise."""
    quality: int | None
    """Quality of the encoder (None for "zonal" points with a flat ``step``)."""
    bytes: int
    """Size of the compressed file."""
    bits_per_pixel: float
    """8 * bytes / (H * W)."""
    psnr_db: float | None
    """PSNR against the original; None when identical."""
    ssim: float | None
    """SSIM against the original; None for images under 3 pixels on a side."""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BDRate:
    """BD-rate of the ``dctconv`` curve against one anchor curve, at equal PSNR and at equal SSIM."""

    anchor: str
    psnr: float | None
    """Percent bits at equal PSNR (negative: dctconv needs fewer); None when not computable."""
    ssim: float | None
    """The same at equal SSIM."""
    psnr_overlap: float
    """Share of the two curves' joint PSNR range that both cover (the range averaged over)."""
    ssim_overlap: float
    psnr_points: tuple[int, int] = (0, 0)
    """Points of the dctconv and anchor curves used (their rate-distortion envelopes)."""
    ssim_points: tuple[int, int] = (0, 0)

    def as_dict(self) -> dict:
        return {
            "anchor": self.anchor,
            "psnr_percent": self.psnr,
            "ssim_percent": self.ssim,
            "psnr_overlap": self.psnr_overlap,
            "ssim_overlap": self.ssim_overlap,
            "psnr_points": list(self.psnr_points),
            "ssim_points": list(self.ssim_points),
        }


@dataclass
class Sweep:
    """Every curve of a sweep and the BD-rates of ``dctconv`` against the others."""

    points: list[SweepPoint]
    bd_rates: list[BDRate]
    curves: dict[str, dict] = field(default_factory=dict)
    """Per curve: its label and the settings it was run with."""
    left_out: dict[str, str] = field(default_factory=dict)
    """Curves not drawn, and why (e.g. Pillow's encoders on a 16-bit image)."""

    def as_dict(self) -> dict:
        return {
            "test_curve": TEST_CURVE,
            "bd_rate_method": BD_METHOD,
            "curves": self.curves,
            "left_out": self.left_out,
            "bd_rates": {b.anchor: b.as_dict() for b in self.bd_rates},
            "points": [p.as_dict() for p in self.points],
        }


def _point(method, image, data, pixels, *, data_range, keep=None, quality=None) -> SweepPoint:
    measured = compare(image, pixels, data_range=data_range)
    size = len(data)
    return SweepPoint(method, keep, quality, size, 8 * size / image.size, measured.psnr_db, measured.ssim)


def codec_sweep(image, *, block_size: int, data_range: float, qualities=QUALITIES) -> list[SweepPoint]:
    """The ``dctconv`` curve: :func:`dctconv.encode` at each quality, decoded and measured.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The source pixels (uint8, uint16, int32 or float32).
    block_size : int
        Block side n of the codec.
    data_range : float
        Full range of the source bit depth, for PSNR and SSIM.
    qualities : sequence of int
        The qualities of the curve.

    Returns
    -------
    list of SweepPoint, in the order of ``qualities``
    """
    from ..codec._core import decode, encode

    points = []
    for quality in qualities:
        data = encode(image, block_size=block_size, quality=int(quality))
        points.append(_point("dctconv", image, data, decode(data, max_pixels=None), data_range=data_range,
                             quality=int(quality)))
    return points


def zonal_sweep(
    image, *, block_size: int, data_range: float, quality: int | None = None, step: float | None = None,
    threshold: float = 0.0,
) -> list[SweepPoint]:
    """The ``zonal`` curve: :func:`dctconv.encode` with ``keep`` = 1 .. n², decoded and measured.

    ``quality``, ``step`` and ``threshold`` are passed to every encode, as the command
    got them, so the point at the command's own K is the file it wrote.
    """
    from ..codec._core import decode, encode

    points = []
    for keep in range(1, block_size * block_size + 1):
        data = encode(image, block_size=block_size, quality=quality, step=step, keep=keep,
                      threshold=threshold)
        points.append(_point("zonal", image, data, decode(data, max_pixels=None), data_range=data_range, keep=keep,
                             quality=quality))
    return points


def pillow_available(method: str) -> bool:
    """Whether this Pillow can write and read ``method`` ("jpeg", "webp", "avif")."""
    from PIL import features

    return bool(features.check({"jpeg": "jpg", "webp": "webp", "avif": "avif"}[method]))


def pillow_sweep(image, method: str, *, qualities=QUALITIES) -> list[SweepPoint]:
    """Encode an 8-bit gray image with one of Pillow's encoders at each quality and measure it.

    The options are those of :data:`PILLOW_ENCODERS`; the decoded image is converted
    to 8-bit gray ("L": WebP decodes to RGB) before it is compared, with ``data_range``
    255.

    Raises
    ------
    InvalidImageError
        If ``image`` is not a 2-D uint8 array: these encoders take 8-bit pixels only.
    """
    from PIL import Image

    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise InvalidImageError(f"{method.upper()} comparison needs 8-bit gray pixels, got {image.dtype}")
    encoder, options = PILLOW_ENCODERS[method]
    picture = Image.fromarray(image)
    points = []
    for quality in qualities:
        buffer = io.BytesIO()
        picture.save(buffer, format=encoder, quality=int(quality), **options)
        data = buffer.getvalue()
        with Image.open(io.BytesIO(data)) as decoded:
            pixels = np.asarray(decoded.convert("L"))
        points.append(_point(method, image, data, pixels, data_range=255.0, quality=int(quality)))
    return points


def envelope(points, measure: str) -> tuple[np.ndarray, np.ndarray]:
    """The rate-distortion envelope of a curve: (bits per pixel, quality), both strictly increasing.

    Points without the measure (None: identical images, or no SSIM) are dropped, and so
    is every point that some point with at most its bits beats or equals in quality:
    a curve that is not monotone (a quality step that buys nothing) cannot be
    interpolated as a function of quality, and no one would choose such a point.
    """
    known = sorted((p.bits_per_pixel, getattr(p, measure)) for p in points
                   if getattr(p, measure) is not None and p.bits_per_pixel > 0)
    rates, values = [], []
    for rate, value in known:
        if values and value <= values[-1]:
            continue
        if rates and rate == rates[-1]:  # same size, better quality: it replaces the other
            rates.pop()
            values.pop()
        rates.append(rate)
        values.append(value)
    return np.array(rates), np.array(values)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return 0.0
    total = max(a.max(), b.max()) - min(a.min(), b.min())
    common = min(a.max(), b.max()) - max(a.min(), b.min())
    return float(max(common, 0.0) / total) if total > 0 else 0.0


def bd_rate(test, anchor, measure: str) -> tuple[float | None, float, tuple[int, int]]:
    """BD-rate in percent of the ``test`` points against the ``anchor`` points at equal ``measure``.

    Returns the BD-rate (None when either envelope has fewer than 2 points or the
    curves' quality ranges do not overlap), the overlap of the two ranges (a share of
    their union), and the number of envelope points of each curve.
    """
    import bjontegaard

    test_rate, test_value = envelope(test, measure)
    anchor_rate, anchor_value = envelope(anchor, measure)
    overlap = _overlap(test_value, anchor_value)
    used = (len(test_rate), len(anchor_rate))
    if min(used) < 2 or overlap == 0:
        return None, overlap, used
    with warnings.catch_warnings():
        # The package warns when the overlap is under 75 %; the JSON records the overlap.
        warnings.simplefilter("ignore")
        value = bjontegaard.bd_rate(anchor_rate, anchor_value, test_rate, test_value, method=BD_METHOD,
                                    require_matching_points=False, min_overlap=0)
    value = float(value)
    return (value if math.isfinite(value) else None), overlap, used


def bd_rates(points) -> list[BDRate]:
    """BD-rates of the ``dctconv`` curve against every other curve among ``points``."""
    test = [p for p in points if p.method == TEST_CURVE]
    rates = []
    for anchor in dict.fromkeys(p.method for p in points if p.method != TEST_CURVE):
        others = [p for p in points if p.method == anchor]
        psnr, psnr_overlap, psnr_points = bd_rate(test, others, "psnr_db")
        ssim, ssim_overlap, ssim_points = bd_rate(test, others, "ssim")
        rates.append(BDRate(anchor, psnr, ssim, psnr_overlap, ssim_overlap, psnr_points, ssim_points))
    return rates


def sweep(
    image,
    *,
    data_range: float,
    block_size: int,
    quality: int | None = None,
    step: float | None = None,
    threshold: float = 0.0,
    qualities=QUALITIES,
    others=("jpeg", "webp", "avif"),
) -> Sweep:
    """Every curve of the sweep for one image, and the BD-rates of ``dctconv`` against the others.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The source pixels.
    data_range : float
        Full range of the source bit depth, for PSNR and SSIM.
    block_size : int
        Block side n of both dctconv curves.
    quality, step, threshold
        The quantization of the ``zonal`` curve (as :func:`dctconv.encode` takes them).
    qualities : sequence of int
        Qualities of the ``dctconv`` curve and of Pillow's encoders.
    others : sequence of str
        Pillow's encoders to compare with; those that this Pillow lacks, or that
        cannot take the image (not 8-bit), are listed in ``Sweep.left_out``.

    Returns
    -------
    Sweep
    """
    points = codec_sweep(image, block_size=block_size, data_range=data_range, qualities=qualities)
    points += zonal_sweep(image, block_size=block_size, data_range=data_range, quality=quality,
                          step=step, threshold=threshold)
    n = block_size
    curves = {
        "dctconv": {"label": CURVE_LABELS["dctconv"], "block_size": n, "qualities": list(qualities)},
        "zonal": {"label": CURVE_LABELS["zonal"].replace("n²", str(n * n)), "block_size": n,
                  "keep": [1, n * n], "quality": quality, "step": step, "threshold": threshold},
    }
    left_out = {}
    for method in others:
        encoder, options = PILLOW_ENCODERS[method]
        if np.asarray(image).dtype != np.uint8:
            left_out[method] = "Pillow's encoders take 8-bit images only"
        elif not pillow_available(method):
            left_out[method] = "this Pillow cannot write it"
        else:
            points += pillow_sweep(image, method, qualities=qualities)
            curves[method] = {"label": CURVE_LABELS[method], "encoder": f"Pillow {encoder}",
                              "options": options, "qualities": list(qualities)}
    return Sweep(points, bd_rates(points), curves, left_out)


def write_csv(file, points) -> None:
    """Write sweep points to an open text file as CSV: a header of :data:`COLUMNS`, one row each.

    Open the file with ``newline=""`` (the csv module's rule). A missing value
    (the PSNR of an identical image, the K of a JPEG point) is an empty cell.
    """
    writer = csv.DictWriter(file, fieldnames=COLUMNS)
    writer.writeheader()
    for point in points:
        writer.writerow({key: ("" if value is None else value) for key, value in point.as_dict().items()})
