import hashlib
import io
import os
import random
import shutil
import struct
import subprocess
import threading
import time
import zipfile
import zlib

import audeer
import pytest

from audb_publish import zipwriter
from audb_publish.zipwriter import ArchiveInfo
from audb_publish.zipwriter import default_level
from audb_publish.zipwriter import is_compressed_format
from audb_publish.zipwriter import write_zip

FILES = [
    "speech.wav",
    "empty.txt",
    "a/b/c/nested.csv",
    "with space/file name.txt",
    "ümlaut/日本語 ñ.bin",
    "random.bin",
]


def _content(name: str) -> bytes:
    rng = random.Random(name)
    if name.endswith(".wav"):
        # a slowly varying 16 bit signal: compressible, but not trivially
        samples = [
            int(8000 * ((i // 40) % 7 - 3) / 3) + rng.randint(-50, 50)
            for i in range(60000)
        ]
        return struct.pack(f"<{len(samples)}h", *samples)
    if name.endswith(".csv"):
        rows = [
            f"audio/{i:05d}.wav,{rng.random():.6f},{rng.choice('abc')}\n"
            for i in range(3000)
        ]
        return "file,value,label\n".join(rows).encode()
    if name.startswith("empty"):
        return b""
    if name.endswith(".bin"):
        return rng.randbytes(200_000)
    return ("a line of text " * 500).encode()


def _make_files(root, names) -> dict[str, bytes]:
    contents = {}
    for name in names:
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        contents[name] = _content(name)
        with open(path, "wb") as fp:
            fp.write(contents[name])
    return contents


def _md5(path) -> str:
    with open(path, "rb") as fp:
        return hashlib.md5(fp.read()).hexdigest()


def _check_archive(archive, names, contents, info: ArchiveInfo, tmp_path):
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.namelist() == list(names)
        for name in names:
            assert zf.read(name) == contents[name]
    assert info.members == len(names)
    assert info.uncompressed == sum(len(contents[name]) for name in names)
    if isinstance(archive, (str, os.PathLike)):
        assert info.md5 == _md5(archive)
        assert info.size == os.path.getsize(archive)
        out = tmp_path / "extracted"
        extracted = audeer.extract_archive(str(archive), str(out))
        assert sorted(extracted) == sorted(names)
        for name in names:
            assert (out / name).read_bytes() == contents[name]
        shutil.rmtree(out)


def _unzip_test(archive):
    if shutil.which("unzip") is None:  # pragma: no cover
        return
    result = subprocess.run(
        ["unzip", "-t", str(archive)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.mark.parametrize(
    "levels",
    [None, 0, 1, 2, 3, [None, 0, 1, 2, 3, None]],
)
def test_path(tmp_path, root, levels):
    contents = _make_files(root, FILES)
    archive = tmp_path / "out" / "sub" / "archive.zip"
    info = write_zip(str(archive), str(root), FILES, levels)
    _check_archive(archive, FILES, contents, info, tmp_path)
    _unzip_test(archive)
    methods = levels if isinstance(levels, list) else [levels] * len(FILES)
    with zipfile.ZipFile(archive) as zf:
        for zinfo, level in zip(zf.infolist(), methods, strict=True):
            expected = zipfile.ZIP_STORED if level is None else zipfile.ZIP_DEFLATED
            assert zinfo.compress_type == expected
            # stored members carry CRC and sizes up front, for streaming readers
            assert bool(zinfo.flag_bits & 0x08) == (level is not None)


def test_iterables(tmp_path, root):
    contents = _make_files(root, FILES)
    archive = tmp_path / "archive.zip"
    levels = (level for level in [None, 0, 1, 2, 3, None])
    info = write_zip(archive, str(root), (name for name in FILES), levels)
    _check_archive(archive, FILES, contents, info, tmp_path)


def test_pathlike_and_order(tmp_path, root):
    names = list(reversed(FILES))
    contents = _make_files(root, names)
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), names, 1)
    _check_archive(archive, names, contents, info, tmp_path)


@pytest.mark.parametrize("levels", [None, 1, 3])
def test_stream(tmp_path, root, levels):
    contents = _make_files(root, FILES)
    stream = io.BytesIO()
    info = write_zip(stream, str(root), FILES, levels)
    data = stream.getvalue()
    assert info.md5 == hashlib.md5(data).hexdigest()
    assert info.size == len(data)
    _check_archive(io.BytesIO(data), FILES, contents, info, tmp_path)
    path = tmp_path / "archive.zip"
    assert write_zip(path, str(root), FILES, levels) == info
    assert path.read_bytes() == data


class _WriteOnly:
    """Neither seekable nor tellable, like a pipe or socket."""

    def __init__(self):
        self.chunks = []

    def write(self, data):
        self.chunks.append(bytes(data))
        return len(data)


class _ShortWrites(io.RawIOBase):
    """Raw stream accepting at most a few bytes per call."""

    def __init__(self):
        self.data = bytearray()
        self.calls = 0

    def writable(self):
        return True

    def write(self, data):
        self.calls += 1
        if self.calls % 5 == 0:
            self.data += bytes(data)
            return None  # like streams that report nothing
        chunk = bytes(data[:1000])
        self.data += chunk
        return len(chunk)


@pytest.mark.parametrize("stream_class", [_WriteOnly, _ShortWrites])
def test_unusual_streams(tmp_path, root, stream_class):
    contents = _make_files(root, FILES)
    stream = stream_class()
    info = write_zip(stream, str(root), FILES, [None, 1, 2, 3, 0, None])
    data = stream.data if hasattr(stream, "data") else b"".join(stream.chunks)
    assert info.md5 == hashlib.md5(data).hexdigest()
    _check_archive(io.BytesIO(bytes(data)), FILES, contents, info, tmp_path)


def test_pipe(tmp_path, root):
    contents = _make_files(root, FILES)
    read_fd, write_fd = os.pipe()
    received = []

    def read():
        with os.fdopen(read_fd, "rb") as fp:
            received.append(fp.read())

    thread = threading.Thread(target=read)
    thread.start()
    with os.fdopen(write_fd, "wb") as fp:
        info = write_zip(fp, str(root), FILES, 1, buffer_size=4096)
    thread.join()
    assert info.md5 == hashlib.md5(received[0]).hexdigest()
    _check_archive(io.BytesIO(received[0]), FILES, contents, info, tmp_path)


@pytest.mark.parametrize("buffer_size", [1, 7, 65536])
def test_buffer_sizes(tmp_path, root, buffer_size):
    names = ["speech.wav", "empty.txt", "a/b/c/nested.csv"]
    contents = _make_files(root, names)
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), names, [1, 2, None], buffer_size=buffer_size)
    _check_archive(archive, names, contents, info, tmp_path)


@pytest.mark.parametrize("levels", [None, 1])
def test_one_member(tmp_path, root, levels):
    contents = _make_files(root, ["speech.wav"])
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), ["speech.wav"], levels)
    _check_archive(archive, ["speech.wav"], contents, info, tmp_path)


