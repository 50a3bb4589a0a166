"""Scan stage: checksums and audio properties, computed in worker jobs.

Every job here is a pure function of files on disk:
it *returns* its results and never touches the dependency table.
Media files are scanned in batches,
one job per batch,
because one job per small file costs more in scheduling
than hashing the file does.
Each media file is opened once:
the checksum and the audio header come from the same read.
Every file read gets a :class:`~audb_publish.integrity.Signature`,
taken before and checked after the read,
so that the pack can tell if the file changed since
(see :mod:`audb_publish.integrity`).
:func:`audb_publish.pipeline.scan_all`, run by the calling thread,
submits the jobs and hands their results to the plan.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import hashlib
import os
import posixpath
import typing

from audb_publish import hashing
from audb_publish import integrity
from audb_publish import probe

T = typing.TypeVar("T")

BATCH_FILES = 256
r"""Largest number of media files in one scan job."""

BATCH_BYTES = 64 << 20
r"""Largest number of bytes in one scan job, unless it holds only one file."""


@dataclasses.dataclass(frozen=True)
class MediaScan:
    r"""Checksum and audio properties of one media file.

    Args:
        file: path relative to the database root
        checksum: MD5 checksum
        bit_depth: bit depth, 0 if unknown
        channels: number of channels, 0 if unknown
        duration: duration in seconds, 0.0 if unknown
        sampling_rate: sampling rate in Hz, 0 if unknown
        signature: signature of the file when it was scanned,
            or its key recorded in the checksum cache

    """

    file: str
    checksum: str
    bit_depth: int
    channels: int
    duration: float
    sampling_rate: int
    signature: integrity.Signature | None = None


@dataclasses.dataclass(frozen=True)
class PathScan:
    r"""Checksum of a table file or an attachment.

    Args:
        checksum: checksum as audb records it,
            as audb records it
        signatures: signature of every file read,
            by its path relative to the database root

    """

    checksum: str
    signatures: Mapping[str, integrity.Signature]


def scan_media(
    root: str,
    files: Sequence[str],
    progress: Callable[[int], None],
) -> list[MediaScan]:
    r"""Scan media files.

    Args:
        root: database root
        files: media files relative to ``root``
        progress: called with the number of bytes after each read;
            it may raise to stop the job

    Returns:
        one result per file, in the order of ``files``

    Examples:
        >>> import audeer
        >>> file = audeer.touch("a.txt")
        >>> scan_media(".", ["a.txt"], lambda n: None)[0].checksum
        'd41d8cd98f00b204e9800998ecf8427e'

    """
    return [scan_media_file(root, file, progress) for file in files]


def scan_media_file(
    root: str,
    file: str,
    progress: Callable[[int], None],
) -> MediaScan:
    r"""Scan one media file with one open.

    Args:
        root: database root
        file: media file relative to ``root``
        progress: called with the number of bytes after each read

    Returns:
        checksum and audio properties

    Raises:
        RuntimeError: if the file needs sox or mediainfo
            and they are not installed
        audb_publish.integrity.FileChangedError: if the file changed
            while it was read

    """
    path = os.path.join(root, file)
    with open(path, "rb", buffering=0) as fp:
        signature = integrity.take(fp.fileno())
        checksum, head, size = hashing.md5_head(fp, progress=progress)
        signature = integrity.confirm(
            fp.fileno(), signature, "media", file, size, checksum
        )
    bit_depth, channels, duration, sampling_rate = probe.properties(path, head, size)
    return MediaScan(
        file, checksum, bit_depth, channels, duration, sampling_rate, signature
    )


def scan_path(
    root: str, path: str, kind: str, progress: Callable[[int], None]
) -> PathScan:
    r"""Checksum of a table file or an attachment, as audb records it.

    Args:
        root: database root
        path: file or folder relative to ``root``
        kind: ``"table"`` or ``"attachment"``, for error messages
        progress: called with the number of bytes after each read

    Returns:
        checksum as audb records it
        (the hash in a PARQUET file's metadata, else :func:`audeer.md5`),
        and signatures of the files read

    Raises:
        audb_publish.integrity.FileChangedError: if a file changed
            while it was read

    Examples:
        >>> import audeer
        >>> file = audeer.touch("db.table.csv")
        >>> result = scan_path(".", "db.table.csv", "table", lambda n: None)
        >>> result.checksum, list(result.signatures)
        ('d41d8cd98f00b204e9800998ecf8427e', ['db.table.csv'])

    """
    folder = os.path.join(root, path)
    if os.path.isdir(folder):
        return _scan_folder(root, path, kind, progress)
    checksum, signature = _scan_file(root, path, kind, progress)
    return PathScan(checksum, {posixpath.normpath(path): signature})


def _scan_folder(
    root: str, path: str, kind: str, progress: Callable[[int], None]
) -> PathScan:
    r"""Checksum of a folder as :func:`audeer.md5`, and signatures."""
    hasher = hashlib.md5()
    signatures = {}
    for name in hashing.folder_files(os.path.join(root, path)):
        name = name.replace(os.path.sep, "/")
        hasher.update(name.encode())
        file = posixpath.normpath(f"{path}/{name}")
        with open(os.path.join(root, file), "rb", buffering=0) as fp:
            signature = integrity.take(fp.fileno())
            own = hashlib.md5() if signature.racy else None
            hashers = [hasher] if own is None else [hasher, own]
            size = hashing.update(fp, hashers, progress=progress)
            md5 = None if own is None else own.hexdigest()
            signatures[file] = integrity.confirm(
                fp.fileno(), signature, kind, file, size, md5
            )
    return PathScan(hasher.hexdigest(), signatures)


def _scan_file(
    root: str, file: str, kind: str, progress: Callable[[int], None]
) -> tuple[str, integrity.Signature]:
    r"""Checksum of a file as audb records it, and signature.

    A PARQUET file with a hash in its metadata is read to its end
    only if it is racy, for the MD5 the pack compares with.

    """
    with open(os.path.join(root, file), "rb", buffering=0) as fp:
        signature = integrity.take(fp.fileno())
        checksum = hashing.parquet_hash(fp) if file.endswith(".parquet") else None
        size = md5 = None
        if checksum is None or signature.racy:
            fp.seek(0)
            hasher = hashlib.md5()
            size = hashing.update(fp, [hasher], progress=progress)
            md5 = hasher.hexdigest()
        signature = integrity.confirm(fp.fileno(), signature, kind, file, size, md5)
    return (md5 if checksum is None else checksum), signature


def batches(
    files: Sequence[T],
    sizes: Sequence[int],
    num_workers: int,
) -> list[list[T]]:
    r"""Split files (or archives) into jobs of similar size.

    A batch holds at most :data:`BATCH_FILES` files
    and at most :data:`BATCH_BYTES` bytes (but at least one file),
    and there are at least four batches per worker
    when there are enough files,
    so that workers finish at about the same time.

    Args:
        files: media files
        sizes: their sizes in bytes
        num_workers: number of workers

    Returns:
        batches of files, in the order of ``files``

    Examples:
        >>> batches(["a", "b", "c"], [1, 1, 1], 1)
        [['a'], ['b'], ['c']]
        >>> batches(["a", "b", "c"], [1, 1, 1], 1)[0]
        ['a']

    """
    total = sum(sizes)
    jobs = max(1, 4 * num_workers)
    max_files = max(1, min(BATCH_FILES, -(-len(files) // jobs)))
    max_bytes = max(1, min(BATCH_BYTES, -(-total // jobs)))
    result: list[list[T]] = []
    batch: list[T] = []
    nbytes = 0
    for file, size in zip(files, sizes, strict=True):
        if batch and (len(batch) >= max_files or nbytes + size > max_bytes):
            result.append(batch)
            batch, nbytes = [], 0
        batch.append(file)
        nbytes += size
    if batch:
        result.append(batch)
    return result
