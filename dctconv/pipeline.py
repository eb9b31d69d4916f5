"""Per-file work behind the commands: read, compute, write every output atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_outputs
from .image_io import DEFAULT_MAX_PIXELS, ImageInfo


@dataclass
class FileResult:
    """What one input produced: the files written and notes worth telling the user."""

    source: Path
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    info: ImageInfo | None = None


def image_notes(info: ImageInfo) -> list[str]:
    """One-line notes about what reading the image changed, for stderr."""
    notes = []
    if info.converted:
        notes.append(f"{info.file_mode} converted to 8-bit gray (ITU-R 601-2 luma)")
    if info.frames > 1:
        notes.append(f"has {info.frames} frames; only the first is used")
    return notes


def transform_file(
    path,
    out_dir,
    *,
    block_size: int = 4,
    dtype: str = "float64",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    protected=(),
) -> FileResult:
    """Write ``<stem>_coefficients.npz`` and ``<stem>_maps.png`` for one image."""
    import numpy as np

    from .coefficient_file import CoefficientHeader, save_coefficients
    from .image_io import read_image, save_picture
    from .pictures import maps_mosaic
    from .transform import forward

    path, out_dir = Path(path), Path(out_dir)
    image, info = read_image(path, max_pixels=max_pixels)
    # float32 is converted tile by tile inside forward: no float copy of the image.
    coefficients = forward(image, block_size, dtype=np.float32 if dtype == "float32" else None)
    header = CoefficientHeader(
        block_size=block_size,
        image_shape=image.shape,
        image_mode=info.mode,
        source=path.name,
    )
    with atomic_outputs(protected) as outputs:
        with open(outputs.path(out_dir / f"{path.stem}_coefficients.npz"), "wb") as f:
            save_coefficients(f, coefficients, header)
        save_picture(outputs.path(out_dir / f"{path.stem}_maps.png"), maps_mosaic(coefficients))
    return FileResult(path, outputs.written, image_notes(info), info)


def original_stem(path) -> str:
    """Stem of the image a coefficient file came from: its name without ``_coefficients``/``_compressed``."""
    stem = Path(path).stem
    for suffix in ("_coefficients", "_compressed"):
        if stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def invert_file(path, out_dir, *, protected=()) -> FileResult:
    """Write ``<stem>_reconstruction.png`` (``.tif`` for 32-bit sources) from a coefficient file."""
    from .coefficient_file import load_coefficients
    from .image_io import image_suffix, save_image
    from .transform import inverse

    path, out_dir = Path(path), Path(out_dir)
    coefficients, header = load_coefficients(path)
    image = inverse(coefficients, header.image_shape)
    del coefficients  # as large as the image: free it before the image is encoded
    name = f"{original_stem(path)}_reconstruction{image_suffix(header.image_mode)}"
    with atomic_outputs(protected) as outputs:
        save_image(outputs.path(out_dir / name), image, header.image_mode)
    return FileResult(path, outputs.written)


def write_kernels_picture(out_dir, block_size: int, *, protected=()) -> Path:
    """Write ``kernels_<n>.png``, the n*n kernels drawn enlarged."""
    from .image_io import save_picture
    from .pictures import kernels_picture

    with atomic_outputs(protected) as outputs:
        save_picture(outputs.path(Path(out_dir) / f"kernels_{block_size}.png"), kernels_picture(block_size))
    return outputs.written[0]
