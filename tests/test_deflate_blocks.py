import hashlib
import io
import os
import random
import shutil
import subprocess
import threading
import time
import zipfile
import zlib

import pytest

from audb_publish import deflate_blocks
from audb_publish import threads
from audb_publish import zipwriter
from audb_publish.scheduler import Scheduler

BLOCK = 1 << 16

CODECS = {
    "isal": zipwriter.Deflate("isal", 3, mem_level=3),
    "zlib-ng": zipwriter.Deflate("zlib-ng", 6),
    "zlib": zipwriter.Deflate("zlib", 6),
}


def _text(size: int) -> bytes:
    rng = random.Random(size)
    rows = []
    total = 0
    while total < size:
        file = f"audio/{rng.randrange(10**5):05d}.wav"
        row = f"{file},{rng.random():.4f},label{rng.randrange(9)}\n"
        rows.append(row)
        total += len(row)
    return "".join(rows).encode()[:size]


CONTENTS = {
    "0 bytes": b"",
    "1 byte": b"x",
    "one block": _text(BLOCK),
    "one block and 1 byte": _text(BLOCK + 1),
    "many blocks": _text(7 * BLOCK + 1234),
    "incompressible": random.Random(1).randbytes(5 * BLOCK + 17),
}


@pytest.fixture
def small_blocks(monkeypatch):
    r"""Every member is deflated in blocks of 64 KiB."""
    monkeypatch.setattr(deflate_blocks, "BLOCK_SIZE", BLOCK)
    monkeypatch.setattr(deflate_blocks, "THRESHOLD", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})


def _write_in_job(num_workers, archive, root, files, codec, **kwargs):
    with Scheduler(num_workers, verbose=False) as scheduler:
        job = scheduler.submit(
            zipwriter.write_zip, str(archive), str(root), files, codec, **kwargs
        )
        return scheduler.ordered([job])[0]


def _stream_unzip(archive) -> dict[str, bytes]:
    stream_unzip = pytest.importorskip("stream_unzip")

    def chunks():
        with open(archive, "rb") as fp:
            while chunk := fp.read(5000):
                yield chunk

    return {
        name.decode(): b"".join(data)
        for name, _, data in stream_unzip.stream_unzip(chunks())
    }


@pytest.mark.parametrize("content", list(CONTENTS))
@pytest.mark.parametrize("engine", list(CODECS))
def test_archives_extract_identically(content, engine, small_blocks, tmp_path):
    data = CONTENTS[content]
    root = tmp_path / "root"
    root.mkdir()
    (root / "member.csv").write_bytes(data)
    digests = set()
    for num_workers in [1, 3]:
        archive = tmp_path / f"{num_workers}.zip"
        info = _write_in_job(num_workers, archive, root, ["member.csv"], CODECS[engine])
        assert info.uncompressed == len(data)
        with zipfile.ZipFile(archive) as zf:
            assert zf.testzip() is None
            assert zf.read("member.csv") == data
            assert zf.getinfo("member.csv").CRC == zlib.crc32(data)
            assert zf.getinfo("member.csv").compress_type == zipfile.ZIP_DEFLATED
        if shutil.which("unzip") is not None:  # pragma: no branch
            result = subprocess.run(
                ["unzip", "-t", str(archive)], capture_output=True, text=True
            )
            assert result.returncode == 0, result.stdout + result.stderr
        assert _stream_unzip(archive) == {"member.csv": data}
        digests.add(info.md5)
    # the bytes do not depend on the number of cores that compressed them
    assert len(digests) == 1


def test_within_a_tenth_of_a_percent_of_one_stream(monkeypatch):
    monkeypatch.setattr(deflate_blocks, "BLOCK_SIZE", 1 << 20)
    data = _text(5 << 20)
    for codec in CODECS.values():
        single = codec.compressor()
        single = single.compress(data) + single.flush()
        blocks = []
        crc, size, compressed = deflate_blocks.deflate(
            io.BytesIO(data), codec.compressor, blocks.append
        )
        stream = b"".join(blocks)
        assert (crc, size, compressed) == (zlib.crc32(data), len(data), len(stream))
        assert zlib.decompress(stream, -15) == data
        assert len(single) < len(stream) <= 1.001 * len(single)


class Compressors:
    r"""Compressor factory that records threads and concurrency, and can fail."""

    def __init__(self, codec, fail_at=None, delay=0.003):
        self.codec = codec
        self.fail_at = fail_at
        self.delay = delay
        self.threads = set()
        self.created = 0
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, zdict=None):
        with self._lock:
            self.created += 1
            self.threads.add(threading.get_ident())
            if self.created == self.fail_at:
                raise MemoryError("no memory for a compressor")
        return _Counted(self, self.codec.compressor(zdict))


class _Counted:
    def __init__(self, owner, compressor):
        self._owner = owner
        self._compressor = compressor

    def compress(self, data):
        owner = self._owner
        with owner._lock:
            owner.now += 1
            owner.most = max(owner.most, owner.now)
        try:
            time.sleep(owner.delay)  # long enough for helpers to overlap
            return self._compressor.compress(data)
        finally:
            with owner._lock:
                owner.now -= 1

    def flush(self, mode=zlib.Z_FINISH):
        return self._compressor.flush(mode)


