"""Integrity under change: no file may change between its scan and its pack.

The scan takes the checksum of a file,
the pack reads the file again to put its bytes into the repository.
A file that changes in between
would be published with a checksum of content that was never published.
To rule that out without reading any file a third time:

* The scan takes a :class:`Signature` of every file it reads,
  ``(st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)``,
  with :func:`os.fstat` on the open file *before* reading it,
  and checks after reading that it did not change
  and that it read exactly ``st_size`` bytes (:func:`confirm`).
* The pack checks the same right after it copied the file
  into an archive or to the repository,
  with :func:`os.fstat` on the descriptor it read from,
  against the number of bytes it copied (:meth:`Guard.check`).
  A write or truncation after the signature was taken
  changes the size or the mtime and ctime,
  a change of metadata (also ``os.utime`` restoring the mtime) the ctime,
  and a file renamed over it has another inode,
  so the change is found,
  unless it kept the size and happened in the same tick
  of the file system clock.
* The gap of the same tick is git's "racy git" problem:
  file timestamps have a coarse granularity
  (a few milliseconds on Linux, up to 2 s on some file systems),
  so a rewrite of the same size
  within the tick of the signature is invisible to stat.
  A file whose mtime or ctime is less than :data:`RACY_NS`
  before the moment its signature was taken (or after it) is *racy*.
  For a racy file the scan keeps the MD5 of its content in the signature,
  and the pack computes the MD5 of the bytes it copies
  from the buffers it reads anyway,
  and compares the two.
  A file that was not modified for :data:`RACY_NS` gets no extra MD5,
  so the common path costs one :func:`os.fstat` per file and read.
* A folder attachment whose files were added or removed
  between the listing and the scan is raised by :func:`aligned`.

The MD5 kept for a racy file is always the MD5 of the file's bytes,
which is what the pack can compute.
For media, CSV tables and attachment files it is computed anyway
(for a folder: per file, alongside the folder checksum).
A PARQUET table is recorded with the hash in its metadata,
which the scan reads without reading the file;
for a racy PARQUET file the scan also reads the whole file for its MD5.
Racy files were written a moment ago,
so that read usually comes from the page cache.
This is simpler and more certain than re-reading the metadata hash
of the copied file.

A file deleted between scan and pack
raises :class:`FileNotFoundError`, as :func:`audb.publish` does,
with the path relative to the database root as ``filename``.

"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import errno
import os
import time
import typing

import pyarrow as pa

RACY_NS = 2_000_000_000
r"""A file modified less than this many nanoseconds before its scan is racy."""


class FileChangedError(RuntimeError):
    r"""A file changed between its scan and its pack.

    Examples:
        >>> issubclass(FileChangedError, RuntimeError)
        True

    """


KEY_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("dev", pa.uint64()),
        ("ino", pa.uint64()),
        ("size", pa.int64()),
        ("mtime_ns", pa.int64()),
        ("ctime_ns", pa.int64()),
    ]
)
r"""Path relative to the database root and key of a file:
the fields of its :class:`Signature` that stat gives, as a table."""


@dataclasses.dataclass(frozen=True, slots=True)
class Signature:
    r"""What :func:`os.fstat` tells of a file when its scan started.

    Two signatures are equal if their stat fields are,
    whatever ``racy`` and ``md5``.

    Args:
        dev: ``st_dev``
        ino: ``st_ino``
        size: ``st_size``
        mtime_ns: ``st_mtime_ns``
        ctime_ns: ``st_ctime_ns``
        racy: ``True`` if mtime or ctime are less than :data:`RACY_NS`
            before the moment the signature was taken, or after it
        md5: MD5 of the file's bytes as scanned, kept only if ``racy``

    Examples:
        >>> Signature(1, 2, 3, 4, 5) == Signature(1, 2, 3, 4, 5, True, "abc")
        True

    """

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    racy: bool = dataclasses.field(default=False, compare=False)
    md5: str | None = dataclasses.field(default=None, compare=False)


def take(fd: int, *, now: int | None = None) -> Signature:
    r"""Signature of an open file.

    Take it before reading the file.

    Args:
        fd: file descriptor
        now: current time in ns since the epoch,
            ``None`` for :func:`time.time_ns`

    Returns:
        signature, without MD5

    Examples:
        >>> with open(audeer.touch("a.txt"), "rb") as fp:
        ...     signature = take(fp.fileno())
        >>> signature.size, signature.racy
        (0, True)
        >>> with open("a.txt", "rb") as fp:
        ...     take(fp.fileno(), now=time.time_ns() + 3 * RACY_NS).racy
        False

    """
    stat = os.fstat(fd)
    now = time.time_ns() if now is None else now
    racy = max(stat.st_mtime_ns, stat.st_ctime_ns) > now - RACY_NS
    return signature_of(stat, racy)


def signature_of(stat: os.stat_result, racy: bool = False) -> Signature:
    r"""Signature from what :func:`os.stat` or :func:`os.fstat` returned.

    Args:
        stat: status of the file
        racy: see :class:`Signature`

    Returns:
        signature, without MD5

    Examples:
        >>> signature_of(os.stat(audeer.touch("a.txt"))).size
        0

    """
    return Signature(
        stat.st_dev,
        stat.st_ino,
        stat.st_size,
        stat.st_mtime_ns,
        stat.st_ctime_ns,
        racy,
    )


def check(
    fd: int,
    expected: Signature,
    kind: str,
    file: str,
    *,
    size: int | None = None,
    md5: str | None = None,
) -> None:
    r"""Check that an open file still has its signature.

    Call it after reading the file.

    Args:
        fd: file descriptor the file was read from
        expected: signature taken before reading
        kind: ``"media"``, ``"table"`` or ``"attachment"``,
            for the message
        file: path relative to the database root, for the message
        size: number of bytes read, ``None`` if not read to its end
        md5: MD5 of the bytes read,
            compared with ``expected.md5`` if both are set

    Raises:
        FileChangedError: if the signature changed,
            ``size`` differs from the signature's size,
            or the MD5s differ

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> with open("a.txt", "rb") as fp:
        ...     signature = take(fp.fileno())
        ...     check(fp.fileno(), signature, "media", "a.txt", size=3)
        ...     check(fp.fileno(), signature, "media", "a.txt", size=4)
        Traceback (most recent call last):
        ...
        audb_publish.integrity.FileChangedError: Media file 'a.txt' changed while publishing (3 bytes expected, 4 read). Publish again to publish its new content.

    """  # noqa: E501
    reason = _difference(expected, signature_of(os.fstat(fd)), size, md5)
    if reason:
        raise FileChangedError(
            f"{kind.capitalize()} file '{file}' changed while publishing "
            f"({reason}). Publish again to publish its new content."
        )


def confirm(
    fd: int,
    signature: Signature,
    kind: str,
    file: str,
    size: int | None,
    md5: str | None,
) -> Signature:
    r"""Check a file after its scan and keep its MD5 if it is racy.

    Args:
        fd: file descriptor the scan read from
        signature: signature taken before reading
        kind: ``"media"``, ``"table"`` or ``"attachment"``,
            for the message
        file: path relative to the database root, for the message
        size: number of bytes read, ``None`` if not read to its end
        md5: MD5 of the file's bytes,
            needed if ``signature.racy``

    Returns:
        ``signature``, with ``md5`` if it is racy

    Raises:
        FileChangedError: if the file changed while it was scanned
        ValueError: if the file is racy and ``md5`` is ``None``

    Examples:
        >>> with open("a.txt", "wb") as fp:
        ...     _ = fp.write(b"abc")
        >>> with open("a.txt", "rb") as fp:
        ...     signature = take(fp.fileno())
        ...     confirm(fp.fileno(), signature, "table", "a.txt", 3, "900150").md5
        '900150'

    """
    check(fd, signature, kind, file, size=size)
    if not signature.racy:
        return signature
    if md5 is None:
        raise ValueError(f"The MD5 of the racy file '{file}' is needed.")
    return dataclasses.replace(signature, md5=md5)


def _difference(
    expected: Signature,
    actual: Signature,
    size: int | None,
    md5: str | None,
) -> str:
    r"""Why a file does not match its signature, empty if it does."""
    if actual.size != expected.size:
        return f"size {expected.size} -> {actual.size}"
    if size is not None and size != expected.size:
        return f"{expected.size} bytes expected, {size} read"
    if (actual.dev, actual.ino) != (expected.dev, expected.ino):
        return "replaced by another file"
    if actual.mtime_ns != expected.mtime_ns:
        return "modified"
    if actual.ctime_ns != expected.ctime_ns:
        return "status changed"
    if md5 is not None and expected.md5 is not None and md5 != expected.md5:
        return "content changed"
    return ""


def deleted(kind: str, file: str) -> FileNotFoundError:
    r"""Error for a file that was deleted after its scan.

    :func:`audb.publish` raises :class:`FileNotFoundError`
    with the relative path as ``filename``, too.

    Args:
        kind: ``"media"``, ``"table"`` or ``"attachment"``
        file: path relative to the database root

    Returns:
        the error to raise

    Examples:
        >>> str(deleted("media", "sub/a.wav"))
        "[Errno 2] Media file deleted while publishing: 'sub/a.wav'"

    """
    return FileNotFoundError(
        errno.ENOENT, f"{kind.capitalize()} file deleted while publishing", file
    )


def aligned(
    kind: str,
    files: Sequence[str],
    signatures: Mapping[str, Signature] | None,
) -> tuple[Signature, ...]:
    r"""Signatures in the order of ``files``.

    Args:
        kind: ``"media"``, ``"table"`` or ``"attachment"``,
            for the message
        files: files of an archive or file to put,
            as listed before the scan
        signatures: signature of each file the scan read,
            ``None`` if unknown

    Returns:
        one signature per file, empty if ``signatures`` is ``None``

    Raises:
        FileChangedError: if the scan read other files than ``files``,
            because files were added to or removed from a folder

    Examples:
        >>> aligned("table", ["db.t.csv"], {"db.t.csv": Signature(1, 2, 3, 4, 5)})
        (Signature(dev=1, ino=2, size=3, mtime_ns=4, ctime_ns=5, racy=False, md5=None),)
        >>> aligned("attachment", ["a", "b"], {"a": Signature(1, 2, 3, 4, 5)})
        Traceback (most recent call last):
        ...
        audb_publish.integrity.FileChangedError: Attachment files were added or removed while publishing ('b'). Publish again to publish the new files.

    """  # noqa: E501
    if signatures is None:
        return ()
    changed = sorted(set(files).symmetric_difference(signatures))
    if changed:
        names = ", ".join(repr(file) for file in changed)
        raise FileChangedError(
            f"{kind.capitalize()} files were added or removed while publishing "
            f"({names}). Publish again to publish the new files."
        )
    return tuple(signatures[file] for file in files)


@dataclasses.dataclass(frozen=True)
class Guard:
    r"""A file to read from the database root, with the signature of its scan.

    Args:
        kind: ``"media"``, ``"table"`` or ``"attachment"``
        file: path relative to the database root
        signature: signature taken by the scan

    Examples:
        >>> guard = Guard("media", "a.wav", Signature(1, 2, 3, 4, 5))
        >>> guard.racy
        False

    """

    kind: str
    file: str
    signature: Signature

    @property
    def racy(self) -> bool:
        r"""``True`` if the MD5 of the copied bytes must be computed."""
        return self.signature.md5 is not None

    def check(self, fd: int, size: int, md5: str | None = None) -> None:
        r"""Check the file after it was copied.

        Args:
            fd: file descriptor it was copied from
            size: number of bytes copied
            md5: MD5 of the bytes copied; needed if :attr:`racy`

        Raises:
            FileChangedError: if the file changed since its scan

        """
        check(fd, self.signature, self.kind, self.file, size=size, md5=md5)

    def deleted(self) -> FileNotFoundError:
        r"""Error to raise if the file is gone.

        Returns:
            see :func:`deleted`

        """
        return deleted(self.kind, self.file)


def open_guarded(path: str, guard: Guard | None) -> typing.BinaryIO:
    r"""Open a file unbuffered for reading, naming it by its guard if it is gone.

    Args:
        path: file path
        guard: guard of the file, or ``None``

    Returns:
        the open file

    Raises:
        FileNotFoundError: if the file does not exist;
            with a guard, see :func:`deleted`

    Examples:
        >>> with open_guarded(audeer.touch("a.txt"), None) as fp:
        ...     fp.read()
        b''

    """
    try:
        return open(path, "rb", buffering=0)
    except FileNotFoundError as error:
        if guard is None:
            raise
        raise guard.deleted() from error


def guards(
    kind: str,
    files: Iterable[str],
    signatures: Iterable[Signature | None],
) -> list[Guard | None]:
    r"""Guards of the files of an archive or file to put.

    Args:
        kind: ``"media"``, ``"table"`` or ``"attachment"``
        files: files relative to the database root
        signatures: their signatures, ``None`` for a file not scanned

    Returns:
        one guard per file, ``None`` where the signature is ``None``

    Examples:
        >>> guards("media", ["a.wav", "b.wav"], [Signature(1, 2, 3, 4, 5), None])[1]

    """
    return [
        None if signature is None else Guard(kind, file, signature)
        for file, signature in zip(files, signatures, strict=True)
    ]
