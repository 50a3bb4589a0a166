"""MD5 checksums with large, reused buffers.

:mod:`hashlib` releases the GIL while it hashes a large buffer,
so worker threads hash files in parallel.
Each thread reuses one buffer of :data:`BUFFER_SIZE` bytes,
so memory does not grow with file size.

The checksums equal those audb records:
:func:`audeer.md5` for files
(for folders, :mod:`audb_publish.scan` feeds :func:`update`
in the order of :func:`folder_files`),
and for PARQUET files the hash that audformat stores in their metadata
(:func:`parquet_hash`).

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import hashlib
import os
import threading
from typing import BinaryIO
from typing import Protocol

import audeer
import pyarrow.parquet

from audb_publish import integrity

BUFFER_SIZE = 1 << 20
r"""Bytes read at once."""

HEAD_SIZE = 1 << 16
r"""Bytes of a file's beginning kept for reading its audio header."""

Progress = Callable[[int], None] | None


class Hasher(Protocol):
    r"""What :func:`update` feeds, e.g. a :func:`hashlib.md5` object."""

    def update(self, data: memoryview, /) -> None:  # noqa: D102
        ...


_local = threading.local()


def buffer() -> memoryview:
    r"""Reusable read buffer of the calling thread.

    Returns:
        buffer of :data:`BUFFER_SIZE` bytes

    Examples:
        >>> len(buffer()) == BUFFER_SIZE
        True

    """
    if not hasattr(_local, "buffer"):
        _local.buffer = memoryview(bytearray(BUFFER_SIZE))
    return _local.buffer


def md5(path: str, *, progress: Progress = None) -> str:
    r"""MD5 checksum of a file.

    Args:
        path: file path
        progress: called with the number of bytes after each read

    Returns:
        hex digest, equal to :func:`audeer.md5`

    Raises:
        FileNotFoundError: if ``path`` does not exist

    Examples:
        >>> md5(audeer.touch("empty.txt"))
        'd41d8cd98f00b204e9800998ecf8427e'

    """
    return md5_head(path, progress=progress)[0]


def md5_head(
    path: str | BinaryIO, *, progress: Progress = None
) -> tuple[str, bytes, int]:
    r"""MD5 checksum of a file, its first bytes and its size, in one read.

    Args:
        path: file path,
            or a file opened unbuffered for binary reading,
            which is read from its current position and not closed
        progress: called with the number of bytes after each read

    Returns:
        hex digest,
        the first :data:`HEAD_SIZE` bytes (or the whole file if smaller),
        and the size in bytes

    Raises:
        FileNotFoundError: if ``path`` does not exist

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> md5_head("a.txt")
        ('900150983cd24fb0d6963f7d28e17f72', b'abc', 3)

    """
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb", buffering=0) as fp:
            return md5_head(fp, progress=progress)
    hasher = hashlib.md5()
    view = buffer()
    head = b""
    size = 0
    while n := path.readinto(view):
        if size < HEAD_SIZE:
            head += bytes(view[: min(n, HEAD_SIZE - size)])
        hasher.update(view[:n])
        size += n
        if progress is not None:
            progress(n)
    return hasher.hexdigest(), head, size


def update(
    fp: BinaryIO, hashers: Sequence[Hasher], *, progress: Progress = None
) -> int:
    r"""Read an open file to its end into hashers.

    Args:
        fp: file opened unbuffered for binary reading
        hashers: objects with an ``update()`` method, e.g. :func:`hashlib.md5`
        progress: called with the number of bytes after each read

    Returns:
        number of bytes read

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> hasher = hashlib.md5()
        >>> with open("a.txt", "rb", buffering=0) as fp:
        ...     update(fp, [hasher])
        3
        >>> hasher.hexdigest()
        '900150983cd24fb0d6963f7d28e17f72'

    """
    view = buffer()
    size = 0
    while n := fp.readinto(view):
        for hasher in hashers:
            hasher.update(view[:n])
        size += n
        if progress is not None:
            progress(n)
    return size


def copy_md5(src: str, dst: str, *, guard: integrity.Guard | None = None) -> str:
    r"""Copy a file and return its MD5 checksum, reading it once.

    Args:
        src: source file
        dst: destination file, overwritten if it exists
        guard: if given,
            ``src`` is checked after the copy
            not to have changed since its scan

    Returns:
        hex digest of the copied bytes

    Raises:
        FileNotFoundError: if ``src`` does not exist,
            named by ``guard`` if given
        audb_publish.integrity.FileChangedError: if ``src``
            changed since its scan

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> copy_md5("a.txt", "b.txt")
        '900150983cd24fb0d6963f7d28e17f72'

    """
    hasher = hashlib.md5()
    view = buffer()
    size = 0
    with integrity.open_guarded(src, guard) as fin, open(dst, "wb") as fout:
        while n := fin.readinto(view):
            hasher.update(view[:n])
            fout.write(view[:n])
            size += n
        if guard is not None:
            guard.check(fin.fileno(), size, hasher.hexdigest())
    return hasher.hexdigest()


def folder_files(path: str) -> list[str]:
    r"""Files below a folder in the order :func:`audeer.md5` hashes them.

    Args:
        path: folder path

    Returns:
        paths relative to ``path``, hidden files included, sorted

    Examples:
        >>> folder_files(audeer.mkdir("folder"))
        []

    """
    return audeer.list_file_names(path, recursive=True, hidden=True, basenames=True)


def parquet_hash(source: str | BinaryIO) -> str | None:
    r"""Hash that audformat stores in the metadata of a PARQUET file.

    Args:
        source: file path or file opened for binary reading

    Returns:
        the hash, ``None`` if there is none

    Examples:
        >>> import pyarrow
        >>> table = pyarrow.table({"a": [1]}).replace_schema_metadata({"hash": "x"})
        >>> pyarrow.parquet.write_table(table, "t.parquet")
        >>> parquet_hash("t.parquet")
        'x'

    """
    metadata = pyarrow.parquet.read_schema(source).metadata or {}
    if b"hash" not in metadata:
        return None
    return metadata[b"hash"].decode()
