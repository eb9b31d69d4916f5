"""What a command writes for each input: the names of its outputs, and what ``compress`` reports.

The numbers are the schema of ``<stem>_metrics.json``. Whether the outputs are up to date
(``--skip-existing``): :mod:`dctconv.runtime._records`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


def transform_output_names(stem: str, *, pictures: bool = True) -> dict[str, str]:
    """Names of the files :func:`~dctconv.runtime._jobs.transform_file` writes for an image of this stem."""
    names = {"coefficients": f"{stem}_coefficients.npz"}
    if pictures:
        names["maps"] = f"{stem}_maps.png"
    return names


def original_stem(path) -> str:
    """Stem of the image a coefficient file came from: its name without ``_coefficients``/``_compressed``."""
    stem = Path(path).stem
    for suffix in ("_coefficients", "_compressed"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


@dataclass(frozen=True)
class CompressionReport:
    """The numbers of one compressed image: what ``<stem>_metrics.json`` holds.

    The command's table and its ``--json`` both read this, and :meth:`as_dict` is
    the json file, key for key.
    """

    source: str
    image_mode: str
    width: int
    height: int
    block_size: int
    quality: int | None
    """The quality of the steps (1 to 100), or None with a flat ``step``."""
    step: float | None
    """The flat step (0: unquantized), or None with ``quality``."""
    kept_per_block: int
    """K: the lowest zigzag frequencies that may be nonzero (n*n unless --keep)."""
    kept_fraction: float
    threshold: float
    nonzero_fraction: float
    """Share of all coefficients whose stored level is not 0."""
    compressed_bytes: int
    """Size of the compressed file on disk."""
    bits_per_pixel: float
    """8 * compressed_bytes / pixels."""
    data_range: list[float]
    """[low, high]: the range PSNR and SSIM are computed over (``high - low``), the
    compressed file's: 0 .. 255 for 8-bit images, the image's own (or ``--data-range``)
    for the others."""
    psnr_db: float | None
    """None when the reconstruction is identical (infinite PSNR)."""
    ssim: float | None
    mse: float
    """Mean squared error, in squared pixel units."""
    max_abs_error: float
    """The largest |error|, in pixel units."""
    rmse: float
    """Root mean squared error, in pixel units."""
    max_error_bound: float | None
    """The largest error the file promises (``--max-error``, or the default bound), None: no promise."""
    nan_pixels: int
    """NaN (no-data) pixels of a float image; they decode as NaN and are left out of PSNR, MSE and RMSE."""
    error_scale: float
    """Gray values of the error picture per unit of error."""
    files: dict[str, str]
    """Names of the files written, by role ("compressed", "summary", ...)."""
    bd_rates: dict[str, dict] | None = None
    """With the sweep: per curve ("zonal", "jpeg", ...), the BD-rates of dctconv against it."""

    def as_dict(self) -> dict:
        """The json form: every field, in this order."""
        return dataclasses.asdict(self)


def compress_output_names(stem: str, reconstruction_suffix: str, *, sweep: bool = False,
                          pictures: bool = True) -> dict[str, str]:
    """Names of the files :func:`~dctconv.runtime._jobs.compress_file` writes for an image of this stem, by kind."""
    from ..codec._dctz import SUFFIX

    names = {
        "compressed": f"{stem}_compressed{SUFFIX}",
        "reconstruction": f"{stem}_reconstruction{reconstruction_suffix}",
        "error": f"{stem}_error.png",
        "maps": f"{stem}_maps.png",
        "summary": f"{stem}_summary.png",
        "metrics": f"{stem}_metrics.json",
    }
    if sweep:
        names.update(sweep_csv=f"{stem}_sweep.csv", sweep_json=f"{stem}_sweep.json", sweep_plot=f"{stem}_sweep.png")
    if not pictures:
        for kind in ("error", "maps", "summary", "sweep_plot"):
            names.pop(kind, None)
    return names
