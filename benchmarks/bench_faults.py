"""Load: 1,000 small images through ``dctconv compress FOLDER --jobs 2``, memory watched.

The installed ``dctconv`` runs as a subprocess; every 0.5 s the resident memory
(VmRSS from /proc) of it and of every process it started (fork server, resource
tracker, workers) is read, with the number of images finished so far (their
``_metrics.json`` files). Reported: RSS of each process when the first 5 % of the
images are done ("start": every worker has its libraries loaded) and in the last
sample before the run ends ("end"), their ratio, the files per second, and whether
the output folder holds exactly the six outputs of every image and no hidden
temporary. Memory that grows with the number of files would show as a ratio well
above 1. Linux only (/proc).

The images are 96 x 96 crops of the sample photos at random places, with a little
noise, so that no two are equal.

    python benchmarks/bench_faults.py                  # 1,000 images (about 5 minutes on a quiet machine)
    python benchmarks/bench_faults.py --images 100     # a quick look

Writes benchmarks/results/bench_faults.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "sample_images"
BIN = Path(sys.executable).parent
DCTCONV = str(BIN / "dctconv") if (BIN / "dctconv").exists() else shutil.which("dctconv")
OUTPUTS_PER_IMAGE = 6
SIDE = 96


def make_images(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.open(p).convert("L"), dtype=np.float64) for p in sorted(SAMPLES.glob("*.png"))]
    for k in range(count):
        photo = photos[k % len(photos)]
        top = rng.integers(0, photo.shape[0] - SIDE)
        left = rng.integers(0, photo.shape[1] - SIDE)
        crop = photo[top : top + SIDE, left : left + SIDE] + rng.normal(0, 2, (SIDE, SIDE))
        Image.fromarray(np.clip(np.rint(crop), 0, 255).astype(np.uint8)).save(folder / f"img{k:04d}.png")


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of ``pid``, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), fields[0]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def role(pid: int, main: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    if pid == main:
        return "dctconv (main process)"
    if "resource_tracker" in command:
        return "resource tracker"
    if "forkserver" in command:
        stat = _stat(pid)
        return "worker" if stat and stat[0] != main else "fork server"
    return "other"


def run(images: Path, out: Path, count: int, jobs: int):
    """Run the batch; return (samples, seconds, exit code, stderr). A sample: (done, {pid: (role, MiB)})."""
    started = time.monotonic()
    process = subprocess.Popen([DCTCONV, "compress", str(images), "-o", str(out), "--jobs", str(jobs)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []
    while process.poll() is None:
        done = len(list(out.glob("*_metrics.json"))) if out.exists() else 0
        memory = {}
        for pid in [process.pid, *descendants(process.pid)]:
            mib = rss_mib(pid)
            if mib is not None:
                memory[pid] = (role(pid, process.pid), mib)
        samples.append((done, memory))
        time.sleep(0.5)
    stderr = process.stderr.read()
    return samples, time.monotonic() - started, process.returncode, stderr


def report(samples, seconds, code, stderr, out: Path, count: int, jobs: int) -> list[str]:
    def workers(sample):
        return sum(name == "worker" for name, _ in sample[1].values())

    # "end": the last sample with every worker still there (they exit when the work is done).
    full = [s for s in samples if workers(s) == max(map(workers, samples))]
    start = next((s for s in full if s[0] >= max(1, count // 20)), full[0])
    end = full[-1]
    pids = sorted(set(start[1]) | set(end[1]), key=lambda pid: (start[1].get(pid) or end[1][pid])[0])
    lines = [
        f"{count:,} images of {SIDE} x {SIDE} through `dctconv compress FOLDER --jobs {jobs}`: "
        f"{seconds:.0f} s, {count / seconds:.2f} files/s, exit code {code}.",
        "",
        f"| process | RSS at {start[0]:,} files done (MiB) | RSS at {end[0]:,} files done (MiB) | end / start |",
        "|---|---:|---:|---:|",
    ]
    for pid in pids:
        name = (start[1].get(pid) or end[1][pid])[0]
        first = start[1].get(pid, (name, None))[1]
        last = end[1].get(pid, (name, None))[1]
        ratio = f"{last / first:.2f}" if first and last else "-"
        lines.append(f"| {name} | {'-' if first is None else f'{first:.0f}'} | "
                     f"{'-' if last is None else f'{last:.0f}'} | {ratio} |")
    names = os.listdir(out)
    hidden = [n for n in names if n.startswith(".")]
    complete = sum(n.endswith("_metrics.json") for n in names)
    lines += [
        "",
        f"Output folder: {len(names) - len(hidden):,} files ({complete:,} images with all "
        f"{OUTPUTS_PER_IMAGE} outputs: {'all' if len(names) == OUTPUTS_PER_IMAGE * count else 'NOT all'}), "
        f"{len(hidden)} hidden temporaries left. Error lines: "
        f"{sum(line.startswith('Error') for line in stderr.splitlines())}.",
        "",
        f"(RSS sampled every 0.5 s, {len(samples)} samples; \"end\" is the last sample in which every "
        "worker was still running.)",
    ]
    return lines


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if DCTCONV is None:
        raise SystemExit("the dctconv script is not installed: run `make dev` first")
    if not Path("/proc/self/status").exists():
        raise SystemExit("needs /proc (Linux)")
    text = [f"# bench_faults (load average at start: {load()})", ""]
    with tempfile.TemporaryDirectory(prefix="dctconv-bench-") as tmp:
        images, out = Path(tmp) / "images", Path(tmp) / "out"
        images.mkdir()
        make_images(images, args.images)
        samples, seconds, code, stderr = run(images, out, args.images, args.jobs)
        text += report(samples, seconds, code, stderr, out, args.images, args.jobs)
    text += ["", f"(load average at the end: {load()})"]
    print("\n".join(text))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_faults.md").write_text("\n".join(text) + "\n")
    print(f"\nwritten: {args.out / 'bench_faults.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
