"""MD5 checksums with large, reused buffers.

:mod:`hashlib` releases the GIL while it hashes a large buffer,
so worker threads hash files in parallel.
Each thread reuses one buffer of :data:`BUFFER_SIZE` bytes,
so memory does not grow with file size.

The checksums equal those audb records:
:func:`audeer.md5` for files and folders,
and for PARQUET files the hash that audformat stores in their metadata.

"""

from __future__ import annotations

from collections.abc import Callable
import hashlib
import os
import threading

import audeer
import pyarrow.parquet

BUFFER_SIZE = 1 << 20
r"""Bytes read at once."""

HEAD_SIZE = 1 << 16
r"""Bytes of a file's beginning kept for reading its audio header."""

Progress = Callable[[int], None] | None

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


def md5_head(path: str, *, progress: Progress = None) -> tuple[str, bytes, int]:
    r"""MD5 checksum of a file, its first bytes and its size, in one read.

    Args:
        path: file path
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
    hasher = hashlib.md5()
    view = buffer()
    head = b""
    size = 0
    with open(path, "rb", buffering=0) as fp:
        while n := fp.readinto(view):
            if size < HEAD_SIZE:
                head += bytes(view[: min(n, HEAD_SIZE - size)])
            hasher.update(view[:n])
            size += n
            if progress is not None:
                progress(n)
    return hasher.hexdigest(), head, size


def copy_md5(src: str, dst: str) -> str:
    r"""Copy a file and return its MD5 checksum, reading it once.

    Args:
        src: source file
        dst: destination file, overwritten if it exists

    Returns:
        hex digest of the copied bytes

    Raises:
        FileNotFoundError: if ``src`` does not exist

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> copy_md5("a.txt", "b.txt")
        '900150983cd24fb0d6963f7d28e17f72'

    """
    hasher = hashlib.md5()
    view = buffer()
    with open(src, "rb", buffering=0) as fin, open(dst, "wb") as fout:
        while n := fin.readinto(view):
            hasher.update(view[:n])
            fout.write(view[:n])
    return hasher.hexdigest()


def folder_md5(path: str, *, progress: Progress = None) -> str:
    r"""MD5 checksum of a folder, as :func:`audeer.md5` computes it.

    Every file below ``path``, hidden ones included, in sorted order,
    contributes its relative path with ``/`` separators,
    followed by its content.

    Args:
        path: folder path
        progress: called with the number of bytes after each read

    Returns:
        hex digest

    Examples:
        >>> folder = audeer.mkdir("folder")
        >>> folder_md5(folder) == audeer.md5(folder)
        True

    """
    hasher = hashlib.md5()
    view = buffer()
    files = audeer.list_file_names(path, recursive=True, hidden=True, basenames=True)
    for file in files:
        hasher.update(file.replace(os.path.sep, "/").encode())
        with open(os.path.join(path, file), "rb", buffering=0) as fp:
            while n := fp.readinto(view):
                hasher.update(view[:n])
                if progress is not None:
                    progress(n)
    return hasher.hexdigest()


def checksum(path: str, *, progress: Progress = None) -> str:
    r"""Checksum audb records for a table or attachment.

    A PARQUET file with a ``b"hash"`` entry in its metadata
    is represented by that hash,
    as audformat writes a deterministic one there.
    A folder is hashed with :func:`folder_md5`,
    any other file with :func:`md5`.

    Args:
        path: file or folder
        progress: called with the number of bytes after each read

    Returns:
        checksum

    Raises:
        FileNotFoundError: if ``path`` does not exist

    Examples:
        >>> checksum(audeer.touch("empty.txt"))
        'd41d8cd98f00b204e9800998ecf8427e'

    """
    if os.path.isdir(path):
        return folder_md5(path, progress=progress)
    if path.endswith(".parquet"):
        metadata = pyarrow.parquet.read_schema(path).metadata or {}
        if b"hash" in metadata:
            return metadata[b"hash"].decode()
    return md5(path, progress=progress)
