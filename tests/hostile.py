"""Hostile files, and the table of commands that the error tests run over.

Every command that reads images or coefficient files gets the same hostile-input,
several-inputs, atomic-output and fuzz tests by adding one entry to COMMANDS.

Files here are built without dctconv: PNG/TIFF/GIF through Pillow, coefficient
files through ``np.savez`` following the documented layout, PNG headers by hand.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from conftest import SAMPLES, reference_blockwise_dct, reference_blockwise_idct, tolerance

# ---------------------------------------------------------------- the commands


@dataclass(frozen=True)
class Command:
    """How to run one command on some inputs, and what it writes for a good one."""

    id: str
    reads: str
    """"image" or "coefficients": which hostile cases and good inputs apply."""
    argv: Callable[[Sequence[Path], Path], list[str]]
    """(inputs, output folder) -> the arguments after ``dctconv``."""
    outputs: Callable[[Path, Path], list[Path]]
    """(a good input made by make_good_input, output folder) -> the files it produces."""
    metavar: str
    """How click names the input argument in its usage errors."""
    writer: str
    """A save function (``module:name``) the command writes through, after another output."""
    library_call: str
    """A library function (``module:name``) the command calls for every input."""
    bad_options: list[tuple[list[str], str]] = field(default_factory=list)
    """(extra arguments, click's error line) for option values the command must refuse."""
    check: Callable[[Path, Path], None] | None = None
    """(input, output folder) -> assert that what the command wrote for it is right.

    The fuzz tests call it after every exit 0; None means they check only the exit
    code, the absence of tracebacks and of temporary files."""


def _transform_outputs(src: Path, out: Path) -> list[Path]:
    return [out / f"{src.stem}_coefficients.npz", out / f"{src.stem}_maps.png"]


def _inverse_outputs(src: Path, out: Path) -> list[Path]:
    return [out / f"{src.stem.removesuffix('_coefficients')}_reconstruction.png"]


# ---------------------------------------------------------------- independent decoders


_GRAY = {"L": np.uint8, "I;16": np.uint16, "I": np.int32, "F": np.float32}


def decode_gray(path: Path) -> np.ndarray:
    """The first frame of an image file as gray pixels, as the README specifies it.

    8/16/32-bit gray and float are kept as they are; anything else becomes 8-bit
    luma (Pillow's ITU-R 601-2 ``convert("L")``).
    """
    with Image.open(path) as im:
        im.seek(0)
        if im.mode in ("L", "I;16", "I", "F"):
            return np.asarray(im)
        try:
            return np.asarray(im.convert("L"))
        except ValueError:  # modes Pillow converts to L only by way of RGB
            return np.asarray(im.convert("RGB").convert("L"))


def decode_coefficient_file(path: Path) -> tuple[tuple[int, int], str, np.ndarray]:
    """(image_shape, image_mode, full coefficient maps) of a file in the documented layout."""
    with np.load(path, allow_pickle=False) as f:
        n = int(f["block_size"])
        shape = tuple(int(side) for side in f["image_shape"])
        mode = str(f["image_mode"]) if "image_mode" in f.files else "F"
        kind = str(f["kind"]) if "kind" in f.files else "transform"
        if kind == "transform":
            return shape, mode, f["coefficients"]
        step = float(f["step"]) if "step" in f.files else 0.0
        coefficients = np.zeros((n * n, -(-shape[0] // n), -(-shape[1] // n)))
        kept = f["kept"].astype(np.float64)
        coefficients[f["channel_mask"]] = kept * step if step > 0 else kept
        return shape, mode, coefficients


def assert_pixels(got: np.ndarray, reference: np.ndarray, mode: str, tol: float) -> None:
    """``got`` is a float within ``tol`` of ``reference``, rounded and clipped to ``mode``'s pixels."""
    dtype = np.dtype(_GRAY[mode])
    assert got.dtype == dtype, (got.dtype, mode)
    assert got.shape == reference.shape
    if dtype.kind == "f":
        limit = float(np.finfo(dtype).max)
        np.testing.assert_allclose(got, np.clip(reference, -limit, limit), rtol=2.0**-23, atol=tol)
        return
    info = np.iinfo(dtype)
    low = np.clip(np.rint(reference - tol), info.min, info.max)
    high = np.clip(np.rint(reference + tol), info.min, info.max)
    inside = (low <= got) & (got <= high)
    assert inside.all(), (got[~inside][:5], reference[~inside][:5], tol)


def check_transform_output(src: Path, out: Path) -> None:
    image = decode_gray(src).astype(np.float64)
    with np.load(out / f"{src.stem}_coefficients.npz", allow_pickle=False) as f:
        coefficients, n = f["coefficients"], int(f["block_size"])
        assert tuple(f["image_shape"]) == image.shape
    assert coefficients.dtype == np.float64
    expected = reference_blockwise_dct(image, n)
    magnitude = float(np.abs(image).max()) * n
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=tolerance(np.float64, magnitude))
    with Image.open(out / f"{src.stem}_maps.png") as maps:
        assert maps.mode == "L"


def check_inverse_output(src: Path, out: Path) -> None:
    shape, mode, coefficients = decode_coefficient_file(src)
    stem = src.stem.removesuffix("_coefficients")
    [written] = [p for p in out.iterdir() if p.name.startswith(f"{stem}_reconstruction.")]
    assert written.suffix == (".png" if mode in ("L", "I;16") else ".tif")
    reference = reference_blockwise_idct(coefficients.astype(np.float64), shape)
    n = int(round(np.sqrt(coefficients.shape[0])))
    work = np.float32 if coefficients.dtype == np.float32 else np.float64
    tol = tolerance(work, float(np.abs(coefficients).max(initial=0)) * n)
    with Image.open(written) as im:
        assert_pixels(np.asarray(im), reference, mode, tol)


# ---------------------------------------------------------------- the table


def _range_error(value, low=2, high=64, option="'--block-size' / '-n'") -> str:
    return f"Error: Invalid value for {option}: {value} is not in the range {low}<=x<={high}."


BLOCK_SIZE_ERRORS = [
    (["--block-size", "0"], _range_error(0)),
    (["--block-size", "1"], _range_error(1)),
    (["--block-size", "65"], _range_error(65)),
    (["--block-size", "-4"], _range_error(-4)),
    (["--block-size", "abc"], "Error: Invalid value for '--block-size' / '-n': 'abc' is not a valid integer."),
    (["--block-size", "4.5"], "Error: Invalid value for '--block-size' / '-n': '4.5' is not a valid integer."),
    (["--block-size", ""], "Error: Invalid value for '--block-size' / '-n': '' is not a valid integer."),
    (["--max-pixels", "0"], "Error: Invalid value for '--max-pixels': 0 is not in the range x>=1."),
]

# Every command runs with --jobs 1: in this process, so that the tests can patch the
# library (a failing writer, an internal bug). tests/test_cli_jobs.py covers --jobs > 1.
COMMANDS = [
    Command(
        id="transform",
        reads="image",
        argv=lambda inputs, out: ["transform", *map(str, inputs), "-o", str(out), "--jobs", "1"],
        outputs=_transform_outputs,
        metavar="IMAGE...",
        writer="dctconv.image_io:save_picture",
        library_call="dctconv.transform:forward",
        bad_options=BLOCK_SIZE_ERRORS,
        check=check_transform_output,
    ),
    Command(
        id="transform-inverse",
        reads="coefficients",
        argv=lambda inputs, out: ["transform", "--inverse", *map(str, inputs), "-o", str(out), "--jobs", "1"],
        outputs=_inverse_outputs,
        metavar="IMAGE...",
        writer="dctconv.image_io:save_image",
        library_call="dctconv.transform:inverse",
        bad_options=[
            (["--max-pixels", "0"], "Error: Invalid value for '--max-pixels': 0 is not in the range x>=1."),
            (["--block-size", "8"], "Error: Invalid value for '--block-size' / '-n': "
             "the coefficient file records it; drop this option with --inverse"),
        ],
        check=check_inverse_output,
    ),
    # compress and verify are added here when they are merged, e.g. compress with
    # bad_options [(["--keep", "0"], ...), (["--keep", "17"], ...), (["--step", "-1"], ...)].
]

IMAGE_COMMANDS = [c for c in COMMANDS if c.reads == "image"]
COEFFICIENT_COMMANDS = [c for c in COMMANDS if c.reads == "coefficients"]
BAD_OPTIONS = [(c, extra, line) for c in COMMANDS for extra, line in c.bad_options]


def ids(commands) -> list[str]:
    return [c.id for c in commands]


# ---------------------------------------------------------------- good inputs


def sample_crop(name: str = "camera.png", box=(200, 180, 213, 190)) -> np.ndarray:
    """A small crop (default 10 x 13, not multiples of 4) of a sample photograph, in gray."""
    with Image.open(SAMPLES / name) as im:
        return np.asarray(im.convert("L").crop(box))


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def coefficient_arrays(image: np.ndarray, *, block_size: int = 4, mode: str = "L") -> dict:
    """The arrays of a valid "transform" coefficient file for ``image`` (documented layout)."""
    return {
        "format_version": np.array(1, dtype=np.int64),
        "kind": np.array("transform"),
        "block_size": np.array(block_size, dtype=np.int64),
        "image_shape": np.array(image.shape, dtype=np.int64),
        "image_mode": np.array(mode),
        "source": np.array("crop.png"),
        "step": np.array(0.0),
        "coefficients": reference_blockwise_dct(image, block_size),
    }


def write_npz(path: Path, arrays: dict, *, drop=(), **changes) -> Path:
    """np.savez ``arrays`` with some keys replaced (``changes``) or left out (``drop``)."""
    arrays = {**arrays, **changes}
    np.savez(path, **{k: v for k, v in arrays.items() if k not in drop})
    return path


def make_good_input(command: Command, folder: Path, name: str = "good", image=None) -> Path:
    """A valid input for ``command`` in ``folder``: an 8-bit PNG, or its coefficient file."""
    folder.mkdir(parents=True, exist_ok=True)
    image = sample_crop() if image is None else image
    if command.reads == "image":
        path = folder / f"{name}.png"
        path.write_bytes(png_bytes(image))
        return path
    return write_npz(folder / f"{name}_coefficients.npz", coefficient_arrays(image))


# ---------------------------------------------------------------- PNG surgery


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes):
    """Yield (offset, length, type) of every chunk; stops at the first one that does not fit."""
    offset = len(PNG_SIGNATURE)
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if offset + 12 + length > len(data):
            return
        yield offset, length, kind
        offset += 12 + length


def fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk's CRC so that a mutation gets past Pillow's checksum test."""
    data = bytearray(data)
    for offset, length, _ in list(png_chunks(bytes(data))):
        body = bytes(data[offset + 4 : offset + 8 + length])
        data[offset + 8 + length : offset + 12 + length] = struct.pack(">I", zlib.crc32(body))
    return bytes(data)


def forge_png_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG ``data`` with its IHDR claiming ``width`` x ``height``, with a valid CRC."""
    offset, length, kind = next(png_chunks(data))
    assert kind == b"IHDR" and length == 13
    body = bytearray(data[offset + 8 : offset + 8 + length])
    body[0:8] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)))
    return data[: offset + 8] + bytes(body) + crc + data[offset + 12 + length :]


# ---------------------------------------------------------------- pickles that act


class Armed:
    """Unpickling this creates the file ``marker``: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path):
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# ---------------------------------------------------------------- result checks


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder``, hidden temporaries included, as sorted relative names."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


#: Signs of Python internals in a message: tracebacks, OSError numbers, reprs of arrays,
#: objects (<Foo at 0x...>), classes and bytes (b'\x89...'). (A control character read
#: from a file is shown escaped, "\x1f": that is the CLI keeping the error on one line.)
FORBIDDEN_IN_MESSAGES = [
    "Traceback", "Errno", "array(", "dtype(", "np.", " at 0x", "<class", "b'", 'b"', "None",
]


def assert_clean_error(line: str) -> None:
    """An error line reads as a sentence for a user: no Python internals in it."""
    assert line.startswith("Error: ")
    for fragment in FORBIDDEN_IN_MESSAGES:
        assert fragment not in line, f"{fragment!r} in {line!r}"
