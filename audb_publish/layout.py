"""Every path of a version in the repository, as audb names it.

A database ``<name>`` in a repository holds, per version:

- ``/<name>/<version>/db.yaml``: the header, put last
- ``/<name>/<version>/db.parquet``: the dependency table
- ``/<name>/<version>/db.lock``: the lock of a publish of the version
  while it runs (see :mod:`audb_publish.commit.lock`)
- ``/<name>/media/<version>/<archive>.zip``: media archives
- ``/<name>/attachment/<version>/<attachment ID>.zip``: attachments
- ``/<name>/meta/<version>/<table ID>.zip``: CSV tables, zipped,
  or ``<table ID>.parquet``: PARQUET tables as they are

Paths here are *unversioned*, as audb passes them to audbackend,
``/<name>/media/<archive>.zip``;
:func:`versioned` puts the version before the file name,
as :class:`audbackend.interface.Versioned` does.

"""

from __future__ import annotations

import os
import posixpath

HEADER_FILE = "db.yaml"
r"""File name of the header, in ``db_root`` and in the repository."""

DEPENDENCY_FILE = "db.parquet"
r"""File name of the dependency table, in ``db_root`` and in the repository."""

LOCK_FILE = "db.lock"
r"""File name of the lock of a version, in the repository."""

LEGACY_DEPENDENCY_FILE = "db.csv"
r"""File name of the dependency table of old versions,
zipped as ``db.zip`` in the repository."""

MEDIA = 1
META = 0
ATTACHMENT = 2
r"""Values of the ``type`` column of the dependency table."""


def header(name: str) -> str:
    r"""Path of the header.

    Args:
        name: database name

    Returns:
        unversioned path

    Examples:
        >>> header("db")
        '/db/db.yaml'

    """
    return f"/{name}/{HEADER_FILE}"


def lock(name: str) -> str:
    r"""Path of the lock of a version.

    Args:
        name: database name

    Returns:
        unversioned path

    Examples:
        >>> lock("db")
        '/db/db.lock'

    """
    return f"/{name}/{LOCK_FILE}"


def version_folders(name: str, version: str) -> list[str]:
    r"""Folders that hold the files of one version, and only those.

    Args:
        name: database name
        version: version

    Returns:
        backend folders, each ending in ``/``

    Examples:
        >>> version_folders("db", "1.0.0")
        ['/db/1.0.0/', '/db/media/1.0.0/', '/db/meta/1.0.0/', '/db/attachment/1.0.0/']

    """
    kinds = ("", "media/", "meta/", "attachment/")
    return [f"/{name}/{kind}{version}/" for kind in kinds]


def dependencies(name: str, *, legacy: bool = False) -> str:
    r"""Path of the dependency table.

    Args:
        name: database name
        legacy: the zipped CSV file of old versions

    Returns:
        unversioned path

    Examples:
        >>> dependencies("db"), dependencies("db", legacy=True)
        ('/db/db.parquet', '/db/db.zip')

    """
    return f"/{name}/db.zip" if legacy else f"/{name}/{DEPENDENCY_FILE}"


def media(name: str, archive: str) -> str:
    r"""Path of a media archive, as audb joins it.

    Args:
        name: database name
        archive: archive name, without extension

    Returns:
        ``/<name>/media/<archive>.zip`` with repeated ``/`` collapsed,
        as audbackend's ``join`` does

    Examples:
        >>> media("db", "/sub//a")
        '/db/media/sub/a.zip'

    """
    return "/" + "/".join(p for p in f"{name}/media/{archive}.zip".split("/") if p)


def media_as_joined(name: str, archive: str) -> str:
    r"""Path of a media archive before audbackend checks it.

    With the leading ``//`` of ``audb``'s join,
    which audbackend's error message of a bad char shows.

    Args:
        name: database name
        archive: archive name, without extension

    Returns:
        path

    Examples:
        >>> media_as_joined("db", "a")
        '//db/media/a.zip'

    """
    return f"//{name}/media/{archive}.zip"


def attachment(name: str, attachment_id: str) -> str:
    r"""Path of the archive of an attachment.

    Args:
        name: database name
        attachment_id: attachment ID

    Returns:
        unversioned path

    Examples:
        >>> attachment("db", "docs")
        '/db/attachment/docs.zip'

    """
    return f"/{name}/attachment/{attachment_id}.zip"


