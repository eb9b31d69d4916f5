"""The codec against Pillow's JPEG and WebP: BD-rates, JPEG's own ground, speed (issue 12).

1. n = 4: rate (bits per pixel, the file's bytes) and PSNR over quality 5 to 95 for
   ``dctconv.encode``, Pillow's JPEG (``optimize=True``, grayscale) and WebP
   (``method=6``) on the sample photos (astronaut, camera, coins) and, reported apart,
   on images that are not those photos (text; scikit-image's cell, moon, page, horse). BD-rate (PSNR) of dctconv against each, computed by the
   ``bjontegaard`` package (Akima interpolation over the overlapping PSNR range).
   ``--block-size auto`` likewise, against n = 4, JPEG and WebP, and against WebP at the same SSIM
   (scikit-image), with its encode time on the photo of 3 beside n = 4's.
2. n = 8 at quality 25, 50, 75, 90: dctconv's file over JPEG's and the PSNR difference.
3. Speed on a 4096 x 4096 8-bit photo (astronaut enlarged with Lanczos, Gaussian noise
   sigma 2): ``dctconv.encode`` (n = 4, quality 75) against WebP method 6 at quality 75,
   ``dctconv.decode`` against WebP's decode, and the command a user runs,
   ``dctconv compress PHOTO.png -o DIR`` with every output (a subprocess of this Python,
   start-up included), against the same WebP encode; interleaved rounds, medians, ratios.
   Then one more such process, with timers around the functions compress calls
   (:data:`STAGES`), says where its time goes (the table of docs/performance.md).
4. The first call's latency: a new process encodes and decodes a 64 x 64 image with an
   empty numba cache (the engine compiles), then another does it with the cache written
   (the engine's machine code loaded); import and each call timed apart.

Writes benchmarks/results/bench_codec.md and bench_codec.json.

    python benchmarks/bench_codec.py              # everything (about 5 minutes)
    python benchmarks/bench_codec.py --only speed # rd, n8, speed, latency; the others keep their last results
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

import dctconv

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SAMPLES = ROOT / "sample_images"
PHOTOS = ["astronaut", "camera", "coins"]
#: Images beside the photos, with what they are: the "every image" conditions of the targets
#: cover them, the means do not. All but text come from scikit-image's bundled data (gray).
NOT_PHOTOS = {"text": "line art", "cell": "smooth micrograph", "moon": "smooth, not a sample photo", "page": "scanned text",
              "horse": "binary silhouette"}
QUALITIES = list(range(5, 96, 5))
N8_QUALITIES = [25, 50, 75, 90]


def load(name: str) -> np.ndarray:
    if (SAMPLES / f"{name}.png").exists():
        with Image.open(SAMPLES / f"{name}.png") as im:
            return np.asarray(im.convert("L"))
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.dtype == bool:
        return np.where(image, 255, 0).astype(np.uint8)
    return np.asarray(Image.fromarray(image).convert("L"))


def label(name: str) -> str:
    return name if name in PHOTOS else f"{name} ({NOT_PHOTOS[name]})"


def pillow(image: np.ndarray, fmt: str, quality: int) -> tuple[int, np.ndarray]:
    """Bytes and decoded pixels of Pillow's JPEG (optimize) or WebP (method 6)."""
    buffer = io.BytesIO()
    options = {"optimize": True} if fmt == "JPEG" else {"method": 6}
    Image.fromarray(image).save(buffer, fmt, quality=quality, **options)
    with Image.open(io.BytesIO(buffer.getvalue())) as im:
        return buffer.tell(), np.asarray(im.convert("L"))


def ours(image: np.ndarray, n: int, quality: int) -> tuple[int, np.ndarray]:
    data = dctconv.encode(image, block_size=n, quality=quality)
    return len(data), dctconv.decode(data)


def curve(image, codec) -> list[tuple[float, float]]:
    points = []
    for quality in QUALITIES:
        size, decoded = codec(image, quality)
        points.append((8 * size / image.size, peak_signal_noise_ratio(image, decoded, data_range=255)))
    return points


