"""Issue 10, inputs: header bombs (item 2), external programs (4), uint32 TIFF (5),
non-regular files (6), EXIF orientation (13)."""

from __future__ import annotations

import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from dctconv.cli import cli
from dctconv.coefficient_file import load_coefficients
from dctconv.errors import CoefficientFileError
from hostile import coefficient_arrays, sample_crop


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
                     "coefficients are 16 x 3 x 87381, but image_shape 10 x 13 at block size 4 "
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
