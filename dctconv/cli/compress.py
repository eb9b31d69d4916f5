"""``dctconv compress``: compress images with dctconv's codec, and measure what is lost."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import click

from ..limits import DEFAULT_BLOCK_SIZE
from . import _batch, _report
from ._options import (
    BLOCK_SIZE_RANGE,
    WholeNumber,
    block_size_option,
    cluster_options,
    command,
    finite,
    jobs_option,
    json_option,
    max_pixels_option,
    no_pictures_option,
    output_dir_option,
    skip_existing_option,
)


def _compress_json(result) -> dict:
    """One file of ``compress --json``: input and outputs as for transform, then its numbers."""
    numbers = result.report.as_dict()
    del numbers["source"], numbers["files"]  # the input and the outputs say it
    return {"input": str(result.source), "outputs": [str(p) for p in result.outputs], **numbers}


def _no_levels(report) -> bool:
    """True for a file whose DCT levels are all 0 under a bound: its residual codes every pixel."""
    return report.max_error_bound is not None and report.kept_per_block == 1 and report.nonzero_fraction == 0


def _quantization_text(report) -> str:
    if _no_levels(report):
        return "no DCT"
    if report.quality is not None:
        return f"q{report.quality}"
    return "none" if report.step == 0 else f"step {report.step:g}"


def _number(value) -> str:
    return "-" if value is None else f"{value:.6g}"


def _compress_table(reports) -> str:
    """One row per image (images other than 8-bit add their data range, largest error, RMSE and bound),
    and a note for each number that is missing, saying why."""
    science = any(r.image_mode != "L" for r in reports)
    rows = [("file", "n", "steps", "K", "nonzero", "PSNR dB", "SSIM", "bpp", "bytes")]
    if science:
        rows[0] += ("data range", "max error", "RMSE", "bound")
    notes = []
    for r in reports:
        if r.ssim is None:
            notes.append(f"Note: {_report.one_line(r.source)}: SSIM -: the image is {r.width} x {r.height} pixels; "
                         "SSIM needs at least 3 on each side")
        extra = ()
        if science:
            extra = (f"{r.data_range[0]:.6g}..{r.data_range[1]:.6g}", _number(r.max_abs_error), _number(r.rmse),
                     _number(r.max_error_bound))
        rows.append((
            _report.one_line(r.source),
            str(r.block_size),
            _quantization_text(r),
            "all" if r.block_size == "auto" else f"{r.kept_per_block}/{r.block_size ** 2}",
            f"{100 * r.nonzero_fraction:.1f}%",
            "inf" if r.psnr_db is None else f"{r.psnr_db:.2f}",
            "-" if r.ssim is None else f"{r.ssim:.4f}",
            f"{r.bits_per_pixel:.3f}",
            f"{r.compressed_bytes:,}",
        ) + extra)
    bare = [_report.one_line(r.source) for r in reports if _no_levels(r)]
    if bare:
        # The step and K such a file records are how it zeroes the DCT, not a quantization
        # anyone chose: the table says what the file is instead, once for all of them.
        notes.append(f"Note: no DCT ({', '.join(bare)}): every level is 0 and each pixel is coded by the "
                     "bounded residual, predicted from its neighbours as JPEG-LS codes pixels: the smallest "
                     "file within the bound")
    align = "lrrrrrrrr" + ("rrrr" if science else "")
    lines = _report.table(rows, align=align)
    if science:
        lines.append("PSNR and SSIM over each image's data range; max error and RMSE in its own units")
    return "\n".join(lines + notes)


#: How the printed BD-rates name the curves.
_CURVE_NAMES = {"zonal": "zonal K", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF", "sz3": "SZ3", "zfp": "ZFP",
                "jpegls": "JPEG-LS", "jpeg2k": "JPEG 2000", "jpegxl": "JPEG XL", "png": "PNG"}


def _bd_rate_table(reports) -> str:
    """The BD-rates of the sweep: one row per image and curve, percent bits at equal PSNR and SSIM.

    With an image other than 8-bit among them, a third column: at equal largest
    error, of dctconv's --max-error curve.
    """
    science = any(r.image_mode != "L" for r in reports)
    measures = ("psnr", "ssim") + (("max_error",) if science else ())
    rows = [("file", "against", "at equal PSNR", "at equal SSIM") + (("at equal max error",) if science else ())]
    missing = {}  # (file, measure, why) -> the curves

    def percent(value):
        return "n/a" if value is None else f"{value:+.1f} %"

    for r in reports:
        for curve, rates in (r.bd_rates or {}).items():
            name = _CURVE_NAMES.get(curve, curve)
            rows.append((_report.one_line(r.source), name)
                        + tuple(percent(rates.get(f"{m}_percent")) for m in measures))
            for measure in measures:
                if rates.get(f"{measure}_percent") is None:
                    why = _why_no_bd_rate(rates, measure, name)
                    label = "max error" if measure == "max_error" else measure.upper()
                    missing.setdefault((r.source, label, why), []).append(name)
    notes = [_report.one_line(f"Note: {source}: n/a against {_listed(curves)} at equal {measure}: {why}")
             for (source, measure, why), curves in missing.items()]
    return ("BD-rates of dctconv (quality 5 .. 95" + ("; at equal max error its --max-error curve" if science else "")
            + "): how many percent more bits it needs than the other curve for the same quality (negative: fewer)\n"
            + "\n".join(_report.table(rows, align="llrr" + ("r" if science else "")) + notes))


def _listed(names) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _why_no_bd_rate(rates: dict, measure: str, name: str) -> str:
    """Why a BD-rate could not be computed (:func:`dctconv.measure._sweep.bd_rate` returned None)."""
    ours, theirs = rates.get(f"{measure}_points", (2, 2))
    label = "largest error" if measure == "max_error" else measure.upper()
    if min(ours, theirs) == 0:
        curve = "dctconv's curve" if ours == 0 else f"the {name} curve"
        if measure == "max_error":
            return f"{curve} has no point with a nonzero largest error (lossless only)"
        lacking = ("an identical reconstruction has none" if measure == "psnr"
                   else "an image under 3 pixels on a side has none")
        return f"{curve} has no point with a{'n' if measure == 'ssim' else ''} {label} ({lacking})"
    if min(ours, theirs) < 2:
        curve = "dctconv's curve" if ours < 2 else f"the {name} curve"
        return f"{curve} has 1 point whose {label} more bits improve; a BD-rate needs 2"
    if rates.get(f"{measure}_overlap", 1.0) == 0:
        return f"the two curves' {label} ranges do not overlap"
    return "the integral is not finite"


def _data_range(ctx, param, value):
    """--data-range LOW:HIGH: two finite numbers, LOW < HIGH."""
    if value is None:
        return None
    parts = value.split(":")
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not LOW:HIGH (two numbers, such as 0:4095).", ctx=ctx,
                                 param=param) from None
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise click.BadParameter(f"{value!r} is not two finite numbers with LOW < HIGH.", ctx=ctx, param=param)
    return low, high


def _one_quantization(ctx, param, value):
    """--quality and --step both set the steps: refuse the two together, whatever their order."""
    if param.name == "step":
        value = finite(ctx, param, value)
    other = "quality" if param.name == "step" else "step"
    if value is not None and ctx.params.get(other) is not None:
        raise click.BadParameter(
            "cannot be combined with --quality (--quality gives each frequency its own step, "
            "--step one step for all); give one of them.", ctx=ctx, param_hint="'--step'",
        )
    return value


def _check_auto(ctx, *, keep, threshold, step, sweep) -> None:
    """--block-size auto codes every frequency of quantized levels: --keep, --threshold and --step 0 are
    refused, and --sweep (its curves are of one block size)."""
    for given, name in ((keep is not None, "--keep"), (threshold > 0, "--threshold"),
                        (step is not None and step == 0, "--step"), (sweep, "--sweep")):
        if given:
            what = "--step 0 (unquantized coefficients)" if name == "--step" else name
            why = ("the sweep's curves are of one block size" if name == "--sweep"
                   else "--block-size auto codes the quantized levels of every frequency")
            raise click.BadParameter(f"{why}; drop {what} or give one block size.", ctx=ctx,
                                     param_hint=f"'{name}'")


@command
@click.argument(
    "inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...",
    type=click.Path(exists=True, path_type=Path),
)
@output_dir_option
@block_size_option(auto=True, help=f"Block side n ({BLOCK_SIZE_RANGE}), or auto: 16, 8 or 4 chosen per 16 x 16 "
                                   f"region for the least distortion plus rate.  [default: {DEFAULT_BLOCK_SIZE}]")
@click.option("--quality", "-q", type=WholeNumber(1, 100), default=None, callback=_one_quantization,
              help="1 to 100: a step for each frequency, JPEG's table scaled as libjpeg scales it (at "
                   "n = 8 exactly JPEG's steps), and to the image's bit depth; higher keeps more.  "
                   "[default: 75 unless --step]")
@click.option("--step", type=click.FloatRange(min=0), default=None, callback=_one_quantization,
              help="Instead of --quality, one step for every frequency, in coefficient units: c is "
                   "stored as rint(c / step); 0 stores the coefficients unquantized.")
@click.option("--keep", type=int, default=None,
              help="Zonal mode: keep only the K lowest frequencies of each block in JPEG zigzag order "
                   "(1 to n*n), zero the others; combines with --quality or --step.  [default: n*n]")
@click.option("--threshold", type=click.FloatRange(min=0), default=0.0, show_default=True,
              callback=finite,
              help="Also zero AC coefficients with |c| below this, before quantization (DC always kept).")
@click.option("--data-range", metavar="LOW:HIGH", default=None, callback=_data_range,
              help="The range of the data: quality steps are scaled to it, decoded pixels clipped to it, "
                   "PSNR and SSIM computed over it (a detector's range, the same for a whole series). It "
                   "must contain every value of the image.  [default: 0:255 for 8-bit images, the image's "
                   "smallest and largest value for the others]")
@click.option("--max-error", type=click.FloatRange(min=0), default=None, callback=finite, metavar="E",
              help="Every decoded pixel within E of the original, in the data's units (integers: floor(E); "
                   "0 is lossless), checked before the file is written. Alone, the steps are chosen for "
                   "the smallest file.  [default for images other than 8-bit: 1 % of the data range, "
                   "with --quality 75]")
@click.option("--sweep", is_flag=True,
              help="Also write <stem>_sweep.csv, .json and .png: PSNR and SSIM against bits per pixel for "
                   "dctconv at quality 5 .. 95, for K = 1 .. n*n, for Pillow's JPEG, WebP and AVIF (8-bit) and "
                   "JPEG XL; for other images also the largest error, dctconv --max-error, SZ3, ZFP, JPEG-LS, "
                   "JPEG 2000 and PNG (imagecodecs: the science extra); print the BD-rates of dctconv "
                   "against each.")
@no_pictures_option
@skip_existing_option
@max_pixels_option
@jobs_option
@cluster_options
@json_option
@click.pass_context
def compress(ctx, inputs, output_dir, block_size, quality, step, keep, threshold, data_range, max_error, sweep,
             no_pictures, skip_existing, max_pixels, jobs, as_json):
    """Compress images with dctconv's codec, and measure what is lost.

    Every n x n block is transformed; each frequency is divided by its step
    (--quality: JPEG-like steps per frequency, default 75; or one --step) and
    rounded; the levels are entropy coded frequency by frequency, each modelled on
    the lower frequencies around it. For each image, DIR receives:

    \b
      <stem>_compressed.dctz      the compressed file (decode it with transform --inverse)
      <stem>_reconstruction.png   the decoded image at the source bit depth
                                  (.tif for 32-bit integer and float sources)
      <stem>_error.png            |original - reconstruction|, stretched, its scale below it
      <stem>_maps.png             the decoded coefficient maps (dropped ones hatched)
      <stem>_summary.png          original, reconstruction, error and nonzero frequencies
      <stem>_metrics.json         PSNR, SSIM, MSE, largest error, size, bits per pixel, ...

    A folder stands for the image files directly in it (by suffix, sorted by name);
    a file given twice is processed once. A table of the numbers is printed at the
    end; --json prints {"files": [...]}, each with its input, outputs and numbers.

    \b
    Examples:
        dctconv compress photo.png -o out
        dctconv compress photos/ -o out --block-size 8 --quality 50
        dctconv compress photo.png -o out --keep 6 --step 1
        dctconv compress photo.png -o out --sweep
        dctconv compress slice16.png -o out --max-error 0
        dctconv compress dem.tif -o out --max-error 0.5 --data-range 0:2000
        dctconv transform --inverse out/photo_compressed.dctz -o decoded
    """
    from ..io._atomic import InputPaths
    from ..runtime._jobs import COMPRESS_DATA_IMPORTS, COMPRESS_IMPORTS, compress_file
    n = block_size or DEFAULT_BLOCK_SIZE
    if n == "auto":
        _check_auto(ctx, keep=keep, threshold=threshold, step=step, sweep=sweep)
    elif keep is not None and not 1 <= keep <= n * n:
        raise click.BadParameter(
            f"must be from 1 to {n * n} for --block-size {n} (got {keep}).", ctx=ctx, param_hint="'--keep'"
        )
    files, folder_errors, notes = _batch.input_files(inputs)
    _report.echo_lines(folder_errors + notes)
    files, output_dir = _batch.for_workers(ctx, files, output_dir)

    work = functools.partial(
        compress_file, out_dir=output_dir, block_size=n, quality=quality, step=step, keep=keep,
        threshold=threshold, data_range=data_range, max_error=max_error, sweep=sweep, max_pixels=max_pixels,
        protected=InputPaths(files),
        pictures=not no_pictures,
    )
    skip = functools.partial(_batch.skip_up_to_date, command="compress", work=work, out_dir=output_dir,
                             stem_of=lambda path: path.stem) if skip_existing else None
    results, failed = _batch.run_each(
        ctx, files, work, label="compress", jobs=jobs, cluster=True, output_name=lambda path: path.stem, skip=skip,
        preload=COMPRESS_DATA_IMPORTS if no_pictures else COMPRESS_IMPORTS,
    )
    _report.notes(results)
    if as_json:
        click.echo(json.dumps({"files": [_compress_json(r) for r in results]}, indent=2))
    elif results:
        click.echo(_compress_table([r.report for r in results]))
        if sweep:
            click.echo()
            click.echo(_bd_rate_table([r.report for r in results]))
    if failed or folder_errors:
        ctx.exit(1)
