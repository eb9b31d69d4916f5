"""The zonal ``_compressed.npz`` files of before the codec: read-only, they keep decoding and verifying.

tests/data holds two such files written by the zonal writer at commit 36d2045, the last
that had it, from the crop in codec_v1_source.png: n = 4, K = 6, step 2, threshold 3
(integer levels) and n = 8, K = 10, step 0 (float64 values); beside each, the pixels
``transform --inverse`` gave it then. The expected coefficients are computed here without
dctconv: scipy's dctn per block, the zigzag of hostile.zigzag_mask, numpy's rint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hostile import zigzag_mask
from references import reference_blockwise_dct

from dctconv.cli import cli
from dctconv.io._images import read_image
from dctconv.io._npz import load_coefficients

DATA = Path(__file__).parent.parent / "data"
SOURCE = DATA / "codec_v1_source.png"
FILES = {  # name: (n, K, step, threshold)
    "zonal_n4_keep6_step2_t3": (4, 6, 2.0, 3.0),
    "zonal_n8_keep10_step0": (8, 10, 0.0, 0.0),
}


@pytest.mark.parametrize("name", FILES)
def test_recorded_file_decodes_to_the_quantized_reference_coefficients(name):
    n, keep, step, threshold = FILES[name]
    coefficients, header = load_coefficients(DATA / f"{name}_compressed.npz")
    assert (header.kind, header.block_size, header.step, header.threshold) == ("compressed", n, step, threshold)
    source = read_image(SOURCE)[0]
    reference = reference_blockwise_dct(source, n)
    mask = zigzag_mask(n, keep)
    assert not coefficients[~mask].any()
    kept, got = reference[mask], coefficients[mask]
    if step == 0:
        np.testing.assert_allclose(got, kept, rtol=0, atol=1e-9)
        return
    small = np.abs(kept) < threshold
    small[0] = False  # DC is never thresholded
    expected = np.where(small, 0.0, np.rint(kept / step) * step)
    # A value within rounding noise of a tie (half a step, or the threshold) may fall either way
    ratio = kept / step
    borderline = (np.abs(np.abs(ratio - np.floor(ratio)) - 0.5) < 1e-9) | (np.abs(np.abs(kept) - threshold) < 1e-9)
    assert np.array_equal(got[~borderline], expected[~borderline])
    # there: zeroed by the threshold, or rounded to a neighbouring level.
    assert np.all((got == 0) | (np.abs(got - kept) <= step))
    assert small.sum() > 0 and borderline.mean() < 0.2


@pytest.mark.parametrize("name", FILES)
def test_recorded_file_decodes_and_verifies_on_the_command_line(tmp_path, name):
    path = DATA / f"{name}_compressed.npz"
    result = CliRunner().invoke(cli, ["transform", "--inverse", str(path), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    decoded = read_image(tmp_path / f"{name}_reconstruction.png")[0]
    assert np.array_equal(decoded, read_image(DATA / f"{name}.png")[0])
    result = CliRunner().invoke(cli, ["verify", str(path), str(SOURCE)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(f"OK: {path} holds the compression of {SOURCE}")
