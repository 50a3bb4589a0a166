"""Files that change between their scan and their pack are never published stale.

Each end-to-end test changes a file at one moment of the publish,
right after its checksum was taken or right after it was archived,
and then either expects the publish to fail
(original exception, no header, and a rerun publishes the new content)
or the published dependency table to match the archives.

Two file system clocks are simulated:
``"fine"`` makes no file racy,
so a change must be seen in the signature alone;
``"coarse"`` hides all timestamps from the signature
and makes every file racy,
so a rewrite of the same size must be seen by the MD5 of the pack.

"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import shutil
import time
import uuid
import zipfile

import audb
import audeer
import audformat
import pytest

from audb_publish import hashing
from audb_publish import integrity
from audb_publish import scan as scan_module
from audb_publish import zipwriter
from audb_publish.integrity import FileChangedError
from audb_publish.integrity import Guard
from audb_publish.integrity import Signature

from helpers import NAME
from helpers import convert_table
from helpers import download
from helpers import headers
from helpers import publish

# ----------------------------------------------------------- mutations


def wait_for_new_tick(path: str) -> None:
    r"""Wait until the file system clock is past the ctime of ``path``.

    Only then does a change of ``path`` get a new ctime.

    """
    before = os.stat(path).st_ctime_ns
    probe = os.path.join(os.path.dirname(path), f".tick-{uuid.uuid4().hex}")
    try:
        for _ in range(10_000):
            with open(probe, "wb"):
                pass
            if os.stat(probe).st_ctime_ns > before:
                return
            time.sleep(0.001)
    finally:
        os.remove(probe)
    raise AssertionError("the file system clock does not advance")


def append(path: str) -> None:
    with open(path, "ab") as fp:
        fp.write(b"\0" * 64)


def rewrite(path: str) -> None:
    r"""Rewrite with other bytes of the same size, and restore the mtime."""
    stat = os.stat(path)
    wait_for_new_tick(path)
    with open(path, "r+b") as fp:
        data = bytearray(fp.read())
        for i in range(len(data) // 2, len(data)):
            data[i] ^= 0x55
        fp.seek(0)
        fp.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns


def truncate(path: str) -> None:
    os.truncate(path, os.path.getsize(path) // 2)


def delete(path: str) -> None:
    os.remove(path)


MUTATIONS = {
    "append": append,
    "rewrite": rewrite,
    "truncate": truncate,
    "delete": delete,
}


# ---------------------------------------------------------- simulation


@pytest.fixture(params=["fine", "coarse"])
def clock(request, monkeypatch) -> str:
    r"""Simulate a file system clock, see the module docstring."""
    if request.param == "fine":
        monkeypatch.setattr(integrity, "RACY_NS", -(10**20))
    else:
        monkeypatch.setattr(integrity, "RACY_NS", 10**20)
        original = integrity.signature_of

        def without_times(stat, racy=False):
            return dataclasses.replace(original(stat, racy), mtime_ns=0, ctime_ns=0)

        monkeypatch.setattr(integrity, "signature_of", without_times)
    return request.param


def after_scan(monkeypatch, target: str, mutate) -> list[str]:
    r"""Mutate ``target`` right after its checksum was taken."""
    done = []
    media = scan_module.scan_media_file
    path_ = scan_module.scan_path

    def scan_media_file(root, file, progress):
        result = media(root, file, progress)
        if file == target:
            mutate(os.path.join(root, file))
            done.append(file)
        return result

    def scan_path(root, path, kind, progress):
        result = path_(root, path, kind, progress)
        for file in result.signatures:
            if file == target:
                mutate(os.path.join(root, file))
                done.append(file)
        return result

    monkeypatch.setattr(scan_module, "scan_media_file", scan_media_file)
    monkeypatch.setattr(scan_module, "scan_path", scan_path)
    return done


def after_write(monkeypatch, target: str, mutate) -> list[str]:
    r"""Mutate ``target`` right after it was written into its archive."""
    done = []
    original = zipwriter._write_member

    def write_member(output, root, name, *args, **kwargs):
        member = original(output, root, name, *args, **kwargs)
        if name == target:
            mutate(os.path.join(root, name))
            done.append(name)
        return member

    monkeypatch.setattr(zipwriter, "_write_member", write_member)
    return done


# -------------------------------------------------------------- checks


def assert_consistent(repository, tmp, version="1.0.0") -> audb.Dependencies:
    r"""Every checksum in the dependency table matches the published bytes."""
    tmp = audeer.mkdir(str(tmp), uuid.uuid4().hex)
    deps = audb.Dependencies()
    deps.load(download(repository, f"/{NAME}/{version}/db.parquet", tmp))
    extracted = {}

    def folder(kind: str, archive: str, version: str) -> str:
        key = (kind, archive, version)
        if key not in extracted:
            path = download(repository, f"/{NAME}/{kind}/{version}/{archive}.zip", tmp)
            extracted[key] = audeer.mkdir(tmp, uuid.uuid4().hex)
            with zipfile.ZipFile(path) as archive_:
                archive_.extractall(extracted[key])
        return extracted[key]

    for file in deps.media:
        if not deps.removed(file):
            root = folder("media", deps.archive(file), deps.version(file))
            assert hashing.md5(os.path.join(root, file)) == deps.checksum(file), file
    for file in deps.tables:
        if file.endswith(".parquet"):
            table_id = file[len("db.") : -len(".parquet")]
            remote = f"/{NAME}/meta/{deps.version(file)}/{table_id}.parquet"
            path = download(repository, remote, tmp)
        else:
            path = os.path.join(
                folder("meta", deps.archive(file), deps.version(file)), file
            )
        assert recorded(path) == deps.checksum(file), file
    for path in deps.attachments:
        root = folder("attachment", deps.archive(path), deps.version(path))
        assert recorded(os.path.join(root, path)) == deps.checksum(path)
    return deps


def recorded(path: str) -> str:
    r"""Checksum audb records: the PARQUET metadata hash, else audeer's MD5."""
    if path.endswith(".parquet") and hashing.parquet_hash(path) is not None:
        return hashing.parquet_hash(path)
    return audeer.md5(path)


