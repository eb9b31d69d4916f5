"""The command line end to end: start-up, peak memory, where the time goes, --jobs.

1. ``dctconv --help`` against ``python -c "import click"`` (interleaved runs; medians).
2. Peak memory (max RSS, from ``resource.getrusage`` in a small helper process) of
   ``dctconv transform`` on a 4096 x 4096 8-bit PNG, and of ``--inverse`` on its
   coefficient file.
3. Where the time goes: each per-file pipeline function (``transform_file``,
   ``invert_file`` and, once it exists, ``compress_file``) runs under cProfile on that
   PNG, and every function it calls directly is one step (decode, transform, encode of
   each output, ...), with its share of the time. No list of steps is written here, so
   a new pipeline function is profiled as soon as it exists. Then the PNG encoding of
   the outputs with Pillow's default settings and with ``dctconv.io._images.PNG_OPTIONS``.
4. ``--jobs``: 32 images of 1024 x 1024 through ``dctconv compress`` (``transform``
   while ``compress`` does not exist or has no ``--jobs``), with ``--jobs 1`` and
   ``--jobs 2``, interleaved rounds, median wall time; the outputs are compared.
5. A large image: 16384 x 16384 8-bit (camera.png tiled 32 x 32, with noise): refused
   without ``--max-pixels``, then ``transform`` and ``--inverse`` with it, wall time and
   max RSS of each; the reconstruction is compared with the original pixels.

The test images are a sample photo (camera.png) enlarged with Lanczos and given a
little Gaussian noise (sigma 2), so that they compress like photos, not like noise.
Writes benchmarks/results/bench_cli.md.

    python benchmarks/bench_cli.py            # everything (about 10 minutes)
    python benchmarks/bench_cli.py --only profile jobs --rounds 1

``make bench`` runs sections 1 to 4 into benchmarks/results/bench_cli.md and section 5
alone into benchmarks/results/large/ (docs/performance.md shows each once).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import load, same_outputs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAMPLE = ROOT / "sample_images" / "camera.png"
BIN = Path(sys.executable).parent
DCTCONV = str(BIN / "dctconv") if (BIN / "dctconv").exists() else shutil.which("dctconv")
MIB = 1024 * 1024


def make_photo(path: Path, side: int, seed: int) -> Path:
    with Image.open(SAMPLE) as im:
        big = np.asarray(im.convert("L").resize((side, side), Image.LANCZOS), dtype=np.float64)
    rng = np.random.default_rng(seed)
    big = np.roll(big, seed * 37, axis=seed % 2) + rng.normal(0, 2, big.shape)
    Image.fromarray(np.clip(np.rint(big), 0, 255).astype(np.uint8)).save(path)
    return path


# ---------------------------------------------------------------- 1. start-up


def startup(rounds: int) -> list[str]:
    commands = {
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "dctconv --help": [DCTCONV, "--help"],
        "dctconv transform --help": [DCTCONV, "transform", "--help"],
    }
    samples = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
            samples[name].append(time.perf_counter() - start)
    base = statistics.median(samples['python -c "import click"'])
    lines = ["| command | median ms | min ms | more than import click (ms) |", "|---|---:|---:|---:|"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {median * 1e3:.0f} | {min(values) * 1e3:.0f} | {(median - base) * 1e3:+.0f} |")
    extra = (statistics.median(samples["dctconv --help"]) - base) * 1e3
    lines.append(f"\n`dctconv --help` costs {extra:.0f} ms more than importing click (target < 120 ms): "
                 f"{'met' if extra < 120 else 'NOT met'}.")
    return lines


# ---------------------------------------------------------------- 2. memory


# Linux keeps a process's peak RSS across fork and exec, so a command started by this
# (large) process would report at least this process's size. A small helper process
# starts it instead and reports its children's peak (``resource.getrusage``).
_RSS_HELPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def max_rss(command) -> tuple[float, float]:
    """(max RSS in MiB, wall seconds) of one run of ``command``."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _RSS_HELPER, *map(str, command)],
                            capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    kib, code = result.stdout.split()
    if code != "0":
        raise SystemExit(f"{' '.join(map(str, command))} failed: {result.stderr}")
    return int(kib) / 1024, wall  # ru_maxrss is in KiB on Linux


