"""Scan stage: checksums and audio properties, computed in worker jobs.

Every job here is a pure function of files on disk:
it *returns* its results and never touches the dependency table.
Media files are scanned in batches,
one job per batch,
because one job per small file costs more in scheduling
than hashing the file does.
Each media file is opened once:
the checksum and the audio header come from the same read.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import os
import typing

from audb_publish import hashing
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

    """

    file: str
    checksum: str
    bit_depth: int
    channels: int
    duration: float
    sampling_rate: int


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

    """
    path = os.path.join(root, file)
    checksum, head, size = hashing.md5_head(path, progress=progress)
    bit_depth, channels, duration, sampling_rate = probe.properties(path, head, size)
    return MediaScan(file, checksum, bit_depth, channels, duration, sampling_rate)


def scan_path(root: str, path: str, progress: Callable[[int], None]) -> str:
    r"""Checksum of a table file or an attachment, as audb records it.

    Args:
        root: database root
        path: file or folder relative to ``root``
        progress: called with the number of bytes after each read

    Returns:
        checksum, see :func:`audb_publish.hashing.checksum`

    Examples:
        >>> import audeer
        >>> file = audeer.touch("db.table.csv")
        >>> scan_path(".", "db.table.csv", lambda n: None)
        'd41d8cd98f00b204e9800998ecf8427e'

    """
    return hashing.checksum(os.path.join(root, path), progress=progress)


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
