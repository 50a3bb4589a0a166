"""Audio properties of a media file from one header read.

:func:`properties` returns the values
that :func:`audb.publish` 1.15 stores per media file
(bit depth, channels, duration, sampling rate),
but reads them from the header bytes
the caller has usually read already.
Headers it cannot interpret with certainty
are handed to the libraries :mod:`audb` itself uses,
so the result is the same in every case.

"""

from __future__ import annotations

import os
import struct

import audiofile
import soundfile

HEAD_SIZE = 65536
r"""Number of leading bytes :func:`properties` expects in ``head``."""

ZEROS = (0, 0, 0.0, 0)
r"""Properties :mod:`audb` stores for files that are not audio."""

_FIRST_READ = 4096

_SNDFORMATS = frozenset(("wav", "flac", "mp3", "ogg"))
_WAV_BIT_DEPTH = {
    "PCM_16": 16,
    "PCM_24": 24,
    "PCM_32": 32,
    "PCM_U8": 8,
    "FLOAT": 32,
    "DOUBLE": 64,
    "ULAW": 8,
    "ALAW": 8,
    "IMA_ADPCM": 4,
    "MS_ADPCM": 4,
    "GSM610": 16,
    "G721_32": 4,
}
_FLAC_BIT_DEPTH = {"PCM_16": 16, "PCM_24": 24, "PCM_32": 32, "PCM_S8": 8}
_BIT_DEPTH = {"wav": _WAV_BIT_DEPTH, "flac": _FLAC_BIT_DEPTH}

_U32 = struct.Struct("<I").unpack_from
_CHUNK = struct.Struct("<4sI").unpack_from
_FMT = struct.Struct("<HHIIHH").unpack_from
_FMT_EXTENSIBLE = struct.Struct("<HHI16s").unpack_from
_FLAC_BLOCK = struct.Struct(">I").unpack_from
_STREAMINFO = struct.Struct(">Q").unpack_from

# Subtype per format tag and bits per sample
_FORMAT_SUBTYPES = {
    0x0001: {8: "PCM_U8", 16: "PCM_16", 24: "PCM_24", 32: "PCM_32"},
    0x0003: {32: "FLOAT", 64: "DOUBLE"},
    0x0006: {8: "ALAW"},
    0x0007: {8: "ULAW"},
}
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
_GUID_SUBTYPES = {
    tag.to_bytes(2, "little") + _GUID_TAIL: subtypes
    for tag, subtypes in _FORMAT_SUBTYPES.items()
}
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_MAX_CHANNELS = 1023
_MAX_SAMPLING_RATE = 2**31 - 1
# Chunks libsndfile skips without looking at their content
_SKIPPED_CHUNKS = frozenset(
    (b"JUNK", b"junk", b"PAD ", b"FLLR", b"iXML", b"_PMX", b"bext", b"DISP")
)
# Markers with their own meaning inside a LIST chunk
_SPECIAL_SUBCHUNKS = frozenset(
    (b"adtl", b"INFO", b"exif", b"data", b"labl", b"ltxt", b"note", b"DISP")
)
_MAX_COMMENTS = 10000
_MAX_LIST_SIZE = HEAD_SIZE
# Length of a file with "fLaC" magic that libsndfile takes for HTK
_FLAC_AS_HTK_SIZE = 2 * 0x664C6143 + 12


class _Source:
    r"""Bytes of a file, served from its head and read from disk if needed.

    Args:
        path: path to file
        head: first bytes of the file
        size: size of the file in bytes

    """

    __slots__ = ("file", "head", "path", "size")

    def __init__(self, path: str, head: bytes, size: int):
        self.path = path
        self.head = head
        self.size = size
        self.file = None

    def open(self) -> None:
        r"""Open the file for reading.

        Raises:
            OSError: if the file cannot be opened

        """
        self.file = open(self.path, "rb")

    def read(self, offset: int, length: int) -> bytes:
        r"""Return up to ``length`` bytes starting at ``offset``.

        Args:
            offset: position in file
            length: number of bytes

        Returns:
            bytes, fewer than ``length`` at the end of the file

        Raises:
            OSError: if the file has to be read and cannot be

        """
        end = offset + length
        if end <= len(self.head) or len(self.head) >= self.size:
            return self.head[offset:end]
        if self.file is None:
            self.open()
        self.file.seek(offset)
        return self.file.read(length)

    def close(self) -> None:
        r"""Close the file if it was opened."""
        if self.file is not None:
            self.file.close()


