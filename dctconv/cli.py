"""The ``dctconv`` command line: parse options, call the library once per file, report.

Only this module turns library exceptions into messages and exit codes. It imports
no numpy, scipy or Pillow at top level so that ``dctconv --help`` starts fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
from pathlib import Path

import click

from . import __version__
from .errors import DctconvError, ImageTooLargeError

DEFAULT_MAX_PIXELS = 89_478_485  # == image_io.DEFAULT_MAX_PIXELS, without importing numpy


# ---------------------------------------------------------------- shared options


def output_dir_option(f):
    return click.option(
        "-o",
        "--output-dir",
        "output_dir",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder for the output files; created when missing.",
    )(f)


def block_size_option(f):
    return click.option(
        "--block-size",
        "-n",
        "block_size",
        type=click.IntRange(2, 64),
        default=None,
        help="Patch side n (2 to 64); the transform has n*n kernels.  [default: 4]",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")(f)


def max_pixels_option(f):
    return click.option(
        "--max-pixels",
        type=click.IntRange(1),
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
        help="Files processed at once, each in its own process; the output is the same "
             "for any value.  [default: the number of CPUs]",
    )(f)


# ---------------------------------------------------------------- error reporting


def _error_line(source, exc: BaseException) -> str:
    message = str(exc)
    if isinstance(exc, ImageTooLargeError):
        message += "; raise the limit with --max-pixels"
    return f"Error: {source}: {message}"


def default_jobs() -> int:
    """Number of files processed at once by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_each(items, work, *, label: str, debug: bool, jobs: int | None = 1):
    """Call ``work(item)`` for each item; report failures in one line each and go on.

    Returns the list of results of the items that worked, in the order of ``items``,
    and whether any failed. With ``jobs`` > 1 (None: :func:`default_jobs`) the items
    are processed that many at a time in worker processes (see :func:`map_in_processes`);
    ``work`` must then be picklable, e.g. a ``functools.partial`` of a module-level
    function. A progress bar (click's) on stderr counts finished items when there is
    more than one; failures are reported as they happen.
    """
    jobs = default_jobs() if jobs is None else jobs
    results, failed = {}, False
    bar = (
        click.progressbar(length=len(items), label=f"{label} {len(items)} files", file=sys.stderr)
        if len(items) > 1 else contextlib.nullcontext()
    )
    with bar:
        for index, result, exc in map_in_processes(items, work, jobs=jobs):
            if exc is None:
                results[index] = result
            else:
                failed = True
                _report_failure(items[index], exc, debug)
            if len(items) > 1:
                bar.update(1)
    return [results[index] for index in sorted(results)], failed


def map_in_processes(items, work, *, jobs: int):
    """Yield ``(index, result, exception)`` for each item as ``work(item)`` finishes.

    One of ``result`` and ``exception`` is None. With ``jobs`` <= 1, or a single item,
    the work runs here, in order. Otherwise it runs in a pool of ``jobs`` worker
    processes and items come back in the order they finish; each worker uses its
    share of the CPUs for its threads (see :func:`_share_cores`), and the results are
    the same as in one process. Ctrl-C cancels the items not yet started.
    """
    if jobs <= 1 or len(items) <= 1:
        for index, item in enumerate(items):
            try:
                yield index, work(item), None
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                yield index, None, exc
        return

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # A fresh interpreter per worker (forkserver, or spawn where there is none): no
    # fork of a process that already runs BLAS threads.
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(items)),
        mp_context=multiprocessing.get_context(method),
        initializer=_share_cores,
        initargs=(min(jobs, len(items)),),
    )
    try:
        futures = {pool.submit(work, item): index for index, item in enumerate(items)}
        for future in as_completed(futures):
            exc = future.exception()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise exc
            yield futures[future], (None if exc else future.result()), exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _share_cores(jobs: int) -> None:
    """Worker-process initializer: give each of ``jobs`` processes its share of the CPUs.

    The transform's thread pool otherwise starts one thread per CPU in every process.
    """
    from . import transform

    transform.DEFAULT_WORKERS = max(1, transform.default_workers() // jobs)


def _report_failure(item, exc: BaseException, debug: bool) -> None:
    if isinstance(exc, DctconvError):
        click.echo(_error_line(item, exc), err=True)
        return
    # An internal bug: still one line, unless --debug.
    if debug:
        traceback.print_exception(exc)
    click.echo(
        _error_line(item, f"internal error ({type(exc).__name__}: {exc}); "
                    "rerun with --debug for the traceback"),
        err=True,
    )


def _report(results, as_json: bool) -> None:
    for result in results:
        for note in result.notes:
            click.echo(f"Note: {result.source}: {note}", err=True)
    if as_json:
        click.echo(json.dumps({"files": [
            {"input": str(r.source), "outputs": [str(p) for p in r.outputs]} for r in results
        ]}, indent=2))
    else:
        for result in results:
            click.echo(f"{result.source} -> {', '.join(str(p) for p in result.outputs)}")


# ---------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    "inputs", nargs=-1, required=True, metavar="IMAGE...",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@output_dir_option
@click.option("--inverse", is_flag=True, is_eager=True,
              help="Read coefficient files (.npz) and write the reconstructed images.")
@click.option("--block-size", "-n", "block_size", type=click.IntRange(2, 64), default=None,
              callback=_reject_with_inverse,
              help="Patch side n (2 to 64); the transform has n*n kernels.  [default: 4]")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default=None,
              callback=_reject_with_inverse,
              help="Precision of the computation and of the stored coefficients.  [default: float64]")
@click.option("--kernels", is_flag=True, help="Also write kernels_<n>.png, the n*n kernels drawn enlarged.")
@max_pixels_option
@jobs_option
@json_option
@click.pass_context
def transform(ctx, inputs, output_dir, inverse, block_size, dtype, kernels, max_pixels, jobs, as_json):
    """Forward block DCT of images, or (--inverse) images from coefficient files.

    Forward: for each IMAGE write DIR/<stem>_coefficients.npz (the n*n coefficient
    maps and what is needed to invert them) and DIR/<stem>_maps.png (the maps as an
    n x n mosaic, DC top left). Color images are converted to gray first.

    Inverse: for each coefficient file write DIR/<stem>_reconstruction.png (.tif for
    32-bit and float sources) at the bit depth of the original image.

    \b
    Examples:
        dctconv transform photo.png -o out
        dctconv transform *.png -o out --block-size 8 --kernels
        dctconv transform *.png -o out --jobs 2
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    from .pipeline import invert_file, transform_file, write_kernels_picture

    debug = ctx.obj["debug"]
    block_size = block_size or 4
    if inverse:
        work = functools.partial(invert_file, out_dir=output_dir, protected=inputs)
    else:
        work = functools.partial(
            transform_file, out_dir=output_dir, block_size=block_size,
            dtype=dtype or "float64", max_pixels=max_pixels, protected=inputs,
        )
    results, failed = run_each(
        list(inputs), work, label="inverse" if inverse else "transform", debug=debug, jobs=jobs
    )
    if kernels:
        try:
            path = write_kernels_picture(output_dir, block_size, protected=inputs)
            click.echo(f"kernels -> {path}", err=as_json)
        except DctconvError as exc:
            failed = True
            click.echo(_error_line(output_dir, exc), err=True)
    _report(results, as_json)
    if failed:
        ctx.exit(1)
