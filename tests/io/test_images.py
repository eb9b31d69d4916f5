import numpy as np
import pytest
from PIL import Image

from dctconv.errors import ImageReadError, ImageTooLargeError
from dctconv.io._images import image_bytes, image_suffix, read_image, save_image, to_pixels


def test_sample_images_read_as_gray(sample_path):
    image, info = read_image(sample_path)
    with Image.open(sample_path) as im:
        assert image.shape == (im.height, im.width)
        if im.mode == "L":
            np.testing.assert_array_equal(image, np.asarray(im))
            assert not info.converted
        else:
            # Pillow's ITU-R 601-2 luma, computed here from the RGB pixels independently.
            rgb = np.asarray(im.convert("RGB")).astype(np.float64)
            luma = rgb @ [0.299, 0.587, 0.114]
            assert np.abs(image - luma).max() <= 1.0
            assert info.converted and info.file_mode == im.mode
    assert image.dtype == np.uint8 and info.mode == "L"


@pytest.mark.parametrize(
    "array, mode, suffix",
    [
        (np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64), "I;16", ".png"),
        (np.arange(-8, 8, dtype=np.int32).reshape(4, 4) * 100000, "I", ".tif"),
        (np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6), "F", ".tif"),
        (np.arange(256, dtype=np.uint8).reshape(16, 16), "L", ".png"),
    ],
)
def test_gray_modes_round_trip_at_full_precision(tmp_path, array, mode, suffix):
    path = tmp_path / f"x{suffix}"
    Image.fromarray(array).save(path)
    image, info = read_image(path)
    assert info.mode == mode and not info.converted
    np.testing.assert_array_equal(image, array)
    assert image_suffix(mode) == suffix
    out = tmp_path / f"y{suffix}"
    save_image(out, image.astype(np.float64), mode)
    again, info2 = read_image(out)
    assert info2.mode == mode
    np.testing.assert_array_equal(again, array)
    # Encoded in memory (compress does that on a second thread), the same file.
    assert image_bytes(image.astype(np.float64), mode) == out.read_bytes()
    save_image(out, image, mode)  # already pixels of the mode: written as they are
    np.testing.assert_array_equal(read_image(out)[0], array)


@pytest.mark.parametrize("mode", ["1", "P", "LA", "RGB", "RGBA", "CMYK"])
def test_other_modes_are_converted_to_luma(tmp_path, mode):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8))
    im = rgb.convert(mode)
    suffix = ".tif" if mode == "CMYK" else ".png"  # PNG has no CMYK
    im.save(tmp_path / f"x{suffix}")
    image, info = read_image(tmp_path / f"x{suffix}")
    assert info.converted and info.file_mode == mode and info.mode == "L"
    np.testing.assert_array_equal(image, np.asarray(Image.open(tmp_path / f"x{suffix}").convert("L")))


def test_to_pixels_rounds_and_clips():
    np.testing.assert_array_equal(to_pixels([[-3.2, 0.49, 0.5, 254.6, 300.0]], "L"), [[0, 0, 0, 255, 255]])
    assert to_pixels([[70000.0]], "I;16")[0, 0] == 65535
    assert to_pixels([[1.25]], "F").dtype == np.float32


def test_max_pixels_refuses_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(path)
    with pytest.raises(ImageTooLargeError, match="100 x 100 = 10,000 pixels"):
        read_image(path, max_pixels=9999)
    assert read_image(path, max_pixels=10000)[0].shape == (100, 100)


def test_unreadable_file_raises_image_read_error(tmp_path):
    path = tmp_path / "text.png"
    path.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"^not an image in a format dctconv reads \(PNG, TIFF, JPEG, BMP, GIF, PPM/PGM/PBM or WebP\), "
                       r"or its header is damaged$"):
        read_image(path)


def test_float_tiff_with_nan_is_refused(tmp_path):
    path = tmp_path / "nan.tif"
    Image.fromarray(np.array([[1.0, np.nan]], np.float32)).save(path)
    with pytest.raises(ImageReadError, match="NaN"):
        read_image(path)


@pytest.mark.parametrize("unfiltered", [True, False])
@pytest.mark.parametrize("shape", [(1, 1), (7, 300), (600, 9), (301, 17, 3)])
def test_pictures_written_by_dctconv_decode_to_their_pixels(shape, unfiltered, monkeypatch, rng):
    # Gray pictures are written by dctconv itself, every row unfiltered or "up" (Pillow tries
    # every filter on every row): Pillow and libpng (through imagecodecs) read the same pixels,
    # CRCs checked; bands of rows are filtered and deflated one at a time (a small band here:
    # several per picture, each "up" band reaching back into the one before).
    import io

    import imagecodecs

    from dctconv.io import _images

    monkeypatch.setattr(_images, "_PNG_BAND_BYTES", 1000)
    picture = rng.integers(0, 256, shape).astype(np.uint8)
    picture[::5] = picture[0]  # rows equal to the one above: "up" makes them zero
    data = _images.picture_bytes(picture, unfiltered=unfiltered)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.mode == ("L" if len(shape) == 2 else "RGB")
        im.load()
        assert np.array_equal(np.asarray(im), picture)
    assert np.array_equal(imagecodecs.png_decode(data), picture)
    with pytest.raises(ValueError, match="8-bit gray or RGB"):
        _images.png_bytes(picture.astype(np.uint16))


def test_an_8_bit_image_is_written_up_filtered_and_read_back_exactly(tmp_path, rng):
    import imagecodecs

    image = rng.integers(0, 256, (70, 45)).astype(np.uint8)
    save_image(tmp_path / "a.png", image, "L")
    data = (tmp_path / "a.png").read_bytes()
    assert data == image_bytes(image, "L")
    assert np.array_equal(imagecodecs.png_decode(data), image)
    assert np.array_equal(read_image(tmp_path / "a.png")[0], image)