def fails_then_rerun_publishes(
    monkeypatch, root, target, mutation, repository, template, tmp_path, pipeline
):
    r"""Mutate ``target`` after its scan: the publish fails, a rerun publishes."""
    cache = str(tmp_path / "cache")
    done = after_scan(monkeypatch, target, MUTATIONS[mutation])
    with pytest.raises((FileChangedError, FileNotFoundError)) as error:
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    assert done == [target]
    assert_failed_cleanly(error, repository, root, target, mutation)
    monkeypatch.undo()
    if mutation == "delete":
        shutil.copy2(os.path.join(template, target), os.path.join(root, target))
    publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    return assert_consistent(repository, tmp_path)


def assert_failed_cleanly(error, repository, root, target: str, mutation: str):
    assert headers(repository) == []
    assert not os.path.exists(os.path.join(root, "db.parquet"))
    if mutation == "delete":
        assert isinstance(error.value, FileNotFoundError)
        assert error.value.errno == errno.ENOENT
        assert error.value.filename == target
        assert "deleted while publishing" in str(error.value)
    else:
        assert isinstance(error.value, FileChangedError)
        assert f"'{target}' changed while publishing" in str(error.value)


# ------------------------------------------------------------ end to end


@pytest.fixture
def root(template, tmp_path) -> str:
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    return root


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("target", ["wav/a.wav", "flac/a.flac", "bundle/b2.wav"])
def test_media_changes_after_scan(
    target,
    mutation,
    pipeline,
    clock,
    root,
    repositories,
    template,
    tmp_path,
    monkeypatch,
):
    r"""A media file changes after its checksum: the pack raises."""
    repository = repositories.new("file-system")
    deps = fails_then_rerun_publishes(
        monkeypatch, root, target, mutation, repository, template, tmp_path, pipeline
    )
    assert deps.checksum(target) == hashing.md5(os.path.join(root, target))


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
@pytest.mark.parametrize("target", ["wav/a.wav", "flac/a.flac"])
def test_media_changes_after_write(
    target,
    mutation,
    pipeline,
    clock,
    root,
    repositories,
    template,
    tmp_path,
    monkeypatch,
):
    r"""A media file changes after it was archived: what was archived is published."""
    repository = repositories.new("file-system")
    done = after_write(monkeypatch, target, MUTATIONS[mutation])
    publish(root, repository, str(tmp_path / "cache"), num_workers=3, pipeline=pipeline)
    assert done == [target]
    deps = assert_consistent(repository, tmp_path)
    assert deps.checksum(target) == hashing.md5(os.path.join(template, target))


