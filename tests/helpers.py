"""Helpers shared by the test modules: databases, publishing, comparisons.

Fixtures are in ``conftest.py``; no test module imports from another.

"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
import zipfile

import audb
import audeer
import audformat
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import soundfile

import audb_publish
from audb_publish import remote as remote_module
from audb_publish.cli import capture_report

NAME = "equiv"
SMALL = "bad"
r"""Name of the database of :func:`small_db`."""


BACKENDS = ["file-system", "s3"]


def write_audio(
    path: str, seconds: float, rate: int, channels: int, subtype: str, seed: int
):
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    signal = 0.3 * np.sin(2 * np.pi * (150 + 50 * seed % 7) * t)
    signal = signal + 0.01 * rng.standard_normal(n)
    data = np.stack(
        [signal * (c + 1) / (channels + 1) for c in range(channels)], axis=1
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, data, rate, subtype=subtype)


MEDIA = {
    # file: (seconds, rate, channels, subtype)
    "wav/a.wav": (0.5, 16000, 1, "PCM_16"),
    "wav/b.wav": (0.3, 8000, 1, "PCM_U8"),
    "wav/c.wav": (0.4, 22050, 2, "PCM_24"),
    "wav/d.wav": (0.2, 44100, 2, "FLOAT"),
    "wav/e.wav": (0.25, 48000, 4, "PCM_32"),
    "wav/f.wav": (0.1, 16000, 1, "PCM_16"),
    "wav/g.wav": (0.1, 16000, 1, "PCM_16"),
    "with space/file name 1.wav": (0.2, 16000, 1, "PCM_16"),
    "flac/a.flac": (0.5, 16000, 1, "PCM_16"),
    "flac/b.flac": (0.3, 44100, 2, "PCM_24"),
    "ogg/a.ogg": (0.5, 16000, 1, "VORBIS"),
    "bundle/b1.wav": (0.1, 16000, 1, "PCM_16"),
    "bundle/b2.wav": (0.1, 16000, 1, "PCM_16"),
    "bundle/b3.wav": (0.1, 16000, 1, "PCM_16"),
    "bundle2/c1.wav": (0.1, 16000, 1, "PCM_16"),
    "bundle2/c2.wav": (0.1, 16000, 1, "PCM_16"),
}


TEXT_MEDIA = "other/notes.txt"


ARCHIVES = {
    "bundle/b1.wav": "bundle",
    "bundle/b2.wav": "bundle",
    "bundle/b3.wav": "bundle",
    "bundle2/c1.wav": "bundle2",
    "bundle2/c2.wav": "bundle2",
}


def build_database(root: str) -> None:
    r"""Version 1.0.0: every kind of media, table format and attachment."""
    for seed, (file, (seconds, rate, channels, subtype)) in enumerate(MEDIA.items()):
        write_audio(os.path.join(root, file), seconds, rate, channels, subtype, seed)
    audeer.mkdir(root, "other")
    with open(os.path.join(root, TEXT_MEDIA), "w") as fp:
        fp.write("not audio\n" * 50)
    files = sorted(list(MEDIA) + [TEXT_MEDIA])

    db = audformat.Database(NAME, source="tests", usage="unrestricted")
    db.schemes["score"] = audformat.Scheme("float")
    db.schemes["label"] = audformat.Scheme("str", labels=["x", "y", "z"])
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db["files"]["score"] = audformat.Column(scheme_id="score")
    db["files"]["score"].set(np.linspace(0, 1, len(files)))
    segs = files[:6]
    db["segments"] = audformat.Table(
        audformat.segmented_index(segs, [0.0] * len(segs), [0.1] * len(segs))
    )
    db["segments"]["label"] = audformat.Column(scheme_id="label")
    db["segments"]["label"].set(["x", "y", "z", "x", "y", "z"])
    db["pickled"] = audformat.Table(audformat.filewise_index(files[6:10]))
    db["pickled"]["score"] = audformat.Column(scheme_id="score")
    db["pickled"]["score"].set([0.1, 0.2, 0.3, 0.4])
    db["misc"] = audformat.MiscTable(pd.Index(["p1", "p2", "p3"], name="speaker"))
    db["misc"]["score"] = audformat.Column(scheme_id="score")
    db["misc"]["score"].set([1.0, 2.0, 3.0])
    db["miscpq"] = audformat.MiscTable(pd.Index(["q1", "q2"], name="item"))
    db["miscpq"]["label"] = audformat.Column(scheme_id="label")
    db["miscpq"]["label"].set(["x", "z"])

    audeer.mkdir(root, "docs", "sub", "deeper")
    with open(os.path.join(root, "docs", "readme.md"), "w") as fp:
        fp.write("# docs\n")
    with open(os.path.join(root, "docs", "sub", "a.txt"), "w") as fp:
        fp.write("a" * 1000)
    with open(os.path.join(root, "docs", "sub", "deeper", "b.bin"), "wb") as fp:
        fp.write(bytes(range(256)) * 40)
    with open(os.path.join(root, "LICENSE.txt"), "w") as fp:
        fp.write("license text\n")
    db.attachments["docs"] = audformat.Attachment("docs", description="folder")
    db.attachments["license"] = audformat.Attachment("LICENSE.txt")

    db.save(root, storage_format="csv")
    convert_table(db, root, "segments", "parquet")
    convert_table(db, root, "miscpq", "parquet")
    convert_table(db, root, "pickled", "pkl")


def convert_table(db: audformat.Database, root: str, table_id: str, fmt: str) -> None:
    r"""Store one table only in ``fmt``."""
    for ext in ["csv", "parquet", "pkl"]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(root, f"db.{table_id}.{ext}"))
    db[table_id].save(os.path.join(root, f"db.{table_id}"), storage_format=fmt)


def update_database(root: str, template: str) -> dict[str, str]:
    r"""Turn a ``load_to(only_metadata=True)`` of 1.0.0 into 1.1.0.

    New, altered and removed media
    (removed ones alone in their archive and sharing one with others),
    a new media file added to an existing bundle,
    an altered and a removed attachment,
    and an altered table.

    Returns:
        ``archives`` argument for the update

    """
    db = audformat.Database.load(root, load_data=True)
    # an unchanged media file that is present on disk
    audeer.mkdir(root, "wav")
    shutil.copy(os.path.join(template, "wav/a.wav"), os.path.join(root, "wav/a.wav"))
    # altered media
    write_audio(os.path.join(root, "wav/c.wav"), 0.6, 22050, 2, "PCM_24", 99)
    write_audio(os.path.join(root, "bundle/b2.wav"), 0.2, 16000, 1, "PCM_16", 98)
    # new media, one of them in an existing bundle whose files are not on disk
    write_audio(os.path.join(root, "wav/new.wav"), 0.3, 16000, 1, "PCM_16", 97)
    write_audio(os.path.join(root, "bundle2/c3.wav"), 0.3, 16000, 1, "PCM_16", 96)
    new = ["wav/new.wav", "bundle2/c3.wav"]
    # removed media: alone in an archive, and sharing one with untouched files
    removed = ["wav/g.wav", "bundle2/c1.wav", "bundle/b3.wav"]
    files = db["files"].df
    files = files[~files.index.isin(removed)]
    extra = pd.DataFrame(
        {"score": [0.5, 0.6]},
        index=audformat.filewise_index(new),
    )
    table = audformat.Table(audformat.filewise_index(list(files.index) + new))
    db["files"] = table
    db["files"]["score"] = audformat.Column(scheme_id="score")
    db["files"]["score"].set(list(files["score"]) + list(extra["score"]))
    db["files"]["score"].set([0.99], index=audformat.filewise_index(["wav/a.wav"]))
    for table_id in ["segments", "pickled"]:
        df = db[table_id].df
        db[table_id]._df = df[~df.index.get_level_values("file").isin(removed)]
    # altered attachment, removed attachment
    shutil.copytree(os.path.join(template, "docs"), os.path.join(root, "docs"))
    with open(os.path.join(root, "docs", "readme.md"), "a") as fp:
        fp.write("more\n")
    del db.attachments["license"]
    db.save(root, header_only=True)
    save_like_on_disk(db, root)
    return {"bundle2/c3.wav": "bundle2"}


def save_like_on_disk(db: audformat.Database, root: str) -> None:
    r"""Save each table in the format it already has on disk."""
    for table_id in list(db):
        for ext in ["parquet", "csv", "pkl"]:
            if os.path.exists(os.path.join(root, f"db.{table_id}.{ext}")):
                convert_table(db, root, table_id, ext)
                break


@contextlib.contextmanager
def only_repository(repository: audb.Repository, cache_root: str):
    r"""Make ``repository`` the only one audb knows, with its own cache."""
    before = audb.config.REPOSITORIES, audb.config.CACHE_ROOT
    audb.config.REPOSITORIES = [repository]
    audb.config.CACHE_ROOT = cache_root
    try:
        yield
    finally:
        audb.config.REPOSITORIES, audb.config.CACHE_ROOT = before


def repository_files(repository: audb.Repository) -> list[str]:
    backend = repository.create_backend_interface().backend
    with backend:
        return sorted(backend.ls("/"))


def download(repository: audb.Repository, path: str, dst_root: str) -> str:
    backend = repository.create_backend_interface().backend
    dst = os.path.join(dst_root, uuid.uuid4().hex + "-" + os.path.basename(path))
    with backend:
        backend.get_file(path, dst)
    return dst


def zip_members(path: str) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return sorted((name, archive.read(name)) for name in archive.namelist())


def assert_same_repository(
    expected: audb.Repository,
    actual: audb.Repository,
    tmp,
    *,
    max_ratio: float | None = 1.005,
):
    r"""Assert two repositories hold the same database versions.

    Archives must extract to the same members and bytes,
    and be at most ``max_ratio`` times as large (plus some header bytes).

    """
    files = repository_files(expected)
    assert files == repository_files(actual)
    assert any(f.endswith("db.yaml") for f in files)
    tmp = str(tmp)
    for path in files:
        a = download(expected, path, tmp)
        b = download(actual, path, tmp)
        if path.endswith(".zip"):
            assert zip_members(a) == zip_members(b), path
            if max_ratio is not None:
                limit = os.path.getsize(a) * max_ratio + 200
                assert os.path.getsize(b) <= limit, path
        elif path.endswith("/db.parquet"):
            deps_a, deps_b = audb.Dependencies(), audb.Dependencies()
            deps_a.load(a)
            deps_b.load(b)
            pd.testing.assert_frame_equal(deps_a(), deps_b())
        elif path.endswith(".parquet"):
            pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b))
        else:
            with open(a, "rb") as fa, open(b, "rb") as fb:
                assert fa.read() == fb.read(), path


def assert_same_load(expected, actual, version: str, tmp) -> None:
    r"""Stock ``audb.load`` returns equal tables and media from both."""
    loaded = []
    for repository in (expected, actual):
        cache = audeer.mkdir(str(tmp), "load-" + uuid.uuid4().hex)
        with only_repository(repository, cache):
            db = audb.load(
                NAME, version=version, full_path=False, verbose=False, cache_root=cache
            )
            media = {}
            for file in db.files:
                with open(os.path.join(db.root, file), "rb") as fp:
                    media[file] = fp.read()
            tables = {t: db[t].get() for t in db.tables}
            tables.update({t: db[t].get() for t in db.misc_tables})
            attachments = sorted(db.attachments)
            loaded.append((media, tables, attachments))
    (media_a, tables_a, att_a), (media_b, tables_b, att_b) = loaded
    assert media_a == media_b
    assert tables_a.keys() == tables_b.keys()
    for table_id in tables_a:
        pd.testing.assert_frame_equal(tables_a[table_id], tables_b[table_id])
    assert att_a == att_b


def small_db(root: str) -> audformat.Database:
    files = ["a.wav", "b.wav"]
    for seed, file in enumerate(files):
        write_audio(os.path.join(root, file), 0.1, 16000, 1, "PCM_16", seed)
    db = audformat.Database(SMALL)
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    return db


def with_column(root, dtype: str, csv: str, table_id: str = "files"):
    r"""Give a table a column of ``dtype`` and write its CSV file as ``csv``."""
    db = audformat.Database.load(root)
    db.schemes["value"] = audformat.Scheme(dtype)
    if table_id not in db:
        db[table_id] = audformat.Table(audformat.filewise_index(["a.wav", "b.wav"]))
    db[table_id]["value"] = audformat.Column(scheme_id="value")
    db.save(root)
    write_csv(root, table_id, csv)
    return db


def write_csv(root: str, table_id: str, csv: str) -> None:
    r"""Replace the files of a table by a CSV file with the text ``csv``."""
    for ext in ("parquet", "pkl"):
        path = os.path.join(root, f"db.{table_id}.{ext}")
        if os.path.exists(path):
            os.remove(path)
    with open(os.path.join(root, f"db.{table_id}.csv"), "w") as fp:
        fp.write(csv)


class Injected(Exception):
    r"""The fault the tests inject."""


def publish(root, repository, cache, version="1.0.0", **kwargs):
    r"""Publish the template's database with its archives, quietly."""
    with only_repository(repository, cache):
        return audb_publish.publish(
            root, version, repository, archives=ARCHIVES, verbose=False, **kwargs
        )


