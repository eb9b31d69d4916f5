"""``dctconv verify``: prove numerically that the convolutional DCT is right, or check a coefficient file."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import click

from ..limits import DEFAULT_VERIFY_BLOCK_SIZES
from . import _batch, _report
from ._options import BLOCK_SIZE_RANGE, block_size_option, cluster_options, command, json_option, max_pixels_option


def _scientific(value: float) -> str:
    return f"{value:.1e}"  # inf and nan print as themselves


def _checks_table(checks) -> list[str]:
    rows = [("check", "block size", "input", "max error", "tolerance", "result")]
    rows += [
        (c.name, str(c.block_size), _report.one_line(c.input), _scientific(c.max_error), _scientific(c.tolerance),
         "pass" if c.passed else "FAIL")
        for c in checks
    ]
    return _report.table(rows, align="lrlrrl", rule=True)


def _checks_json(checks, passed: bool, **extra) -> str:
    return json.dumps({"passed": passed, "checks": [c.as_dict() for c in checks], **extra}, indent=2)


def _trusted_text(trusted: dict) -> str:
    """The settings verify FILE IMAGE took from the file (``FileVerification.trusted``), in words."""
    n = trusted["block_size"]
    words = {"quantization": lambda v: f"quantization {v}", "quality": lambda v: f"quality {v}",
             "kept_channels": lambda v: f"{v} of {n * n} channels kept", "step": lambda v: f"step {v:g}",
             "threshold": lambda v: f"threshold {v:g}"}
    sizes = "block sizes 16, 8 and 4 chosen per region" if n == "auto" else f"block size {n}"
    return ", ".join([sizes] + [words[k](v) for k, v in trusted.items() if k in words])


def _verify_coefficient_file(ctx, coefficient_path: Path, image_path: Path, max_pixels: int, as_json: bool):
    from ..io import _kinds as kinds
    from ..io._images import read_image
    from ..runtime._jobs import image_notes
    from ..verify._files import verify_file

    # A compressed file may keep NaN pixels (no data); a transform's coefficients cannot.
    compressed = kinds.kind_of(coefficient_path) is kinds.COMPRESSED
    images, failed = _batch.run_each(ctx, [image_path], functools.partial(
        read_image, max_pixels=max_pixels, allow_nan=compressed), label="read")
    if failed:
        ctx.exit(1)
    image, info = images[0]
    for note in image_notes(info):
        _report.echo(f"Note: {image_path}: {note}", err=True)
    found, failed = _batch.run_each(
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
        sizes = ("block sizes 16, 8 and 4 chosen per region" if found.trusted.get("block_size") == "auto"
                 else f"block size {check.block_size}")
        _report.echo(f"file:      {coefficient_path} ({found.kind}, {sizes})")
        _report.echo(f"image:     {image_path}")
        compared = f"{found.compared:,} {found.unit} compared"
        if found.skipped:
            compared += f", {found.skipped:,} {found.skipped_what}"
        click.echo(f"compared:  {compared}")
        where = f" at {found.location}" if found.location else " (every coefficient identical)"
        if found.unit != "coefficients":
            where = " (pixel values)"
        click.echo(f"largest:   {check.max_error:.3g}{where}")
        click.echo(f"tolerance: {check.tolerance:.3g}")
        click.echo(f"trusted:   {_trusted_text(found.trusted)} (as the file records them)")
        _report.echo(("OK: " if check.passed else "FAILED: ") + found.reason)
    if not check.passed:
        ctx.exit(1)


def _is_file_argument(path: Path) -> bool:
    """Whether ``path`` is meant as the FILE of ``verify FILE IMAGE`` (transform's or compress's):
    by its content, or by its name (then the check says what it holds instead)."""
    from ..io import _kinds as kinds

    hinted = any(path.name.lower().endswith(kinds.suffixes(kind)) for kind in kinds.COEFFICIENT_KINDS)
    return hinted or kinds.kind_of(path) in kinds.COEFFICIENT_KINDS


@command
@click.argument(
    "inputs", nargs=-1, metavar="[IMAGE...]",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@block_size_option(help=f"Check this block size only ({BLOCK_SIZE_RANGE}).  [default: "
                        f"{', '.join(map(str, DEFAULT_VERIFY_BLOCK_SIZES[:-1]))} and {DEFAULT_VERIFY_BLOCK_SIZES[-1]}]")
@max_pixels_option
@cluster_options
@json_option
@click.pass_context
def verify(ctx, inputs, block_size, max_pixels, as_json):
    """Prove numerically that the convolutional DCT is right, or check a coefficient file.

    Runs ten checks, each against an independent reference and a tolerance
    justified from the float precision (see docs/verify.md): orthonormal kernels; the
    forward equals the literal strided correlation (scipy.signal) and scipy.fft.dctn
    on every block; inverse(forward(x)) = x; Parseval; the inverse is the adjoint;
    zeroing coefficients costs exactly their energy; the n = 4 scale 4 d(x) d(y); a
    coefficient file reads back identically; every term of the chain rule of a
    residual block x + inverse(shrink(forward(x))) matches central differences. Prints one row per check, then a summary
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
    if _batch.on_cluster(ctx) and (not inputs or _is_file_argument(inputs[0])):
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

    from ..runtime._jobs import image_notes
    from ..verify._checks import kernel_checks, run_checks, sort_checks
    from ..verify._files import verify_image_file

    block_sizes = [block_size] if block_size else list(DEFAULT_VERIFY_BLOCK_SIZES)
    failed, results = False, []
    inputs, _, notes = _batch.input_files(inputs)
    _report.echo_lines(notes)
    if inputs:
        checks = kernel_checks(block_sizes)
        results, failed = _batch.run_each(
            ctx, _batch.for_workers(ctx, inputs, Path())[0],
            functools.partial(verify_image_file, block_sizes=block_sizes, max_pixels=max_pixels),
            label="verify", cluster=True,
        )
        for result in results:
            for note in image_notes(result.info):
                _report.echo(f"Note: {result.source}: {note}", err=True)
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
                _report.echo(f"FAIL {c.name} (block size {c.block_size}, {c.input}): {c.detail}")
        summary = f"{len(bad)} of {len(checks)} checks FAILED" if bad else f"all {len(checks)} checks passed"
        unread = len(inputs) - len(results) if inputs else 0
        if unread:
            summary += f"; {unread} of {len(inputs)} images could not be read (errors above)"
        click.echo(summary)
    if bad or failed:
        ctx.exit(1)
