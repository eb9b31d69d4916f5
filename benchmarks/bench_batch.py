"""Many small files: files per second of transform and compress, here and on a dask cluster.

One run, side by side, on the same batch of small PNGs (1,000 of 64 x 64 by default,
crops of the sample photos with a little noise):

1. The floor: a plain loop in one process that reads each PNG with Pillow and writes
   its pixels with ``np.save`` (no transform at all).
2. ``dctconv transform`` and ``dctconv compress`` with ``--jobs 2``, with
   ``--no-pictures`` and with their pictures (compress with pictures on the first
   ``--picture-files`` files only: it draws a matplotlib figure per file). Wall time
   of the whole command, start-up included; the parent's and the workers' RSS are
   sampled while the batch runs (memory at the start and at the end of the batch).
3. The same ``--no-pictures`` commands with ``--scheduler`` on a local cluster of a
   ``dask scheduler`` and two single-threaded ``dask worker`` processes started here
   (started before the clock runs: a cluster is started once for many batches).
   The outputs are compared byte for byte with those of ``--jobs 2``.

With ``--baseline DIR`` (a checkout of an earlier dctconv, e.g. ``git worktree add
--detach /tmp/base COMMIT``) the two ``compress --jobs 2`` commands also run with that
checkout's package (``PYTHONPATH=DIR``, the same interpreter and libraries), each just
before the current one, and the table gives their ratio.

Writes benchmarks/results/bench_batch.md (the tables) and bench_batch.json (the
numbers, read by docs/generate.py for docs/scale.md).

    python benchmarks/bench_batch.py                 # 1,000 files (a few minutes)
    python benchmarks/bench_batch.py --files 200     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import DaskCluster, descendants, load, rss_mib, same_outputs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "sample_images"
BIN = Path(sys.executable).parent
DCTCONV = str(BIN / "dctconv") if (BIN / "dctconv").exists() else shutil.which("dctconv")
#: files/s with --jobs 2 (issue 19: compress with its pictures at least 20, without at least 200).
TARGETS = {"transform --no-pictures": 200, "compress --no-pictures": 200, "compress": 20}


def make_batch(folder: Path, count: int, side: int) -> list[Path]:
    """``count`` side x side 8-bit PNGs: crops of the sample photos with Gaussian noise (sigma 2)."""
    folder.mkdir(parents=True)
    photos = []
    for name in ("camera.png", "astronaut.png", "coins.png"):
        with Image.open(SAMPLES / name) as im:
            photos.append(np.asarray(im.convert("L"), dtype=np.float64))
    rng = np.random.default_rng(13)
    paths = []
    for k in range(count):
        photo = photos[k % len(photos)]
        top = rng.integers(0, photo.shape[0] - side)
        left = rng.integers(0, photo.shape[1] - side)
        crop = photo[top : top + side, left : left + side] + rng.normal(0, 2, (side, side))
        path = folder / f"img{k:05d}.png"
        Image.fromarray(np.clip(np.rint(crop), 0, 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


# ---------------------------------------------------------------- memory of a process tree


class Sampler:
    """RSS of the command (its own process) and of the other processes given or below it, with progress."""

    def __init__(self, out: Path, suffix: str, total: int, extra_pids=()):
        self.out, self.suffix, self.total, self.extra = out, suffix, total, list(extra_pids)
        self.samples: list[tuple[float, float, float]] = []  # (fraction done, parent MiB, workers MiB)

    def sample(self, pid: int) -> None:
        done = len(list(self.out.glob(f"*{self.suffix}"))) if self.out.exists() else 0
        others = descendants(pid) + self.extra
        # The fork server and resource tracker of --jobs count as workers: they hold memory too.
        self.samples.append((done / self.total, rss_mib(pid) or 0.0, sum(rss_mib(p) or 0.0 for p in others)))

    def start_end(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(parent, workers) MiB in the first sample past 10 % of the batch and the last before 100 %."""
        under_way = [s for s in self.samples if 0.1 <= s[0] < 1.0] or self.samples or [(0, 0, 0)]
        first, last = under_way[0], under_way[-1]
        return (first[1], first[2]), (last[1], last[2])


