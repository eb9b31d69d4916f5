"""`dctconv verify` through click's CliRunner: table, --json, exit codes, FILE.npz IMAGE."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from references import SAMPLES, reference_blockwise_dct, tolerance
from PIL import Image

import dctconv.transform
from dctconv.cli import cli

CHECK_KEYS = {"name", "passed", "max_error", "tolerance", "block_size", "input"}
TABLE_HEADER = re.compile(r"^check +block size +input +max error +tolerance +result$")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of the table (split on runs of 2+ spaces), header and rule excluded."""
    lines = stdout.splitlines()
    assert TABLE_HEADER.match(lines[0]), lines[0]
    return [re.split(r"\s{2,}", line.strip()) for line in lines[2:-1] if not line.startswith("FAIL ")]


def test_default_run_passes_and_prints_the_table():
    result = run("verify")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = table_rows(result.stdout)
    # 3 block sizes x (2 kernel + 2 adjoint + 1 residual block + 6 images x 6 checks) + 2 scale checks at n = 4
    assert len(rows) == 3 * (2 + 2 + 1 + 6 * 6) + 2
    assert lines[-1] == f"all {len(rows)} checks passed"
    assert {row[1] for row in rows} == {"2", "4", "8"}
    assert all(row[-1] == "pass" for row in rows)
    inputs = {row[2] for row in rows}
    assert {"random 64x64", "random 64x64 float32", "constant 64x64", "ramp 64x64",
            "checkerboard 64x64", "random 37x23"} <= inputs


def test_json_has_exactly_the_keys_and_matches_the_table():
    result = run("verify", "--json", "-n", "5")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds the JSON and nothing else
    assert set(data) == {"passed", "checks"} and data["passed"] is True
    assert all(set(check) == CHECK_KEYS for check in data["checks"])
    assert {check["block_size"] for check in data["checks"]} == {5}
    table = table_rows(run("verify", "-n", "5").stdout)
    assert [(c["name"], c["input"]) for c in data["checks"]] == [(row[0], row[2]) for row in table]
    for check in data["checks"]:
        assert check["max_error"] <= check["tolerance"]


