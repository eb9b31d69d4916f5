"""The ``dctconv`` command line: parse options, call the library once per file, report.

Only this module turns library exceptions into messages and exit codes. It imports
no numpy, scipy or Pillow at top level so that ``dctconv --help`` starts fast.
"""

from __future__ import annotations

import functools
import json
import traceback
from pathlib import Path

import click

from .. import __version__
from ..errors import DctconvError, TooManyPixelsError, printable
from ..limits import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_PIXELS,
    DEFAULT_VERIFY_BLOCK_SIZES,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
)
from ..runtime._parallel import run_each, sigterm_as_ctrl_c


# ---------------------------------------------------------------- shared options


class _WholeNumber(click.IntRange):
    """click.IntRange whose message for a non-number says "integer", not "integer range"."""

    name = "integer"


def _check_output_dir(ctx, param, value):
    # click.Path(file_okay=False) would catch only DIR itself being a file; a file
    # further up (-o notes.txt/out) would surface later, once per input, as a write error.
    if value is None:
        return value
    existing = value
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == value else f", so the folder {value} cannot be created"
        raise click.BadParameter(
            f"{existing} is a file, not a folder{where}; give a folder (it is created when missing)",
            ctx=ctx, param=param,
        )
    return value


def output_dir_option(f):
    return click.option(
        "-o",
        "--output-dir",
        "output_dir",
        required=True,
        type=click.Path(path_type=Path),
        callback=_check_output_dir,
        help="Folder for the output files; created when missing.",
    )(f)


BLOCK_SIZE = _WholeNumber(MIN_BLOCK_SIZE, MAX_BLOCK_SIZE)
_RANGE = f"{MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"


