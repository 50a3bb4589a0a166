"""The checksum cache decides only what is read, never what is published."""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading

import audb
import audformat
import pandas as pd
import pyarrow.parquet as pq
import pytest

import audb_publish
from audb_publish import checksum_cache
from audb_publish import hashing
from audb_publish import integrity
from audb_publish import scan as scan_module
from audb_publish.checksum_cache import ChecksumCache
from audb_publish.cli import capture_report
from audb_publish.patching import _ORIGINAL as upstream_publish
from audb_publish.plan import Plan

from helpers import ARCHIVES
from helpers import DOCS
from helpers import FILES
from helpers import LICENSE
from helpers import assert_same_repository
from helpers import break_cache_file
from helpers import cached_db
from helpers import only_repository
from helpers import publish_cached
from helpers import save_like_on_disk
from helpers import settle
from helpers import write_audio
from helpers import write_text

pytestmark = pytest.mark.usefixtures("fine_clock")  # racy for 50 ms only


@pytest.fixture
def published(repositories, tmp_path):
    r"""1.0.0 published from ``root``; the cache knows every media file."""
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    cached_db(root)
    _, report = publish_cached(root, "1.0.0", repository, cache)
    assert report.cached_media == 0
    settle()
    return root, repository, cache


def _update(root, repository, cache, version="1.1.0", **kwargs):
    settle()
    return publish_cached(root, version, repository, cache, **kwargs)


def test_unchanged_files_are_not_read(published):
    root, repository, cache = published
    deps, report = _update(*published)
    assert report.cached_media == len(FILES)
    assert report.cached_tables == 1
    assert report.cached_attachments == 2
    assert report.archives_put == 0
    # no file is read but the header and the table, for validation
    table_bytes = os.path.getsize(os.path.join(root, "db.files.parquet"))
    assert report.bytes_read <= table_bytes
    _, uncached = _update(*published, version="1.2.0", checksum_cache=False)
    assert uncached.cached_media == 0
    assert uncached.bytes_read > report.bytes_read


def _same_deps_as_without_cache(published, tmp_path, repositories):
    r"""Update with the cache, and from a copy without it: same dependencies."""
    root, repository, cache = published
    deps, report = _update(*published)
    other = repositories.new("file-system")
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    os.remove(os.path.join(copy, "db.parquet"))
    with only_repository(other, str(tmp_path / "cache-upstream")):
        expected = upstream_publish(copy, "1.1.0", other, verbose=False)
    pd.testing.assert_frame_equal(
        deps().drop(columns="version").sort_index(),
        expected().drop(columns="version").sort_index(),
        check_index_type=False,
    )
    return deps, report


def test_touched_file_is_read_again(published, tmp_path, repositories):
    root, _, _ = published
    os.utime(os.path.join(root, FILES[0]))
    deps, report = _same_deps_as_without_cache(published, tmp_path, repositories)
    assert report.cached_media == len(FILES) - 1
    assert report.archives_put == 0  # same content: nothing to upload


def test_content_with_size_and_mtime_restored(published, tmp_path, repositories):
    root, _, _ = published
    path = os.path.join(root, FILES[1])
    stat = os.stat(path)
    data = bytearray(open(path, "rb").read())
    data[-100:] = bytes(100)
    with open(path, "r+b") as fp:
        fp.write(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_mtime_ns == stat.st_mtime_ns
    assert os.stat(path).st_size == stat.st_size
    deps, report = _same_deps_as_without_cache(published, tmp_path, repositories)
    assert report.cached_media == len(FILES) - 1
    assert deps.version(FILES[1]) == "1.1.0"


def test_file_replaced_like_cp_p(published, tmp_path, repositories):
    root, _, _ = published
    target = os.path.join(root, FILES[2])
    replacement = str(tmp_path / "replacement.wav")
    write_audio(replacement, 0.2, 16000, 1, "PCM_16", 77)
    stat = os.stat(target)
    assert os.path.getsize(replacement) == stat.st_size
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, target)  # a new inode, same size and mtime
    deps, report = _same_deps_as_without_cache(published, tmp_path, repositories)
    assert report.cached_media == len(FILES) - 1
    assert deps.version(FILES[2]) == "1.1.0"


