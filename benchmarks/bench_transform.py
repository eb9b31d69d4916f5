"""Speed of dctconv.forward / inverse beside what a numpy user would otherwise write.

For 512², 2048², 4096² and 8192² images, float64 and float32, one run times:

* ``dctconv``          forward / inverse with the default thread count, and with workers=1;
* ``scipy.fft``        ``dctn`` / ``idctn(norm="ortho")`` over the block axes (1, 3) of
                       ``x.reshape(H/n, n, W/n, n)`` (scipy's default, one thread, and
                       workers=-1, all cores);
* ``scipy.signal``     the literal strided convolution: ``correlate2d`` with each of the
                       n*n kernels, keeping every n-th output (for the inverse, the
                       transposed convolution: ``convolve2d`` of the zero-upsampled
                       maps); 512² only, it is slow;
* ``x.copy()``         the memory-bound floor: one read and one write of every value.

Every case runs once to warm up, then the cases are timed in interleaved rounds (each
round times every case once), so that load from other processes hits all of them
alike; the table shows medians. Bandwidth counts the bytes read plus the bytes written
(16 bytes per pixel in float64), the same for every method.

Writes benchmarks/results/bench_transform.csv, .md (the table) and .png (time per
megapixel against image size, log-log).

    python benchmarks/bench_transform.py                 # the full run (about 2 minutes)
    python benchmarks/bench_transform.py --sizes 512 2048 --rounds 3   # a quick look
    python benchmarks/bench_transform.py --tune          # STRIP_BYTES x workers at 4096²
    python benchmarks/bench_transform.py --wait-idle 0.3 # on a machine shared with others
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal

import dctconv.transform as transform
from dctconv.kernels import dct_kernels

N = 4
RESULTS = Path(__file__).resolve().parent / "results"
ROUNDS = {512: 31, 2048: 11, 4096: 15, 8192: 5}
SIGNAL_MAX_SIDE = 512


# ---------------------------------------------------------------- the methods


def scipy_forward(x, workers=None):
    h, w = x.shape
    return scipy.fft.dctn(x.reshape(h // N, N, w // N, N), axes=(1, 3), norm="ortho", workers=workers)


def scipy_inverse(x, workers=None):
    h, w = x.shape
    return scipy.fft.idctn(x.reshape(h // N, N, w // N, N), axes=(1, 3), norm="ortho", workers=workers)


def signal_forward(x):
    kernels = dct_kernels(N).astype(x.dtype)
    return np.stack([scipy.signal.correlate2d(x, k, mode="valid")[::N, ::N] for k in kernels])


def signal_inverse(coefficients):
    kernels = dct_kernels(N).astype(coefficients.dtype)
    _, rows, cols = coefficients.shape
    image = np.zeros((rows * N, cols * N), coefficients.dtype)
    upsampled = np.zeros_like(image)
    for channel, kernel in zip(coefficients, kernels):
        upsampled[::N, ::N] = channel
        image += scipy.signal.convolve2d(upsampled, kernel, mode="full")[: rows * N, : cols * N]
    return image


def cases_for(side: int, dtype):
    """The timed calls for one image size and dtype: {(direction, method): callable}."""
    rng = np.random.default_rng(side)
    x = (rng.random((side, side)) * 255).astype(dtype)
    c = transform.forward(x, N)
    # The inverse's input for scipy: the same values in scipy's block layout.
    c_scipy = scipy_forward(x).reshape(side, side)
    cases = {
        ("forward", "dctconv"): lambda: transform.forward(x, N),
        ("forward", "dctconv workers=1"): lambda: transform.forward(x, N, workers=1),
        ("forward", "scipy.fft dctn"): lambda: scipy_forward(x),
        ("forward", "scipy.fft dctn workers=-1"): lambda: scipy_forward(x, workers=-1),
        ("inverse", "dctconv"): lambda: transform.inverse(c),
        ("inverse", "dctconv workers=1"): lambda: transform.inverse(c, workers=1),
        ("inverse", "scipy.fft idctn"): lambda: scipy_inverse(c_scipy),
        ("inverse", "scipy.fft idctn workers=-1"): lambda: scipy_inverse(c_scipy, workers=-1),
        ("copy", "x.copy()"): lambda: x.copy(),
    }
    if side <= SIGNAL_MAX_SIDE:
        cases[("forward", "scipy.signal correlate2d")] = lambda: signal_forward(x)
        cases[("inverse", "scipy.signal convolve2d")] = lambda: signal_inverse(c)
    return cases


def check_agreement(side: int, dtype) -> float:
    """Largest difference between dctconv and scipy.fft (a benchmark of wrong code is worthless)."""
    x = (np.random.default_rng(1).random((side, side)) * 255).astype(dtype)
    ours = transform.forward(x, N)
    theirs = scipy_forward(x).transpose(1, 3, 0, 2).reshape(N * N, side // N, side // N)
    back = transform.inverse(ours)
    return max(float(np.abs(ours - theirs).max()), float(np.abs(back - x).max()))


# ---------------------------------------------------------------- timing


#: With --wait-idle: start a round only once the CPUs were at most this busy (a
#: fraction, from /proc/stat over half a second), waiting at most WAIT_LIMIT seconds.
WAIT_IDLE = None
WAIT_LIMIT = 60.0
waits = {"rounds": 0, "timed out": 0}


def busy_fraction(interval: float = 0.5) -> float:
    def read():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    total0, idle0 = read()
    time.sleep(interval)
    total1, idle1 = read()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_for_idle() -> None:
    """Sleep until other processes leave the CPUs mostly idle (only with --wait-idle)."""
    if WAIT_IDLE is None:
        return
    waits["rounds"] += 1
    deadline = time.monotonic() + WAIT_LIMIT
    while busy_fraction() > WAIT_IDLE:
        if time.monotonic() > deadline:
            waits["timed out"] += 1
            return


def time_interleaved(cases: dict, rounds: int) -> dict:
    """Median and minimum seconds of each case, timed in ``rounds`` interleaved rounds."""
    for call in cases.values():
        call()  # warm-up: first-touch of inputs, thread start, scipy plan cache
    samples = {key: [] for key in cases}
    keys = list(cases)
    order = random.Random(len(keys) * rounds)
    for _ in range(rounds):
        wait_for_idle()
        # A new order each round: no case always runs after the same neighbour (after
        # the slow scipy.signal calls, say, the caches are cold).
        order.shuffle(keys)
        for key in keys:
            start = time.perf_counter()
            cases[key]()
            samples[key].append(time.perf_counter() - start)
    return {key: (statistics.median(v), min(v)) for key, v in samples.items()}


def machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "L2 cache", "L3 cache"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        info["Model name"] = platform.processor() or "unknown"
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = "; ".join(
            f"{p['internal_api']} {p['version']} ({p.get('architecture')}, {p['num_threads']} threads)"
            for p in threadpool_info() if p["user_api"] == "blas"
        )
    except ImportError:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{blas['name']} {blas['version']}"
    info["default workers"] = transform.default_workers()
    try:
        info["load average at start"] = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if var in os.environ:
            info[var] = os.environ[var]
    return info


# ---------------------------------------------------------------- the run


def run(sizes, rounds_override=None):
    rows = []
    for side in sizes:
        for dtype in (np.float64, np.float32):
            name = np.dtype(dtype).name
            error = check_agreement(min(side, 1024), dtype)
            limit = 1e-9 if dtype == np.float64 else 1e-3
            if not error < limit * 255:
                raise SystemExit(f"dctconv and scipy.fft disagree by {error} at {side}² {name}")
            rounds = rounds_override or ROUNDS.get(side, 5)
            timings = time_interleaved(cases_for(side, dtype), rounds)
            copy_median = timings[("copy", "x.copy()")][0]
            for (direction, method), (median, best) in timings.items():
                directions = ("forward", "inverse") if direction == "copy" else (direction,)
                for d in directions:
                    ours = timings[(d, "dctconv")][0]
                    rows.append({
                        "side": side, "dtype": name, "direction": d, "method": method,
                        "median_s": median, "min_s": best, "rounds": rounds,
                        "ms_per_megapixel": median * 1e3 / (side * side / 1e6),
                        "gb_per_s": 2 * side * side * np.dtype(dtype).itemsize / median / 1e9,
                        "times_dctconv": median / ours,
                        "times_copy": median / copy_median,
                    })
            print(f"  {side}² {name}: done ({rounds} rounds)", file=sys.stderr)
    return rows


def table(rows) -> str:
    lines = [
        "| size | dtype | direction | method | median ms | GB/s | time / dctconv | time / copy |",
        "|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['side']}² | {r['dtype']} | {r['direction']} | {r['method']} | {r['median_s'] * 1e3:.1f} "
            f"| {r['gb_per_s']:.1f} | {r['times_dctconv']:.2f} | {r['times_copy']:.2f} |"
        )
    return "\n".join(lines)


def summary(rows) -> str:
    """One line per size, dtype and direction: the numbers the targets are about."""
    at = {(r["side"], r["dtype"], r["direction"], r["method"]): r for r in rows}
    lines = [
        "| size | dtype | direction | dctconv ms | 1 thread ms | scipy.fft ms | scipy.fft / dctconv "
        "| x.copy() ms | dctconv / x.copy() | dctconv GB/s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (side, dtype, direction, method), r in at.items():
        if method != "dctconv":
            continue
        scipy_name = "scipy.fft dctn" if direction == "forward" else "scipy.fft idctn"
        one = at[(side, dtype, direction, "dctconv workers=1")]["median_s"]
        theirs = at[(side, dtype, direction, scipy_name)]["median_s"]
        copy = at[(side, dtype, direction, "x.copy()")]["median_s"]
        lines.append(
            f"| {side}² | {dtype} | {direction} | {r['median_s'] * 1e3:.1f} | {one * 1e3:.1f} | {theirs * 1e3:.1f} "
            f"| {theirs / r['median_s']:.1f} | {copy * 1e3:.1f} | {r['median_s'] / copy:.2f} | {r['gb_per_s']:.1f} |"
        )
    return "\n".join(lines)


def targets(rows) -> list[str]:
    """The issue's targets at 4096², from this run."""
    at = {(r["side"], r["dtype"], r["direction"], r["method"]): r["median_s"] for r in rows}
    out = []
    if not any(key[0] == 4096 for key in at):
        return ["(4096² not in this run: targets not checked)"]
    for d, scipy_name in (("forward", "scipy.fft dctn"), ("inverse", "scipy.fft idctn")):
        ours = at[(4096, "float64", d, "dctconv")]
        speedup = at[(4096, "float64", d, scipy_name)] / ours
        to_copy = ours / at[(4096, "float64", d, "x.copy()")]
        f32 = ours / at[(4096, "float32", d, "dctconv")]
        out.append(f"{d} 4096² float64: {speedup:.1f}x faster than {scipy_name} (target >= 5): "
                   f"{'met' if speedup >= 5 else 'NOT met'}")
        out.append(f"{d} 4096² float64: {to_copy:.2f}x the time of x.copy() (target <= 3): "
                   f"{'met' if to_copy <= 3 else 'NOT met'}")
        out.append(f"{d} 4096²: float32 {f32:.2f}x faster than float64 (target >= 1.5): "
                   f"{'met' if f32 >= 1.5 else 'NOT met'}")
    return out


