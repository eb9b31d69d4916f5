"""--jobs: files processed in worker processes give the same output as one process.

Each --jobs N > 1 run starts a process pool (about a second on a busy machine), so
the runs are shared by the tests through a module-scoped fixture.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from references import SAMPLES, SAMPLE_NAMES
from _helpers import output_names
from dctconv.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Forward then inverse of the samples and one unreadable file, with --jobs 1 and --jobs 3."""
    root = tmp_path_factory.mktemp("jobs")
    bad = root / "not_an_image.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    inputs = [SAMPLES / name for name in SAMPLE_NAMES]
    outcome = {}
    for jobs in (1, 3):
        out = root / f"jobs{jobs}"
        forward = invoke("transform", *inputs[:2], bad, *inputs[2:], "-o", out, "--jobs", jobs, "--json")
        npz = sorted(out.glob("*_coefficients.npz"))
        inverse = invoke("transform", "--inverse", *npz, "-o", out, "--jobs", jobs)
        outcome[jobs] = (out, forward, inverse, bad)
    return outcome


def test_jobs_write_identical_files(runs):
    (one, *_), (many, *_) = runs[1], runs[3]
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in many.iterdir())
    assert len([n for n in names if n.endswith("_reconstruction.png")]) == len(SAMPLE_NAMES)
    for name in names:
        if name.endswith(".png"):
            assert (one / name).read_bytes() == (many / name).read_bytes(), name
        elif name.endswith(".made"):  # the records: the inverse's inputs (.npz) differ in their write time
            a, b = (json.loads((folder / name).read_text()) for folder in (one, many))
            assert (a["settings"], a["outputs"]) == (b["settings"], b["outputs"]), name
        else:  # npz archives hold their write time; compare every array instead
            with np.load(one / name) as a, np.load(many / name) as b:
                assert a.files == b.files
                for key in a.files:
                    np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name}:{key}")


def test_jobs_report_in_input_order_with_one_error_line(runs):
    for jobs, (out, forward, inverse, bad) in runs.items():
        assert forward.exit_code == 1 and inverse.exit_code == 0, (jobs, forward.output, inverse.output)
        report = json.loads(forward.stdout)
        expected = [str(SAMPLES / name) for name in SAMPLE_NAMES]
        assert [entry["input"] for entry in report["files"]] == expected
        errors = [line for line in forward.stderr.splitlines() if line.startswith("Error:")]
        assert errors == [f"Error: {bad}: cannot read image: Truncated File Read"]
        assert "Traceback" not in forward.output
        assert not list(out.glob("not_an_image*"))


def test_reconstructions_from_worker_processes_are_the_original_pixels(runs):
    out = runs[3][0]
    with Image.open(SAMPLES / "coins.png") as original, Image.open(out / "coins_reconstruction.png") as back:
        np.testing.assert_array_equal(np.asarray(back), np.asarray(original))


def test_jobs_must_be_positive(tmp_path):
    result = invoke("transform", SAMPLES / "camera.png", "-o", tmp_path, "--jobs", 0)
    assert result.exit_code == 2
    assert "Invalid value for '--jobs' / '-j': 0 is not in the range x>=1." in result.output


def test_a_single_file_runs_without_a_pool(tmp_path, monkeypatch):
    # One item: no worker process is started, whatever --jobs says.
    import concurrent.futures

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started for one file")

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", no_pool)
    shutil.copy(SAMPLES / "text.png", tmp_path / "text.png")
    result = invoke("transform", tmp_path / "text.png", "-o", tmp_path / "out", "--jobs", 4)
    assert result.exit_code == 0, result.output


def test_a_refused_image_in_a_worker_is_one_error_line_and_the_pool_goes_on(tmp_path):
    from PIL import Image as PILImage

    for name in ("a", "b", "c"):
        PILImage.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / f"{name}.png")
    result = CliRunner().invoke(
        cli, ["transform", *(str(tmp_path / f"{n}.png") for n in "abc"), "-o", str(tmp_path / "out"),
              "--jobs", "2", "--max-pixels", "1000"]
    )
    assert result.exit_code == 1
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("Error"))
    assert errors == [
        f"Error: {tmp_path / n}.png: image is 40 x 40 = 1,600 pixels, more than the limit of 1,000; "
        "rerun with --max-pixels 1600 to allow it"
        for n in "abc"
    ]


_MARK = "DCTCONV_TEST_RUN"


def _marked_processes(mark: str) -> list[int]:
    """Processes whose environment carries ``_MARK=mark``: the run's parent and all its workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:  # gone, or not ours
                continue
            if f"{_MARK}={mark}".encode() in environ.split(b"\0"):
                found.append(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc")
def test_sigterm_stops_a_jobs_run_and_its_workers(tmp_path):
    import signal
    import time
    import uuid

    for k in range(6):
        shutil.copy(SAMPLES / "camera.png", tmp_path / f"photo{k}.png")
    mark = uuid.uuid4().hex
    env = dict(os.environ, **{_MARK: mark})
    script = Path(sys.executable).with_name("dctconv")
    run = subprocess.Popen([str(script if script.exists() else shutil.which("dctconv")), "compress",
                            *sorted(tmp_path.glob("*.png")),
                            "-o", tmp_path / "out", "--jobs", "2"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, deadline = tmp_path / "out", time.monotonic() + 120
    # Once the first file is written the workers are surely busy with the next ones.
    while not (out.exists() and any(out.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_marked_processes(mark)) >= 3  # this run, its fork server and workers
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr
    assert stderr.splitlines()[-1] == "Aborted!"
    while _marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _marked_processes(mark) == []
    # Whatever was written is complete: every output of a file, or none of them.
    written = output_names(out)
    assert not [name for name in written if ".tmp" in name]
    stems = {name.split("_")[0] for name in written}
    assert len(written) == 6 * len(stems)