@pytest.mark.parametrize(
    "change", ["none", "touched", "content restored", "added", "removed", "license"]
)
def test_attachments(change, published, tmp_path, repositories):
    root, _, _ = published
    a = os.path.join(root, DOCS[0])
    if change == "touched":
        os.utime(a)
    elif change == "content restored":
        stat = os.stat(a)
        write_text(a, open(a).read().upper())
        os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    elif change == "added":
        write_text(os.path.join(root, "docs/sub/c.txt"), "new")
    elif change == "removed":
        os.remove(a)
    elif change == "license":
        write_text(os.path.join(root, LICENSE), "other license\n")
    deps, report = _same_deps_as_without_cache(published, tmp_path, repositories)
    assert report.cached_media == len(FILES)
    assert report.cached_attachments == (2 if change == "none" else 1)
    altered = change not in ("none", "touched")
    assert report.archives_put == (1 if altered else 0)
    # what was read is cached for the next publish
    settle()
    _, report = _update(*published, version="1.2.0")
    assert report.cached_attachments == 2


def test_racy_files_are_not_trusted(tmp_path):
    root = str(tmp_path / "db")
    cached_db(root)
    cache = ChecksumCache.load(root, str(tmp_path / "cache"))
    results = scan_module.scan_media(root, FILES[:2], lambda n: None)
    assert not any(result.signature.racy for result in results)
    # a file changed within the timestamp resolution of its scan
    racy = dataclasses.replace(results[1].signature, racy=True)
    cache.record([results[0], dataclasses.replace(results[1], signature=racy)])
    cache.save()
    loaded = ChecksumCache.load(root, str(tmp_path / "cache"))
    assert len(loaded) == 1
    # an entry written within the resolution of its file's change is dropped
    table = pq.read_table(cache.path)
    meta = dict(table.schema.metadata)
    meta[b"written_ns"] = str(results[0].signature.mtime_ns + 1).encode()
    pq.write_table(table.replace_schema_metadata(meta), cache.path)
    assert len(ChecksumCache.load(root, str(tmp_path / "cache"))) == 0


@pytest.mark.parametrize(
    "how", ["deleted", "truncated", "garbage", "other format", "other db_root"]
)
def test_broken_cache_is_ignored_and_rebuilt(published, how, caplog):
    root, repository, cache = published
    path = checksum_cache.cache_file(root, cache)
    break_cache_file(path, how)
    with caplog.at_level("DEBUG", logger="audb_publish"):
        deps, report = _update(*published)
    assert report.cached_media == 0
    assert len(deps.media) == len(FILES)
    if how != "deleted":
        assert "checksum cache" in caplog.text and "ignored" in caplog.text
    # rebuilt: the next publish uses it
    _, report = _update(*published, version="1.2.0")
    assert report.cached_media == len(FILES)


def test_moved_db_root(published, tmp_path):
    root, repository, cache = published
    moved = str(tmp_path / "moved")
    shutil.move(root, moved)
    deps, report = _update(moved, repository, cache)
    assert report.cached_media == 0
    assert sorted(deps.media) == sorted(FILES)


def test_cache_is_never_in_db_root(published):
    root, _, cache = published
    path = checksum_cache.cache_file(root, cache)
    assert os.path.exists(path)
    assert not os.path.abspath(path).startswith(os.path.abspath(root))


