"""read_jpeg_coefficients against jpeglib's own arrays, scipy's DCT of the source and Pillow's decode.

JPEG files are made here with Pillow (baseline, 4:4:4 and 4:2:0 colour, progressive, restart
markers). What the tests rely on: a JPEG coefficient is level x step in the orthonormal scale of
``forward(pixels - 128, 8)``; the encoder's levels are its DCT of the source over the step,
rounded, so they are within half a step of scipy's dctn of the source (plus libjpeg's integer
DCT rounding); and a decoder's pixels are the inverse DCT of level x step plus 128, rounded.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
from PIL import Image

from references import SAMPLES, reference_blockwise_dct
from dctconv import inverse, read_jpeg_coefficients
from dctconv.errors import ImageReadError, ImageTooLargeError

jpeglib = pytest.importorskip("jpeglib")

#: libjpeg's slow-integer forward DCT: its coefficients differ from the exact DCT by a
#: fraction of a unit (measured up to 0.2 on camera at quality 95); 1 is a safe bound.
INTEGER_DCT = 1.0


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "camera.png").convert("L"))[40:85, 100:167]  # 45 x 67: padded blocks


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(SAMPLES / "astronaut.png").convert("RGB"))[100:141, 200:259]


def jpeglib_maps(blocks: np.ndarray, table: np.ndarray) -> np.ndarray:
    """jpeglib's (rows, columns, 8, 8) levels times the step, laid out by a loop over blocks."""
    rows, cols = blocks.shape[:2]
    maps = np.empty((64, rows, cols))
    for r in range(rows):
        for s in range(cols):
            maps[:, r, s] = (blocks[r, s] * table).reshape(64)
    return maps


def test_grayscale_equals_jpeglib_and_the_dct_of_the_source(camera, tmp_path):
    path = tmp_path / "camera.jpg"
    Image.fromarray(camera).save(path, quality=75)
    jpeg = read_jpeg_coefficients(path)
    assert jpeg.image_shape == (45, 67) and [c.name for c in jpeg.components] == ["Y"]
    assert jpeg.cb is None and jpeg.y.shape == (64, 6, 9) and not jpeg.progressive
    raw = jpeglib.read_dct(str(path))
    table = raw.qt[raw.quant_tbl_no[0]]
    np.testing.assert_array_equal(jpeg.y, jpeglib_maps(raw.Y, table))
    np.testing.assert_array_equal(jpeg["Y"].steps, table.reshape(64))
    # Within half a step of the exact DCT of the source, edge-padded as libjpeg pads.
    steps = jpeg["Y"].steps.astype(float)[:, None, None]
    source = reference_blockwise_dct(camera.astype(float) - 128, 8)
    assert np.all(np.abs(jpeg.y - source) <= steps / 2 + INTEGER_DCT)


def test_the_coefficients_decode_to_pillows_pixels(camera, tmp_path):
    path = tmp_path / "camera.jpg"
    Image.fromarray(camera).save(path, quality=90)
    jpeg = read_jpeg_coefficients(path)
    decoded = np.asarray(Image.open(path), dtype=float)
    # forward(decoded - 128) is level x step plus the DCT of the decoder's rounding error e,
    # block by block at most ||e||_2 (orthonormal DCT); e is measured against scipy's idctn.
    exact = np.stack([scipy.fft.idctn(jpeg.y[:, r, s].reshape(8, 8), norm="ortho")
                      for r in range(6) for s in range(9)]).reshape(6, 9, 8, 8)
    padded = np.pad(decoded, ((0, 3), (0, 5)), mode="edge").reshape(6, 8, 9, 8).transpose(0, 2, 1, 3) - 128
    from dctconv import forward

    gap = np.abs(forward(decoded - 128, 8) - jpeg.y).reshape(64, 6, 9).max(axis=0)
    bound = np.sqrt(((padded - exact) ** 2).sum(axis=(2, 3)))
    assert np.all(gap <= bound + 1e-9)
    # dctconv's inverse of the maps, plus 128 and rounded, is Pillow's decode up to libjpeg's integer IDCT.
    restored = np.clip(np.round(inverse(jpeg.y, jpeg["Y"].image_shape) + 128), 0, 255)
    assert np.max(np.abs(restored - decoded)) <= 1