def properties(
    path: str,
    head: bytes | None = None,
    size: int | None = None,
) -> tuple[int, int, float, int]:
    r"""Return (bit_depth, channels, duration, sampling_rate) as audb 1.15 records them.

    The values are those
    ``audb.core.publish._media_values()``
    stores for a media file:
    ``audiofile.bit_depth()`` (``0`` instead of ``None``),
    ``audiofile.channels()``,
    ``audiofile.duration(sloppy=True)``,
    and ``audiofile.sampling_rate()``,
    or ``(0, 0, 0.0, 0)`` if :mod:`audiofile` raises a :class:`RuntimeError`.
    WAV and FLAC headers are parsed in Python
    from ``head``;
    anything the parser is not certain about
    is passed to :func:`soundfile.info`
    (WAV, FLAC, MP3, OGG extensions)
    or to :mod:`audiofile`
    (all other extensions).

    Args:
        path: path to media file
        head: first :data:`HEAD_SIZE` bytes of the file,
            or the whole file if it is smaller.
            If ``None``
            the file is read
        size: size of the file in bytes.
            If ``None``
            it is taken from ``head``
            or from the file system

    Returns:
        bit depth, number of channels,
        duration in seconds,
        and sampling rate

    Raises:
        RuntimeError: if sox or mediainfo are needed,
            but not installed
        KeyError: if the bit depth of a WAV or FLAC file
            has an encoding :mod:`audiofile` does not know,
            as in :mod:`audb`

    Examples:
        >>> import tempfile
        >>> import numpy as np
        >>> import soundfile
        >>> path = os.path.join(tempfile.mkdtemp(), "probe.wav")
        >>> soundfile.write(path, np.zeros(8000), 16000)
        >>> properties(path)
        (16, 1, 0.5, 16000)
        >>> with open(path, "rb") as file:
        ...     head = file.read(HEAD_SIZE)
        >>> properties(path, head, len(head))
        (16, 1, 0.5, 16000)
        >>> properties(path[:-4] + ".mp3")  # missing file
        (0, 0, 0.0, 0)

    """
    path = os.path.abspath(os.path.expanduser(path))
    extension = os.path.splitext(path)[1][1:].lower()
    if extension not in _SNDFORMATS:
        return _audiofile_properties(path, extension)
    try:
        info = _header_info(path, head, size)
    except OSError:
        info = None
    if info is not None:
        subtype, channels, frames, sampling_rate = info
        depths = _BIT_DEPTH.get(extension)
        if depths is None:
            return 0, channels, float(frames) / sampling_rate, sampling_rate
        if subtype in depths:
            depth = depths[subtype]
            return depth, channels, float(frames) / sampling_rate, sampling_rate
    return _soundfile_properties(path, extension)


def _header_info(
    path: str,
    head: bytes | None,
    size: int | None,
) -> tuple[str, int, int, int] | None:
    r"""Parse a WAV or FLAC header.

    Args:
        path: absolute path to file
        head: first bytes of file or ``None``
        size: size of file or ``None``

    Returns:
        subtype, channels, frames, and sampling rate
        as libsndfile reports them,
        or ``None`` if not certain

    Raises:
        OSError: if the file cannot be read

    """
    if head is None:
        source = _Source(path, b"", 0)
        source.open()
        source.size = os.fstat(source.file.fileno()).st_size
        source.head = source.file.read(_FIRST_READ)
    else:
        if size is None:
            size = len(head) if len(head) < HEAD_SIZE else os.path.getsize(path)
        source = _Source(path, head, size)
    try:
        head = source.head
        if head[:4] == b"RIFF":
            return _wav_info(source)
        if head[:4] == b"fLaC":
            return _flac_info(source)
        return None
    finally:
        source.close()


def _wav_info(source: _Source) -> tuple[str, int, int, int] | None:
    r"""Parse a RIFF/WAVE header the way libsndfile does.

    The chunk loop mirrors libsndfile's:
    chunks are padded to even length,
    a data chunk longer than the file is cut,
    and parsing continues after the data chunk.

    Args:
        source: file content

    Returns:
        subtype, channels, frames, and sampling rate,
        or ``None`` if not certain

    """
    size = source.size
    riff = source.read(0, 12)
    if len(riff) < 12 or riff[8:] != b"WAVE":
        return None
    riff_size = min(_U32(riff, 4)[0], size - 8)
    fmt = data = None
    position, chunk_size = 12, 0
    while True:
        position += chunk_size & 1
        header = source.read(position, 8)
        if len(header) < 8:
            return None
        marker, chunk_size = _CHUNK(header)
        position += 8
        if marker == b"\0\0\0\0":
            break
        if marker == b"data":
            if fmt is None or data is not None:
                return None
            data = _data_range(position, chunk_size, riff_size, size)
            position, chunk_size = data[2], 0
        elif marker == b"fmt ":
            if fmt is not None:
                return None
            fmt = _wav_fmt(source.read(position, 40), chunk_size)
            if fmt is None:
                return None
            position += chunk_size
        elif _skippable(source, marker, position, chunk_size, fmt):
            position += chunk_size
        else:
            return None
        if chunk_size >= size or position >= size - 4:
            break
    return _wav_result(source, fmt, data)