def test_racing_publishes(published, repositories, tmp_path):
    root, _, cache = published
    errors = []

    def publish(repository):
        try:
            audb_publish.publish(
                root,
                "1.0.0",
                repository,
                previous_version=None,
                cache_root=cache,
                verbose=False,
            )
        except Exception as error:  # pragma: no cover - shown by the assert
            errors.append(error)

    os.remove(os.path.join(root, "db.parquet"))
    threads = [
        threading.Thread(target=publish, args=(repositories.new("file-system"),))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # and the table and the attachments
    assert len(ChecksumCache.load(root, cache)) == len(FILES) + 3
    folder = os.path.dirname(checksum_cache.cache_file(root, cache))
    assert [f for f in os.listdir(folder) if f.endswith(".partial")] == []


def test_dry_run_reads_but_never_writes_the_cache(published):
    root, repository, cache = published
    path = checksum_cache.cache_file(root, cache)
    before = os.stat(path).st_mtime_ns, open(path, "rb").read()
    with only_repository(repository, cache):
        run = audb_publish.dry_run(root, "1.1.0", repository, cache_root=cache)
    assert run.puts == []
    assert (os.stat(path).st_mtime_ns, open(path, "rb").read()) == before


def test_load_to_without_media(published, tmp_path):
    r"""A database without media on disk scans nothing, with or without cache."""
    root, repository, cache = published
    loaded = str(tmp_path / "loaded")
    with only_repository(repository, cache):
        audb.load_to(
            loaded, "cached", version="1.0.0", only_metadata=True, cache_root=cache
        )
    deps, report = _update(loaded, repository, cache)
    assert report.scanned_media == report.cached_media == 0
    assert sorted(deps.media) == sorted(FILES)


def _change_in_place(root: str) -> None:
    r"""Alter two media files, add one, remove one, and change the tables.

    The archive of the removed file keeps two unchanged members,
    the archive of an altered one keeps one.

    """
    write_audio(os.path.join(root, "wav/c.wav"), 0.6, 22050, 2, "PCM_24", 99)
    write_audio(os.path.join(root, "bundle2/c1.wav"), 0.2, 16000, 1, "PCM_16", 98)
    write_audio(os.path.join(root, "wav/new.wav"), 0.3, 16000, 1, "PCM_16", 97)
    os.remove(os.path.join(root, "bundle/b2.wav"))
    db = audformat.Database.load(root, load_data=True)
    db["files"].extend_index(
        audformat.filewise_index(["wav/new.wav"]), fill_values=0.5, inplace=True
    )
    for table_id in ["files", "segments"]:
        db[table_id].drop_files(["bundle/b2.wav"], inplace=True)
    save_like_on_disk(db, root)
    settle()


def _update_in_place_as_upstream(
    template, change, backend, repositories, tmp_path, num_workers=1, **kwargs
):
    r"""Publish 1.0.0, ``change(root)``, then 1.1.0 from the same root, as upstream.

    Args:
        template: database root to copy
        change: takes the root and changes it between the two publishes
        backend: backend of the repositories
        repositories: the fixture
        tmp_path: the fixture
        num_workers: of every publish
        **kwargs: arguments of the publish of 1.0.0

    Returns:
        report of our 1.1.0, once its repository equals upstream's

    """
    repos = {}
    for side, publish in [
        ("upstream", upstream_publish),
        ("ours", audb_publish.publish),
    ]:
        root = str(tmp_path / side)
        shutil.copytree(template, root)
        settle()
        repository = repositories.new(backend)
        cache = str(tmp_path / f"cache-{side}")
        with only_repository(repository, cache), capture_report() as reports:
            publish(
                root,
                "1.0.0",
                repository,
                verbose=False,
                num_workers=num_workers,
                **kwargs,
            )
            settle()
            change(root)
            publish(root, "1.1.0", repository, verbose=False, num_workers=num_workers)
        repos[side] = repository
    assert_same_repository(repos["upstream"], repos["ours"], tmp_path)
    return reports[-1]


@pytest.mark.parametrize("num_workers", [1, 8])
@pytest.mark.parametrize("backend", ["file-system", "s3"])
def test_update_in_place_equals_upstream(
    backend, num_workers, repositories, template, tmp_path
):
    r"""1.0.0, then 1.1.0 from the same root: cache hits, upstream's result."""
    report = _update_in_place_as_upstream(
        template,
        _change_in_place,
        backend,
        repositories,
        tmp_path,
        num_workers=num_workers,
        archives=ARCHIVES,
    )
    assert report.cached_media == report.scanned_media - 3


def test_parquet_table_listed_as_media(repositories, tmp_path):
    r"""A table file a table lists as media is decided with its table."""
    template = str(tmp_path / "template")
    cached_db(template)
    db = audformat.Database.load(template)
    db["more"] = audformat.Table(audformat.filewise_index(["db.files.parquet"]))
    db.save(template, storage_format="parquet")

    def change(root):
        write_audio(os.path.join(root, FILES[0]), 0.3, 16000, 1, "PCM_16", 55)
        settle()

    report = _update_in_place_as_upstream(
        template, change, "file-system", repositories, tmp_path
    )
    # the table file, known as media, too
    assert report.cached_media == len(FILES)


def test_known_member_changes_before_its_pack(repositories, tmp_path, monkeypatch):
    r"""A file the cache knows changes after the lookup: the pack raises."""
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    cache = str(tmp_path / "cache")
    cached_db(root)
    pair = {FILES[0]: "pair", FILES[1]: "pair"}
    publish_cached(root, "1.0.0", repository, cache, archives=pair)
    settle()
    write_audio(os.path.join(root, FILES[0]), 0.3, 16000, 1, "PCM_16", 55)
    settle()
    # FILES[1] is known unchanged, but its archive is put with FILES[0]
    add_known = Plan.add_known
    target = os.path.join(root, FILES[1])

    def add_known_then_change(plan, known):
        ready = add_known(plan, known)
        assert FILES[1] in known.files
        data = bytearray(open(target, "rb").read())
        data[-100:] = bytes(100)
        with open(target, "r+b") as fp:
            fp.write(data)
        return ready

    monkeypatch.setattr(Plan, "add_known", add_known_then_change)
    with pytest.raises(integrity.FileChangedError, match=FILES[1]):
        _update(root, repository, cache)
    header = os.path.join(
        repository.host, repository.name, "cached", "1.1.0", "db.yaml"
    )
    assert not os.path.exists(header)
    monkeypatch.setattr(Plan, "add_known", add_known)
    deps, _ = _update(root, repository, cache)
    assert os.path.exists(header)
    assert deps.checksum(FILES[1]) == hashing.md5(target)
    assert deps.version(FILES[1]) == "1.1.0"


def test_writing_the_cache_never_fails_a_publish(tmp_path, monkeypatch, caplog):
    root = str(tmp_path / "db")
    cached_db(root)
    results = scan_module.scan_media(root, FILES[:1], lambda n: None)
    # a cache that is neither read nor written
    cache = ChecksumCache(root, None)
    cache.record(results)
    cache.save()
    # a cache root where no folder can be made
    blocked = tmp_path / "file"
    blocked.write_text("")
    cache = ChecksumCache.load(root, str(blocked))
    cache.record(results)
    with caplog.at_level("DEBUG", logger="audb_publish"):
        cache.save()
    assert "not written" in caplog.text
    # writing fails half-way: no partial file is left
    cache = ChecksumCache.load(root, str(tmp_path / "cache"))
    cache.record(results)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checksum_cache.pq, "write_table", broken)
    cache.save()
    folder = os.path.dirname(cache.path)
    assert os.listdir(folder) == []


