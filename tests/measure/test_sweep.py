"""The rate-distortion sweep: its points, its envelopes and its BD-rates.

References: Pillow's encoders and scikit-image's metrics called here, and a BD-rate
written in tests/references.py (log10 rate interpolated against quality with scipy's Akima
interpolator, averaged over the common range by the trapezoid rule on a fine grid),
not the ``bjontegaard`` package the library uses.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, features
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from references import SAMPLES, reference_bd_rate
from dctconv.measure import _sweep as sweep
from dctconv.errors import InvalidImageError
from dctconv.measure._sweep import SweepPoint


@pytest.fixture(scope="module")
def crop():
    with Image.open(SAMPLES / "camera.png") as im:
        return np.asarray(im)[120:184, 200:264].copy()  # 64 x 64: each encode takes milliseconds


def point(method, bpp, psnr, ssim=None, quality=None):
    return SweepPoint(method, None, quality, int(bpp * 1000), bpp, psnr, ssim)


@pytest.mark.parametrize("method", ["jpeg", "webp", "avif"])
def test_pillow_point_is_what_pillow_and_skimage_give(crop, method):
    if not features.check({"jpeg": "jpg", "webp": "webp", "avif": "avif"}[method]):
        pytest.skip(f"this Pillow has no {method}")
    options = {"jpeg": {"optimize": True}, "webp": {"method": 6}, "avif": {}}[method]
    points = sweep.pillow_sweep(crop, method, qualities=(30, 70))
    assert [(p.method, p.quality, p.keep) for p in points] == [(method, 30, None), (method, 70, None)]
    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format=method.upper(), quality=70, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        decoded = np.asarray(im.convert("L"))
    assert points[1].bytes == len(buffer.getvalue())
    assert points[1].bits_per_pixel == 8 * len(buffer.getvalue()) / crop.size
    assert points[1].psnr_db == pytest.approx(peak_signal_noise_ratio(crop, decoded, data_range=255), rel=1e-12)
    assert points[1].ssim == pytest.approx(structural_similarity(crop, decoded, data_range=255), rel=1e-9)
    assert points[0].bytes < points[1].bytes


def test_pillow_sweep_refuses_sixteen_bit_pixels(crop):
    with pytest.raises(InvalidImageError, match="^JPEG comparison needs 8-bit gray pixels, got uint16$"):
        sweep.pillow_sweep(crop.astype(np.uint16), "jpeg")


def test_envelope_drops_points_that_a_cheaper_one_beats():
    points = [
        point("jpeg", 0.5, 30.0), point("jpeg", 0.3, 28.0), point("jpeg", 0.6, 29.5),  # 0.6 buys nothing
        point("jpeg", 0.8, None),  # identical: no PSNR
        point("jpeg", 1.0, 35.0), point("jpeg", 1.0, 36.0),  # same size: the better one stays
        point("jpeg", 1.2, 36.0),  # equal quality for more bits
    ]
    rates, values = sweep.envelope(points, "psnr_db")
    assert rates.tolist() == [0.3, 0.5, 1.0]
    assert values.tolist() == [28.0, 30.0, 36.0]


def test_bd_rate_of_a_curve_needing_half_the_bits_is_minus_fifty_percent():
    anchor = [point("jpeg", r, q) for r, q in [(0.25, 30), (0.5, 33), (1.0, 37), (2.0, 40)]]
    test = [point("dctconv", r / 2, q) for r, q in [(0.25, 30), (0.5, 33), (1.0, 37), (2.0, 40)]]
    value, overlap, used = sweep.bd_rate(test, anchor, "psnr_db")
    assert value == pytest.approx(-50.0, abs=1e-9)
    assert overlap == 1.0 and used == (4, 4)


def test_bd_rate_equals_an_independent_computation():
    # Curves of different lengths, shapes and ranges, one not monotone.
    anchor = [(0.2, 27.0), (0.35, 29.5), (0.6, 32.4), (0.9, 34.0), (1.5, 37.9), (2.4, 41.0)]
    test = [(0.15, 28.1), (0.3, 31.0), (0.45, 32.0), (0.5, 31.5), (0.8, 35.2), (1.3, 38.5), (3.0, 44.0)]
    value, overlap, used = sweep.bd_rate([point("dctconv", *t) for t in test],
                                         [point("jpeg", *a) for a in anchor], "psnr_db")
    monotone_test = [t for t in test if t != (0.5, 31.5)]
    assert used == (6, 6)
    assert value == pytest.approx(reference_bd_rate(anchor, monotone_test), abs=1e-6)
    assert overlap == pytest.approx((41.0 - 28.1) / (44.0 - 27.0))


def test_bd_rate_is_none_without_overlap_or_points():
    low = [point("dctconv", r, q) for r, q in [(0.1, 20), (0.2, 22), (0.3, 24)]]
    high = [point("jpeg", r, q) for r, q in [(1.0, 30), (2.0, 33), (3.0, 36)]]
    assert sweep.bd_rate(low, high, "psnr_db")[:2] == (None, 0.0)
    assert sweep.bd_rate(low[:1], high, "psnr_db")[0] is None
    assert sweep.bd_rate(low, high, "ssim") == (None, 0.0, (0, 0))


def test_bd_rates_are_of_dctconv_against_every_other_curve():
    rates = [(0.25, 0.80), (0.5, 0.88), (1.0, 0.94), (2.0, 0.97)]
    points = [point("dctconv", r, 20 + 10 * r, s) for r, s in rates]
    points += [point("jpeg", 2 * r, 20 + 10 * r, s) for r, s in rates]
    points += [point("webp", r / 2, 20 + 10 * r, s) for r, s in rates]
    found = {b.anchor: b for b in sweep.bd_rates(points)}
    assert list(found) == ["jpeg", "webp"]
    assert found["jpeg"].ssim == pytest.approx(reference_bd_rate([(2 * r, s) for r, s in rates], rates))
    assert found["webp"].ssim == pytest.approx(reference_bd_rate([(r / 2, s) for r, s in rates], rates))
    assert found["jpeg"].as_dict()["psnr_percent"] == found["jpeg"].psnr


def test_csv_has_one_row_per_point_and_empty_cells_for_none():
    buffer = io.StringIO()
    sweep.write_csv(buffer, [point("jpeg", 0.5, 30.0, quality=50), point("jpeg", 0.8, None, quality=90)])
    assert buffer.getvalue().splitlines() == [
        "method,keep,quality,bytes,bits_per_pixel,psnr_db,ssim,setting,max_abs_error",
        "jpeg,,50,500,0.5,30.0,,,",
        "jpeg,,90,800,0.8,,,,",
    ]


# ---------------------------------------------------------------- imagecodecs anchors (issue 18)

try:  # the test extra installs it (dctconv[science]); without it only these tests skip
    import imagecodecs
except ImportError:
    imagecodecs = None

from dctconv.measure import _anchors  # noqa: E402
from references import rate_envelope  # noqa: E402
from science_images import terrain, with_holes  # noqa: E402

pytestmark_anchors = pytest.mark.skipif(imagecodecs is None, reason="imagecodecs is not installed")


def _have(codec: str) -> bool:
    return imagecodecs is not None and bool(getattr(getattr(imagecodecs, codec, None), "available", False))


@pytest.fixture(scope="module")
def dem16():
    return terrain((48, 48), low=0, high=840, dtype=np.uint16)


@pytest.fixture(scope="module")
def dem_float():
    return terrain((48, 48), low=236.0, high=1076.0, dtype=np.float32)


def _measured(original, decoded, span):
    """PSNR (skimage, over the data range) and the largest error, computed here."""
    original, decoded = original.astype(np.float64), decoded.astype(np.float64)
    largest = float(np.abs(original - decoded).max())
    psnr = None if largest == 0 else peak_signal_noise_ratio(original, decoded, data_range=span)
    return psnr, largest


@pytest.fixture(scope="module")
def dem16_sweep(dem16):
    return sweep.sweep(dem16, data_range=840.0, block_size=4, value_range=(0.0, 840.0), qualities=(25, 50, 75, 95))


@pytestmark_anchors
def test_sixteen_bit_sweep_draws_every_anchor_measured_against_imagecodecs_decoders(dem16, dem16_sweep):
    found = dem16_sweep
    expected = [m for m, codec in _anchors.CODECS.items() if _have(codec)]
    assert [m for m in found.curves if m in _anchors.ANCHORS] == expected
    assert set(found.left_out) == {"jpeg", "webp", "avif"} | (set(_anchors.ANCHORS) - set(expected))
    # One point of each curve redone with imagecodecs' own encoder and decoder, measured here.
    redo = {
        "sz3": lambda: (data := imagecodecs.sz3_encode(dem16.astype(np.float64), mode=0, abs=8.4),
                        np.rint(imagecodecs.sz3_decode(data, shape=dem16.shape, dtype=np.float64))),
        "zfp": lambda: (data := imagecodecs.zfp_encode(dem16.astype(np.float64), level=8.4, mode="a"),
                        np.rint(imagecodecs.zfp_decode(data))),
        "jpegls": lambda: (data := imagecodecs.jpegls_encode(dem16, level=8), imagecodecs.jpegls_decode(data)),
        "jpeg2k": lambda: (data := imagecodecs.jpeg2k_encode(dem16, level=50, bitspersample=10),
                           imagecodecs.jpeg2k_decode(data)),
        "jpegxl": lambda: (data := imagecodecs.jpegxl_encode(dem16, lossless=True, bitspersample=10),
                           imagecodecs.jpegxl_decode(data)),
        "png": lambda: (data := imagecodecs.png_encode(dem16, level=9), imagecodecs.png_decode(data)),
    }
    setting = {"sz3": 8.4, "zfp": 8.4, "jpegls": 8.0, "jpeg2k": 50.0, "jpegxl": 0.0, "png": 9.0}
    for method in expected:
        data, decoded = redo[method]()
        point = next(p for p in found.points if p.method == method and p.setting == pytest.approx(setting[method]))
        psnr, largest = _measured(dem16, decoded, 840.0)
        assert point.bytes == len(data), method
        assert point.bits_per_pixel == 8 * len(data) / dem16.size
        assert point.max_abs_error == largest, method
        assert point.psnr_db == (None if psnr is None else pytest.approx(psnr, rel=1e-9)), method
    lossless = [p for p in found.points if p.method in ("jpegls", "png") and p.setting in (0.0, 9.0)]
    assert lossless and all(p.max_abs_error == 0 and p.psnr_db is None for p in lossless)


@pytestmark_anchors
def test_bound_curve_holds_each_bound_on_every_pixel(dem16, dem16_sweep):
    import dctconv

    bounds = [p for p in dem16_sweep.points if p.method == "dctconv_bound"]
    # integers: 0 (lossless), then floor(E) for the shares of 840 that are at least 1
    assert [p.setting for p in bounds] == [0.0, 2.0, 8.0, 25.0, 84.0]
    for p in bounds:
        decoded = dctconv.decode(dctconv.encode(dem16, block_size=4, max_error=p.setting, data_range=(0, 840)))
        largest = int(np.abs(decoded.astype(np.int64) - dem16).max())
        assert largest <= p.setting and p.max_abs_error == largest


@pytestmark_anchors
def test_bd_rate_at_equal_largest_error_is_of_the_bound_curve(dem16_sweep):
    points = [p.as_dict() for p in dem16_sweep.points]
    ours = [dict(p, q=-np.log10(p["max_abs_error"])) for p in points
            if p["method"] == "dctconv_bound" and p["max_abs_error"] > 0]
    checked = 0
    for rate in dem16_sweep.bd_rates:
        theirs = [dict(p, q=-np.log10(p["max_abs_error"])) for p in points
                  if p["method"] == rate.anchor and p["max_abs_error"] > 0]
        a, t = rate_envelope(theirs, "q"), rate_envelope(ours, "q")
        if rate.max_error is None:
            continue
        assert rate.max_error == pytest.approx(reference_bd_rate(a, t), abs=1e-6), rate.anchor
        checked += 1
    assert checked >= 2


@pytestmark_anchors
def test_float_sweep_leaves_out_the_integer_codecs_and_keeps_nan_out_of_the_errors(dem_float):
    image = with_holes(dem_float, count=2, radius=4)
    low, high = float(np.nanmin(image)), float(np.nanmax(image))
    found = sweep.sweep(image, data_range=high - low, block_size=4, value_range=(low, high), qualities=(50, 90),
                        anchors=("sz3", "jpegls", "jpeg2k", "png"))
    assert found.left_out["jpegls"] == "it takes 8- and 16-bit integers only"
    assert found.left_out["png"] == "it takes 8- and 16-bit integers only"
    assert found.left_out["jpeg2k"] == "it takes integers only"
    if _have("SZ3"):
        filled = np.where(np.isnan(image), np.float32(low), image)
        point = next(p for p in found.points if p.method == "sz3" and p.setting == pytest.approx(0.01 * (high - low)))
        data = imagecodecs.sz3_encode(filled, mode=0, abs=point.setting)
        decoded = imagecodecs.sz3_decode(data, shape=image.shape, dtype=np.float32)
        assert point.bytes == len(data)
        assert point.max_abs_error == _measured(filled, decoded, high - low)[1] <= point.setting * (1 + 1e-6)
    valid = ~np.isnan(image)
    for p in (p for p in found.points if p.method in ("dctconv", "dctconv_bound")):
        assert p.max_abs_error is not None and np.isfinite(p.max_abs_error)
        if p.method == "dctconv_bound":
            assert p.max_abs_error <= p.setting
    assert valid.sum() < image.size


@pytestmark_anchors
def test_a_codec_this_imagecodecs_lacks_is_left_out_with_why(dem16, monkeypatch):
    monkeypatch.setattr(_anchors, "available", lambda method: method != "sz3")
    found = sweep.sweep(dem16[:16, :16], data_range=840.0, block_size=4, value_range=(0.0, 840.0),
                        qualities=(50,), anchors=("sz3", "png"))
    assert found.left_out["sz3"] == "this imagecodecs lacks it"
    assert "sz3" not in found.curves and ("png" in found.curves) == _have("PNG")


@pytestmark_anchors
def test_eight_bit_sweep_adds_jpeg_xl_alone(crop):
    found = sweep.sweep(crop, data_range=255.0, block_size=4, qualities=(50,), others=())
    anchors = [m for m in found.curves if m in _anchors.ANCHORS]
    assert anchors == (["jpegxl"] if _have("JPEGXL") else [])
    assert "dctconv_bound" not in found.curves
    if _have("JPEGXL"):
        data = imagecodecs.jpegxl_encode(crop, distance=1.0)
        point = next(p for p in found.points if p.method == "jpegxl" and p.setting == 1.0)
        assert point.bytes == len(data)
        assert point.psnr_db == pytest.approx(
            peak_signal_noise_ratio(crop, imagecodecs.jpegxl_decode(data), data_range=255), rel=1e-9)
