"""The dry run tells what publish then puts, and writes nothing."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil

import audb
import audeer
import audformat
import pytest

import audb_publish
from audb_publish import cli
from audb_publish import remote as remote_module
from audb_publish.cli import capture_report
from audb_publish.patching import _ORIGINAL as upstream_publish

from error_cases import CASES
from error_cases import run
from helpers import ARCHIVES
from helpers import NAME
from helpers import SMALL
from helpers import assert_same_repository
from helpers import count_puts
from helpers import only_repository
from helpers import repository_files
from helpers import small_db
from helpers import update_database
from helpers import write_audio


def _folder_state(root: str) -> dict[str, str]:
    r"""MD5 of every file below ``root``, and every folder."""
    state = {}
    for folder, folders, files in os.walk(root):
        for name in folders:
            state[os.path.relpath(os.path.join(folder, name), root)] = "folder"
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as fp:
                state[os.path.relpath(path, root)] = hashlib.md5(fp.read()).hexdigest()
    return state


def _repository_state(repository, tmp) -> dict[str, str]:
    if repository.backend == "file-system":
        return _folder_state(os.path.join(repository.host, repository.name))
    return {path: "" for path in repository_files(repository)}


def _check(db_root, version, repository, monkeypatch, tmp_path, **kwargs):
    r"""Dry run, then publish: same puts, nothing written by the dry run."""
    before = _folder_state(db_root), _repository_state(repository, tmp_path)
    run = audb_publish.dry_run(db_root, version, repository, **kwargs)
    after = _folder_state(db_root), _repository_state(repository, tmp_path)
    assert after == before
    existed = {
        file
        for put in run.puts
        for file in put.files
        if os.path.exists(os.path.join(db_root, file))
    }
    puts = count_puts(monkeypatch)
    with capture_report() as reports:
        deps = audb_publish.publish(
            db_root, version, repository, verbose=False, **kwargs
        )
    monkeypatch.undo()
    header_and_deps = [f"/{NAME}/db.parquet", f"/{NAME}/db.yaml"]
    assert sorted(puts) == sorted([put.path for put in run.puts] + header_and_deps)
    # plan and publish count files the same way
    (report,) = reports
    assert run.archives == report.archives_put + report.archives_skipped
    assert run.files == report.files_put + report.files_skipped
    assert run.present == 0
    # members that are not on disk are downloaded by publish and count no bytes;
    # tables stored only as pickle count as the PARQUET file publish saves
    assert run.bytes == sum(
        os.path.getsize(os.path.join(db_root, file))
        for put in run.puts
        for file in put.files
        if file in existed or file.startswith("db.")
    )
    return run, deps


@pytest.mark.parametrize("backend", ["file-system", "s3"])
@pytest.mark.parametrize("num_workers", [1, 3])
def test_dry_run_tells_what_publish_puts(
    backend, num_workers, repositories, template, tmp_path, monkeypatch
):
    repository = repositories.new(backend)
    cache = audeer.mkdir(tmp_path, "cache")
    with only_repository(repository, cache):
        v1 = str(tmp_path / "v1")
        shutil.copytree(template, v1)
        run, _ = _check(
            v1,
            "1.0.0",
            repository,
            monkeypatch,
            tmp_path,
            archives=ARCHIVES,
            num_workers=num_workers,
        )
        assert run.previous_version is None
        assert run.changes["media"]["altered"] == []
        assert run.changes["media"]["removed"] == []
        assert len(run.changes["media"]["new"]) > 5
        v2 = str(tmp_path / "v2")
        audb.load_to(v2, NAME, version="1.0.0", only_metadata=True, cache_root=cache)
        archives = update_database(v2, template)
        run, deps = _check(
            v2,
            "1.1.0",
            repository,
            monkeypatch,
            tmp_path,
            archives=archives,
            num_workers=num_workers,
        )
    assert run.previous_version == "1.0.0"
    media = run.changes["media"]
    assert media["new"] == ["bundle2/c3.wav", "wav/new.wav"]
    assert media["altered"] == ["bundle/b2.wav", "wav/c.wav"]
    assert media["removed"] == ["bundle/b3.wav", "bundle2/c1.wav", "wav/g.wav"]
    assert run.changes["attachments"]["altered"] == ["docs"]
    assert len(run.changes["attachments"]["removed"]) == 1
    assert run.changes["tables"]["altered"]
    for kind, changes in run.changes.items():
        for file in changes["new"] + changes["altered"]:
            assert deps.version(file) == "1.1.0", (kind, file)
        for file in changes["removed"]:
            assert file not in deps.files


def test_present_archives_after_an_interrupted_publish(
    repositories, tmp_path, monkeypatch, capsys
):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        put = remote_module.Remote.put_file

        def fail_on_header(self, src, path, version, **kwargs):
            if path.endswith("db.yaml"):
                raise OSError("disk full")
            return put(self, src, path, version, **kwargs)

        monkeypatch.setattr(remote_module.Remote, "put_file", fail_on_header)
        with pytest.raises(OSError):
            audb_publish.publish(
                root, "1.0.0", repository, previous_version=None, verbose=False
            )
        monkeypatch.undo()
        args = [repository.name, repository.host, repository.backend]
        argv = ["plan", root, "1.0.0", "--repository", *args, "--quiet"]
        assert cli.main([*argv, "--previous-version", "none", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    # 2 media archives and the PARQUET table
    assert (report["archives"], report["files"], report["present"]) == (2, 3, 3)
    assert report["database"] == SMALL


def test_human_summary(repositories, tmp_path, capsys):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    args = [repository.name, repository.host, repository.backend]
    argv = ["plan", root, "1.0.0", "--repository", *args, "--quiet"]
    assert cli.main([*argv, "--previous-version", "none"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"publish {SMALL} 1.0.0 (from scratch) to {' '.join(args)} would put",
        "  media: 2 new, 0 altered, 0 removed",
        "  tables: 1 new, 0 altered, 0 removed",
        "  attachments: 0 new, 0 altered, 0 removed",
        f"  2 archives and 3 files, {_mb(root)} MB before compression, 0 already there",
    ]
    assert os.listdir(os.path.join(repository.host, repository.name)) == []


def _mb(root) -> str:
    files = ["a.wav", "b.wav", "db.files.parquet"]
    return f"{sum(os.path.getsize(os.path.join(root, f)) for f in files) / 1e6:.1f}"


ACCEPTED = set(inspect.signature(audb_publish.dry_run).parameters)


def _dry_run(*args, verbose, **kwargs):
    return audb_publish.dry_run(*args, **kwargs)


WRITE_ERRORS = {
    "file_where_repository_folder_must_be",
    "file_where_version_folder_must_be",
}
r"""Errors of writing to the repository, which a dry run does not do."""

NOT_DRY_RUN = {"bad_compression"}
r"""Errors of publish arguments that dry_run does not take."""


@pytest.mark.parametrize("case", sorted(set(CASES) - WRITE_ERRORS - NOT_DRY_RUN))
def test_same_error_as_publish(case, repositories, tmp_path):
    errors = {}
    for side, function in [
        ("publish", audb_publish.publish),
        ("dry_run", _dry_run),
    ]:
        root = str(tmp_path / side)
        small_db(root)
        repository = repositories.new("file-system")
        kwargs = CASES[case](root, repository)
        assert set(kwargs) <= ACCEPTED | {"version"}
        if side == "dry_run":
            before = _folder_state(root)
        cache = audeer.mkdir(tmp_path, f"cache-{side}")
        error = run(function, root, repository, kwargs, cache)
        errors[side] = type(error), str(error).replace(root, "<root>")
        if side == "dry_run":
            assert _folder_state(root) == before
    assert errors["dry_run"] == errors["publish"]


def _alter(root: str) -> None:
    r"""Add a media file to the small database in ``root``."""
    write_audio(os.path.join(root, "c.wav"), 0.1, 16000, 1, "PCM_16", 7)
    db = audformat.Database.load(root)
    db["files"] = audformat.Table(audformat.filewise_index(["a.wav", "b.wav", "c.wav"]))
    db.save(root)


def test_plan_and_publish_ignore_a_cached_table_of_another_repository(
    repositories, tmp_path
):
    # issue 23: audb's cache holds version 1.0.0 of another database
    # of the same name, published to another repository
    other, ours, expected = (repositories.new("file-system") for _ in range(3))
    cache = str(tmp_path / "cache")
    other_root = str(tmp_path / "other")
    small_db(other_root)
    write_audio(os.path.join(other_root, "a.wav"), 0.2, 16000, 1, "PCM_16", 5)
    with only_repository(other, cache):
        audb_publish.publish(other_root, "1.0.0", other, verbose=False)
        audb.dependencies(SMALL, version="1.0.0", cache_root=cache)  # cached
    base = str(tmp_path / "base")
    small_db(base)
    up_root, root = str(tmp_path / "up"), str(tmp_path / "db")
    shutil.copytree(base, up_root)
    shutil.copytree(base, root)
    # upstream on a clean cache
    with only_repository(expected, str(tmp_path / "clean")):
        upstream_publish(up_root, "1.0.0", expected, verbose=False)
        _alter(up_root)
        upstream_publish(up_root, "1.1.0", expected, verbose=False)
    with only_repository(ours, cache):
        audb_publish.publish(root, "1.0.0", ours, verbose=False)
        _alter(root)
        run = audb_publish.dry_run(root, "1.1.0", ours)
        audb_publish.publish(root, "1.1.0", ours, verbose=False)
    assert run.changes["media"]["new"] == ["c.wav"]
    assert_same_repository(expected, ours, tmp_path)
    # a table that belongs to the other repository does not match ours,
    # although audb's cache holds it, as upstream finds on a clean cache
    shutil.copy(os.path.join(other_root, "db.parquet"), base)
    _alter(base)
    for publish, cache_root in [(upstream_publish, "clean2"), (audb_publish, cache)]:
        with only_repository(ours, str(tmp_path / cache_root)):
            function = getattr(publish, "publish", publish)
            with pytest.raises(RuntimeError, match="does not match"):
                function(base, "2.0.0", ours, previous_version="1.0.0", verbose=False)
    # plan says the same as publish, with upstream's message
    with only_repository(ours, cache):
        with pytest.raises(RuntimeError, match="does not match") as error:
            audb_publish.dry_run(base, "2.0.0", ours, previous_version="1.0.0")
    assert "Did you forgot to call 'audb.load_to(" in str(error.value)
