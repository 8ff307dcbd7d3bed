"""Hostile and malformed data files: each is refused with a DataError naming the file, never a traceback, and
compressed data is never inflated past what its header announces or the data-size limit."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from specc.train.data import DataError, Splits, load_data

MB = 1 << 20


def load(name: str, *args: object, base_dir: Path, **kwargs: object) -> Splits:
    return load_data(name, args, kwargs, base_dir=base_dir, seed=0)


def _zeros(total: int, chunk: int = MB) -> Iterator[bytes]:
    block = bytes(chunk)
    for start in range(0, total, chunk):
        yield block[: min(chunk, total - start)]


def _idx_header(magic: int, *dims: int) -> bytes:
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)


def _gzip_bomb(path: Path, head: bytes, zeros: int, tail: bytes = b"") -> None:
    """`head`, then `zeros` zero bytes, gzipped chunk by chunk: the test never holds the bomb in memory."""
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(head)
        for block in _zeros(zeros):
            f.write(block)
        f.write(tail)


@pytest.fixture()
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("SPECC_MAX_DATA_BYTES", str(MB))
    return MB


# ------------------------------------------------------------------------------------------------ compression bombs


def test_idx_gzip_bomb_stops_at_the_size_the_header_announces(tmp_path: Path) -> None:
    # 200 MB of zeros behind a header announcing 10 labels: read one byte past the 10, then refused.
    _gzip_bomb(tmp_path / "t10k-labels-idx1-ubyte.gz", _idx_header(0x801, 10), 200 * MB)
    with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write(_idx_header(0x803, 10, 28, 28) + bytes(10 * 28 * 28))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            load("mnist", tmp_path, base_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.message == (
        "mnist: t10k-labels-idx1-ubyte.gz: IDX header announces 10 = 10 bytes of data, the file holds more "
        "(reading stopped one byte past it)"
    )
    assert peak < 16 * MB  # the 200 MB were never inflated


def test_idx_header_announcing_more_than_the_limit_is_refused_before_reading(
    tmp_path: Path, small_limit: int
) -> None:
    # The header tells the truth (5,000 images), but 3.9 MB is more than the 1 MiB limit set for this test.
    _gzip_bomb(tmp_path / "t10k-images-idx3-ubyte.gz", _idx_header(0x803, 5000, 28, 28), 5000 * 28 * 28)
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(_idx_header(0x801, 5000) + bytes(5000))
    with pytest.raises(DataError) as e:
        load("mnist", tmp_path, base_dir=tmp_path)
    assert "announces 5000x28x28 = 3920000 bytes of data, more than the limit of 1.0 MiB" in e.value.message
    assert "SPECC_MAX_DATA_BYTES" in e.value.hint


def test_csv_gzip_bomb_stops_at_the_limit(tmp_path: Path, small_limit: int) -> None:
    path = tmp_path / "table.csv"  # gzip is recognised by its magic bytes, whatever the name
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(b"a,y\n1,0\n")
        for _ in range(50):
            f.write(b"\n" * MB)  # blank lines: nothing accumulates but the count of bytes read
    with pytest.raises(DataError) as e:
        load("csv", path, base_dir=tmp_path)
    assert e.value.message.startswith(
        "csv: table.csv: holds more than 1.0 MiB when decompressed, more than the"
    )
    assert "limit of 1.0 MiB (1048576 bytes)" in e.value.message


def test_csv_gz_within_the_limit_loads(tmp_path: Path) -> None:
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(b"a,b,y\n1,2,0\n3,4,1\n"))
    f = load("csv", "t.csv.gz", base_dir=tmp_path).train.fields
    assert f["x"].tolist() == [[1, 2], [3, 4]] and f["y"].tolist() == [0, 1]


def _npz_entry(archive: zipfile.ZipFile, name: str, header_array: np.ndarray, zeros: int) -> None:
    """A deflated .npy member: the header of `header_array`, then `zeros` zero bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(header_array))
    with archive.open(name, "w", force_zip64=True) as f:
        f.write(buf.getvalue())
        for block in _zeros(zeros):
            f.write(block)


