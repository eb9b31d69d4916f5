"""dctconv.runtime._jobs: one compressed image's report is its metrics file, key for key."""

import json

import numpy as np
from PIL import Image

from dctconv import transform
from dctconv.runtime._jobs import compress_file


def test_the_report_is_the_metrics_file(tmp_path):
    ramp = (np.add.outer(np.arange(24), np.arange(40)) * 3).astype(np.uint8)
    source = tmp_path / "ramp.png"
    Image.fromarray(ramp).save(source)
    result = compress_file(source, tmp_path / "out", block_size=4, keep=3, step=2.0, sweep=True)
    report = result.report
    written = json.loads((tmp_path / "out" / "ramp_metrics.json").read_text())
    assert report.as_dict() == written
    assert list(written)[:4] == ["source", "image_mode", "width", "height"]
    assert (report.width, report.height, report.kept_per_block, report.step, report.quality) == (
        40, 24, 3, 2.0, None)
    assert report.bd_rates.keys() == written["bd_rates"].keys() and "zonal" in report.bd_rates
    assert report.compressed_bytes == (tmp_path / "out" / "ramp_compressed.dctz").stat().st_size
    assert report.bits_per_pixel == 8 * report.compressed_bytes / ramp.size
    assert sorted(report.files.values()) == sorted(p.name for p in result.outputs)


def test_outputs_are_the_same_with_and_without_the_second_thread(tmp_path, monkeypatch):
    """With two CPUs compress encodes the reconstruction and the pictures on a second
    thread; with one (each --jobs worker's share) in place. The files are the same."""
    rng = np.random.default_rng(5)
    image = np.clip(np.add.outer(np.arange(70), np.arange(90)) + rng.normal(0, 9, (70, 90)), 0, 255)
    source = tmp_path / "noisy.png"
    Image.fromarray(image.astype(np.uint8)).save(source)
    written = {}
    for workers in (1, 2):
        monkeypatch.setattr(transform, "DEFAULT_WORKERS", workers)
        result = compress_file(source, tmp_path / f"out{workers}")
        written[workers] = {p.name: p.read_bytes() for p in result.outputs}
    assert sorted(written[1]) == sorted(written[2]) and len(written[1]) == 6
    for name, content in written[1].items():
        assert content == written[2][name], name
