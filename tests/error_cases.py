"""Bad input for the publish, shared by test_errors and test_dry_run.

Each ``case_*`` function changes a fresh :func:`helpers.small_db`
and returns the arguments of the publish.

"""

from __future__ import annotations

import os

import audb
import audeer
import audformat
import pandas as pd
import pyarrow
import pyarrow.parquet
import pytest

from audb_publish.patching import _ORIGINAL as upstream_publish

from helpers import SMALL as NAME
from helpers import only_repository
from helpers import with_column
from helpers import write_audio
from helpers import write_csv


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


def case_archive_leaves_media_folder(root, repository):
    # audb.publish would write outside its repository
    return {"archives": {"a.wav": "../../../../escape"}}


def case_archive_with_dots_inside(root, repository):
    # audb.publish fails on the file system, after putting tables
    return {"archives": {"a.wav": "sub/../escape"}}


def case_num_workers_zero(root, repository):
    return {"num_workers": 0}


def case_num_workers_zero_and_version_exists(root, repository):
    # audb checks the version before it uses num_workers
    upstream_publish(root, "1.0.0", repository, previous_version=None, verbose=False)
    return {"num_workers": 0}


def case_parquet_table_attached(root, repository):
    # audb.publish publishes a version that audb.load cannot load
    db = audformat.Database.load(root)
    db.attachments["table"] = audformat.Attachment("db.files.parquet")
    db.save(root, header_only=True)
    return {}


def case_parquet_table_without_metadata(root, repository):
    db = audformat.Database.load(root)
    table = pyarrow.table({"file": list(db.files)})
    pyarrow.parquet.write_table(table, os.path.join(root, "db.files.parquet"))
    return {}


def case_int_value(root, repository):
    with_column(root, "int", "file,value\na.wav,1\nb.wav,abc\n")
    return {}


def case_bool_value(root, repository):
    with_column(root, "bool", "file,value\na.wav,True\nb.wav,yes\n")
    return {}


def case_time_value(root, repository):
    with_column(root, "time", "file,value\na.wav,1s\nb.wav,soon\n")
    return {}


def case_float_value(root, repository):
    with_column(root, "float", 'file,value\na.wav,1.5\nb.wav,"2,5"\n')
    return {}


def case_segment_time_value(root, repository):
    db = audformat.Database.load(root)
    db["segments"] = audformat.Table(audformat.segmented_index(["a.wav"], [0], [0.1]))
    db.save(root)
    write_csv(root, "segments", "file,start,end\na.wav,0 days 00:00:00,later\n")
    return {}


def case_broken_tables_in_load_order(root, repository):
    # audformat loads misc tables first: "z" before "a"
    db = audformat.Database.load(root)
    db["z"] = audformat.MiscTable(pd.Index(["x"], name="idx"))
    db.save(root)
    with_column(root, "int", "file,value\na.wav,x\n", "a")
    os.remove(os.path.join(root, "db.z.parquet"))
    return {}


def case_bad_values_in_two_tables(root, repository):
    db = audformat.Database.load(root)
    db.schemes["n"] = audformat.Scheme("int")
    for table_id in ("z", "a"):
        db[table_id] = audformat.Table(audformat.filewise_index(["a.wav"]))
        db[table_id]["n"] = audformat.Column(scheme_id="n")
    db.save(root)
    for table_id, value in (("z", "abc"), ("a", "xyz")):
        write_csv(root, table_id, f"file,n\na.wav,{value}\n")
    return {}


def case_archive_name_and_unknown_subtype(root, repository):
    # audb scans media before it checks archive names
    db = audformat.Database.load(root)
    write_audio(os.path.join(root, "c.wav"), 0.1, 8000, 1, "NMS_ADPCM_16", 0)
    db["more"] = audformat.Table(audformat.filewise_index(["c.wav"]))
    db.save(root)
    return {"archives": {"a.wav": "no?good"}}


def case_file_where_repository_folder_must_be(root, repository):
    audeer.touch(repository.host, repository.name, NAME)
    return {}


def case_file_where_version_folder_must_be(root, repository):
    audeer.touch(audeer.mkdir(repository.host, repository.name, NAME, "media"), "1.0.0")
    return {}


CASES = {
    name[len("case_") :]: function
    for name, function in dict(globals()).items()
    if name.startswith("case_")
}


OURS_ONLY = {  # stricter than audb, which publishes: the error we raise
    "bad_compression": (ValueError, "compression"),
    "archive_leaves_media_folder": (ValueError, "that is outside the repository"),
    "archive_with_dots_inside": (ValueError, "'/bad/media/sub/../1.0.0/escape.zip'"),
    "parquet_table_attached": (RuntimeError, "contains 'db.files.parquet'"),
}


OWN_MESSAGE = {  # audb raises the same type, with a message of its internals
    "num_workers_zero": "'num_workers' must be at least 1, not 0",
    "parquet_table_without_metadata": "Save the table with audformat",
}


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