def _deflate_in_job(num_workers, data, compressors, **kwargs):
    blocks = []

    def job():
        result = deflate_blocks.deflate(
            io.BytesIO(data), compressors, blocks.append, **kwargs
        )
        return result, b"".join(blocks)

    with Scheduler(num_workers, verbose=False) as scheduler:
        return scheduler.ordered([scheduler.submit(job)])[0]


@pytest.mark.parametrize("num_workers", [1, 2, 16])
def test_helpers_use_idle_cores_but_never_more(num_workers, small_blocks):
    data = CONTENTS["many blocks"] * 3
    compressors = Compressors(CODECS["zlib-ng"])
    (crc, size, _), stream = _deflate_in_job(num_workers, data, compressors)
    assert (crc, size) == (zlib.crc32(data), len(data))
    assert zlib.decompress(stream, -15) == data
    assert compressors.most == min(num_workers, 2)
    assert len(compressors.threads) == min(num_workers, 2)


@pytest.mark.parametrize("num_workers", [1, 3])
@pytest.mark.parametrize("fail_at", [1, 2, 5])
def test_error_of_a_helper_reaches_the_caller(num_workers, fail_at, small_blocks):
    compressors = Compressors(CODECS["zlib"], fail_at=fail_at)
    with pytest.raises(MemoryError, match="no memory for a compressor"):
        _deflate_in_job(num_workers, CONTENTS["many blocks"], compressors)


def test_read_error_reaches_the_caller(small_blocks):
    class Failing(io.BytesIO):
        reads = 0

        def read(self, size=-1):
            self.reads += 1
            if self.reads == 3:
                raise OSError("disk gone")
            return super().read(size)

    with Scheduler(3, verbose=False) as scheduler:
        job = scheduler.submit(
            deflate_blocks.deflate,
            Failing(CONTENTS["many blocks"]),
            CODECS["zlib"].compressor,
            lambda data: None,
        )
        with pytest.raises(OSError, match="disk gone"):
            scheduler.ordered([job])


@pytest.mark.parametrize("num_workers", [1, 3])
def test_stopping_stops_helpers(num_workers, small_blocks, tmp_path):
    calls = []

    def progress(nbytes):
        calls.append(nbytes)
        if len(calls) == 2:
            raise threads.Cancelled()

    compressors = Compressors(CODECS["zlib-ng"])
    with pytest.raises(threads.Cancelled):
        _deflate_in_job(
            num_workers, CONTENTS["many blocks"] * 4, compressors, progress=progress
        )
    # the scheduler has shut down, so no helper runs on:
    # blocks read are at most those written and a window ahead
    assert compressors.created <= 2 + deflate_blocks.WINDOW
    assert calls == [BLOCK, BLOCK]


def test_short_reads_are_completed_and_hashed(small_blocks):
    class Trickle(io.BytesIO):
        def read(self, size=-1):
            return super().read(min(size, 1000))

    data = _text(3 * BLOCK + 5)
    blocks = []
    md5 = hashlib.md5()
    deflate_blocks.deflate(
        Trickle(data), CODECS["isal"].compressor, blocks.append, md5=md5
    )
    assert zlib.decompress(b"".join(blocks), -15) == data
    assert md5.hexdigest() == hashlib.md5(data).hexdigest()
    assert len(blocks) == 4 + 1  # four blocks and the final one


def test_large_member_of_a_published_table(small_blocks, tmp_path):
    r"""A member above the threshold is deflated in blocks by write_zip."""
    data = _text(3 * BLOCK)
    (tmp_path / "db.table.csv").write_bytes(data)
    archive = tmp_path / "table.zip"
    info = zipwriter.write_zip(
        str(archive), str(tmp_path), ["db.table.csv"], CODECS["zlib-ng"]
    )
    with open(archive, "rb") as fp:
        assert info.md5 == hashlib.md5(fp.read()).hexdigest()
    with zipfile.ZipFile(archive) as zf:
        assert zf.read("db.table.csv") == data
        compressed = zf.getinfo("db.table.csv").compress_size
    # the stream ends with a sync flush and an empty final block
    with open(archive, "rb") as fp:
        raw = fp.read()
    end = raw.rindex(b"PK\x07\x08")
    assert raw[end - 6 : end] == b"\x00\x00\xff\xff" + deflate_blocks.FINAL_BLOCK
    assert compressed == end - raw.index(b"db.table.csv") - len("db.table.csv")


def test_assist_starts_helpers_only_in_a_running_job(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    ran = []

    def job(stop_first):
        if stop_first:
            scheduler.stop()
        return threads.assist(lambda: ran.append(1), 5)

    assert threads.assist(lambda: ran.append(1), 5) == 0
    with Scheduler(8, verbose=False) as scheduler:
        assert scheduler.ordered([scheduler.submit(job, False)]) == [2]
    with Scheduler(8, verbose=False) as scheduler:
        assert scheduler.ordered([scheduler.submit(job, True)]) == [0]
    assert ran == [1, 1]