def test_no_member(tmp_path, root):
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), [], 1)
    assert info == (_md5(archive), 22, 0, 0)
    with zipfile.ZipFile(archive) as zf:
        assert zf.namelist() == []


def test_empty_files(tmp_path, root):
    names = ["empty.txt", "empty/empty.wav"]
    contents = _make_files(root, names)
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), names, [None, 3])
    _check_archive(archive, names, contents, info, tmp_path)


def test_many_members(tmp_path, root):
    names = [f"folder {i % 7}/file-{i:04d}.txt" for i in range(500)]
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x" * i)
    contents = {name: b"x" * i for i, name in enumerate(names)}
    archive = tmp_path / "archive.zip"
    levels = [None, 0, 1, 2, 3] * 100
    info = write_zip(archive, str(root), names, levels)
    _check_archive(archive, names, contents, info, tmp_path)
    _unzip_test(archive)


def test_same_metadata_as_audeer(tmp_path, root):
    contents = _make_files(root, FILES)
    os.chmod(root / FILES[0], 0o600)
    os.chmod(root / FILES[1], 0o755)
    os.utime(root / FILES[2], (0, 1_000_000_001))
    ours = tmp_path / "ours.zip"
    theirs = tmp_path / "theirs.zip"
    write_zip(ours, str(root), FILES, 1)
    audeer.create_archive(str(root), FILES, str(theirs))
    with zipfile.ZipFile(ours) as a, zipfile.ZipFile(theirs) as b:
        for x, y in zip(a.infolist(), b.infolist(), strict=True):
            assert x.filename == y.filename
            assert x.orig_filename == y.orig_filename
            assert x.date_time == y.date_time
            assert x.external_attr == y.external_attr
            assert x.create_system == y.create_system
            assert x.CRC == y.CRC
            assert x.file_size == y.file_size
            assert x.flag_bits & 0x800 == y.flag_bits & 0x800
            assert a.read(x) == contents[x.filename]