def test_sample_images_pass():
    images = [SAMPLES / name for name in ("coins.png", "astronaut.png")]
    result = run("verify", *images, "--block-size", "8", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["passed"]
    # the literal correlation at n = 8 affords 9 x 9 blocks: (8*8 + 1)**2 * 8**4 <= 2e7 multiply-adds
    assert {c["input"] for c in data["checks"]} >= {"coins.png", "astronaut.png",
                                                   "coins.png (bottom-right 72x72)"}
    assert "Note: " in result.stderr and "RGB converted to 8-bit gray" in result.stderr


@pytest.mark.parametrize("n", [3, 16])
def test_builtin_images_pass_at_other_block_sizes(n):
    result = run("verify", "-n", n)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith("all ")


def test_a_broken_transform_fails_with_exit_1(monkeypatch):
    """Swap two kernels inside the real forward/inverse: the checks that compare with an
    independent reference must say FAIL, and the exit code must be 1."""
    real = dctconv.transform.kernel_matrix

    def swapped(n):
        weights = real(n).copy()
        weights[[1, n]] = weights[[n, 1]]  # kernels (0, 1) and (1, 0) exchanged: transposed
        return weights

    monkeypatch.setattr(dctconv.transform, "kernel_matrix", swapped)
    # Both directions on the kernel matrix (the float64 inverse is separable from n = 4).
    monkeypatch.setattr(dctconv.transform, "SEPARABLE_FROM", dict.fromkeys(dctconv.transform.SEPARABLE_FROM, 99))
    result = run("verify", "-n", "4")
    assert result.exit_code == 1
    rows = table_rows(result.stdout)
    failed = {row[0] for row in rows if row[-1] == "FAIL"}
    # a permutation of orthonormal kernels is still orthonormal and still invertible: only
    # the comparisons with correlate2d and dctn can see it, on inputs that are not symmetric
    assert failed == {"forward=correlate2d", "forward=dctn-per-block"}
    count = sum(row[-1] == "FAIL" for row in rows)
    assert result.stdout.splitlines()[-1] == f"{count} of {len(rows)} checks FAILED"
    data = json.loads(run("verify", "-n", "4", "--json").stdout)
    assert data["passed"] is False


def test_a_broken_separable_transform_fails_with_exit_1(monkeypatch):
    """The same for the separable form (n = 8): two rows of the 1-D DCT matrix swapped."""
    real = dctconv.transform.dct_matrix

    def swapped(n):
        basis = real(n).copy()
        basis[[1, 2]] = basis[[2, 1]]
        return basis

    monkeypatch.setattr(dctconv.transform, "dct_matrix", swapped)
    assert dctconv.transform.SEPARABLE_FROM["forward", np.dtype(np.float64)] <= 8
    result = run("verify", "-n", "8")
    assert result.exit_code == 1
    failed = {row[0] for row in table_rows(result.stdout) if row[-1] == "FAIL"}
    assert failed == {"forward=correlate2d", "forward=dctn-per-block"}


def test_unreadable_image_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = run("verify", bad, SAMPLES / "text.png", "-n", "4")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert errors == [f"Error: {bad}: not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), or its header is damaged"]
    assert result.stdout.splitlines()[-1].endswith("; 1 of 2 images could not be read (errors above)")
    assert any(row[2] == "text.png" for row in table_rows(result.stdout))


def test_max_pixels_is_applied():
    image = SAMPLES / "camera.png"
    result = run("verify", image, "--max-pixels", "1000")
    assert result.exit_code == 1
    assert f"Error: {image}: image is 512 x 512 = 262,144 pixels, more than the limit of 1,000; " \
           "rerun with --max-pixels 262144 to allow it" in result.stderr.splitlines()


# ---------------------------------------------------------------- verify FILE.npz IMAGE


@pytest.fixture
def camera_file(tmp_path):
    result = run("transform", SAMPLES / "camera.png", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    return tmp_path / "camera_coefficients.npz"


def test_file_matches_its_image(camera_file):
    result = run("verify", camera_file, SAMPLES / "camera.png")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(
        f"OK: {camera_file} holds the transform of {SAMPLES / 'camera.png'}: largest difference")


def test_file_fails_when_one_4x4_block_changed(camera_file, tmp_path):
    original = np.asarray(Image.open(SAMPLES / "camera.png"))
    changed = original.copy()
    # block row 20, block column 37; flip the pixels around mid-gray so nothing clips
    changed[80:84, 148:152] = 255 - changed[80:84, 148:152]
    changed_path = tmp_path / "changed.png"
    Image.fromarray(changed).save(changed_path)

    result = run("verify", camera_file, changed_path)
    assert result.exit_code == 1
    # expected location and size, from scipy's dctn of the change
    delta = reference_blockwise_dct(changed.astype(float) - original, 4)[:, 20, 37].reshape(4, 4)
    x, y = np.unravel_index(np.argmax(np.abs(delta)), delta.shape)
    where = f"block row 20, block column 37, frequency ({x}, {y})"
    lines = result.stdout.splitlines()
    assert f"largest:   {np.abs(delta).max():.3g} at {where}" in lines
    assert lines[-1].startswith(f"FAILED: {camera_file} does not hold the transform of {changed_path}: "
                                f"the coefficient at {where} differs by")

    data = json.loads(run("verify", camera_file, changed_path, "--json").stdout)
    assert data["passed"] is False
    assert set(data["checks"][0]) == CHECK_KEYS
    assert data["location"] == {"block_row": 20, "block_column": 37, "frequency": [int(x), int(y)]}
    assert abs(data["checks"][0]["max_error"] - np.abs(delta).max()) <= tolerance(np.float64, 4 * 255)


def test_compressed_file(tmp_path):
    """A compressed file as issue 3 specifies it (6 kept channels, levels rint(c / step))."""
    from _helpers import write_legacy_compressed

    image = np.asarray(Image.open(SAMPLES / "coins.png"))
    c = reference_blockwise_dct(image, 4)
    mask = np.zeros(16, bool)
    mask[[0, 1, 4, 8, 5, 2]] = True  # the first 6 in zigzag order
    path = tmp_path / "coins_compressed.npz"
    write_legacy_compressed(path, np.rint(c[mask] / 2.0).astype(np.int16), mask, block_size=4,
                            image_shape=image.shape, image_mode="L", step=2.0)
    result = run("verify", path, SAMPLES / "coins.png")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"file:      {path} (compressed, block size 4)"
    assert lines[2] == f"compared:  {6 * 76 * 96:,} coefficients compared"
    assert lines[-1].startswith(f"OK: {path} holds the compression of {SAMPLES / 'coins.png'} "
                                "(kept channels, quantization step 2)")


def test_file_against_an_image_of_another_shape(camera_file):
    coins = SAMPLES / "coins.png"
    result = run("verify", camera_file, coins)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {camera_file}: {coins} is 384 x 303 pixels but the file holds the transform "
        "of a 512 x 512 image"
    ]


def test_corrupted_coefficient_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    result = run("verify", bad, SAMPLES / "camera.png")
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line == f"Error: {bad}: damaged .npz archive: File is not a zip file"


@pytest.mark.parametrize("args, message", [
    (["x.npz"], "to check a coefficient file give it and its image: dctconv verify FILE IMAGE"),
    (["x.dctz"], "to check a coefficient file give it and its image: dctconv verify FILE IMAGE"),
    (["camera.png", "x.dctz"], "the coefficient file goes first, then its image: dctconv verify FILE IMAGE"),
    (["x.dctz", "camera.png", "-n", "4"], "the coefficient file records the block size; drop --block-size"),
    (["x.npz", "camera.png", "-n", "4"], "the coefficient file records the block size; drop --block-size"),
])
def test_file_mode_usage_errors(tmp_path, args, message):
    (tmp_path / "x.npz").write_bytes(b"")
    (tmp_path / "x.dctz").write_bytes(b"")
    (tmp_path / "camera.png").write_bytes((SAMPLES / "camera.png").read_bytes())
    result = run("verify", *[tmp_path / a if "." in a else a for a in args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_help_has_an_example_and_imports_no_numpy():
    result = run("verify", "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.stdout and "dctconv verify out/photo_coefficients.npz photo.png" in result.stdout
    code = ("import sys; from click.testing import CliRunner; from dctconv.cli import cli; "
            "r = CliRunner().invoke(cli, ['verify', '--help']); assert r.exit_code == 0; "
            "print(sorted(m for m in ('numpy', 'scipy', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------- verify FILE.dctz IMAGE


@pytest.fixture
def compressed_camera(tmp_path):
    """compress's file of a 96 x 120 crop of camera.png at n = 8, quality 50."""
    source = tmp_path / "cam.png"
    Image.fromarray(np.asarray(Image.open(SAMPLES / "camera.png"))[200:296, 180:300]).save(source)
    result = run("compress", source, "-o", tmp_path / "out", "-n", 8, "--quality", 50, "--jobs", 1)
    assert result.exit_code == 0, result.output
    return source, tmp_path / "out" / "cam_compressed.dctz"


def test_compressed_file_holds_the_levels_of_its_image(compressed_camera):
    source, path = compressed_camera
    result = run("verify", path, source)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"file:      {path} (compressed, block size 8)"
    assert lines[2].startswith(f"compared:  ") and lines[3] == "largest:   0 (every coefficient identical)"
    assert lines[-1] == (f"OK: {path} holds the compression of {source} (8x8 blocks, quality 50): "
                         "every level is the one the image gives")
    # Every coefficient is either compared or a rounding tie; 96 x 120 at n = 8 is 180 blocks.
    data = json.loads(run("verify", path, source, "--json").stdout)
    assert data["passed"] is True and data["compared"] + data["skipped"] == 64 * 12 * 15


def test_compressed_file_fails_when_one_8x8_block_changed(compressed_camera, tmp_path):
    source, path = compressed_camera
    original = np.asarray(Image.open(source))
    changed = original.copy()
    changed[40:48, 64:72] = 255 - changed[40:48, 64:72]  # block row 5, block column 8
    changed_path = tmp_path / "changed.png"
    Image.fromarray(changed).save(changed_path)
    result = run("verify", path, changed_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1].startswith(f"FAILED: {path} does not hold the compression of {changed_path} "
                                "(8x8 blocks, quality 50): ")
    data = json.loads(run("verify", path, changed_path, "--json").stdout)
    assert data["passed"] is False
    assert (data["location"]["block_row"], data["location"]["block_column"]) == (5, 8)
    assert data["checks"][0]["tolerance"] == 0


def test_compressed_file_against_another_bit_depth_or_size(compressed_camera, tmp_path):
    source, path = compressed_camera
    deep = tmp_path / "deep.png"
    Image.fromarray(np.asarray(Image.open(source)).astype(np.uint16) * 257).save(deep)
    result = run("verify", path, deep)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {path}: {deep} has uint16 pixels but the file holds the compression of an image of "
        "uint8 pixels (mode L)"
    ]
    result = run("verify", path, SAMPLES / "coins.png")
    assert result.stderr.splitlines() == [
        f"Error: {path}: {SAMPLES / 'coins.png'} is 384 x 303 pixels but the file holds the compression "
        "of a 120 x 96 image"
    ]
