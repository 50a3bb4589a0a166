"""Read each table as audformat loads it, and keep its index.

Validation must refuse every table that :func:`audb.publish` refuses,
and :func:`audb.publish` loads every table completely
with :meth:`audformat.Table.load`.
For a CSV table most of that time is spent
parsing ``start``, ``end`` and time columns into timedeltas in Python.
:func:`table_index` reads a filewise or segmented CSV table
with the same reader, the same column types and the same fallback
as :meth:`audformat.Table.load`:
pyarrow reads every column in the order the header lists them,
with the types of their schemes,
and whatever pyarrow refuses is loaded by audformat itself,
which reads columns by name with pandas
and raises the same errors as for :func:`audb.publish`.
Time strings are parsed with vectorised string functions,
and the first one pandas cannot parse raises pandas' error.
A PARQUET table is read for its index only
when its schema has every column audformat converts,
with the type audformat expects,
else audformat loads it.
Misc tables and tables with a PKL file are loaded by audformat.
The index is the same as :meth:`audformat.Table.load` gives.

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

# "D days HH:MM:SS[.f]" as pandas writes a timedelta to CSV;
# pandas also reads more than 23 hours (or one digit) as that many hours
_TIMEDELTA = (
    r"^(?P<days>\d{1,5}) days (?P<hours>\d{1,6}):"
    r"(?P<minutes>[0-5]\d):(?P<seconds>[0-5]\d)(?:\.(?P<fraction>\d{1,9}))?$"
)
_NS_PER = {"days": 86_400 * 10**9, "hours": 3_600 * 10**9, "minutes": 60 * 10**9}
_CSV_TYPES = {
    audformat.define.DataType.BOOL: pa.bool_(),
    audformat.define.DataType.DATE: pa.timestamp("ns"),
    audformat.define.DataType.FLOAT: pa.float64(),
    audformat.define.DataType.INTEGER: pa.int64(),
    audformat.define.DataType.STRING: pa.string(),
    audformat.define.DataType.TIME: pa.string(),
}
_LEVELS = {
    audformat.define.IndexType.FILEWISE: ["file"],
    audformat.define.IndexType.SEGMENTED: ["file", "start", "end"],
}


def table_index(db_root: str, table_id: str, table: audformat.Table) -> pd.Index:
    r"""Index of a table, read and checked as :meth:`audformat.Table.load` does.

    Args:
        db_root: database root
        table_id: table ID
        table: table of the database header

    Returns:
        index of the table

    Raises:
        RuntimeError: as :meth:`audformat.Table.load`,
            e.g. if the table has no file
        ValueError: as :meth:`audformat.Table.load`,
            e.g. if a value does not match the dtype of its scheme

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
    frame = None
    times = []
    if levels is not None and not os.path.exists(f"{path}.pkl"):
        try:
            if os.path.exists(f"{path}.parquet"):
                frame = _read_parquet(f"{path}.parquet", levels, table)
            elif os.path.exists(f"{path}.csv"):
                frame = _read_csv(f"{path}.csv", levels, table)
                times = _time_columns(table)
        except pa.ArrowInvalid:
            frame = None  # audformat reads it with pandas, or raises
    if frame is not None:
        try:
            # audformat converts the time levels first, then the time columns
            index = _to_index(frame, levels)
            for column_id in times:
                timedeltas(frame.column(column_id))
            return index
        except pa.ArrowInvalid:
            pass  # a time beyond int64 ns: audformat raises pandas' error
    table.load(path)
    return table.index


def _read_csv(path: str, levels: list[str], table: audformat.Table) -> pa.Table:
    # the reader and column types of audformat, all columns in header order
    columns = list(table.columns)
    types = {level: pa.string() for level in levels}
    for column_id in columns:
        dtype = _scheme_dtype(table, column_id)
        if dtype in _CSV_TYPES:
            types[column_id] = _CSV_TYPES[dtype]
    return pa_csv.read_csv(
        path,
        read_options=pa_csv.ReadOptions(column_names=levels + columns, skip_rows=1),
        convert_options=pa_csv.ConvertOptions(
            column_types=types, strings_can_be_null=True
        ),
    )


def _read_parquet(
    path: str, levels: list[str], table: audformat.Table
) -> pa.Table | None:
    # audformat converts these columns after reading all of them
    converted = {
        column_id
        for column_id, column in table.columns.items()
        if _scheme_dtype(table, column_id)
        in (None, audformat.define.DataType.OBJECT, audformat.define.DataType.TIME)
        or table.db.schemes[column.scheme_id].labels is not None
    }
    schema = pa_parquet.read_schema(path)
    times = set(levels[1:] + _time_columns(table))
    for column_id in converted.union(levels):
        if column_id not in schema.names:
            return None  # audformat raises its KeyError
        if column_id in times and not pa.types.is_duration(
            schema.field(column_id).type
        ):
            return None  # audformat parses or rejects its values
    return pa_parquet.read_table(path, columns=levels)


def _scheme_dtype(table: audformat.Table, column_id: str) -> str | None:
    scheme_id = table.columns[column_id].scheme_id
    return None if scheme_id is None else table.db.schemes[scheme_id].dtype


def _time_columns(table: audformat.Table) -> list[str]:
    # columns audformat converts to timedeltas: time schemes without labels
    return [
        column_id
        for column_id, column in table.columns.items()
        if _scheme_dtype(table, column_id) == audformat.define.DataType.TIME
        and table.db.schemes[column.scheme_id].labels is None
    ]


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
    # checked: a sum beyond int64 raises ArrowInvalid,
    # and audformat then loads the table and raises pandas' error
    for unit in ("days", "hours", "minutes"):
        count = pc.cast(pc.struct_field(parts, unit), pa.int64())
        ns = pc.add_checked(ns, pc.multiply_checked(count, _NS_PER[unit]))
    seconds = pc.cast(pc.struct_field(parts, "seconds"), pa.int64())
    ns = pc.fill_null(pc.add_checked(ns, pc.multiply_checked(seconds, 10**9)), 0)
    result = ns.to_numpy(zero_copy_only=False).astype("timedelta64[ns]")
    unmatched = pc.is_null(parts)
    other = np.asarray(unmatched.to_numpy(zero_copy_only=False))
    if other.any():
        strings = pd.Series(
            values.filter(unmatched).to_pandas(types_mapper=_string_type)
        )
        result[other] = strings.astype("timedelta64[ns]").to_numpy()
    return pd.Series(result)
