"""The summary picture, drawn with Pillow: its panels hold the images, its colours are matplotlib's.

References: matplotlib's colour maps and Normalize (the picture was matplotlib's; its
colours are tabulated in the code), the images enlarged with ``np.kron``, and the
panels found in the picture by search, not by the code's layout.
"""

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import Normalize

from dctconv.measure import _summary as summary


@pytest.mark.parametrize("name", ["inferno", "Blues"])
def test_colour_tables_are_matplotlibs(name):
    ours = summary.inferno() if name == "inferno" else summary.blues()
    theirs = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255
    assert ours.shape == (256, 3)
    assert np.abs(ours - theirs).max() <= 0.5 + 1e-9  # rounded to 8 bits


def test_values_are_coloured_as_matplotlib_maps_them(rng):
    values = np.concatenate([rng.uniform(-2, 9, 500), [0.0, 7.0, -1.0, 8.5]])
    ours = summary.colored(values, summary.inferno(), 0.0, 7.0).astype(int)
    theirs = matplotlib.colormaps["inferno"](Normalize(0.0, 7.0)(values), bytes=True)[:, :3].astype(int)
    # matplotlib truncates its table to 8 bits where ours is rounded: one level at most.
    assert np.abs(ours - theirs).max() <= 1
    gray = summary.colored(np.arange(256), summary.gray(), 0, 255)
    assert (gray == np.arange(256)[:, None]).all()  # 8-bit pixels shown as they are


