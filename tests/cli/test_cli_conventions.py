"""One convention for the command line (issue 11): folders, a file given twice, one JSON
shape, sizes as width x height, a default step that fits float images, summaries in full,
and a note when compressing made a file larger than its pixels."""

import json
import re

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from dctconv.cli import cli
from _helpers import output_names


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def photos(tmp_path):
    """A folder of two small gray images, a text file and a hidden image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for name in ("b.png", "a.png"):
        Image.fromarray(rng.integers(0, 256, (12, 20), dtype=np.uint8)).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / ".hidden.png")
    return folder


def test_transform_takes_a_folder_and_inverse_a_folder_of_coefficient_files(photos, tmp_path):
    out = tmp_path / "out"
    result = run("transform", photos, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert [f["input"] for f in files] == [str(photos / "a.png"), str(photos / "b.png")]
    assert output_names(out) == [
        "a_coefficients.npz", "a_maps.png", "b_coefficients.npz", "b_maps.png"]

    back = tmp_path / "back"
    result = run("transform", "--inverse", out, "-o", back)
    assert result.exit_code == 0, result.output
    for name in ("a", "b"):
        with Image.open(back / f"{name}_reconstruction.png") as decoded, Image.open(photos / f"{name}.png") as source:
            np.testing.assert_array_equal(np.asarray(decoded), np.asarray(source))


def test_a_folder_without_inputs_is_one_error_line(tmp_path, photos):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("transform", empty, photos / "a.png", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {empty}: folder holds no image file in a format dctconv reads "
        "(PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP)"
    ]
    assert (tmp_path / "out" / "a_maps.png").exists()  # the rest is done
    result = run("transform", "--inverse", photos, "-o", tmp_path / "back")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {photos}: folder holds no coefficient file (.npz) or compressed file (.dctz)"
    ]


@pytest.mark.parametrize("command", ["transform", "compress"])
def test_the_same_file_twice_is_processed_once_with_a_note(command, photos, tmp_path):
    image = photos / "a.png"
    other_name = photos / ".." / "photos" / "a.png"
    result = run(command, image, other_name, photos, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "more than once" in line]
    assert notes == [
        f"Note: {other_name}: given more than once; processed once",
        f"Note: {image}: given more than once; processed once",
    ]
    assert "Error" not in result.stderr
    assert len(list((tmp_path / "out").glob("a_*"))) == len(list((tmp_path / "out").glob("b_*"))) > 0


def test_verify_checks_an_image_given_twice_once(photos):
    image = photos / "a.png"
    once = run("verify", image, "-n", 4)
    twice = run("verify", image, image, "-n", 4)
    assert twice.exit_code == once.exit_code == 0
    assert twice.stdout == once.stdout
    assert twice.stderr.splitlines() == [f"Note: {image}: given more than once; processed once"]


def test_transform_and_compress_print_one_json_shape(photos, tmp_path):
    shapes = {}
    for command in ("transform", "compress"):
        result = run(command, photos / "a.png", "-o", tmp_path / command, "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert list(report) == ["files"]
        [entry] = report["files"]
        assert list(entry)[:2] == ["input", "outputs"]
        assert entry["input"] == str(photos / "a.png")
        assert sorted(entry["outputs"]) == [str(tmp_path / command / name) for name in output_names(tmp_path / command)]
        shapes[command] = entry
    # compress adds its numbers to the same object, without repeating input or outputs.
    assert set(shapes["compress"]) - set(shapes["transform"]) >= {"psnr_db", "ssim", "bits_per_pixel"}
    assert not {"source", "files"} & set(shapes["compress"])


def test_verify_says_sizes_width_by_height(tmp_path):
    wide = np.zeros((10, 30), np.uint8)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.fromarray(wide.T.copy()).save(tmp_path / "tall.png")
    assert run("transform", tmp_path / "wide.png", "-o", tmp_path).exit_code == 0
    result = run("verify", tmp_path / "wide_coefficients.npz", tmp_path / "tall.png")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path / 'wide_coefficients.npz'}: {tmp_path / 'tall.png'} is 10 x 30 pixels but the "
        "file holds the transform of a 30 x 10 image"
    ]
    result = run("verify", tmp_path / "wide_coefficients.npz", tmp_path / "wide.png", "--max-pixels", 100)
    assert result.stderr.splitlines()[-1] == (
        f"Error: {tmp_path / 'wide.png'}: image is 30 x 10 = 300 pixels, more than the limit of 100; "
        "rerun with --max-pixels 300 to allow it"
    )


def test_a_float_image_is_not_cut_into_bands_by_the_default_quantization(tmp_path):
    # A smooth float image in [0, 1]: one step of 1, as compress once defaulted to, left
    # a few flat bands. The default steps follow the image's data range.
    y, x = np.mgrid[0:64, 0:64]
    image = (0.5 + 0.5 * np.sin(x / 9.0) * np.cos(y / 13.0)).astype(np.float32)
    Image.fromarray(image, mode="F").save(tmp_path / "float.tif")
    result = run("compress", tmp_path / "float.tif", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "float_reconstruction.tif") as decoded:
        pixels = np.asarray(decoded, dtype=np.float64)
    assert peak_signal_noise_ratio(image.astype(np.float64), pixels, data_range=1.0) > 35
    assert len(np.unique(pixels)) > 200
    banded = run("compress", tmp_path / "float.tif", "-o", tmp_path / "banded", "--step", 1)
    assert banded.exit_code == 0, banded.output
    with Image.open(tmp_path / "banded" / "float_reconstruction.tif") as decoded:
        assert len(np.unique(np.asarray(decoded))) < len(np.unique(pixels)) / 10


def test_top_level_help_shows_each_summary_in_full():
    result = run("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:", 1)[1]
    assert "..." not in commands
    flat = " ".join(commands.split())
    for name, command in cli.commands.items():
        summary = " ".join(command.help.strip().splitlines()[0].split())
        assert f"{name} {summary}" in flat


def test_a_compressed_file_larger_than_its_pixels_gets_a_note(tmp_path):
    noise = np.random.default_rng(3).integers(0, 256, (16, 16), dtype=np.uint8)  # header under 256 bytes
    Image.fromarray(noise).save(tmp_path / "tiny.png")
    result = run("compress", tmp_path / "tiny.png", "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    size = (tmp_path / "out" / "tiny_compressed.dctz").stat().st_size
    assert size > noise.nbytes
    assert f"Note: {tmp_path / 'tiny.png'}: the compressed file ({size:,} bytes) is larger than the raw " \
           f"pixels (256 bytes); a lower --quality (or a larger --step) makes it smaller" in result.stderr.splitlines()
    big = np.tile(np.arange(64, dtype=np.uint8), (64, 1))
    Image.fromarray(big).save(tmp_path / "ramp.png")
    result = run("compress", tmp_path / "ramp.png", "-o", tmp_path / "out")
    assert result.exit_code == 0 and "larger than the raw pixels" not in result.stderr