def table(name: str, file: str) -> str:
    r"""Path of a table's file, from its file name in ``db_root``.

    A CSV table is put as a ZIP archive,
    a PARQUET table as it is.

    Args:
        name: database name
        file: ``db.<table ID>.csv`` or ``db.<table ID>.parquet``,
            or a path to it (as a dry run converts a table elsewhere)

    Returns:
        unversioned path

    Examples:
        >>> table("db", "db.files.csv"), table("db", "db.files.parquet")
        ('/db/meta/files.zip', '/db/meta/files.parquet')

    """
    table_id, ext = os.path.splitext(os.path.basename(file)[len("db.") :])
    ext = "parquet" if ext == ".parquet" else "zip"
    return f"/{name}/meta/{table_id}.{ext}"


def of_entry(name: str, file: str, kind: int, archive: str) -> str:
    r"""Path that holds a file of the dependency table.

    Args:
        name: database name
        file: file in the dependency table
        kind: its ``type``: :data:`MEDIA`, :data:`META` or :data:`ATTACHMENT`
        archive: its ``archive``

    Returns:
        unversioned path

    Examples:
        >>> of_entry("db", "a.wav", MEDIA, "x")
        '/db/media/x.zip'
        >>> of_entry("db", "db.files.csv", META, "files")
        '/db/meta/files.zip'

    """
    if kind == MEDIA:
        return media(name, archive)
    if kind == ATTACHMENT:
        return attachment(name, archive)
    return table(name, file)


def versioned(path: str, version: str) -> str:
    r"""Path of ``path`` in a version: the version before the file name.

    Args:
        path: unversioned path
        version: version

    Returns:
        versioned path

    Examples:
        >>> versioned("/db/media/a.zip", "1.0.0")
        '/db/media/1.0.0/a.zip'

    """
    folder, file = path.rsplit("/", 1)
    return f"{folder}/{version}/{file}"


def is_archive(path: str) -> bool:
    r"""``True`` if ``path`` is a ZIP archive.

    Args:
        path: path

    Returns:
        ``True`` for an archive

    Examples:
        >>> is_archive("/db/media/a.zip"), is_archive("/db/meta/t.parquet")
        (True, False)

    """
    return path.endswith(".zip")


def check_archive_name(file: str, archive: str, name: str, version: str) -> None:
    r"""Check that an archive name has no ``..``.

    audb joins ``/<name>/media/<archive>.zip`` with the backend,
    which collapses repeated ``/``
    (so ``/abs`` is written as ``media/<version>/abs.zip``, and accepted here),
    and puts the version before the file name.
    It does not check ``..``:
    it writes an archive named ``../../x`` outside the media folder,
    or outside the repository,
    and fails on the file system for ``sub/../x``.

    Args:
        file: media file
        archive: name of its archive, without extension
        name: database name
        version: version to publish

    Raises:
        ValueError: if the archive name has a ``..`` part,
            naming where audb would write it

    Examples:
        >>> check_archive_name("a.wav", "/sub/archive", "db", "1.0.0")
        >>> check_archive_name("a.wav", "../archive", "db", "1.0.0")
        Traceback (most recent call last):
        ...
        ValueError: The archive name '../archive' of media file 'a.wav' has '..': audb.publish would write it to '/db/media/../1.0.0/archive.zip', that is '/db/1.0.0/archive.zip', outside the media folder '/db/media/1.0.0/'. Use a name without '..'.

    """  # noqa: E501
    if ".." not in archive.split("/"):
        return
    literal = versioned(media(name, archive), version)
    path = posixpath.normpath(literal[1:])
    inside = f"{name}/media/{version}/"
    where = ""
    if path.startswith(".."):
        where = ", that is outside the repository"
    elif not path.startswith(inside):
        where = f", that is '/{path}', outside the media folder '/{inside}'"
    raise ValueError(
        f"The archive name '{archive}' of media file '{file}' has '..': "
        f"audb.publish would write it to '{literal}'{where}. "
        "Use a name without '..'."
    )
