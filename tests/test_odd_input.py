"""Unusual input that audb.publish publishes: ours publishes the same."""

from __future__ import annotations

import os
import shutil

import audb
from audbackend import BackendError
import audeer
import audformat
import pytest

import audb_publish
from audb_publish.patching import _ORIGINAL as upstream_publish

from helpers import SMALL as NAME
from helpers import assert_same_repository
from helpers import only_repository
from helpers import small_db
from helpers import with_column
from helpers import write_csv

# each case changes a fresh database and returns publish arguments


def case_columns_in_other_order(root):
    # pyarrow reads by position and refuses "x" as int,
    # audformat then reads columns by name with pandas
    db = with_column(root, "int", "file,label,value\na.wav,x,1\nb.wav,y,2\n")
    db.schemes["label"] = audformat.Scheme("str")
    db["files"]["label"] = audformat.Column(scheme_id="label")
    db.save(root, header_only=True)
    return {}


def case_blank_first_line(root):
    with_column(root, "int", "\nfile,value\na.wav,1\nb.wav,2\n")
    return {}


def case_time_column(root):
    with_column(root, "time", "file,value\na.wav,0 days 00:00:01.5\nb.wav,2s\n")
    return {}


def case_int_archive_names(root):
    return {"archives": {"a.wav": 0, "b.wav": 1}}


def case_absolute_archive_name(root):
    # audb's join collapses "//": written as media/1.0.0/abs/x.zip
    return {"archives": {"a.wav": "/abs/x"}}


def case_symlink_loop(root):
    os.symlink(".", os.path.join(root, "loop"))
    return {}


def case_parquet_table_listed_as_media(root):
    db = audformat.Database.load(root)
    db["more"] = audformat.Table(audformat.filewise_index(["db.files.parquet"]))
    db.save(root, storage_format="parquet")
    return {}


CASES = {
    name[len("case_") :]: function
    for name, function in dict(globals()).items()
    if name.startswith("case_")
}


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_repository(case, pipeline, repositories, tmp_path):
    published = {}
    for side, publish, kwargs in [
        ("upstream", upstream_publish, {}),
        ("ours", audb_publish.publish, {"pipeline": pipeline, "num_workers": 3}),
    ]:
        root = str(tmp_path / side)
        small_db(root)
        kwargs.update(CASES[case](root))
        repository = repositories.new("file-system")
        with only_repository(repository, audeer.mkdir(tmp_path, f"cache-{side}")):
            publish(root, "1.0.0", repository, verbose=False, **kwargs)
        published[side] = repository
    assert_same_repository(published["upstream"], published["ours"], tmp_path)
    # stock audb loads what we published
    cache = audeer.mkdir(tmp_path, "load")
    with only_repository(published["ours"], cache):
        db = audb.load(NAME, version="1.0.0", verbose=False, cache_root=cache)
    assert set(db.files) <= set(audeer.list_file_names(db.root, recursive=True))


def test_update_of_a_parquet_table_listed_as_media(repositories, tmp_path):
    # the table file is a media file in 1.0.0 and a table file again in 1.1.0
    published = {}
    for side, publish in [
        ("upstream", upstream_publish),
        ("ours", audb_publish.publish),
    ]:
        root = str(tmp_path / side)
        small_db(root)
        case_parquet_table_listed_as_media(root)
        repository = repositories.new("file-system")
        with only_repository(repository, audeer.mkdir(tmp_path, f"cache-{side}")):
            publish(root, "1.0.0", repository, verbose=False)
            shutil.rmtree(root)
            audb.load_to(root, NAME, version="1.0.0", verbose=False)
            db = audformat.Database.load(root)
            db["more"] = audformat.Table(audformat.filewise_index(["a.wav"]))
            db.save(root, storage_format="parquet")
            publish(root, "1.1.0", repository, verbose=False)
        published[side] = repository
    assert_same_repository(published["upstream"], published["ours"], tmp_path)


def test_csv_table_listed_as_media_is_refused(repositories, tmp_path):
    # audb.publish publishes it, but audb.load cannot load the version
    root = str(tmp_path / "db")
    small_db(root)
    db = audformat.Database.load(root)
    db["more"] = audformat.Table(audformat.filewise_index(["db.files.csv"]))
    db.save(root, storage_format="csv")
    write_csv(root, "files", "file\na.wav\nb.wav\n")
    repository = repositories.new("file-system")
    with only_repository(repository, str(tmp_path / "cache")):
        with pytest.raises(RuntimeError, match="'db.files.csv' is listed as a media"):
            audb_publish.publish(root, "1.0.0", repository, verbose=False)
    assert not os.path.exists(os.path.join(repository.host, repository.name, NAME))


def test_long_path_has_real_audio_properties(repositories, tmp_path):
    # libsndfile cannot open an absolute path of 1,024 bytes or more,
    # so upstream records zeros; we read the header ourselves
    root = str(tmp_path / "db")
    small_db(root)
    deep = "/".join(["d" * 200] * 6) + "/c.wav"
    os.makedirs(os.path.join(root, os.path.dirname(deep)))
    shutil.copy(os.path.join(root, "a.wav"), os.path.join(root, deep))
    db = audformat.Database.load(root)
    db["more"] = audformat.Table(audformat.filewise_index([deep]))
    db.save(root)
    published = {}
    for side, publish in [
        ("upstream", upstream_publish),
        ("ours", audb_publish.publish),
    ]:
        repository = repositories.new("file-system")
        copy = str(tmp_path / side)
        shutil.copytree(root, copy)
        with only_repository(repository, audeer.mkdir(tmp_path, f"cache-{side}")):
            published[side] = publish(copy, "1.0.0", repository, verbose=False)
    upstream, ours = published["upstream"], published["ours"]
    assert upstream.sampling_rate(deep) == 0
    assert ours.sampling_rate(deep) == ours.sampling_rate("a.wav") == 16000
    assert ours.duration(deep) == ours.duration("a.wav") > 0
    assert ours.checksum(deep) == upstream.checksum(deep)


def test_stricter_than_upstream(repositories, tmp_path):
    # what we refuse in test_errors, upstream publishes broken
    archives = {"a.wav": "../../../x"}
    for side in ["upstream", "ours"]:
        root = str(tmp_path / side)
        small_db(root)
        db = audformat.Database.load(root)
        db.attachments["table"] = audformat.Attachment("db.files.parquet")
        db.save(root, header_only=True)
        repository = repositories.new("file-system")
        cache = str(tmp_path / f"cache-{side}")
        with only_repository(repository, cache):
            if side == "upstream":
                # as after an earlier version; else audbackend may fail to
                # create media/../../../1.0.0, depending on the order of puts
                audeer.mkdir(repository.host, repository.name, NAME, "media")
                upstream_publish(
                    root, "1.0.0", repository, archives=archives, verbose=False
                )
                with pytest.raises(BackendError):  # the attached table
                    audb.load(NAME, version="1.0.0", verbose=False, cache_root=cache)
                # where our message says: outside the repository
                assert os.path.exists(os.path.join(repository.host, "1.0.0", "x.zip"))
                continue
            with pytest.raises(RuntimeError, match="contains 'db.files.parquet'"):
                audb_publish.publish(root, "1.0.0", repository, verbose=False)
            del db.attachments["table"]
            db.save(root, header_only=True)
            with pytest.raises(ValueError, match="that is outside the repository"):
                audb_publish.publish(root, "1.0.0", repository, archives=archives)
