"""Issue 17: every command tells a file's kind by its content (dctconv.io._kinds), folders
included, and a file of the wrong kind gets the command that reads it."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dctconv import decode, encode
from dctconv.cli import cli
from _helpers import output_names


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def image():
    return np.random.default_rng(17).integers(0, 256, (16, 24), dtype=np.uint8)


def test_inverse_of_a_folder_decodes_its_compressed_files_too(image, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a_compressed.dctz").write_bytes(encode(image, quality=50))
    (folder / "renamed.bin").write_bytes(encode(image[::-1], quality=50))  # the content says what it is
    Image.fromarray(image).save(folder / "b.png")
    assert run("transform", folder / "b.png", "-o", folder).exit_code == 0  # b_coefficients.npz
    result = run("transform", "--inverse", folder, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert output_names(tmp_path / "out") == [
        "a_reconstruction.png", "b_reconstruction.png", "renamed_reconstruction.png"]
    for name, data in [("a", (folder / "a_compressed.dctz").read_bytes()),
                       ("renamed", (folder / "renamed.bin").read_bytes())]:
        with Image.open(tmp_path / "out" / f"{name}_reconstruction.png") as decoded:
            np.testing.assert_array_equal(np.asarray(decoded), decode(data))
    with Image.open(tmp_path / "out" / "b_reconstruction.png") as decoded:
        np.testing.assert_array_equal(np.asarray(decoded), image)


def test_a_folder_of_images_only_has_no_coefficient_file(image, tmp_path):
    Image.fromarray(image).save(tmp_path / "a.png")
    result = run("transform", "--inverse", tmp_path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path}: folder holds no coefficient file (.npz) or compressed file (.dctz)"]


@pytest.mark.parametrize("command", ["transform", "compress"])
def test_a_compressed_file_given_as_an_image_names_transform_inverse(command, image, tmp_path):
    compressed = tmp_path / "x_compressed.dctz"
    compressed.write_bytes(encode(image))
    result = run(command, compressed, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {compressed}: is a compressed file (.dctz), not an image; decode it with dctconv transform --inverse"]


def test_a_coefficient_file_given_as_an_image_names_transform_inverse(image, tmp_path):
    Image.fromarray(image).save(tmp_path / "a.png")
    assert run("transform", tmp_path / "a.png", "-o", tmp_path).exit_code == 0
    result = run("transform", tmp_path / "a_coefficients.npz", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {tmp_path / 'a_coefficients.npz'}: is a coefficient file (.npz), not an image; reconstruct the "
        "image with dctconv transform --inverse"]


def test_an_image_given_to_inverse_names_both_file_kinds_and_the_command(image, tmp_path):
    photo = tmp_path / "photo.jpg"
    Image.fromarray(image).save(photo, format="JPEG")
    result = run("transform", "--inverse", photo, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {photo}: is an image, not a coefficient file (.npz) or a compressed file (.dctz); use dctconv "
        "transform without --inverse (or dctconv compress)"]


def test_verify_tells_a_renamed_compressed_file_by_its_content(image, tmp_path):
    Image.fromarray(image).save(tmp_path / "a.png")
    renamed = tmp_path / "a.bin"
    renamed.write_bytes(encode(image, quality=60))
    result = run("verify", renamed, tmp_path / "a.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(f"file:      {renamed} (compressed")


def test_verify_of_an_image_that_starts_like_a_zip_archive_reports_the_damage(tmp_path):
    # Not a usage error (exit 2, "give FILE IMAGE"): the file is no archive, so it is the image
    # its name says, and a damaged one.
    damaged = tmp_path / "fuzzed.png"
    damaged.write_bytes(b"PK\x05\x06\x89PNG\r\n\x1a\n" + bytes(60))
    result = run("verify", damaged, "-n", 4)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"Error: {damaged}: not an image")
