"""Block sizes chosen per region (``block_size="auto"``, header flag bit 0, section PART): round trips
checked against independent references (scipy.fft.dctn per block, scikit-image's PSNR, the bound
pixel by pixel with numpy), every pixel mode, decoding in bands, the command line, hostile files."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.fft
from click.testing import CliRunner
from skimage.metrics import peak_signal_noise_ratio

import dctconv
from dctconv.cli import cli
from dctconv.codec import _core
from dctconv.codec._core import decode_levels
from dctconv.codec._dctz import pack, read_header, section
from dctconv.errors import CodecFileError, InvalidCompressionError
from hostile import sample_crop
from science_images import terrain, with_holes

PHOTO = sample_crop(box=(150, 120, 250, 190))  # 100 x 70: no side a multiple of 16


def smooth_and_busy(shape=(64, 96), seed=3) -> np.ndarray:
    """A smooth ramp on the left half; on the right half, 4 x 4 cells of random grays (which 4 x 4
    blocks code with their DC alone, larger ones with many AC levels)."""
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    image = 60 + 0.8 * x + 0.5 * y
    cells = np.random.default_rng(seed).integers(0, 256, (rows // 4, cols // 8))
    image[:, cols // 2 :] = np.kron(cells, np.ones((4, 4)))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def flattened_steps(n: int, quality: int, low=0.0, high=255.0) -> np.ndarray:
    """The steps of one size of a partitioned file, from docs/formats.md's rule (JPEG's table read at
    the same spatial frequency and flattened, at every n including 8), written out here again."""
    jpeg = np.array([[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55],
                     [14, 13, 16, 24, 40, 57, 69, 56], [14, 17, 22, 29, 51, 87, 80, 62],
                     [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
                     [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], float)
    position = np.minimum(np.arange(n) * 8.0 / n, 7.0)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, 7)
    f = position - lo
    rows = jpeg[lo] * (1 - f)[:, None] + jpeg[hi] * f[:, None]
    sampled = rows[:, lo] * (1 - f)[None, :] + rows[:, hi] * f[None, :]
    base = np.clip(np.rint(16 * (sampled / 16) ** 0.25), 1, 255)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((base * scale + 50) // 100, 1, 255) * ((high - low) / 255)


@pytest.mark.parametrize("settings", [dict(quality=60), dict(step=9.0)])
def test_levels_are_the_quantized_dct_of_the_chosen_blocks(settings):
    image = smooth_and_busy()
    levels = decode_levels(dctconv.encode(image, block_size="auto", **settings))
    padded = image.astype(np.float64)  # 64 x 96: already whole regions
    sizes = levels.partition.sizes
    assert sizes.shape == (16, 24)
    seen = set()
    for p in levels.passes:
        n = p.block_size
        steps = flattened_steps(n, 60) if "quality" in settings else np.full((n, n), 9.0)
        np.testing.assert_array_equal(p.steps, steps.reshape(-1))
        for r, c in zip(*np.nonzero(p.present)):
            block = padded[r * n : (r + 1) * n, c * n : (c + 1) * n]
            ratio = scipy.fft.dctn(block, norm="ortho") / steps
            level = p.levels[:, r, c].reshape(n, n)
            # DC rounded (a tie may go either way in another transform's last bit).
            assert abs(level[0, 0] - ratio[0, 0]) <= 0.5 + 1e-9
            if "step" in settings:
                assert np.all(np.abs(level - ratio) <= 0.5 + 1e-9)  # a flat step: plain rounding
            else:
                # AC: rounded with the dead zone of 13/256, then (rate-distortion optimized) possibly
                # one closer to 0, or 0: never larger, never of the other sign.
                rounded = np.sign(ratio) * np.floor(np.abs(ratio) + 0.5 - 13 / 256)
                rounded[0, 0] = level[0, 0]
                assert np.all(np.abs(level) <= np.abs(rounded)) and np.all(level * rounded >= 0)
                assert np.all((np.abs(level) >= np.abs(rounded) - 1) | (level == 0))
            assert np.all(sizes[r * n // 4 : (r + 1) * n // 4, c * n // 4 : (c + 1) * n // 4] == n)
            seen.add(n)
        assert not p.levels[:, ~p.present].any()  # the blocks of the other sizes hold no level
    # The smooth half takes large blocks, the noise small ones.
    assert 16 in seen and 4 in seen
    assert (sizes[:, :12] == 16).mean() > 0.6 and (sizes[:, :12] >= 8).all()
    assert (sizes[:, 12:] == 4).all()


def test_the_partition_pays_on_a_photo():
    image = sample_crop(box=(100, 100, 356, 292))  # 256 x 192
    auto = dctconv.encode(image, block_size="auto", quality=75)
    fixed = dctconv.encode(image, block_size=4, quality=75)
    psnr = [peak_signal_noise_ratio(image, dctconv.decode(d), data_range=255) for d in (auto, fixed)]
    # Not worse at the same quality (the choice weighs bits against error at the quality's steps) ...
    assert psnr[0] > psnr[1] - 0.3
    # ... and the file is no larger than n = 4's for its PSNR (about 6.5 % of bits per 0.1 dB here).
    assert len(auto) < len(fixed) * (1 + 0.65 * (psnr[0] - psnr[1]))


@pytest.mark.parametrize("settings", [dict(quality=75), dict(quality=20), dict(step=9.0), dict(quality=97)])
def test_round_trip_8_bit(settings):
    data = dctconv.encode(PHOTO, block_size="auto", **settings)
    header = read_header(data)
    assert header.partitioned and header.block_size == 16 and "PART" in {t for t, _, _ in header.section_table}
    decoded = dctconv.decode(data)
    assert decoded.dtype == np.uint8 and decoded.shape == PHOTO.shape
    floor = {75: 34, 20: 28, 97: 45}.get(settings.get("quality"), 33)
    assert peak_signal_noise_ratio(PHOTO, decoded, data_range=255) > floor


@pytest.mark.parametrize("image, settings", [
    (terrain((70, 45), low=236, high=1076, dtype=np.uint16), dict()),  # default bound: 1 % of the range
    (terrain((70, 45), low=236, high=1076, dtype=np.uint16), dict(max_error=0)),
    ((terrain((33, 50), low=0, high=3000, dtype=np.uint16).astype(np.int32) - 1500) * 9000, dict(quality=80)),
    (terrain((40, 33), low=-3.5, high=12.25, dtype=np.float32), dict(max_error=0.05)),
    (with_holes(terrain((40, 33), low=-3.5, high=12.25, dtype=np.float32), count=3, radius=4), dict(quality=70)),
    (with_holes(terrain((40, 33), low=-3.5, high=12.25, dtype=np.float32), count=3, radius=4), dict(max_error=0.2)),
    (PHOTO, dict(max_error=2)),
])
def test_every_pixel_mode_and_bound(image, settings):
    data = dctconv.encode(image, block_size="auto", **settings)
    header = read_header(data)
    decoded = dctconv.decode(data)
    assert decoded.dtype == image.dtype and decoded.shape == image.shape
    nan = np.isnan(image) if image.dtype.kind == "f" else np.zeros(image.shape, bool)
    np.testing.assert_array_equal(np.isnan(decoded) if image.dtype.kind == "f" else nan, nan)
    low, high = header.value_range
    valid = ~nan
    assert np.all(decoded[valid] >= np.float32(low)) and np.all(decoded[valid] <= np.float32(high))
    error = np.abs(decoded[valid].astype(np.float64) - image[valid].astype(np.float64))
    if header.max_error is not None:
        bound = header.max_error if image.dtype.kind == "f" else np.floor(header.max_error)
        assert error.max() <= bound
    else:
        assert peak_signal_noise_ratio(image[valid].astype(np.float64), decoded[valid].astype(np.float64),
                                       data_range=high - low) > 30


def test_decoding_in_bands_gives_the_same_pixels(monkeypatch):
    image = sample_crop(box=(0, 0, 100, 90))
    data = dctconv.encode(image, block_size="auto", quality=80)
    whole = dctconv.decode(data)
    # One band of 16 x 16 regions at a time: bands of 16 pixel rows, the last one of 10.
    monkeypatch.setattr(_core, "BAND_PIXELS", 1)
    assert _core.band_rows(read_header(data)) == 1
    np.testing.assert_array_equal(dctconv.decode(data), whole)


def test_settings_that_need_one_block_size_are_refused():
    for settings, word in [(dict(keep=5), "keep"), (dict(threshold=2.0), "threshold"), (dict(step=0), "step 0")]:
        with pytest.raises(InvalidCompressionError, match=word):
            dctconv.encode(PHOTO, block_size="auto", **settings)


def test_command_line(tmp_path):
    source = tmp_path / "photo.png"
    from PIL import Image

    Image.fromarray(PHOTO).save(source)
    result = CliRunner().invoke(cli, ["compress", str(source), "-o", str(tmp_path / "out"), "--block-size", "auto"])
    assert result.exit_code == 0, result.output
    assert " auto " in result.output
    written = tmp_path / "out" / "photo_compressed.dctz"
    assert read_header(written.read_bytes()).partitioned
    result = CliRunner().invoke(cli, ["verify", str(written), str(source)])
    assert result.exit_code == 0 and "chosen per region" in result.output, result.output
    for args, word in [(["transform", str(source), "--block-size", "auto"], "transform takes one block size"),
                       (["compress", str(source), "-n", "auto", "--keep", "3"], "--keep"),
                       (["compress", str(source), "-n", "auto", "--threshold", "3"], "--threshold"),
                       (["compress", str(source), "-n", "auto", "--sweep"], "--sweep")]:
        result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "refused")])
        assert result.exit_code == 2 and word in result.output, result.output
        assert sum(line.startswith("Error") for line in result.output.splitlines()) == 1


def _sections(data):
    header = read_header(data)
    return header, {tag: section(data, header, tag) for tag, _, _ in header.section_table}


def test_a_partition_flag_without_its_section_or_a_section_without_the_flag_is_refused():
    data = dctconv.encode(PHOTO, block_size="auto", quality=50)
    header, parts = _sections(data)
    with pytest.raises(CodecFileError, match="PART and ADPT are not both there"):
        dctconv.decode(pack(header, {"ADPT": parts["ADPT"]}))
    from dataclasses import replace

    fixed = read_header(dctconv.encode(PHOTO, block_size=16, quality=50))
    with pytest.raises(CodecFileError, match="section PART holds a partition"):
        dctconv.decode(pack(replace(fixed, partitioned=False), parts))


def test_hostile_partitions_and_passes_give_one_line_in_bounded_memory():
    data = dctconv.encode(PHOTO, block_size="auto", quality=50)
    header, parts = _sections(data)
    rng = np.random.default_rng(11)
    outcomes = {"decoded": 0, "refused": 0}
    tracemalloc.start()
    try:
        for trial in range(120):
            tag = ("PART", "ADPT")[trial % 2]
            payload = bytearray(parts[tag])
            kind = rng.integers(0, 4)
            if kind == 0 and payload:
                payload[rng.integers(0, len(payload))] ^= 1 << int(rng.integers(0, 8))
            elif kind == 1:
                del payload[rng.integers(0, len(payload) + 1):]
            elif kind == 2:
                payload += rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
            else:
                payload = bytearray(rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes())
            # Resealed: the checksums match, so the decoder itself meets the damage.
            hostile = pack(header, {**parts, tag: bytes(payload)})
            try:
                pixels = dctconv.decode(hostile)
            except CodecFileError as exc:
                message = str(exc)
                assert "\n" not in message and message.startswith(
                    ("section PART", "section ADPT", "ADPT section", "reconstruction offsets", "decoded pixels"))
                outcomes["refused"] += 1
            else:
                assert pixels.shape == PHOTO.shape and pixels.dtype == np.uint8
                outcomes["decoded"] += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert outcomes["refused"] > 60


def test_the_summary_draws_the_blocks_over_the_reconstruction():
    from dctconv.measure._summary import PARTITION_COLOUR, _with_partition, panel_scale

    # 32 x 48 pixels: the top left region one 16 x 16 block, the top middle one four 8 x 8, the top
    # right one 8 x 8 quadrants but the top left one four 4 x 4 blocks; the bottom row 16 x 16 blocks.
    sizes = np.full((8, 12), 16)
    sizes[:4, 4:8] = 8
    sizes[:4, 8:] = 8
    sizes[:2, 8:10] = 4
    blocks = [(0, 0, 16), (16, 0, 16), (16, 16, 16), (16, 32, 16), (0, 16, 8), (0, 24, 8), (8, 16, 8),
              (8, 24, 8), (8, 32, 8), (8, 40, 8), (0, 40, 8), (0, 32, 4), (0, 36, 4), (4, 32, 4), (4, 36, 4)]
    top, left = np.zeros((32, 48), bool), np.zeros((32, 48), bool)
    for y, x, side in blocks:
        top[y, x : x + side] = True
        left[y : y + side, x] = True
    k, (rows, cols) = panel_scale((32, 48))
    drawn = _with_partition(np.full((rows, cols, 3), 128, np.uint8), sizes, (32, 48), 1)
    orange = np.all(np.abs(drawn.astype(int) - np.rint(0.15 * 128 + 0.85 * np.array(PARTITION_COLOUR))) <= 1, axis=2)
    # An edge is one panel pixel wide: the first of the k panel rows (columns) of its image row (column).
    first_row = (np.arange(rows) % k == 0)[:, None]
    first_col = (np.arange(cols) % k == 0)[None, :]
    expected = (top.repeat(k, 0).repeat(k, 1) & first_row) | (left.repeat(k, 0).repeat(k, 1) & first_col)
    np.testing.assert_array_equal(orange, expected)
    assert np.all(drawn[~expected] == 128)


def test_the_maps_picture_has_a_partition_panel():
    from dctconv.measure._mosaics import maps_picture

    sizes = np.full((8, 12), 16)
    sizes[:4, 4:8] = 8
    sizes[:2, 8:10] = 4
    maps = np.zeros((256, 2, 3))
    from dctconv.measure._mosaics import _labeled_maps

    labeled = _labeled_maps(maps, None, None, True)[0]  # the mosaic with its labels and caption
    drawn = maps_picture(maps, partition=sizes)
    height, width = labeled.shape
    np.testing.assert_array_equal(drawn[:height, :width], labeled)
    assert drawn.shape[1] > width + 16  # the panel right of it
    assert np.all(drawn[:, width : width + 16] == 255)
    scale = max(1, (height - 16) // 8)
    squares = drawn[:, width + 16 : width + 16 + 12 * scale]
    rows = squares[(drawn.shape[0] - 8 * scale) // 2 :: scale][:8, ::scale]
    expected = np.where(sizes == 16, 235, np.where(sizes == 8, 150, 55))
    np.testing.assert_array_equal(rows, expected)