@pytest.mark.parametrize(
    "mtime, expected",
    [
        (0, (1980, 1, 1, 0, 0, 0)),
        (7_500_000_000, (2107, 12, 31, 23, 59, 58)),
    ],
)
def test_timestamps_out_of_range(tmp_path, root, mtime, expected):
    (root / "file.txt").write_bytes(b"text")
    os.utime(root / "file.txt", (mtime, mtime))
    archive = tmp_path / "archive.zip"
    write_zip(archive, str(root), ["file.txt"], None)
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[0].date_time == expected


def test_timestamp(tmp_path, root):
    (root / "file.txt").write_bytes(b"text")
    mtime = time.mktime((2021, 6, 15, 13, 45, 31, 0, 0, -1))
    os.utime(root / "file.txt", (mtime, mtime))
    archive = tmp_path / "archive.zip"
    write_zip(archive, str(root), ["file.txt"], 2)
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[0].date_time == (2021, 6, 15, 13, 45, 30)


def test_missing_member_removes_partial_file(tmp_path, root):
    _make_files(root, FILES)
    archive = tmp_path / "archive.zip"
    archive.write_bytes(b"old content")
    with pytest.raises(FileNotFoundError):
        write_zip(archive, str(root), FILES + ["missing.wav"], 1)
    assert not archive.exists()


def test_directory_member_removes_partial_file(tmp_path, root):
    _make_files(root, FILES)
    archive = tmp_path / "archive.zip"
    with pytest.raises(OSError):
        write_zip(archive, str(root), ["speech.wav", "a/b"], 1)
    assert not archive.exists()


def test_error_on_stream_propagates(root):
    _make_files(root, FILES)
    stream = io.BytesIO()
    with pytest.raises(FileNotFoundError):
        write_zip(stream, str(root), ["speech.wav", "missing.wav"], None)
    assert stream.getvalue().startswith(b"PK\x03\x04")


def test_error_while_writing_removes_partial_file(tmp_path, root, monkeypatch):
    _make_files(root, FILES)
    archive = tmp_path / "archive.zip"

    def fail(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(zipwriter, "_write_central_directory", fail)
    with pytest.raises(KeyboardInterrupt):
        write_zip(archive, str(root), FILES, 1)
    assert not archive.exists()


@pytest.mark.parametrize(
    "files, levels, buffer_size, match",
    [
        (["/abs.wav"], 1, 1024, "normalized relative path"),
        ([""], 1, 1024, "normalized relative path"),
        (["a/../b.wav"], 1, 1024, "normalized relative path"),
        (["./b.wav"], 1, 1024, "normalized relative path"),
        (["a//b.wav"], 1, 1024, "normalized relative path"),
        (["a/"], 1, 1024, "normalized relative path"),
        (["a.wav", "a.wav"], 1, 1024, "given twice"),
        ("a.wav", 1, 1024, "not a string"),
        (["a.wav", "b.wav"], [1], 1024, "has 1 entries"),
        (["a.wav"], 4, 1024, "from 0 to 3"),
        (["a.wav"], [-1], 1024, "from 0 to 3"),
        (["a.wav"], [1.5], 1024, "from 0 to 3"),
        (["a.wav"], 2.0, 1024, "from 0 to 3"),
        (["a.wav"], ["1"], 1024, "from 0 to 3"),
        (["a.wav"], 1, 0, "positive"),
    ],
)
def test_invalid_arguments(tmp_path, root, files, levels, buffer_size, match):
    archive = tmp_path / "archive.zip"
    with pytest.raises(ValueError, match=match):
        write_zip(archive, str(root), files, levels, buffer_size=buffer_size)
    assert not archive.exists()


def _zip64_extra_ids(zinfo) -> list[int]:
    ids, extra = [], zinfo.extra
    while extra:
        header_id, size = struct.unpack("<HH", extra[:4])
        ids.append(header_id)
        extra = extra[4 + size :]
    return ids


@pytest.mark.parametrize("levels", [None, 1, [None, 3, 0, 1, 2, None]])
def test_zip64(tmp_path, root, monkeypatch, levels):
    monkeypatch.setattr(zipwriter, "ZIP64_LIMIT", 100_000)
    monkeypatch.setattr(zipwriter, "ZIP_FILECOUNT_LIMIT", 3)
    contents = _make_files(root, FILES)
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), FILES, levels)
    data = archive.read_bytes()
    assert b"PK\x06\x06" in data and b"PK\x06\x07" in data
    end = struct.unpack("<4s4H2LH", data[-22:])
    assert end[3:5] == (0xFFFF, 0xFFFF)
    _check_archive(archive, FILES, contents, info, tmp_path)
    _unzip_test(archive)
    with zipfile.ZipFile(archive) as zf:
        for zinfo in zf.infolist():
            large = zinfo.file_size >= 100_000 or zinfo.header_offset >= 100_000
            assert (1 in _zip64_extra_ids(zinfo)) == large
            if large:
                assert zinfo.extract_version == 45


