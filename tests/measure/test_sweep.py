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
        "method,keep,quality,bytes,bits_per_pixel,psnr_db,ssim",
        "jpeg,,50,500,0.5,30.0,",
        "jpeg,,90,800,0.8,,",
    ]
