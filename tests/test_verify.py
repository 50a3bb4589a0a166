"""Verify a published version in place (issue 14)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile

import audb
import pandas as pd
import pyarrow.parquet
import pytest

import audb_publish
from audb_publish import cli

from helpers import NAME
from helpers import publish
from helpers import repository_files

BACKENDS = ["file-system", "s3"]


@pytest.fixture
def published(repositories, template, tmp_path):
    r"""Factory of a repository with the template published as 1.0.0."""

    def make(backend: str) -> audb.Repository:
        repository = repositories.new(backend)
        root = str(tmp_path / f"db-{backend}")
        shutil.copytree(template, root)
        publish(root, repository, str(tmp_path / "cache"), num_workers=2)
        return repository

    return make


def media_archive(repository: audb.Repository) -> str:
    r"""Backend path of the media archive with the most members."""
    archives = [f for f in repository_files(repository) if "/media/" in f]
    backend = repository.create_backend_interface().backend
    with backend:
        counts = {}
        for path in archives:
            counts[path] = len(_members(_get(backend, path)))
    return max(archives, key=lambda path: (counts[path], path))


def _get(backend, path: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        backend.get_file(path, local)
        with open(local, "rb") as fp:
            return fp.read()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _put(backend, path: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, os.path.basename(path))
        with open(local, "wb") as fp:
            fp.write(data)
        backend.put_file(local, path)


def rewrite(repository: audb.Repository, path: str, change) -> None:
    r"""Replace a file of the repository by ``change(its bytes)``."""
    backend = repository.create_backend_interface().backend
    with backend:
        data = _get(backend, path)
        backend.remove_file(path)
        _put(backend, path, change(data))


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def check(repository, deep=False):
    return audb_publish.verify(NAME, "1.0.0", repository, deep=deep, num_workers=2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_intact(backend, published):
    repository = published(backend)
    for deep in [False, True]:
        result = check(repository, deep)
        assert result.intact, result.summary()
        assert result.deep == deep
        assert result.members > 0
        assert (result.bytes_read > 0) == deep


@pytest.mark.parametrize("backend", BACKENDS)
def test_deleted_archive(backend, published):
    repository = published(backend)
    path = media_archive(repository)
    backend_ = repository.create_backend_interface().backend
    with backend_:
        backend_.remove_file(path)
    result = check(repository)
    assert [(p.kind, p.path) for p in result.problems] == [("missing", path)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_archive(backend, published):
    repository = published(backend)
    path = media_archive(repository)
    rewrite(repository, path, lambda data: data[: len(data) // 2])
    (problem,) = check(repository).problems
    assert (problem.kind, problem.path) == ("unreadable", path)
    assert "BadZipFile" in problem.detail


@pytest.mark.parametrize("backend", BACKENDS)
def test_replaced_member_is_found_by_deep(backend, published):
    repository = published(backend)
    path = media_archive(repository)
    replaced = []

    def replace(data):
        members = _members(data)
        name = sorted(members)[0]
        members[name] = members[name][:-2] + b"\x00\x01"
        replaced.append(name)
        return zip_of(members)

    rewrite(repository, path, replace)
    assert check(repository).intact  # the same members
    (problem,) = check(repository, deep=True).problems
    assert (problem.kind, problem.path) == ("wrong checksum", path)
    assert problem.detail.startswith(f"{replaced[0]}: ")


def test_extra_member_of_this_version(published):
    repository = published("file-system")
    path = media_archive(repository)
    rewrite(repository, path, lambda data: zip_of({**_members(data), "x.wav": b""}))
    (problem,) = check(repository).problems
    assert (problem.kind, problem.path, problem.detail) == (
        "extra member",
        path,
        "x.wav",
    )


def test_table_names_a_missing_member(published, tmp_path):
    repository = published("file-system")
    path = media_archive(repository)
    deps_path = "/equiv/1.0.0/db.parquet"

    def add_ghost(data):
        table = pyarrow.parquet.read_table(io.BytesIO(data))
        df = table.to_pandas()
        archive = os.path.basename(path)[: -len(".zip")]
        row = df[(df["archive"] == archive) & (df["type"] == 1)].iloc[:1].copy()
        row["file"] = "audio/ghost.wav"
        df = pd.concat([df, row], ignore_index=True)
        out = io.BytesIO()
        table = pyarrow.Table.from_pandas(df, schema=table.schema, preserve_index=False)
        pyarrow.parquet.write_table(table, out)
        return out.getvalue()

    rewrite(repository, deps_path, add_ghost)
    (problem,) = check(repository).problems
    assert (problem.kind, problem.path) == ("missing member", path)
    assert problem.detail == "audio/ghost.wav"


def test_missing_dependency_table_and_version(published):
    repository = published("file-system")
    with pytest.raises(RuntimeError, match="no version '2.0.0'"):
        audb_publish.verify(NAME, "2.0.0", repository)
    backend = repository.create_backend_interface().backend
    with backend:
        backend.remove_file("/equiv/1.0.0/db.parquet")
    (problem,) = check(repository).problems
    assert (problem.kind, problem.path) == ("missing", "/equiv/1.0.0/db.parquet")


def test_cli(published, capsys):
    repository = published("s3")
    args = ["verify", NAME, "1.0.0", "--repository"]
    args += [repository.name, repository.host, repository.backend, "--quiet"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{NAME} 1.0.0 in {repository.name} ")
    assert ": intact (" in out
    assert cli.main([*args, "--deep", "--json", "--num-workers", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["intact"] and data["deep"] and data["problems"] == []
    path = media_archive(repository)
    backend = repository.create_backend_interface().backend
    with backend:
        backend.remove_file(path)
    assert cli.main(args) == 1
    out = capsys.readouterr().out
    assert "1 problems" in out and f"missing: {path}" in out
    assert cli.main([*args[:2], "9.9.9", *args[3:]]) == 1
    assert "no version '9.9.9'" in capsys.readouterr().err
