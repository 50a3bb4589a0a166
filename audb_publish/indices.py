"""Read the index of each table, as validation needs it, without its columns.

Validation needs only the index of a table:
its files, and its rows to look for duplicates.
:func:`audb.publish` loads every table completely,
and for a CSV table most of that time is spent
parsing the ``start`` and ``end`` strings into timedeltas in Python.
:func:`table_index` reads only the index columns
of a filewise or segmented table stored as CSV or PARQUET,
parses timedeltas written as pandas writes them with vectorised string functions,
and leaves every other string to pandas.
It gives the same index as :meth:`audformat.Table.load`.
Anything else (misc tables, tables with a PKL file,
files pyarrow cannot parse) is loaded by audformat,
which raises the same errors as for :func:`audb.publish`.

"""

from __future__ import annotations

import os

import audformat
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pa_parquet

# "D days HH:MM:SS[.f]" as pandas writes a timedelta to CSV
_TIMEDELTA = (
    r"^(?P<days>\d{1,5}) days (?P<hours>[01]\d|2[0-3]):"
    r"(?P<minutes>[0-5]\d):(?P<seconds>[0-5]\d)(?:\.(?P<fraction>\d{1,9}))?$"
)
_NS_PER = {"days": 86_400 * 10**9, "hours": 3_600 * 10**9, "minutes": 60 * 10**9}
_LEVELS = {
    audformat.define.IndexType.FILEWISE: ["file"],
    audformat.define.IndexType.SEGMENTED: ["file", "start", "end"],
}


def table_index(db_root: str, table_id: str, table: audformat.Table) -> pd.Index:
    r"""Index of a table, as :meth:`audformat.Table.load` gives it.

    Args:
        db_root: database root
        table_id: table ID
        table: table of the database header

    Returns:
        index of the table

    Raises:
        RuntimeError: as :meth:`audformat.Table.load`,
            e.g. if the table has no file

    Examples:
        >>> db = audformat.Database("db")
        >>> db["files"] = audformat.Table(audformat.filewise_index(["a.wav"]))
        >>> db.save("root", storage_format="csv")
        >>> header = audformat.Database.load("root", load_data=False)
        >>> table_index("root", "files", header["files"])
        Index(['a.wav'], dtype='string', name='file')

    """
    path = os.path.join(db_root, f"db.{table_id}")
    levels = _LEVELS.get(getattr(table, "type", None))
    if levels is not None and not os.path.exists(f"{path}.pkl"):
        try:
            if os.path.exists(f"{path}.parquet"):
                frame = _read_parquet(f"{path}.parquet", levels)
            elif os.path.exists(f"{path}.csv"):
                frame = _read_csv(f"{path}.csv", levels, list(table.columns))
            else:
                frame = None
        except pa.ArrowException:
            frame = None  # audformat reads it, or raises its own error
        if frame is not None:
            return _to_index(frame, levels)
    table.load(path)
    return table.index


def _read_csv(path: str, levels: list[str], columns: list[str]) -> pa.Table:
    # the same reading options as audformat, restricted to the index columns
    return pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=levels + columns, skip_rows=1),
        convert_options=pa_csv.ConvertOptions(
            column_types={level: pa.string() for level in levels},
            include_columns=levels,
            strings_can_be_null=True,
        ),
    )


def _read_parquet(path: str, levels: list[str]) -> pa.Table:
    return pa_parquet.read_table(path, columns=levels)


def _to_index(frame: pa.Table, levels: list[str]) -> pd.Index:
    # the file column converted as audformat converts the whole table
    df = frame.select(["file"]).to_pandas(
        deduplicate_objects=False, types_mapper=_string_type
    )
    for level in levels[1:]:
        df[level] = timedeltas(frame.column(level))
    dtypes = {level: df[level].dtype for level in levels}
    df.set_index(levels, inplace=True)
    if len(levels) == 1:
        return df.index
    return audformat.utils.set_index_dtypes(df.index, dtypes)


def _string_type(dtype: pa.DataType) -> pd.api.extensions.ExtensionDtype | None:
    return pd.StringDtype() if dtype == pa.string() else None


def timedeltas(values: pa.ChunkedArray | pa.Array) -> pd.Series:
    r"""Convert strings or durations to timedeltas, as pandas does.

    Strings written by pandas (``"0 days 00:00:01.500000"``)
    are converted with vectorised string functions,
    any other string with pandas.

    Args:
        values: strings, or durations

    Returns:
        series of dtype ``timedelta64[ns]``

    Examples:
        >>> timedeltas(pa.array(["0 days 00:00:01.5", "2s", None])).tolist()
        [Timedelta('0 days 00:00:01.500000'), Timedelta('0 days 00:00:02'), NaT]

    """
    if not pa.types.is_string(values.type):
        return values.to_pandas().astype("timedelta64[ns]")
    parts = pc.extract_regex(values, _TIMEDELTA)
    ns = pc.cast(
        pc.utf8_rpad(pc.struct_field(parts, "fraction"), width=9, padding="0"),
        pa.int64(),
    )
    for unit in ("days", "hours", "minutes"):
        count = pc.cast(pc.struct_field(parts, unit), pa.int64())
        ns = pc.add(ns, pc.multiply(count, _NS_PER[unit]))
    seconds = pc.cast(pc.struct_field(parts, "seconds"), pa.int64())
    ns = pc.fill_null(pc.add(ns, pc.multiply(seconds, 10**9)), 0)
    result = ns.to_numpy(zero_copy_only=False).astype("timedelta64[ns]")
    unmatched = pc.is_null(parts)
    other = np.asarray(unmatched.to_numpy(zero_copy_only=False))
    if other.any():
        strings = pd.Series(
            values.filter(unmatched).to_pandas(types_mapper=_string_type)
        )
        result[other] = strings.astype("timedelta64[ns]").to_numpy()
    return pd.Series(result)
