"""Scientific images: the data range, the error bound and lossless against SZ3 and JPEG-LS (issue 18).

The images are made here, reproducibly (``tests/science_images.py``), and are not the
sample photos:

* ``micrograph``: a 16-bit fluorescence micrograph (cells on a camera offset, photon and
  read noise) using about 150 .. 3350 of its 0 .. 65535 container;
* ``dem16``: a 16-bit elevation map, 0 .. 840 (fractal terrain);
* ``dem_float``: a float32 elevation field in metres, 236 .. 1076;
* ``sst_nan``: a float32 field (sea-surface-temperature-like, in degrees) with NaN
  no-data discs (land);
* ``micrograph8``: the micrograph's counts scaled to 8 bits (for the lossless check).

Measured side by side in one run, every error computed here from the decoded pixels
(numpy on the original and the decode, NaN pixels compared as NaN), never taken from
an encoder:

1. ``dctconv compress`` at its defaults on the four scientific images: the largest
   error against 1 % of the data range, and whether the terminal shows the range and
   the largest error.
2. ``encode(max_error=E)`` for E = 0.1 %, 0.5 % and 2 % of the range (integers:
   floor(E)): the bound checked on every pixel, and the size against SZ3 at the same
   absolute bound (every image; integers through a float64 copy, rounded back) and
   JPEG-LS with NEAR = floor(E) (8- and 16-bit integers), through imagecodecs; dctconv
   at its default block size and with ``block_size=8``; what the encoder's trial chose (DCT
   steps or no levels, residual in ADRS or ADRP), and the size against the same encoder with
   its residual coded in ADRS only (before ADRP), in the same run.
3. ``encode(max_error=0)`` on the integer images (n = 4 and 8): bit-exact, and its size
   against JPEG-LS, JPEG 2000, JPEG XL and PNG lossless; what the trial chose, and the size
   against ADRS only, as in 2.
4. NaN pixels of ``sst_nan`` at E = 0.5 % of the range: kept exactly, and the cost of
   the mask against the same field with the holes filled.

Writes benchmarks/results/bench_science.json and bench_science.md (docs/science.md
reads them through ``make docs``).

    python benchmarks/bench_science.py               # about two minutes on a busy 2-core machine
    python benchmarks/bench_science.py --report-only # rewrite the .md from the .json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "tests"))

from science_images import micrograph, terrain, with_holes  # noqa: E402

#: The bounds, as shares of the data range.
SHARES = (0.001, 0.005, 0.02)
#: The default's promise: the largest error at most this share of the range.
DEFAULT_SHARE = 0.01
SIDE = 512


def images() -> dict[str, tuple[str, np.ndarray]]:
    micro = micrograph((SIDE, SIDE), seed=21)
    sst = terrain((SIDE, SIDE), low=-2.5, high=31.0, beta=2.6, seed=23, dtype=np.float32)
    return {
        "micrograph": ("16-bit micrograph (cells, photon noise), a fraction of its 0..65535 container", micro),
        "dem16": ("16-bit elevation map, 0..840 m",
                  terrain((SIDE, SIDE), low=0, high=840, seed=22, dtype=np.uint16)),
        "dem_float": ("float32 elevation field in metres, 236..1076",
                      terrain((SIDE, SIDE), low=236.0, high=1076.0, seed=24, dtype=np.float32)),
        "sst_nan": ("float32 temperature-like field with NaN no-data discs", with_holes(sst, count=6, radius=40, seed=25)),
        "micrograph8": ("the micrograph scaled to 8 bits", np.rint((micro.astype(np.float64) - micro.min())
                                                                   / (micro.max() - micro.min()) * 255)
                        .astype(np.uint8)),
    }


def value_range(image) -> tuple[float, float]:
    if image.dtype == np.uint8:
        return 0.0, 255.0
    return float(np.nanmin(image)), float(np.nanmax(image))


def largest_error(image, decoded) -> float:
    """max |image - decoded| over the pixels that are not NaN; inf if a NaN moved or appeared."""
    a, b = image.astype(np.float64), np.asarray(decoded).astype(np.float64)
    nan = np.isnan(a)
    if not np.array_equal(nan, np.isnan(b)):
        return math.inf
    return float(np.max(np.abs(a[~nan] - b[~nan]))) if (~nan).any() else 0.0


def bits(size: int, image) -> float:
    return 8 * size / image.size


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def run_default(named) -> dict:
    """``dctconv compress`` at its defaults on the scientific images, one process, as a user runs it."""
    import dctconv
    from PIL import Image

    science = {k: v for k, v in named.items() if v[1].dtype != np.uint8}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        paths = []
        for name, (_, image) in science.items():
            path = folder / (name + (".tif" if image.dtype.kind == "f" else ".png"))
            Image.fromarray(image).save(path)
            paths.append(path)
        done = subprocess.run([sys.executable, "-m", "dctconv", "compress", *map(str, paths), "-o",
                               str(folder / "out"), "--no-pictures", "--jobs", "1"],
                              capture_output=True, text=True, check=True)
        header = done.stdout.splitlines()[0].split()
        rows = {}
        for (name, (_, image)), path in zip(science.items(), paths):
            metrics = json.loads((folder / "out" / f"{name}_metrics.json").read_text())
            data = (folder / "out" / f"{name}_compressed.dctz").read_bytes()
            low, high = value_range(image)
            error = largest_error(image, dctconv.decode(data))
            line = next(line for line in done.stdout.splitlines() if line.startswith(str(path)))
            rows[name] = {
                "data_range": [low, high],
                "bytes": len(data),
                "bits_per_pixel": bits(len(data), image),
                "psnr_db": metrics["psnr_db"],
                "max_error_measured": error,
                "max_error_reported": metrics["max_abs_error"],
                "limit": DEFAULT_SHARE * (high - low),
                "met": error <= DEFAULT_SHARE * (high - low),
                "terminal_row": " ".join(line.split()),
            }
    return {"terminal_header": header,
            "terminal_shows_range_and_error": "range" in header and "max" in header,
            "images": rows}


def anchor_sz3(image, bound):
    import imagecodecs

    integer = image.dtype.kind in "iu"
    source = image.astype(np.float64) if integer else image
    if not integer and np.isnan(image).any():
        # SZ3 keeps no mask: the NaN pixels are set to the low end, and compared as they were set.
        source = np.where(np.isnan(image), np.float32(np.nanmin(image)), image)
    data, seconds = timed(lambda: imagecodecs.sz3_encode(source, mode=0, abs=bound))
    decoded = imagecodecs.sz3_decode(data, shape=source.shape, dtype=source.dtype)
    if integer:
        decoded = np.rint(decoded)
    return len(data), largest_error(source, decoded), seconds


def anchor_jpegls(image, near):
    import imagecodecs

    data, seconds = timed(lambda: imagecodecs.jpegls_encode(image, level=int(near)))
    return len(data), largest_error(image, imagecodecs.jpegls_decode(data)), seconds


def choice_of(data: bytes) -> str:
    """What the encoder chose for a file: its DCT steps (or no levels) and its residual's section."""
    from dctconv.codec._core import decode_levels
    from dctconv.codec._dctz import read_header

    header = read_header(data)
    residual = next((tag for tag, _, _ in header.section_table if tag in ("ADRS", "ADRP")), "none")
    if not decode_levels(data).levels.any():
        return f"no levels, {residual}"
    steps = f"q{header.quality}" if header.quantization == "quality" else f"step {header.step:.4g}"
    return f"{steps}, {residual}"


