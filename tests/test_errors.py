"""Bad input raises what audb.publish raises, and publishes nothing visible."""

from __future__ import annotations

import os
import shutil

import audb
import audeer
import audformat
import pandas as pd
import pytest

import audb_publish
from audb_publish.patching import _ORIGINAL as upstream_publish

from conftest import only_repository
from conftest import write_audio

NAME = "bad"


def small_db(root: str) -> audformat.Database:
    files = ["a.wav", "b.wav"]
    for seed, file in enumerate(files):
        write_audio(os.path.join(root, file), 0.1, 16000, 1, "PCM_16", seed)
    db = audformat.Database(NAME)
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    return db


# each case changes a fresh database and returns publish arguments


def case_bad_version(root, repository):
    return {"version": "x.y"}


def case_previous_not_smaller(root, repository):
    return {"previous_version": "2.0.0"}


def case_no_repository(root, repository):
    return {"repository": None, "previous_version": None}


def case_deps_without_previous(root, repository):
    deps = audb.Dependencies()
    deps._add_meta("db.files.csv", "0.1.0", "abc")
    deps.save(os.path.join(root, "db.parquet"))
    return {"previous_version": None}


def case_not_portable(root, repository):
    db = audformat.Database.load(root)
    db.map_files(lambda f: os.path.join(root, f))
    db.save(root)
    return {}


def case_duplicates(root, repository):
    db = audformat.Database.load(root)
    db["files"]._df = pd.DataFrame(index=audformat.filewise_index(["a.wav", "a.wav"]))
    db.save(root)
    return {}


def case_table_id(root, repository):
    db = audformat.Database.load(root)
    db["bad!"] = audformat.Table(audformat.filewise_index(["a.wav"]))
    db.save(root)
    return {}


def case_attachment_id(root, repository):
    db = audformat.Database.load(root)
    audeer.touch(audeer.mkdir(root, "extra"), "x.txt")
    db.attachments["bad id"] = audformat.Attachment("extra")
    db.save(root)
    return {}


def case_missing_media(root, repository):
    os.remove(os.path.join(root, "b.wav"))
    return {}


def case_attachment_overlap(root, repository):
    db = audformat.Database.load(root)
    db.attachments["overlap"] = audformat.Attachment("a.wav")
    db.save(root)
    return {}


def case_attachment_empty_folder(root, repository):
    db = audformat.Database.load(root)
    audeer.mkdir(root, "empty")
    db.attachments["empty"] = audformat.Attachment("empty")
    db.save(root)
    return {}


def case_attachment_empty_subfolder(root, repository):
    db = audformat.Database.load(root)
    audeer.touch(audeer.mkdir(root, "docs"), "x.txt")
    audeer.mkdir(root, "docs", "sub")
    db.attachments["docs"] = audformat.Attachment("docs")
    db.save(root)
    return {}


def case_attachment_symlink(root, repository):
    db = audformat.Database.load(root)
    audeer.touch(audeer.mkdir(root, "real"), "x.txt")
    os.symlink(os.path.join(root, "real"), os.path.join(root, "link"))
    db.attachments["link"] = audformat.Attachment("link")
    db.save(root)
    return {}


def case_attachment_missing(root, repository):
    db = audformat.Database.load(root)
    db.attachments["gone"] = audformat.Attachment("gone")
    db.save(root)
    return {}


def case_uppercase_extension(root, repository):
    db = audformat.Database.load(root)
    write_audio(os.path.join(root, "c.WAV"), 0.1, 16000, 1, "PCM_16", 3)
    db["more"] = audformat.Table(audformat.filewise_index(["c.WAV"]))
    db.save(root)
    return {}


def case_archive_name(root, repository):
    return {"archives": {"a.wav": "no?good"}}


def case_bad_compression(root, repository):
    return {"compression": "zstd"}


CASES = {
    name[len("case_") :]: function
    for name, function in dict(globals()).items()
    if name.startswith("case_")
}
OURS_ONLY = {"bad_compression"}


def run(publish, root, repository, kwargs, cache):
    kwargs = dict(kwargs)
    version = kwargs.pop("version", "1.0.0")
    repository = kwargs.pop("repository", repository)
    kwargs.setdefault("previous_version", None)
    with only_repository(repository or audb.config.REPOSITORIES[0], cache):
        with pytest.raises(Exception) as error:
            publish(root, version, repository, verbose=False, **kwargs)
    return error.value


def header_versions(repository) -> list[str]:
    backend = repository.create_backend_interface()
    with backend.backend:
        return backend.versions(f"/{NAME}/db.yaml", suppress_backend_errors=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error(case, repositories, tmp_path):
    errors = {}
    for side, publish in [
        ("upstream", upstream_publish),
        ("ours", audb_publish.publish),
    ]:
        if side == "upstream" and case in OURS_ONLY:
            continue
        root = str(tmp_path / side)
        small_db(root)
        repository = repositories.new("file-system")
        kwargs = CASES[case](root, repository)
        cache = audeer.mkdir(tmp_path, f"cache-{side}")
        error = run(publish, root, repository, kwargs, cache)
        errors[side] = type(error), str(error).replace(root, "<root>")
        assert header_versions(repository) == []
    if case in OURS_ONLY:
        assert errors["ours"][0] is ValueError
        assert "compression" in errors["ours"][1]
        return
    assert errors["ours"] == errors["upstream"]


def test_version_exists(repositories, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        audb_publish.publish(root, "1.0.0", repository, verbose=False)
        shutil.rmtree(root)
        small_db(root)
        with pytest.raises(RuntimeError, match="already exists"):
            audb_publish.publish(
                root, "1.0.0", repository, previous_version=None, verbose=False
            )
        with pytest.raises(RuntimeError, match="don't have a 'db.parquet'"):
            audb_publish.publish(root, "1.1.0", repository, verbose=False)
        audb.load_to(root, NAME, version="1.0.0", only_metadata=True, verbose=False)
        deps = audb.Dependencies()
        deps.load(os.path.join(root, "db.parquet"))
        deps._add_meta("db.other.csv", "1.0.0", "x")
        deps.save(os.path.join(root, "db.parquet"))
        with pytest.raises(RuntimeError, match="does not match"):
            audb_publish.publish(root, "1.1.0", repository, verbose=False)
    assert header_versions(repository) == ["1.0.0"]


def test_previous_version_in_other_repository(repositories, tmp_path):
    first = repositories.new("file-system")
    second = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    before = audb.config.REPOSITORIES, audb.config.CACHE_ROOT
    audb.config.REPOSITORIES = [first, second]
    audb.config.CACHE_ROOT = str(tmp_path / "cache")
    try:
        audb_publish.publish(root, "1.0.0", first, verbose=False)
        with pytest.raises(RuntimeError, match="Cannot publish version '1.1.0'"):
            audb_publish.publish(root, "1.1.0", second, verbose=False)
        # without a repository, the previous version's is used
        deps = audb_publish.publish(root, "1.1.0", verbose=False)
    finally:
        audb.config.REPOSITORIES, audb.config.CACHE_ROOT = before
    assert deps.version("a.wav") == "1.0.0"
    assert header_versions(first) == ["1.0.0", "1.1.0"]
    assert header_versions(second) == []