def monotone(points):
    """Points sorted by rate, keeping those that raise PSNR (BD needs an increasing curve)."""
    kept = []
    for rate, psnr in sorted(points):
        if not kept or (psnr > kept[-1][1] and rate > kept[-1][0]):
            kept.append((rate, psnr))
    return np.array([p[0] for p in kept]), np.array([p[1] for p in kept])


def bd_rate(anchor, test) -> float:
    import bjontegaard

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when the PSNR ranges overlap less than 75 %
        return float(
            bjontegaard.bd_rate(*monotone(anchor), *monotone(test), method="akima",
                                require_matching_points=False, min_overlap=0)
        )


def run_rd() -> dict:
    results = {}
    start = os.getloadavg()[0]
    for name in [*PHOTOS, *NOT_PHOTOS]:
        image = load(name)
        curves = {
            "dctconv": curve(image, lambda im, q: ours(im, 4, q)),
            "jpeg": curve(image, lambda im, q: pillow(im, "JPEG", q)),
            "webp": curve(image, lambda im, q: pillow(im, "WEBP", q)),
        }
        results[name] = {
            "curves": curves,
            "bd_rate_vs_jpeg": bd_rate(curves["jpeg"], curves["dctconv"]),
            "bd_rate_vs_webp": bd_rate(curves["webp"], curves["dctconv"]),
        }
        print(f"{name}: BD-rate vs JPEG {results[name]['bd_rate_vs_jpeg']:+.1f} %, "
              f"vs WebP {results[name]['bd_rate_vs_webp']:+.1f} %", flush=True)
    results["_load"] = [start, os.getloadavg()[0]]
    return results


def ssim_curve(image, codec) -> list[tuple[float, float, float]]:
    """(bits per pixel, PSNR, SSIM) over QUALITIES; SSIM by scikit-image at data_range 255."""
    from skimage.metrics import structural_similarity

    points = []
    for quality in QUALITIES:
        size, decoded = codec(image, quality)
        points.append((8 * size / image.size, peak_signal_noise_ratio(image, decoded, data_range=255),
                       structural_similarity(image, decoded, data_range=255)))
    return points


def run_auto(rounds: int) -> dict:
    """--block-size auto: BD-rates (PSNR) against n = 4, JPEG and WebP, and against WebP at the same
    SSIM, per image; then its encode time on the 4096 x 4096 photo beside n = 4's, interleaved."""
    results = {}
    start = os.getloadavg()[0]
    for name in [*PHOTOS, *NOT_PHOTOS]:
        image = load(name)
        curves = {
            "auto": ssim_curve(image, lambda im, q: ours(im, "auto", q)),
            "n4": ssim_curve(image, lambda im, q: ours(im, 4, q)),
            "jpeg": ssim_curve(image, lambda im, q: pillow(im, "JPEG", q)),
            "webp": ssim_curve(image, lambda im, q: pillow(im, "WEBP", q)),
        }
        psnr = {key: [(r, p) for r, p, _ in points] for key, points in curves.items()}
        ssim = {key: [(r, q) for r, _, q in points] for key, points in curves.items()}
        results[name] = {
            "curves": curves,
            "vs_n4": bd_rate(psnr["n4"], psnr["auto"]),
            "vs_jpeg": bd_rate(psnr["jpeg"], psnr["auto"]),
            "vs_webp": bd_rate(psnr["webp"], psnr["auto"]),
            "vs_webp_ssim": bd_rate(ssim["webp"], ssim["auto"]),
            "n4_vs_webp_ssim": bd_rate(ssim["webp"], ssim["n4"]),
        }
        print(f"{name}: auto vs n = 4 {results[name]['vs_n4']:+.1f} %, vs JPEG {results[name]['vs_jpeg']:+.1f} %, "
              f"vs WebP {results[name]['vs_webp']:+.1f} % (SSIM {results[name]['vs_webp_ssim']:+.1f} %)", flush=True)
    results["_load"] = [start, os.getloadavg()[0]]
    image = big_photo()
    times = {"n4": [], "auto": []}
    load_start = os.getloadavg()[0]
    for _ in range(rounds):
        for key, n in (("n4", 4), ("auto", "auto")):
            begin = time.perf_counter()
            data = dctconv.encode(image, block_size=n, quality=75)
            times[key].append(time.perf_counter() - begin)
            results[f"speed_{key}_bytes"] = len(data)
    results["speed"] = {key: statistics.median(values) for key, values in times.items()}
    results["speed_load"] = [load_start, os.getloadavg()[0]]
    return results