def resave(root: str, table_id: str) -> None:
    r"""Save a table again with other values, in the format it has."""
    fmt = "parquet" if os.path.exists(f"{root}/db.{table_id}.parquet") else "csv"
    wait_for_new_tick(f"{root}/db.{table_id}.{fmt}")
    db = audformat.Database.load(root, load_data=True)
    db[table_id]._df = db[table_id].df.copy()  # loaded read-only from PARQUET
    column = next(iter(db[table_id].columns))
    values = db[table_id][column].get()
    db[table_id][column].set(list(values[::-1]))
    convert_table(db, root, table_id, fmt)


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("table_id", ["files", "miscpq"])
def test_table_changes_after_scan(
    table_id, pipeline, clock, root, repositories, tmp_path, monkeypatch
):
    r"""A table is saved again after its checksum: the pack raises."""
    ext = "csv" if table_id == "files" else "parquet"
    target = f"db.{table_id}.{ext}"
    repository = repositories.new("file-system")
    cache = str(tmp_path / "cache")
    done = after_scan(monkeypatch, target, lambda path: resave(root, table_id))
    with pytest.raises(FileChangedError) as error:
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    assert done == [target]
    assert_failed_cleanly(error, repository, root, target, "resave")
    monkeypatch.undo()
    publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    deps = assert_consistent(repository, tmp_path)
    assert deps.checksum(target) == recorded(os.path.join(root, target))


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("mutation", ["append", "rewrite", "delete"])
def test_attachment_changes_after_scan(
    mutation, pipeline, clock, root, repositories, template, tmp_path, monkeypatch
):
    r"""A file of an attached folder changes after its checksum: the pack raises."""
    target = "docs/sub/a.txt"
    repository = repositories.new("file-system")
    deps = fails_then_rerun_publishes(
        monkeypatch, root, target, mutation, repository, template, tmp_path, pipeline
    )
    assert deps.checksum("docs") == recorded(os.path.join(root, "docs"))


def test_attachment_gets_a_file_before_its_scan(
    root, repositories, tmp_path, monkeypatch
):
    r"""A file added to an attached folder after the validation is not lost."""
    repository = repositories.new("file-system")
    cache = str(tmp_path / "cache")
    original = scan_module.scan_path

    def scan_path(root, path, kind, progress):
        if path == "docs":
            audeer.touch(root, "docs", "new.txt")
        return original(root, path, kind, progress)

    monkeypatch.setattr(scan_module, "scan_path", scan_path)
    with pytest.raises(FileChangedError, match="'docs/new.txt'"):
        publish(root, repository, cache)
    assert headers(repository) == []
    monkeypatch.undo()
    publish(root, repository, cache)
    deps = assert_consistent(repository, tmp_path)
    assert deps.checksum("docs") == recorded(os.path.join(root, "docs"))


@pytest.mark.parametrize("pipeline", [False, True])
def test_altered_media_deleted_after_scan_is_not_downloaded(
    pipeline, root, repositories, template, tmp_path, monkeypatch
):
    r"""With a previous version, a deleted file is not taken from it.

    Its new checksum is in the dependency table,
    so its old bytes must not be published instead.

    """
    repository = repositories.new("file-system")
    cache = str(tmp_path / "cache")
    publish(root, repository, cache)
    target = "wav/a.wav"
    append(os.path.join(root, target))
    done = after_scan(monkeypatch, target, delete)
    with pytest.raises(FileNotFoundError) as error:
        publish(root, repository, cache, "1.1.0", pipeline=pipeline)
    assert done == [target]
    assert error.value.filename == target
    assert headers(repository) == [f"/{NAME}/1.0.0/db.yaml"]
    monkeypatch.undo()
    shutil.copy2(os.path.join(template, target), os.path.join(root, target))
    publish(root, repository, cache, "1.1.0", pipeline=pipeline)
    assert_consistent(repository, tmp_path, "1.1.0")