def encode_before(image, **settings) -> bytes:
    """``dctconv.encode`` as it was before ADRP: the residual coded in ADRS only (the candidate with
    no levels then never wins: its residual is the whole image, uncoded by any prediction)."""
    import dctconv
    from dctconv.codec import _bound, _core

    def adrs_only(image, source, nan, prediction, max_error, mode, data_range, **_):
        q = _bound.quantize_residual(image, prediction, max_error, mode, data_range)
        if not q.any():
            return {}
        from dctconv.codec._engine import encode_map

        return {"ADRS": encode_map(q[None])}

    original = _core.residual_sections
    _core.residual_sections = adrs_only
    try:
        return dctconv.encode(image, **settings)
    finally:
        _core.residual_sections = original


def run_bounds(named) -> dict:
    import dctconv

    rows = []
    for name, (_, image) in named.items():
        if image.dtype == np.uint8:
            continue
        low, high = value_range(image)
        integer = image.dtype.kind in "iu"
        for share in SHARES:
            bound = share * (high - low)
            if integer:
                bound = float(math.floor(bound))
            data, seconds = timed(lambda: dctconv.encode(image, max_error=bound))
            error = largest_error(image, dctconv.decode(data))
            row = {"image": name, "share": share, "bound": bound, "dctconv_bytes": len(data),
                   "dctconv_bpp": bits(len(data), image), "dctconv_max_error": error, "held": error <= bound,
                   "dctconv_seconds": seconds, "chosen": choice_of(data)}
            before = encode_before(image, max_error=bound)
            row.update(before_bytes=len(before), over_before=len(data) / len(before))
            size, err, secs = anchor_sz3(image, bound)
            row.update(sz3_bytes=size, sz3_bpp=bits(size, image), sz3_max_error=err, sz3_seconds=secs)
            if integer and image.dtype in (np.uint8, np.uint16):
                size, err, secs = anchor_jpegls(image, bound)
                row.update(jpegls_bytes=size, jpegls_bpp=bits(size, image), jpegls_max_error=err,
                           jpegls_seconds=secs)
            data8 = dctconv.encode(image, max_error=bound, block_size=8)
            error8 = largest_error(image, dctconv.decode(data8))
            row.update(n8_bytes=len(data8), n8_bpp=bits(len(data8), image), n8_max_error=error8,
                       held=row["held"] and error8 <= bound)
            better = min(row[k] for k in ("sz3_bytes", "jpegls_bytes") if k in row)
            row["better_anchor"] = "jpegls" if row.get("jpegls_bytes") == better else "sz3"
            row["over_better"] = len(data) / better
            row["n8_over_better"] = len(data8) / better
            rows.append(row)
    ratios = [r["over_better"] for r in rows]
    by_kind = {}
    for kind, test in (("integers", lambda r: "jpegls_bytes" in r), ("floats", lambda r: "jpegls_bytes" not in r)):
        chosen = [r["over_better"] for r in rows if test(r)]
        by_kind[kind] = float(np.exp(np.mean(np.log(chosen)))) if chosen else None
    by_share = {str(s): float(np.exp(np.mean(np.log([r["over_better"] for r in rows if r["share"] == s]))))
                for s in SHARES}
    return {
        "rows": rows,
        "geometric_mean_over_better": float(np.exp(np.mean(np.log(ratios)))),
        "n8_geometric_mean_over_better": float(np.exp(np.mean(np.log([r["n8_over_better"] for r in rows])))),
        "by_kind": by_kind,
        "by_share": by_share,
        "every_bound_held": all(r["held"] for r in rows),
        "geometric_mean_over_before": float(np.exp(np.mean(np.log([r["over_before"] for r in rows])))),
    }


