r"""Streaming ZIP writer with ISA-L deflate and an MD5 computed while writing.

:func:`write_zip` reads every member once,
compresses it with ISA-L (raw deflate, levels 0 to 3)
or stores it,
writes the archive once,
and returns the MD5 of exactly the bytes it wrote.
A member of at least :data:`audb_publish.deflate_blocks.THRESHOLD` bytes
is deflated in blocks, on idle cores too,
see :mod:`audb_publish.deflate_blocks`.
It never seeks in the destination:
sizes and CRC follow each member in a data descriptor,
so the destination may be a pipe or a socket.
ZIP64 records are written where sizes, offsets or counts need them.

The archives are read by :mod:`zipfile`,
:func:`audeer.extract_archive`, ``unzip`` and other readers
like archives written by :func:`audeer.create_archive`;
their bytes and therefore their MD5 differ,
as another deflate implementation is used.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
import dataclasses
import hashlib
import os
import posixpath
import struct
import sys
import threading
import time
from typing import BinaryIO
from typing import NamedTuple
import zlib

from isal import isal_zlib
from zlib_ng import zlib_ng

from audb_publish import deflate_blocks
from audb_publish import integrity

DEFAULT_LEVEL = 3
r"""Default ISA-L level of :func:`default_level`.

Level 3 compresses best of the ISA-L levels.
On speech WAV files synthesized by espeak-ng
it is the only level whose output is in total
not larger than that of :mod:`zipfile`'s zlib level 6
(level 2: 0.004% larger),
at six to eight times its speed.
On CSV tables every ISA-L level is larger than zlib level 6,
level 3 by the least (about 3%).
Level 0 is never a good choice for audio:
it codes with one fixed Huffman table,
so 16 bit audio grows by up to 23%.

