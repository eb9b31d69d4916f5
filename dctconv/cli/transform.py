"""``dctconv transform``: the forward block DCT of images, or (--inverse) images from coefficient files."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..errors import DctconvError
from ..limits import DEFAULT_BLOCK_SIZE
from . import _batch, _report
from ._options import (
    block_size_option,
    cluster_options,
    command,
    jobs_option,
    json_option,
    max_pixels_option,
    no_pictures_option,
    output_dir_option,
    skip_existing_option,
)


def _reject_with_inverse(ctx, param, value):
    if value not in (None, False) and ctx.params.get("inverse"):
        raise click.BadParameter(
            "the coefficient file records it; drop this option with --inverse", ctx=ctx, param=param
        )
    return value


@command
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
@click.option("--layout", type=click.Choice(["channels_first", "channels_last"]), default=None,
              callback=_reject_with_inverse,
              help="How the .npz stores the maps: (n*n, rows, columns), or (rows, columns, n*n) as "
                   "TensorFlow and jpeg2dct use; the file records it.  [default: channels_first]")
@click.option("--channel-order", type=click.Choice(["frequency", "zigzag"]), default=None,
              callback=_reject_with_inverse,
              help="Channel x*n + y holds frequency (x, y), or channels in JPEG's zigzag order, lowest "
                   "frequencies first; the file records it.  [default: frequency]")
@click.option("--from-jpeg", is_flag=True, callback=_reject_with_inverse,
              help="Read JPEG files' own quantized coefficients (n = 8, level x step; luma, and chroma "
                   "beside it) instead of decoding them: no decode, no rounding to pixels.")
@click.option("--kernels", is_flag=True, help="Also write kernels_<n>.png, the n*n kernels drawn enlarged.")
@no_pictures_option
@skip_existing_option
@max_pixels_option
@jobs_option
@cluster_options
@json_option
@click.pass_context
def transform(ctx, inputs, output_dir, inverse, block_size, dtype, layout, channel_order, from_jpeg, kernels,
              no_pictures, skip_existing, max_pixels, jobs, as_json):
    """Forward block DCT of images, or (--inverse) images from coefficient files.

    Forward: for each IMAGE write DIR/<stem>_coefficients.npz (the n*n coefficient
    maps and what is needed to invert them) and DIR/<stem>_maps.png (the maps as an
    n x n mosaic, DC top left, each tile's frequency in the margin). Color images
    are converted to gray first.

    --from-jpeg: for each JPEG file store the coefficients the file itself holds
    (8 x 8 blocks, level x step; the luma's DC shifted back by JPEG's 128, and a
    colour file's Cb and Cr maps at their own sampling beside it) instead of
    transforming its decoded pixels.

    Inverse: for each coefficient file write DIR/<stem>_reconstruction.png (.tif for
    32-bit integer and float sources) at the bit depth of the original image.

    A folder stands for the files directly in it (sorted by name): its images, or
    with --inverse its .npz and .dctz files, each told by its content. A file given
    twice is processed once.

    \b
    Examples:
        dctconv transform photo.png -o out
        dctconv transform photos/ -o out
        dctconv transform *.png -o out --block-size 8 --kernels
        dctconv transform *.png -o out --jobs 2
        dctconv transform photo.jpg -o out --from-jpeg --layout channels_last
        dctconv transform --inverse out/photo_coefficients.npz -o out
    """
    from ..io._atomic import InputPaths
    from ..runtime._jobs import TRANSFORM_IMPORTS, invert_file, transform_file, write_kernels_picture
    from ..runtime._outputs import original_stem

    if from_jpeg and block_size not in (None, 8):
        raise click.BadParameter("JPEG files hold 8 x 8 blocks; drop --block-size with --from-jpeg",
                                 param_hint="'--block-size'")
    block_size = 8 if from_jpeg else block_size or DEFAULT_BLOCK_SIZE
    files, folder_errors, notes = _batch.input_files(inputs, coefficient_files=inverse)
    _report.echo_lines(folder_errors + notes)
    files, output_dir = _batch.for_workers(ctx, files, output_dir)
    if inverse:
        work = functools.partial(
            invert_file, out_dir=output_dir, max_pixels=max_pixels, protected=InputPaths(files)
        )
    else:
        work = functools.partial(
            transform_file, out_dir=output_dir, block_size=block_size,
            dtype=dtype or "float64", max_pixels=max_pixels, protected=InputPaths(files),
            pictures=not no_pictures, layout=layout or "channels_first",
            channel_order=channel_order or "frequency", from_jpeg=from_jpeg,
        )
    stem_of = original_stem if inverse else (lambda path: path.stem)
    skip = functools.partial(_batch.skip_up_to_date, command="inverse" if inverse else "transform", work=work,
                             out_dir=output_dir, stem_of=stem_of) if skip_existing else None
    results, failed = _batch.run_each(
        ctx, files, work, label="inverse" if inverse else "transform", jobs=jobs, cluster=True,
        output_name=stem_of, preload=TRANSFORM_IMPORTS, skip=skip,
    )
    failed = failed or bool(folder_errors)
    if kernels:
        try:
            path = write_kernels_picture(output_dir, block_size, protected=files)
            _report.echo(f"kernels -> {path}", err=as_json)
        except DctconvError as exc:
            failed = True
            click.echo(_report.error_line(output_dir, exc), err=True)
    _report.file_list(results, as_json)
    if failed:
        ctx.exit(1)