# ------------------------------------------------------------------ units


def write(path, data: bytes) -> str:
    with open(path, "wb") as fp:
        fp.write(data)
    return str(path)


def signature_of(path, **changes) -> Signature:
    with open(path, "rb") as fp:
        return dataclasses.replace(integrity.take(fp.fileno()), **changes)


def test_signature_equality_ignores_racy_and_md5():
    a = Signature(1, 2, 3, 4, 5)
    assert a == Signature(1, 2, 3, 4, 5, racy=True, md5="x")
    assert a != Signature(1, 2, 3, 4, 6)


def test_take(tmp_path):
    path = write(tmp_path / "a.bin", b"abc")
    stat = os.stat(path)
    with open(path, "rb") as fp:
        signature = integrity.take(fp.fileno())
        newest = max(stat.st_mtime_ns, stat.st_ctime_ns)
        assert integrity.take(fp.fileno(), now=newest).racy
        assert integrity.take(fp.fileno(), now=newest + integrity.RACY_NS - 1).racy
        assert not integrity.take(fp.fileno(), now=newest + integrity.RACY_NS).racy
    assert signature == Signature(
        stat.st_dev, stat.st_ino, 3, stat.st_mtime_ns, stat.st_ctime_ns
    )
    assert signature.racy  # just written
    assert signature.md5 is None


@pytest.mark.parametrize(
    "changes, size, md5, reason",
    [
        ({}, 3, None, None),
        ({}, None, None, None),
        ({"md5": "a"}, 3, "a", None),
        ({"md5": None}, 3, "a", None),
        ({"size": 2}, 3, None, "size 2 -> 3"),
        ({}, 2, None, "3 bytes expected, 2 read"),
        ({}, 4, None, "3 bytes expected, 4 read"),
        ({"ino": -1}, 3, None, "replaced by another file"),
        ({"dev": -1}, 3, None, "replaced by another file"),
        ({"mtime_ns": -1}, 3, None, "modified"),
        ({"ctime_ns": -1}, 3, None, "status changed"),
        ({"md5": "a"}, 3, "b", "content changed"),
    ],
)
def test_check(changes, size, md5, reason, tmp_path):
    path = write(tmp_path / "a.bin", b"abc")
    expected = signature_of(path, **changes)
    with open(path, "rb") as fp:
        if reason is None:
            integrity.check(
                fp.fileno(), expected, "media", "x/a.bin", size=size, md5=md5
            )
            return
        with pytest.raises(FileChangedError) as error:
            integrity.check(
                fp.fileno(), expected, "media", "x/a.bin", size=size, md5=md5
            )
    assert str(error.value) == (
        f"Media file 'x/a.bin' changed while publishing ({reason}). "
        "Publish again to publish its new content."
    )


def test_confirm(tmp_path):
    path = write(tmp_path / "a.bin", b"abc")
    with open(path, "rb") as fp:
        fd = fp.fileno()
        racy = integrity.take(fd)
        assert integrity.confirm(fd, racy, "table", "a", 3, "m").md5 == "m"
        with pytest.raises(ValueError, match="MD5 of the racy file 'a'"):
            integrity.confirm(fd, racy, "table", "a", 3, None)
        calm = dataclasses.replace(racy, racy=False)
        assert integrity.confirm(fd, calm, "table", "a", None, "m").md5 is None
        with pytest.raises(FileChangedError, match="^Table file 'a' changed"):
            integrity.confirm(fd, calm, "table", "a", 2, None)


def test_deleted():
    error = integrity.deleted("attachment", "docs/a.txt")
    assert isinstance(error, FileNotFoundError)
    assert (error.errno, error.filename) == (errno.ENOENT, "docs/a.txt")
    assert Guard("media", "a.wav", Signature(1, 2, 3, 4, 5)).deleted().filename == (
        "a.wav"
    )


