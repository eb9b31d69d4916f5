"""The ``dctconv compress`` command, driven through click's CliRunner."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from references import SAMPLES
from dctconv.cli import cli

REQUIRED_KEYS = {
    "psnr_db", "ssim", "mse", "max_abs_error", "kept_per_block", "kept_fraction", "compressed_bytes",
    "bits_per_pixel", "block_size", "step", "threshold", "source", "error_scale",
}
OUTPUTS = ["compressed.npz", "reconstruction.png", "error.png", "maps.png", "summary.png", "metrics.json"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture
def small_camera(tmp_path):
    """A 90 x 70 crop of camera.png: sides that are not multiples of 4, fast to plot."""
    path = tmp_path / "in" / "cam.png"
    path.parent.mkdir()
    Image.fromarray(pixels(SAMPLES / "camera.png")[100:190, 200:270]).save(path)
    return path


def test_compress_writes_every_output_and_true_numbers(tmp_path):
    source = SAMPLES / "coins.png"
    out = tmp_path / "out"
    result = run("compress", source, "-o", out, "--keep", 4, "--step", 2)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(f"coins_{name}" for name in OUTPUTS)

    metrics = json.loads((out / "coins_metrics.json").read_text())
    assert REQUIRED_KEYS <= metrics.keys()
    original = pixels(source)
    written = pixels(out / "coins_reconstruction.png")
    assert written.dtype == np.uint8 and written.shape == original.shape
    # Numbers recomputed here from the files as written.
    assert metrics["compressed_bytes"] == (out / "coins_compressed.npz").stat().st_size
    assert metrics["bits_per_pixel"] == 8 * metrics["compressed_bytes"] / original.size
    assert metrics["psnr_db"] == pytest.approx(peak_signal_noise_ratio(original, written, data_range=255), rel=1e-12)
    assert metrics["ssim"] == pytest.approx(structural_similarity(original, written, data_range=255), rel=1e-12)
    difference = original.astype(float) - written
    assert metrics["mse"] == pytest.approx(np.mean(difference**2), rel=1e-12)
    assert metrics["max_abs_error"] == np.abs(difference).max()
    assert (metrics["kept_per_block"], metrics["kept_fraction"], metrics["block_size"]) == (4, 0.25, 4)
    assert (metrics["step"], metrics["threshold"], metrics["source"]) == (2.0, 0.0, str(source))

    # The error picture is |error| * error_scale, clipped to 255, at the top left; its legend strip is below.
    expected = np.minimum(np.rint(np.abs(difference) * metrics["error_scale"]), 255)
    error_png = pixels(out / "coins_error.png")
    assert error_png.shape[0] > original.shape[0] and error_png.shape[1] >= original.shape[1]
    np.testing.assert_array_equal(error_png[: original.shape[0], : original.shape[1]], expected)

    # The table: a header and one row with the numbers of the json.
    header, row = result.stdout.splitlines()
    assert header.split() == ["file", "K", "step", "kept", "PSNR", "dB", "SSIM", "bpp", "bytes"]
    assert row.split() == [str(source), "4/16", "2", "25.0%", f"{metrics['psnr_db']:.2f}",
                           f"{metrics['ssim']:.4f}", f"{metrics['bits_per_pixel']:.3f}",
                           f"{metrics['compressed_bytes']:,}"]


@pytest.mark.parametrize("mode, suffix", [("L", ".png"), ("I;16", ".png"), ("F", ".tif")])
def test_compressed_file_decodes_through_transform_inverse(tmp_path, small_camera, mode, suffix):
    gray = pixels(small_camera)
    source = tmp_path / f"cam{suffix}"
    if mode == "I;16":
        Image.fromarray(gray.astype(np.uint16) * 257).save(source)
    elif mode == "F":
        Image.fromarray(gray.astype(np.float32) / 255).save(source)
    else:
        Image.fromarray(gray).save(source)
    out, decoded = tmp_path / "out", tmp_path / "decoded"
    step = 0.01 if mode == "F" else 3
    assert run("compress", source, "-o", out, "--keep", 4, "--step", step).exit_code == 0
    result = run("transform", "--inverse", out / "cam_compressed.npz", "-o", decoded)
    assert result.exit_code == 0, result.output
    ours = pixels(out / f"cam_reconstruction{suffix}")
    theirs = pixels(decoded / f"cam_reconstruction{suffix}")
    assert ours.dtype == theirs.dtype and ours.dtype == pixels(source).dtype
    np.testing.assert_array_equal(ours, theirs)
    metrics = json.loads((out / "cam_metrics.json").read_text())
    assert metrics["data_range"] == {"L": 255, "I;16": 65535, "F": 1.0}[mode]
    assert metrics["psnr_db"] == pytest.approx(
        peak_signal_noise_ratio(pixels(source), ours, data_range=metrics["data_range"]), rel=1e-9
    )


def test_sweep_writes_csv_with_both_methods_and_a_plot(tmp_path, small_camera):
    out = tmp_path / "out"
    result = run("compress", small_camera, "-o", out, "--sweep", "--step", 2)
    assert result.exit_code == 0, result.output
    with open(out / "cam_sweep.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["method", "keep", "quality", "bytes", "bits_per_pixel", "psnr_db", "ssim"]
        rows = list(reader)
    dct = [r for r in rows if r["method"] == "dct"]
    jpeg = [r for r in rows if r["method"] == "jpeg"]
    assert [int(r["keep"]) for r in dct] == list(range(1, 17)) and all(r["quality"] == "" for r in dct)
    assert [int(r["quality"]) for r in jpeg] == list(range(5, 100, 5)) and all(r["keep"] == "" for r in jpeg)
    assert len(rows) == len(dct) + len(jpeg)

    # The sweep point at the default K is the file that was written.
    metrics = json.loads((out / "cam_metrics.json").read_text())
    at_default = dct[metrics["kept_per_block"] - 1]
    assert int(at_default["bytes"]) == metrics["compressed_bytes"]
    assert float(at_default["psnr_db"]) == pytest.approx(metrics["psnr_db"], rel=1e-12)
    sizes = [int(r["bytes"]) for r in dct]
    assert sizes == sorted(sizes)

    # A JPEG point, redone here with Pillow and scikit-image.
    original = pixels(small_camera)
    buffer = io.BytesIO()
    Image.fromarray(original).save(buffer, format="JPEG", quality=50, optimize=True)
    decoded = pixels(io.BytesIO(buffer.getvalue()))
    row = next(r for r in jpeg if r["quality"] == "50")
    assert int(row["bytes"]) == len(buffer.getvalue())
    assert float(row["bits_per_pixel"]) == pytest.approx(8 * len(buffer.getvalue()) / original.size, rel=1e-12)
    assert float(row["psnr_db"]) == pytest.approx(peak_signal_noise_ratio(original, decoded, data_range=255))
    assert float(row["ssim"]) == pytest.approx(structural_similarity(original, decoded, data_range=255))

    with Image.open(out / "cam_sweep.png") as im:
        assert im.format == "PNG" and im.width > 800


def test_sweep_of_a_sixteen_bit_image_leaves_jpeg_out(tmp_path, small_camera):
    source = tmp_path / "deep.png"
    Image.fromarray(pixels(small_camera).astype(np.uint16) * 257).save(source)
    result = run("compress", source, "-o", tmp_path / "out", "--sweep")
    assert result.exit_code == 0
    assert f"Note: {source}: JPEG left out of the sweep: Pillow's JPEG encoder takes 8-bit gray only" in result.stderr
    with open(tmp_path / "out" / "deep_sweep.csv", newline="") as f:
        assert {r["method"] for r in csv.DictReader(f)} == {"dct"}


def test_json_prints_only_the_metrics_list(tmp_path, small_camera):
    second = small_camera.with_name("other.png")
    Image.fromarray(pixels(small_camera)[:40, :40]).save(second)
    result = run("compress", small_camera, second, "-o", tmp_path / "out", "--json", "--block-size", 8,
                 "--threshold", 4)
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [m["source"] for m in listed] == [str(small_camera), str(second)]
    for m in listed:
        assert REQUIRED_KEYS <= m.keys()
        # --threshold without --keep keeps every frequency and lets the threshold choose.
        assert m["kept_per_block"] == 64 and m["threshold"] == 4.0 and 0 < m["surviving_fraction"] < 1
        assert {p.rsplit("/", 1)[-1] for p in m["outputs"]} == {f"{m['source'].rsplit('/', 1)[-1][:-4]}_{o}"
                                                                for o in OUTPUTS}
        on_disk = json.loads((tmp_path / "out" / m["files"]["metrics"]).read_text())
        assert on_disk == {k: v for k, v in m.items() if k != "outputs"}
    assert "compress" in result.stderr  # the progress bar, with more than one file


def test_folder_input(tmp_path, small_camera):
    folder = small_camera.parent
    Image.fromarray(pixels(small_camera)[:30, :30]).save(folder / "b.jpg", quality=90)
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(pixels(small_camera)[:8, :8]).save(folder / ".hidden.png")
    (folder / "sub").mkdir()
    result = run("compress", folder, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert [m["source"] for m in json.loads(result.stdout)] == [str(folder / "b.jpg"), str(folder / "cam.png")]


def test_empty_folder_is_an_error(tmp_path, small_camera):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("compress", empty, small_camera, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {empty}: folder holds no image file (no name ending in the suffix of a format dctconv reads, "
        "such as .png, .jpg, .tif)"
    ]
    assert (tmp_path / "out" / "cam_metrics.json").exists()


def test_a_bad_file_fails_alone(tmp_path, small_camera):
    bad = small_camera.with_name("broken.png")
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = small_camera.with_name("zz.png")
    Image.fromarray(pixels(small_camera)).save(good)
    out = tmp_path / "out"
    result = run("compress", small_camera, bad, good, "-o", out)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and errors[0] == f"Error: {bad}: not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), or its header is damaged"
    assert "Traceback" not in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"cam_{o}" for o in OUTPUTS] + [f"zz_{o}" for o in OUTPUTS])
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [str(small_camera), str(good)]


def test_same_stem_twice_is_refused(tmp_path, small_camera):
    twin = tmp_path / "cam.png"
    Image.fromarray(pixels(small_camera)[:20, :20]).save(twin)
    result = run("compress", small_camera, twin, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {twin}: its outputs would overwrite those of {small_camera} (same name 'cam'); "
        "rename one of the inputs or give each its own -o DIR"
    )


def test_failure_while_writing_leaves_nothing(tmp_path, small_camera, monkeypatch):
    import dctconv.plots

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dctconv.plots, "save_sweep", broken)
    out = tmp_path / "out"
    result = run("compress", small_camera, "-o", out, "--sweep")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {small_camera}: internal error (RuntimeError: disk on fire); rerun with --debug for the traceback"
    )
    assert list(out.iterdir()) == []  # not even temporary files


@pytest.mark.parametrize("args, message", [
    (["--keep", "17"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 17)."),
    (["--keep", "0"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 0)."),
    (["--keep", "65", "--block-size", "8"],
     "Error: Invalid value for '--keep': must be from 1 to 64 for --block-size 8 (got 65)."),
    (["--step", "-1"], "Error: Invalid value for '--step': -1.0 is not in the range x>=0."),
    (["--step", "nan"], "Error: Invalid value for '--step': nan is not a finite number."),
    (["--threshold", "-0.5"], "Error: Invalid value for '--threshold': -0.5 is not in the range x>=0."),
    (["--block-size", "1"], "Error: Invalid value for '--block-size' / '-n': 1 is not in the range 2<=x<=64."),
])
def test_bad_options_are_refused_by_click(tmp_path, small_camera, args, message):
    result = run("compress", small_camera, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == message
    assert not (tmp_path / "out").exists()


def test_step_minus_zero_is_step_zero(tmp_path, small_camera):
    result = run("compress", small_camera, "-o", tmp_path / "out", "--step", "-0.0", "--json")
    assert result.exit_code == 0
    [metrics] = json.loads(result.stdout)
    assert metrics["step"] == 0.0 and math.copysign(1.0, metrics["step"]) == 1.0
    assert metrics["stored_dtype"] == "float64"  # unquantized, as --step 0


def test_keep_accepts_the_whole_range(tmp_path, small_camera):
    result = run("compress", small_camera, "-o", tmp_path / "out", "--keep", 64, "--block-size", 8, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["kept_fraction"] == 1.0


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dctconv.cli import cli\n"
        "result = CliRunner().invoke(cli, ['compress', '--help'])\n"
        "assert result.exit_code == 0 and 'Example' in result.output\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'PIL', 'matplotlib', 'skimage') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
