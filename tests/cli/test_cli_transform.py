import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from references import SAMPLES, reference_blockwise_dct, tolerance
from dctconv.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_forward_then_inverse_gives_back_identical_pixels(tmp_path, sample_path):
    result = invoke("transform", sample_path, "-o", tmp_path)
    assert result.exit_code == 0, result.output
    stem = sample_path.stem
    npz = tmp_path / f"{stem}_coefficients.npz"
    assert (tmp_path / f"{stem}_maps.png").exists()
    result = invoke("transform", "--inverse", npz, "-o", tmp_path / "back")
    assert result.exit_code == 0, result.output
    with Image.open(sample_path) as im:
        gray = np.asarray(im.convert("L") if im.mode != "L" else im)
    with Image.open(tmp_path / "back" / f"{stem}_reconstruction.png") as back:
        assert back.mode == "L"
        np.testing.assert_array_equal(np.asarray(back), gray)


def test_coefficients_in_file_match_blockwise_dctn(tmp_path):
    path = SAMPLES / "coins.png"  # 303 rows: not a multiple of 4 or 8
    assert invoke("transform", path, "-o", tmp_path, "--block-size", 8).exit_code == 0
    with np.load(tmp_path / "coins_coefficients.npz", allow_pickle=False) as f:
        assert int(f["block_size"]) == 8
        assert f["image_shape"].tolist() == [303, 384]
        expected = reference_blockwise_dct(np.asarray(Image.open(path)), 8)
        np.testing.assert_allclose(f["coefficients"], expected, atol=tolerance(np.float64, 8 * 255))


def test_sixteen_bit_png_round_trips_identically(tmp_path, rng):
    pixels = rng.integers(0, 65536, (37, 29), dtype=np.uint16)
    src = tmp_path / "deep.png"
    Image.fromarray(pixels).save(src)
    assert invoke("transform", src, "-o", tmp_path / "o").exit_code == 0
    assert invoke("transform", "--inverse", tmp_path / "o" / "deep_coefficients.npz", "-o", tmp_path / "o").exit_code == 0
    with Image.open(tmp_path / "o" / "deep_reconstruction.png") as back:
        assert back.mode == "I;16"
        np.testing.assert_array_equal(np.asarray(back), pixels)


def test_float_tiff_comes_back_as_float_tiff(tmp_path, rng):
    pixels = rng.standard_normal((10, 13)).astype(np.float32)
    src = tmp_path / "f.tif"
    Image.fromarray(pixels).save(src)
    assert invoke("transform", src, "-o", tmp_path, "--dtype", "float32").exit_code == 0
    with np.load(tmp_path / "f_coefficients.npz") as f:
        assert f["coefficients"].dtype == np.float32
    assert invoke("transform", "--inverse", tmp_path / "f_coefficients.npz", "-o", tmp_path).exit_code == 0
    with Image.open(tmp_path / "f_reconstruction.tif") as back:
        assert back.mode == "F"
        np.testing.assert_allclose(np.asarray(back), pixels, atol=tolerance(np.float32, 4 * 4))


def test_color_input_is_converted_with_a_note(tmp_path):
    result = invoke("transform", SAMPLES / "astronaut.png", "-o", tmp_path)
    assert result.exit_code == 0
    assert "Note: " in result.stderr and "RGB converted to 8-bit gray (ITU-R 601-2 luma)" in result.stderr


def test_kernels_picture_is_written(tmp_path):
    result = invoke("transform", SAMPLES / "text.png", "-o", tmp_path, "--kernels", "-n", 8)
    assert result.exit_code == 0
    with Image.open(tmp_path / "kernels_8.png") as im:
        assert min(im.size) > 8 * 8 and im.mode == "RGB"