def find(picture, panel, *, tolerance=0):
    """(top, left) of every place where ``panel`` (RGB) sits in ``picture``, within ``tolerance`` per channel."""
    rows, cols = panel.shape[:2]
    height, width = picture.shape[0] - rows + 1, picture.shape[1] - cols + 1
    if height <= 0 or width <= 0:
        return []
    picture, panel = picture.astype(np.int16), panel.astype(np.int16)
    # Candidates first: the corners, the middle and a few more pixels of the panel match.
    possible = np.ones((height, width), bool)
    for i, j in [(0, 0), (0, cols - 1), (rows - 1, 0), (rows - 1, cols - 1), (rows // 2, cols // 2),
                 (rows // 3, cols // 5), (2 * rows // 3, 3 * cols // 4)]:
        possible &= np.abs(picture[i : i + height, j : j + width] - panel[i, j]).max(axis=-1) <= tolerance
    return [(int(top), int(left)) for top, left in np.argwhere(possible)
            if np.abs(picture[top : top + rows, left : left + cols] - panel).max() <= tolerance]


def example(rng, shape, spread):
    original = rng.integers(30, 220, shape).astype(np.uint8)
    reconstruction = np.clip(original.astype(int) + rng.integers(-spread, spread + 1, shape), 0, 255).astype(np.uint8)
    return original, reconstruction


def draw(original, reconstruction, *, error_scale, share=True, n=4, **options):
    rng = np.random.default_rng(1)
    return summary.summary_picture(
        original, reconstruction, channel_mask=np.arange(n * n) < n * n - 2, error_scale=error_scale,
        value_range=(0, 255), title="a.png: PSNR 40.00 dB", subtitle="4×4 blocks, quality 75",
        channel_share=rng.random(n * n) if share else None, **options)


@pytest.mark.parametrize(("shape", "stacked"), [((64, 64), False), ((30, 100), True), ((45, 37), False)])
def test_panels_hold_the_images_enlarged_and_the_error_in_inferno(shape, stacked, rng):
    original, reconstruction = example(rng, shape, 6)
    white = 5.0
    picture = draw(original, reconstruction, error_scale=255 / white)
    assert picture.dtype == np.uint8 and picture.ndim == 3
    k = summary.PANEL // max(shape)  # each pixel a k x k square
    assert k > 1

    def enlarged(pixels):
        return np.kron(pixels, np.ones((k, k), pixels.dtype))

    places = []
    for image in (original, reconstruction):
        gray = np.repeat(enlarged(image)[..., None], 3, axis=2)
        found = find(picture, gray)
        assert len(found) == 1, found
        places.append(found[0])
    error = np.abs(original.astype(float) - reconstruction)
    colours = matplotlib.colormaps["inferno"](Normalize(0, white)(enlarged(error)), bytes=True)[..., :3]
    found = find(picture, colours, tolerance=1)
    assert len(found) == 1
    places.append(found[0])
    tops, lefts = zip(*places)
    if stacked:  # one above the other, in that order
        assert len(set(lefts)) == 1 and tops[0] < tops[1] < tops[2]
    else:  # side by side
        assert len(set(tops)) == 1 and lefts[0] < lefts[1] < lefts[2]


def test_texts_name_every_part(rng, monkeypatch):
    drawn, turned = [], []
    real_text, real_turned = summary._Drawing.text, summary._Drawing.turned_text

    def text(self, x, y, content, size, **options):
        drawn.append(content)
        return real_text(self, x, y, content, size, **options)

    def turned_text(self, x, y, content, size):
        turned.append(content)
        return real_turned(self, x, y, content, size)

    monkeypatch.setattr(summary._Drawing, "text", text)
    monkeypatch.setattr(summary._Drawing, "turned_text", turned_text)
    original, reconstruction = example(rng, (40, 40), 6)
    draw(original, reconstruction, error_scale=255 / 63.8)
    for expected in ("a.png: PSNR 40.00 dB", "4×4 blocks, quality 75", "original", "reconstruction",
                     "(black 0, white 255)", "|original − reconstruction|", "nonzero frequencies",
                     "(share of blocks where each is nonzero)", "column frequency y", "(numbers: zigzag order)",
                     "share of blocks", "0.0", "1.0", *(str(k) for k in range(1, 17))):
        assert expected in drawn, expected
    # The error bar's ticks: round values up to the white point.
    assert {"0", "20", "40", "60"} <= set(drawn) and "80" not in drawn
    assert turned == ["error (pixel values)", "row frequency x"]
    drawn.clear()
    draw(original, reconstruction, error_scale=255 / 63.8, share=False)
    assert "kept frequencies: 14 of 16" in drawn


def test_the_arrow_shows_errors_above_the_white_point(rng):
    original, reconstruction = example(rng, (32, 32), 3)
    top_colour = matplotlib.colormaps["inferno"](1.0, bytes=True)[:3]

    def top_coloured_outside_the_error_panel(white):
        picture = draw(original, reconstruction, error_scale=255 / white)
        error = np.abs(original.astype(float) - reconstruction)
        k = summary.PANEL // 32
        colours = summary.colored(np.kron(error, np.ones((k, k))), summary.inferno(), 0, white)
        (top, left), = find(picture, colours)
        picture = picture.copy()
        picture[top : top + colours.shape[0], left : left + colours.shape[1]] = 0
        # The bar's own top end is that colour too: count well beyond its few rows.
        return int((np.abs(picture.astype(int) - top_colour).max(axis=-1) <= 1).sum())

    largest = np.abs(original.astype(float) - reconstruction).max()
    without, with_arrow = top_coloured_outside_the_error_panel(largest), top_coloured_outside_the_error_panel(largest / 2)
    assert with_arrow > without + 40


def test_a_large_image_is_averaged_into_its_panel(rng):
    # 1000 x 1000: no whole-factor pooling (1000 < 2 x 420), averaged down to 420 x 420
    # in value before it is coloured; a constant image stays that constant.
    image = np.full((1000, 1000), 77, np.uint8)
    picture = draw(image, image, error_scale=255.0, n=8)
    assert len(find(picture, np.full((summary.PANEL, summary.PANEL, 3), 77, np.uint8))) == 2


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float32])
@pytest.mark.parametrize("factor", [1, 2, 3, 7])
def test_mean_pool_is_scikit_images_block_mean(dtype, factor, rng):
    # Integer pixels are summed as integers (whole sums below 2**53): the same float64 means as
    # scikit-image's block_reduce with np.mean over the whole squares (partial ones cut).
    from skimage.measure import block_reduce

    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    high = 1.0 if info is None else info.max
    image = (rng.random((45, 52)) * high).astype(dtype)
    rows, cols = 45 // factor * factor, 52 // factor * factor
    expected = block_reduce(image[:rows, :cols].astype(np.float64), (factor, factor), np.mean)
    pooled = summary.mean_pool(image, factor)
    assert pooled.dtype == np.float64
    assert np.array_equal(pooled, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_the_error_panel_is_the_mean_absolute_error_of_each_square(dtype, rng):
    high = 255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1.0
    image = (rng.random((90, 61)) * high).astype(dtype)
    other = (rng.random((90, 61)) * high).astype(dtype)
    error = np.abs(image.astype(np.float64) - other.astype(np.float64))
    shown, largest = summary._shown_error(image, other, 3)
    from skimage.measure import block_reduce

    assert np.array_equal(shown, block_reduce(error[:90, :60], (3, 3), np.mean))
    assert largest == error.max()