def plot(rows, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One colour per method (the same on both panels), solid float64, dashed float32.
    methods = list(dict.fromkeys(r["method"] for r in rows))

    def family(method):  # dctn and idctn, correlate2d and convolve2d share a colour
        return method.replace("idctn", "dctn").replace("convolve2d", "correlate2d")

    families = list(dict.fromkeys(family(m) for m in methods))
    colours = {m: ("black" if m == "x.copy()" else f"C{families.index(family(m))}") for m in methods}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5), sharey=True)
    for ax, direction in zip(axes, ("forward", "inverse")):
        for method in methods:
            for dtype, style, marker in (("float64", "-", "o"), ("float32", "--", "s")):
                points = sorted((r["side"] ** 2 / 1e6, r["ms_per_megapixel"]) for r in rows
                                if r["direction"] == direction and r["method"] == method and r["dtype"] == dtype)
                if points:
                    xs, ys = zip(*points)
                    ax.plot(xs, ys, style, marker=marker, color=colours[method], label=f"{method} ({dtype})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("image size (megapixels)")
        ax.set_title(f"{direction}, block size {N}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("median time per megapixel (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tune(rounds: int) -> None:
    """STRIP_BYTES and thread count at 4096², float64 and float32, interleaved."""
    side = 4096
    for dtype in (np.float64, np.float32):
        x = (np.random.default_rng(0).random((side, side)) * 255).astype(dtype)
        c = transform.forward(x, N)
        cases = {("copy", 0, 0): lambda: x.copy()}
        for strip in (1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21):
            for workers in sorted({1, transform.default_workers()}):
                def fwd(strip=strip, workers=workers):
                    transform.STRIP_BYTES = strip
                    transform.forward(x, N, workers=workers)

                def inv(strip=strip, workers=workers):
                    transform.STRIP_BYTES = strip
                    transform.inverse(c, workers=workers)

                cases[("forward", strip, workers)] = fwd
                cases[("inverse", strip, workers)] = inv
        timings = time_interleaved(cases, rounds)
        print(f"\n{np.dtype(dtype).name}, {side}², {rounds} rounds: median (min) ms")
        for (direction, strip, workers), (median, best) in sorted(timings.items()):
            label = "x.copy()" if direction == "copy" else f"{direction} STRIP_BYTES={strip >> 10} KiB workers={workers}"
            print(f"  {label:48s} {median * 1e3:7.1f} ({best * 1e3:.1f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 2048, 4096, 8192])
    parser.add_argument("--rounds", type=int, default=None, help="rounds per size (default: more for small sizes)")
    parser.add_argument("--tune", action="store_true", help="compare STRIP_BYTES and thread counts instead")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--wait-idle", type=float, default=None, metavar="BUSY",
                        help="on a shared machine: start each round only once the CPUs were at most "
                             "this busy (0 to 1) for half a second, waiting up to a minute")
    args = parser.parse_args(argv)
    global WAIT_IDLE
    WAIT_IDLE = args.wait_idle
    info = machine()
    for key, value in info.items():
        print(f"{key}: {value}")
    if args.tune:
        tune(args.rounds or 7)
        return
    rows = run(args.sizes, args.rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "bench_transform.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = table(rows)
    checks = targets(rows)
    try:
        info["load average at end"] = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        pass
    if WAIT_IDLE is not None:
        info["rounds started only below this CPU busy fraction"] = (
            f"{WAIT_IDLE} ({waits['timed out']} of {waits['rounds']} rounds started anyway after {WAIT_LIMIT:.0f} s)"
        )
    machine_line = ", ".join(f"{k}: {v}" for k, v in info.items())
    (args.out / "bench_transform.md").write_text(
        f"Machine: {machine_line}\n\n{summary(rows)}\n\n" + "\n".join(f"- {c}" for c in checks)
        + f"\n\nAll cases:\n\n{text}\n"
    )
    plot(rows, args.out / "bench_transform.png")
    print()
    print(text)
    print()
    print(summary(rows))
    print()
    print("\n".join(checks))
    print(f"\nwritten: {args.out}/bench_transform.csv, .md, .png")


if __name__ == "__main__":
    main()
