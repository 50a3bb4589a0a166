r"""Checksum cache: what an unchanged media file was found to be last time.

As git's index and dvc-data's state do,
the cache keys each media file and table file of a database root by
its path, device, inode, size, ``mtime_ns`` and ``ctime_ns``,
and records its checksum and, for media, the audio properties
the dependency table records.
(A table file listed as media is cached as media only.)
A scan that finds the same key takes the recorded values
instead of reading the file;
any other file is read as before.
So the cache decides only what must be read:
the values it gives are those a read gave for the same key,
and the dependency table is the same with or without it.

A change is detected when it changes any part of the key.
Writing a file changes its ``ctime_ns``,
and no tool can set ``ctime_ns`` back,
so a file rewritten with its size and ``mtime_ns`` restored
(as ``os.utime`` or ``cp -p`` do) is still detected;
only a clock turned back, then content written and size and mtime restored,
could hide a change.
A file modified less than :data:`~audb_publish.integrity.RACY_NS`
before the cache was written
may change again within the timestamp's resolution
without changing its key (git's racy-file rule),
so its entry is not trusted and the file is read next time.

The cache lives under audb's cache root,
in ``audb-publish/checksums/``,
one PARQUET file per absolute database root,
never inside the database root.
It is written to a temporary file and renamed into place,
so concurrent publishes never leave a broken file;
the last writer wins.
A cache that cannot be read, is truncated,
was written by another format or for another database root
is ignored (with a debug log line) and rebuilt.
Remove the folder to clear it.

"""

from __future__ import annotations

from collections.abc import Iterable
import hashlib
import logging
import os
import tempfile
import time

import audb
import pyarrow as pa
import pyarrow.parquet as pq

from audb_publish import integrity
from audb_publish.scan import MediaScan

logger = logging.getLogger("audb_publish")

FORMAT = "1"
r"""Format of the cache file; a file of another format is ignored."""

FOLDER = os.path.join("audb-publish", "checksums")
r"""Folder of the cache files below audb's cache root."""

_KEY = ("dev", "ino", "size", "mtime_ns", "ctime_ns")
_VALUES = ("checksum", "bit_depth", "channels", "duration", "sampling_rate")
_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("dev", pa.uint64()),
        ("ino", pa.uint64()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("ctime_ns", pa.int64()),
        ("checksum", pa.string()),
        ("bit_depth", pa.int64()),
        ("channels", pa.int64()),
        ("duration", pa.float64()),
        ("sampling_rate", pa.int64()),
    ]
)


def cache_file(db_root: str, cache_root: str | None = None) -> str:
    r"""Path of the cache file of a database root.

    Args:
        db_root: database root
        cache_root: audb's cache root,
            :func:`audb.default_cache_root` if ``None``

    Returns:
        path of the cache file

    Examples:
        >>> path = cache_file("/data/mydb", "/cache")
        >>> path.startswith("/cache/audb-publish/checksums/")
        True

    """
    root = cache_root or audb.default_cache_root()
    key = hashlib.sha256(os.path.abspath(db_root).encode()).hexdigest()[:32]
    return os.path.join(os.path.expanduser(root), FOLDER, f"{key}.parquet")


