"""Unchanged tables are not read again (issue 12, item 4)."""

from __future__ import annotations

import os
import shutil

import audformat
import pandas as pd
import pytest

from audb_publish import integrity
from audb_publish import scan as scan_module
from audb_publish import table_cache
from audb_publish import validate as validate_module
from audb_publish.patching import _ORIGINAL as upstream_publish

from helpers import break_cache_file
from helpers import only_repository
from helpers import publish_cached
from helpers import settle
from helpers import write_audio

pytestmark = pytest.mark.usefixtures("fine_clock")  # racy for 50 ms only

FILES = [f"audio/{i}.wav" for i in range(4)]


def _db(root: str) -> None:
    r"""A CSV filewise table, a PARQUET segmented table and a misc table."""
    for seed, file in enumerate(FILES):
        write_audio(os.path.join(root, file), 0.2, 16000, 1, "PCM_16", seed)
    db = audformat.Database("tables")
    db.schemes["word"] = audformat.Scheme("str")
    db["files"] = audformat.Table(audformat.filewise_index(FILES))
    db["files"]["word"] = audformat.Column(scheme_id="word")
    db["files"]["word"].set(["a", "b", "c", "d"])
    index = audformat.segmented_index(FILES, [0, 0.1, 0, 0], [0.1, 0.2, 0.1, 0.1])
    db["segments"] = audformat.Table(index)
    db["speakers"] = audformat.MiscTable(pd.Index(["s1"], name="speaker"))
    db.save(root, storage_format="csv")
    db["segments"].save(os.path.join(root, "db.segments"), storage_format="parquet")
    os.remove(os.path.join(root, "db.segments.csv"))
    settle()


@pytest.fixture
def counted(monkeypatch):
    r"""Tables read by validation and table files checksummed by the scan."""
    reads, scans = [], []
    table_index = validate_module.table_index
    scan_path = scan_module.scan_path

    def counting_index(db_root, table_id, table):
        reads.append(table_id)
        return table_index(db_root, table_id, table)

    def counting_scan(root, path, kind, progress):
        scans.append(path)
        return scan_path(root, path, kind, progress)

    monkeypatch.setattr(validate_module, "table_index", counting_index)
    monkeypatch.setattr(scan_module, "scan_path", counting_scan)
    return reads, scans


@pytest.fixture
def published(repositories, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    _db(root)
    publish_cached(root, "1.0.0", repository, cache)
    settle()
    return root, repository, cache


def test_unchanged_tables_are_not_read(published, counted):
    root, repository, cache = published
    reads, scans = counted
    write_audio(os.path.join(root, FILES[0]), 0.3, 16000, 1, "PCM_16", 9)
    settle()
    deps, _ = publish_cached(root, "1.1.0", repository, cache)
    # validation always reads the misc table;
    # the checksums of all table files come from the checksum cache
    assert reads == ["speakers"]
    assert scans == []
    assert deps.duration(FILES[0]) == pytest.approx(0.3)


def test_cache_off_reads_every_table(published, counted):
    root, repository, cache = published
    reads, scans = counted
    publish_cached(root, "1.1.0", repository, cache, checksum_cache=False)
    assert sorted(reads) == ["files", "segments", "speakers"]
    assert len(scans) == 3


def _restore_times(path: str, change) -> None:
    stat = os.stat(path)
    change(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_table_changed_with_size_and_mtime_restored_is_read(
    published, counted, repositories, tmp_path
):
    root, repository, cache = published
    reads, scans = counted
    path = os.path.join(root, "db.files.csv")

    def swap(path):  # same size: two labels swapped
        with open(path) as fp:
            text = fp.read()
        with open(path, "w") as fp:
            fp.write(text.replace(",a", ",x").replace(",b", ",a").replace(",x", ",b"))

    _restore_times(path, swap)
    settle()
    deps, _ = publish_cached(root, "1.1.0", repository, cache)
    assert "files" in reads
    assert "db.files.csv" in scans
    assert deps.version("db.files.csv") == "1.1.0"


def test_changed_definition_is_read_and_refused_as_upstream(
    published, counted, repositories, tmp_path
):
    root, repository, cache = published
    reads, _ = counted
    db = audformat.Database.load(root, load_data=False)
    db.schemes["word"] = audformat.Scheme("int")  # the values are letters
    db.save(root, header_only=True)
    settle()
    with pytest.raises(ValueError) as ours:
        publish_cached(root, "1.1.0", repository, cache)
    assert "files" in reads
    with only_repository(repository, str(tmp_path / "upstream-cache")):
        with pytest.raises(ValueError) as theirs:
            upstream_publish(root, "1.1.0", repository, verbose=False)
    assert str(ours.value) == str(theirs.value)


def test_scheme_with_labels_from_a_misc_table_is_always_read(tmp_path):
    db = audformat.Database("labels")
    db["speakers"] = audformat.MiscTable(pd.Index(["s1"], name="speaker"))
    db.schemes["speaker"] = audformat.Scheme("str", labels="speakers")
    db["files"] = audformat.Table(audformat.filewise_index(["a.wav"]))
    db["files"]["speaker"] = audformat.Column(scheme_id="speaker")
    assert table_cache.definition(db, "files") is None
    assert table_cache.definition(db, "speakers") is None
    db.schemes["speaker"] = audformat.Scheme("str", labels=["s1"])
    assert len(table_cache.definition(db, "files")) == 64


def test_duplicates_are_never_cached(repositories, tmp_path, counted):
    reads, _ = counted
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    _db(root)
    path = os.path.join(root, "db.files.csv")
    with open(path) as fp:
        lines = fp.read().splitlines()
    with open(path, "w") as fp:
        fp.write("\n".join(lines + [lines[1]]) + "\n")
    settle()
    for _ in range(2):
        with pytest.raises(ValueError, match="duplicates"):
            publish_cached(root, "1.0.0", repository, cache)
    assert reads.count("files") == 2


def test_racy_table_is_not_cached(repositories, tmp_path, counted, monkeypatch):
    reads, _ = counted
    monkeypatch.setattr(integrity, "RACY_NS", 3_600 * 10**9)  # all files are racy
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    _db(root)
    publish_cached(root, "1.0.0", repository, cache)
    monkeypatch.setattr(integrity, "RACY_NS", 50_000_000)
    settle()
    publish_cached(root, "1.1.0", repository, cache)
    assert (
        sorted(reads) == ["files", "files", "segments", "segments"] + ["speakers"] * 2
    )


@pytest.mark.parametrize("how", ["truncated", "foreign", "other root"])
def test_broken_cache_file_is_ignored(published, counted, how, tmp_path):
    root, repository, cache = published
    reads, _ = counted
    folder = table_cache.TableCache.load(root, cache).folder
    path = os.path.join(folder, "files.parquet")
    if how == "truncated":
        break_cache_file(path, "truncated")
    elif how == "foreign":
        break_cache_file(path, "garbage")
    else:
        other = str(tmp_path / "other")
        shutil.copytree(root, other)
        moved = table_cache.TableCache.load(other, cache).folder
        shutil.copytree(folder, moved)
        root = other
    settle()
    publish_cached(root, "1.1.0", repository, cache)
    assert "files" in reads


def test_dry_run_never_writes_the_table_cache(repositories, tmp_path):
    import audb_publish

    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    _db(root)
    with only_repository(repository, cache):
        audb_publish.dry_run(root, "1.0.0", repository, cache_root=cache)
    assert not os.path.exists(table_cache.TableCache.load(root, cache).folder)