def test_zip64_local_header(tmp_path, root, monkeypatch):
    monkeypatch.setattr(zipwriter, "ZIP64_LIMIT", 150_000)
    contents = _make_files(root, ["random.bin"])
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), ["random.bin"], None)
    data = archive.read_bytes()
    header = struct.unpack("<4s5H3L2H", data[:30])
    assert header[1] == 45
    assert header[7:9] == (0xFFFFFFFF, 0xFFFFFFFF)
    name_size, extra_size = header[9:]
    extra = data[30 + name_size : 30 + name_size + extra_size]
    # stored: the sizes are known up front and written to the ZIP64 extra field
    assert struct.unpack("<2H2Q", extra) == (1, 16, 200_000, 200_000)
    assert header[6] == zlib.crc32(contents["random.bin"])
    _check_archive(archive, ["random.bin"], contents, info, tmp_path)
    _unzip_test(archive)


def test_zip64_in_local_header_but_not_needed(tmp_path, root, monkeypatch):
    # 1.05 * size reaches the limit, compressed and actual size do not
    monkeypatch.setattr(zipwriter, "ZIP64_LIMIT", 200_001)
    contents = _make_files(root, ["random.bin", "speech.wav"])
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), ["random.bin", "speech.wav"], 1)
    _check_archive(archive, ["random.bin", "speech.wav"], contents, info, tmp_path)
    _unzip_test(archive)


def test_file_grows_beyond_local_header(tmp_path, root, monkeypatch):
    monkeypatch.setattr(zipwriter, "ZIP64_LIMIT", 150_000)
    monkeypatch.setattr(zipwriter, "ZIP64_SIZE_MARGIN", 0.5)
    _make_files(root, ["random.bin"])
    archive = tmp_path / "archive.zip"
    with pytest.raises(RuntimeError, match="grew"):
        write_zip(archive, str(root), ["random.bin"], None)
    assert not archive.exists()


