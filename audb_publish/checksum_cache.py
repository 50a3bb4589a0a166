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
A file whose key is the recorded one is not read:
its recorded values are taken instead;
any other file is read as before.
So the cache decides only what must be read:
the values it gives are those a read gave for the same key,
and the dependency table is the same with or without it.
The keys of media files come from the listing
that validation makes of the database root anyway,
so an unchanged media file costs no system call beyond it,
and they are compared column by column in Arrow,
so that a million files take about two seconds.
The files of tables and attachments are looked up with :func:`os.stat`.
A file that changes after it was looked up
is caught when it is packed, as for a file that was read,
see :mod:`audb_publish.integrity`.

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

After each save, :func:`prune` removes
the checksum and table caches (see :mod:`audb_publish.table_cache`)
of database roots that no longer exist
(a temporary folder, a deleted checkout;
a root on a drive that is not mounted counts as gone,
which costs only a full read next time),
and keeps both together below :data:`MAX_BYTES`
by removing those of the roots published least recently.

"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
import itertools
import logging
import operator
import os
import shutil
import time

import audb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from audb_publish import integrity
from audb_publish.atomic import write_atomically
from audb_publish.integrity import KEY_SCHEMA
from audb_publish.scan import MediaScan
from audb_publish.scan import PathScan

logger = logging.getLogger("audb_publish")

FORMAT = "2"
r"""Format of the cache file; a file of another format is ignored."""

FOLDER = os.path.join("audb-publish", "checksums")
r"""Folder of the cache files below audb's cache root."""

MAX_BYTES = 1 << 30
r"""Most bytes the checksum and table caches take together (1 GiB).

A synthetic cache of a million media files took 71 MB.
:func:`prune` removes the caches of the roots published least recently
until they fit; the cache just written is always kept.
"""

