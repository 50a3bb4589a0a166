"""Write a file so that no reader ever sees it half written."""

from __future__ import annotations

import os
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq


def write_atomically(table: pa.Table, path: str) -> None:
    r"""Write a PARQUET file to a temporary file and rename it into place.

    Concurrent writers never leave a broken file; the last one wins.

    Args:
        table: content
        path: destination, its folder is created

    Examples:
        >>> write_atomically(pa.table({"a": [1]}), "cache/a.parquet")
        >>> pq.read_table("cache/a.parquet").num_rows
        1

    """
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fp:
            pq.write_table(table, fp)
        os.replace(tmp, path)
    except BaseException:
        os.remove(tmp)
        raise
