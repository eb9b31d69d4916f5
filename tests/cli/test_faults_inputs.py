"""Issue 10, inputs: header bombs (item 2), external programs (4), uint32 TIFF (5),
non-regular files (6), EXIF orientation (13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from dctconv.cli import cli
from dctconv.io._npz import load_coefficients
from dctconv.errors import CoefficientFileError
from dctconv.io._images import read_image
from hostile import coefficient_arrays, sample_crop
from references import reference_blockwise_dct


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ---------------------------------------------------------------- item 2, header bombs

BOMB_BYTES = 32 << 20  # inflates from about 32 kB; the real attack is 1.6 GB from 1.6 MB
PEAK_LIMIT = 4 << 20  # what reading the small valid file around the bomb may cost

TRANSFORM_ARRAYS = coefficient_arrays(sample_crop())  # a 10 x 13 image, 4 x 4 blocks
COMPRESSED_ARRAYS = {
    **{k: v for k, v in TRANSFORM_ARRAYS.items() if k != "coefficients"},
    "kind": np.array("compressed"),
    "step": np.array(1.0),
    "threshold": np.array(0.0),
    "channel_mask": np.isin(np.arange(16), [0, 1, 4]),
    "kept": np.zeros((3, 3, 4), np.int64),
}


def npz_with_bomb(path: Path, arrays: dict, key: str, descr: str, shape: tuple) -> Path:
    """``arrays`` as an .npz whose member ``key`` is BOMB_BYTES of zeros of ``descr`` and ``shape``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, value in arrays.items():
            if name != key:
                with archive.open(f"{name}.npy", "w") as f:
                    np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
        with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": shape})
            zeros = bytes(1 << 20)
            for _ in range(BOMB_BYTES >> 20):
                f.write(zeros)
    assert path.stat().st_size < BOMB_BYTES // 100
    return path