_KEY = KEY_SCHEMA.names[1:]
_VALUES = ("checksum", "bit_depth", "channels", "duration", "sampling_rate")
_SCHEMA = pa.schema(
    [
        *KEY_SCHEMA,
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
    :meth:`split` for the media files,
    :meth:`lookup_path` for table files and attachments,
    :meth:`record` and :meth:`record_path`
    in the calling thread for every file scanned,
    and :meth:`save` to write what was recorded
    and what :meth:`split` found.

    Args:
        db_root: database root
        path: cache file, ``None`` for a cache that is neither read nor written

    Examples:
        >>> cache = ChecksumCache("mydb", None)
        >>> keys = pa.table({"file": ["a.wav"], "dev": [1], "ino": [2], "size": [3]})
        >>> keys = keys.append_column("mtime_ns", pa.array([4]))
        >>> keys = keys.append_column("ctime_ns", pa.array([5]))
        >>> known, files, sizes = cache.split(["a.wav"], [3], keys.cast(KEY_SCHEMA))
        >>> known.files, files
        ([], ['a.wav'])

    """

    def __init__(self, db_root: str, path: str | None):
        self.db_root = os.path.abspath(db_root)
        self.path = path
        self._media = _SCHEMA.empty_table()
        self._paths: dict[str, tuple[str, str]] = {}
        self._recorded: dict[str, tuple] = {}
        self._kept: list[pa.Array] = []

    @classmethod
    def off(cls, db_root: str) -> ChecksumCache:
        r"""A cache that knows nothing, records nothing and writes nothing.

        Args:
            db_root: database root

        Returns:
            cache

        Examples:
            >>> cache = ChecksumCache.off("mydb")
            >>> cache.split(["a.wav"], [3], KEY_SCHEMA.empty_table())[1:]
            (['a.wav'], [3])

        """
        return cls(db_root, None)

    @property
    def enabled(self) -> bool:
        r"""``False`` for a cache that knows, records and writes nothing."""
        return self.path is not None

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
            cache = cls(db_root, cache.path)
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
        table = table.select(_SCHEMA.names).cast(_SCHEMA)
        # git's racy rule: a file changed that close to the writing
        # may change again without changing its timestamps
        # (a path's row holds the latest times of its files)
        changed = pc.max_element_wise(table["mtime_ns"], table["ctime_ns"])
        table = table.filter(pc.less(changed, written - integrity.RACY_NS))
        paths = table.filter(pc.is_valid(table["members"]))
        columns = [paths[name].to_pylist() for name in ("file", "members", "checksum")]
        self._paths = {
            file: (members, checksum)
            for file, members, checksum in zip(*columns, strict=True)
        }
        self._media = table.filter(pc.is_null(table["members"])).combine_chunks()

    def __len__(self) -> int:
        return self._media.num_rows + len(self._paths)

    def split(
        self,
        files: Sequence[str],
        sizes: Sequence[int],
        keys: pa.Table,
    ) -> tuple[Known, list[str], list[int]]:
        r"""Split media files into those the cache knows and those to read.

        The cache knows a file if its key is the one recorded.
        The files it knows are kept by :meth:`save`.

        Args:
            files: media files relative to the database root
            sizes: their sizes
            keys: path, device, inode, size, ``mtime_ns`` and ``ctime_ns``
                of files now, with the columns of :data:`KEY_SCHEMA`

        Returns:
            the files the cache knows, with their recorded values,
            and the files to read and their sizes, in the order of ``files``

        """
        if self.path is None:  # knows nothing
            return Known([], pa.array([], pa.int64()), self._media), files, sizes
        # compared column by column in Arrow:
        # a Python loop over a million files takes seconds
        names = pa.array(files, pa.string())
        rows = pc.index_in(names, value_set=self._media["file"])
        now = pc.index_in(names, value_set=keys["file"])
        hits = pc.and_(pc.is_valid(rows), pc.is_valid(now))
        for name in _KEY:
            recorded = self._media[name].take(rows)
            hits = pc.and_(hits, pc.equal(recorded, keys[name].take(now)))
        if isinstance(hits, pa.ChunkedArray):  # from the cache's columns
            hits = hits.combine_chunks()
        hits = hits.fill_null(False)
        rows = rows.filter(hits)
        self._kept.append(rows)
        hits = hits.to_pylist()
        misses = list(map(operator.not_, hits))
        known = Known(list(itertools.compress(files, hits)), rows, self._media)
        to_read = list(itertools.compress(files, misses))
        return known, to_read, list(itertools.compress(sizes, misses))

    def record(self, results: Iterable[MediaScan]) -> None:
        r"""Remember scan results of media files, to be written by :meth:`save`.

        Results of racy files are not remembered:
        they may change again without changing their key.

        Args:
            results: scan results with signatures

        """
        if self.path is None:
            return
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
        signatures = {
            file: integrity.signature_of(os.stat(os.path.join(self.db_root, file)))
            for file in files
        }
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
        if self.path is None:
            return
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
        r"""Write the recorded and the known entries atomically; never raises.

        Only files recorded or found by :meth:`split`
        since the cache was loaded are kept,
        so files no longer in the database drop out.

        """
        if self.path is None:
            return
        try:
            self._write()
        except Exception as error:
            logger.debug("checksum cache %s not written: %s", self.path, error)
        base = os.path.dirname(os.path.dirname(self.path))
        prune(base, keep=self.db_root)

    def _write(self) -> None:
        files = sorted(self._recorded)
        columns = {"file": files}
        for i, name in enumerate(_SCHEMA.names[1:]):
            columns[name] = [self._recorded[file][i] for file in files]
        recorded = pa.Table.from_pydict(columns, schema=_SCHEMA)
        kept = self._media.take(
            pa.concat_arrays([pa.array([], pa.int32())] + self._kept)
        )
        kept = kept.filter(pc.invert(pc.is_in(kept["file"], recorded["file"])))
        metadata = {
            "format": FORMAT,
            "db_root": self.db_root,
            "written_ns": str(time.time_ns()),
        }
        table = pa.concat_tables([kept, recorded]).replace_schema_metadata(metadata)
        write_atomically(table, self.path)


class Known:
    r"""Media files the checksum cache knows, and their recorded values.

    It answers by file name;
    the rows of its table stay inside.

    Args:
        files: media files relative to the database root
        rows: row of each file in ``table``
        table: recorded entries, with the columns of the cache file

    """

    def __init__(self, files: list[str], rows: pa.Array, table: pa.Table):
        self.files = files
        self._rows = dict(zip(files, rows.to_pylist(), strict=True))
        self.checksums = table["checksum"].take(rows).to_pylist()
        r"""Recorded checksum of each file."""
        self.nbytes = pc.sum(table["size"].take(rows)).as_py() or 0
        r"""Bytes of the files."""
        self._table = table

    def signature(self, file: str) -> integrity.Signature:
        r"""Signature of a file, from its recorded key.

        Args:
            file: one of :attr:`files`

        Returns:
            signature, as a scan would have taken it

        """
        row = self._rows[file]
        return integrity.Signature(*(self._table[name][row].as_py() for name in _KEY))

    def scan(self, file: str) -> MediaScan:
        r"""Scan result of a file, from its recorded values.

        Args:
            file: one of :attr:`files`

        Returns:
            scan result

        """
        row = self._rows[file]
        values = [self._table[name][row].as_py() for name in _VALUES]
        return MediaScan(file, *values, self.signature(file))


def _members(signatures: Mapping[str, integrity.Signature]) -> str:
    r"""Digest of the files of a path and of their keys."""
    hasher = hashlib.md5()
    for file in sorted(signatures):
        s = signatures[file]
        key = (file, s.dev, s.ino, s.size, s.mtime_ns, s.ctime_ns)
        hasher.update(repr(key).encode())
    return hasher.hexdigest()


def prune(
    base: str, keep: str | None = None, max_bytes: int | None = None
) -> list[str]:
    r"""Remove caches of gone database roots, and the oldest beyond a size.

    The checksum cache of a database root is one file,
    its table cache one folder
    (see :mod:`audb_publish.table_cache`);
    both name their root in their metadata.
    Those of roots that are no longer a folder are removed,
    as are unreadable ones,
    then those of the least recently written roots,
    until the rest take at most ``max_bytes``.
    Never raises.

    Args:
        base: the ``audb-publish`` folder below audb's cache root
        keep: database root whose caches are never removed
        max_bytes: size bound, :data:`MAX_BYTES` if ``None``

    Returns:
        removed files and folders

    Examples:
        >>> cache = ChecksumCache("gone", "cache/audb-publish/checksums/x.parquet")
        >>> cache.save()
        >>> prune("cache/audb-publish")
        ['cache/audb-publish/checksums/x.parquet']

    """
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    keep = None if keep is None else os.path.abspath(keep)
    removed = []
    entries = []  # (written, bytes, path, db_root) of each root's caches
    for path in _cache_paths(base):
        try:
            db_root, written, nbytes = _describe(path)
        except Exception as error:  # unreadable, or removed meanwhile
            logger.debug("cache %s removed: %s", path, error)
            db_root, written, nbytes = None, 0, 0
        if db_root != keep and (db_root is None or not os.path.isdir(db_root)):
            removed += _remove(path)
        else:
            entries.append((db_root == keep, written, nbytes, path))
    total = sum(entry[2] for entry in entries)
    for kept, _, nbytes, path in sorted(entries):
        if total <= max_bytes or kept:
            break
        removed += _remove(path)
        total -= nbytes
    return removed


def _cache_paths(base: str) -> list[str]:
    r"""Checksum cache files and table cache folders below ``base``."""
    paths = []
    for folder, kind in [("checksums", "file"), ("tables", "folder")]:
        root = os.path.join(base, folder)
        if not os.path.isdir(root):
            continue
        for entry in os.scandir(root):
            if entry.name.startswith("."):  # a file being written
                continue
            if (kind == "folder") == entry.is_dir(follow_symlinks=False):
                paths.append(entry.path)
    return paths


def _describe(path: str) -> tuple[str | None, int, int]:
    r"""Database root, time of the last write and bytes of a cache."""
    files = [path]
    if os.path.isdir(path):
        files = [e.path for e in os.scandir(path) if e.name.endswith(".parquet")]
    db_root, written, nbytes = None, 0, 0
    for file in files:
        stat = os.stat(file)
        written = max(written, stat.st_mtime_ns)
        nbytes += stat.st_size
        root = (pq.read_schema(file).metadata or {}).get(b"db_root")
        db_root = root.decode() if root is not None else db_root
    return db_root, written, nbytes


def _remove(path: str) -> list[str]:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    except OSError as error:  # removed by another publish meanwhile
        logger.debug("cache %s not removed: %s", path, error)
        return []
    return [path]