def _data_range(
    offset: int,
    chunk_size: int,
    riff_size: int,
    size: int,
) -> tuple[int, int, int]:
    r"""Return where the audio data starts and ends, and the next chunk.

    Args:
        offset: position of the first data byte
        chunk_size: size stated in the data chunk
        riff_size: size stated in the RIFF header,
            limited to the file size
        size: size of file

    Returns:
        start of data,
        end of data,
        and position of the next chunk header

    """
    length = chunk_size
    if chunk_size == 0 and riff_size == 8 and size > 44:
        length = size - offset  # file not closed properly
    length = min(length, size - offset)
    end = offset + length
    return offset, end, end + (chunk_size & 1)


def _wav_fmt(body: bytes, chunk_size: int) -> tuple[str, int, int, int] | None:
    r"""Parse a fmt chunk of PCM, IEEE float, A-law, or u-law data.

    Only headers with consistent block alignment are accepted.

    Args:
        body: first 40 bytes of the chunk content
        chunk_size: size of the chunk content

    Returns:
        subtype, channels, sampling rate, and bytes per frame,
        or ``None`` if not certain

    """
    if chunk_size < 16 or len(body) < 16:
        return None
    tag, channels, sampling_rate, _, block_align, bits = _FMT(body)
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        if chunk_size < 40 or len(body) < 40:
            return None
        _, _, mask, guid = _FMT_EXTENSIBLE(body, 16)
        if mask.bit_count() > channels:
            return None
        subtypes = _GUID_SUBTYPES.get(guid)
    else:
        subtypes = _FORMAT_SUBTYPES.get(tag)
    if subtypes is None or bits not in subtypes:
        return None
    if not 0 < channels <= _MAX_CHANNELS:
        return None
    if not 0 < sampling_rate <= _MAX_SAMPLING_RATE:
        return None
    block_width = bits // 8 * channels
    if block_align != block_width:
        return None
    return subtypes[bits], channels, sampling_rate, block_width


def _skippable(
    source: _Source,
    marker: bytes,
    offset: int,
    chunk_size: int,
    fmt: tuple[str, int, int, int] | None,
) -> bool:
    r"""Tell whether libsndfile passes over a chunk without effect.

    Args:
        source: file content
        marker: chunk identifier
        offset: position of chunk content
        chunk_size: size of chunk content
        fmt: parsed fmt chunk, if already seen

    Returns:
        ``True`` if parsing continues after the chunk
        and the chunk changes no property

    """
    if marker in _SKIPPED_CHUNKS:
        return True
    if marker == b"fact":
        return chunk_size == 4
    if marker == b"PEAK":
        return fmt is not None and chunk_size == 8 + 8 * fmt[1]
    if marker == b"LIST":
        if offset + chunk_size > source.size or chunk_size > _MAX_LIST_SIZE:
            return False
        return _info_list(source.read(offset, chunk_size))
    return False


def _info_list(body: bytes) -> bool:
    r"""Tell whether a LIST chunk is a plain INFO list.

    Its sub-chunks must fill the list exactly
    and be short enough
    that libsndfile reads every one of them.

    Args:
        body: content of LIST chunk

    Returns:
        ``True`` if well formed

    """
    if len(body) <= 8 or body[:4] != b"INFO":
        return False
    position = 4
    while position < len(body):
        if position + 8 > len(body):
            return False
        marker, length = _CHUNK(body, position)
        length += length & 1
        if marker in _SPECIAL_SUBCHUNKS or marker == b"\0\0\0\0" or length >= 512:
            return False
        position += 8 + length
    return position == len(body)


def _wav_result(
    source: _Source,
    fmt: tuple[str, int, int, int] | None,
    data: tuple[int, int, int] | None,
) -> tuple[str, int, int, int] | None:
    r"""Compute what libsndfile reports after parsing the chunks.

    Args:
        source: file content
        fmt: parsed fmt chunk
        data: range of the data chunk

    Returns:
        subtype, channels, frames, and sampling rate,
        or ``None`` if not certain

    """
    if fmt is None or data is None:
        return None
    start, end, _ = data
    if end - start < 4 or source.read(start, 4) in (b"wvpk", b"OggS"):
        return None
    subtype, channels, sampling_rate, block_width = fmt
    return subtype, channels, (end - start) // block_width, sampling_rate