@pytest.mark.parametrize("subsampling, chroma", [(0, (41, 59)), (2, (21, 30))])
def test_colour_components_at_their_own_sampling(astronaut, tmp_path, subsampling, chroma):
    path = tmp_path / "astronaut.jpg"
    Image.fromarray(astronaut).save(path, quality=80, subsampling=subsampling)
    jpeg = read_jpeg_coefficients(path)
    raw = jpeglib.read_dct(str(path))
    assert [c.name for c in jpeg.components] == ["Y", "Cb", "Cr"]
    for component, blocks, index in ((jpeg["Y"], raw.Y, 0), (jpeg["Cb"], raw.Cb, 1), (jpeg["Cr"], raw.Cr, 2)):
        table = raw.qt[raw.quant_tbl_no[index]]
        np.testing.assert_array_equal(component.coefficients, jpeglib_maps(blocks, table))
    assert jpeg["Cb"].image_shape == chroma and jpeg.cb.shape == (64, -(-chroma[0] // 8), -(-chroma[1] // 8))
    if subsampling == 0:  # 4:4:4: Pillow's raw YCbCr decode has the components as stored
        with Image.open(path) as im:
            im.draft("YCbCr", im.size)
            planes = np.asarray(im, dtype=float)
        for k, maps in enumerate((jpeg.y, jpeg.cb, jpeg.cr)):
            restored = np.clip(np.round(inverse(maps, (41, 59)) + 128), 0, 255)
            assert np.max(np.abs(restored - planes[..., k])) <= 1


def test_layouts_and_zigzag_order(camera, tmp_path):
    path = tmp_path / "camera.jpg"
    Image.fromarray(camera).save(path, quality=50)
    default = read_jpeg_coefficients(path)
    last = read_jpeg_coefficients(path, layout="channels_last", channel_order="zigzag", dtype=np.float32)
    from test_array_api import JPEG_NATURAL

    assert last.y.dtype == np.float32 and last.y.shape == (6, 9, 64)
    np.testing.assert_array_equal(last.y, np.moveaxis(default.y[JPEG_NATURAL], 0, -1))
    np.testing.assert_array_equal(last["Y"].steps, default["Y"].steps[JPEG_NATURAL])
    np.testing.assert_array_equal(
        inverse(last.y, (45, 67), layout="channels_last", channel_order="zigzag"),
        inverse(default.y.astype(np.float32), (45, 67)),
    )


@pytest.mark.parametrize("options", [{"progressive": True}, {"restart_marker_blocks": 2}],
                         ids=["progressive", "restart-markers"])
def test_progressive_and_restart_marker_files_read_the_same_coefficients(camera, tmp_path, options):
    baseline, other = tmp_path / "baseline.jpg", tmp_path / "other.jpg"
    Image.fromarray(camera).save(baseline, quality=75)
    Image.fromarray(camera).save(other, quality=75, **options)
    if "restart_marker_blocks" in options:
        assert b"\xff\xdd" in other.read_bytes() and b"\xff\xd0" in other.read_bytes()  # DRI and RST0
    jpeg = read_jpeg_coefficients(other)
    assert jpeg.progressive == ("progressive" in options)
    np.testing.assert_array_equal(jpeg.y, read_jpeg_coefficients(baseline).y)


def test_bad_files_give_one_line(camera, tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(camera).save(good, quality=75)
    data = good.read_bytes()
    truncated, twelve_bit, png = tmp_path / "truncated.jpg", tmp_path / "twelve.jpg", tmp_path / "x.png"
    truncated.write_bytes(data[:300])
    # The same file marked as an extended-sequential 12-bit frame (SOF1, precision 12).
    start = data.index(b"\xff\xc0")
    twelve_bit.write_bytes(data[:start] + b"\xff\xc1" + data[start + 2 : start + 4] + b"\x0c" + data[start + 5 :])
    Image.fromarray(camera).save(png)
    for path in (truncated, twelve_bit, png, tmp_path / "missing.jpg", tmp_path):
        with pytest.raises(ImageReadError) as caught:
            read_jpeg_coefficients(path)
        assert "\n" not in str(caught.value), str(caught.value)
    with pytest.raises(ImageTooLargeError):
        read_jpeg_coefficients(good, max_pixels=1000)
