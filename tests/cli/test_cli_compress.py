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
from PIL import Image, features
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from hostile import check_compress_output, check_compressed, zigzag_mask
from references import SAMPLES, rate_envelope, reference_bd_rate
from science_images import terrain
from dctconv.cli import cli
from _helpers import output_names

try:  # the test extra installs it (dctconv[science]): the sweep's other codecs of science images
    import imagecodecs
except ImportError:
    imagecodecs = None

REQUIRED_KEYS = {
    "psnr_db", "ssim", "mse", "max_abs_error", "quality", "step", "kept_per_block", "kept_fraction",
    "nonzero_fraction", "compressed_bytes", "bits_per_pixel", "block_size", "threshold", "source",
    "error_scale",
}
OUTPUTS = ["compressed.dctz", "reconstruction.png", "error.png", "maps.png", "summary.png", "metrics.json"]


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


def pillow_table(quality: int) -> np.ndarray:
    """The luminance steps Pillow's libjpeg writes into a gray JPEG of ``quality``, channel x*8 + y."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, "JPEG", quality=quality)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return np.array(im.quantization[0], dtype=float)


def test_default_compress_writes_every_output_and_true_numbers(tmp_path):
    source = tmp_path / "coins.png"
    Image.fromarray(pixels(SAMPLES / "coins.png")[60:160, 100:230]).save(source)
    out = tmp_path / "out"
    result = run("compress", source, "-o", out)
    assert result.exit_code == 0, result.output
    assert output_names(out) == sorted(f"coins_{name}" for name in OUTPUTS)

    metrics = json.loads((out / "coins_metrics.json").read_text())
    assert REQUIRED_KEYS <= metrics.keys()
    original = pixels(source)
    written = pixels(out / "coins_reconstruction.png")
    assert written.dtype == np.uint8 and written.shape == original.shape
    # Numbers recomputed here from the files as written.
    assert metrics["compressed_bytes"] == (out / "coins_compressed.dctz").stat().st_size
    assert (out / "coins_compressed.dctz").read_bytes()[:4] == b"DCTZ"
    assert metrics["bits_per_pixel"] == 8 * metrics["compressed_bytes"] / original.size
    assert metrics["psnr_db"] == pytest.approx(peak_signal_noise_ratio(original, written, data_range=255), rel=1e-12)
    assert metrics["ssim"] == pytest.approx(structural_similarity(original, written, data_range=255), rel=1e-12)
    difference = original.astype(float) - written
    assert metrics["mse"] == pytest.approx(np.mean(difference**2), rel=1e-12)
    assert metrics["max_abs_error"] == np.abs(difference).max()
    # The defaults: quality 75, every frequency a candidate, no threshold.
    assert (metrics["quality"], metrics["step"], metrics["kept_per_block"], metrics["kept_fraction"]) == (
        75, None, 16, 1.0)
    assert (metrics["block_size"], metrics["threshold"], metrics["source"]) == (4, 0.0, str(source))
    assert 0 < metrics["nonzero_fraction"] < 1

    # The error picture is |error| * error_scale, clipped to 255, at the top left; its legend strip is below.
    expected = np.minimum(np.rint(np.abs(difference) * metrics["error_scale"]), 255)
    error_png = pixels(out / "coins_error.png")
    assert error_png.shape[0] > original.shape[0] and error_png.shape[1] >= original.shape[1]
    np.testing.assert_array_equal(error_png[: original.shape[0], : original.shape[1]], expected)
    # The levels in the file and the pixels, recomputed with scipy and the documented steps.
    check_compress_output(source, out)

    # The table: a header and one row with the numbers of the json.
    header, row = result.stdout.splitlines()
    assert header.split() == ["file", "n", "steps", "K", "nonzero", "PSNR", "dB", "SSIM", "bpp", "bytes"]
    assert row.split() == [str(source), "4", "q75", "16/16", f"{100 * metrics['nonzero_fraction']:.1f}%",
                           f"{metrics['psnr_db']:.2f}", f"{metrics['ssim']:.4f}",
                           f"{metrics['bits_per_pixel']:.3f}", f"{metrics['compressed_bytes']:,}"]


@pytest.mark.parametrize("quality", [25, 90])
def test_n8_quality_quantizes_with_jpegs_steps(tmp_path, small_camera, quality):
    # Recomputed here: scipy's dctn per block, Pillow's JPEG table, rint, scipy's idctn.
    out = tmp_path / "out"
    result = run("compress", small_camera, "-o", out, "-n", 8, "--quality", quality)
    assert result.exit_code == 0, result.output
    image = pixels(small_camera)
    check_compressed(out / "cam_compressed.dctz", pixels(out / "cam_reconstruction.png"), image, "L",
                     steps=pillow_table(quality))


def test_keep_6_step_1_keeps_the_six_lowest_zigzag_frequencies(tmp_path, small_camera):
    out = tmp_path / "out"
    assert run("compress", small_camera, "-o", out, "--keep", 6, "--step", 1).exit_code == 0
    check_compressed(out / "cam_compressed.dctz", pixels(out / "cam_reconstruction.png"), pixels(small_camera),
                     "L", steps=1.0, kept=zigzag_mask(4, 6))
    metrics = json.loads((out / "cam_metrics.json").read_text())
    assert (metrics["quality"], metrics["step"], metrics["kept_per_block"]) == (None, 1.0, 6)


def test_threshold_zeroes_small_coefficients_before_quantization(tmp_path, small_camera):
    out = tmp_path / "out"
    assert run("compress", small_camera, "-o", out, "--step", 2, "--threshold", 9).exit_code == 0
    check_compressed(out / "cam_compressed.dctz", pixels(out / "cam_reconstruction.png"), pixels(small_camera),
                     "L", steps=2.0, threshold=9.0)


@pytest.mark.parametrize("mode, suffix, options", [
    ("L", ".png", []), ("I;16", ".png", ["--quality", 40]), ("F", ".tif", []), ("L", ".png", ["--step", 0]),
    ("I;16", ".png", ["--keep", 4, "--step", 300]),
])
def test_compressed_file_decodes_through_transform_inverse(tmp_path, small_camera, mode, suffix, options):
    gray = pixels(small_camera)
    source = tmp_path / f"cam{suffix}"
    if mode == "I;16":
        Image.fromarray(gray.astype(np.uint16) * 257).save(source)
    elif mode == "F":
        Image.fromarray(gray.astype(np.float32) / 255).save(source)
    else:
        Image.fromarray(gray).save(source)
    out, decoded = tmp_path / "out", tmp_path / "decoded"
    assert run("compress", source, "-o", out, *options).exit_code == 0
    result = run("transform", "--inverse", out / "cam_compressed.dctz", "-o", decoded)
    assert result.exit_code == 0, result.output
    ours = pixels(out / f"cam_reconstruction{suffix}")
    theirs = pixels(decoded / f"cam_reconstruction{suffix}")
    assert ours.dtype == theirs.dtype and ours.dtype == pixels(source).dtype
    np.testing.assert_array_equal(ours, theirs)
    metrics = json.loads((out / "cam_metrics.json").read_text())
    original = pixels(source)
    low, high = (0, 255) if mode == "L" else (float(original.min()), float(original.max()))
    assert metrics["data_range"] == [low, high]  # 8-bit: 0..255, the others: their own values
    if np.array_equal(ours, original):  # --step 0: unquantized
        assert metrics["psnr_db"] is None and options == ["--step", 0]
    else:
        assert metrics["psnr_db"] == pytest.approx(
            peak_signal_noise_ratio(original, ours, data_range=high - low), rel=1e-9
        )
        if not options:  # the default quality follows the data range: a float image in [0, 1] too
            assert metrics["psnr_db"] > 30


def test_sweep_writes_its_curves_and_bd_rates(tmp_path, small_camera):
    out = tmp_path / "out"
    result = run("compress", small_camera, "-o", out, "--sweep")
    assert result.exit_code == 0, result.output
    sweep = json.loads((out / "cam_sweep.json").read_text())
    points = sweep["points"]
    methods = ["dctconv", "zonal", "jpeg", "webp"] + (["avif"] if features.check("avif") else [])
    methods += ["jpegxl"] if imagecodecs is not None and imagecodecs.JPEGXL.available else []
    assert list(sweep["curves"]) == methods
    assert list(sweep["bd_rates"]) == methods[1:]
    assert sweep["notes"] == [] and "JPEG file" not in result.stderr  # a PNG source: nothing to warn of
    assert [p["quality"] for p in points if p["method"] == "dctconv"] == list(range(5, 100, 5))
    assert [p["keep"] for p in points if p["method"] == "zonal"] == list(range(1, 17))
    with open(out / "cam_sweep.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["method"] for r in rows] == [p["method"] for p in points]
    assert [float(r["bits_per_pixel"]) for r in rows] == [p["bits_per_pixel"] for p in points]

    # Points redone here with Pillow and scikit-image.
    original = pixels(small_camera)
    for method, options in (("jpeg", {"optimize": True}), ("webp", {"method": 6})):
        buffer = io.BytesIO()
        Image.fromarray(original).save(buffer, format=method.upper(), quality=50, **options)
        with Image.open(io.BytesIO(buffer.getvalue())) as im:
            decoded = np.asarray(im.convert("L"))
        point = next(p for p in points if p["method"] == method and p["quality"] == 50)
        assert point["bytes"] == len(buffer.getvalue())
        assert point["bits_per_pixel"] == pytest.approx(8 * len(buffer.getvalue()) / original.size, rel=1e-12)
        assert point["psnr_db"] == pytest.approx(peak_signal_noise_ratio(original, decoded, data_range=255))
        assert point["ssim"] == pytest.approx(structural_similarity(original, decoded, data_range=255))
    # The dctconv point at the command's quality (75) is the file that was written.
    metrics = json.loads((out / "cam_metrics.json").read_text())
    mine = next(p for p in points if p["method"] == "dctconv" and p["quality"] == 75)
    assert mine["bytes"] == metrics["compressed_bytes"] and mine["psnr_db"] == metrics["psnr_db"]

    # BD-rates, recomputed with an interpolation and integral written in the tests.
    ours = [p for p in points if p["method"] == "dctconv"]
    for anchor in methods[1:]:
        theirs = [p for p in points if p["method"] == anchor]
        for measure, key in (("psnr_db", "psnr_percent"), ("ssim", "ssim_percent")):
            expected = reference_bd_rate(rate_envelope(theirs, measure), rate_envelope(ours, measure))
            assert sweep["bd_rates"][anchor][key] == pytest.approx(expected, abs=1e-6), (anchor, measure)
        # The metrics keep the sweep's BD-rates and what says why one is missing (points, overlap).
        assert metrics["bd_rates"][anchor] == {k: v for k, v in sweep["bd_rates"][anchor].items() if k != "anchor"}
        assert {"psnr_percent", "ssim_percent", "psnr_points", "psnr_overlap"} <= metrics["bd_rates"][anchor].keys()
    # ... and printed after the table.
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("BD-rates of dctconv"))
    names = {"zonal": "zonal K", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "jpegxl": "JPEG XL"}
    assert lines[start + 1].split() == ["file", "against", "at", "equal", "PSNR", "at", "equal", "SSIM"]
    for line, anchor in zip(lines[start + 2 :], methods[1:], strict=True):
        rates = sweep["bd_rates"][anchor]
        assert line.split() == [str(small_camera), *names[anchor].split(), f"{rates['psnr_percent']:+.1f}", "%",
                                f"{rates['ssim_percent']:+.1f}", "%"]
    with Image.open(out / "cam_sweep.png") as im:
        assert im.format == "PNG" and im.width > 800


def test_sweep_of_a_sixteen_bit_image_compares_the_codecs_of_science(tmp_path):
    source = tmp_path / "dem16.png"
    dem = terrain((40, 40), low=0, high=840, dtype=np.uint16)
    Image.fromarray(dem).save(source)
    result = run("compress", source, "-o", tmp_path / "out", "--sweep")
    assert result.exit_code == 0, result.output
    assert (f"Note: {source}: JPEG, WebP and AVIF left out of the sweep: Pillow's encoders take 8-bit images only"
            in result.stderr.splitlines())
    sweep = json.loads((tmp_path / "out" / "dem16_sweep.json").read_text())
    anchors = [m for m in ("sz3", "zfp", "jpegls", "jpeg2k", "jpegxl", "png")
               if imagecodecs is not None and getattr(imagecodecs, {"jpegls": "JPEGLS", "jpeg2k": "JPEG2K"}.get(
                   m, m.upper())).available]
    assert list(sweep["curves"]) == ["dctconv", "zonal", "dctconv_bound", *anchors]
    assert list(sweep["bd_rates"]) == ["zonal", *anchors]
    # The largest error of every point, measured here on the files the anchors write.
    if "jpegls" in anchors:
        for point in (p for p in sweep["points"] if p["method"] == "jpegls"):
            data = imagecodecs.jpegls_encode(dem, level=int(point["setting"]))
            decoded = imagecodecs.jpegls_decode(data).astype(np.int64)
            assert point["bytes"] == len(data)
            assert point["max_abs_error"] == np.abs(decoded - dem).max() <= point["setting"]
    # The printed BD-rates get a third column: at equal largest error, of the --max-error curve.
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("BD-rates of dctconv"))
    assert "at equal max error" in lines[start + 1]
    for line, anchor in zip(lines[start + 3:], anchors):  # after the zonal row
        rate = sweep["bd_rates"][anchor]["max_error_percent"]
        assert line.endswith("n/a" if rate is None else f"{rate:+.1f} %"), (line, anchor)
    with Image.open(tmp_path / "out" / "dem16_sweep.png") as im:
        assert im.format == "PNG" and im.width > 800


def test_sweep_of_a_float_image_says_which_codecs_cannot_take_it(tmp_path):
    source = tmp_path / "field.tif"
    Image.fromarray(terrain((32, 32), low=236.0, high=1076.0, dtype=np.float32)).save(source)
    result = run("compress", source, "-o", tmp_path / "out", "--sweep", "--no-pictures", "--json")
    assert result.exit_code == 0, result.output
    notes = result.stderr.splitlines()
    if imagecodecs is not None:
        assert f"Note: {source}: JPEG-LS and PNG left out of the sweep: it takes 8- and 16-bit integers only" in notes
        assert f"Note: {source}: JPEG 2000 left out of the sweep: it takes integers only" in notes
    sweep = json.loads((tmp_path / "out" / "field_sweep.json").read_text())
    assert not {"jpegls", "jpeg2k", "png"} & set(sweep["curves"])


def test_sweep_of_a_jpeg_source_says_that_the_source_was_a_jpeg(tmp_path, small_camera):
    # Its JPEG curve re-encodes JPEG's own output: the reader needs to know.
    source = tmp_path / "photo.jpg"
    Image.fromarray(pixels(small_camera)[:40, :40]).save(source, quality=60)
    result = run("compress", source, "-o", tmp_path / "out", "--sweep", "--no-pictures")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "itself a JPEG file" in line]
    assert len(notes) == 1 and notes[0].startswith(f"Note: {source}: sweep: the source is itself a JPEG file")
    sweep = json.loads((tmp_path / "out" / "photo_sweep.json").read_text())
    assert len(sweep["notes"]) == 1 and notes[0].endswith(sweep["notes"][0])


def test_json_prints_the_files_as_transform_does_with_their_numbers(tmp_path, small_camera):
    second = small_camera.with_name("other.png")
    Image.fromarray(pixels(small_camera)[:40, :40]).save(second)
    result = run("compress", small_camera, second, "-o", tmp_path / "out", "--json", "--block-size", 8,
                 "--threshold", 4)
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert list(report) == ["files"]
    listed = report["files"]
    assert [m["input"] for m in listed] == [str(small_camera), str(second)]
    for m in listed:
        assert list(m)[:2] == ["input", "outputs"]
        assert "source" not in m and "files" not in m  # input and outputs say it once
        assert m["kept_per_block"] == 64 and m["threshold"] == 4.0 and 0 < m["nonzero_fraction"] < 1
        assert m["bd_rates"] is None
        stem = m["input"].rsplit("/", 1)[-1][:-4]
        assert {p.rsplit("/", 1)[-1] for p in m["outputs"]} == {f"{stem}_{o}" for o in OUTPUTS}
        on_disk = json.loads((tmp_path / "out" / f"{stem}_metrics.json").read_text())
        assert REQUIRED_KEYS <= on_disk.keys()
        assert on_disk == dict({k: v for k, v in m.items() if k not in ("input", "outputs")},
                               source=m["input"], files=on_disk["files"])
    assert "compress" in result.stderr  # the progress bar, with more than one file


def test_folder_input(tmp_path, small_camera):
    folder = small_camera.parent
    Image.fromarray(pixels(small_camera)[:30, :30]).save(folder / "b.jpg", quality=90)
    (folder / "notes.txt").write_text("not an image")
    Image.fromarray(pixels(small_camera)[:8, :8]).save(folder / ".hidden.png")
    (folder / "sub").mkdir()
    result = run("compress", folder, "-o", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert [m["input"] for m in json.loads(result.stdout)["files"]] == [str(folder / "b.jpg"),
                                                                         str(folder / "cam.png")]


def test_empty_folder_is_an_error(tmp_path, small_camera):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("compress", empty, small_camera, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"Error: {empty}: folder holds no image file in a format dctconv reads "
        "(PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP)"
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
    assert output_names(out) == sorted([f"cam_{o}" for o in OUTPUTS] + [f"zz_{o}" for o in OUTPUTS])
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
    import dctconv.measure._figures

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(dctconv.measure._figures, "save_sweep", broken)
    out = tmp_path / "out"
    result = run("compress", small_camera, "-o", out, "--sweep")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == (
        f"Error: {small_camera}: internal error (RuntimeError: disk on fire); rerun with --debug for the traceback"
    )
    assert list(out.iterdir()) == []  # not even temporary files


QUALITY_WITH_STEP = ("Error: Invalid value for '--step': cannot be combined with --quality (--quality gives each "
                     "frequency its own step, --step one step for all); give one of them.")


@pytest.mark.parametrize("args, message", [
    (["--keep", "17"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 17)."),
    (["--keep", "0"], "Error: Invalid value for '--keep': must be from 1 to 16 for --block-size 4 (got 0)."),
    (["--keep", "65", "--block-size", "8"],
     "Error: Invalid value for '--keep': must be from 1 to 64 for --block-size 8 (got 65)."),
    (["--quality", "0"], "Error: Invalid value for '--quality' / '-q': 0 is not in the range 1<=x<=100."),
    (["--quality", "101"], "Error: Invalid value for '--quality' / '-q': 101 is not in the range 1<=x<=100."),
    (["--quality", "7.5"], "Error: Invalid value for '--quality' / '-q': '7.5' is not a valid integer."),
    (["--quality", "50", "--step", "2"], QUALITY_WITH_STEP),
    (["--step", "2", "--quality", "50"], QUALITY_WITH_STEP),
    (["--step", "0", "-q", "50"], QUALITY_WITH_STEP),
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
    [metrics] = json.loads(result.stdout)["files"]
    assert metrics["step"] == 0.0 and math.copysign(1.0, metrics["step"]) == 1.0
    assert metrics["quality"] is None
    # Unquantized, as --step 0: the decoded image is the original up to rounding.
    assert metrics["max_abs_error"] == 0


def test_keep_accepts_the_whole_range(tmp_path, small_camera):
    result = run("compress", small_camera, "-o", tmp_path / "out", "--keep", 64, "--block-size", 8, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["files"][0]["kept_fraction"] == 1.0


def test_help_imports_nothing_heavy():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from dctconv.cli import cli\n"
        "result = CliRunner().invoke(cli, ['compress', '--help'])\n"
        "assert result.exit_code == 0 and 'Example' in result.output\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'PIL', 'matplotlib', 'skimage', 'numba', 'llvmlite') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
