import numpy as np
import pytest

from dctconv.io._npz import (
    FORMAT_VERSION,
    CoefficientHeader,
    load_coefficients,
    read_coefficient_file,
    save_coefficients,
)
from dctconv.errors import CoefficientFileError
from _helpers import write_legacy_compressed

HEADER = CoefficientHeader(block_size=4, image_shape=(7, 9), image_mode="L", source="x.png")


def write(tmp_path, name="c.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def valid_arrays(rng):
    return {
        "format_version": np.array(FORMAT_VERSION),
        "kind": np.array("transform"),
        "block_size": np.array(4),
        "image_shape": np.array([7, 9]),
        "image_mode": np.array("L"),
        "coefficients": rng.standard_normal((16, 2, 3)),
    }


def test_transform_file_round_trips_exactly(tmp_path, rng):
    coefficients = rng.standard_normal((16, 2, 3))
    path = tmp_path / "c.npz"
    save_coefficients(path, coefficients, HEADER)
    loaded, header = load_coefficients(path)
    np.testing.assert_array_equal(loaded, coefficients)
    assert header == HEADER
    with np.load(path, allow_pickle=False) as archive:
        # The contract of the issue: these keys, readable without dctconv.
        assert {"coefficients", "block_size", "image_shape", "format_version", "image_mode"} <= set(archive.files)
        assert archive["image_shape"].tolist() == [7, 9]


@pytest.mark.parametrize("step, kept_dtype", [(2.0, np.int16), (0.0, np.float64)])
def test_compressed_file_decodes_kept_channels_times_step(tmp_path, rng, step, kept_dtype):
    mask = np.zeros(16, bool)
    mask[[0, 1, 4]] = True
    kept = (rng.standard_normal((3, 2, 3)) * 100).astype(kept_dtype)
    path = write_legacy_compressed(tmp_path / "x_compressed.npz", kept, mask, block_size=4, image_shape=(7, 9),
                                   step=step, source="x.png")
    coefficients, header = load_coefficients(path)
    assert header.kind == "compressed" and header.step == step
    expected = np.zeros((16, 2, 3))
    expected[[0, 1, 4]] = kept * step if step else kept
    np.testing.assert_array_equal(coefficients, expected)


def test_unknown_version_is_refused_with_a_clear_message(tmp_path, rng):
    arrays = valid_arrays(rng) | {"format_version": np.array(99)}
    with pytest.raises(CoefficientFileError, match="format version 99 is not supported"):
        load_coefficients(write(tmp_path, **arrays))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"coefficients": np.zeros((9, 2, 3))}, r"block_size 4 needs 16 coefficient channels \(n\*n\), but the file has 9"),
        ({"block_size": np.array(1)}, "block_size 1 is not from 2 to 64"),
        ({"image_shape": np.array([7])}, "image_shape must be two positive whole numbers, got 7"),
        ({"kind": np.array("jpeg")}, r'unknown kind "jpeg" \(expected one of transform, compressed\)'),
        ({"image_mode": np.array("RGB")}, r'unknown image_mode "RGB" \(expected one of L, I;16, I, F\)'),
        ({"coefficients": np.full((16, 2, 3), np.nan)}, "NaN or infinity"),
        ({"coefficients": np.zeros((16, 2, 3), np.int64)}, "expected float"),
    ],
)
def test_malformed_files_are_refused(tmp_path, rng, change, message):
    with pytest.raises(CoefficientFileError, match=message):
        load_coefficients(write(tmp_path, **(valid_arrays(rng) | change)))


def test_missing_keys_are_named(tmp_path, rng):
    arrays = valid_arrays(rng)
    del arrays["block_size"]
    with pytest.raises(CoefficientFileError, match="missing block_size"):
        load_coefficients(write(tmp_path, **arrays))
    arrays = valid_arrays(rng)
    del arrays["coefficients"]
    with pytest.raises(CoefficientFileError, match="transform file is missing coefficients"):
        load_coefficients(write(tmp_path, **arrays))