class ChecksumCache:
    r"""Recorded checksums and audio properties of the media of one database root.

    Use :meth:`load` to read it,
    :meth:`lookup` in the scan jobs,
    :meth:`record` in the calling thread for every media file scanned,
    and :meth:`save` to write what was recorded.

    Args:
        db_root: database root
        path: cache file, ``None`` for a cache that is neither read nor written

    Examples:
        >>> cache = ChecksumCache("mydb", None)
        >>> cache.lookup("a.wav", os.stat(audeer.touch("a.wav"))) is None
        True

    """

    def __init__(self, db_root: str, path: str | None):
        self.db_root = os.path.abspath(db_root)
        self.path = path
        self._entries: dict[str, tuple] = {}
        self._recorded: dict[str, tuple] = {}

    @classmethod
    def load(cls, db_root: str, cache_root: str | None = None) -> ChecksumCache:
        r"""Read the cache of a database root; never raises.

        Entries of files modified less than
        :data:`~audb_publish.integrity.RACY_NS`
        before the cache was written are dropped.

        Args:
            db_root: database root
            cache_root: audb's cache root,
                :func:`audb.default_cache_root` if ``None``

        Returns:
            the cache, empty if there is none or it cannot be used

        """
        cache = cls(db_root, cache_file(db_root, cache_root))
        try:
            cache._read()
        except Exception as error:  # any unusable file is rebuilt
            logger.debug("checksum cache %s ignored: %s", cache.path, error)
            cache._entries = {}
        return cache

    def _read(self) -> None:
        if not os.path.exists(self.path):
            return
        table = pq.read_table(self.path)
        meta = table.schema.metadata or {}
        if meta.get(b"format") != FORMAT.encode():
            raise ValueError(f"format {meta.get(b'format')!r}, not {FORMAT!r}")
        if meta.get(b"db_root") != self.db_root.encode():
            raise ValueError(f"written for {meta.get(b'db_root')!r}")
        written = int(meta[b"written_ns"])
        columns = table.select(_SCHEMA.names).to_pydict()
        trusted = written - integrity.RACY_NS
        rows = zip(*(columns[name] for name in _SCHEMA.names), strict=True)
        self._entries = {
            row[0]: row[1:]
            for row in rows
            # git's racy rule: a file changed that close to the writing
            # may change again without changing its timestamps
            if max(row[4], row[5]) < trusted
        }

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, file: str, stat: os.stat_result) -> MediaScan | None:
        r"""Recorded values of a file, if its key is unchanged.

        Args:
            file: path relative to the database root
            stat: :func:`os.stat` of the file now

        Returns:
            scan result from the recorded values,
            with a signature from ``stat``,
            or ``None`` if the file must be read

        """
        entry = self._entries.get(file)
        if entry is None:
            return None
        key = (stat.st_dev, stat.st_ino, stat.st_size)
        key += (stat.st_mtime_ns, stat.st_ctime_ns)
        if entry[:5] != key:
            return None
        signature = integrity.Signature(*key)
        checksum, bit_depth, channels, duration, sampling_rate = entry[5:]
        return MediaScan(
            file,
            checksum,
            bit_depth,
            channels,
            duration,
            sampling_rate,
            signature,
            cached=True,
        )

    def record(self, results: Iterable[MediaScan]) -> None:
        r"""Remember scan results, to be written by :meth:`save`.

        Results of racy files are not remembered:
        they may change again without changing their key.

        Args:
            results: scan results with signatures

        """
        for result in results:
            signature = result.signature
            if signature is None or signature.racy:
                continue
            self._recorded[result.file] = (
                signature.dev,
                signature.ino,
                signature.size,
                signature.mtime_ns,
                signature.ctime_ns,
                result.checksum,
                result.bit_depth,
                result.channels,
                result.duration,
                result.sampling_rate,
            )

    def save(self) -> None:
        r"""Write the recorded entries atomically; never raises.

        Only files recorded since the cache was loaded are kept,
        so files no longer in the database drop out.

        """
        if self.path is None:
            return
        try:
            self._write()
        except Exception as error:
            logger.debug("checksum cache %s not written: %s", self.path, error)

    def _write(self) -> None:
        files = sorted(self._recorded)
        columns = {"file": files}
        for i, name in enumerate(_KEY + _VALUES):
            columns[name] = [self._recorded[file][i] for file in files]
        metadata = {
            "format": FORMAT,
            "db_root": self.db_root,
            "written_ns": str(time.time_ns()),
        }
        table = pa.Table.from_pydict(columns, schema=_SCHEMA.with_metadata(metadata))
        write_atomically(table, self.path)


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