def test_json_lists_the_outputs(tmp_path):
    result = invoke("transform", SAMPLES / "camera.png", SAMPLES / "text.png", "-o", tmp_path, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [f["input"] for f in data["files"]] == [str(SAMPLES / "camera.png"), str(SAMPLES / "text.png")]
    assert data["files"][0]["outputs"] == [
        str(tmp_path / "camera_coefficients.npz"),
        str(tmp_path / "camera_maps.png"),
    ]


def test_block_size_is_refused_with_inverse(tmp_path):
    result = invoke("transform", "--inverse", SAMPLES / "camera.png", "-o", tmp_path, "--block-size", 8)
    assert result.exit_code == 2
    assert "Invalid value for '--block-size' / '-n': the coefficient file records it; drop this option with --inverse" in result.stderr


@pytest.mark.parametrize("value", ["0", "1", "65", "four"])
def test_bad_block_size_is_a_usage_error(tmp_path, value):
    result = invoke("transform", SAMPLES / "camera.png", "-o", tmp_path, "--block-size", value)
    assert result.exit_code == 2
    assert "Invalid value for '--block-size' / '-n'" in result.stderr


def test_a_bad_file_is_reported_and_the_others_processed(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    result = invoke("transform", bad, SAMPLES / "text.png", "-o", tmp_path / "o")
    assert result.exit_code == 1
    assert f"Error: {bad}: not an image in a format dctconv reads (PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP), or its header is damaged" in result.stderr
    assert (tmp_path / "o" / "text_coefficients.npz").exists()
    assert not (tmp_path / "o" / "bad_coefficients.npz").exists()


def test_outputs_get_the_usual_permissions(tmp_path):
    import os
    import stat

    assert invoke("transform", SAMPLES / "text.png", "-o", tmp_path).exit_code == 0
    umask = os.umask(0)
    os.umask(umask)
    for name in ("text_coefficients.npz", "text_maps.png"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == [".text_transform.made", "text_coefficients.npz",
                                                          "text_maps.png"]


# ---------------------------------------------------------------- --layout, --channel-order, --from-jpeg


def test_layout_and_channel_order_are_stored_and_inverted(tmp_path):
    from test_array_api import JPEG_NATURAL

    path = SAMPLES / "coins.png"
    args = ("transform", path, "-n", 8, "--no-pictures")
    assert invoke(*args, "-o", tmp_path / "a").exit_code == 0
    result = invoke(*args, "-o", tmp_path / "b", "--layout", "channels_last", "--channel-order", "zigzag")
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "a" / "coins_coefficients.npz") as a, np.load(tmp_path / "b" / "coins_coefficients.npz") as b:
        assert str(b["layout"]) == "channels_last" and str(b["channel_order"]) == "zigzag"
        np.testing.assert_array_equal(b["coefficients"], np.moveaxis(a["coefficients"][JPEG_NATURAL], 0, -1))
    result = invoke("transform", "--inverse", tmp_path / "b" / "coins_coefficients.npz", "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    with Image.open(path) as im, Image.open(tmp_path / "b" / "coins_reconstruction.png") as back:
        np.testing.assert_array_equal(np.asarray(back), np.asarray(im))
    result = invoke("transform", "--inverse", tmp_path / "b" / "coins_coefficients.npz", "-o", tmp_path, "--layout",
                    "channels_last")
    assert result.exit_code == 2 and "records it" in result.output


def test_from_jpeg_stores_the_files_own_luma_coefficients(tmp_path):
    jpeglib = pytest.importorskip("jpeglib")
    with Image.open(SAMPLES / "astronaut.png") as im:
        im.convert("RGB").crop((0, 0, 203, 150)).save(tmp_path / "photo.jpg", quality=85)
    result = CliRunner().invoke(cli, ["transform", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "out"),
                                      "--from-jpeg"])
    assert result.exit_code == 0, result.output
    raw = jpeglib.read_dct(str(tmp_path / "photo.jpg"))

    def maps(blocks, component):
        table = raw.qt[raw.quant_tbl_no[component]]
        return (blocks * table).astype(float).reshape(*blocks.shape[:2], 64).transpose(2, 0, 1)

    expected = maps(raw.Y, 0)
    expected[0] += 1024  # JPEG's level shift of 128, as a DC of 8 x 128
    with np.load(tmp_path / "out" / "photo_coefficients.npz") as f:
        assert int(f["block_size"]) == 8 and f["image_shape"].tolist() == [150, 203]
        np.testing.assert_array_equal(f["coefficients"], expected)
        # 4:2:0: the chroma at half the rows and columns, as the file stores it
        assert f["chroma_shape"].tolist() == [75, 102]
        np.testing.assert_array_equal(f["chroma_cb"], maps(raw.Cb, 1))
        np.testing.assert_array_equal(f["chroma_cr"], maps(raw.Cr, 2))
    assert invoke("transform", "--inverse", tmp_path / "out" / "photo_coefficients.npz", "-o", tmp_path).exit_code == 0
    with Image.open(tmp_path / "photo.jpg") as im:
        im.draft("YCbCr", im.size)  # libjpeg's own Y plane, not converted to RGB and back
        decoded = np.asarray(im)[..., 0].astype(int)
    with Image.open(tmp_path / "photo_reconstruction.png") as back:
        # The decoder's integer IDCT against the exact inverse: within one gray level.
        assert np.abs(np.asarray(back).astype(int) - decoded).max() <= 1


def test_from_jpeg_refuses_other_files_and_block_sizes(tmp_path):
    pytest.importorskip("jpeglib")
    result = invoke("transform", SAMPLES / "camera.png", "-o", tmp_path, "--from-jpeg")
    assert result.exit_code == 1 and "is not a JPEG file" in result.output
    assert "Traceback" not in result.output
    result = invoke("transform", SAMPLES / "camera.png", "-o", tmp_path, "--from-jpeg", "-n", 4)
    assert result.exit_code == 2 and "8 x 8" in result.output