def test_object_array_is_refused_without_unpickling(tmp_path, rng):
    arrays = valid_arrays(rng) | {"coefficients": np.array([{"a": 1}, None], dtype=object)}
    path = tmp_path / "p.npz"
    np.savez(path, **arrays)  # savez pickles object arrays; load must refuse them
    with pytest.raises(CoefficientFileError, match="holds pickled Python objects; refused without unpickling it"):
        load_coefficients(path)


def test_not_an_archive(tmp_path):
    path = tmp_path / "x.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CoefficientFileError, match="damaged .npz archive: File is not a zip file"):
        load_coefficients(path)


def test_damaged_archive_leaves_no_file_open(tmp_path):
    """Found by the fuzz test: np.load(path) kept its file open when the zip directory was
    damaged (a ResourceWarning, and one descriptor per bad file until garbage collection)."""
    import gc
    import warnings

    path = tmp_path / "x_coefficients.npz"
    path.write_bytes(b"PK\x03\x04")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CoefficientFileError, match="^damaged .npz archive: "):
            load_coefficients(path)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_read_coefficient_file_gives_the_stored_channels(tmp_path, rng):
    # verify needs to know which maps a compressed file dropped: a zero there is no stored zero.
    mask = np.zeros(16, bool)
    mask[[0, 1, 4]] = True
    kept = rng.integers(-50, 50, (3, 2, 3)).astype(np.int16)
    write_legacy_compressed(tmp_path / "k.npz", kept, mask, block_size=4, image_shape=(7, 9), step=2.0)
    read = read_coefficient_file(tmp_path / "k.npz")
    np.testing.assert_array_equal(read.channel_mask, mask)
    np.testing.assert_array_equal(read.coefficients[mask], 2.0 * kept)
    assert not read.coefficients[~mask].any()
    assert read.header.kind == "compressed"

    save_coefficients(tmp_path / "t.npz", rng.standard_normal((16, 2, 3)), HEADER)
    assert read_coefficient_file(tmp_path / "t.npz").channel_mask.tolist() == [True] * 16


# ---------------------------------------------------------------- layouts (format version 2)


@pytest.mark.parametrize("layout, channel_order", [("channels_last", "frequency"), ("channels_first", "zigzag"),
                                                   ("channels_last", "zigzag")])
def test_a_file_in_another_layout_is_version_2_and_reads_back_as_the_maps(tmp_path, rng, layout, channel_order):
    from test_array_api import JPEG_NATURAL

    maps = rng.standard_normal((64, 2, 3))
    header = CoefficientHeader(block_size=8, image_shape=(9, 17), image_mode="L", layout=layout,
                               channel_order=channel_order)
    save_coefficients(tmp_path / "c.npz", maps, header)
    stored = maps[JPEG_NATURAL] if channel_order == "zigzag" else maps
    stored = np.moveaxis(stored, 0, -1) if layout == "channels_last" else stored
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert int(f["format_version"]) == 2 and str(f["layout"]) == layout
        assert str(f["channel_order"]) == channel_order
        np.testing.assert_array_equal(f["coefficients"], stored)
    loaded, loaded_header = load_coefficients(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded, maps)
    assert (loaded_header.layout, loaded_header.channel_order) == (layout, channel_order)


def test_a_default_file_stays_version_1_without_layout_keys(tmp_path, rng):
    header = CoefficientHeader(block_size=4, image_shape=(7, 9), image_mode="L")
    save_coefficients(tmp_path / "c.npz", rng.standard_normal((16, 2, 3)), header)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert int(f["format_version"]) == 1 and "layout" not in f.files and "channel_order" not in f.files


@pytest.mark.parametrize("change, message", [
    ({"layout": np.array("NHWC")}, "unknown layout"),
    ({"channel_order": np.array("raster")}, "unknown layout"),
    ({"layout": np.array("channels_last")}, r"needs 16 coefficient channels .* the file has 3"),  # stored channels first
])
def test_version_2_layouts_are_checked(tmp_path, rng, change, message):
    arrays = valid_arrays(rng) | {"format_version": np.array(2)} | change
    with pytest.raises(CoefficientFileError, match=message):
        load_coefficients(write(tmp_path, **arrays))
