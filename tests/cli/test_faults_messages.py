"""Issue 10, what the user reads: control characters escaped in every printed name (item 10),
messages that say what is wrong (item 12)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dctconv.cli import cli
from hostile import coefficient_arrays, png_bytes, sample_crop, write_npz
from references import reference_blockwise_dct
from _helpers import output_names

DCTCONV = Path(sys.executable).with_name("dctconv")


def run(args):
    return CliRunner().invoke(cli, [str(a) for a in args])


# ---------------------------------------------------------------- item 10

HOSTILE_NAME = "red\x1b[31m\x07\rname"  # an escape sequence, a bell, a carriage return
ESCAPED = "red\\x1b[31m\\x07\\rname"


def _control_characters(text: str) -> list[str]:
    return [ch for ch in text if not ch.isprintable() and ch != "\n"]


@pytest.fixture(scope="module")
def hostile_inputs(tmp_path_factory):
    """An RGB image (so that a Note is printed) and its coefficient file, both with the hostile name."""
    folder = tmp_path_factory.mktemp("names") / f"in{HOSTILE_NAME}"
    folder.mkdir()
    image = folder / f"{HOSTILE_NAME}.png"
    gray = sample_crop()
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(image)
    out = folder.parent / f"out{HOSTILE_NAME}"
    result = run(["transform", image, "-o", out, "--kernels"])
    assert result.exit_code == 0, result.output
    return image, out


@pytest.mark.parametrize("command", [
    lambda image, out: ["transform", image, "-o", out, "--kernels"],
    lambda image, out: ["transform", "--inverse", out / f"{HOSTILE_NAME}_coefficients.npz", "-o", out],
    lambda image, out: ["compress", image, "-o", out / "c"],
    lambda image, out: ["verify", image, "--block-size", "2"],
    lambda image, out: ["verify", out / f"{HOSTILE_NAME}_coefficients.npz", image],
], ids=["transform", "inverse", "compress", "verify", "verify-file"])
def test_names_are_escaped_on_every_line(command, hostile_inputs):
    image, out = hostile_inputs
    result = run(command(image, out))
    assert result.exit_code == 0, result.output
    assert _control_characters(result.stdout) == []
    assert _control_characters(result.stderr) == []
    assert ESCAPED in result.stdout + result.stderr  # the name is there, escaped


# ---------------------------------------------------------------- item 12


def test_outputs_that_are_links_to_one_file_are_replaced(tmp_path):
    """Two output names linking to one file are two outputs, not 'written twice by the same input'."""
    source = tmp_path / "x.png"
    source.write_bytes(png_bytes(sample_crop()))
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "target"
    target.write_bytes(b"not to be touched")
    for name in ("x_coefficients.npz", "x_maps.png"):
        (out / name).symlink_to(target)
    result = run(["transform", source, "-o", out])
    assert result.exit_code == 0, result.output
    assert not (out / "x_coefficients.npz").is_symlink() and not (out / "x_maps.png").is_symlink()
    with Image.open(out / "x_maps.png") as maps:
        assert maps.format == "PNG"
    assert target.read_bytes() == b"not to be touched"
    assert output_names(out) == ["x_coefficients.npz", "x_maps.png"]


def test_memory_limit_while_importing_says_so(tmp_path):
    """ulimit -v low enough that numpy's compiled modules cannot be mapped: not 'internal error (ImportError'."""
    source = tmp_path / "x.png"
    source.write_bytes(png_bytes(sample_crop()))
    limit = 48 << 20

    def low_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    result = subprocess.run([str(DCTCONV), "transform", str(source), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, preexec_fn=low_memory, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: not enough memory to load numpy; raise the memory limit (ulimit -v) or free memory"
    ]


# ---------------------------------------------------------------- item 11


def test_verify_refuses_a_file_whose_recorded_mode_is_not_the_images(tmp_path):
    """image_mode edited from L to I;16: the reconstruction would be written as 16-bit; not 'OK'."""
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes(sample_crop()))
    edited = write_npz(tmp_path / "x_coefficients.npz", coefficient_arrays(sample_crop()), image_mode=np.array("I;16"))
    result = run(["verify", edited, image])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {edited}: {image} is an 8-bit gray (L) image but the file records a 16-bit gray (I;16) one"
    ]


def test_verify_shows_the_settings_it_took_from_the_file(tmp_path):
    """A compressed file claiming threshold 1e9: every zero is 'deliberate', so the user must see it."""
    pixels = sample_crop()
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes(pixels))
    mask = np.isin(np.arange(16), [0, 1, 4])
    levels = np.rint(reference_blockwise_dct(pixels, 4)[mask] / 2.0).astype(np.int64)
    levels[1:] = 0  # every kept AC coefficient zeroed, "below the threshold"
    path = write_npz(tmp_path / "x_compressed.npz", {
        **coefficient_arrays(pixels), "kind": np.array("compressed"), "step": np.array(2.0),
        "threshold": np.array(1e9), "channel_mask": mask, "kept": levels,
    }, drop=("coefficients",))
    result = run(["verify", path, image])
    assert result.stdout.splitlines()[-2] == (
        "trusted:   block size 4, 3 of 16 channels kept, step 2, threshold 1e+09 (as the file records them)"
    )
    result = run(["verify", path, image, "--json"])
    assert json.loads(result.stdout)["trusted"] == {"block_size": 4, "kept_channels": 3, "step": 2.0,
                                                    "threshold": 1e9}
