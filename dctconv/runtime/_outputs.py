"""What a command writes for each input: the names of its outputs, whether they are up to date
(``--skip-existing``), and the numbers ``compress`` reports (the schema of ``<stem>_metrics.json``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path


#: Suffixes a reconstruction can have (:func:`dctconv.io._images.image_suffix`): which
#: one depends on the image's mode, known only once the image is read.
RECONSTRUCTION_SUFFIXES = (".png", ".tif")


def transform_output_names(stem: str, *, pictures: bool = True) -> dict[str, str]:
    """Names of the files :func:`~dctconv.runtime._jobs.transform_file` writes for an image of this stem."""
    names = {"coefficients": f"{stem}_coefficients.npz"}
    if pictures:
        names["maps"] = f"{stem}_maps.png"
    return names


def transform_outputs(path, out_dir, *, pictures: bool = True) -> list[tuple[Path, ...]]:
    """The outputs of :func:`~dctconv.runtime._jobs.transform_file` for ``path``, each as a tuple of alternatives (see :func:`up_to_date`)."""
    return [(Path(out_dir) / name,) for name in transform_output_names(Path(path).stem, pictures=pictures).values()]


def inverse_outputs(path, out_dir) -> list[tuple[Path, ...]]:
    """The output of :func:`~dctconv.runtime._jobs.invert_file` for ``path``: its reconstruction, .png or .tif."""
    stem = original_stem(path)
    return [tuple(Path(out_dir) / f"{stem}_reconstruction{suffix}" for suffix in RECONSTRUCTION_SUFFIXES)]


def up_to_date(path, outputs) -> bool:
    """Whether every output of ``path`` exists and is newer than it.

    ``outputs`` lists each output as a tuple of the names it may have (one of
    them must do), as :func:`transform_outputs` and :func:`compress_outputs`
    give them. Newer means a later modification time, strictly: an input changed
    within the file system's time resolution of its outputs counts as changed.
    """
    try:
        changed = Path(path).stat().st_mtime_ns
    except OSError:
        return False  # let the work report it
    for alternatives in outputs:
        for output in alternatives:
            try:
                if output.stat().st_mtime_ns > changed:
                    break
            except OSError:
                continue
        else:
            return False
    return True


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


def compress_outputs(path, out_dir, *, sweep: bool = False, pictures: bool = True) -> list[tuple[Path, ...]]:
    """The outputs of :func:`~dctconv.runtime._jobs.compress_file` for ``path``, each as a tuple of alternatives (see :func:`up_to_date`)."""
    stem, out_dir = Path(path).stem, Path(out_dir)
    each = [compress_output_names(stem, suffix, sweep=sweep, pictures=pictures) for suffix in RECONSTRUCTION_SUFFIXES]
    return [tuple(dict.fromkeys(out_dir / names[kind] for names in each)) for kind in each[0]]