def _caches(cache: str) -> dict[str, list[str]]:
    r"""Database root of each checksum cache file and table cache folder."""
    base = os.path.join(cache, "audb-publish")
    roots = {}
    for folder in ["checksums", "tables"]:
        for name in sorted(os.listdir(os.path.join(base, folder))):
            path = os.path.join(base, folder, name)
            files = [path]
            if os.path.isdir(path):
                files = [os.path.join(path, f) for f in os.listdir(path)]
            for file in files:
                root = pq.read_schema(file).metadata[b"db_root"].decode()
                roots.setdefault(folder, []).append(root)
    return {folder: sorted(set(r)) for folder, r in roots.items()}


def test_caches_of_deleted_roots_are_dropped(repositories, tmp_path):
    cache = str(tmp_path / "cache")
    roots = [str(tmp_path / name) for name in ["a", "b"]]
    repos = [repositories.new("file-system") for _ in roots]
    for root, repository in zip(roots, repos, strict=True):
        cached_db(root)
        publish_cached(root, "1.0.0", repository, cache)
    assert _caches(cache) == {"checksums": roots, "tables": roots}
    shutil.rmtree(roots[0])
    with open(os.path.join(cache, "audb-publish", "checksums", "junk"), "w") as fp:
        fp.write("not a cache")
    _update(roots[1], repos[1], cache, version="2.0.0")
    assert _caches(cache) == {"checksums": [roots[1]], "tables": [roots[1]]}


def test_caches_stay_below_the_size_bound(repositories, tmp_path, monkeypatch):
    cache = str(tmp_path / "cache")
    base = os.path.join(cache, "audb-publish")
    roots = [str(tmp_path / name) for name in ["a", "b", "c"]]
    repos = [repositories.new("file-system") for _ in roots]
    sizes = []
    for root, repository in zip(roots, repos, strict=True):
        cached_db(root)
        publish_cached(root, "1.0.0", repository, cache)
        settle()
        sizes.append(sum(checksum_cache._describe(p)[2] for p in _paths(base, root)))
    assert _caches(cache)["checksums"] == roots
    # room for the two roots published last (and a little growth), not three
    room = sizes[1] + sizes[2] + min(sizes) // 2
    monkeypatch.setattr(checksum_cache, "MAX_BYTES", room)
    _update(roots[2], repos[2], cache, version="2.0.0")
    assert _caches(cache)["checksums"] == roots[1:]
    # the cache just written stays, even if alone it is too large
    monkeypatch.setattr(checksum_cache, "MAX_BYTES", 1)
    _update(roots[0], repos[0], cache, version="2.0.0")
    assert _caches(cache) == {"checksums": roots[:1], "tables": roots[:1]}
    assert checksum_cache.MAX_BYTES == 1


def _paths(base: str, root: str) -> list[str]:
    r"""Cache file and table folder of a database root."""
    return [
        path
        for path in checksum_cache._cache_paths(base)
        if checksum_cache._describe(path)[0] == root
    ]