"""

ENGINES = {"isal": (isal_zlib, 0, 3), "zlib-ng": (zlib_ng, 1, 9), "zlib": (zlib, 0, 9)}
r"""Deflate engines: module, lowest and highest level."""


@dataclasses.dataclass(frozen=True)
class Deflate:
    r"""Deflate engine and level of an archive member.

    An int level given to :func:`write_zip`
    stands for ``Deflate("isal", level)``.

    Args:
        engine: ``"isal"`` (ISA-L, levels 0 to 3),
            ``"zlib-ng"`` (levels 1 to 9)
            or ``"zlib"`` (the standard library's, levels 0 to 9)
        level: compression level
        unless_above: if set, the member is stored instead
            when ISA-L level 1 compresses its first :data:`SAMPLE_SIZE` bytes
            to more than this fraction of their size
        mem_level: ``memLevel`` of the compressor, ``None`` for its default.
            For ISA-L it sets the size of its internal buffers:
            level 3 with ``mem_level=3`` compresses speech WAV
            0.5% smaller than with the default

    Raises:
        ValueError: if the engine or level is not supported

    Examples:
        >>> Deflate("zlib-ng", 4)
        Deflate(engine='zlib-ng', level=4, unless_above=None, mem_level=None)

    """

    engine: str = "isal"
    level: int = DEFAULT_LEVEL
    unless_above: float | None = None
    mem_level: int | None = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"Unknown deflate engine {self.engine!r}.")
        _, low, high = ENGINES[self.engine]
        if not (isinstance(self.level, int) and low <= self.level <= high):
            raise ValueError(
                f"A level of {self.engine} must be from {low} to {high}, "
                f"not {self.level!r}."
            )

    def compressor(self, zdict: bytes | None = None):
        r"""New raw deflate compressor.

        Args:
            zdict: if given, the dictionary that primes the compressor

        Returns:
            compressor object with ``compress()`` and ``flush()``

        """
        module = ENGINES[self.engine][0]
        mem_level = module.DEF_MEM_LEVEL if self.mem_level is None else self.mem_level
        if zdict is None:
            return module.compressobj(self.level, module.DEFLATED, -15, mem_level)
        return module.compressobj(
            self.level, module.DEFLATED, -15, mem_level, zdict=zdict
        )

    def pays_off(self, sample: bytes) -> bool:
        r"""Tell whether deflating is worth it, judged by a sample.

        Args:
            sample: first bytes of the member

        Returns:
            ``False`` if ``unless_above`` is set and not undercut

        """
        if self.unless_above is None or not sample:
            return True
        compressed = isal_zlib.compress(sample, 1, -15)
        return len(compressed) <= self.unless_above * len(sample)


SAMPLE_SIZE = 1 << 18
r"""Bytes compressed on trial for :attr:`Deflate.unless_above`."""


_local = threading.local()

ZIP64_LIMIT = 0xFFFFFFFF
r"""Sizes and offsets from this value on are written as ZIP64 fields."""

ZIP_FILECOUNT_LIMIT = 0xFFFF
r"""Member counts from this value on need the ZIP64 end records."""

ZIP64_SIZE_MARGIN = 1.05
r"""Factor on a file's size to decide on ZIP64 in its local header.

The local header is written before the compressed size is known,
so a file whose size times this factor reaches :data:`ZIP64_LIMIT`
gets ZIP64 sizes in its data descriptor.

"""

COMPRESSED_EXTENSIONS = frozenset(
    {
        # audio
        "aac",
        "ac3",
        "amr",
        "ape",
        "flac",
        "m4a",
        "mka",
        "mp2",
        "mp3",
        "oga",
        "ogg",
        "opus",
        "spx",
        "wma",
        "wv",
        # video
        "3gp",
        "avi",
        "flv",
        "m4v",
        "mkv",
        "mov",
        "mp4",
        "mpeg",
        "mpg",
        "webm",
        "wmv",
        # images
        "avif",
        "gif",
        "heic",
        "jpeg",
        "jpg",
        "jxl",
        "png",
        "webp",
        # archives and compressed data
        "7z",
        "br",
        "bz2",
        "gz",
        "lz4",
        "lzma",
        "parquet",
        "rar",
        "tbz2",
        "tgz",
        "txz",
        "xz",
        "zip",
        "zst",
    }
)
r"""Extensions (lower case, no dot) of already compressed formats."""

_DEFLATED = 8
_STORED = 0
_VERSION = 20
_VERSION_ZIP64 = 45
_CREATE_SYSTEM = 0 if sys.platform == "win32" else 3
_FLAG_DATA_DESCRIPTOR = 0x08
_FLAG_UTF8 = 0x800
_MAX_16 = 0xFFFF
_MAX_32 = 0xFFFFFFFF

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_CENTRAL_HEADER = struct.Struct("<4s2B5H3L5H2L")
_DESCRIPTOR = struct.Struct("<4s3L")
_DESCRIPTOR_ZIP64 = struct.Struct("<4sL2Q")
_END = struct.Struct("<4s4H2LH")
_END_ZIP64 = struct.Struct("<4sQ2H2L4Q")
_END_ZIP64_LOCATOR = struct.Struct("<4sLQL")


class ArchiveInfo(NamedTuple):
    r"""Summary of an archive written by :func:`write_zip`.

    Args:
        md5: MD5 checksum (hex digest) of all bytes written
        size: number of bytes written
        members: number of members
        uncompressed: total size of the members in bytes

    """

    md5: str
    size: int
    members: int
    uncompressed: int


@dataclasses.dataclass
class _Member:
    r"""Header fields of one member, completed after its data is written."""

    name: bytes
    flags: int
    method: int
    dostime: int
    dosdate: int
    external_attr: int
    offset: int
    zip64_local: bool
    crc: int = 0
    compressed: int = 0
    uncompressed: int = 0


class _Output:
    r"""Write to a binary stream, counting bytes and updating an MD5.

    Args:
        stream: writable binary stream

    """

    def __init__(self, stream: BinaryIO, md5: bool = True):
        self._write = stream.write
        self._md5 = hashlib.md5() if md5 else None
        self.offset = 0

    def write(self, data: bytes | memoryview) -> None:
        r"""Write all of ``data``, also after short writes of raw streams."""
        if self._md5 is not None:
            self._md5.update(data)
        size = len(data)
        written = self._write(data)
        if written is not None and written < size:
            _write_rest(self._write, memoryview(data)[written:])
        self.offset += size

    def hexdigest(self) -> str:
        r"""MD5 of all bytes written so far, empty if not computed."""
        return "" if self._md5 is None else self._md5.hexdigest()


def _write_rest(write, view: memoryview) -> None:
    while view:
        written = write(view)
        view = view[len(view) if written is None else written :]


def is_compressed_format(file: str) -> bool:
    r"""Whether a file's extension is one of an already compressed format.

    Deflating such files costs time
    and saves close to nothing,
    so they are best stored.

    Args:
        file: file name or path

    Returns:
        ``True`` if the extension, in any case,
        is in :data:`COMPRESSED_EXTENSIONS`

    Examples:
        >>> is_compressed_format("audio/file.FLAC")
        True
        >>> is_compressed_format("audio/file.wav")
        False

    """
    extension = os.path.splitext(file)[1][1:].lower()
    return extension in COMPRESSED_EXTENSIONS


def default_level(file: str) -> int | None:
    r"""ISA-L level for a file, or ``None`` to store it.

    Args:
        file: file name or path

    Returns:
        ``None`` if :func:`is_compressed_format` is ``True``,
        otherwise :data:`DEFAULT_LEVEL`

    Examples:
        >>> default_level("file.wav")
        3
        >>> default_level("file.mp3") is None
        True

    """
    return None if is_compressed_format(file) else DEFAULT_LEVEL


def write_zip(
    dst: str | os.PathLike | BinaryIO,
    root: str,
    files: Sequence[str],
    levels: Sequence[int | Deflate | None] | int | Deflate | None,
    *,
    buffer_size: int = 1 << 20,
    progress: Callable[[int], None] | None = None,
    md5: bool = True,
    guards: Sequence[integrity.Guard | None] | None = None,
) -> ArchiveInfo:
    r"""Write files below a folder to a ZIP archive and return its MD5.

    Each file is read once in chunks of ``buffer_size`` bytes,
    compressed with ISA-L raw deflate or stored,
    and written once;
    the MD5 is computed over the written bytes,
    so memory use does not depend on file sizes
    and the archive needs no second read.
    Members are named by ``files`` and added in the given order,
    as :func:`audeer.create_archive` does with relative paths.
    Modification times, Unix permission bits
    and UTF-8 flags for non-ASCII names are stored like :mod:`zipfile`,
    but timestamps before 1980 or after 2107
    are clamped instead of raising an error.

    Args:
        dst: path of the archive,
            whose missing parent folders are created,
            or a writable binary stream,
            which is neither seeked nor closed.
            After an error the partial file at a path is removed,
            a stream is left with what was written to it
        root: folder the files are relative to
        files: paths relative to ``root`` with ``/`` as separator,
            used as member names
        levels: ISA-L compression level (0 to 3),
            a :class:`Deflate` of another engine,
            or ``None`` to store,
            per file or one for all files
        buffer_size: size of the read buffer in bytes
        progress: called with the number of bytes after each read;
            an exception it raises stops writing
        md5: compute the MD5 of the archive;
            if ``False``, :attr:`ArchiveInfo.md5` is empty
        guards: per file, ``None``
            or the :class:`~audb_publish.integrity.Guard`
            that checks the file right after it was written
            not to have changed since its scan;
            for a racy file
            the MD5 of the bytes read is computed for that

    Returns:
        MD5 and size of the archive,
        number of members and their total size

    Raises:
        ValueError: if a name in ``files`` is empty, absolute,
            not normalized or given twice,
            if ``levels`` has not one entry per file,
            if a level is not ``None``, a :class:`Deflate` or from 0 to 3,
            if ``guards`` has not one entry per file,
            or if ``buffer_size`` is not positive
        FileNotFoundError: if a file does not exist,
            named by its guard if it has one
        audb_publish.integrity.FileChangedError: if a file changed
            while it was written or, if it has a guard, since its scan
        RuntimeError: if a file grew while writing
            beyond the size its local header allows
        OSError: if reading or writing fails

    Examples:
        >>> import tempfile, zipfile
        >>> root = tempfile.mkdtemp()
        >>> with open(os.path.join(root, "a.txt"), "w") as fp:
        ...     _ = fp.write("hello " * 100)
        >>> archive = os.path.join(root, "out", "a.zip")
        >>> info = write_zip(archive, root, ["a.txt"], 1)
        >>> info.members, info.uncompressed, info.size == os.path.getsize(archive)
        (1, 600, True)
        >>> with open(archive, "rb") as fp:
        ...     info.md5 == hashlib.md5(fp.read()).hexdigest()
        True
        >>> zipfile.ZipFile(archive).read("a.txt") == b"hello " * 100
        True

    """
    files, levels = _check_arguments(files, levels, buffer_size)
    guards = _check_guards(files, guards)
    if not isinstance(dst, (str, os.PathLike)):
        return _write_archive(
            dst, root, files, levels, buffer_size, progress, md5, guards
        )
    path = os.fspath(dst)
    folder = os.path.dirname(path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
    stream = open(path, "wb")
    try:
        with stream:
            return _write_archive(
                stream, root, files, levels, buffer_size, progress, md5, guards
            )
    except BaseException:
        os.remove(path)
        raise


def _check_arguments(
    files: Sequence[str],
    levels: Sequence[int | Deflate | None] | int | Deflate | None,
    buffer_size: int,
) -> tuple[list[str], list[Deflate | None]]:
    if buffer_size < 1:
        raise ValueError(f"'buffer_size' must be positive, not {buffer_size}.")
    if isinstance(files, str):
        raise ValueError("'files' must be a sequence of names, not a string.")
    files = list(files)
    _check_names(files)
    if not isinstance(levels, Iterable):
        levels = [levels] * len(files)
    else:
        levels = list(levels)
        if len(levels) != len(files):
            raise ValueError(
                f"'levels' has {len(levels)} entries, but there are {len(files)} files."
            )
    return files, [_codec(level) for level in levels]


def _check_guards(
    files: Sequence[str],
    guards: Sequence[integrity.Guard | None] | None,
) -> list[integrity.Guard | None]:
    if guards is None:
        return [None] * len(files)
    guards = list(guards)
    if len(guards) != len(files):
        raise ValueError(
            f"'guards' has {len(guards)} entries, but there are {len(files)} files."
        )
    return guards


def _codec(level: int | Deflate | None) -> Deflate | None:
    if level is None or isinstance(level, Deflate):
        return level
    if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 3:
        return Deflate("isal", level)
    raise ValueError(f"A level must be None or from 0 to 3, not {level!r}.")


def _check_names(files: Sequence[str]) -> None:
    seen = set()
    for name in files:
        if not name or name.startswith("/") or posixpath.normpath(name) != name:
            raise ValueError(
                f"A member name must be a normalized relative path "
                f"with '/' as separator, not {name!r}."
            )
        if name in seen:
            raise ValueError(f"The member name {name!r} is given twice.")
        seen.add(name)


def _write_archive(
    stream: BinaryIO,
    root: str,
    files: Sequence[str],
    levels: Sequence[Deflate | None],
    buffer_size: int,
    progress: Callable[[int], None] | None,
    md5: bool,
    guards: Sequence[integrity.Guard | None],
) -> ArchiveInfo:
    output = _Output(stream, md5)
    buffer = _buffer(buffer_size)
    members = [
        _write_member(output, root, name, level, buffer, progress, guard)
        for name, level, guard in zip(files, levels, guards, strict=True)
    ]
    _write_central_directory(output, members)
    return ArchiveInfo(
        md5=output.hexdigest(),
        size=output.offset,
        members=len(members),
        uncompressed=sum(member.uncompressed for member in members),
    )


def _buffer(size: int) -> bytearray:
    r"""Read buffer of the calling thread, reused across archives."""
    buffers = _local.__dict__.setdefault("buffers", {})
    if size not in buffers:
        buffers[size] = bytearray(size)
    return buffers[size]


def _write_member(
    output: _Output,
    root: str,
    name: str,
    level: Deflate | None,
    buffer: bytearray,
    progress: Callable[[int], None] | None,
    guard: integrity.Guard | None = None,
) -> _Member:
    # the MD5 of a racy file is taken from the buffers read anyway
    md5 = hashlib.md5() if guard is not None and guard.racy else None
    with integrity.open_guarded(os.path.join(root, name), guard) as file:
        if level is not None and level.unless_above is not None:
            if not level.pays_off(file.read(SAMPLE_SIZE)):
                level = None
            file.seek(0)
        member = _new_member(name, os.fstat(file.fileno()), level, output.offset)
        if level is None:
            # streaming readers (such as stream-unzip, used by audb.load)
            # cannot find the end of stored data without sizes up front,
            # so a stored member gets its CRC and size in the local header
            member.crc, member.uncompressed = _crc(file, buffer)
            member.compressed = member.uncompressed
            file.seek(0)
            output.write(_local_header(member))
            copied = _copy_stored(file, output, buffer, progress, md5)
        else:
            output.write(_local_header(member))
            _copy_deflated(file, output, member, level, buffer, progress, md5)
            copied = member.crc, member.uncompressed
        if guard is not None:
            digest = None if md5 is None else md5.hexdigest()
            guard.check(file.fileno(), copied[1], digest)
    if copied != (member.crc, member.uncompressed):
        raise integrity.FileChangedError(
            f"'{name}' changed while it was written to the archive."
        )
    _check_sizes(member, name)
    if member.flags & _FLAG_DATA_DESCRIPTOR:
        output.write(_data_descriptor(member))
    return member


def _crc(file, buffer: bytearray) -> tuple[int, int]:
    view = memoryview(buffer)
    crc = size = 0
    while size_read := file.readinto(buffer):
        crc = isal_zlib.crc32(view[:size_read], crc)
        size += size_read
    return crc, size


def _new_member(
    name: str,
    stat: os.stat_result,
    level: Deflate | None,
    offset: int,
) -> _Member:
    encoded, flags = _encode_name(name)
    dostime, dosdate = _dos_time(stat.st_mtime)
    return _Member(
        name=encoded,
        flags=flags if level is None else flags | _FLAG_DATA_DESCRIPTOR,
        method=_STORED if level is None else _DEFLATED,
        dostime=dostime,
        dosdate=dosdate,
        external_attr=(stat.st_mode & 0xFFFF) << 16,
        offset=offset,
        zip64_local=stat.st_size * ZIP64_SIZE_MARGIN >= ZIP64_LIMIT,
    )


def _encode_name(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _FLAG_UTF8


def _dos_time(mtime: float) -> tuple[int, int]:
    t = time.localtime(mtime)
    if t.tm_year < 1980:
        year, month, day, hour, minute, second = 1980, 1, 1, 0, 0, 0
    elif t.tm_year > 2107:
        year, month, day, hour, minute, second = 2107, 12, 31, 23, 59, 59
    else:
        year, month, day = t.tm_year, t.tm_mon, t.tm_mday
        hour, minute, second = t.tm_hour, t.tm_min, t.tm_sec
    dostime = hour << 11 | minute << 5 | min(second, 59) // 2
    dosdate = (year - 1980) << 9 | month << 5 | day
    return dostime, dosdate


def _copy_stored(
    file,
    output: _Output,
    buffer: bytearray,
    progress: Callable[[int], None] | None,
    md5=None,
) -> tuple[int, int]:
    r"""Copy a file as it is; return CRC and size of what was copied."""
    view = memoryview(buffer)
    crc = size = 0
    while size_read := file.readinto(buffer):
        if progress is not None:
            progress(size_read)
        chunk = view[:size_read]
        crc = isal_zlib.crc32(chunk, crc)
        if md5 is not None:
            md5.update(chunk)
        output.write(chunk)
        size += size_read
    return crc, size


def _copy_deflated(
    file,
    output: _Output,
    member: _Member,
    level: Deflate,
    buffer: bytearray,
    progress: Callable[[int], None] | None,
    md5=None,
) -> None:
    if os.fstat(file.fileno()).st_size >= deflate_blocks.THRESHOLD:
        member.crc, member.uncompressed, member.compressed = deflate_blocks.deflate(
            file, level.compressor, output.write, progress=progress, md5=md5
        )
        return
    view = memoryview(buffer)
    compressor = level.compressor()
    crc = size = compressed = 0
    while size_read := file.readinto(buffer):
        if progress is not None:
            progress(size_read)
        chunk = view[:size_read]
        crc = isal_zlib.crc32(chunk, crc)
        if md5 is not None:
            md5.update(chunk)
        size += size_read
        data = compressor.compress(chunk)
        if data:
            output.write(data)
            compressed += len(data)
    data = compressor.flush()
    output.write(data)
    member.crc = crc
    member.uncompressed = size
    member.compressed = compressed + len(data)


def _check_sizes(member: _Member, name: str) -> None:
    too_large = max(member.uncompressed, member.compressed) >= ZIP64_LIMIT
    if too_large and not member.zip64_local:
        raise RuntimeError(
            f"'{name}' grew while it was written "
            f"and needs ZIP64 sizes its local header does not announce."
        )


def _local_header(member: _Member) -> bytes:
    r"""Local header; CRC and sizes are known only without a data descriptor."""
    extra = b""
    known = not member.flags & _FLAG_DATA_DESCRIPTOR
    crc = member.crc if known else 0
    size = member.uncompressed if known else 0
    version = _VERSION
    if member.zip64_local:
        extra = struct.pack("<2H2Q", 1, 16, size, size)
        size = _MAX_32
        version = _VERSION_ZIP64
    header = _LOCAL_HEADER.pack(
        b"PK\x03\x04",
        version,
        member.flags,
        member.method,
        member.dostime,
        member.dosdate,
        crc,
        size,
        size,
        len(member.name),
        len(extra),
    )
    return header + member.name + extra


def _data_descriptor(member: _Member) -> bytes:
    struct_ = _DESCRIPTOR_ZIP64 if member.zip64_local else _DESCRIPTOR
    return struct_.pack(
        b"PK\x07\x08", member.crc, member.compressed, member.uncompressed
    )


def _central_header(member: _Member) -> bytes:
    values = []
    uncompressed, compressed, offset = (
        member.uncompressed,
        member.compressed,
        member.offset,
    )
    if uncompressed >= ZIP64_LIMIT or compressed >= ZIP64_LIMIT:
        values += [uncompressed, compressed]
        uncompressed = compressed = _MAX_32
    if offset >= ZIP64_LIMIT:
        values.append(offset)
        offset = _MAX_32
    extra = struct.pack(f"<2H{len(values)}Q", 1, 8 * len(values), *values)
    extra = extra if values else b""
    zip64 = bool(values) or member.zip64_local
    version = _VERSION_ZIP64 if zip64 else _VERSION
    header = _CENTRAL_HEADER.pack(
        b"PK\x01\x02",
        version,
        _CREATE_SYSTEM,
        version,
        member.flags,
        member.method,
        member.dostime,
        member.dosdate,
        member.crc,
        compressed,
        uncompressed,
        len(member.name),
        len(extra),
        0,
        0,
        0,
        member.external_attr,
        offset,
    )
    return header + member.name + extra


def _write_central_directory(output: _Output, members: list[_Member]) -> None:
    start = output.offset
    for member in members:
        output.write(_central_header(member))
    output.write(_end_records(len(members), start, output.offset - start))


def _end_records(count: int, start: int, size: int) -> bytes:
    records = b""
    zip64_count = count >= ZIP_FILECOUNT_LIMIT
    zip64_start = start >= ZIP64_LIMIT
    zip64_size = size >= ZIP64_LIMIT
    if zip64_count or zip64_start or zip64_size:
        records = _END_ZIP64.pack(
            b"PK\x06\x06",
            _END_ZIP64.size - 12,
            _VERSION_ZIP64,
            _VERSION_ZIP64,
            0,
            0,
            count,
            count,
            size,
            start,
        ) + _END_ZIP64_LOCATOR.pack(b"PK\x06\x07", 0, start + size, 1)
    return records + _END.pack(
        b"PK\x05\x06",
        0,
        0,
        _MAX_16 if zip64_count else count,
        _MAX_16 if zip64_count else count,
        _MAX_32 if zip64_size else size,
        _MAX_32 if zip64_start else start,
        0,
    )