def run(command, *, out: Path, suffix: str, total: int, extra_pids=(), env=None) -> dict:
    """Run ``command``; wall seconds, files/s and RSS at the start and end of the batch."""
    sampler = Sampler(out, suffix, total, extra_pids)
    start = time.perf_counter()
    process = subprocess.Popen([str(c) for c in command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=env)
    while process.poll() is None:
        sampler.sample(process.pid)
        time.sleep(0.05)
    wall = time.perf_counter() - start
    stderr = process.stderr.read().decode()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed ({process.returncode}):\n{stderr}")
    written = len(list(out.glob(f"*{suffix}")))
    if written != total:
        raise SystemExit(f"{' '.join(map(str, command))} wrote {written} of {total} outputs")
    (parent_start, workers_start), (parent_end, workers_end) = sampler.start_end()
    return {"files": total, "seconds": wall, "files_per_s": total / wall,
            "rss_parent_start": parent_start, "rss_parent_end": parent_end,
            "rss_workers_start": workers_start, "rss_workers_end": workers_end}


def floor(images: list[Path], out: Path) -> dict:
    """Pillow read + np.save of every image, in this process: what any tool must at least do."""
    out.mkdir()
    start = time.perf_counter()
    for path in images:
        with Image.open(path) as im:
            pixels = np.asarray(im)
        np.save(out / f"{path.stem}.npy", pixels)
    wall = time.perf_counter() - start
    return {"files": len(images), "seconds": wall, "files_per_s": len(images) / wall}


# ---------------------------------------------------------------- a local dask cluster


# ---------------------------------------------------------------- report


def table(rows: dict[str, dict], floor_rate: float) -> list[str]:
    lines = ["| run | files | s | files/s | x floor | parent RSS MiB start → end | workers RSS MiB start → end |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        memory = ("", "")
        if "rss_parent_start" in r:
            memory = (f"{r['rss_parent_start']:.0f} → {r['rss_parent_end']:.0f}",
                      f"{r['rss_workers_start']:.0f} → {r['rss_workers_end']:.0f}")
        lines.append(f"| `{name}` | {r['files']:,} | {r['seconds']:.1f} | {r['files_per_s']:.0f} | "
                     f"{r['files_per_s'] / floor_rate:.2f} | {memory[0]} | {memory[1]} |")
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--picture-files", type=int, default=100,
                        help="files of the compress run with pictures (about 0.1 s each)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier dctconv to compare compress with")
    args = parser.parse_args(argv)
    machine = {"cpus": len(os.sched_getaffinity(0)), "python": platform.python_version(),
               "load_at_start": load(), "files": args.files, "side": args.side}
    baseline_env = None
    if args.baseline:
        revision = subprocess.run(["git", "-C", str(args.baseline), "log", "-1", "--format=%h"],
                                  capture_output=True, text=True).stdout.strip() or str(args.baseline)
        machine["baseline"] = revision
        baseline_env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        images = make_batch(tmp / "in", args.files, args.side)
        results["floor: Pillow read + np.save, 1 process"] = floor(images, tmp / "floor")

        def dctconv(name, command, inputs, out, suffix, *options, extra_pids=(), env=None):
            results[name] = run([DCTCONV, command, *inputs, "-o", out, *options],
                                out=out, suffix=suffix, total=len(inputs), extra_pids=extra_pids, env=env)

        few = images[: args.picture_files]
        dctconv("transform --no-pictures --jobs 2", "transform", images, tmp / "t2", "_coefficients.npz",
                "--no-pictures", "--jobs", "2")
        dctconv("transform --jobs 2", "transform", images, tmp / "t2p", "_maps.png", "--jobs", "2")
        if baseline_env:
            dctconv(f"compress --no-pictures --jobs 2 [{machine['baseline']}]", "compress", images, tmp / "c2b",
                    "_metrics.json", "--no-pictures", "--jobs", "2", env=baseline_env)
        dctconv("compress --no-pictures --jobs 2", "compress", images, tmp / "c2", "_metrics.json",
                "--no-pictures", "--jobs", "2")
        if baseline_env:
            dctconv(f"compress --jobs 2 ({len(few)} files) [{machine['baseline']}]", "compress", few, tmp / "c2pb",
                    "_metrics.json", "--jobs", "2", env=baseline_env)
        dctconv(f"compress --jobs 2 ({len(few)} files)", "compress", few, tmp / "c2p", "_metrics.json", "--jobs", "2")
        cluster = DaskCluster(tmp / "dask", workers=2).start(timeout=180)
        try:
            # Each worker imports what the work needs once, as a long-running cluster has.
            cluster.client.run(lambda: __import__("dctconv.runtime._jobs"))
            worker_pids = list(cluster.worker_pids().values())
            place = ("--scheduler-file", cluster.scheduler_file)
            dctconv("transform --no-pictures --scheduler (2 workers)", "transform", images, tmp / "td",
                    "_coefficients.npz", "--no-pictures", *place, extra_pids=worker_pids)
            dctconv("compress --no-pictures --scheduler (2 workers)", "compress", images, tmp / "cd",
                    "_metrics.json", "--no-pictures", *place, extra_pids=worker_pids)
        finally:
            cluster.stop()
        identical = {"transform": same_outputs(tmp / "t2", tmp / "td"), "compress": same_outputs(tmp / "c2", tmp / "cd")}
    machine["load_at_end"] = load()

    floor_rate = results["floor: Pillow read + np.save, 1 process"]["files_per_s"]
    lines = [f"# bench_batch ({args.files:,} files of {args.side} x {args.side}; {machine['cpus']} CPUs; "
             f"load average {machine['load_at_start']} at start, {machine['load_at_end']} at end)", "",
             "Wall time of each whole command (start-up included). RSS: the command's process, and the sum of "
             "its worker processes (--jobs: the pool, fork server and resource tracker; --scheduler: the two "
             "dask workers), sampled at the first moment past 10 % of the batch and the last before its end.", "",
             *table(results, floor_rate), ""]
    named = {"transform --no-pictures": "transform --no-pictures --jobs 2",
             "compress --no-pictures": "compress --no-pictures --jobs 2",
             "compress": f"compress --jobs 2 ({len(few)} files)"}
    for name, target in TARGETS.items():
        rate = results[named[name]]["files_per_s"]
        lines.append(f"- `{named[name]}`: {rate:.0f} files/s, target at least {target}: "
                     f"{'met' if rate >= target else f'NOT met ({rate / target:.0%} of it)'}.")
        before = results.get(f"{named[name]} [{machine.get('baseline')}]")
        if before:
            lines.append(f"  At {machine['baseline']} (the run just before it): {before['files_per_s']:.1f} files/s; "
                         f"now {rate / before['files_per_s']:.1f} times as many.")
    for command, same in identical.items():
        lines.append(f"- `{command} --no-pictures`: outputs on the cluster and with --jobs 2 "
                     f"{'identical, byte for byte' if same else 'DIFFER'}.")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_batch.md").write_text("\n".join(lines) + "\n")
    (args.out / "bench_batch.json").write_text(json.dumps(
        {"machine": machine, "runs": results, "targets": TARGETS, "identical_on_cluster": identical}, indent=2) + "\n")
    print("\n".join(lines))
    return 0 if all(identical.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