def test_npz_bomb_with_a_lying_npy_header_is_refused_before_inflating(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        _npz_entry(z, "x.npy", np.zeros(10, np.float32), 200 * MB)
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            load("npz", "bomb.npz", base_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.message == (
        f"npz: bomb.npz: array 'x' announces shape [10] (40 bytes of float32) but its archive entry holds "
        f"{200 * MB} bytes of data"
    )
    assert peak < 16 * MB


def test_npz_announcing_more_than_the_limit_is_refused(tmp_path: Path, small_limit: int) -> None:
    with zipfile.ZipFile(tmp_path / "big.npz", "w", zipfile.ZIP_DEFLATED) as z:
        _npz_entry(z, "x.npy", np.zeros((2 * MB // 4,), np.float32), 2 * MB)
    with pytest.raises(
        DataError, match=r"big.npz: its arrays announce 2.0 MiB, more than the limit of 1.0 MiB"
    ):
        load("npz", "big.npz", base_dir=tmp_path)


def test_cifar_tar_gz_bomb_stops_at_the_limit(tmp_path: Path, small_limit: int) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    with gzip.open(path, "wb", compresslevel=1) as gz, tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = 8 * MB
        tar.addfile(info, io.BufferedReader(io.BytesIO(bytes(8 * MB))))
    with pytest.raises(DataError, match=r"cifar-10-python.tar.gz: holds more than 1.0 MiB when decompressed"):
        load("cifar10", path, base_dir=tmp_path)


def test_bad_limit_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "t.csv").write_text("a,y\n1,0\n")
    monkeypatch.setenv("SPECC_MAX_DATA_BYTES", "lots")
    with pytest.raises(DataError, match=r"SPECC_MAX_DATA_BYTES='lots' is not a positive number of bytes"):
        load("csv", "t.csv", base_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ npz


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"npz: d.npz is empty \(0 bytes\)"),
        (b"hello", r"npz: d.npz: not a readable .npz archive \(File is not a zip file\)"),
        (b"PK\x03\x04" + bytes(40), r"npz: d.npz: not a readable .npz archive"),
    ],
)
def test_npz_not_an_archive(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "d.npz").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load("npz", "d.npz", base_dir=tmp_path)


def test_npz_empty_archives_and_foreign_members(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"npz: d.npz holds no arrays"):
        load("npz", "d.npz", base_dir=tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((0, 3)), y=np.zeros(0, np.int32))
    with pytest.raises(DataError, match=r"the data holds no examples"):
        load("npz", "d.npz", base_dir=tmp_path)
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(DataError, match=r"member 'notes.txt' is not an .npy array"):
        load("npz", "d.npz", base_dir=tmp_path)
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.writestr("x.npy", b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError, match=r"member 'x' has no valid .npy header"):
        load("npz", "d.npz", base_dir=tmp_path)
    np.save(tmp_path / "a.npy", np.zeros(3))
    (tmp_path / "a.npy").rename(tmp_path / "d.npz")
    with pytest.raises(DataError, match=r"a single .npy array, not an .npz archive"):
        load("npz", "d.npz", base_dir=tmp_path)


def test_npz_truncated_member_and_object_arrays(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.arange(12.0).reshape(6, 2), y=np.arange(6))
    data = bytearray((tmp_path / "d.npz").read_bytes())
    data[len(data) // 3] ^= 0xFF  # a flipped bit inside x's data: the CRC check catches it
    (tmp_path / "d.npz").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"d.npz: not a readable .npz archive"):
        load("npz", "d.npz", base_dir=tmp_path)
    np.savez(tmp_path / "d.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match=r"array 'x' holds Python objects"):
        load("npz", "d.npz", base_dir=tmp_path)


def test_npz_round_trip_keeps_dtype_and_layout(tmp_path: Path) -> None:
    x = np.asfortranarray(np.arange(24, dtype=">f4").reshape(4, 3, 2))
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.arange(4, dtype=np.uint8), m=np.ones(4, bool))
    f = load("npz", "d.npz", base_dir=tmp_path).train.fields
    assert np.array_equal(f["x"], x) and f["y"].tolist() == [0, 1, 2, 3] and f["m"].dtype == np.bool_


def test_npz_non_finite_values(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 2)), y=np.array([0.0, np.nan, 1.0]))
    with pytest.raises(DataError) as e:
        load("npz", "d.npz", base_dir=tmp_path)
    assert e.value.message == "npz: field 'y' holds nan in example 1; every number must be finite"
    assert e.value.field == "y"
    x = np.zeros((3, 2, 2), np.float32)
    x[2, 1, 0] = -np.inf
    np.savez(tmp_path / "d.npz", x=x)
    with pytest.raises(DataError, match=r"field 'x' holds -inf in example 2"):
        load("npz", "d.npz", base_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ csv


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b,y\n1,2,0\n3,4\n", r"t.csv:3: expected 3 cells as in the header, found 2"),
        ("a,b,y\n1,2,0\n3,4,1,5\n", r"t.csv:3: expected 3 cells as in the header, found 4"),
        ("a,b,y\n1,abc,0\n3,4,1\n", r"column 'b' mixes numbers and text: line 3 holds 4, line 2 holds 'abc'"),
        ("a,y\n1,0\n2,cat\n", r"column 'y' mixes numbers and text: line 2 holds 0, line 3 holds 'cat'"),
        ("a,b,y\n1,2,nan\n3,4,1\n", r"column 'y' holds nan at line 2; every number must be finite"),
        ("a,b,y\n1,1e999,0\n3,4,1\n", r"column 'b' holds 1e999 at line 2"),
        ("a,y\n1,0\n2,99999999999\n", r"column 'y': the integer label at line 3 is outside the i32 range"),
        ("a,y\n1,0\n2," + "9" * 5000 + "\n", r"column 'y' holds 9+ at line 3; every number must be finite"),
        ('a,y\n1,"0\n', r"t.csv:2: malformed CSV \(unexpected end of data\)"),
        ('a,y\n1,"0"x\n', r"t.csv:2: malformed CSV"),
        ("", r"t.csv is empty"),
    ],
)
def test_csv_malformed(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(DataError, match=message):
        load("csv", "t.csv", base_dir=tmp_path)


def test_csv_binary_and_corrupt_gzip(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_bytes(b"a,y\n\xff\xfe,0\n")
    with pytest.raises(DataError, match=r"t.csv: not a UTF-8 text file"):
        load("csv", "t.csv", base_dir=tmp_path)
    (tmp_path / "t.csv").write_bytes(gzip.compress(b"a,y\n1,0\n2,1\n" * 100)[:-30])
    with pytest.raises(DataError, match=r"t.csv: corrupt gzip file"):
        load("csv", "t.csv", base_dir=tmp_path)


# ------------------------------------------------------------------------------------------------ IDX


def _idx_files(folder: Path, images: bytes, labels: bytes) -> None:
    (folder / "t10k-images-idx3-ubyte").write_bytes(images)
    (folder / "t10k-labels-idx1-ubyte").write_bytes(labels)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (b"", r"found only 0 bytes"),
        (b"\x00\x00\x08", r"found only 3 bytes"),
        (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x02" + bytes(12), r"magic 0x00000803 expected, found 0x00000802"),
        (_idx_header(0x803, 2, 2, 2) + bytes(7), r"announces 2x2x2 = 8 bytes of data, the file holds 7"),
        (_idx_header(0x803, 2, 2, 2) + bytes(9), r"announces 2x2x2 = 8 bytes of data, the file holds more"),
        (_idx_header(0x803, 2**32 - 1, 2**32 - 1, 2**32 - 1), r"more than the limit of 4.0 GiB"),
        (gzip.compress(_idx_header(0x803, 2, 2, 2), mtime=0)[:-5], "corrupt gzip file"),
        (b"\x1f\x8b" + bytes(30), "corrupt gzip file"),
    ],
)
def test_idx_malformed(tmp_path: Path, images: bytes, message: str) -> None:
    _idx_files(tmp_path, images, _idx_header(0x801, 2) + bytes(2))
    with pytest.raises(DataError, match=message):
        load("mnist", tmp_path, base_dir=tmp_path)


def test_idx_empty_and_mismatched_counts(tmp_path: Path) -> None:
    _idx_files(tmp_path, _idx_header(0x803, 0, 28, 28), _idx_header(0x801, 0))
    with pytest.raises(DataError, match=r"mnist: the data holds no examples"):
        load("mnist", tmp_path, base_dir=tmp_path)
    _idx_files(tmp_path, _idx_header(0x803, 2, 1, 1) + bytes(2), _idx_header(0x801, 3) + bytes(3))
    with pytest.raises(DataError, match=r"holds 2 images but t10k-labels-idx1-ubyte holds 3 labels"):
        load("mnist", tmp_path, base_dir=tmp_path)


def test_a_data_error_without_a_hint_of_its_own_points_to_the_data_sets_reference(tmp_path: Path) -> None:
    """`csv("<a folder>")` stopped `specc train` with a located file error and no hint; every data error now has
    one: the loader's own, else `specc data NAME`."""
    from click.testing import CliRunner

    from specc.cli import main

    (tmp_path / "folder").mkdir()
    spec = tmp_path / "m.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 4]\n  input y: i32[N]\n  z = x -> dense(3)\n  output z\n}\n"
        'train {\n  data = csv("folder")\n  loss = cross_entropy(z, y)\n}\n'
    )
    r = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run")])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"{spec}:8:3: file error: csv: {tmp_path / 'folder'} is a directory"), r.stderr
    assert r.stderr.rstrip().endswith("hint: `specc data csv` describes what csv reads"), r.stderr
