"""--no-pictures and --skip-existing: the batch options of transform and compress."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from _helpers import output_names, temporary_of_a_process, write_images
from dctconv.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def names(folder: Path) -> list[str]:
    """The outputs in ``folder``, the hidden records of --skip-existing left out."""
    return output_names(folder)


def test_transform_without_pictures_writes_the_same_coefficient_files_only(tmp_path):
    images = write_images(tmp_path / "in", 2)
    assert invoke("transform", *images, "-o", tmp_path / "all").exit_code == 0
    result = invoke("transform", *images, "-o", tmp_path / "data", "--no-pictures")
    assert result.exit_code == 0, result.output
    assert names(tmp_path / "data") == ["im0_coefficients.npz", "im1_coefficients.npz"]
    assert names(tmp_path / "all") == ["im0_coefficients.npz", "im0_maps.png", "im1_coefficients.npz", "im1_maps.png"]
    for name in names(tmp_path / "data"):
        assert (tmp_path / "data" / name).read_bytes() == (tmp_path / "all" / name).read_bytes()


def test_compress_without_pictures_writes_the_same_data_only(tmp_path):
    images = write_images(tmp_path / "in", 2)
    assert invoke("compress", *images, "-o", tmp_path / "all").exit_code == 0
    result = invoke("compress", *images, "-o", tmp_path / "data", "--no-pictures")
    assert result.exit_code == 0, result.output
    kinds = ["compressed.dctz", "metrics.json", "reconstruction.png"]
    assert names(tmp_path / "data") == sorted(f"im{k}_{kind}" for k in range(2) for kind in kinds)
    for name in names(tmp_path / "data"):
        data, full = tmp_path / "data" / name, tmp_path / "all" / name
        if name.endswith("_metrics.json"):
            a, b = json.loads(data.read_text()), json.loads(full.read_text())
            # Every number is the same; only the list of files differs.
            assert a.pop("files") == {"compressed": name.replace("metrics.json", "compressed.dctz"),
                                      "reconstruction": name.replace("metrics.json", "reconstruction.png"),
                                      "metrics": name}
            assert set(b.pop("files")) == {"compressed", "reconstruction", "error", "maps", "summary", "metrics"}
            assert a == b
        else:
            assert data.read_bytes() == full.read_bytes(), name


@pytest.mark.parametrize("command", [
    ["transform", "--no-pictures"],
    ["compress", "--no-pictures"],
])
def test_no_pictures_never_imports_matplotlib(tmp_path, command):
    image = write_images(tmp_path / "in", 1)[0]
    code = (
        "import sys\n"
        "from dctconv.cli import cli\n"
        f"cli.main({[*command, str(image), '-o', str(tmp_path / 'out'), '--jobs', '1']!r}, standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    written = names(tmp_path / "out")
    if command[0] == "transform":
        assert written == ["im0_coefficients.npz"]
    else:  # (--sweep imports matplotlib all the same: the bjontegaard package does, for its BD-rates)
        assert written == ["im0_compressed.dctz", "im0_metrics.json", "im0_reconstruction.png"]


def skip_note(skipped: int, of: int) -> str:
    return (f"Note: skipped {skipped} of {of} inputs whose outputs are there, whole, and made from the same "
            "content with the same settings (--skip-existing)")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_transform_skip_existing_does_only_what_is_left(tmp_path, jobs):
    images = write_images(tmp_path / "in", 4)
    out = tmp_path / "out"
    assert invoke("transform", *images[:2], "-o", out).exit_code == 0  # an interrupted batch
    written = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}  # records included
    result = invoke("transform", *images, "-o", out, "--skip-existing", "--jobs", jobs, "--json")
    assert result.exit_code == 0, result.output
    assert skip_note(2, 4) in result.output
    report = json.loads(result.stdout)
    assert [Path(f["input"]).name for f in report["files"]] == ["im2.png", "im3.png"]
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name in written} == written
    assert len(names(out)) == 8

    # An input changed after its outputs, or one output missing: done again.
    Image.fromarray(np.full((20, 28), 9, np.uint8)).save(images[0])
    (out / "im3_maps.png").unlink()
    result = invoke("transform", *images, "-o", out, "--skip-existing", "--jobs", jobs, "--json")
    assert result.exit_code == 0, result.output
    assert skip_note(2, 4) in result.output
    assert sorted(Path(f["input"]).name for f in json.loads(result.stdout)["files"]) == ["im0.png", "im3.png"]

    # Without pictures is another setting: done again, and then skipped.
    result = invoke("transform", *images, "-o", out, "--skip-existing", "--no-pictures")
    assert result.exit_code == 0 and "Note: skipped" not in result.output
    assert result.stdout.count("->") == 4
    result = invoke("transform", *images, "-o", out, "--skip-existing", "--no-pictures")
    assert result.exit_code == 0 and skip_note(4, 4) in result.output
    assert "->" not in result.stdout


def test_transform_inverse_skip_existing(tmp_path):
    images = write_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    assert invoke("transform", *images, "-o", out, "--no-pictures").exit_code == 0
    files = sorted(out.glob("*_coefficients.npz"))
    assert invoke("transform", "--inverse", files[0], "-o", out).exit_code == 0
    result = invoke("transform", "--inverse", *files, "-o", out, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert skip_note(1, 2) in result.output
    assert "im1_coefficients.npz -> " in result.output and "im0_coefficients.npz -> " not in result.output


def test_compress_skip_existing_counts_the_set_it_would_write(tmp_path):
    images = write_images(tmp_path / "in", 3)
    out = tmp_path / "out"
    assert invoke("compress", images[0], images[1], "-o", out, "--no-pictures").exit_code == 0
    # Without pictures the data outputs of im0 and im1 are complete ...
    result = invoke("compress", tmp_path / "in", "-o", out, "--no-pictures", "--skip-existing", "--json")
    assert result.exit_code == 0, result.output
    assert skip_note(2, 3) in result.output
    assert [Path(m["input"]).name for m in json.loads(result.stdout)["files"]] == ["im2.png"]
    # ... but not the set with pictures, nor with the sweep.
    result = invoke("compress", tmp_path / "in", "-o", out, "--skip-existing", "--json")
    assert result.exit_code == 0 and "Note: skipped" not in result.output
    assert len(json.loads(result.stdout)["files"]) == 3
    # (The sweep is a setting too: checked on the record, without running a sweep.)
    from dctconv.runtime._records import settings_of, up_to_date

    options = dict(block_size=4, quality=None, step=None, keep=None, threshold=0.0, data_range=None,
                   max_error=None, sweep=False, pictures=True)
    check = dict(out_dir=out, stem="im0", command="compress")
    assert up_to_date(images[0], **check, settings=settings_of("compress", options))
    assert not up_to_date(images[0], **check, settings=settings_of("compress", {**options, "sweep": True}))
    result = invoke("compress", tmp_path / "in", "-o", out, "--skip-existing")
    assert result.exit_code == 0 and skip_note(3, 3) in result.output


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_here_removes_the_temporaries_of_killed_processes_and_only_those(tmp_path, jobs):
    # A SIGKILLed run (or --jobs worker) leaves its hidden temporary; only cluster runs removed them.
    images = write_images(tmp_path / "in", 2)
    out = tmp_path / "out"
    out.mkdir()
    stale, _ = temporary_of_a_process(out, killed=True)
    live, writer = temporary_of_a_process(out, killed=False)  # another run, writing there now
    backup = out / ".dctconv-ab12cd34.old"  # an output's only copy, perhaps
    backup.write_bytes(b"kept")
    try:
        result = invoke("transform", *images, "-o", out, "--no-pictures", "--jobs", jobs)
    finally:
        writer.kill()
        writer.wait()
    assert result.exit_code == 0, result.output
    assert not stale.exists()
    assert live.exists() and backup.exists()
    assert [name for name in names(out) if not name.startswith(".dctconv-")] == [
        "im0_coefficients.npz", "im1_coefficients.npz"]
