"""dctconv.io._kinds: the kind of a file by its first bytes, the suffix only a hint (issue 17)."""

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dctconv import encode, forward
from dctconv.codec._dctz import MAGIC
from dctconv.io import _kinds as kinds
from dctconv.io._npz import CoefficientHeader, save_coefficients

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def files(tmp_path):
    """One file of each kind, each under a name that hints at another kind."""
    image = np.random.default_rng(3).integers(0, 256, (16, 16), dtype=np.uint8)
    made = {}
    made["image"] = tmp_path / "photo_compressed.dctz"
    Image.fromarray(image).save(made["image"], format="PNG")
    made["jpeg"] = tmp_path / "photo.npz"
    Image.fromarray(image).save(made["jpeg"], format="JPEG")
    made["compressed"] = tmp_path / "photo.png"
    made["compressed"].write_bytes(encode(image))
    made["coefficients"] = tmp_path / "photo.tif"
    with open(made["coefficients"], "wb") as f:  # given a name, numpy would add .npz to it
        save_coefficients(f, forward(image.astype(float), 4), CoefficientHeader(4, (16, 16), "L"))
    made["zonal"] = tmp_path / "old.bin"
    shutil.copy(DATA / "zonal_n4_keep6_step2_t3_compressed.npz", made["zonal"])
    return made


def test_the_content_decides_whatever_the_name(files):
    assert {name: kinds.kind_of(path).name for name, path in files.items()} == {
        "image": "image", "jpeg": "image", "compressed": "compressed", "coefficients": "coefficients",
        "zonal": "zonal"}


def test_the_suffix_decides_only_when_the_content_does_not(tmp_path):
    for name, kind in [("a.png", "image"), ("a.JPG", "image"), ("a.dctz", "compressed"),
                       ("a.npz", "coefficients"), ("a_compressed.npz", "zonal")]:
        (tmp_path / name).write_bytes(b"damaged" * 10)  # the reader then says it is damaged
        assert kinds.kind_of(tmp_path / name).name == kind, name
    (tmp_path / "notes.txt").write_text("not an image")
    assert kinds.kind_of(tmp_path / "notes.txt") is None


def test_the_magic_bytes_agree_with_the_codec():
    assert kinds.DCTZ_MAGIC == MAGIC


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_never_opened(tmp_path):
    fifo = tmp_path / "pipe.dctz"
    os.mkfifo(fifo)
    found = []
    thread = threading.Thread(target=lambda: found.append(kinds.kind_of(fifo)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "kind_of blocked on a FIFO"
    assert found == [kinds.COMPRESSED]  # by its name; the reader refuses it
    assert kinds.files_in(tmp_path, kinds.COEFFICIENT_KINDS) == []


def test_a_folder_is_its_files_of_the_wanted_kinds(files, tmp_path):
    (tmp_path / ".hidden.png").write_bytes(files["image"].read_bytes())
    (tmp_path / "sub").mkdir()
    assert kinds.files_in(tmp_path, (kinds.IMAGE,)) == sorted([files["image"], files["jpeg"]])
    assert kinds.files_in(tmp_path, kinds.COEFFICIENT_KINDS) == sorted(
        [files["compressed"], files["coefficients"], files["zonal"]])


def test_a_file_of_the_wrong_kind_gets_the_command_that_reads_it():
    assert kinds.wrong_kind(kinds.COMPRESSED, (kinds.IMAGE,)) == (
        "is a compressed file (.dctz), not an image; decode it with dctconv transform --inverse")
    assert kinds.wrong_kind(kinds.IMAGE, kinds.COEFFICIENT_KINDS, image_fix="use dctconv compress") == (
        "is an image, not a coefficient file (.npz) or a compressed file (.dctz); use dctconv compress")
    assert kinds.wrong_kind(kinds.COEFFICIENTS, (kinds.IMAGE,)) == (
        "is a coefficient file (.npz), not an image; reconstruct the image with dctconv transform --inverse")
    assert kinds.wrong_kind(kinds.ZONAL, kinds.COEFFICIENT_KINDS) is None
    assert kinds.wrong_kind(None, (kinds.IMAGE,)) is None


def test_a_file_that_only_starts_like_a_zip_archive_is_the_kind_its_name_hints(tmp_path):
    # "PK\x05\x06" begins an empty archive; with no readable directory after it the file is
    # damaged, and the reader of the kind its name hints at says so (found by test_fuzz).
    for name, kind in [("photo.png", "image"), ("a.npz", "coefficients"), ("a_compressed.npz", "zonal")]:
        (tmp_path / name).write_bytes(b"PK\x05\x06" + b"\x89PNG\r\n\x1a\n" + bytes(40))
        assert kinds.kind_of(tmp_path / name).name == kind, name
    assert kinds.kind_of(_archive(tmp_path / "renamed.png")).name == "coefficients"  # a real one still is


def _archive(path):
    import numpy as np

    np.savez(path.with_suffix(".npz"), block_size=np.int64(4))
    path.with_suffix(".npz").rename(path)
    return path
