"""Tests of dctconv.verify._files: a coefficient file checked against its image finds
every change of the image or the file, and says where."""

from __future__ import annotations

import numpy as np
import pytest
from references import reference_blockwise_dct, tolerance

from dctconv.verify import _files as v
from _helpers import write_legacy_compressed
from dctconv.io._npz import CoefficientHeader, save_coefficients
from dctconv.errors import CoefficientFileError, ImageMismatchError
from dctconv.transform import forward


def random_image(rng, shape=(40, 56)):
    return 255 * rng.random(shape)


# ---------------------------------------------------------------- a file against its image


def transform_file(tmp_path, image, n=4, dtype=np.float64):
    path = tmp_path / "c.npz"
    save_coefficients(path, forward(image.astype(dtype), n), CoefficientHeader(n, image.shape, "F"))
    return path


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_verify_file_passes_on_its_image(tmp_path, rng, dtype):
    image = random_image(rng, (37, 23))
    found = v.verify_file(transform_file(tmp_path, image, dtype=dtype), image)
    assert found.check.passed and found.kind == "transform"
    assert found.compared == 16 * 10 * 6


@pytest.mark.parametrize("kind", ["transform", "compressed"])
def test_verify_file_of_a_float32_image_in_float64(tmp_path, rng, kind):
    """Found by the fuzz test: dctconv transform (and compress) store float64 coefficients of
    float32 (F) images, but verify recomputed them in float32, 1e-7 off, and said FAILED."""
    image = random_image(rng, (13, 10)).astype(np.float32) / 255
    exact = reference_blockwise_dct(image, 4)  # scipy, in float64
    path = tmp_path / "c.npz"
    if kind == "transform":
        save_coefficients(path, exact, CoefficientHeader(4, image.shape, "F"))
    else:
        mask = np.zeros(16, bool)
        mask[[0, 1, 4]] = True
        # A step far below float32's precision: only a float64 reference is within step/2.
        write_legacy_compressed(path, np.rint(exact[mask] / 1e-9).astype(np.int64), mask, block_size=4,
                                image_shape=image.shape, image_mode="F", step=1e-9)
    found = v.verify_file(path, image)
    assert found.check.passed, found.reason
    step = 1e-9 if kind == "compressed" else 0.0
    assert found.check.max_error <= step / 2 + tolerance(np.float64, 4)


def test_verify_file_locates_a_changed_block(tmp_path, rng):
    image = random_image(rng)
    path = transform_file(tmp_path, image)
    changed = image.copy()
    changed[8:12, 20:24] += rng.standard_normal((4, 4))
    found = v.verify_file(path, changed, image_name="changed")
    assert not found.check.passed
    # expected: the DCT of the change, from scipy block by block
    delta = reference_blockwise_dct(changed - image, 4)[:, 2, 5].reshape(4, 4)
    x, y = np.unravel_index(np.argmax(np.abs(delta)), delta.shape)
    assert (found.location.block_row, found.location.block_column) == (2, 5)
    assert (found.location.x, found.location.y) == (x, y)
    assert abs(found.check.max_error - np.abs(delta).max()) <= tolerance(np.float64, 4 * 255)
    assert found.reason.startswith(f"{path} does not hold the transform of changed: the coefficient at "
                                   f"block row 2, block column 5, frequency ({x}, {y}) differs by")


def test_verify_file_refuses_another_shape(tmp_path, rng):
    image = random_image(rng)
    with pytest.raises(ImageMismatchError, match=r"^the image is 40 x 56 pixels but the file holds "
                                                 r"the transform of a 56 x 40 image$"):
        v.verify_file(transform_file(tmp_path, image), image.T)


def test_verify_file_reports_an_unreadable_file(tmp_path, rng):
    path = tmp_path / "bad.npz"
    path.write_text("not a zip")
    with pytest.raises(CoefficientFileError):
        v.verify_file(path, random_image(rng))


def compressed_file(tmp_path, image, *, n=4, step=2.0, keep=6, threshold=0.0):
    """A compressed file made here as issue 3 specifies: kept channels, zeros below threshold
    (DC kept), rint(c / step) levels."""
    c = reference_blockwise_dct(image, n)
    mask = np.zeros(n * n, bool)
    mask[:keep] = True
    kept = c[mask]
    small = np.abs(kept) < threshold
    small[0] = False
    kept = np.where(small, 0, kept)
    levels = np.rint(kept / step).astype(np.int32)
    path = tmp_path / "c_compressed.npz"
    write_legacy_compressed(path, levels, mask, block_size=n, image_shape=image.shape, image_mode="F", step=step,
                            threshold=threshold)
    return path


def test_verify_compressed_file_passes_within_half_a_step(tmp_path, rng):
    image = random_image(rng)
    found = v.verify_file(compressed_file(tmp_path, image, step=3.0), image)
    assert found.check.passed and found.kind == "compressed"
    assert 1.4 < found.check.max_error <= 1.5 + tolerance(np.float64, 4 * 255)  # up to step/2
    assert found.compared == 6 * 10 * 14


def test_verify_compressed_file_skips_thresholded_zeros(tmp_path, rng):
    image = random_image(rng)
    found = v.verify_file(compressed_file(tmp_path, image, step=1.0, threshold=20.0), image)
    assert found.check.passed and found.skipped > 0
    assert found.compared + found.skipped == 6 * 10 * 14


def test_verify_compressed_file_catches_a_kept_coefficient_wrongly_zeroed(tmp_path, rng):
    image = random_image(rng)
    c = reference_blockwise_dct(image, 4)
    # A kept AC coefficient well above the threshold (20) and step / 2, set to 0 in the file.
    channel = 1
    row, col = np.unravel_index(np.argmax(np.abs(c[channel])), c[channel].shape)
    assert abs(c[channel, row, col]) > 40
    path = compressed_file(tmp_path, image, step=1.0, threshold=20.0)
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    arrays["kept"][channel, row, col] = 0
    np.savez_compressed(path, **arrays)
    found = v.verify_file(path, image)
    assert not found.check.passed
    assert found.location == v.Location(int(row), int(col), 0, 1)


def test_verify_compressed_file_locates_a_changed_block(tmp_path, rng):
    image = random_image(rng)
    path = compressed_file(tmp_path, image, step=1.0)
    changed = image.copy()
    changed[4:8, 0:4] += 5.0  # the DC of block (1, 0) moves by 4 * 5 = 20, far beyond step / 2
    found = v.verify_file(path, changed)
    assert not found.check.passed
    assert found.location == v.Location(1, 0, 0, 0)
    assert abs(found.check.max_error - 20) <= 0.5 + tolerance(np.float64, 4 * 255)