@pytest.mark.skipif(
    not os.environ.get("ZIPWRITER_LARGE"),
    reason="writes and reads a 4.1 GiB archive, set ZIPWRITER_LARGE=1",
)
def test_zip64_large_file(tmp_path, root):  # pragma: no cover
    size = (1 << 32) + 12345
    with open(root / "large.bin", "wb") as fp:
        fp.truncate(size)
        fp.seek(size // 2)
        fp.write(b"middle")
    (root / "small.txt").write_bytes(b"small")
    archive = tmp_path / "archive.zip"
    info = write_zip(archive, str(root), ["large.bin", "small.txt"], [None, 1])
    assert info.md5 == _md5(archive)
    assert info.size == os.path.getsize(archive) > size
    with zipfile.ZipFile(archive) as zf:
        assert zf.testzip() is None
        assert zf.getinfo("large.bin").file_size == size
        assert zf.read("small.txt") == b"small"
    _unzip_test(archive)


@pytest.mark.parametrize(
    "file, expected",
    [
        ("a.flac", True),
        ("dir/a.FLAC", True),
        ("a.Mp3", True),
        ("a.opus", True),
        ("a.tar.gz", True),
        ("a.parquet", True),
        ("a.JPEG", True),
        ("a.zst", True),
        ("a.wav", False),
        ("a.WAV", False),
        ("a.csv", False),
        ("flac", False),
        ("a.flac.txt", False),
        (".mp3", False),
    ],
)
def test_is_compressed_format(file, expected):
    assert is_compressed_format(file) is expected


def test_default_level():
    assert default_level("a.wav") == zipwriter.DEFAULT_LEVEL
    assert default_level("a.csv") == zipwriter.DEFAULT_LEVEL
    assert default_level("a.flac") is None
    assert zipwriter.DEFAULT_LEVEL in range(4)


@pytest.mark.parametrize(
    "levels",
    [
        None,
        zipwriter.Deflate("isal", 3),
        zipwriter.Deflate("zlib-ng", 6),
        zipwriter.Deflate("zlib", 6),
        zipwriter.Deflate("zlib", 6, unless_above=0.999),
        [
            None,
            1,
            zipwriter.Deflate("zlib", 9),
            None,
            2,
            zipwriter.Deflate("zlib-ng", 1),
        ],
    ],
)
def test_streaming_reader(tmp_path, root, levels):
    r"""audb.load reads archives with stream-unzip, which needs sizes of stored data."""
    stream_unzip = pytest.importorskip("stream_unzip")
    contents = _make_files(root, FILES)
    archive = tmp_path / "archive.zip"
    info = write_zip(str(archive), str(root), FILES, levels)
    _check_archive(archive, FILES, contents, info, tmp_path)

    def chunks():
        with open(archive, "rb") as fp:
            while chunk := fp.read(7777):
                yield chunk

    extracted = {
        name.decode(): b"".join(data)
        for name, _, data in stream_unzip.stream_unzip(chunks())
    }
    assert extracted == contents


def test_deflate_engines():
    with pytest.raises(ValueError, match="Unknown deflate engine"):
        zipwriter.Deflate("brotli", 1)
    with pytest.raises(ValueError, match="from 1 to 9"):
        zipwriter.Deflate("zlib-ng", 0)
    with pytest.raises(ValueError, match="from 0 to 3"):
        zipwriter.Deflate("isal", 4)
    sample = b"abc" * 10_000
    assert zipwriter.Deflate("zlib", 6, unless_above=0.5).pays_off(sample)
    assert zipwriter.Deflate("zlib", 6).pays_off(os.urandom(1000))
    assert not zipwriter.Deflate("zlib", 6, unless_above=0.999).pays_off(
        os.urandom(10_000)
    )
    assert zipwriter.Deflate("zlib", 6, unless_above=0.999).pays_off(b"")


def test_unless_above_stores_incompressible(tmp_path, root):
    (root / "noise.bin").write_bytes(os.urandom(300_000))
    (root / "text.txt").write_bytes(b"hello world " * 30_000)
    archive = tmp_path / "archive.zip"
    codec = zipwriter.Deflate("zlib", 6, unless_above=0.999)
    write_zip(str(archive), str(root), ["noise.bin", "text.txt"], codec)
    with zipfile.ZipFile(archive) as zf:
        methods = [info.compress_type for info in zf.infolist()]
    assert methods == [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]


def test_progress_and_cancel(tmp_path, root):
    contents = _make_files(root, FILES)
    seen = []
    write_zip(
        str(tmp_path / "a.zip"), str(root), FILES, [None, 1] * 3, progress=seen.append
    )
    assert sum(seen) == sum(len(c) for c in contents.values())

    class Stop(Exception):
        pass

    def stop(n):
        raise Stop

    archive = tmp_path / "b.zip"
    with pytest.raises(Stop):
        write_zip(str(archive), str(root), FILES, 1, progress=stop)
    assert not archive.exists()


def test_stored_file_changes_while_written(tmp_path, root, monkeypatch):
    (root / "a.bin").write_bytes(b"x" * 1000)
    original = zipwriter._crc

    def crc_then_change(file, buffer):
        result = original(file, buffer)
        (root / "a.bin").write_bytes(b"y" * 1000)
        return result

    monkeypatch.setattr(zipwriter, "_crc", crc_then_change)
    with pytest.raises(RuntimeError, match="changed while it was written"):
        write_zip(str(tmp_path / "a.zip"), str(root), ["a.bin"], None)
