"""Fixtures: databases, repositories on both backends, and comparisons."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import zipfile

import audb
import audeer
import audformat
import numpy as np
import pandas as pd
import pytest
import soundfile

from audb_publish.testing import SeaweedFS

NAME = "equiv"
BACKENDS = ["file-system", "s3"]


# ---------------------------------------------------------------- audio


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


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("template"))
    build_database(root)
    return root


# --------------------------------------------------------- repositories


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    r"""A SeaweedFS S3 server for the whole session."""
    with SeaweedFS(str(tmp_path_factory.mktemp("seaweedfs"))) as server:
        yield server


class Repositories:
    r"""Create empty repositories on a backend."""

    def __init__(self, request, tmp_path_factory):
        self._request = request
        self._tmp = tmp_path_factory

    def new(self, backend: str) -> audb.Repository:
        name = f"r{uuid.uuid4().hex[:12]}"
        if backend == "file-system":
            host = str(self._tmp.mktemp("host"))
            audeer.mkdir(host, name)
            return audb.Repository(name, host, "file-system")
        server = self._request.getfixturevalue("seaweedfs")
        return server.repository(name)


@pytest.fixture(scope="session")
def repositories(request, tmp_path_factory) -> Repositories:
    return Repositories(request, tmp_path_factory)


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
