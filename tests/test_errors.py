"""Hostile input (issue 6): one-line errors naming the file, right exit codes, no traceback.

Each case runs through click's CliRunner for every command of the COMMANDS table in
hostile.py that reads that kind of file; a few run through the installed script.
Expected values: the error texts are the ones this project promises (README, "Errors
and exit codes"); the numbers come from scipy.fft.dctn per block (references.py).
"""

from __future__ import annotations

import importlib
import io
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from references import reference_blockwise_dct, tolerance
from dctconv.cli import cli
from hostile import (
    BAD_OPTIONS,
    COEFFICIENT_COMMANDS,
    COMMANDS,
    FOLDER_COMMANDS,
    IMAGE_COMMANDS,
    OUTPUT_DIR_COMMANDS,
    SEVERAL_COMMANDS,
    Armed,
    assert_clean_error,
    coefficient_arrays,
    command_named,
    files_in,
    forge_png_size,
    ids,
    make_good_input,
    png_bytes,
    sample_crop,
    write_npz,
)

image_commands = pytest.mark.parametrize("command", IMAGE_COMMANDS, ids=ids(IMAGE_COMMANDS))
coefficient_commands = pytest.mark.parametrize(
    "command", COEFFICIENT_COMMANDS, ids=ids(COEFFICIENT_COMMANDS)
)
all_commands = pytest.mark.parametrize("command", COMMANDS, ids=ids(COMMANDS))
output_dir_commands = pytest.mark.parametrize("command", OUTPUT_DIR_COMMANDS, ids=ids(OUTPUT_DIR_COMMANDS))
several_commands = pytest.mark.parametrize("command", SEVERAL_COMMANDS, ids=ids(SEVERAL_COMMANDS))


def input_name(command, stem: str) -> str:
    """A file name of the kind ``command`` reads: <stem>.png or <stem>_coefficients.npz."""
    return f"{stem}.png" if command.reads == "image" else f"{stem}_coefficients.npz"


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_fails(result, path, message, *, code=1):
    """Exit ``code`` through SystemExit, and stderr is exactly the one line for ``path``."""
    line = f"Error: {path}: {message}"
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.splitlines() == [line]
    assert_clean_error(line)


# ---------------------------------------------------------------- usage errors (exit 2)


@all_commands
def test_missing_path_is_a_usage_error(command, tmp_path):
    missing = tmp_path / input_name(command, "nowhere")
    result = run(command.argv([missing], tmp_path / "out"))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '{command.metavar}': {command.missing_word} '{missing}' does not exist."
    )
    assert "Traceback" not in result.output
    assert files_in(tmp_path / "out") == []


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.folders],
                         ids=[c.id for c in COMMANDS if not c.folders])
def test_directory_for_a_file_is_a_usage_error(command, tmp_path):
    folder = tmp_path / input_name(command, "photos")
    folder.mkdir()
    result = run(command.argv([folder], tmp_path / "out"))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '{command.metavar}': File '{folder}' is a directory."
    )


@pytest.mark.parametrize("command", FOLDER_COMMANDS, ids=ids(FOLDER_COMMANDS))
def test_folder_without_images_is_an_error(command, tmp_path):
    """compress takes folders: one named like an image, holding no image file, is reported."""
    folder = tmp_path / "photos.png"
    (folder / "sub.png").mkdir(parents=True)  # a folder inside is not an image file either
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(png_bytes(sample_crop()))
    out = tmp_path / "out"
    assert_fails(
        run(command.argv([folder], out)), folder,
        "folder holds no image file in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP)",
    )
    assert files_in(out) == []


