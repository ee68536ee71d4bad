"""Bounded .npz reads (issue 24, item 13, item 14's labels and the low items on odd archives):
members are read through `zipfile` against the size their header declares (itself under a limit),
never against the size the archive reports; a header that lies, a malformed header, duplicate
members, a file that is no archive, labels far beyond any class count: one line each."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.data.datasets import load_npz
from ganinf_mlops.errors import DataError


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def archive(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            z.writestr(name, data)
    return path


def bomb(path: Path, declared_rows: int, held: int) -> Path:
    """An archive whose x.npy declares `declared_rows` float64 rows and whose zip records claim
    as many bytes (as a real deflate bomb's do), though it holds only `held` zero bytes."""
    header = npy_header((declared_rows,))
    archive(path, [("x.npy", header + bytes(held))])
    raw = bytearray(path.read_bytes())
    claimed = len(header) + 8 * declared_rows
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local, central: file size
        at = raw.index(sig)
        raw[at + offset : at + offset + 4] = struct.pack("<I", claimed)
    path.write_bytes(bytes(raw))
    return path


def test_a_member_declaring_more_than_the_limit_is_refused_before_allocation(tmp_path, monkeypatch):
    monkeypatch.setenv("GANINF_MAX_NPZ_BYTES", str(1 << 30))
    path = bomb(tmp_path / "d.npz", declared_rows=(1 << 29) - 1024, held=1 << 20)  # ~4 GiB
    with pytest.raises(DataError, match=r"'x'.*above the limit 1,073,741,824.*GANINF_MAX_NPZ"):
        load_npz(path, "dataset file d.npz")


def test_a_member_holding_more_than_its_header_declares_is_refused(tmp_path):
    path = archive(tmp_path / "d.npz", [("x.npy", npy_header((10,)) + bytes(1 << 20))])
    with pytest.raises(DataError, match="more data than its header declares"):
        load_npz(path, "dataset file d.npz")


def test_a_member_holding_less_than_its_header_declares_is_corrupt(tmp_path):
    path = archive(tmp_path / "d.npz", [("x.npy", npy_header((1000,)) + bytes(80))])
    with pytest.raises(DataError, match="x.*holds fewer bytes"):
        load_npz(path, "dataset file d.npz")


def test_a_malformed_npy_header_inside_an_npz_is_one_line(tmp_path):
    header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '<f8', 'shape': (\x22"
    header += b" " * (128 - len(header) - 1) + b"\n"
    path = archive(tmp_path / "d.npz", [("x.npy", header + bytes(64))])
    with pytest.raises(DataError, match=r"d\.npz.*'x'.*header"):
        load_npz(path, "dataset file d.npz")


def test_duplicate_members_are_refused(tmp_path):
    x1, x2 = npy_bytes(np.zeros((4, 2))), npy_bytes(np.ones((4, 2)))
    with pytest.warns(UserWarning, match="Duplicate name"):
        path = archive(tmp_path / "d.npz", [("x.npy", x1), ("x.npy", x2)])
    with pytest.raises(DataError, match="'x' twice"):
        load_npz(path, "dataset file d.npz")


def test_a_text_file_is_not_called_pickled_data(tmp_path):
    path = tmp_path / "d.npz"
    path.write_text("just some text\n")
    with pytest.raises(DataError) as exc:
        load_npz(path, "dataset file d.npz")
    assert "pickled" not in str(exc.value) and "not an .npz archive" in str(exc.value)


def test_an_object_array_is_called_pickled_object_data(tmp_path):
    header = npy_header((2,), "|O")
    path = archive(tmp_path / "d.npz", [("x.npy", header + b"\x80\x04N.")])
    with pytest.raises(DataError, match=r"'x' holds pickled \(object\) data"):
        load_npz(path, "dataset file d.npz")


def test_a_fifo_is_not_called_missing(tmp_path):
    path = tmp_path / "d.npz"
    os.mkfifo(path)
    with pytest.raises(DataError, match="is a FIFO, not a regular file"):
        load_npz(path, "dataset file d.npz")


def test_an_honest_archive_still_reads(tmp_path):
    x = np.arange(12.0).reshape(3, 4)
    ids = np.asarray([5, 6, 7])
    np.savez_compressed(tmp_path / "d.npz", x=x, ids=ids, f=np.asfortranarray(x))
    arrays = load_npz(tmp_path / "d.npz", "d")
    assert np.array_equal(arrays["x"], x) and np.array_equal(arrays["ids"], ids)
    assert np.array_equal(arrays["f"], x) and arrays["f"].flags.f_contiguous


@pytest.mark.parametrize("label", [10**9, 2**62])
def test_images_npz_labels_beyond_the_class_limit_are_refused(tmp_path, label):
    from ganinf_mlops.data.images import images_npz

    x = np.zeros((10, 8, 8), dtype=np.uint8)
    y = np.asarray([0, 1] * 4 + [1, label], dtype=np.int64)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    with pytest.raises(DataError, match=r"'y'.*above the limit 10,000.*GANINF_MAX_CLASSES"):
        images_npz(tmp_path / "d.npz")
