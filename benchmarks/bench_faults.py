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

``--decode-memory`` measures instead the memory of ``dctconv.decode`` per output pixel,
each file decoded in a fresh subprocess: the tracemalloc peak of the decode (numpy
reports its arrays to tracemalloc) and the peak resident memory above the resident
memory just before it (VmHWM, reset through /proc/self/clear_refs; ru_maxrss where that
cannot be reset), with the time. The files: a 2048 x 2048 photo-like image (tiles of the
sample photos with noise) as 8-bit, 16-bit and float32 (with a NaN patch), each compressed
with the defaults, and a 149-byte file of an all-zero image that claims 9459 x 9459
pixels (its range-coded sections code "only zeros"). Each child first decodes a small
file of the same kind, so that lazily imported and compiled code is not counted.
``--label before`` / ``--label after`` keep two sets side by side; ``--source DIR``
decodes with the dctconv of another checkout (a ``git worktree`` of an older commit),
the files being made by this one:

    git worktree add /tmp/dctconv-before <commit>
    python benchmarks/bench_faults.py --decode-memory --label before --source /tmp/dctconv-before
    python benchmarks/bench_faults.py --decode-memory --label after

Writes benchmarks/results/bench_faults_decode.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import descendants, process_stat, rss_mib

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
        stat = process_stat(pid)
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


DECODE_SIDE = 2048
ZERO_SIDE = 9459
_CHILD = r"""
import json, os, resource, sys, time, tracemalloc
import dctconv

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None

warm, path, traced = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
dctconv.decode(open(warm, "rb").read(), max_pixels=None)
data = open(path, "rb").read()
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current VmRSS
    reset = True
except OSError:
    reset = False
before = rss("VmRSS")
maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if traced:
    tracemalloc.start()
started = time.perf_counter()
pixels = dctconv.decode(data, max_pixels=None)
seconds = time.perf_counter() - started
result = {"pixels": int(pixels.size), "dtype": str(pixels.dtype), "seconds": seconds,
          "version": dctconv.__file__}
if traced:
    result["traced_peak"] = tracemalloc.get_traced_memory()[1]
else:
    peak = rss("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["rss_peak"] = peak - (before if reset else max(before, maxrss))
    result["rss_method"] = "VmHWM - VmRSS before" if reset else "ru_maxrss - max(RSS, ru_maxrss) before"
print(json.dumps(result))
"""