def memory(photo: Path, work: Path) -> list[str]:
    out = work / "memory"
    float_copy = photo_pixels(photo) * 8 / MIB
    budget = 3 * float_copy + 150
    commands = {
        "transform": [DCTCONV, "transform", photo, "-o", out],
        "transform --dtype float32": [DCTCONV, "transform", photo, "-o", out / "f32", "--dtype", "float32"],
        "transform --inverse": [DCTCONV, "transform", "--inverse", out / f"{photo.stem}_coefficients.npz", "-o", out],
        'python -c "import numpy, scipy, PIL.Image"': [sys.executable, "-c", "import numpy, scipy, PIL.Image"],
    }
    measured = {label: max_rss([str(c) for c in command]) for label, command in commands.items()}
    peak = measured["transform"][0]
    return [
        f"Image: {photo_side(photo)} x {photo_side(photo)} 8-bit PNG; its float64 copy is {float_copy:.0f} MiB.",
        "",
        "| command | max RSS (MiB) | wall (s) |",
        "|---|---:|---:|",
        *(f"| `{label}` | {rss:.0f} | {wall:.2f} |" for label, (rss, wall) in measured.items()),
        "",
        f"`dctconv transform` peak {peak:.0f} MiB; target at most 3 x {float_copy:.0f} + 150 = {budget:.0f} MiB: "
        f"{'met' if peak <= budget else 'NOT met'}.",
    ]


def photo_side(photo: Path) -> int:
    with Image.open(photo) as im:
        return im.size[0]


def photo_pixels(photo: Path) -> int:
    with Image.open(photo) as im:
        return im.size[0] * im.size[1]


# ---------------------------------------------------------------- 3. where the time goes


def steps(function, *args, **kwargs) -> tuple[float, list[tuple[str, float]]]:
    """Run ``function`` under cProfile; return its total time and each direct callee's share."""
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(function, *args, **kwargs)
    total = time.perf_counter() - start
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats
    target = next(key for key in stats if key[2] == function.__name__ and key[0].endswith("_jobs.py"))
    shares = []
    for (filename, _, name), (*_, callers) in stats.items():
        if target in callers:
            cumulative = callers[target][3]
            shares.append((f"{_module_name(filename)}.{name}", cumulative))
    shares.sort(key=lambda share: -share[1])
    return total, shares


def _module_name(filename: str) -> str:
    """A profiled function's module as the docs name it: ``io._images`` inside dctconv, else its file's stem."""
    if not filename.startswith(("/", ".")):
        return filename  # a built-in: "~"
    path = Path(filename).resolve()
    package = Path(__file__).resolve().parent.parent / "dctconv"
    if path.is_relative_to(package):
        return ".".join(path.relative_to(package).with_suffix("").parts)
    return path.stem


def profile(photo: Path, work: Path) -> list[str]:
    from dctconv.runtime import _jobs as pipeline

    lines = []
    out = work / "profile"
    calls = [("transform_file", pipeline.transform_file, (photo, out), {})]
    calls.append(("invert_file", pipeline.invert_file, (out / f"{photo.stem}_coefficients.npz", out), {}))
    if hasattr(pipeline, "compress_file"):
        calls.append(("compress_file", pipeline.compress_file, (photo, out / "compress"), {}))
    else:
        lines.append("(`runtime._jobs.compress_file` does not exist yet: compress not profiled.)\n")
    for name, function, args, kwargs in calls:
        function(*args, **kwargs)  # warm-up: imports, page cache
        # The timed run writes into a fresh folder, as a first run does: replacing the
        # warm-up's files would add the cost of deleting them.
        args = (*args[:-1], Path(str(args[-1]) + "_timed"))
        total, shares = steps(function, *args, **kwargs)
        lines += [f"`{name}` on the {photo_side(photo)}² PNG: {total:.2f} s in all (under cProfile)", "",
                  "| step (function called) | s | share |", "|---|---:|---:|"]
        for step, seconds in shares:
            if seconds >= 0.005:
                lines.append(f"| `{step}` | {seconds:.3f} | {seconds / total:.0%} |")
        lines.append(f"| (the function's own code, small calls) | {total - sum(s for _, s in shares):.3f} | |")
        lines.append("")
    lines.append(
        "`contextlib.__exit__` is the end of `atomic_outputs` (rename into place); "
        "`_io._IOBase.__exit__` closes the npz file (flush)."
    )
    lines += ["", *png_settings(photo, out)]
    return lines