def run_lossless(named) -> dict:
    import dctconv
    import imagecodecs

    rows = []
    for name, (_, image) in named.items():
        if image.dtype.kind not in "iu":
            continue
        data, seconds = timed(lambda: dctconv.encode(image, max_error=0))
        decoded = dctconv.decode(data)
        row = {"image": name, "dtype": str(image.dtype), "dctconv_bytes": len(data),
               "dctconv_bpp": bits(len(data), image), "bit_exact": bool(np.array_equal(decoded, image)
                                                                       and decoded.dtype == image.dtype),
               "dctconv_seconds": seconds, "chosen": choice_of(data)}
        before = encode_before(image, max_error=0)
        row.update(before_bytes=len(before), over_before=len(data) / len(before))
        data8 = dctconv.encode(image, max_error=0, block_size=8)
        row.update(n8_bytes=len(data8), n8_bpp=bits(len(data8), image),
                   n8_bit_exact=bool(np.array_equal(dctconv.decode(data8), image)))
        row["bit_exact"] = row["bit_exact"] and row["n8_bit_exact"]
        narrow = image.astype(np.uint8) if image.max() < 256 else image
        depth = max(1, int(image.max()).bit_length())
        jxl_options = {} if narrow.dtype == np.uint8 else {"bitspersample": depth}
        for key, encode, decode in (
            ("jpegls", lambda: imagecodecs.jpegls_encode(image, level=0), imagecodecs.jpegls_decode),
            ("jpeg2k", lambda: imagecodecs.jpeg2k_encode(narrow, level=0, reversible=True, bitspersample=depth),
             imagecodecs.jpeg2k_decode),
            ("jpegxl", lambda: imagecodecs.jpegxl_encode(narrow, lossless=True, **jxl_options),
             imagecodecs.jpegxl_decode),
            ("png", lambda: imagecodecs.png_encode(image, level=9), imagecodecs.png_decode),
        ):
            out, secs = timed(encode)
            exact = largest_error(image, decode(out)) == 0
            row.update({f"{key}_bytes": len(out), f"{key}_bpp": bits(len(out), image), f"{key}_exact": exact,
                        f"{key}_seconds": secs})
        row["over_jpegls"] = row["dctconv_bytes"] / row["jpegls_bytes"]
        row["n8_over_jpegls"] = row["n8_bytes"] / row["jpegls_bytes"]
        rows.append(row)
    return {"rows": rows, "every_bit_exact": all(r["bit_exact"] for r in rows),
            "geometric_mean_over_jpegls": float(np.exp(np.mean(np.log([r["over_jpegls"] for r in rows])))),
            "geometric_mean_over_before": float(np.exp(np.mean(np.log([r["over_before"] for r in rows])))),
            "n8_geometric_mean_over_jpegls": float(np.exp(np.mean(np.log([r["n8_over_jpegls"] for r in rows]))))}


