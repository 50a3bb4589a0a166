"""Table indices read for validation equal those audformat loads."""

from __future__ import annotations

import os

import audformat
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from audb_publish.indices import table_index
from audb_publish.indices import timedeltas
from audb_publish.scheduler import Scheduler
from audb_publish.table_cache import TableCache
from audb_publish.validate import check_duplicates
from audb_publish.validate import read_indices
from audb_publish.validate import table_media

FILES = ["a.wav", "sub/b c.wav", 'd,"e".wav', "ü.flac", ""]
TIMES = [
    "0 days 00:00:01.500000",
    "0 days 00:00:01",
    "1 days 23:59:59.123456789",
    "0 days 00:00:00.1",
    "NaT",
    "",
    "00:00:03.25",
    "2s",
    "-1 days +23:59:59.500000",
    "0 days 00:10:00.000001",
]


def header(root: str) -> audformat.Database:
    db = audformat.Database("indices")
    db.schemes["rating"] = audformat.Scheme("float")
    db.schemes["label"] = audformat.Scheme(labels=["x", "y"])
    db["files"] = audformat.Table(audformat.filewise_index())
    db["segments"] = audformat.Table(audformat.segmented_index())
    for table_id in ("files", "segments"):
        db[table_id]["rating"] = audformat.Column(scheme_id="rating")
        db[table_id]["label"] = audformat.Column(scheme_id="label")
    db.save(root, header_only=True)
    return db


def write_csv(root: str, table_id: str, columns: dict) -> None:
    rows = len(columns["file"])
    columns = {"rating": np.arange(float(rows)), "label": ["x"] * rows} | columns
    index = ["file", "start", "end"] if "start" in columns else ["file"]
    path = os.path.join(root, f"db.{table_id}.csv")
    pd.DataFrame(columns)[index + ["rating", "label"]].to_csv(path, index=False)


def loaded(root: str) -> audformat.Database:
    return audformat.Database.load(root, load_data=True)


def assert_same_indices(root: str) -> None:
    db = loaded(root)
    head = audformat.Database.load(root, load_data=False)
    for table_id in db:
        expected = db[table_id].index
        actual = table_index(root, table_id, head[table_id])
        pd.testing.assert_index_equal(actual, expected, exact=True)


def test_csv_tables_as_audformat(tmpdir):
    root = str(tmpdir)
    header(root)
    rows = len(TIMES)
    files = [FILES[i % len(FILES)] for i in range(rows)]
    write_csv(
        root,
        "files",
        {"file": FILES, "rating": np.arange(5.0), "label": ["x", "y", "z", "x", ""]},
    )
    write_csv(
        root,
        "segments",
        {
            "file": files,
            "start": TIMES,
            "end": TIMES[::-1],
        },
    )
    assert_same_indices(root)


def test_parquet_pickle_and_misc_tables_as_audformat(tmpdir):
    root = str(tmpdir)
    db = audformat.Database("indices")
    db["files"] = audformat.Table(audformat.filewise_index(["a.wav", "b.wav"]))
    db["segments"] = audformat.Table(
        audformat.segmented_index(["a.wav", "a.wav"], [0, 1.5], [1, pd.NaT])
    )
    db["misc"] = audformat.MiscTable(pd.Index(["s1", "s2"], name="speaker"))
    db["pickled"] = audformat.Table(audformat.filewise_index(["c.wav"]))
    db.save(root, storage_format="parquet")
    db["pickled"].save(os.path.join(root, "db.pickled"), storage_format="pkl")
    os.remove(os.path.join(root, "db.pickled.parquet"))
    assert_same_indices(root)


def test_csv_that_pyarrow_cannot_read_is_loaded_by_audformat(tmpdir):
    root = str(tmpdir)
    header(root)
    # columns in another order and one too many: audformat reads it with pandas
    with open(os.path.join(root, "db.files.csv"), "w") as fp:
        fp.write("label,file,rating,extra\nx,a.wav,1.0,9\ny,b.wav,2.0,9\n")
    write_csv(root, "segments", {"file": [], "start": [], "end": []})
    db = loaded(root)
    head = audformat.Database.load(root, load_data=False)
    pd.testing.assert_index_equal(
        table_index(root, "files", head["files"]), db["files"].index, exact=True
    )


