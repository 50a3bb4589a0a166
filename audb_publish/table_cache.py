r"""Table cache: the media an unchanged, checked table references.

Validation reads every filewise and segmented table completely,
as :meth:`audformat.Table.load` does,
to check its values against the dtypes of their schemes
and its index for duplicates,
and to learn which media files it references.
For a table file (CSV or PARQUET) whose key is what it was
when the same database root last passed validation
(path, device, inode, size, ``mtime_ns`` and ``ctime_ns``,
as :mod:`audb_publish.checksum_cache` keys media)
and whose definition is the same
(its entry in the header, the schemes of its columns,
and the version of audformat that checked it),
those checks passed then and would pass again.
So validation takes the media files it references from here
instead of reading the table.
A table whose columns use a scheme with labels from a misc table
is always read, since a changed misc table can make its values invalid;
so are misc tables and tables with a pickle file,
which audformat loads itself.
As for media, an entry whose file was modified less than
:data:`~audb_publish.integrity.RACY_NS` before the entry was written
is not trusted (git's racy-file rule).

The cache lives under audb's cache root
in ``audb-publish/tables/<key of the database root>/``,
one PARQUET file per table with its unique media files,
and the key and definition in its metadata.
Files are written atomically, after validation succeeded
(never by a dry run);
a file that cannot be read or does not match is ignored
(with a debug log line) and the table is read.

"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import audb
import audformat
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from audb_publish import integrity
from audb_publish.atomic import write_atomically

logger = logging.getLogger("audb_publish")

FORMAT = "1"
r"""Format of the cache files; a file of another format is ignored."""

FOLDER = os.path.join("audb-publish", "tables")
r"""Folder of the cache files below audb's cache root."""


def definition(db: audformat.Database, table_id: str) -> str | None:
    r"""Digest of what the checks of a table depend on besides its file.

    Args:
        db: database header
        table_id: ID of a table

    Returns:
        digest, or ``None`` if the table must always be read:
        a misc table, or a column with a scheme whose labels
        come from a misc table

    Examples:
        >>> db = audformat.Database("db")
        >>> db["files"] = audformat.Table(audformat.filewise_index(["a.wav"]))
        >>> len(definition(db, "files"))
        64

    """
    if table_id not in db.tables:
        return None
    table = db[table_id]
    schemes = {}
    for column in table.columns.values():
        if column.scheme_id is not None:
            scheme = db.schemes[column.scheme_id]
            if isinstance(scheme.labels, str):
                return None
            schemes[column.scheme_id] = scheme.to_dict()
    text = json.dumps(
        {
            "table": table.to_dict(),
            "schemes": schemes,
            "audformat": audformat.__version__,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _key(stat: os.stat_result) -> tuple[int, int, int, int, int]:
    return (
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ctime_ns,
    )


class TableCache:
    r"""Media referenced by the checked tables of one database root.

    Use :meth:`load` to open it,
    :meth:`lookup` and :meth:`record` while validating,
    and :meth:`save` once validation succeeded.

    Args:
        db_root: database root
        folder: cache folder, ``None`` for a cache that is neither read nor written

    Examples:
        >>> cache = TableCache("mydb", None)
        >>> cache.lookup("files", audeer.touch("db.files.csv"), "x") is None
        True

    """

    def __init__(self, db_root: str, folder: str | None):
        self.db_root = os.path.abspath(db_root)
        self.folder = folder
        self._recorded: dict[str, pa.Table] = {}

    @classmethod
    def off(cls, db_root: str) -> TableCache:
        r"""A cache that knows no table and records nothing.

        Args:
            db_root: database root

        Returns:
            cache

        Examples:
            >>> TableCache.off("mydb").enabled
            False

        """
        return cls(db_root, None)

    @property
    def enabled(self) -> bool:
        r"""``False`` for a cache that knows no table and records nothing."""
        return self.folder is not None

    @classmethod
    def load(cls, db_root: str, cache_root: str | None = None) -> TableCache:
        r"""Open the cache of a database root.

        Args:
            db_root: database root
            cache_root: audb's cache root,
                :func:`audb.default_cache_root` if ``None``

        Returns:
            the cache

        """
        root = os.path.expanduser(cache_root or audb.default_cache_root())
        digest = hashlib.sha256(os.path.abspath(db_root).encode()).hexdigest()[:32]
        return cls(db_root, os.path.join(root, FOLDER, digest))

    def lookup(self, table_id: str, path: str, digest: str) -> pd.Index | None:
        r"""Media files of a table, if its file and definition are unchanged.

        Args:
            table_id: table ID
            path: table file
            digest: its :func:`definition`

        Returns:
            unique media files as an index named ``file``,
            or ``None`` if the table must be read

        """
        if self.folder is None:
            return None
        file = os.path.join(self.folder, f"{table_id}.parquet")
        try:
            if not os.path.exists(file):
                return None
            meta = pq.read_schema(file).metadata or {}
            expected = self._metadata(path, os.stat(path), digest)
            if any(meta.get(k.encode()) != v.encode() for k, v in expected.items()):
                return None
            changed = max(int(meta[b"mtime_ns"]), int(meta[b"ctime_ns"]))
            if changed >= int(meta[b"written_ns"]) - integrity.RACY_NS:
                return None
            files = pq.read_table(file, columns=["file"]).column("file")
            return pd.Index(files.to_numpy(zero_copy_only=False), name="file")
        except Exception as error:  # an unusable file: read the table
            logger.debug("table cache %s ignored: %s", file, error)
            return None

    def record(
        self,
        table_id: str,
        path: str,
        before: os.stat_result,
        digest: str,
        index: pd.Index,
    ) -> None:
        r"""Remember the media of a table that was read, for :meth:`save`.

        Not remembered if the file changed while it was read,
        or was modified less than
        :data:`~audb_publish.integrity.RACY_NS` before.

        Args:
            table_id: table ID
            path: table file
            before: :func:`os.stat` of the file before it was read
            digest: its :func:`definition`
            index: its index as validation read it

        """
        if self.folder is None:
            return
        after = os.stat(path)
        racy = time.time_ns() - integrity.RACY_NS
        if _key(after) != _key(before) or max(_key(after)[3:]) >= racy:
            return
        files = index.get_level_values("file").unique()
        table = pa.table({"file": pa.array(files.astype(object), pa.string())})
        self._recorded[table_id] = table.replace_schema_metadata(
            self._metadata(path, after, digest)
        )

    def save(self) -> None:
        r"""Write what was recorded, each file atomically; never raises."""
        if self.folder is None:
            return
        for table_id, table in self._recorded.items():
            file = os.path.join(self.folder, f"{table_id}.parquet")
            try:
                meta = dict(table.schema.metadata)
                meta[b"written_ns"] = str(time.time_ns()).encode()
                write_atomically(table.replace_schema_metadata(meta), file)
            except Exception as error:
                logger.debug("table cache %s not written: %s", file, error)
        self._recorded.clear()

    def _metadata(self, path: str, stat: os.stat_result, digest: str) -> dict:
        names = ("dev", "ino", "size", "mtime_ns", "ctime_ns")
        key = dict(zip(names, _key(stat), strict=True))
        return {
            "format": FORMAT,
            "db_root": self.db_root,
            "path": os.path.basename(path),
            "definition": digest,
            **{name: str(value) for name, value in key.items()},
        }
