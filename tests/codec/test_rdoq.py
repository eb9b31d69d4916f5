"""Rate-distortion optimized quantization: the encoder's choice of levels, checked against
independent references (scipy's per-block DCT, scikit-image's PSNR, the reference decoder)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import dctconv
from dctconv.codec import _core, _quantize
from dctconv.codec._core import decode_levels
from dctconv.codec._quantize import step_table
from dctconv.codec._zigzag import zigzag_order
from hostile import sample_crop
from reference_decoder import decode as reference_decode
from references import SAMPLES, reference_blockwise_dct, reference_blockwise_idct

DATA = SAMPLES.parent / "tests" / "data"
#: 128 x 96 of camera.png: sky, the coat, the tripod.
CROP = sample_crop(box=(180, 100, 308, 196))


def encode_without_rdoq(monkeypatch, image, **settings) -> bytes:
    with monkeypatch.context() as patch:
        patch.setattr(_quantize, "RDOQ_LAMBDA", 0.0)
        return dctconv.encode(image, **settings)


def psnr(image, data) -> float:
    return peak_signal_noise_ratio(image, dctconv.decode(data), data_range=255)


@pytest.mark.parametrize("n, quality", [(4, 75), (8, 50), (5, 30), (16, 90)])
def test_rdoq_files_decode_with_the_reference_decoder(n, quality):
    data = dctconv.encode(CROP, block_size=n, quality=quality)
    got, image = reference_decode(data, reconstruction=True)
    expected = dctconv.decode(data)
    halves = np.abs(image - np.floor(image) - 0.5) < 1e-9  # either way in another inverse DCT
    differ = got != expected
    assert not (differ & ~halves).any()


@pytest.mark.parametrize("n, quality, keep, threshold", [(4, 50, None, 0.0), (8, 75, None, 0.0), (4, 90, 6, 4.3)])
def test_levels_are_rounding_moved_towards_zero(n, quality, keep, threshold):
    # Each AC level is 0 or within two of the rounded |c| / step, never above it, of c's sign;
    # DC is the rounding itself; channels not kept and coefficients below the threshold stay 0.
    levels = decode_levels(dctconv.encode(CROP, block_size=n, quality=quality, keep=keep, threshold=threshold)).levels
    steps = step_table(n, quality=quality)
    truth = reference_blockwise_dct(CROP.astype(np.float64), n)
    if keep is not None:
        truth[zigzag_order(n)[keep:]] = 0
    small = np.abs(truth) < threshold
    small[0] = False
    truth[small] = 0
    scaled = truth / steps[:, None, None]
    # Within float rounding of a tie (DC is a sum / n) the rounding may go either way.
    high, low = np.floor(np.abs(scaled) + 0.5 + 1e-9), np.floor(np.abs(scaled) + 0.5 - 1e-9)
    magnitude = np.abs(levels)
    assert np.all((low[0] <= magnitude[0]) & (magnitude[0] <= high[0]))
    ac = slice(1, None)
    assert np.all(magnitude[ac] <= high[ac])
    assert np.all((magnitude[ac] == 0) | (magnitude[ac] >= low[ac] - 2))
    assert np.all((levels[ac] == 0) | (np.sign(levels[ac]) == np.sign(scaled[ac])))
    assert (magnitude[ac] < low[ac]).any()  # it did decide something


@pytest.mark.parametrize("quality", [30, 75])
def test_rdoq_lowers_the_rate_distortion_cost_at_n4(monkeypatch, quality):
    # What RDOQ minimizes, measured on the decoded pixels and the file's bytes: squared error
    # plus lambda times the bits, lambda = RDOQ_LAMBDA * (DC step)**2 (docs/codec.md). Plain
    # rounding (RDOQ off) pays more; its file is larger and RDOQ loses at most 1 dB for it.
    plain = encode_without_rdoq(monkeypatch, CROP, block_size=4, quality=quality)
    chosen = dctconv.encode(CROP, block_size=4, quality=quality)
    lam = _quantize.RDOQ_LAMBDA * step_table(4, quality=quality)[0] ** 2

    def cost(data):
        error = dctconv.decode(data).astype(np.float64) - CROP
        return float((error**2).sum()) + lam * 8 * len(data)

    assert len(chosen) < len(plain)
    assert cost(chosen) < cost(plain)
    assert psnr(CROP, chosen) >= psnr(CROP, plain) - 1.0


@pytest.mark.parametrize("quality", [25, 50, 75, 90])
def test_n8_keeps_the_error_of_plain_rounding(monkeypatch, quality):
    # At n = 8 (JPEG's tables) RDOQ spends only what the reconstruction offsets save: the PSNR
    # is at least that of plain rounding decoded with no offsets (JPEG's decoder), computed
    # here with scipy; the file is smaller than that of plain rounding.
    steps = step_table(8, quality=quality)[:, None, None]
    rounded = np.rint(reference_blockwise_dct(CROP.astype(np.float64), 8) / steps) * steps
    jpeg_like = np.clip(np.rint(reference_blockwise_idct(rounded, CROP.shape)), 0, 255).astype(np.uint8)
    data = dctconv.encode(CROP, block_size=8, quality=quality)
    assert psnr(CROP, data) >= peak_signal_noise_ratio(CROP, jpeg_like, data_range=255) - 1e-9
    with monkeypatch.context() as patch:  # plain rounding: no dead zone, no RDOQ
        patch.setattr(_core, "DEAD_ZONE", 0)
        rounded_file = encode_without_rdoq(monkeypatch, CROP, block_size=8, quality=quality)
    assert decode_levels(rounded_file).header.dead_zone == 0
    assert len(data) < len(rounded_file)


def test_a_bound_still_holds_and_other_modes_keep_their_levels(monkeypatch):
    # With --max-error the residual is computed on what the levels decode to: every pixel
    # within the bound. RDOQ is for 8-bit images without a bound: 16-bit and float files,
    # and files with a bound, hold the levels they held before it.
    data = dctconv.encode(CROP, block_size=4, quality=40, max_error=3)
    assert np.abs(dctconv.decode(data).astype(np.int64) - CROP).max() <= 3
    assert data == encode_without_rdoq(monkeypatch, CROP, block_size=4, quality=40, max_error=3)
    wide = CROP.astype(np.uint16) * 257
    assert dctconv.encode(wide, quality=60) == encode_without_rdoq(monkeypatch, wide, quality=60)
    field = CROP.astype(np.float32) / 255
    assert dctconv.encode(field, quality=60, block_size=8) == encode_without_rdoq(monkeypatch, field, quality=60,
                                                                                  block_size=8)


@pytest.mark.parametrize("name", ["codec_v4_n4_q75", "codec_v3_n8_q50"])
def test_verify_accepts_files_of_either_rounding(tmp_path, name):
    # verify recomputes the levels: RDOQ's for a file written now, plain rounding's for one
    # written before RDOQ (the recorded fixtures); an image changed in one block matches neither.
    from dctconv.verify._files import verify_compressed_file

    source = np.asarray(Image.open(DATA / "codec_v1_source.png").convert("L"))
    n = 4 if "n4" in name else 8
    new = tmp_path / "new.dctz"
    new.write_bytes(dctconv.encode(source, block_size=n, quality=75 if n == 4 else 50))
    for path in (DATA / f"{name}.dctz", new):
        assert verify_compressed_file(path, source).check.passed
        changed = source.copy()
        changed[:n, :n] = 255 - changed[:n, :n]
        assert not verify_compressed_file(path, changed).check.passed