def test_missing_table_file_raises_as_audformat(tmpdir):
    root = str(tmpdir)
    header(root)
    write_csv(root, "files", {"file": ["a.wav"]})
    head = audformat.Database.load(root, load_data=False)
    with pytest.raises(RuntimeError, match="No file found for table") as actual:
        table_index(root, "segments", head["segments"])
    with pytest.raises(RuntimeError) as expected:
        loaded(root)
    assert str(actual.value) == str(expected.value)


def test_duplicates_written_differently_are_found(tmpdir):
    root = str(tmpdir)
    header(root)
    write_csv(root, "files", {"file": ["a.wav"]})
    write_csv(
        root,
        "segments",
        {
            "file": ["a.wav", "a.wav"],
            "start": ["0 days 00:00:01", "0 days 00:00:01.000000"],
            "end": ["NaT", ""],
        },
    )
    db = loaded(root)
    with pytest.raises(ValueError) as expected:
        audformat.assert_no_duplicates(db["segments"].df)
    head = audformat.Database.load(root, load_data=False)
    with Scheduler(2, verbose=False) as scheduler:
        indices = read_indices(scheduler, head, root, TableCache.off(root))
        assert table_media(head, indices) == {"a.wav"}
        with pytest.raises(ValueError) as actual:
            check_duplicates(scheduler, indices)
    assert str(actual.value) == str(expected.value)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_timedeltas_as_pandas(seed):
    rng = np.random.default_rng(seed)
    ns = rng.integers(0, 5 * 86_400 * 10**9, 2_000)
    ns[::7] //= 10**6  # whole seconds and few digits
    ns[::7] *= 10**6
    canonical = pd.Series(pd.to_timedelta(ns)).astype(str).tolist()
    strings = canonical + [
        "0 days 24:00:00",
        "0 days 173:36:40.123000",
        "2 days 5:07:08",
        "0 days 999999:59:59.999999999",
        "0 days 00:60:00",
        "0 days 00:00:01.1234567890",
        " 0 days 00:00:01",
        "1 day 00:00:01",
        "1 min",
        None,
    ]
    expected = pd.Series(pd.array(strings, dtype="string")).astype("timedelta64[ns]")
    pd.testing.assert_series_equal(timedeltas(pa.array(strings)), expected)
    chunked = pa.chunked_array([strings[:100], strings[100:]])
    pd.testing.assert_series_equal(timedeltas(chunked), expected)


def test_timedelta_beyond_int64_raises_as_audformat(tmpdir):
    root = str(tmpdir)
    header(root)
    write_csv(root, "files", {"file": ["a.wav"]})
    write_csv(
        root,
        "segments",
        {
            "file": ["a.wav", "a.wav"],
            "start": ["0 days 00:00:01", "99999 days 999999:00:00"],
            "end": ["0 days 00:00:02", "0 days 00:00:03"],
        },
    )
    with pytest.raises(Exception) as expected:
        loaded(root)
    head = audformat.Database.load(root, load_data=False)
    with pytest.raises(Exception) as actual:
        table_index(root, "segments", head["segments"])
    assert type(actual.value) is type(expected.value)
    assert str(actual.value) == str(expected.value)


def test_timedeltas_of_durations():
    values = pa.array([1_500_000_000, None], type=pa.duration("ns"))
    assert timedeltas(values).tolist() == [pd.Timedelta(seconds=1.5), pd.NaT]


def test_timedeltas_that_pandas_rejects_raise_as_pandas():
    with pytest.raises(ValueError) as expected:
        pd.Series(pd.array(["soon"], dtype="string")).astype("timedelta64[ns]")
    with pytest.raises(ValueError) as actual:
        timedeltas(pa.array(["0 days 00:00:01", "soon"]))
    assert str(actual.value) == str(expected.value)