def run_n8() -> dict:
    results = {}
    start = os.getloadavg()[0]
    for name in [*PHOTOS, *NOT_PHOTOS]:
        image = load(name)
        rows = []
        for quality in N8_QUALITIES:
            size, decoded = ours(image, 8, quality)
            jpeg_size, jpeg_decoded = pillow(image, "JPEG", quality)
            rows.append({
                "quality": quality,
                "bytes": size,
                "jpeg_bytes": jpeg_size,
                "psnr": peak_signal_noise_ratio(image, decoded, data_range=255),
                "jpeg_psnr": peak_signal_noise_ratio(image, jpeg_decoded, data_range=255),
            })
        results[name] = rows
    results["_load"] = [start, os.getloadavg()[0]]
    return results


def big_photo(side: int = 4096) -> np.ndarray:
    image = Image.fromarray(load("astronaut")).resize((side, side), Image.LANCZOS)
    noisy = np.asarray(image, dtype=np.float64) + np.random.default_rng(12).normal(0, 2, (side, side))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def compress_command(photo: Path, out_dir: Path) -> float:
    """Seconds of ``dctconv compress PHOTO -o OUT_DIR`` (default options, every output) as a new process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dctconv", "compress", str(photo), "-o", str(out_dir)],
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dctconv compress failed ({done.returncode}): {done.stderr.strip()}")
    return seconds


#: The functions whose calls the profile of one ``compress`` run times: (module, function, what it does).
STAGES = [
    ("dctconv.runtime._jobs", "compress_file", "`compress_file`, in all (the work of one file)"),
    ("dctconv.io._images", "read_image", "read the PNG"),
    ("dctconv.runtime._jobs", "_import_all", "load numba's compiled loops (`runtime._warm`)"),
    ("dctconv.codec._core", "quantize_image", "encode: DCT, quantization, RDOQ, offsets"),
    ("dctconv.codec._engine", "encode_levels", "encode: the engine codes the levels"),
    ("dctconv.codec._core", "decoded_pixels", "decode the levels to the reconstruction's pixels"),
    ("dctconv.measure._metrics", "_errors", "errors: sum of squares (PSNR, MSE), largest"),
    ("dctconv.measure._metrics", "_error_picture", "error picture (99th percentile, scaled)"),
    ("dctconv.measure._metrics", "_ssim", "SSIM"),
    ("dctconv.measure._metrics", "loss_notes", "distinct values (the loss notes)"),
    ("dctconv.measure._summary", "summary_picture", "draw the summary picture"),
    ("dctconv.measure._mosaics", "maps_picture", "draw the maps picture"),
    ("dctconv.measure._mosaics", "error_picture_with_legend", "frame the error picture with its legend"),
    ("dctconv.io._images", "picture_bytes", "PNG-encode the picture drawn before it on its thread"),
    ("dctconv.io._images", "image_bytes", "PNG-encode the reconstruction"),
    ("dctconv.io._images", "save_picture", "PNG-encode and write the summary"),
]

#: Run as ``python -c``: the command line in this process, each of STAGES timed; prints JSON.
STAGE_PROFILE = """
import functools, importlib, json, resource, sys, threading, time
start = time.perf_counter()
events = []