def run_nan(named) -> dict:
    import dctconv

    _, image = named["sst_nan"]
    low, high = value_range(image)
    bound = 0.005 * (high - low)
    filled = np.where(np.isnan(image), np.float32(low), image)
    with_nan = dctconv.encode(image, max_error=bound)
    without = dctconv.encode(filled, max_error=bound, data_range=(low, high))
    decoded = dctconv.decode(with_nan)
    return {"nan_pixels": int(np.isnan(image).sum()), "bound": bound,
            "nan_kept_exactly": bool(np.array_equal(np.isnan(decoded), np.isnan(image))),
            "max_error": largest_error(image, decoded),
            "bytes_with_nan": len(with_nan), "bytes_filled": len(without),
            "mask_cost_bytes": len(with_nan) - len(without)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _verdict(ratio: float) -> str:
    return "met" if ratio <= 1 else f"**missed** by {100 * (ratio - 1):.2f} %"


def report(results: dict) -> str:
    lines = ["# bench_science: scientific images against SZ3 and JPEG-LS", ""]
    env = results["environment"]
    lines += [f"{env['side']} x {env['side']} images made by tests/science_images.py; imagecodecs "
              f"{env['imagecodecs']}, {env['machine']}; load average {env['load_average']['start'][0]:.2f} at the "
              f"start, {env['load_average']['end'][0]:.2f} at the end (a shared 2-core machine).", ""]
    lines += ["## The images", "", "| image | what | type | data range |", "|---|---|---|---|"]
    for name, info in results["images"].items():
        lines.append(f"| {name} | {info['what']} | {info['dtype']} | {info['range'][0]:.6g} .. {info['range'][1]:.6g} |")
    d = results["default"]
    lines += ["", "## `dctconv compress` at its defaults", "",
              "| image | data range | bits per pixel | PSNR dB (over the range) | largest error (measured) | "
              "1 % of the range | met |", "|---|---|---:|---:|---:|---:|---|"]
    for name, r in d["images"].items():
        lines.append(f"| {name} | {r['data_range'][0]:.6g} .. {r['data_range'][1]:.6g} | {r['bits_per_pixel']:.3f} | "
                     f"{r['psnr_db']:.2f} | {r['max_error_measured']:.6g} | {r['limit']:.6g} | "
                     f"{'yes' if r['met'] else '**no**'} |")
    lines += ["", f"The terminal's columns: `{' '.join(d['terminal_header'])}` (range and largest error "
              f"{'shown' if d['terminal_shows_range_and_error'] else '**not shown**'})."]
    b = results["bounds"]
    lines += ["", "## `--max-error E` against SZ3 (absolute bound E) and JPEG-LS (NEAR = E)", "",
              "Every size in bits per pixel; every largest error measured on the decoded pixels. dctconv at "
              "its default 4 x 4 blocks (`--max-error E` alone) and with `-n 8`; integers take floor(E) "
              "(0.1 % of 840 is 0: lossless).", "",
              "| image | E (share of range) | dctconv | its largest error | chosen | dctconv -n 8 | SZ3 | JPEG-LS | "
              "dctconv / the better | -n 8 / the better | dctconv / ADRS only |",
              "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in b["rows"]:
        jls = f"{r['jpegls_bpp']:.3f}" if "jpegls_bpp" in r else "-"
        lines.append(f"| {r['image']} | {r['bound']:.6g} ({100 * r['share']:g} %) | {r['dctconv_bpp']:.3f} | "
                     f"{r['dctconv_max_error']:.6g} | {r['chosen']} | {r['n8_bpp']:.3f} | {r['sz3_bpp']:.3f} | {jls} | "
                     f"{r['over_better']:.3f} | {r['n8_over_better']:.3f} | {r['over_before']:.3f} |")
    kinds = b["by_kind"]
    lines += ["", f"Every bound held on every pixel: {'yes' if b['every_bound_held'] else '**no**'}. "
              f"dctconv's size over the better anchor, geometric mean over the {len(b['rows'])} rows: "
              f"**{b['geometric_mean_over_better']:.3f}** (integers {kinds['integers']:.3f}, floats "
              f"{kinds['floats']:.3f}; at 0.1 % {b['by_share']['0.001']:.3f}, 0.5 % {b['by_share']['0.005']:.3f}, "
              f"2 % {b['by_share']['0.02']:.3f}); with `-n 8` **{b['n8_geometric_mean_over_better']:.3f}**. "
              f"Target: at most 1: {_verdict(b['geometric_mean_over_better'])} at the default block size, "
              f"{_verdict(b['n8_geometric_mean_over_better'])} with `-n 8`.",
              "", "`chosen`: the DCT steps the encoder's trial picked for the file (`no levels`: none at all, the "
              "image itself quantized to the bound) and the section of its residual (`ADRS`: coded as it is, "
              "`ADRP`: predicted pixel by pixel). `dctconv / ADRS only`: against the same encoder with its "
              f"residual coded in ADRS only (as before ADRP), in this run: geometric mean "
              f"**{b['geometric_mean_over_before']:.3f}**."]
    seconds = {key: sum(r[f"{key}_seconds"] for r in b["rows"] if f"{key}_seconds" in r)
               for key in ("dctconv", "sz3", "jpegls")}
    lines += ["", f"What the search for steps costs in time: the {len(b['rows'])} encodes took {seconds['dctconv']:.1f} s "
              f"with dctconv (4 x 4 blocks, steps chosen), {seconds['sz3']:.2f} s with SZ3 and "
              f"{seconds['jpegls']:.2f} s with JPEG-LS (its {sum('jpegls_seconds' in r for r in b['rows'])} rows), "
              "one run each on the busy machine above."]
    lo = results["lossless"]
    lines += ["", "## `--max-error 0` (lossless) against JPEG-LS, JPEG 2000, JPEG XL and PNG", "",
              "| image | dctconv | chosen | dctconv -n 8 | bit-exact | JPEG-LS | JPEG 2000 | JPEG XL | PNG | "
              "dctconv / JPEG-LS | -n 8 / JPEG-LS | dctconv / ADRS only |",
              "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in lo["rows"]:
        lines.append(f"| {r['image']} ({r['dtype']}) | {r['dctconv_bpp']:.3f} | {r['chosen']} | {r['n8_bpp']:.3f} | "
                     f"{'yes' if r['bit_exact'] else '**no**'} | {r['jpegls_bpp']:.3f} | {r['jpeg2k_bpp']:.3f} | "
                     f"{r['jpegxl_bpp']:.3f} | {r['png_bpp']:.3f} | {r['over_jpegls']:.3f} | {r['n8_over_jpegls']:.3f} | "
                     f"{r['over_before']:.3f} |")
    lines += ["", f"Geometric mean of dctconv over JPEG-LS: **{lo['geometric_mean_over_jpegls']:.3f}**, with `-n 8` "
              f"**{lo['n8_geometric_mean_over_jpegls']:.3f}**. Target: at most 1: "
              f"{_verdict(lo['geometric_mean_over_jpegls'])} at the default block size, "
              f"{_verdict(lo['n8_geometric_mean_over_jpegls'])} with `-n 8`."]
    n = results["nan"]
    lines += ["", "## NaN (no-data) pixels", "",
              f"sst_nan at E = {n['bound']:.6g}: {n['nan_pixels']:,} NaN pixels, kept exactly: "
              f"{'yes' if n['nan_kept_exactly'] else '**no**'}; largest error of the others {n['max_error']:.6g}; "
              f"{n['bytes_with_nan']:,} bytes against {n['bytes_filled']:,} for the same field with the NaN pixels "
              f"filled (the mask and the holes cost {n['mask_cost_bytes']:+,} bytes)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json")
    parser.add_argument("--side", type=int, default=None, help="image side (a smaller one for a quick try)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the .json and .md")
    args = parser.parse_args()
    global SIDE
    SIDE = args.side or SIDE
    json_path, md_path = args.results / "bench_science.json", args.results / "bench_science.md"
    if args.report_only:
        md_path.write_text(report(json.loads(json_path.read_text())))
        return
    import imagecodecs

    start = load_average()
    named = images()
    results = {
        "images": {name: {"what": what, "dtype": str(image.dtype), "range": list(value_range(image)),
                          "shape": list(image.shape)} for name, (what, image) in named.items()},
        "default": run_default(named),
        "bounds": run_bounds(named),
        "lossless": run_lossless(named),
        "nan": run_nan(named),
    }
    results["environment"] = {"side": SIDE, "imagecodecs": imagecodecs.__version__,
                              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                                         f"{platform.python_version()}",
                              "load_average": {"start": start, "end": load_average()}}
    args.results.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(report(results))
    print(md_path.read_text())


if __name__ == "__main__":
    main()