def png_settings(photo: Path, out: Path) -> list[str]:
    """Time and size of the PNG outputs with Pillow's default settings and with PNG_OPTIONS."""
    from dctconv.io._images import PNG_OPTIONS, read_image
    from dctconv.measure._mosaics import maps_mosaic
    from dctconv.transform import forward

    image, _ = read_image(photo)
    pictures = {"maps picture (`_maps.png`)": maps_mosaic(forward(image)), "reconstruction (8-bit photo)": image}
    lines = ["PNG encoding of the outputs (best of 3):", "",
             "| picture | settings | s | MB |", "|---|---|---:|---:|"]
    for label, array in pictures.items():
        for settings_name, options in (("Pillow default", {}), (f"PNG_OPTIONS {PNG_OPTIONS}", PNG_OPTIONS)):
            best, size = float("inf"), 0
            for _ in range(3):
                buffer = io.BytesIO()
                start = time.perf_counter()
                Image.fromarray(array).save(buffer, format="PNG", **options)
                best = min(best, time.perf_counter() - start)
                size = buffer.tell()
            lines.append(f"| {label} | {settings_name} | {best:.2f} | {size / 1e6:.2f} |")
    return lines


# ---------------------------------------------------------------- 4. --jobs


def has_command(name: str) -> tuple[bool, bool]:
    """(the command exists, it has --jobs)."""
    result = subprocess.run([DCTCONV, name, "--help"], capture_output=True, text=True)
    return result.returncode == 0, "--jobs" in result.stdout