def photo_like(side: int) -> np.ndarray:
    """A side x side float64 image in 0 .. 1: the sample photos tiled, with a little noise."""
    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.open(p).convert("L").resize((512, 512), Image.Resampling.BICUBIC), dtype=np.float64)
              / 255 for p in sorted(SAMPLES.glob("*.png"))]
    rows = []
    for r in range(0, side, 512):
        row = [photos[(r // 512 + c // 512) % len(photos)] for c in range(0, side, 512)]
        rows.append(np.concatenate(row, axis=1))
    image = np.concatenate(rows)[:side, :side]
    return np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1)


def zero_claim(side: int) -> bytes:
    """A valid file of an all-zero image claiming side x side pixels: the range-coded sections
    of a 64 x 64 one (every context codes "only zeros") under a header of the claimed size."""
    from dctconv.codec._core import channel_steps, offsets_size, settings_header
    from dctconv.codec._dctz import FORMAT_VERSION, classic_sections, pack
    from dctconv.codec._entropy import encode_levels
    from dctconv.codec._zigzag import zigzag_order

    n = 4
    header = settings_header((side, side), "L", block_size=n, data_range=(0.0, 255.0))
    coded = encode_levels(np.zeros((n * n, 16, 16), np.int64), zigzag_order(n), n, channel_steps(header),
                          version=FORMAT_VERSION)
    return pack(header, classic_sections(bytes(offsets_size(header)) + coded.model, coded.words, coded.raw_bits))


def decode_cases(folder: Path) -> list[dict]:
    """Write the files (and a small one of each kind to warm up with); return their descriptions."""
    import dctconv

    def images(side):
        gray = photo_like(side)
        field = (gray * 40 - 10).astype(np.float32)
        field[side // 4 : side // 4 + side // 16, side // 3 : side // 2] = np.nan
        return {"8-bit": np.rint(gray * 255).astype(np.uint8), "16-bit": np.rint(gray * 65535).astype(np.uint16),
                "float32": field}

    cases = []
    small = images(64)
    for name, image in images(DECODE_SIDE).items():
        data = dctconv.encode(image)
        (folder / f"{name}.dctz").write_bytes(data)
        (folder / f"{name}-warm.dctz").write_bytes(dctconv.encode(small[name]))
        cases.append({"name": f"{name} photo-like {DECODE_SIDE}²", "file": f"{name}.dctz", "bytes": len(data),
                      "warm": f"{name}-warm.dctz", "settings": "defaults"})
    data = zero_claim(ZERO_SIDE)
    (folder / "zero.dctz").write_bytes(data)
    (folder / "zero-warm.dctz").write_bytes(zero_claim(256))
    cases.append({"name": f"all-zero claim {ZERO_SIDE}²", "file": "zero.dctz", "bytes": len(data),
                  "warm": "zero-warm.dctz", "settings": "MODL/WORD/RAWB, 64 x 64 sections"})
    return cases


def measure_decode(folder: Path, case: dict, source: Path | None) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    if source is not None:
        env["PYTHONPATH"] = str(source)
    result = dict(case)
    for traced in ("0", "1"):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(folder / case["warm"]), str(folder / case["file"]),
                               traced], capture_output=True, text=True, env=env, cwd=folder)
        if done.returncode:
            result["error"] = (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1]
            return result
        result.update(json.loads(done.stdout))
    result["traced_per_pixel"] = result["traced_peak"] / result["pixels"]
    result["rss_per_pixel"] = result["rss_peak"] / result["pixels"]
    return result


def decode_report(results: dict) -> list[str]:
    labels = [label for label in ("before", "after") if label in results]
    lines = ["Peak memory of `dctconv.decode` per output pixel (bytes), each file in a fresh process; "
             "tracemalloc: numpy's arrays; RSS: resident memory above that just before the decode.", ""]
    for label in labels:
        run = results[label]
        lines.append(f"- {label}: dctconv at commit {run['commit']}, {run['date']}, load average {run['load']}, "
                     f"{run['cpus']} CPUs.")
    header = "| file | size | " + " | ".join(f"{label}: tracemalloc | {label}: RSS | {label}: s" for label in labels)
    lines += ["", header + " |", "|---|---:|" + "---:|" * 3 * len(labels)]
    for k, case in enumerate(results[labels[0]]["cases"]):
        cells = [case["name"], f"{case['bytes']:,} B"]
        for label in labels:
            other = results[label]["cases"][k]
            if "error" in other:
                cells += [other["error"], "", ""]
            else:
                cells += [f"{other['traced_per_pixel']:.1f}", f"{other['rss_per_pixel']:.1f}",
                          f"{other['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if len(labels) == 2:
        lines += ["", "after / before (tracemalloc peak): " + ", ".join(
            f"{a['name']} {a['traced_per_pixel'] / b['traced_per_pixel']:.2f}"
            for a, b in zip(results["after"]["cases"], results["before"]["cases"])
            if "error" not in a and "error" not in b)]
    return lines


def decode_memory(args) -> None:
    import datetime

    path = args.out / "bench_faults_decode.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    source = args.source.resolve() if args.source else None
    commit = subprocess.run(["git", "-C", str(source or ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    if source is None and subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "dctconv"],
                                         capture_output=True, text=True).stdout.strip():
        commit += " (with uncommitted changes)"
    run = {"commit": commit, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "load": load(), "cpus": os.cpu_count(), "cases": []}
    with tempfile.TemporaryDirectory(prefix="dctconv-bench-") as tmp:
        folder = Path(tmp)
        for case in decode_cases(folder):
            measured = measure_decode(folder, case, source)
            run["cases"].append(measured)
            print(json.dumps(measured), file=sys.stderr)
    results[args.label] = run
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    text = ["# bench_faults: decode memory", "", *decode_report(results)]
    (args.out / "bench_faults_decode.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    print(f"\nwritten: {path} and bench_faults_decode.md", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--decode-memory", action="store_true",
                        help="measure the memory of dctconv.decode per output pixel instead")
    parser.add_argument("--label", choices=("before", "after"), default="after",
                        help="with --decode-memory: which set of numbers this run is")
    parser.add_argument("--source", type=Path,
                        help="with --decode-memory: decode with the dctconv of this checkout")
    args = parser.parse_args(argv)
    if not Path("/proc/self/status").exists():
        raise SystemExit("needs /proc (Linux)")
    if args.decode_memory:
        decode_memory(args)
        return
    if DCTCONV is None:
        raise SystemExit("the dctconv script is not installed: run `make dev` first")
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
