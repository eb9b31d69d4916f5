"""The summary picture: images much larger than their panel are averaged down first.

References: block means written here as a literal numpy reshape (the code uses
scikit-image's ``block_reduce``), and plain numpy on the full-size error.
"""

import numpy as np
import pytest
from PIL import Image

from references import tolerance
from dctconv.measure import _figures as figures
from dctconv.measure import _summary as plots
from dctconv.measure import _summary as summary


@pytest.mark.parametrize(
    ("shape", "panel", "factor"),
    [
        ((1024, 1024), 462, 1),  # 1024 < 2 * 462: shown as it is
        ((4096, 4096), 462, 4),  # 4096 // 924 = 4: 1024 x 1024 reach matplotlib
        ((600, 5000), 880, 2),  # the longer side counts: 5000 // 1760 = 2
        ((3, 7), 462, 1),
    ],
)
def test_pool_factor(shape, panel, factor):
    assert plots.pool_factor(shape, panel) == factor


def block_means(picture, factor):
    """Means of whole factor x factor squares; the last partial rows and columns dropped."""
    rows, cols = picture.shape[0] // factor, picture.shape[1] // factor
    squares = picture[: rows * factor, : cols * factor].astype(np.float64).reshape(rows, factor, cols, factor)
    return squares.sum(axis=(1, 3)) / factor**2