TEXT = f"<U{BOMB_BYTES // 4}"
INTEGERS = ("<i8", (BOMB_BYTES // 8,))
TEXT_MESSAGE = "is a text of 8,388,608 characters, more than the 4,096 allowed"
ARRAY_OF = "an array of 4194304 values of int64"
BOMBS = {
    # member: (arrays, dtype, shape, message)
    "format_version": (TRANSFORM_ARRAYS, *INTEGERS, f"format_version must be a single whole number, got {ARRAY_OF}"),
    "block_size": (TRANSFORM_ARRAYS, *INTEGERS, f"block_size must be a single whole number, got {ARRAY_OF}"),
    "image_shape": (TRANSFORM_ARRAYS, *INTEGERS, f"image_shape must be two positive whole numbers, got {ARRAY_OF}"),
    "kind": (TRANSFORM_ARRAYS, TEXT, (), f"kind {TEXT_MESSAGE}"),
    "image_mode": (TRANSFORM_ARRAYS, TEXT, (), f"image_mode {TEXT_MESSAGE}"),
    "source": (TRANSFORM_ARRAYS, TEXT, (), f"source {TEXT_MESSAGE}"),
    "step": (COMPRESSED_ARRAYS, *INTEGERS, f"step must be a single number, got {ARRAY_OF}"),
    "threshold": (COMPRESSED_ARRAYS, *INTEGERS, f"threshold must be a single number, got {ARRAY_OF}"),
    "channel_mask": (COMPRESSED_ARRAYS, "|b1", (BOMB_BYTES,),
                     "channel_mask has 33554432 entries, expected 16 entries for block_size 4"),
    "kept": (COMPRESSED_ARRAYS, *INTEGERS, "kept is 4194304, expected 3 x 3 x 4 "
             "(the kept channels of channel_mask, by the block grid of image_shape)"),
    "coefficients": (TRANSFORM_ARRAYS, "<f8", (16, 3, BOMB_BYTES // (8 * 48)),
                     "coefficients are 16 x 3 x 87381, but an image of 13 x 10 (image_shape) at block size 4 "
                     "needs 16 x 3 x 4"),
}


def _peak_of(call):
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("key", list(BOMBS))
def test_every_member_is_checked_before_its_data_is_read(key, tmp_path):
    arrays, descr, shape, message = BOMBS[key]
    path = npz_with_bomb(tmp_path / "bomb.npz", arrays, key, descr, shape)

    def load():
        with pytest.raises(CoefficientFileError) as info:
            load_coefficients(path)
        assert str(info.value) == message

    assert _peak_of(load) < PEAK_LIMIT


def test_members_the_format_does_not_name_are_never_read(tmp_path):
    path = npz_with_bomb(tmp_path / "extra.npz", dict(TRANSFORM_ARRAYS, junk=0), "junk", TEXT, ())
    peak = _peak_of(lambda: load_coefficients(path))
    assert peak < PEAK_LIMIT


def test_bomb_in_the_source_member_is_one_error_line(tmp_path):
    path = npz_with_bomb(tmp_path / "x_coefficients.npz", TRANSFORM_ARRAYS, "source", TEXT, ())
    result = run(["transform", "--inverse", path, "-o", tmp_path / "out"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"Error: {path}: source {TEXT_MESSAGE}"]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ---------------------------------------------------------------- items 4 and 6: installed script

DCTCONV = Path(sys.executable).with_name("dctconv")
FORMATS_ERROR = ("not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), "
                 "or its header is damaged")


def script(args, *, env=None, timeout=60, **kwargs):
    """Run the installed ``dctconv`` (a fresh process: no Pillow state shared with the tests)."""
    return subprocess.run([str(DCTCONV), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\nshowpage\n%%EOF\n"


@pytest.mark.parametrize("command", [["transform"], ["verify"]], ids=["transform", "verify"])
def test_eps_named_png_never_reaches_ghostscript(command, tmp_path):
    """Pillow would run gs on an EPS file whatever its name; a fake gs on PATH records any call."""
    bin_dir, called = tmp_path / "bin", tmp_path / "gs-was-called"
    bin_dir.mkdir()
    gs = bin_dir / "gs"
    gs.write_text(f"#!/bin/sh\necho \"$@\" >> '{called}'\nexit 1\n")
    gs.chmod(0o755)
    image = tmp_path / "x.png"
    image.write_bytes(EPS)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    args = [*command, image] + (["-o", tmp_path / "out"] if command == ["transform"] else [])
    result = script(args, env=env)
    assert not called.exists(), "Ghostscript was run on the file"
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        f"Error: {image}: {FORMATS_ERROR}"
    ]


def test_fifo_and_piped_stdin_are_refused_at_once(tmp_path):
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    result = script(["transform", fifo, "/dev/stdin", "-o", tmp_path / "out", "--jobs", "1"],
                    input="text piped in", timeout=30)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        f"Error: {fifo}: is a FIFO (named pipe), not a regular file",
        "Error: /dev/stdin: is a FIFO (named pipe), not a regular file",
    ]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_fifo_as_coefficient_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "x_coefficients.npz"
    os.mkfifo(fifo)
    result = script(["transform", "--inverse", fifo, "-o", tmp_path / "out"], timeout=30)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: {fifo}: is a FIFO (named pipe), not a regular file"]


def test_character_device_is_refused(tmp_path):
    result = run(["verify", "/dev/null"])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("Error")] == [
        "Error: /dev/null: is a character device, not a regular file"
    ]


# ---------------------------------------------------------------- item 5, uint32 TIFF


def _uint32_tiff(path: Path, values) -> Path:
    tifffile.imwrite(path, np.array(values, dtype=np.uint32))  # SampleFormat 1: unsigned
    return path


def test_uint32_tiff_below_2_to_the_31_is_read_exactly(tmp_path):
    values = [[0, 1, 2**31 - 1], [7, 2**20 + 3, 2**31 - 2]]
    image, info = read_image(_uint32_tiff(tmp_path / "small.tif", values))
    assert info.mode == "I"
    np.testing.assert_array_equal(image.astype(np.int64), np.array(values, dtype=np.int64))


def test_uint32_tiff_values_from_2_to_the_31_are_refused_not_wrapped(tmp_path):
    path = _uint32_tiff(tmp_path / "big.tif", [[0, 2**31, 2**32 - 1], [5, 6, 7]])
    result = run(["transform", path, "-o", tmp_path / "out"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}: holds unsigned 32-bit values of 2**31 or more, which dctconv cannot keep exactly "
        "(it keeps 32-bit images as signed integers); scale its values below 2**31 first"
    ]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_signed_int32_tiff_keeps_its_negative_values(tmp_path):
    values = np.array([[-2**31, -1, 0], [1, 2**31 - 1, -7]], dtype=np.int32)
    tifffile.imwrite(tmp_path / "signed.tif", values)
    image, info = read_image(tmp_path / "signed.tif")
    assert info.mode == "I"
    np.testing.assert_array_equal(image, values)


# ---------------------------------------------------------------- item 13, EXIF orientation

STORED = np.tile(np.arange(40, dtype=np.uint8) * 6, (80, 1))  # 40 wide, 80 tall, as stored
STORED[:20] += 10  # top rows brighter: rotation and mirroring are told apart
ORIENTATION_NOTE = "turned by its EXIF orientation (rotated 90° clockwise), as image viewers show it"


def _jpeg_with_orientation(path: Path, orientation: int) -> np.ndarray:
    """Write STORED as a JPEG tagged ``orientation``; return its decoded pixels as stored."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(STORED).save(path, format="JPEG", quality=95, exif=exif)
    with Image.open(path) as im:
        return np.asarray(im)  # Pillow decodes without turning it


def test_exif_orientation_is_applied_by_transform(tmp_path):
    path = tmp_path / "photo.jpg"
    stored = _jpeg_with_orientation(path, 6)
    upright = np.rot90(stored, -1)  # orientation 6: shown turned 90° clockwise
    assert upright.shape == (40, 80)
    result = run(["transform", path, "-o", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Note: {path}: {ORIENTATION_NOTE}"]
    with np.load(tmp_path / "out" / "photo_coefficients.npz") as saved:
        assert tuple(saved["image_shape"]) == (40, 80)
        np.testing.assert_allclose(saved["coefficients"], reference_blockwise_dct(upright, 4), atol=1e-9)


def test_exif_orientation_is_applied_by_compress_and_verify(tmp_path):
    path = tmp_path / "photo.jpg"
    _jpeg_with_orientation(path, 6)
    out = tmp_path / "out"
    result = run(["compress", path, "-o", out])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Note: {path}: {ORIENTATION_NOTE}"]
    metrics = json.loads((out / "photo_metrics.json").read_text())
    assert (metrics["width"], metrics["height"]) == (80, 40)
    result = run(["verify", path, "--block-size", "4"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Note: {path}: {ORIENTATION_NOTE}"]
    assert run(["transform", path, "-o", out]).exit_code == 0
    result = run(["verify", out / "photo_coefficients.npz", path])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"Note: {path}: {ORIENTATION_NOTE}"]


def test_no_orientation_tag_means_no_note(tmp_path):
    path = tmp_path / "photo.jpg"
    stored = _jpeg_with_orientation(path, 1)
    image, info = read_image(path)
    assert info.orientation == 1
    np.testing.assert_array_equal(image, stored)