def test_aligned():
    a, b = Signature(1, 2, 3, 4, 5), Signature(1, 3, 3, 4, 5)
    assert integrity.aligned("table", ["x"], None) == ()
    assert integrity.aligned("attachment", ["b", "a"], {"a": a, "b": b}) == (b, a)
    with pytest.raises(FileChangedError, match=r"\('a', 'c'\)"):
        integrity.aligned("attachment", ["b", "c"], {"a": a, "b": b})


def test_guards():
    signature = Signature(1, 2, 3, 4, 5, True, "m")
    guards = integrity.guards("media", ["a", "b"], [signature, None])
    assert guards == [Guard("media", "a", signature), None]
    assert guards[0].racy
    assert not Guard("media", "a", Signature(1, 2, 3, 4, 5, True)).racy
    with pytest.raises(ValueError):
        integrity.guards("media", ["a"], [])


@pytest.mark.parametrize("level", [None, 1])
def test_write_zip_checks_guards(level, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    write(root / "a.bin", b"a" * 1000)
    write(root / "b.bin", b"b" * 1000)
    archive = tmp_path / "a.zip"
    guard = Guard("media", "a.bin", signature_of(root / "a.bin"))
    info = zipwriter.write_zip(
        archive, str(root), ["a.bin", "b.bin"], level, guards=[guard, None]
    )
    assert info.members == 2
    # a member that changed since its scan
    append(str(root / "a.bin"))
    with pytest.raises(FileChangedError, match=r"'a.bin' .* \(size 1000 -> 1064\)"):
        zipwriter.write_zip(
            archive, str(root), ["b.bin", "a.bin"], level, guards=[None, guard]
        )
    assert not archive.exists()
    # a member of the same stat, but other content: only the MD5 tells
    racy = Guard("media", "a.bin", signature_of(root / "a.bin", md5="0" * 32))
    with pytest.raises(FileChangedError, match=r"\(content changed\)"):
        zipwriter.write_zip(archive, str(root), ["a.bin"], level, guards=[racy])
    right = hashlib.md5(b"a" * 1000 + b"\0" * 64).hexdigest()
    racy = Guard("media", "a.bin", signature_of(root / "a.bin", md5=right))
    zipwriter.write_zip(archive, str(root), ["a.bin"], level, guards=[racy])
    # a member deleted since its scan, named as given
    os.remove(root / "a.bin")
    with pytest.raises(FileNotFoundError) as error:
        zipwriter.write_zip(archive, str(root), ["a.bin"], level, guards=[racy])
    assert error.value.filename == "a.bin"
    with pytest.raises(FileNotFoundError) as error:
        zipwriter.write_zip(archive, str(root), ["a.bin"], level)
    assert error.value.filename == str(root / "a.bin")
    with pytest.raises(ValueError, match="'guards' has 2 entries"):
        zipwriter.write_zip(archive, str(root), ["b.bin"], level, guards=[None, None])


def test_write_zip_stored_member_changes_between_its_reads(tmp_path, monkeypatch):
    r"""With a guard whose stat does not see it, the CRC still does."""
    root = tmp_path / "root"
    root.mkdir()
    write(root / "a.bin", b"a" * 1000)
    guard = Guard("media", "a.bin", signature_of(root / "a.bin", racy=False))
    original = zipwriter._crc

    def crc_then_change(file, buffer):
        result = original(file, buffer)
        with open(root / "a.bin", "r+b") as fp:
            fp.write(b"b")
        return result

    monkeypatch.setattr(zipwriter, "_crc", crc_then_change)
    monkeypatch.setattr(
        integrity, "signature_of", lambda stat, racy=False: guard.signature
    )
    with pytest.raises(FileChangedError, match="'a.bin' changed while it was written"):
        zipwriter.write_zip(
            str(tmp_path / "a.zip"), str(root), ["a.bin"], None, guards=[guard]
        )


def test_copy_md5_checks_guard(tmp_path):
    src = write(tmp_path / "a.bin", b"abc")
    dst = str(tmp_path / "b.bin")
    guard = Guard("table", "db.t.parquet", signature_of(src))
    assert hashing.copy_md5(src, dst, guard=guard) == hashlib.md5(b"abc").hexdigest()
    racy = Guard("table", "db.t.parquet", signature_of(src, md5="0" * 32))
    with pytest.raises(FileChangedError, match="'db.t.parquet' .*content changed"):
        hashing.copy_md5(src, dst, guard=racy)
    append(src)
    with pytest.raises(FileChangedError, match=r"size 3 -> 67"):
        hashing.copy_md5(src, dst, guard=guard)
    os.remove(src)
    with pytest.raises(FileNotFoundError) as error:
        hashing.copy_md5(src, dst, guard=guard)
    assert error.value.filename == "db.t.parquet"
    with pytest.raises(FileNotFoundError) as error:
        hashing.copy_md5(src, dst)
    assert error.value.filename == src


def test_scan_media_file_changes_while_read(tmp_path, monkeypatch):
    path = write(tmp_path / "a.txt", b"x" * 5000)
    calls = []

    def progress(n):
        if not calls:
            append(path)
        calls.append(n)

    with pytest.raises(FileChangedError, match="^Media file 'a.txt' changed"):
        scan_module.scan_media_file(str(tmp_path), "a.txt", progress)


@pytest.mark.parametrize("racy", [False, True])
def test_scan_media_file_signature(racy, tmp_path, monkeypatch):
    monkeypatch.setattr(integrity, "RACY_NS", 10**20 if racy else -(10**20))
    write(tmp_path / "a.txt", b"abc")
    result = scan_module.scan_media_file(str(tmp_path), "a.txt", lambda n: None)
    assert result.signature == signature_of(tmp_path / "a.txt")
    assert result.signature.racy == racy
    assert result.signature.md5 == (result.checksum if racy else None)


@pytest.mark.parametrize("racy", [False, True])
def test_scan_path(racy, tmp_path, monkeypatch):
    monkeypatch.setattr(integrity, "RACY_NS", 10**20 if racy else -(10**20))
    root = str(tmp_path)
    write(audeer.mkdir(root, "docs", "sub") + "/b.txt", b"b")
    write(tmp_path / "docs" / "a.txt", b"a")
    write(tmp_path / "db.t.csv", b"csv")
    table = audformat.Table(audformat.filewise_index(["f.wav"]))
    table.save(os.path.join(root, "db.u"), storage_format="parquet")
    read = []

    def progress(n):
        read.append(n)

    folder = scan_module.scan_path(root, "docs/", "attachment", progress)
    assert folder.checksum == audeer.md5(os.path.join(root, "docs"))
    assert list(folder.signatures) == ["docs/a.txt", "docs/sub/b.txt"]
    md5s = [s.md5 for s in folder.signatures.values()]
    assert md5s == (
        [hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()]
        if racy
        else [None, None]
    )
    table = scan_module.scan_path(root, "db.t.csv", "table", progress)
    assert table.checksum == hashlib.md5(b"csv").hexdigest()
    assert table.signatures == {"db.t.csv": signature_of(tmp_path / "db.t.csv")}
    read.clear()
    parquet = scan_module.scan_path(root, "db.u.parquet", "table", progress)
    assert parquet.checksum == hashing.parquet_hash(os.path.join(root, "db.u.parquet"))
    assert parquet.checksum is not None
    signature = parquet.signatures["db.u.parquet"]
    size = os.path.getsize(os.path.join(root, "db.u.parquet"))
    if racy:
        assert signature.md5 == hashing.md5(os.path.join(root, "db.u.parquet"))
        assert sum(read) == size
    else:
        assert signature.md5 is None
        assert read == []  # the whole file is read only if racy


def test_scan_path_parquet_without_hash(tmp_path):
    import pyarrow
    import pyarrow.parquet

    path = str(tmp_path / "db.t.parquet")
    pyarrow.parquet.write_table(pyarrow.table({"a": [1, 2]}), path)
    result = scan_module.scan_path(
        str(tmp_path), "db.t.parquet", "table", lambda n: None
    )
    assert hashing.parquet_hash(path) is None
    assert result.checksum == hashing.md5(path) == recorded(path)
    assert result.signatures["db.t.parquet"] == signature_of(path)