def jobs(work: Path, rounds: int, count: int = 32, side: int = 1024) -> list[str]:
    folder = work / "many"
    folder.mkdir(parents=True, exist_ok=True)
    images = [make_photo(folder / f"photo{k:02d}.png", side, k) for k in range(count)]
    exists, has_jobs = has_command("compress")
    command = "compress" if exists and has_jobs else "transform"
    lines = []
    if command == "transform":
        why = "does not exist yet" if not exists else "has no --jobs option yet"
        lines.append(f"(`dctconv compress` {why}: measured with `dctconv transform` instead.)\n")
    times = {1: [], 2: []}
    for r in range(rounds):
        for n_jobs in (1, 2) if r % 2 == 0 else (2, 1):
            out = work / f"jobs{n_jobs}"
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            result = subprocess.run([DCTCONV, command, *map(str, images), "-o", str(out), "--jobs", str(n_jobs)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            times[n_jobs].append(time.perf_counter() - start)
            if result.returncode != 0:
                raise SystemExit(f"dctconv {command} --jobs {n_jobs} failed:\n{result.stderr[-2000:]}")
    same = same_outputs(work / "jobs1", work / "jobs2")
    one, two = statistics.median(times[1]), statistics.median(times[2])
    lines += [
        f"`dctconv {command}` of {count} images of {side} x {side}, {rounds} rounds:", "",
        "| --jobs | median s | all runs (s) |", "|---:|---:|---|",
        f"| 1 | {one:.2f} | {', '.join(f'{t:.2f}' for t in times[1])} |",
        f"| 2 | {two:.2f} | {', '.join(f'{t:.2f}' for t in times[2])} |",
        "",
        f"--jobs 2 is {one / two:.2f}x faster than --jobs 1 (target >= 1.7 for compress): "
        f"{'met' if one / two >= 1.7 else 'NOT met'}{'' if command == 'compress' else ' (measured on transform)'}. "
        f"Outputs identical: {same}.",
    ]
    return lines


# ---------------------------------------------------------------- 5. a large image

LARGE_SIDE = 16384
MEMORY_LIMIT_GIB = 24


def large(work: Path) -> list[str]:
    folder = work / "large"
    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLE) as im:
        camera = np.asarray(im.convert("L"), dtype=np.int16)
    tiles = LARGE_SIDE // camera.shape[0]
    noise = np.random.default_rng(0).integers(-3, 4, (LARGE_SIDE, LARGE_SIDE), dtype=np.int16)
    pixels = np.clip(np.tile(camera, (tiles, tiles)) + noise, 0, 255).astype(np.uint8)
    source = folder / "large.png"
    Image.fromarray(pixels).save(source, compress_level=1)
    refused = subprocess.run([DCTCONV, "transform", source, "-o", folder / "refused"], capture_output=True, text=True)
    limit = ["--max-pixels", str(LARGE_SIDE * LARGE_SIDE)]
    forward_rss, forward_s = max_rss([DCTCONV, "transform", source, "-o", folder / "out", *limit])
    inverse_rss, inverse_s = max_rss([DCTCONV, "transform", "--inverse", folder / "out" / "large_coefficients.npz",
                                      "-o", folder / "back", *limit])
    Image.MAX_IMAGE_PIXELS = None  # this very image, which dctconv just wrote
    with Image.open(folder / "back" / "large_reconstruction.png") as im:
        identical = bool(np.array_equal(np.asarray(im), pixels))
    within = max(forward_rss, inverse_rss) < MEMORY_LIMIT_GIB * 1024
    return [
        f"{LARGE_SIDE} x {LARGE_SIDE} 8-bit PNG ({LARGE_SIDE * LARGE_SIDE:,} pixels).", "",
        f"Without `--max-pixels`: exit code {refused.returncode}, `{refused.stderr.strip()}`", "",
        "| command | max RSS (GiB) | wall (s) |", "|---|---:|---:|",
        f"| `transform --max-pixels {LARGE_SIDE * LARGE_SIDE}` | {forward_rss / 1024:.2f} | {forward_s:.1f} |",
        f"| `transform --inverse --max-pixels {LARGE_SIDE * LARGE_SIDE}` | {inverse_rss / 1024:.2f} | {inverse_s:.1f} |",
        "",
        f"Reconstruction identical to the original pixels: {identical}. Within {MEMORY_LIMIT_GIB} GiB: "
        f"{'met' if within and identical else 'NOT met'}.",
    ]


# ---------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["startup", "memory", "profile", "jobs", "large"],
                        default=["startup", "memory", "profile", "jobs", "large"])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the --jobs comparison")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if DCTCONV is None:
        raise SystemExit("the dctconv script is not installed: run `make dev` first")
    report = [f"# bench_cli (load average at start: {load()})", ""]
    with tempfile.TemporaryDirectory(prefix="dctconv-bench-") as tmp:
        work = Path(tmp)
        photo = make_photo(work / "photo4096.png", 4096, 0)
        sections = {
            "startup": ("Start-up", lambda: startup(21)),
            "memory": ("Peak memory", lambda: memory(photo, work)),
            "profile": ("Where the time goes", lambda: profile(photo, work)),
            "jobs": ("--jobs", lambda: jobs(work, args.rounds)),
            "large": ("A large image", lambda: large(work)),
        }
        for key in args.only:
            title, section = sections[key]
            print(f"{title} ...", file=sys.stderr)
            report += [f"## {title}", "", *section(), ""]
    report.append(f"(load average at the end: {load()})")
    text = "\n".join(report)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_cli.md").write_text(text + "\n")
    print(f"\nwritten: {args.out / 'bench_cli.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