def block_size_option(
    f=None, *, help=f"Patch side n ({_RANGE}); the transform has n*n kernels.  [default: {DEFAULT_BLOCK_SIZE}]",
    callback=None,
):
    """``@block_size_option``, or ``@block_size_option(help=..., callback=...)`` for a command
    whose default differs or that checks the value against another option."""

    def decorate(f):
        return click.option(
            "--block-size",
            "-n",
            "block_size",
            type=BLOCK_SIZE,
            default=None,
            callback=callback,
            help=help,
        )(f)

    return decorate if f is None else decorate(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def max_pixels_option(f):
    return click.option(
        "--max-pixels",
        type=_WholeNumber(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse larger images (Pillow's decompression-bomb guard); raise it for huge images.",
    )(f)


def jobs_option(f):
    return click.option(
        "--jobs",
        "-j",
        type=click.IntRange(1),
        default=None,
        callback=_one_place,
        help="Files processed at once, each in its own process; the output is the same "
             "for any value.  [default: the number of CPUs]",
    )(f)


_PLACE_OPTIONS = {"scheduler": "--scheduler", "scheduler_file": "--scheduler-file", "jobs": "--jobs"}


def _one_place(ctx, param, value):
    """--scheduler, --scheduler-file and --jobs > 1 each say where the files are processed: one at most.

    Each of the three has this callback; the values are kept in ``ctx.meta`` (the
    scheduler options are not passed to the commands, :func:`_run_each` reads them).
    """
    chosen = ctx.meta.setdefault("dctconv.place", {})
    if value is not None and not (param.name == "jobs" and value == 1):
        chosen[param.name] = value
    if len(chosen) > 1:
        if "jobs" in chosen:
            other = next(_PLACE_OPTIONS[name] for name in chosen if name != "jobs")
            message = (f"--jobs runs the files in processes here and {other} on a dask cluster; "
                       "give only one of them")
        else:
            message = "give the scheduler's address (--scheduler) or its file (--scheduler-file), not both"
        raise click.BadParameter(message, ctx=ctx, param=param)
    return value


def cluster_options(f):
    """``--scheduler ADDRESS`` and ``--scheduler-file FILE``: each file a task on a dask cluster."""
    f = click.option(
        "--scheduler-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
        expose_value=False, callback=_one_place, metavar="FILE",
        help="As --scheduler, with the address read from FILE (dask scheduler --scheduler-file FILE).",
    )(f)
    return click.option(
        "--scheduler", metavar="ADDRESS", default=None, expose_value=False, callback=_one_place,
        help="Process each file as a task on the dask cluster whose scheduler is at ADDRESS "
             "(such as tcp://10.0.0.5:8786). Its workers must see the files at the same paths "
             "(a shared file system); paths are made absolute. Needs "
             "pip install \"dctconv[distributed]\".",
    )(f)


def skip_existing_option(f):
    return click.option(
        "--skip-existing", is_flag=True,
        help="Skip an input whose outputs are all there and newer than it (to resume an interrupted batch).",
    )(f)


def no_pictures_option(f):
    return click.option(
        "--no-pictures", is_flag=True,
        help="Write only the data outputs, none of the pictures (faster for many small files).",
    )(f)


# ---------------------------------------------------------------- error reporting


def _one_line(text: str) -> str:
    # File names and texts read from files may hold newlines or terminal escapes.
    return printable(text)


def _echo(line: str, *, err: bool = False) -> None:
    """Print a line that holds file names (or text read from a file), control characters escaped."""
    click.echo(_one_line(line), err=err)


def _error_line(source, exc) -> str:
    """The one line that reports a failure: ``Error: <source>: <what is wrong>[; the fix]``."""
    message = str(exc)
    if isinstance(exc, TooManyPixelsError):
        message += f"; rerun with --max-pixels {exc.pixels} to allow it"
    prefix = "Error: " if source is None else f"Error: {source}: "
    return _one_line(prefix + message)


def _unexpected_error_line(source, exc: BaseException, debug: bool) -> str:
    """Report an exception dctconv did not raise on purpose: a traceback only with --debug."""
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, MemoryError):
        return _error_line(source, "not enough memory to process it")
    if isinstance(exc, ImportError):
        return _error_line(source, _import_failure(exc))
    detail = str(exc).strip()
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return _error_line(
        source, f"internal error ({detail}); rerun with --debug for the traceback"
    )


#: What the loader says when a memory limit (ulimit -v) stops it mapping a compiled module.
_NO_MEMORY_TO_LOAD = ("failed to map segment from shared object", "cannot allocate memory")


def _package_of(exc: BaseException) -> str | None:
    """The installed package an ImportError comes from ("numpy"), by its file or its name."""
    path = Path(getattr(exc, "path", None) or "")
    for folder in ("site-packages", "dist-packages"):
        if folder in path.parts[:-1]:
            return path.parts[path.parts.index(folder) + 1]
    name = getattr(exc, "name", None)
    return name.split(".")[0] if name else None


def _import_failure(exc: ImportError) -> str:
    """Why a library could not be imported: most often a memory limit, else a broken install."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    module = next(filter(None, map(_package_of, chain)), "a library dctconv needs")
    text = " ".join(str(e) for e in chain).lower()
    if any(isinstance(e, MemoryError) for e in chain) or any(words in text for words in _NO_MEMORY_TO_LOAD):
        return f"not enough memory to load {module}; raise the memory limit (ulimit -v) or free memory"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"cannot load {module} ({first}); reinstall dctconv's dependencies (make install)"


def _report_failure(item, exc: BaseException, debug: bool) -> None:
    if isinstance(exc, DctconvError):
        click.echo(_error_line(item, exc), err=True)
    else:  # an internal bug: still one line, unless --debug
        click.echo(_unexpected_error_line(item, exc, debug), err=True)


def _run_each(ctx, items, work, *, label: str, cluster: bool = False, **options):
    """:func:`dctconv.runtime._parallel.run_each`, each failure reported in one line as it happens.

    With ``cluster`` and --scheduler or --scheduler-file given, the files are tasks
    on that dask cluster (:mod:`dctconv.runtime._cluster`); the connection is made, or
    refused in one line, before the first file.
    """
    report = functools.partial(_report_failure, debug=bool(ctx.obj["debug"]))
    place = ctx.meta.get("dctconv.place", {})
    if not (cluster and ("scheduler" in place or "scheduler_file" in place)):
        return run_each(items, work, label=label, on_failure=report, **options)
    from ..runtime._cluster import connect, map_on_cluster, silence_logging

    silence_logging()
    client = connect(place.get("scheduler"), scheduler_file=place.get("scheduler_file"))
    try:
        def backend(items, work, **_):  # jobs and preload are the workers' business
            return map_on_cluster(items, work, client=client, label=f"dctconv-{label}")

        return run_each(items, work, label=label, on_failure=report, backend=backend, **options)
    finally:
        client.close(timeout=5)


def _on_cluster(ctx) -> bool:
    return bool(ctx.meta.get("dctconv.place", {}).keys() & {"scheduler", "scheduler_file"})


def _for_workers(ctx, inputs, output_dir):
    """``inputs`` and ``output_dir``, made absolute when they go to a cluster's workers.

    The workers do not share this process's working folder, so a relative path
    would name another file there (or none).
    """
    if not _on_cluster(ctx):
        return list(inputs), output_dir
    return [path.absolute() for path in inputs], output_dir.absolute()


def _skip_up_to_date(items, outputs_of):
    """The items not up to date (:func:`dctconv.runtime._jobs.up_to_date`), with a note of how many were skipped."""
    from ..runtime._jobs import up_to_date

    left = [item for item in items if not up_to_date(item, outputs_of(item))]
    if len(left) < len(items):
        click.echo(f"Note: skipped {len(items) - len(left)} of {len(items)} inputs whose outputs are all "
                   "there and newer (--skip-existing)", err=True)
    return left


def _input_files(paths, *, coefficient_files: bool = False) -> tuple[list[Path], list[str], list[str]]:
    """The files to process: each folder replaced by its files, each file once.

    A folder stands for the files directly in it (sorted by name, not recursive,
    hidden files skipped) whose suffix is that of an image format dctconv reads, or
    ``.npz`` with ``coefficient_files``. A file given again (the same path, or
    another name of it) is processed once, with a note.

    Returns the files, one error line (:func:`_error_line`) per folder that holds
    none, and the note lines.
    """
    files, errors, notes, seen, suffixes = [], [], [], set(), None
    for path in paths:
        if path.is_dir():
            if suffixes is None:
                from ..io._images import image_suffixes

                suffixes = {".npz"} if coefficient_files else image_suffixes()
            found = sorted(
                p for p in path.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
            )
            if not found:
                what = ("no coefficient file (no name ending in .npz)" if coefficient_files else
                        "no image file (no name ending in the suffix of a format dctconv reads, "
                        "such as .png, .jpg, .tif)")
                errors.append(_error_line(path, f"folder holds {what}"))
        else:
            found = [path]
        for file in found:
            key = file.resolve()
            if key in seen:
                notes.append(_one_line(f"Note: {file}: given more than once; processed once"))
            else:
                seen.add(key)
                files.append(file)
    return files, errors, notes


def _echo_lines(lines) -> None:
    for line in lines:
        click.echo(line, err=True)


def _report(results, as_json: bool) -> None:
    for result in results:
        for note in result.notes:
            _echo(f"Note: {result.source}: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"files": [
            {"input": str(r.source), "outputs": [str(p) for p in r.outputs]} for r in results
        ]}, indent=2))
    else:
        for result in results:
            _echo(f"{result.source} -> {', '.join(str(p) for p in result.outputs)}")


# ---------------------------------------------------------------- commands


class DctconvCommand(click.Command):
    """A click command whose summary in ``dctconv --help`` is its docstring's first line, whole."""

    def get_short_help_str(self, limit: int = 45) -> str:
        # click cuts the summary at about 45 characters and adds "..."; the list of
        # commands wraps long lines instead.
        if self.short_help or not self.help:
            return super().get_short_help_str(limit)
        return self.help.strip().splitlines()[0].strip()


class DctconvGroup(click.Group):
    """A click group after which no Python traceback reaches the user.

    click already turns usage errors into exit 2 and Ctrl-C into "Aborted!". Anything
    else a command lets escape (it should not: run_each catches per-file errors)
    becomes one "Error: ..." line and exit 1; ``--debug`` adds the traceback.
    """

    command_class = DctconvCommand

    def invoke(self, ctx):
        try:
            with sigterm_as_ctrl_c():  # SIGTERM stops any run as Ctrl-C does: "Aborted!", exit 1
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                KeyboardInterrupt, EOFError, SystemExit):
            raise
        except DctconvError as exc:
            click.echo(_error_line(None, exc), err=True)
        except BrokenPipeError:
            raise  # click's main handles a closed pipe (dctconv ... | head)
        except Exception as exc:
            click.echo(_unexpected_error_line(None, exc, bool(ctx.params.get("debug"))), err=True)
        ctx.exit(1)


@click.group(cls=DctconvGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dctconv")
@click.option("--debug", is_flag=True, help="Show the full traceback of unexpected errors.")
@click.pass_context
def cli(ctx, debug):
    """See the block DCT of an image as a strided convolution, and use it.

    Every n x n patch of a grayscale image is transformed by the orthonormal 2-D
    DCT-II; that is one stride-n convolution with n*n fixed kernels, so an H x W
    image becomes n*n coefficient maps of (H/n) x (W/n).

    \b
    Example:
        dctconv transform photo.png -o out --kernels
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    ctx.obj = {"debug": debug}


def _reject_with_inverse(ctx, param, value):
    if value is not None and ctx.params.get("inverse"):
        raise click.BadParameter(
            "the coefficient file records it; drop this option with --inverse", ctx=ctx, param=param
        )
    return value


@cli.command()
@click.argument(
    "inputs", nargs=-1, required=True, metavar="FILE_OR_DIR...",
    type=click.Path(exists=True, path_type=Path),
)
@output_dir_option
@click.option("--inverse", is_flag=True, is_eager=True,
              help="Read coefficient files (.npz) or compressed files (.dctz) and write the reconstructed images.")
@block_size_option(callback=_reject_with_inverse)
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
              callback=_reject_with_inverse,
              help="Precision of the computation and of the stored coefficients.  [default: float64]")
@click.option("--kernels", is_flag=True, help="Also write kernels_<n>.png, the n*n kernels drawn enlarged.")
@no_pictures_option
@skip_existing_option
@max_pixels_option
@jobs_option
@cluster_options
@json_option
@click.pass_context
def transform(ctx, inputs, output_dir, inverse, block_size, dtype, kernels, no_pictures, skip_existing,
              max_pixels, jobs, as_json):
    """Forward block DCT of images, or (--inverse) images from coefficient files.

    Forward: for each IMAGE write DIR/<stem>_coefficients.npz (the n*n coefficient
    maps and what is needed to invert them) and DIR/<stem>_maps.png (the maps as an
    n x n mosaic, DC top left, each tile's frequency in the margin). Color images
    are converted to gray first.

    Inverse: for each coefficient file write DIR/<stem>_reconstruction.png (.tif for
    32-bit and float sources) at the bit depth of the original image.

    A folder stands for the files directly in it (sorted by name): its images, or
    with --inverse its .npz files. A file given twice is processed once.

    \b
    Examples:
        dctconv transform photo.png -o out
        dctconv transform photos/ -o out
        dctconv transform *.png -o out --block-size 8 --kernels
        dctconv transform *.png -o out --jobs 2
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    from ..runtime._jobs import (
        TRANSFORM_IMPORTS,
        inverse_outputs,
        invert_file,
        original_stem,
        transform_file,
        transform_outputs,
        write_kernels_picture,
    )

    from ..io._atomic import InputPaths

    block_size = block_size or DEFAULT_BLOCK_SIZE
    files, folder_errors, notes = _input_files(inputs, coefficient_files=inverse)
    _echo_lines(folder_errors + notes)
    files, output_dir = _for_workers(ctx, files, output_dir)
    if inverse:
        work = functools.partial(
            invert_file, out_dir=output_dir, max_pixels=max_pixels, protected=InputPaths(files)
        )
        outputs_of = functools.partial(inverse_outputs, out_dir=output_dir)
    else:
        work = functools.partial(
            transform_file, out_dir=output_dir, block_size=block_size,
            dtype=dtype or "float64", max_pixels=max_pixels, protected=InputPaths(files),
            pictures=not no_pictures,
        )
        outputs_of = functools.partial(transform_outputs, out_dir=output_dir, pictures=not no_pictures)
    items = _skip_up_to_date(files, outputs_of) if skip_existing else files
    results, failed = _run_each(
        ctx, items, work, label="inverse" if inverse else "transform", jobs=jobs, cluster=True,
        output_name=original_stem if inverse else (lambda path: path.stem), preload=TRANSFORM_IMPORTS,
    )
    failed = failed or bool(folder_errors)
    if kernels:
        try:
            path = write_kernels_picture(output_dir, block_size, protected=files)
            _echo(f"kernels -> {path}", err=as_json)
        except DctconvError as exc:
            failed = True
            click.echo(_error_line(output_dir, exc), err=True)
    _report(results, as_json)
    if failed:
        ctx.exit(1)


# ---------------------------------------------------------------- compress


def _finite(ctx, param, value):
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number.", ctx=ctx, param=param)
    return value


def _compress_json(result) -> dict:
    """One file of ``compress --json``: input and outputs as for transform, then its numbers."""
    numbers = result.report.as_dict()
    del numbers["source"], numbers["files"]  # the input and the outputs say it
    return {"input": str(result.source), "outputs": [str(p) for p in result.outputs], **numbers}


def _table(rows, *, left: int = 1) -> str:
    """Rows of cells as aligned text: the first ``left`` columns left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _quantization_text(report) -> str:
    if report.quality is not None:
        return f"q{report.quality}"
    return "none" if report.step == 0 else f"step {report.step:g}"


def _compress_table(reports) -> str:
    rows = [("file", "n", "steps", "K", "nonzero", "PSNR dB", "SSIM", "bpp", "bytes")]
    for r in reports:
        rows.append((
            _one_line(r.source),
            str(r.block_size),
            _quantization_text(r),
            f"{r.kept_per_block}/{r.block_size ** 2}",
            f"{100 * r.nonzero_fraction:.1f}%",
            "inf" if r.psnr_db is None else f"{r.psnr_db:.2f}",
            "-" if r.ssim is None else f"{r.ssim:.4f}",
            f"{r.bits_per_pixel:.3f}",
            f"{r.compressed_bytes:,}",
        ))
    return _table(rows)


#: How the printed BD-rates name the curves.
_CURVE_NAMES = {"zonal": "zonal K", "jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}


def _bd_rate_table(reports) -> str:
    """The BD-rates of the sweep: one row per image and curve, percent bits at equal PSNR and SSIM."""
    rows = [("file", "against", "at equal PSNR", "at equal SSIM")]

    def percent(value):
        return "n/a" if value is None else f"{value:+.1f} %"

    for r in reports:
        for curve, rates in (r.bd_rates or {}).items():
            rows.append((r.source, _CURVE_NAMES.get(curve, curve), percent(rates["psnr_percent"]),
                         percent(rates["ssim_percent"])))
    return ("BD-rates of dctconv (quality 5 .. 95): how many percent more bits it needs than the other "
            "curve for the same quality (negative: fewer)\n" + _table(rows, left=2))


def _one_quantization(ctx, param, value):
    """--quality and --step both set the steps: refuse the two together, whatever their order."""
    if param.name == "step":
        value = _finite(ctx, param, value)
    other = "quality" if param.name == "step" else "step"
    if value is not None and ctx.params.get(other) is not None:
        raise click.BadParameter(
            "cannot be combined with --quality (--quality gives each frequency its own step, "
            "--step one step for all); give one of them.", ctx=ctx, param_hint="'--step'",
        )
    return value


@cli.command()
@click.argument(
    "inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...",
    type=click.Path(exists=True, path_type=Path),
)
@output_dir_option
@block_size_option
@click.option("--quality", "-q", type=_WholeNumber(1, 100), default=None, callback=_one_quantization,
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
              callback=_finite,
              help="Also zero AC coefficients with |c| below this, before quantization (DC always kept).")
@click.option("--sweep", is_flag=True,
              help="Also write <stem>_sweep.csv, .json and .png: PSNR and SSIM against bits per pixel for "
                   "dctconv at quality 5 .. 95, for K = 1 .. n*n, and for Pillow's JPEG, WebP and AVIF; "
                   "print the BD-rates of dctconv against each.")
@no_pictures_option
@skip_existing_option
@max_pixels_option
@jobs_option
@cluster_options
@json_option
@click.pass_context
def compress(ctx, inputs, output_dir, block_size, quality, step, keep, threshold, sweep, no_pictures,
             skip_existing, max_pixels, jobs, as_json):
    """Compress images with dctconv's codec, and measure what is lost.

    Every n x n block is transformed; each frequency is divided by its step
    (--quality: JPEG-like steps per frequency, default 75; or one --step) and
    rounded; the levels are entropy coded frequency by frequency, each modelled on
    the lower frequencies around it. For each image, DIR receives:

    \b
      <stem>_compressed.dctz      the compressed file (decode it with transform --inverse)
      <stem>_reconstruction.png   the decoded image at the source bit depth (.tif for 32-bit)
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
        dctconv transform --inverse out/photo_compressed.dctz -o decoded
    """
    from ..runtime._jobs import COMPRESS_DATA_IMPORTS, COMPRESS_IMPORTS, compress_file, compress_outputs

    n = block_size or DEFAULT_BLOCK_SIZE
    if keep is not None and not 1 <= keep <= n * n:
        raise click.BadParameter(
            f"must be from 1 to {n * n} for --block-size {n} (got {keep}).", ctx=ctx, param_hint="'--keep'"
        )
    files, folder_errors, notes = _input_files(inputs)
    _echo_lines(folder_errors + notes)
    files, output_dir = _for_workers(ctx, files, output_dir)

    from ..io._atomic import InputPaths

    work = functools.partial(
        compress_file, out_dir=output_dir, block_size=n, quality=quality, step=step, keep=keep,
        threshold=threshold, sweep=sweep, max_pixels=max_pixels, protected=InputPaths(files),
        pictures=not no_pictures,
    )
    if skip_existing:
        files = _skip_up_to_date(files, functools.partial(
            compress_outputs, out_dir=output_dir, sweep=sweep, pictures=not no_pictures))
    results, failed = _run_each(
        ctx, files, work, label="compress", jobs=jobs, cluster=True, output_name=lambda path: path.stem,
        preload=COMPRESS_DATA_IMPORTS if no_pictures else COMPRESS_IMPORTS,
    )
    for result in results:
        for note in result.notes:
            _echo(f"Note: {result.source}: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"files": [_compress_json(r) for r in results]}, indent=2))
    elif results:
        click.echo(_compress_table([r.report for r in results]))
        if sweep:
            click.echo()
            click.echo(_bd_rate_table([r.report for r in results]))
    if failed or folder_errors:
        ctx.exit(1)


# ---------------------------------------------------------------- verify


def _scientific(value: float) -> str:
    return f"{value:.1e}"  # inf and nan print as themselves


def _checks_table(checks) -> list[str]:
    header = ("check", "block size", "input", "max error", "tolerance", "result")
    rows = [
        (c.name, str(c.block_size), _one_line(c.input), _scientific(c.max_error), _scientific(c.tolerance),
         "pass" if c.passed else "FAIL")
        for c in checks
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {1, 3, 4}  # numbers align right

    def line(row):
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), line(tuple("-" * w for w in widths)), *(line(row) for row in rows)]


def _checks_json(checks, passed: bool, **extra) -> str:
    return json.dumps({"passed": passed, "checks": [c.as_dict() for c in checks], **extra}, indent=2)


def _trusted_text(trusted: dict) -> str:
    """The settings verify FILE IMAGE took from the file (``FileVerification.trusted``), in words."""
    n = trusted["block_size"]
    words = {"quantization": lambda v: f"quantization {v}", "quality": lambda v: f"quality {v}",
             "kept_channels": lambda v: f"{v} of {n * n} channels kept", "step": lambda v: f"step {v:g}",
             "threshold": lambda v: f"threshold {v:g}"}
    return ", ".join([f"block size {n}"] + [words[k](v) for k, v in trusted.items() if k in words])


def _verify_coefficient_file(ctx, coefficient_path: Path, image_path: Path, max_pixels: int, as_json: bool):
    from ..io._images import read_image
    from ..runtime._jobs import image_notes
    from ..verify._files import verify_file

    images, failed = _run_each(ctx, [image_path], functools.partial(read_image, max_pixels=max_pixels),
                               label="read")
    if failed:
        ctx.exit(1)
    image, info = images[0]
    for note in image_notes(info):
        _echo(f"Note: {image_path}: {note}", err=True)
    found, failed = _run_each(
        ctx, [coefficient_path],
        lambda path: verify_file(path, image, image_name=str(image_path), image_mode=info.mode,
                                 max_pixels=max_pixels),
        label="verify",
    )
    if failed:
        ctx.exit(1)
    found = found[0]
    check = found.check
    if as_json:
        location = found.location
        click.echo(_checks_json(
            [check], check.passed, kind=found.kind, compared=found.compared, skipped=found.skipped,
            location=None if location is None else {
                "block_row": location.block_row, "block_column": location.block_column,
                "frequency": [location.x, location.y],
            },
            reason=found.reason, trusted=found.trusted,
        ))
    else:
        _echo(f"file:      {coefficient_path} ({found.kind}, block size {check.block_size})")
        _echo(f"image:     {image_path}")
        compared = f"{found.compared:,} coefficients compared"
        if found.skipped:
            compared += f", {found.skipped:,} {found.skipped_what}"
        click.echo(f"compared:  {compared}")
        where = f" at {found.location}" if found.location else " (every coefficient identical)"
        click.echo(f"largest:   {check.max_error:.3g}{where}")
        click.echo(f"tolerance: {check.tolerance:.3g}")
        click.echo(f"trusted:   {_trusted_text(found.trusted)} (as the file records them)")
        _echo(("OK: " if check.passed else "FAILED: ") + found.reason)
    if not check.passed:
        ctx.exit(1)


#: Suffixes of the files ``verify FILE IMAGE`` checks: transform's and compress's.
COEFFICIENT_SUFFIXES = (".npz", ".dctz")


def _is_file_argument(path: Path) -> bool:
    return path.suffix.lower() in COEFFICIENT_SUFFIXES


@cli.command()
@click.argument(
    "inputs", nargs=-1, metavar="[IMAGE...]",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@block_size_option(help=f"Check this block size only ({_RANGE}).  [default: "
                        f"{', '.join(map(str, DEFAULT_VERIFY_BLOCK_SIZES[:-1]))} and {DEFAULT_VERIFY_BLOCK_SIZES[-1]}]")
@max_pixels_option
@cluster_options
@json_option
@click.pass_context
def verify(ctx, inputs, block_size, max_pixels, as_json):
    """Prove numerically that the convolutional DCT is right, or check a coefficient file.

    Runs nine checks, each against an independent reference and a tolerance
    justified from the float precision (see docs/verify.md): orthonormal kernels; the
    forward equals the literal strided correlation (scipy.signal) and scipy.fft.dctn
    on every block; inverse(forward(x)) = x; Parseval; the inverse is the adjoint;
    zeroing coefficients costs exactly their energy; the n = 4 scale 4 d(x) d(y); a
    coefficient file reads back identically. Prints one row per check, then a summary
    line; exits 1 if any check fails.

    Without IMAGE the checks run on images made here (random in float64 and float32,
    constant, ramp, highest-frequency checkerboard, odd-sized 37 x 23); with IMAGE,
    on those images (the literal correlation on at most a 128 x 128 corner of each).
    Block sizes 2, 4 and 8, or --block-size.

    With FILE IMAGE, checks that the coefficient file holds what IMAGE transforms
    to (a .npz of transform, or of an older compress), or that the compressed file
    (.dctz of compress) holds exactly the levels IMAGE compresses to with the
    file's settings; reports the largest difference with its block and frequency.

    \b
    Examples:
        dctconv verify
        dctconv verify photo.png --block-size 8 --json
        dctconv verify out/photo_coefficients.npz photo.png
        dctconv verify out/photo_compressed.dctz photo.png
    """
    if any(_is_file_argument(path) for path in inputs[1:]) and not _is_file_argument(inputs[0]):
        raise click.UsageError(
            "the coefficient file goes first, then its image: dctconv verify FILE IMAGE"
        )
    if _on_cluster(ctx) and (not inputs or _is_file_argument(inputs[0])):
        raise click.UsageError(
            "a dask cluster (--scheduler, --scheduler-file) checks image files: dctconv verify IMAGE... --scheduler ADDRESS"
        )
    if inputs and _is_file_argument(inputs[0]):
        if len(inputs) != 2 or _is_file_argument(inputs[1]):
            raise click.UsageError(
                "to check a coefficient file give it and its image: dctconv verify FILE IMAGE"
            )
        if block_size is not None:
            raise click.BadParameter(
                "the coefficient file records the block size; drop --block-size", param_hint="'--block-size'"
            )
        _verify_coefficient_file(ctx, inputs[0], inputs[1], max_pixels, as_json)
        return

    from ..verify._checks import kernel_checks, run_checks, sort_checks
    from ..runtime._jobs import image_notes
    from ..verify._files import verify_image_file

    block_sizes = [block_size] if block_size else list(DEFAULT_VERIFY_BLOCK_SIZES)
    failed, results = False, []
    inputs, _, notes = _input_files(inputs)
    _echo_lines(notes)
    if inputs:
        checks = kernel_checks(block_sizes)
        results, failed = _run_each(
            ctx, _for_workers(ctx, inputs, Path())[0],
            functools.partial(verify_image_file, block_sizes=block_sizes, max_pixels=max_pixels),
            label="verify", cluster=True,
        )
        for result in results:
            for note in image_notes(result.info):
                _echo(f"Note: {result.source}: {note}", err=True)
            checks += result.checks
        checks = sort_checks(checks)
    else:
        checks = run_checks(block_sizes)
    bad = [c for c in checks if not c.passed]
    if as_json:
        click.echo(_checks_json(checks, not bad and not failed))
    else:
        for line in _checks_table(checks):
            click.echo(line)
        for c in bad:
            if c.detail:
                _echo(f"FAIL {c.name} (block size {c.block_size}, {c.input}): {c.detail}")
        summary = f"{len(bad)} of {len(checks)} checks FAILED" if bad else f"all {len(checks)} checks passed"
        unread = len(inputs) - len(results) if inputs else 0
        if unread:
            summary += f"; {unread} of {len(inputs)} images could not be read (errors above)"
        click.echo(summary)
    if bad or failed:
        ctx.exit(1)