def _flac_info(source: _Source) -> tuple[str, int, int, int] | None:
    r"""Parse a FLAC header the way libsndfile does.

    Args:
        source: file content

    Returns:
        subtype, channels, frames, and sampling rate,
        or ``None`` if not certain

    """
    if source.size == _FLAC_AS_HTK_SIZE:
        return None
    head = source.read(0, 42)
    if len(head) < 42 or head[4] & 0x7F or head[5:8] != b"\x00\x00\x22":
        return None
    (fields,) = _STREAMINFO(head, 18)
    sampling_rate = fields >> 44
    channels = (fields >> 41 & 0x7) + 1
    bits = (fields >> 36 & 0x1F) + 1
    frames = fields & 0xFFFFFFFFF
    subtype = {8: "PCM_S8", 16: "PCM_16", 24: "PCM_24"}.get(bits)
    if subtype is None or sampling_rate == 0 or frames == 0:
        return None
    if not (head[4] & 0x80 or _flac_metadata(source, 42)):
        return None
    return subtype, channels, frames, sampling_rate


def _flac_metadata(source: _Source, position: int) -> bool:
    r"""Tell whether the FLAC metadata after STREAMINFO is harmless.

    Args:
        source: file content
        position: start of metadata block after STREAMINFO

    Returns:
        ``True`` if all blocks are complete
        and of a type libFLAC reads without failing

    """
    last = 0
    while not last:
        header = source.read(position, 4)
        if len(header) < 4:
            return False
        (word,) = _FLAC_BLOCK(header)
        last, kind, length = word & 0x80000000, word >> 24 & 0x7F, word & 0xFFFFFF
        position += 4
        if position + length > source.size:
            return False
        if kind == 3 and length % 18 or kind == 2 and length < 4:
            return False
        if kind == 4 and not _vorbis_comment(source.read(position, length)):
            return False
        if kind not in (1, 2, 3, 4):
            return False
        position += length
    return True


def _vorbis_comment(body: bytes) -> bool:
    r"""Tell whether a VORBIS_COMMENT block is well formed.

    Args:
        body: content of block

    Returns:
        ``True`` if the vendor string and all comments
        fill the block exactly

    """
    if len(body) < 8:
        return False
    position = 4 + _U32(body)[0]
    if position + 4 > len(body):
        return False
    count = _U32(body, position)[0]
    if count > _MAX_COMMENTS:
        return False
    position += 4
    for _ in range(count):
        if position + 4 > len(body):
            return False
        position += 4 + _U32(body, position)[0]
    return position == len(body)


def _soundfile_properties(path: str, extension: str) -> tuple[int, int, float, int]:
    r"""Properties from one :func:`soundfile.info` call.

    :mod:`audiofile` asks :func:`soundfile.info`
    the same question four times
    for WAV, FLAC, MP3, and OGG files;
    this asks once.

    Args:
        path: absolute path to file
        extension: lower case file extension

    Returns:
        bit depth, channels, duration, and sampling rate

    Raises:
        KeyError: if the WAV or FLAC subtype has no bit depth in audiofile

    """
    try:
        info = soundfile.info(path)
    except RuntimeError:
        return ZEROS
    depths = _BIT_DEPTH.get(extension)
    depth = 0 if depths is None else depths[info.subtype]
    return depth, info.channels, info.duration, info.samplerate


def _audiofile_properties(path: str, extension: str) -> tuple[int, int, float, int]:
    r"""Properties exactly as :mod:`audb` asks :mod:`audiofile` for them.

    Args:
        path: absolute path to file
        extension: lower case file extension

    Returns:
        bit depth, channels, duration, and sampling rate

    Raises:
        RuntimeError: if sox or mediainfo are needed, but not installed

    """
    try:
        bit_depth = audiofile.bit_depth(path)
        if bit_depth is None:
            bit_depth = 0
        channels = audiofile.channels(path)
        duration = audiofile.duration(path, sloppy=True)
        sampling_rate = audiofile.sampling_rate(path)
    except FileNotFoundError:
        raise RuntimeError(
            "sox and mediainfo have to be installed "
            f"to publish '{extension}' media files."
        ) from None
    except RuntimeError:
        return ZEROS
    return bit_depth, channels, duration, sampling_rate
