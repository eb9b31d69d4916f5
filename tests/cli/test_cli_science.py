"""compress and verify on scientific images: data range, bound, NaN, and what the terminal says."""

from __future__ import annotations

import json
import math

import numpy as np
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dctconv.cli import cli
from science_images import mr_slice, terrain, with_holes


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def save(path, image):
    Image.fromarray(image).save(path)
    return path


def test_mr_slice_states_its_range_and_keeps_its_levels(tmp_path):
    source = save(tmp_path / "mr.png", mr_slice((48, 48)))
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--no-pictures")
    assert result.exit_code == 0, result.output
    assert "Note:" not in result.stderr
    header, row = result.stdout.splitlines()[:2]
    assert "data range" in header and "max error" in header and "RMSE" in header
    assert "0..215" in row
    metrics = json.loads((out / "mr_metrics.json").read_text())
    original, ours = pixels(source).astype(np.float64), pixels(out / "mr_reconstruction.png").astype(np.float64)
    assert metrics["data_range"] == [0, 215]
    assert metrics["psnr_db"] == peak_signal_noise_ratio(original, ours, data_range=215)
    assert math.isclose(metrics["ssim"], structural_similarity(original, ours, data_range=215), rel_tol=1e-9)
    assert metrics["max_abs_error"] == np.abs(original - ours).max() <= 2
    assert math.isclose(metrics["rmse"], np.sqrt(np.mean((original - ours) ** 2)), rel_tol=1e-12)


def test_a_reconstruction_that_lost_the_image_gets_notes(tmp_path):
    # The case: one value left, yet a PSNR that looks good over the container.
    source = save(tmp_path / "mr.png", mr_slice((48, 48)))
    result = run("compress", source, "-o", tmp_path / "out", "--no-pictures", "--step", 40000)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("Note:")]
    assert any("keeps 1 distinct value of the original's" in note for note in notes), notes
    assert any("is 100 % of the data range 0 .. 215" in note for note in notes), notes


def test_max_error_zero_is_lossless_and_verify_checks_the_bound(tmp_path):
    image = terrain((40, 36))
    source = save(tmp_path / "dem.png", image)
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--no-pictures", "--max-error", 0, "--quality", 90)
    assert result.exit_code == 0, result.output
    assert np.array_equal(pixels(out / "dem_reconstruction.png"), image)
    verified = run("verify", out / "dem_compressed.dctz", source)
    assert verified.exit_code == 0, verified.output
    assert "every decoded pixel is within 0 of the image's" in verified.output
    # Another image breaks the promise: verify says so.
    changed = image.copy()
    changed[3, 4] += 5
    other = save(tmp_path / "other.png", changed)
    refused = run("verify", out / "dem_compressed.dctz", other)
    assert refused.exit_code == 1
    assert "1 of 1,440 decoded pixels are more than 0 from the image's, the largest by 5" in refused.output


def test_float_field_with_nan_holes(tmp_path):
    field = with_holes(terrain((40, 48), low=236, high=1076, dtype=np.float32), count=2, radius=5)
    source = save(tmp_path / "field.tif", field)
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--max-error", 0.5, "--quality", 90)
    assert result.exit_code == 0, result.output
    ours = pixels(out / "field_reconstruction.tif")
    nan = np.isnan(field)
    assert np.array_equal(np.isnan(ours), nan)
    assert np.abs(ours[~nan].astype(np.float64) - field[~nan]).max() <= 0.5
    metrics = json.loads((out / "field_metrics.json").read_text())
    assert metrics["nan_pixels"] == int(nan.sum()) and metrics["max_error_bound"] == 0.5
    assert metrics["psnr_db"] == peak_signal_noise_ratio(field[~nan].astype(np.float64),
                                                         ours[~nan].astype(np.float64), data_range=840.0)
    assert run("verify", out / "field_compressed.dctz", source).exit_code == 0


def test_bad_scientific_input(tmp_path):
    dem = save(tmp_path / "dem.png", terrain((16, 16)))
    out = tmp_path / "out"
    result = run("compress", dem, "-o", out, "--data-range", "0:100")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {dem}: data range 0:100 does not contain the image's values (0 .. 840); "
        "give a range that contains them")
    for options, message in [
        (["--data-range", "5:3"], "Error: Invalid value for '--data-range': '5:3' is not two finite numbers "
                                  "with LOW < HIGH."),
        (["--data-range", "abc"], "Error: Invalid value for '--data-range': 'abc' is not LOW:HIGH (two numbers, "
                                  "such as 0:4095)."),
        (["--max-error", "-1"], "Error: Invalid value for '--max-error': -1.0 is not in the range x>=0."),
    ]:
        result = run("compress", dem, "-o", out, *options)
        assert result.exit_code == 2 and result.stderr.splitlines()[-1] == message
    field = terrain((16, 16), low=0, high=1, dtype=np.float32)
    field[2, 2:5] = np.inf
    tif = save(tmp_path / "inf.tif", field)
    result = run("compress", tif, "-o", out)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {tif}: float image contains 3 infinite values; replace them with NaN (no data) or with "
        "finite values")


def _reference_levels(data: bytes) -> np.ndarray:
    """The levels of a quantization-1 file, read by the reference decoder written from docs/formats.md."""
    import struct

    import reference_decoder as ref

    (_, _, n, _, quantization, quality, _, keep, height, width, step, _, low, high, _, _, count) = \
        ref.HEADER.unpack_from(data)
    table = [struct.unpack_from("<4sII", data, 64 + 12 * k) for k in range(count)]
    start, sections = 64 + 12 * count + 4, {}
    for tag, length, _ in table:
        sections[tag.decode()] = data[start : start + length]
        start += length
    assert quantization == 1
    steps = ref.steps_of(n, quantization, quality, step, low, high)
    return ref.decode_levels(sections["ADPT"], n, keep, -(-height // n), -(-width // n), steps)


def test_a_file_without_dct_levels_says_so(tmp_path):
    # Noise on a ramp, lossless: coding every pixel by the predicted residual, with every DCT
    # level 0, is the smallest file; the table must not show that file's zeroing step as a
    # quantization someone chose.
    rng = np.random.default_rng(3)
    image = (np.add.outer(np.arange(48), np.arange(48)) * 200 + rng.integers(0, 50, (48, 48))).astype(np.uint16)
    source = save(tmp_path / "noisy.png", image)
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--no-pictures", "--max-error", 0)
    assert result.exit_code == 0, result.output
    assert not _reference_levels((out / "noisy_compressed.dctz").read_bytes()).any()
    row = result.stdout.splitlines()[1].split()
    assert row[2:4] == ["no", "DCT"], row
    assert any(line.startswith("Note:") and "no DCT (" in line and "every level is 0" in line for line in result.stdout.splitlines())
    assert np.array_equal(pixels(out / "noisy_reconstruction.png"), image)
    # A file with levels keeps its steps in the table and has no such note.
    kept = run("compress", source, "-o", tmp_path / "q", "--no-pictures", "--max-error", 0, "--quality", 95)
    assert kept.exit_code == 0, kept.output
    assert kept.stdout.splitlines()[1].split()[2] == "q95"
    assert "no DCT" not in kept.output