def count_puts(monkeypatch) -> list[str]:
    calls = []
    original = remote_module.Remote._put

    def put(self, path, version, write, kind, *args):
        calls.append(path)
        return original(self, path, version, write, kind, *args)

    monkeypatch.setattr(remote_module.Remote, "_put", put)
    return calls


def fail_put(monkeypatch, k: int) -> None:
    original = remote_module.Remote._put
    calls = []
    lock = threading.Lock()

    def put(self, path, version, write, kind, *args):
        with lock:
            calls.append(path)
            n = len(calls)
        if n == k:
            raise Injected(f"put {k} of {path}")
        return original(self, path, version, write, kind, *args)

    monkeypatch.setattr(remote_module.Remote, "_put", put)


def headers(repository) -> list[str]:
    return [f for f in repository_files(repository) if f.endswith("db.yaml")]


def publish_chain(publish, repository, template, tmp, **kwargs):
    r"""Publish 1.0.0 from scratch and 1.1.0 as an update on top of it."""
    tmp = str(tmp)
    cache = audeer.mkdir(tmp, "cache")
    with only_repository(repository, cache):
        v1 = os.path.join(tmp, "v1")
        shutil.copytree(template, v1)
        deps1 = publish(
            v1, "1.0.0", repository, archives=ARCHIVES, verbose=False, **kwargs
        )
        v2 = os.path.join(tmp, "v2")
        audb.load_to(
            v2,
            NAME,
            version="1.0.0",
            only_metadata=True,
            cache_root=cache,
            verbose=False,
        )
        archives = update_database(v2, template)
        deps2 = publish(v2, "1.1.0", archives=archives, verbose=False, **kwargs)
    return deps1, deps2


