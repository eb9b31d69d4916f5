"""Issue 17: what compress prints says why a number is missing, and never suggests a fix that cannot work."""

import re

import numpy as np
from click.testing import CliRunner
from PIL import Image

from dctconv.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_a_2_x_3_image_gets_the_size_of_the_header_not_a_lower_quality(tmp_path):
    """Its 6 bytes of pixels are fewer than the compressed file's header alone."""
    Image.fromarray(np.array([[10, 200, 30], [40, 50, 250]], np.uint8)).save(tmp_path / "tiny.png")
    result = run("compress", tmp_path / "tiny.png", "-o", tmp_path / "out", "--no-pictures")
    assert result.exit_code == 0, result.output
    size = (tmp_path / "out" / "tiny_compressed.dctz").stat().st_size
    note = re.fullmatch(
        rf"Note: {re.escape(str(tmp_path / 'tiny.png'))}: the compressed file \({size:,} bytes\) is larger than the "
        r"raw pixels \(6 bytes\): its header alone is (\d+) bytes, so no --quality or --step makes it smaller",
        result.stderr.splitlines()[0])
    assert note, result.stderr
    assert 6 < int(note[1]) < size
    assert "lower --quality" not in result.stderr
    # The header is all there is at the lowest quality too.
    result = run("compress", tmp_path / "tiny.png", "-o", tmp_path / "q1", "--no-pictures", "--quality", "1")
    assert (tmp_path / "q1" / "tiny_compressed.dctz").stat().st_size > 6


def test_a_missing_ssim_in_the_table_says_why(tmp_path):
    Image.fromarray(np.array([[10, 200, 30], [40, 50, 250]], np.uint8)).save(tmp_path / "tiny.png")
    result = run("compress", tmp_path / "tiny.png", "-o", tmp_path / "out", "--no-pictures")
    lines = result.stdout.splitlines()
    assert lines[1].split()[6] == "-"  # the SSIM column
    assert lines[2:] == [f"Note: {tmp_path / 'tiny.png'}: SSIM -: the image is 3 x 2 pixels; SSIM needs at least "
                         "3 on each side"]


def test_a_missing_bd_rate_says_why(tmp_path):
    """A constant image: every other codec's curve has one point; dctconv's files grow with the quality
    (the adaptive coder spends more bits on a larger DC level) and its PSNR with them, its SSIM does not."""
    Image.fromarray(np.full((8, 8), 77, np.uint8)).save(tmp_path / "flat.png")
    result = run("compress", tmp_path / "flat.png", "-o", tmp_path / "out", "--no-pictures", "--sweep")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = lines[lines.index(next(l for l in lines if l.startswith("BD-rates"))) + 2:]
    zonal = next(row for row in rows if row.split()[1:3] == ["zonal", "K"])
    assert zonal.split()[3] == "n/a"
    notes = [line for line in rows if line.startswith("Note:")]
    flat = tmp_path / "flat.png"
    # JPEG XL (imagecodecs, on 8-bit sweeps too): its lossy points of a flat image all reach
    # PSNR far above dctconv's, so the two PSNR ranges do not meet.
    jxl = "JPEG XL" in result.stdout
    assert notes == [
        f"Note: {flat}: n/a against zonal K at equal PSNR: the zonal K curve has 1 point whose PSNR more bits "
        "improve; a BD-rate needs 2",
        f"Note: {flat}: n/a against zonal K, JPEG, WebP{', AVIF and JPEG XL' if jxl else ' and AVIF'} at equal "
        "SSIM: dctconv's curve has 1 point whose SSIM more bits improve; a BD-rate needs 2",
    ] + [f"Note: {flat}: n/a against {other} at equal PSNR: the {other} curve has 1 point whose PSNR more bits "
         "improve; a BD-rate needs 2" for other in ("JPEG", "WebP", "AVIF")] + (
        [f"Note: {flat}: n/a against JPEG XL at equal PSNR: the two curves' PSNR ranges do not overlap"] if jxl else [])