@pytest.mark.parametrize("factor", [1, 2, 3, 5, 53])
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_mean_pool_is_the_mean_of_whole_squares(factor, dtype):
    rng = np.random.default_rng(factor)
    picture = (rng.random((53, 41)) * 255).astype(dtype)
    got = plots.mean_pool(picture, factor)
    assert got.dtype == np.float64
    assert got.shape == (53 // factor, 41 // factor)
    np.testing.assert_allclose(got, block_means(picture, factor), rtol=0, atol=tolerance(np.float64, 255))
    # Partial squares are dropped, not padded with zeros: the mean of a constant stays the constant.
    assert (plots.mean_pool(np.full((7, 7), 9, np.uint8), 2) == 9).all()


@pytest.mark.parametrize(("height", "factor"), [(1203, 3), (700, 1), (2050, 4)])
def test_shown_error_is_the_pooled_full_size_error_computed_in_bands(height, factor):
    # Heights that are not multiples of the 512-row band or of the factor.
    rng = np.random.default_rng(height)
    original = rng.integers(0, 256, (height, 37), dtype=np.uint8)
    reconstruction = rng.integers(0, 256, (height, 37), dtype=np.uint8)
    # The largest error sits in the last row, which pooling drops when the factor does
    # not divide the height: the colorbar arrow must still see it.
    original[-1, 0], reconstruction[-1, 0] = 255, 0
    error = np.abs(original.astype(np.float64) - reconstruction)
    rows = height // factor * factor
    shown, largest = plots._shown_error(original, reconstruction, factor)
    assert shown.shape == (rows // factor, 37 // factor)
    np.testing.assert_allclose(shown, block_means(error, factor), rtol=0, atol=tolerance(np.float64, 255))
    assert largest == 255.0


def test_summary_of_a_large_image_has_the_size_of_a_small_one(tmp_path):
    # A panel's size depends on the image's size only below PANEL pixels: 600 is averaged
    # down to 420 pixels, 2000 pooled by 2 first.
    sizes = []
    for side in (600, 2000):
        image = np.tile(np.arange(side, dtype=np.uint8), (side, 1))
        path = tmp_path / f"summary_{side}.png"
        plots.save_summary(path, image, image // 2 * 2, channel_mask=np.arange(16) < 3, error_scale=255.0,
                           value_range=(0, 255), title="t")
        with Image.open(path) as im:
            sizes.append(im.size)
    assert sizes[0] == sizes[1]


def captured_figures(monkeypatch):
    """The matplotlib figures the module draws, kept instead of turned into pixels."""
    kept = []

    def keep(fig):
        kept.append(fig)
        return np.zeros((2, 2, 3), np.uint8)

    monkeypatch.setattr(figures, "_pixels", keep)
    return kept


def drawn_labels(fig):
    """Each axis's text labels and their boxes on the drawn page."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    return [[(text.get_text(), text.get_window_extent(renderer)) for text in ax.texts] for ax in fig.axes]


def test_sweep_labels_of_coinciding_points_are_merged_and_none_overlap(tmp_path, monkeypatch):
    kept = captured_figures(monkeypatch)
    rows = []
    # The zonal curve of a quality-quantized file: from K = 4 on, every K gives the same file.
    for keep in range(1, 17):
        bpp, psnr = (0.2 * keep, 20 + 3 * keep) if keep < 4 else (0.8, 32.0)
        rows.append(dict(method="zonal", keep=keep, quality=75, bits_per_pixel=bpp, psnr_db=psnr, ssim=psnr / 50))
    # dctconv and JPEG curves whose lowest qualities give the same file.
    for method in ("dctconv", "jpeg"):
        for quality in range(5, 100, 5):
            bpp, psnr = (0.1, 24.0) if quality <= 25 else (0.1 + quality / 50, 20 + quality / 3)
            rows.append(dict(method=method, keep=None, quality=quality, bits_per_pixel=bpp, psnr_db=psnr,
                             ssim=psnr / 50))
    figures.save_sweep(tmp_path / "sweep.png", rows, title="t")
    for labels in drawn_labels(kept[0]):
        texts = [text for text, _ in labels]
        assert "K4–K16" in texts and not {"K8", "K12", "K16"} & set(texts)
        assert "q10–q25" in texts or "q5–q25" in texts
        for i, (first, box) in enumerate(labels):
            for second, other in labels[i + 1:]:
                assert not box.overlaps(other), (first, second)


def test_sweep_notes_are_written_under_the_title(tmp_path, monkeypatch):
    kept = captured_figures(monkeypatch)
    rows = [dict(method="dctconv", keep=None, quality=q, bits_per_pixel=q / 50, psnr_db=20 + q / 3, ssim=None)
            for q in (25, 50)]
    figures.save_sweep(tmp_path / "sweep.png", rows, title="t", notes=["Note: the source is itself a JPEG file"])
    assert kept[0]._suptitle.get_text().splitlines() == ["t", "Note: the source is itself a JPEG file"]



@pytest.mark.parametrize(("rgb", "name"), [((255, 255, 255), "white"), ((0, 0, 4), "black"), ((128, 128, 128), "gray"),
                                           ((252, 255, 164), "yellow"), ((8, 48, 107), "blue")])
def test_colour_name(rgb, name):
    assert summary.colour_name(rgb) == name


def titles(error_scale):
    from types import SimpleNamespace

    header = SimpleNamespace(block_size=4, quantization="quality", quality=75, threshold=0.0, keep=16, max_error=None)
    quality = SimpleNamespace(psnr_db=40.0, ssim=0.99, max_abs_error=3.0)
    return figures.summary_titles("x.png", header, quality, compressed_bytes=100, bits_per_pixel=0.2,
                                  error_scale=error_scale, nonzero_fraction=0.1)


def test_the_summary_names_the_colour_its_error_map_has_at_the_white_point(monkeypatch):
    import matplotlib

    # The error panel is drawn in inferno (tests/measure/test_summary.py); its top is pale yellow.
    top = matplotlib.colormaps["inferno"](1.0, bytes=True)[:3]
    assert np.abs(summary.ERROR_COLOURS()[-1].astype(int) - top).max() <= 1  # the table rounds to 8 bits
    assert titles(255 / 3)[1].endswith("error map yellow = 3")
    # The word follows the colours drawn: a gray map would be white at the top.
    monkeypatch.setattr(summary, "ERROR_COLOURS", summary.gray)
    assert titles(255 / 3)[1].endswith("error map white = 3")
