"""How each archive member is compressed.

``compression="auto"``, the default, picks per member
what is faster than :func:`audb.publish`,
which deflates everything with zlib at level 6,
and, as measured, makes the archive at most 0.2% larger than its
(on synthetic speech; not larger on recorded speech, CSV tables and FLAC):

* mono 16 bit WAV, such as speech:
  ISA-L at :data:`SPEECH`,
  whose output is at most 0.2% larger than zlib's on synthetic speech
  and not larger on recorded speech (measured, see ``docs/compression.md``),
  at five to ten times its speed
* text (CSV tables and the like): zlib-ng at level :data:`TEXT_LEVEL`,
  whose output on CSV tables is smaller than zlib's (measured),
  at about twice its speed
* formats that are already compressed (FLAC, MP3, OGG, Opus, MP4, ...):
  stored, unless deflating a sample of it gains more than 0.1%;
  then zlib at level 6 as upstream
* everything else (multi-channel, 8, 24 or 32 bit audio, binary files):
  zlib at level 6 as upstream,
  since ISA-L's and zlib-ng's output can be up to 7% larger there (measured)

``compression="zlib"`` deflates every member with zlib at level 6,
as :func:`audb.publish` does,
so each member's compressed bytes equal upstream's,
for those who need the archives never to be larger.

"""

from __future__ import annotations

import dataclasses

from audb_publish import zipwriter
from audb_publish.zipwriter import Deflate

NAMED = ("auto", "zlib", "deflate", "store")
r"""Named values of ``compression``; an ISA-L level 1 to 3 is also accepted."""

SPEECH = Deflate("isal", zipwriter.DEFAULT_LEVEL, mem_level=3)
r"""Compression of mono 16 bit WAV."""

TEXT_LEVEL = 6
r"""zlib-ng level for text."""

TEXT_EXTENSIONS = frozenset(
    ["csv", "tsv", "txt", "json", "yaml", "yml", "md", "rst", "xml", "html", "lab"]
)
r"""Extensions compressed as text."""

UPSTREAM = Deflate("zlib", 6)
r"""What :func:`audb.publish` uses for every member."""


def check(compression: str | int) -> None:
    r"""Check the ``compression`` argument of :func:`audb_publish.publish`.

    Args:
        compression: ``"auto"``, ``"zlib"``, ``"deflate"``, ``"store"``,
            or an ISA-L level from 1 to 3

    Raises:
        ValueError: if ``compression`` is none of these

    Examples:
        >>> check("auto")
        >>> check(9)
        Traceback (most recent call last):
        ...
        ValueError: 'compression' must be one of 'auto', 'zlib', 'deflate', 'store', or an int from 1 to 3, not 9.

    """  # noqa: E501
    valid = compression in NAMED or (
        isinstance(compression, int)
        and not isinstance(compression, bool)
        and 1 <= compression <= 3
    )
    if not valid:
        raise ValueError(
            "'compression' must be one of 'auto', 'zlib', 'deflate', 'store', "
            f"or an int from 1 to 3, not {compression!r}."
        )


def codec(
    file: str,
    compression: str | int,
    bit_depth: int = 0,
    channels: int = 0,
) -> Deflate | None:
    r"""Deflate engine and level of a member, or ``None`` to store it.

    Args:
        file: member file
        compression: see :func:`check`
        bit_depth: bit depth if the file is audio, else 0
        channels: number of channels if the file is audio, else 0

    Returns:
        deflate engine and level, or ``None``

    Examples:
        >>> codec("a.wav", "auto", 16, 1) == SPEECH
        True
        >>> codec("a.wav", "auto", 24, 2) == UPSTREAM
        True
        >>> codec("a.flac", "auto", 16, 1).unless_above
        0.999
        >>> codec("db.table.csv", "auto").engine
        'zlib-ng'
        >>> codec("a.flac", "deflate") == SPEECH
        True
        >>> codec("a.flac", "zlib") == UPSTREAM
        True

    """
    if compression == "store":
        return None
    if compression == "deflate":
        return SPEECH
    if compression == "zlib":
        return UPSTREAM
    if isinstance(compression, int):
        return Deflate("isal", compression)
    extension = file.rsplit(".", 1)[-1].lower()
    if extension == "wav" and channels == 1 and bit_depth == 16:
        return SPEECH
    if extension in TEXT_EXTENSIONS:
        return Deflate("zlib-ng", TEXT_LEVEL)
    if zipwriter.is_compressed_format(file):
        return dataclasses.replace(UPSTREAM, unless_above=0.999)
    return UPSTREAM