def timed(module_name, name, what):
    module = importlib.import_module(module_name)
    function = getattr(module, name)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        began = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            events.append({"what": what, "function": module_name.replace("dctconv.", "") + "." + name,
                           "main": threading.current_thread() is threading.main_thread(),
                           "start": began - start, "seconds": time.perf_counter() - began})
    setattr(module, name, wrapper)

from dctconv.cli import cli
for stage in json.loads(sys.argv[1]):
    timed(*stage)
try:
    cli(sys.argv[2:], prog_name="dctconv")
except SystemExit as exc:
    if exc.code:
        raise
print(json.dumps({"events": events, "ended": time.perf_counter() - start,
                  "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def compress_stages(photo: Path, out_dir: Path) -> dict:
    """One ``dctconv compress PHOTO -o OUT_DIR`` in a new process with its stages timed (STAGE_PROFILE)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", STAGE_PROFILE, json.dumps(STAGES), "compress", str(photo),
                           "-o", str(out_dir)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"dctconv compress (profiled) failed ({done.returncode}): {done.stderr.strip()}")
    profile = json.loads(done.stdout.strip().splitlines()[-1])
    profile["wall"] = wall
    profile["load_average"] = os.getloadavg()
    return profile


def run_speed(rounds: int) -> dict:
    load_start = os.getloadavg()
    image = big_photo()
    times = {"encode": [], "rdoq": [], "decode": [], "webp_encode": [], "webp_decode": [], "compress": []}
    from dctconv.codec import _rdoq

    # RDOQ's share of the encode: the time inside it, timed within the same calls (a second
    # encode would not compare: the first large allocation after WebP and the subprocess pays the
    # kernel's page faults, whichever encode it is).
    choose, inside = _rdoq.rdoq, []

    def timed_rdoq(*args, **kwargs):
        start = time.perf_counter()
        try:
            return choose(*args, **kwargs)
        finally:
            inside.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="dctconv-bench-codec-") as temp:
        photo = Path(temp) / "photo.png"
        Image.fromarray(image).save(photo)
        for index in range(rounds):  # interleaved, so that a busy moment hits all alike
            inside.clear()
            _rdoq.rdoq = timed_rdoq
            start = time.perf_counter()
            data = dctconv.encode(image, block_size=4, quality=75)
            times["encode"].append(time.perf_counter() - start)
            _rdoq.rdoq = choose
            times["rdoq"].append(sum(inside))
            start = time.perf_counter()
            decoded = dctconv.decode(data)
            times["decode"].append(time.perf_counter() - start)
            buffer = io.BytesIO()
            start = time.perf_counter()
            Image.fromarray(image).save(buffer, "WEBP", quality=75, method=6)
            times["webp_encode"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with Image.open(io.BytesIO(buffer.getvalue())) as im:
                webp = np.asarray(im.convert("L"))
            times["webp_decode"].append(time.perf_counter() - start)
            out_dir = Path(temp) / f"out{index}"  # a new folder each round: every output written anew
            times["compress"].append(compress_command(photo, out_dir))
        outputs = sorted(path.name for path in out_dir.iterdir() if not path.name.startswith("."))
        stages = compress_stages(photo, Path(temp) / "profiled")
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {
        "side": image.shape[0],
        "rounds": rounds,
        "median_seconds": medians,
        "encode_over_webp": medians["encode"] / medians["webp_encode"],
        "decode_over_webp": medians["decode"] / medians["webp_decode"],
        "compress_over_webp": medians["compress"] / medians["webp_encode"],
        "compress_outputs": outputs,
        "compress_stages": stages,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "dctconv_bpp": 8 * len(data) / image.size,
        "dctconv_psnr": peak_signal_noise_ratio(image, decoded, data_range=255),
        "webp_bpp": 8 * buffer.tell() / image.size,
        "webp_psnr": peak_signal_noise_ratio(image, webp, data_range=255),
    }


FIRST_CALL = """
import time
start = time.perf_counter()
import numpy as np
import dctconv
imported = time.perf_counter()
image = (np.add.outer(np.arange(64), np.arange(64)) * 2 % 256).astype(np.uint8)
data = dctconv.encode(image)
encoded = time.perf_counter()
dctconv.decode(data)
decoded = time.perf_counter()
print(imported - start, encoded - imported, decoded - encoded)
"""


def run_latency(rounds: int) -> dict:
    """Seconds of a new process's import, first encode and first decode, cold (empty numba cache) and warm."""
    load_start = os.getloadavg()
    cold, warm = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="dctconv-bench-numba-") as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for into in (cold, warm):
                done = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, env=env,
                                      check=True)
                into.append([float(value) for value in done.stdout.split()])
    median = lambda rows: [statistics.median(column) for column in zip(*rows)]  # noqa: E731
    return {"rounds": rounds, "cold": median(cold), "warm": median(warm),
            "load_average": {"start": load_start, "end": os.getloadavg()}}


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(results: dict) -> str:
    lines = ["# Codec benchmark (issues 12 and 19)", ""]
    rd = results.get("rd")
    if rd:
        mean_jpeg = statistics.mean(rd[name]["bd_rate_vs_jpeg"] for name in PHOTOS)
        mean_webp = statistics.mean(rd[name]["bd_rate_vs_webp"] for name in PHOTOS)
        measured = [name for name in [*PHOTOS, *NOT_PHOTOS] if name in rd]
        worst = max(rd[name]["bd_rate_vs_jpeg"] for name in measured)
        worst_name = max(measured, key=lambda name: rd[name]["bd_rate_vs_jpeg"])
        lines += [
            "## n = 4: BD-rate (PSNR), quality 5 to 95",
            "",
            "Negative: dctconv needs that many percent fewer bits than the other codec for the same PSNR.",
            "",
            "| image | vs JPEG (optimize) | vs WebP (method 6) |",
            "|---|---:|---:|",
        ]
        for name in measured:
            lines.append(f"| {label(name)} | {rd[name]['bd_rate_vs_jpeg']:+.1f} % | {rd[name]['bd_rate_vs_webp']:+.1f} % |")
        lines += [
            f"| **mean of the photos** | **{mean_jpeg:+.1f} %** | **{mean_webp:+.1f} %** |",
            "",
            f"Targets (issue 19) against JPEG: mean of the photos <= -25 %: {verdict(mean_jpeg <= -25)}"
            + ("" if mean_jpeg <= -25 else f" (by {mean_jpeg + 25:.1f} points)")
            + f"; below 0 on every image: {verdict(worst < 0)} (highest: {worst_name}, {worst:+.1f} %)."
            + (f" Load average {rd['_load'][0]:.2f} at the start, {rd['_load'][1]:.2f} at the end (1 minute)."
               if "_load" in rd else ""),
            "",
        ]
    auto = results.get("auto")
    if auto:
        measured = [name for name in [*PHOTOS, *NOT_PHOTOS] if name in auto]
        mean = {key: statistics.mean(auto[name][key] for name in PHOTOS)
                for key in ("vs_n4", "vs_jpeg", "vs_webp", "vs_webp_ssim", "n4_vs_webp_ssim")}
        lines += [
            "## --block-size auto: block sizes 16, 8 and 4 chosen per 16 x 16 region, quality 5 to 95",
            "",
            "BD-rate of `dctconv.encode(block_size=\"auto\")` against n = 4, JPEG and WebP at the same PSNR, "
            "and against WebP at the same SSIM (scikit-image, data_range 255), beside n = 4's at the same SSIM.",
            "",
            "| image | vs n = 4 | vs JPEG | vs WebP | vs WebP (SSIM) | n = 4 vs WebP (SSIM) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name in measured:
            row = auto[name]
            lines.append(f"| {label(name)} | {row['vs_n4']:+.1f} % | {row['vs_jpeg']:+.1f} % | {row['vs_webp']:+.1f} % "
                         f"| {row['vs_webp_ssim']:+.1f} % | {row['n4_vs_webp_ssim']:+.1f} % |")
        lines += [
            f"| **mean of the photos** | **{mean['vs_n4']:+.1f} %** | **{mean['vs_jpeg']:+.1f} %** | "
            f"**{mean['vs_webp']:+.1f} %** | **{mean['vs_webp_ssim']:+.1f} %** | **{mean['n4_vs_webp_ssim']:+.1f} %** |",
            "",
            f"Targets (issue 19): auto against WebP, mean of the photos <= 0 %: {verdict(mean['vs_webp'] <= 0)}"
            + ("" if mean["vs_webp"] <= 0 else f" (by {mean['vs_webp']:.1f} points)")
            + f"; at the same SSIM <= +10 %: {verdict(mean['vs_webp_ssim'] <= 10)}"
            + ("" if mean["vs_webp_ssim"] <= 10 else f" (by {mean['vs_webp_ssim'] - 10:.1f} points)")
            + f". Load average {auto['_load'][0]:.2f} at the start, {auto['_load'][1]:.2f} at the end (1 minute).",
            "",
            f"Encode of the 4096 x 4096 photo (quality 75, median of interleaved rounds): n = 4 "
            f"{auto['speed']['n4']:.2f} s, auto {auto['speed']['auto']:.2f} s "
            f"({auto['speed']['auto'] / auto['speed']['n4']:.2f} times; {auto['speed_auto_bytes']:,} bytes against "
            f"{auto['speed_n4_bytes']:,}). Load average {auto['speed_load'][0]:.2f} at the start, "
            f"{auto['speed_load'][1]:.2f} at the end.",
            "",
        ]
    n8 = results.get("n8")
    if n8:
        lines += [
            "## n = 8: JPEG's own ground (same quality, same tables)",
            "",
            "dctconv's file over Pillow's optimized JPEG, and PSNR(dctconv) - PSNR(JPEG).",
            "",
            "| image | " + " | ".join(f"quality {quality}" for quality in N8_QUALITIES) + " |",
            "|---|" + "---:|" * len(N8_QUALITIES),
        ]
        measured = [name for name in [*PHOTOS, *NOT_PHOTOS] if name in n8]
        for name in measured:
            cells = [f"{row['bytes'] / row['jpeg_bytes']:.3f} / {row['psnr'] - row['jpeg_psnr']:+.2f} dB"
                     for row in n8[name]]
            lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
        sizes = [statistics.mean(n8[name][index]["bytes"] / n8[name][index]["jpeg_bytes"] for name in PHOTOS)
                 for index in range(len(N8_QUALITIES))]
        gaps = [min(n8[name][index]["psnr"] - n8[name][index]["jpeg_psnr"] for name in measured)
                for index in range(len(N8_QUALITIES))]
        lines.append("| **photos: mean size** | " + " | ".join(f"**{size:.3f}**" for size in sizes) + " |")
        lines.append("| **every image: lowest PSNR difference** | "
                     + " | ".join(f"**{gap:+.2f} dB**" for gap in gaps) + " |")
        below = [f"{label(name)} at quality {quality} ({n8[name][index]['psnr'] - n8[name][index]['jpeg_psnr']:+.2f} dB)"
                 for name in measured for index, quality in enumerate(N8_QUALITIES)
                 if n8[name][index]["psnr"] < n8[name][index]["jpeg_psnr"]]
        lines += [
            "",
            "Targets (issue 19), at every quality: file <= 0.80 of JPEG's (mean of the photos): "
            f"{verdict(max(sizes) <= 0.80)}" + ("" if max(sizes) <= 0.80 else f" (largest {max(sizes):.3f})")
            + "; PSNR no lower than JPEG's on every image: " + verdict(not below)
            + ("" if not below else " (below: " + ", ".join(below) + ")") + "."
            + (f" Load average {n8['_load'][0]:.2f} at the start, {n8['_load'][1]:.2f} at the end (1 minute)."
               if "_load" in n8 else ""),
            "",
        ]
    speed = results.get("speed")
    if speed:
        seconds = speed["median_seconds"]
        lines += [
            f"## Speed: {speed['side']} x {speed['side']} 8-bit photo, median of {speed['rounds']} interleaved rounds",
            "",
            "| step | dctconv (n = 4, quality 75) | Pillow WebP (method 6, quality 75) | ratio |",
            "|---|---:|---:|---:|",
            f"| encode | {seconds['encode']:.2f} s | {seconds['webp_encode']:.2f} s | {speed['encode_over_webp']:.2f} |",
            f"| decode | {seconds['decode']:.2f} s | {seconds['webp_decode']:.2f} s | {speed['decode_over_webp']:.2f} |",
            f"| bits per pixel / PSNR | {speed['dctconv_bpp']:.3f} / {speed['dctconv_psnr']:.2f} dB "
            f"| {speed['webp_bpp']:.3f} / {speed['webp_psnr']:.2f} dB | |",
            "",
        ]
        if "rdoq" in seconds:
            lines += [
                f"Of dctconv's encode, {seconds['rdoq']:.2f} s (median) is RDOQ's (counting the contexts' bits and "
                "deciding the levels, timed inside the same calls).",
                "",
            ]
        lines += [
            f"Targets (issue 19): encode no slower than WebP's method 6: {verdict(speed['encode_over_webp'] <= 1)}; "
            f"decode within 2 times WebP's: {verdict(speed['decode_over_webp'] <= 2)}.",
            "",
        ]
        if "compress" in seconds:
            lines += [
                "`dctconv compress PHOTO.png -o DIR` as a user runs it: a new process (start-up included), "
                "default options, every output "
                "(" + ", ".join(f"`{name}`" for name in speed["compress_outputs"]) + "):",
                "",
                "| command | dctconv | Pillow WebP encode (method 6, quality 75) | ratio |",
                "|---|---:|---:|---:|",
                f"| `dctconv compress` | {seconds['compress']:.2f} s | {seconds['webp_encode']:.2f} s "
                f"| {speed['compress_over_webp']:.2f} |",
                "",
                f"Target (issue 19): compress with every output within 2 times WebP's encode: "
                f"{verdict(speed['compress_over_webp'] <= 2)}. Load average at the start "
                + "{:.2f}, at the end {:.2f} (1 minute).".format(speed["load_average"]["start"][0],
                                                              speed["load_average"]["end"][0]),
                "",
            ]
    latency = results.get("latency")
    if latency:
        cold, warm = latency["cold"], latency["warm"]
        lines += [
            f"## The first call: a new process, a 64 x 64 image, median of {latency['rounds']}",
            "",
            "| numba cache | import dctconv + numpy | first encode | first decode |",
            "|---|---:|---:|---:|",
            f"| empty (the engine compiles) | {cold[0]:.2f} s | {cold[1]:.2f} s | {cold[2]:.2f} s |",
            f"| written (the engine's code loaded) | {warm[0]:.2f} s | {warm[1]:.2f} s | {warm[2]:.2f} s |",
            "",
            "Load average at the start {:.2f}, at the end {:.2f} (1 minute).".format(
                latency["load_average"]["start"][0], latency["load_average"]["end"][0]),
            "",
        ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["rd", "auto", "n8", "speed", "latency"],
                        default=["rd", "auto", "n8", "speed", "latency"])
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3)")
    args = parser.parse_args(argv)
    # Sections not run this time keep their last results: --only speed refreshes the
    # speed table and leaves the rate-distortion ones (minutes to measure) in place.
    previous = RESULTS / "bench_codec.json"
    results = json.loads(previous.read_text(encoding="utf-8")) if previous.exists() else {}
    if "rd" in args.only:
        results["rd"] = run_rd()
    if "auto" in args.only:
        results["auto"] = run_auto(args.rounds)
    if "n8" in args.only:
        results["n8"] = run_n8()
    if "speed" in args.only:
        results["speed"] = run_speed(args.rounds)
    if "latency" in args.only:
        results["latency"] = run_latency(args.rounds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_codec.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = report(results)
    (RESULTS / "bench_codec.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