def settle():
    time.sleep(0.1)


FILES = [f"audio/{i}.wav" for i in range(6)]


DOCS = ["docs/a.txt", "docs/sub/b.txt"]


LICENSE = "LICENSE.txt"


def cached_db(root: str) -> None:
    for seed, file in enumerate(FILES):
        write_audio(os.path.join(root, file), 0.2, 16000, 1, "PCM_16", seed)
    for file in [*DOCS, LICENSE]:
        write_text(os.path.join(root, file), f"content of {file}\n")
    db = audformat.Database("cached")
    db["files"] = audformat.Table(audformat.filewise_index(FILES))
    db.attachments["docs"] = audformat.Attachment("docs")
    db.attachments["license"] = audformat.Attachment(LICENSE)
    db.save(root)
    settle()


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fp:
        fp.write(text)


def publish_cached(root, version, repository, cache, **kwargs):
    with only_repository(repository, cache), capture_report() as reports:
        deps = audb_publish.publish(
            root, version, repository, verbose=False, cache_root=cache, **kwargs
        )
    return deps, reports[0]


def break_cache_file(path: str, how: str) -> None:
    r"""Break a cache file: deleted, truncated, garbage, other format or root."""
    if how == "deleted":
        os.remove(path)
    elif how == "truncated":
        with open(path, "r+b") as fp:
            fp.truncate(os.path.getsize(path) // 2)
    elif how == "garbage":
        with open(path, "wb") as fp:
            fp.write(b"not parquet")
    elif how == "other format":
        table = pq.read_table(path)
        meta = {**table.schema.metadata, b"format": b"0"}
        pq.write_table(table.replace_schema_metadata(meta), path)
    else:  # the cache of another database root
        table = pq.read_table(path)
        meta = {**table.schema.metadata, b"db_root": b"/somewhere/else"}
        pq.write_table(table.replace_schema_metadata(meta), path)