@pytest.mark.parametrize("command", FOLDER_COMMANDS, ids=ids(FOLDER_COMMANDS))
def test_folder_of_junk_reports_each_file(command, tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    camera = _camera_png()
    tiff = io.BytesIO()
    Image.fromarray(sample_crop(box=(0, 0, 64, 48))).save(tiff, format="TIFF")
    (folder / "a.png").write_bytes(b"")
    (folder / "b.png").write_text("this is not a picture\n")
    (folder / "c.tif").write_bytes(tiff.getvalue()[:1000])
    (folder / "d.png").write_bytes(camera[: len(camera) // 2])
    out = tmp_path / "out"
    result = run(command.argv([folder], out))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == [
        f"Error: {folder / 'a.png'}: file is empty",
        f"Error: {folder / 'b.png'}: not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), or its header is damaged",
        f"Error: {folder / 'c.tif'}: cannot read image: image file is truncated (46 bytes not processed)",
        f"Error: {folder / 'd.png'}: cannot read image: image file is truncated",
    ]
    assert files_in(out) == []


@pytest.mark.parametrize(
    "command, extra, line", BAD_OPTIONS, ids=[f"{c.id} {' '.join(e)}" for c, e, _ in BAD_OPTIONS]
)
def test_bad_option_value_is_a_usage_error(command, extra, line, tmp_path):
    good = make_good_input(command, tmp_path)
    result = run(command.argv([good], tmp_path / "out") + extra)
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == line
    assert files_in(tmp_path / "out") == []


@output_dir_commands
def test_output_dir_that_is_a_file_is_a_usage_error(command, tmp_path):
    good = make_good_input(command, tmp_path / "in")
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    result = run(command.argv([good], existing))
    assert result.exit_code == 2
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '-o' / '--output-dir': {existing} is a file, not a folder; "
        "give a folder (it is created when missing)"
    )
    result = run(command.argv([good], existing / "sub"))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for '-o' / '--output-dir': {existing} is a file, not a folder, "
        f"so the folder {existing / 'sub'} cannot be created; give a folder (it is created when missing)"
    )
    assert existing.read_text() == "keep me"


@output_dir_commands
def test_output_dir_is_created_when_missing(command, tmp_path):
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "new" / "deeper"
    result = run(command.argv([good], out))
    assert result.exit_code == 0, result.output
    assert files_in(out) == sorted(p.name for p in command.written(good, out))


# ---------------------------------------------------------------- images that cannot be read


def _camera_png() -> bytes:
    return png_bytes(sample_crop(box=(0, 0, 64, 48)))


IMAGE_CASES = {
    "empty": (lambda: b"", "file is empty"),
    "text-named-png": (
        lambda: b"this is not a picture\n",
        "not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), or its header is damaged",
    ),
    "truncated-png": (
        lambda: _camera_png()[: len(_camera_png()) // 2],
        "cannot read image: image file is truncated",
    ),
    "header-0x0": (
        lambda: forge_png_size(_camera_png(), 0, 0),
        "image has no pixels (its PNG header says 0 x 0)",
    ),
    "header-0x48": (
        lambda: forge_png_size(_camera_png(), 0, 48),
        "image has no pixels (its PNG header says 0 x 48)",
    ),
    "header-70000x70000": (
        lambda: forge_png_size(_camera_png(), 70000, 70000),
        "image is 70000 x 70000 = 4,900,000,000 pixels, more than the limit of 89,478,485; "
        "rerun with --max-pixels 4900000000 to allow it",
    ),
}


@image_commands
@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_unreadable_image(command, case, tmp_path):
    content, message = IMAGE_CASES[case]
    path = tmp_path / "input.png"
    path.write_bytes(content())
    out = tmp_path / "out"
    assert_fails(run(command.argv([path], out)), path, message)
    assert files_in(out) == []


@image_commands
def test_max_pixels_names_the_fix_and_the_fix_works(command, tmp_path):
    path = make_good_input(command, tmp_path / "in")  # 10 x 13 = 130 pixels
    out = tmp_path / "out"
    result = run(command.argv([path], out) + ["--max-pixels", "129"])
    assert_fails(
        result, path,
        "image is 13 x 10 = 130 pixels, more than the limit of 129; rerun with --max-pixels 130 to allow it",
    )
    assert run(command.argv([path], out) + ["--max-pixels", "130"]).exit_code == 0


@image_commands
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_float_tiff_with_nan_or_infinity_is_refused(command, bad, tmp_path):
    image = np.linspace(0, 1, 8 * 8, dtype=np.float32).reshape(8, 8)
    image[3, 5] = bad
    path = tmp_path / "float.tif"
    Image.fromarray(image).save(path)
    out = tmp_path / "out"
    if command.id == "compress" and np.isnan(bad):
        return  # compress keeps NaN pixels (tests/codec/test_science.py)
    expected = ("float image contains 1 infinite value; replace them with NaN (no data) or with finite values"
                if command.id == "compress" else "float image contains NaN or infinity")
    assert_fails(run(command.argv([path], out)), path, expected)
    assert files_in(out) == []


def _frames(count=3, shape=(9, 6)):
    rng = np.random.default_rng(6)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
@pytest.mark.parametrize("command", IMAGE_COMMANDS[1:], ids=ids(IMAGE_COMMANDS[1:]))
def test_multi_frame_file_first_frame_for_every_command(command, suffix, tmp_path):
    """The command's check recomputes its output from the first frame (hostile.decode_gray)."""
    frames = _frames()
    path = tmp_path / f"animated{suffix}"
    pictures = [Image.fromarray(f) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:])
    out = tmp_path / "out"
    result = run(command.argv([path], out))
    assert result.exit_code == 0, result.output
    assert f"Note: {path}: has 3 frames; only the first is used" in result.stderr.splitlines()
    assert not [line for line in result.stderr.splitlines() if line.startswith("Error")]
    command.check(path, out, result)


@pytest.mark.parametrize("suffix", [".gif", ".tif"])
def test_multi_frame_file_uses_the_first_frame_and_says_so(suffix, tmp_path):
    frames = _frames()
    path = tmp_path / f"animated{suffix}"
    pictures = [Image.fromarray(f) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:])
    with Image.open(path) as im:  # what the file's first frame is, independently of dctconv
        assert im.n_frames == 3
        first = np.asarray(im.convert("L"), dtype=np.float64)
    result = run(["transform", path, "-o", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    assert f"Note: {path}: has 3 frames; only the first is used" in result.stderr.splitlines()
    assert not [line for line in result.stderr.splitlines() if line.startswith("Error")]
    with np.load(tmp_path / "out" / "animated_coefficients.npz") as f:
        coefficients = f["coefficients"]
    expected = reference_blockwise_dct(first, 4)
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=tolerance(np.float64, 255 * 4))
    # and it is not a later frame:
    assert np.abs(coefficients - reference_blockwise_dct(frames[1], 4)).max() > 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (1, 4), (2, 9)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("block_size", [2, 4, 8])
def test_tiny_images_are_padded_and_round_trip_exactly(shape, dtype, block_size, tmp_path):
    rng = np.random.default_rng(sum(shape) * block_size)
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    path = tmp_path / "tiny.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "out"
    result = run(["transform", path, "-o", out, "--block-size", block_size])
    assert result.exit_code == 0, result.output
    with np.load(out / "tiny_coefficients.npz") as f:
        coefficients = f["coefficients"]
    expected = reference_blockwise_dct(image, block_size)
    grid = (-(-shape[0] // block_size), -(-shape[1] // block_size))
    assert coefficients.shape == (block_size**2, *grid)
    np.testing.assert_allclose(
        coefficients, expected, rtol=0, atol=tolerance(np.float64, float(image.max()) * block_size)
    )
    result = run(["transform", "--inverse", out / "tiny_coefficients.npz", "-o", out])
    assert result.exit_code == 0, result.output
    restored = np.asarray(Image.open(out / "tiny_reconstruction.png"))
    assert restored.dtype == dtype
    np.testing.assert_array_equal(restored, image)


@pytest.mark.parametrize("shape, dtype", [((1, 1), np.uint8), ((1, 7), np.uint16), ((7, 1), np.uint8),
                                          ((2, 9), np.uint16)], ids=["1x1", "1x7", "7x1", "2x9"])
@pytest.mark.parametrize("command", IMAGE_COMMANDS[1:], ids=ids(IMAGE_COMMANDS[1:]))
def test_tiny_images_are_valid_for_every_command(command, shape, dtype, tmp_path):
    rng = np.random.default_rng(sum(shape))
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    path = tmp_path / "tiny.png"
    Image.fromarray(image).save(path)
    out = tmp_path / "out"
    result = run(command.argv([path], out))
    assert result.exit_code == 0, result.output
    command.check(path, out, result)


def test_float_image_near_float32_limits_round_trips(tmp_path):
    """Found by the fuzz test: float images were transformed in float32 even by default,
    so values near float32's maximum overflowed to infinite coefficients."""
    big = float(np.finfo(np.float32).max)
    image = np.array([[big, -big, 1.0], [0.5, big / 3, -1e-30]], dtype=np.float32)
    path = tmp_path / "huge.tif"
    Image.fromarray(image).save(path)
    out = tmp_path / "out"
    assert run(["transform", path, "-o", out]).exit_code == 0
    with np.load(out / "huge_coefficients.npz") as f:
        coefficients = f["coefficients"]
    assert coefficients.dtype == np.float64
    np.testing.assert_allclose(
        coefficients, reference_blockwise_dct(image, 4), rtol=0, atol=tolerance(np.float64, big * 4)
    )
    result = run(["transform", "--inverse", out / "huge_coefficients.npz", "-o", out])
    assert result.exit_code == 0, result.output
    restored = np.asarray(Image.open(out / "huge_reconstruction.tif"))
    assert np.isfinite(restored).all()
    np.testing.assert_allclose(restored, image, rtol=2.0**-23, atol=tolerance(np.float64, big * 4))

    flat = tmp_path / "flat.tif"
    Image.fromarray(np.full((4, 4), big, dtype=np.float32)).save(flat)  # DC = 4 * big
    result = run(["transform", flat, "-o", tmp_path / "out32", "--dtype", "float32"])
    assert_fails(result, flat, "pixel values too large for float32 coefficients (they overflow); use float64")
    assert run(["transform", flat, "-o", tmp_path / "out64"]).exit_code == 0


def test_reconstruction_beyond_int32_is_clipped_not_wrapped(tmp_path):
    """Found by the fuzz test: float32 cannot hold 2**31 - 1, so clipping a float32
    reconstruction to int32 still overflowed in the cast and wrapped to -2**31."""
    coefficients = np.zeros((4, 1, 2), dtype=np.float32)
    coefficients[0] = [[6e9, -6e9]]  # DC of a 2 x 2 block: pixel = DC / 2 = +-3e9
    arrays = {**coefficient_arrays(np.zeros((1, 3)), block_size=2, mode="I"), "coefficients": coefficients}
    path = write_npz(tmp_path / "wide_coefficients.npz", arrays)
    result = run(["transform", "--inverse", path, "-o", tmp_path])
    assert result.exit_code == 0, result.output
    restored = np.asarray(Image.open(tmp_path / "wide_reconstruction.tif"))
    assert restored.tolist() == [[2**31 - 1, 2**31 - 1, -(2**31)]]


# ---------------------------------------------------------------- coefficient files


def _good_arrays():
    return coefficient_arrays(sample_crop())  # image 10 x 13, block 4: 16 x 3 x 4 maps


def _with_nan():
    arrays = _good_arrays()
    arrays["coefficients"] = arrays["coefficients"].copy()
    arrays["coefficients"][5, 1, 2] = np.nan
    return arrays


def _with(**changes):
    return {**_good_arrays(), **changes}


def _without(*keys):
    return {k: v for k, v in _good_arrays().items() if k not in keys}


COEFFICIENT_CASES = {
    "no-dctconv-keys": (
        lambda: {"x": np.zeros(3)},
        "not a dctconv coefficient file: missing format_version, block_size, image_shape",
    ),
    "no-coefficients": (lambda: _without("coefficients"), "transform file is missing coefficients"),
    "no-block-size": (lambda: _without("block_size"), "not a dctconv coefficient file: missing block_size"),
    "wrong-grid": (
        lambda: _with(coefficients=np.zeros((16, 4, 4))),
        "coefficients are 16 x 4 x 4, but an image of 13 x 10 (image_shape) at block size 4 needs 16 x 3 x 4",
    ),
    "two-d": (
        lambda: _with(coefficients=np.zeros((16, 12))),
        "coefficients must be 3-D (channels, block rows, block columns), got 16 x 12",
    ),
    "block-size-vs-channels": (
        lambda: _with(block_size=np.array(3)),
        "block_size 3 needs 9 coefficient channels (n*n), but the file has 16",
    ),
    "block-size-65": (lambda: _with(block_size=np.array(65)), "block_size 65 is not from 2 to 64"),
    "block-size-text": (
        lambda: _with(block_size=np.array("four")),
        "block_size must be a single whole number, got text",
    ),
    "image-shape-negative": (
        lambda: _with(image_shape=np.array([-10, 13])),
        "image_shape must be two positive whole numbers, got -10 x 13",
    ),
    "nan": (_with_nan, "coefficients contain NaN or infinity"),
    "inf": (
        lambda: _with(coefficients=np.full((16, 3, 4), np.inf)),
        "coefficients contain NaN or infinity",
    ),
    "integer-coefficients": (
        lambda: _with(coefficients=np.zeros((16, 3, 4), dtype=np.int64)),
        "coefficients are int64, expected floats",
    ),
    "format-version-3": (
        lambda: _with(format_version=np.array(3)),
        "format version 3 is not supported (this dctconv reads versions 1 and 2); "
        "upgrade dctconv or re-create the file",
    ),
    "unknown-kind": (
        lambda: _with(kind=np.array("zip")),
        'unknown kind "zip" (expected one of transform, compressed)',
    ),
    "unknown-mode": (
        lambda: _with(image_mode=np.array("RGB")),
        'unknown image_mode "RGB" (expected one of L, I;16, I, F)',
    ),
    "huge-image-shape": (
        lambda: _with(image_shape=np.array([100_000, 100_000])),
        "image is 100000 x 100000 = 10,000,000,000 pixels, more than the limit of 89,478,485; "
        "rerun with --max-pixels 10000000000 to allow it",
    ),
    "compressed-mask-wrong-length": (
        lambda: _with(kind=np.array("compressed"), channel_mask=np.ones(9, bool), kept=np.zeros((9, 3, 4))),
        "channel_mask has 9 entries, expected 16 entries for block_size 4",
    ),
    "compressed-kept-wrong-count": (
        lambda: _with(kind=np.array("compressed"), channel_mask=np.arange(16) < 3, kept=np.zeros((4, 3, 4))),
        "kept is 4 x 3 x 4, expected 3 x 3 x 4 "
        "(the kept channels of channel_mask, by the block grid of image_shape)",
    ),
}

RAW_FILE_CASES = {
    "empty": (lambda tmp: b"", "file is empty"),
    "text": (lambda tmp: b"format_version=1\n", "not a coefficient file (.npz archive): unknown format"),
    "png": (lambda tmp: png_bytes(sample_crop()), "is an image, not a coefficient file (.npz archive)"),
    "truncated": (
        lambda tmp: _npz_bytes(tmp, _good_arrays())[:600],
        "damaged .npz archive: File is not a zip file",
    ),
    "npy": (lambda tmp: _npy_bytes(np.zeros((16, 3, 4))), "is a single .npy array, not a coefficient file (.npz archive)"),
}


def _npz_bytes(tmp, arrays) -> bytes:
    return write_npz(tmp / "scratch.npz", arrays).read_bytes()


def _npy_bytes(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@coefficient_commands
@pytest.mark.parametrize("case", list(COEFFICIENT_CASES))
def test_bad_coefficient_file(command, case, tmp_path):
    arrays, message = COEFFICIENT_CASES[case]
    path = write_npz(tmp_path / "x_coefficients.npz", arrays())
    out = tmp_path / "out"
    assert_fails(run(command.argv([path], out)), path, message)
    assert files_in(out) == []


@coefficient_commands
@pytest.mark.parametrize("case", list(RAW_FILE_CASES))
def test_file_that_is_not_a_coefficient_file(command, case, tmp_path):
    content, message = RAW_FILE_CASES[case]
    if case == "png":  # told by its content (dctconv.io._kinds), with what to do instead
        message = "is an image, not a coefficient file (.npz) or a compressed file (.dctz); " + {
            "transform-inverse": "use dctconv transform without --inverse (or dctconv compress)",
            "verify-file": "give the coefficient file first, then its image: dctconv verify FILE IMAGE",
        }[command.id]
    path = tmp_path / "x_coefficients.npz"
    path.write_bytes(content(tmp_path))
    out = tmp_path / "out"
    assert_fails(run(command.argv([path], out)), path, message)
    assert files_in(out) == []


@coefficient_commands
def test_forged_array_header_is_refused_before_allocating(command, tmp_path):
    """A .npy header claiming 16 x 100000 x 100000 float64 (1.28 TB) with no data behind it."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (16, 100_000, 100_000)}
    )
    path = tmp_path / "forged.npz"
    arrays = _with(image_shape=np.array([400_000, 400_000]))
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("format_version", "block_size", "image_shape"):
            archive.writestr(f"{key}.npy", _npy_bytes(arrays[key]))
        archive.writestr("coefficients.npy", header.getvalue())
    result = run(command.argv([path], tmp_path / "out") + ["--max-pixels", str(10**12)])
    assert_fails(
        result, path,
        "array coefficients is damaged: its header promises 1,280,000,000,000 bytes of data, it holds 0",
    )


@coefficient_commands
def test_max_pixels_of_a_coefficient_file_names_the_fix_and_the_fix_works(command, tmp_path):
    """Found here: verify FILE.npz IMAGE named --max-pixels as the fix but read the file without it."""
    path = make_good_input(command, tmp_path / "in")  # records image_shape (10, 13): 13 x 10 = 130 pixels
    out = tmp_path / "out"
    result = run(command.argv([path], out) + ["--max-pixels", "129"])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()  # verify reads its IMAGE (as large) first, and names it
    assert line.endswith(" pixels, more than the limit of 129; rerun with --max-pixels 130 to allow it") or (
        line == f"Error: {path}: image is 13 x 10 = 130 pixels, more than the limit of 129; "
        "rerun with --max-pixels 130 to allow it"
    ), line
    result = run(command.argv([path], out) + ["--max-pixels", "130"])
    assert result.exit_code == 0, result.output
    command.check(path, out, result)


@coefficient_commands
def test_member_that_is_not_an_npy_array(command, tmp_path):
    """np.load hands back raw bytes for a zip member without the .npy suffix."""
    import zipfile

    path = tmp_path / "raw_member.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key, value in _good_arrays().items():
            archive.writestr(key if key == "block_size" else f"{key}.npy", _npy_bytes(value))
    assert_fails(
        run(command.argv([path], tmp_path / "out")), path,
        "block_size is not stored as a .npy array",
    )


@coefficient_commands
def test_object_array_is_refused_without_unpickling(command, tmp_path):
    marker = tmp_path / "pickle-was-loaded"
    arrays = _with(coefficients=np.array([Armed(marker)], dtype=object))
    path = write_npz(tmp_path / "evil_coefficients.npz", arrays)
    # The control: loading this file the unsafe way does run code.
    with np.load(path, allow_pickle=True) as unsafe:
        unsafe["coefficients"]
    assert marker.exists()
    marker.unlink()

    out = tmp_path / "out"
    result = run(command.argv([path], out))
    assert_fails(
        result, path,
        "array coefficients holds pickled Python objects; "
        "refused without unpickling it (dctconv never unpickles)",
    )
    assert not marker.exists()
    assert files_in(out) == []


@coefficient_commands
def test_plain_pickle_is_refused_without_unpickling(command, tmp_path):
    marker = tmp_path / "pickle-was-loaded"
    payload = pickle.dumps({"coefficients": Armed(marker)})
    pickle.loads(payload)  # the control: this payload runs code when unpickled
    assert marker.exists()
    marker.unlink()

    path = tmp_path / "evil_coefficients.npz"
    path.write_bytes(payload)
    result = run(command.argv([path], tmp_path / "out"))
    assert_fails(
        result, path,
        "is a Python pickle, not a coefficient file; refused without unpickling it (dctconv never unpickles)",
    )
    assert not marker.exists()


def test_coefficient_values_that_overflow_the_reconstruction(tmp_path):
    coefficients = np.zeros((16, 3, 4))
    coefficients[:, 0, 0] = 1e308  # finite, but the sum over 16 kernels is not
    path = write_npz(tmp_path / "big_coefficients.npz", _with(coefficients=coefficients))
    assert_fails(
        run(["transform", "--inverse", path, "-o", tmp_path / "out"]), path,
        "coefficient values are too large: the reconstructed image overflows",
    )


@coefficient_commands
def test_a_valid_file_made_without_dctconv_is_read(command, tmp_path):
    """The positive control of the cases above: the documented layout, written by np.savez."""
    image = sample_crop()
    path = write_npz(tmp_path / "x_coefficients.npz", coefficient_arrays(image))
    out = tmp_path / "out"
    result = run(command.argv([path], out))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    command.check(path, out, result)
    for written in command.outputs(path, out):
        np.testing.assert_array_equal(np.asarray(Image.open(written)), image)


# ---------------------------------------------------------------- several inputs


@several_commands
def test_bad_input_among_good_ones_is_skipped_and_exit_is_1(command, tmp_path):
    first = make_good_input(command, tmp_path / "in", "first")
    bad = tmp_path / "in" / input_name(command, "broken")
    bad.write_bytes(b"")
    last = make_good_input(command, tmp_path / "in", "last", image=sample_crop(box=(0, 0, 9, 9)))
    out = tmp_path / "out"
    result = run(command.argv([first, bad, last], out))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert errors == [f"Error: {bad}: file is empty"]
    expected = command.written(first, out) + command.written(last, out)
    assert files_in(out) == sorted(p.name for p in expected)
    command.listing(result, [first, last], out)
    if command.output_dir:
        command.check(first, out, None)
        command.check(last, out, None)


@pytest.mark.parametrize("command", [c for c in COMMANDS if not c.output_dir],
                         ids=[c.id for c in COMMANDS if not c.output_dir])
def test_command_without_outputs_writes_nothing(command, tmp_path, monkeypatch):
    """verify writes no file: none beside its inputs, none left in the temporary folder."""
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    good = make_good_input(command, tmp_path / "in")
    command.argv([good], tmp_path / "out")  # writes the companion input, if any, before the snapshot
    before = files_in(tmp_path)
    result = run(command.argv([good], tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert files_in(tmp_path) == before
    assert files_in(scratch) == []


# ---------------------------------------------------------------- internal errors


@all_commands
def test_internal_error_is_one_line_and_debug_shows_the_traceback(command, tmp_path, monkeypatch):
    module, name = command.library_call.split(":")

    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(importlib.import_module(module), name, broken)
    good = make_good_input(command, tmp_path / "in")
    out = tmp_path / "out"
    line = (f"Error: {good}: internal error (ZeroDivisionError: division by zero); "
            "rerun with --debug for the traceback")
    result = run(command.argv([good], out))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [line]
    assert files_in(out) == []

    result = run(["--debug", *command.argv([good], out)])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "ZeroDivisionError: division by zero" in lines
    assert lines[-1] == line


def test_error_escaping_a_command_is_still_one_line(tmp_path, monkeypatch):
    """The group's safety net: --kernels is written outside the per-file loop."""
    import dctconv.runtime._jobs

    monkeypatch.setattr(dctconv.runtime._jobs, "write_kernels_picture", lambda *a, **k: 1 / 0)
    good = make_good_input(IMAGE_COMMANDS[0], tmp_path / "in")
    result = run(["transform", good, "-o", tmp_path / "out", "--kernels"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        "Error: internal error (ZeroDivisionError: division by zero); rerun with --debug for the traceback"
    ]
    result = run(["--debug", "transform", good, "-o", tmp_path / "out", "--kernels"])
    assert result.stderr.splitlines()[0] == "Traceback (most recent call last):"


def test_folder_name_with_a_newline_stays_on_one_line(tmp_path):
    folder = tmp_path / "two\nlines"
    folder.mkdir()
    result = run(["compress", folder, "-o", tmp_path / "out"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path}/two\\nlines: folder holds no image file in a format dctconv reads "
        "(PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP)"
    ]


def test_verify_with_the_coefficient_file_second_is_a_usage_error(tmp_path):
    """It used to read the .npz as an image: "not an image file Pillow can read"."""
    image = make_good_input(IMAGE_COMMANDS[0], tmp_path)
    npz = write_npz(tmp_path / "good_coefficients.npz", coefficient_arrays(sample_crop()))
    for args in ([image, npz], [image, image, npz]):
        result = run(["verify", *args])
        assert result.exit_code == 2
        assert isinstance(result.exception, SystemExit)
        assert result.stderr.splitlines()[-1] == (
            "Error: the coefficient file goes first, then its image: dctconv verify FILE IMAGE"
        )
    assert run(["verify", npz, image]).exit_code == 0


def test_error_escaping_verify_is_still_one_line(monkeypatch):
    """verify's kernel checks run outside the per-file loop: the group's safety net catches them."""
    import dctconv.verify._checks

    monkeypatch.setattr(dctconv.verify._checks, "run_checks", lambda *a, **k: 1 / 0)
    result = run(["verify"])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        "Error: internal error (ZeroDivisionError: division by zero); rerun with --debug for the traceback"
    ]


def test_control_characters_in_a_file_name_stay_on_one_line(tmp_path):
    path = tmp_path / "two\nlines.png"
    path.write_bytes(b"")
    result = run(["transform", path, "-o", tmp_path / "out"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {tmp_path}/two\\nlines.png: file is empty"]


# ---------------------------------------------------------------- the installed script


def _script() -> str:
    beside = Path(sys.executable).with_name("dctconv")
    found = str(beside) if beside.exists() else shutil.which("dctconv")
    if found is None:
        pytest.fail("the dctconv script is not installed (pip install -e .)")
    return found


def _script_run(*args):
    return subprocess.run(
        [_script(), *map(str, args)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


def test_script_usage_error_has_no_traceback(tmp_path):
    missing = tmp_path / "missing.png"
    result = _script_run("transform", missing, "-o", tmp_path / "out")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"Error: Invalid value for 'FILE_OR_DIR...': Path '{missing}' does not exist."
    )


def test_script_hostile_files_have_no_traceback(tmp_path):
    camera = _camera_png()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(camera[: len(camera) // 2])
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(forge_png_size(camera, 70000, 70000))
    good = make_good_input(IMAGE_COMMANDS[0], tmp_path)
    out = tmp_path / "out"
    result = _script_run("transform", truncated, good, bomb, "-o", out)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert errors == [
        f"Error: {truncated}: cannot read image: image file is truncated",
        f"Error: {bomb}: image is 70000 x 70000 = 4,900,000,000 pixels, more than the limit of "
        "89,478,485; rerun with --max-pixels 4900000000 to allow it",
    ]
    assert files_in(out) == [".good_transform.made", "good_coefficients.npz", "good_maps.png"]


def test_script_pickle_is_not_loaded(tmp_path):
    marker = tmp_path / "pickle-was-loaded"
    path = write_npz(tmp_path / "evil_coefficients.npz", _with(coefficients=np.array([Armed(marker)], dtype=object)))
    result = _script_run("transform", "--inverse", path, "-o", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}: array coefficients holds pickled Python objects; "
        "refused without unpickling it (dctconv never unpickles)"
    ]
    assert not marker.exists()


def test_script_round_trip_of_a_one_pixel_image(tmp_path):
    path = tmp_path / "dot.png"
    Image.fromarray(np.array([[200]], dtype=np.uint8)).save(path)
    out = tmp_path / "out"
    assert _script_run("transform", path, "-o", out).returncode == 0
    result = _script_run("transform", "--inverse", out / "dot_coefficients.npz", "-o", out)
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(out / "dot_reconstruction.png")).tolist() == [[200]]


def test_script_compress_reports_bad_inputs_and_keeps_the_good_one(tmp_path):
    """Through the real script and its process pool (--jobs 2): errors as they come, one line each."""
    camera = _camera_png()
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "truncated.png").write_bytes(camera[: len(camera) // 2])
    (photos / "bomb.png").write_bytes(forge_png_size(camera, 70000, 70000))
    good = make_good_input(IMAGE_COMMANDS[0], photos)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    result = _script_run("compress", photos, empty, "-o", out, "--jobs", "2")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "Error" in line]
    assert sorted(errors) == sorted([
        f"Error: {empty}: folder holds no image file in a format dctconv reads "
        "(PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP)",
        f"Error: {photos / 'truncated.png'}: cannot read image: image file is truncated",
        f"Error: {photos / 'bomb.png'}: image is 70000 x 70000 = 4,900,000,000 pixels, more than the "
        "limit of 89,478,485; rerun with --max-pixels 4900000000 to allow it",
    ])
    assert files_in(out) == sorted(p.name for p in command_named("compress").written(good, out))
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [str(good)]


def test_script_verify_file_refuses_a_pickle_and_fails_a_wrong_image(tmp_path):
    marker = tmp_path / "pickle-was-loaded"
    evil = write_npz(tmp_path / "evil_coefficients.npz", _with(coefficients=np.array([Armed(marker)], dtype=object)))
    image = tmp_path / "crop.png"
    image.write_bytes(png_bytes(sample_crop()))
    result = _script_run("verify", evil, image)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Error: {evil}: array coefficients holds pickled Python objects; "
        "refused without unpickling it (dctconv never unpickles)"
    ]
    assert not marker.exists()

    # A good file against an image one pixel off: a verdict on stdout, no error, exit 1.
    good = write_npz(tmp_path / "good_coefficients.npz", coefficient_arrays(sample_crop()))
    changed = sample_crop().copy()
    changed[4, 5] += 1 if changed[4, 5] < 255 else -1
    other = tmp_path / "changed.png"
    other.write_bytes(png_bytes(changed))
    result = _script_run("verify", good, other)
    assert result.returncode == 1
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith(
        f"FAILED: {good} does not hold the transform of {other}: the coefficient at block row 1, "
        "block column 1, frequency"
    )
    assert _script_run("verify", good, image).returncode == 0


def test_help_still_imports_no_numpy():
    """The error machinery added to cli.py and errors.py must keep --help light."""
    code = (
        "import sys; from click.testing import CliRunner; from dctconv.cli import cli; "
        "assert CliRunner().invoke(cli, ['transform', '--help']).exit_code == 0; "
        "heavy = {'numpy', 'scipy', 'PIL', 'matplotlib', 'skimage', 'numba', 'llvmlite'}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- hostile compressed files (.dctz)


def _codec_file(**fields) -> bytes:
    """A valid compressed file of the sample crop (made by dctconv's encoder: the format has no
    other writer), with header fields overwritten at their documented offsets."""
    import struct

    import dctconv

    from hostile import reseal

    data = bytearray(dctconv.encode(sample_crop()))
    # levels_bytes: the length of ADPT, the first entry of version 4's section table.
    offsets = {"version": (4, "<B"), "block_size": (5, "<B"), "mode": (6, "<B"), "height": (12, "<I"),
               "width": (16, "<I"), "levels_bytes": (68, "<I")}
    for name, value in fields.items():
        offset, form = offsets[name]
        struct.pack_into(form, data, offset, value)
    # Checksums recomputed: each case reaches the check of its own field.
    return reseal(bytes(data))


def _codec_size() -> int:
    return len(_codec_file())


CODEC_FILE_CASES = {
    "empty": (lambda: b"", "not a dctconv compressed file (wrong magic bytes)"),
    "wrong magic": (lambda: b"DCTX" + _codec_file()[4:], "not a dctconv compressed file (wrong magic bytes)"),
    # The content decides (dctconv.io._kinds): a zip archive is read as one, whatever its name.
    "an npz named .dctz": (lambda: b"PK\x03\x04" + bytes(60), "damaged .npz archive: File is not a zip file"),
    "truncated header": (lambda: _codec_file()[:20], "file is truncated: 20 bytes, shorter than the 64-byte header"),
    "unknown version": (
        lambda: _codec_file(version=9),
        "unknown format version 9 (this dctconv reads versions 1 to 4; a newer dctconv may read it)",
    ),
    "damaged header": (
        lambda: _codec_file()[:5] + b"\x08" + _codec_file()[6:],
        "the header is damaged (its CRC-32 does not match)",
    ),
    "damaged section": (
        lambda: _codec_file()[:-1] + bytes([_codec_file()[-1] ^ 0x10]),
        "section ADPT (the adaptively coded levels) is damaged (its CRC-32 does not match)",
    ),
    "block size": (lambda: _codec_file(block_size=65), "header gives block size 65, not from 2 to 64"),
    "pixel mode": (lambda: _codec_file(mode=7), "header gives unknown pixel mode 7"),
    "no pixels": (lambda: _codec_file(width=0), "header gives an image of 0 x 10 pixels"),
    "truncated data": (
        lambda: _codec_file()[:-3],
        lambda: f"file is truncated: its header describes {_codec_size():,} bytes, the file has {_codec_size() - 3:,}",
    ),
    "garbage after the data": (
        lambda: _codec_file() + b"junk",
        lambda: f"file is followed by 4 extra bytes: its header describes {_codec_size():,} bytes, "
                f"the file has {_codec_size() + 4:,}",
    ),
    "sections that lie": (
        lambda: _codec_file(levels_bytes=2**31),
        lambda: f"file is truncated: its header describes {_codec_size() + 2**31 - len(_levels_section()):,} "
                f"bytes, the file has {_codec_size():,}",
    ),
    "size beyond --max-pixels": (
        lambda: _codec_file(height=100_000, width=100_000),
        "image is 100000 x 100000 = 10,000,000,000 pixels, more than the limit of 89,478,485; "
        "rerun with --max-pixels 10000000000 to allow it",
    ),
}


def _levels_section() -> bytes:
    import dctconv.codec._dctz as codec_file

    data = _codec_file()
    start, end = codec_file.read_header(data).section_offsets()["ADPT"]
    return data[start:end]


@coefficient_commands
@pytest.mark.parametrize("case", list(CODEC_FILE_CASES))
def test_hostile_compressed_file(command, case, tmp_path):
    content, message = CODEC_FILE_CASES[case]
    path = tmp_path / "x_compressed.dctz"
    path.write_bytes(content())
    out = tmp_path / "out"
    assert_fails(run(command.argv([path], out)), path, message if isinstance(message, str) else message())
    assert files_in(out) == []


@coefficient_commands
def test_compressed_file_renamed_npz_is_still_read(command, tmp_path):
    """The format is told by the magic bytes, not only by the name."""
    import dctconv

    path = tmp_path / "x_compressed.npz"
    path.write_bytes(dctconv.encode(sample_crop(), quality=60))
    result = run(command.argv([path], tmp_path / "out"))
    assert result.exit_code == 0, result.output
    command.check(path, tmp_path / "out", result)
