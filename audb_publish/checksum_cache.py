r"""Checksum cache: what an unchanged media file was found to be last time.

As git's index and dvc-data's state do,
the cache keys each media file of a database root by
its path, device, inode, size, ``mtime_ns`` and ``ctime_ns``,
and records its checksum and the audio properties
the dependency table records.
A table file or an attachment (a file or a folder)
is keyed by the same fields of each of its files,
and the list of its files,
and records the checksum audb records for it.
(A table file listed as media is cached as media only.)
A scan that finds the same key takes the recorded values
instead of reading the files;
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
from collections.abc import Mapping
from collections.abc import Sequence
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
from audb_publish.scan import PathScan

logger = logging.getLogger("audb_publish")

FORMAT = "2"
r"""Format of the cache file; a file of another format is ignored."""

FOLDER = os.path.join("audb-publish", "checksums")
r"""Folder of the cache files below audb's cache root."""

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
        ("members", pa.string()),
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
    r"""Recorded checksums of the media, tables and attachments of a database root.

    Use :meth:`load` to read it,
    :meth:`lookup` in the scan jobs for media files,
    :meth:`lookup_path` for table files and attachments,
    :meth:`record` and :meth:`record_path`
    in the calling thread for every file scanned,
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
        self._paths: dict[str, tuple[str, str]] = {}
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
            cache._entries, cache._paths = {}, {}
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
        for row in rows:
            # git's racy rule: a file changed that close to the writing
            # may change again without changing its timestamps
            # (a path's row holds the latest times of its files)
            if max(row[4], row[5]) >= trusted:
                continue
            if row[-1] is None:
                self._entries[row[0]] = row[1:-1]
            else:
                self._paths[row[0]] = (row[-1], row[6])

    def __len__(self) -> int:
        return len(self._entries) + len(self._paths)

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
                None,
            )

    def lookup_path(self, path: str, files: Sequence[str]) -> PathScan | None:
        r"""Recorded checksum of a table file or an attachment, if unchanged.

        Args:
            path: table file, attached file or folder,
                relative to the database root
            files: its files relative to the database root,
                as listed now

        Returns:
            scan result with the recorded checksum
            and signatures from :func:`os.stat` of ``files``,
            or ``None`` if they must be read:
            if the cache does not know ``path``,
            or a file was added, removed or changed since

        Raises:
            FileNotFoundError: if a file of ``files`` is gone

        """
        entry = self._paths.get(path)
        if entry is None:
            return None
        signatures = {}
        for file in files:
            stat = os.stat(os.path.join(self.db_root, file))
            signatures[file] = integrity.Signature(
                stat.st_dev,
                stat.st_ino,
                stat.st_size,
                stat.st_mtime_ns,
                stat.st_ctime_ns,
            )
        members, checksum = entry
        if _members(signatures) != members:
            return None
        return PathScan(checksum, signatures)

    def record_path(self, path: str, result: PathScan) -> None:
        r"""Remember the scan of a table file or an attachment.

        It is not remembered if one of its files is racy.

        Args:
            path: table file, attached file or folder,
                relative to the database root
            result: its scan, with the signature of every file

        """
        signatures = result.signatures.values()
        if any(signature.racy for signature in signatures):
            return
        self._recorded[path] = (
            0,
            0,
            sum(signature.size for signature in signatures),
            max(signature.mtime_ns for signature in signatures),
            max(signature.ctime_ns for signature in signatures),
            result.checksum,
            0,
            0,
            0.0,
            0,
            _members(result.signatures),
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
        for i, name in enumerate(_SCHEMA.names[1:]):
            columns[name] = [self._recorded[file][i] for file in files]
        metadata = {
            "format": FORMAT,
            "db_root": self.db_root,
            "written_ns": str(time.time_ns()),
        }
        table = pa.Table.from_pydict(columns, schema=_SCHEMA.with_metadata(metadata))
        write_atomically(table, self.path)


def _members(signatures: Mapping[str, integrity.Signature]) -> str:
    r"""Digest of the files of a path and of their keys."""
    hasher = hashlib.md5()
    for file in sorted(signatures):
        s = signatures[file]
        key = (file, s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns)
        hasher.update(repr(key).encode())
    return hasher.hexdigest()


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
