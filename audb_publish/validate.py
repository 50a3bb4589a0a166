"""Validate stage: the database, its previous version and the repository.

Everything :func:`audb.publish` checks is checked here,
with the same exception types and messages,
before anything is uploaded.
The result is a :class:`Context` that the later stages read.

"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import os
import re
import tempfile

import audb
import audeer
import audformat
import pandas as pd
import pyarrow as pa
import pyarrow.parquet

from audb_publish import layout
from audb_publish.indices import table_index
from audb_publish.integrity import KEY_SCHEMA
from audb_publish.layout import DEPENDENCY_FILE
from audb_publish.layout import HEADER_FILE
from audb_publish.layout import LEGACY_DEPENDENCY_FILE
from audb_publish.remote import Remote
from audb_publish.scheduler import Scheduler
from audb_publish.table_cache import TableCache
from audb_publish.table_cache import definition

ALLOWED_ID_CHARS = "[A-Za-z0-9._-]"
_ALLOWED_ID = re.compile(ALLOWED_ID_CHARS + "+")

Dependencies = audb.Dependencies
r"""Class of the dependency table created by :func:`validate`."""


@dataclasses.dataclass
class Context:
    r"""Everything the stages after validation need to know.

    Args:
        db: database header; only tables read by audformat
            (see :func:`audb_publish.indices.table_index`) hold their data
        db_root: database root
        version: version to publish
        previous_version: version it depends on, or ``None``
        repository: the repository
        remote: its adapter
        deps: dependency table of ``previous_version``, or empty
        root_files: files below ``db_root`` and their sizes in bytes
        media: media files referenced by the tables
        tables: table ID and the file that stores it (PARQUET or CSV)
        attachments: attachment ID and its files,
            for attachments that exist on disk
        archives: archive names of new media files
        root_keys: path relative to ``db_root``, device, inode, size,
            ``mtime_ns`` and ``ctime_ns`` of the files below ``db_root``,
            as :func:`os.stat` gave them while they were listed,
            in the columns of
            :data:`audb_publish.integrity.KEY_SCHEMA`,
            for :mod:`audb_publish.checksum_cache`

    """

    db: audformat.Database
    db_root: str
    version: str
    previous_version: str | None
    repository: audb.Repository
    remote: Remote
    deps: audb.Dependencies
    root_files: dict[str, int]
    media: set[str]
    tables: dict[str, str]
    attachments: dict[str, list[str]]
    archives: Mapping[str, str]
    root_keys: pa.Table = dataclasses.field(
        default_factory=lambda: KEY_SCHEMA.empty_table()
    )


def check_versions(version: str, previous_version: str | None) -> None:
    r"""Check the version strings.

    Args:
        version: version to publish
        previous_version: version it depends on, ``"latest"`` or ``None``

    Raises:
        ValueError: if a version cannot be parsed by
            :class:`audeer.StrictVersion`,
            or ``previous_version`` is not smaller than ``version``

    Examples:
        >>> check_versions("1.1.0", "1.0.0")
        >>> check_versions("1.0.0", "1.1.0")
        Traceback (most recent call last):
        ...
        ValueError: 'previous_version' needs to be smaller than 'version', but yours is 1.1.0 >= 1.0.0.

    """  # noqa: E501
    new = audeer.StrictVersion(version)
    if previous_version in (None, "latest"):
        return
    if new <= audeer.StrictVersion(previous_version):
        raise ValueError(
            "'previous_version' needs to be smaller than 'version', "
            f"but yours is {previous_version} >= {version}."
        )


@dataclasses.dataclass(frozen=True)
class Basis:
    r"""What a publication builds on, checked before any worker starts.

    Args:
        db: database header, without table data
        db_root: database root
        version: version to publish
        repository: the repository
        previous_version: version it depends on, or ``None``
        deps: dependency table of ``previous_version``, or empty

    """

    db: audformat.Database
    db_root: str
    version: str
    repository: audb.Repository
    previous_version: str | None
    deps: audb.Dependencies


def check_basis(
    db_root: str,
    version: str,
    repository: audb.Repository | None,
    previous_version: str | None,
) -> Basis:
    r"""Check what :func:`audb.publish` checks before it first uses ``num_workers``.

    In audb's order:
    the header, the repository and previous version,
    that the version does not exist,
    the dependency table,
    and, for a database without tables
    (which audb loads without workers), the IDs.
    So these errors win over a bad ``num_workers``, as in audb.

    Args:
        db_root: database root
        version: version to publish
        repository: repository, or ``None`` to use the previous version's
        previous_version: version it depends on, ``"latest"`` or ``None``

    Returns:
        what the publication builds on

    Raises:
        RuntimeError, ValueError, FileNotFoundError: as :func:`audb.publish`

    """
    db = load_header(db_root)
    repository, previous_version, versions = resolve_repository(
        db.name, version, repository, previous_version
    )
    if version in versions:
        raise RuntimeError(
            f"A version '{version}' already exists for database '{db.name}'."
        )
    deps = load_dependencies(db_root, db.name, previous_version, repository)
    if not list(db):
        check_ids(db)
    return Basis(db, db_root, version, repository, previous_version, deps)


def validate(
    scheduler: Scheduler,
    basis: Basis,
    archives: Mapping[str, str] | None,
    *,
    converted_root: str | None = None,
    table_cache: TableCache,
) -> Context:
    r"""Validate a database before it is published.

    Args:
        scheduler: reads and checks the table indices in parallel
        basis: what :func:`check_basis` found
        archives: archive names of new media files
        converted_root: where tables stored only as pickle
            are saved as PARQUET, ``db_root`` if ``None``;
            tables saved elsewhere are named by their absolute path
        table_cache: a table whose file and definition
            are unchanged since they passed validation is not read,
            and every table read is recorded
            (see :mod:`audb_publish.table_cache`;
            :meth:`~audb_publish.table_cache.TableCache.off` knows none)

    Returns:
        context of the publication

    Raises:
        RuntimeError, ValueError, FileNotFoundError, TypeError:
            as :func:`audb.publish`

    """
    db, db_root, deps = basis.db, basis.db_root, basis.deps
    indices = read_indices(scheduler, db, db_root, table_cache)
    check_ids(db)
    media = table_media(db, indices)
    if not all(is_portable(file) for file in media):
        raise RuntimeError(
            "Some files in the tables have absolute paths "
            "or use '\\', '.', '..' in its path. "
            "Please replace those paths by relative paths, "
            "use folder names instead of dots, "
            "and avoid Windows path notation."
        )
    check_duplicates(scheduler, indices)
    root_keys = {name: [] for name in KEY_SCHEMA.names}
    root_files = list_files(db_root, root_keys)
    check_missing_media(media, root_files, deps)
    tables = table_files(db, db_root, converted_root or db_root)
    attachments = check_attachments(db, db_root, media, deps, tables)
    check_parquet_metadata(db_root, tables)
    check_tables_as_media(media, tables)
    check_new_media_extensions(media, root_files, deps)
    return Context(
        db=db,
        db_root=db_root,
        version=basis.version,
        previous_version=basis.previous_version,
        repository=basis.repository,
        remote=Remote.of(basis.repository),
        deps=deps,
        root_files=root_files,
        media=media,
        tables=tables,
        attachments=attachments,
        archives=archives or {},
        root_keys=pa.table(root_keys, KEY_SCHEMA),
    )


def load_header(db_root: str) -> audformat.Database:
    r"""Load the database header, without table data.

    Args:
        db_root: database root

    Returns:
        database

    Raises:
        FileNotFoundError: if ``db_root`` has no ``db.yaml``,
            as from :meth:`audformat.Database.load`,
            but saying that the folder is not an audformat database

    Examples:
        >>> load_header("mydb")
        Traceback (most recent call last):
        FileNotFoundError: 'mydb' is not an audformat database: it has no db.yaml (mydb/db.yaml)

    """  # noqa: E501
    header = os.path.join(db_root, HEADER_FILE)
    if not os.path.exists(header):
        raise FileNotFoundError(
            f"'{db_root}' is not an audformat database: "
            f"it has no {HEADER_FILE} ({header})"
        )
    return audformat.Database.load(db_root, load_data=False)


def published_versions(repository: audb.Repository, name: str) -> list[str]:
    r"""Versions of a database in a repository.

    Args:
        repository: repository
        name: database name

    Returns:
        versions, empty if the repository cannot be reached

    """
    with Remote(repository.create_backend_interface()) as remote:
        return remote.versions(layout.header(name))


def resolve_repository(
    name: str,
    version: str,
    repository: audb.Repository | None,
    previous_version: str | None,
) -> tuple[audb.Repository, str | None, list[str]]:
    r"""Find the repository and the previous version.

    Args:
        name: database name
        version: version to publish
        repository: requested repository or ``None``
        previous_version: requested previous version,
            ``"latest"`` or ``None``

    Returns:
        repository, resolved previous version,
        and the versions of the database in that repository

    Raises:
        ValueError: if ``repository`` is ``None``
            and there is no previous version
        RuntimeError: if the previous version is
            in another repository than ``repository``

    """
    versions = []
    if repository is not None:
        versions = published_versions(repository, name)
    if previous_version == "latest":
        known = audeer.sort_versions(list(set(audb.versions(name) + versions)))
        previous_version = known[-1] if known else None
    if previous_version is None:
        if repository is None:
            raise ValueError(
                "You have to provide a 'repository' "
                "when publishing a database "
                "that does not depend on a previous version."
            )
    elif previous_version not in versions:
        previous_repository = audb.repository(name, previous_version)
        if repository is not None:
            raise RuntimeError(
                split_repository_message(
                    version, repository, previous_repository, previous_version
                )
            )
        repository = previous_repository
        versions = published_versions(repository, name)
    return repository, previous_version, versions


def split_repository_message(
    version: str,
    repository: audb.Repository,
    previous_repository: audb.Repository,
    previous_version: str,
) -> str:
    r"""Error message for a previous version in another repository.

    Args:
        version: version to publish
        repository: requested repository
        previous_repository: repository of the previous version
        previous_version: previous version

    Returns:
        message

    """
    return (
        f"Cannot publish version '{version}' "
        f"to repository '{repository.name}' "
        f"based on previous version '{previous_version}'. "
        "The previous version is stored in repository "
        f"'{previous_repository.name}'. "
        "Publishing to a different repository would split the database "
        "across multiple repositories, "
        "which can create data privacy risks "
        "and is not supported. "
        "Use previous_version=None "
        f"to start a new database in '{repository.name}' "
        f"or publish to the same repository '{previous_repository.name}'."
    )


def load_dependencies(
    db_root: str,
    name: str,
    previous_version: str | None,
    repository: audb.Repository,
) -> audb.Dependencies:
    r"""Load the dependency table in ``db_root`` and check it.

    The table must equal that of ``previous_version``
    in ``repository``, the repository published to.
    It is compared with the repository's copy,
    never with audb's cache,
    which is keyed by name and version only
    and may hold the table of a database of the same name
    in another repository.
    :func:`audb.publish` compares with the cache,
    and so agrees with this check on a clean cache;
    the message of a mismatch is upstream's,
    and its hint to call :func:`audb.load_to` holds,
    as the table it compares with is the repository's.

    Args:
        db_root: database root
        name: database name
        previous_version: version it depends on, or ``None``
        repository: repository that holds ``previous_version``

    Returns:
        dependency table, empty if there is none

    Raises:
        RuntimeError: if a dependency table is present without
            a previous version, missing with one,
            or differs from the previous version's

    """
    deps = Dependencies()
    deps_file = LEGACY_DEPENDENCY_FILE
    for deps_file in [DEPENDENCY_FILE, LEGACY_DEPENDENCY_FILE]:
        path = os.path.join(db_root, deps_file)
        if os.path.exists(path):
            deps.load(path)
            break
    if previous_version is None:
        if len(deps) > 0:
            raise RuntimeError(
                "You did not set a dependency to a previous version, "
                f"but you have a '{deps_file}' file present "
                f"in {db_root}."
            )
        return deps
    if len(deps) == 0:
        raise RuntimeError(
            f"You want to depend on '{previous_version}' "
            f"of {name}, "
            f"but you don't have a '{DEPENDENCY_FILE}' file present "
            f"in {db_root}. "
            f"Did you forgot to call "
            f"'audb.load_to({db_root}, {name}, "
            f"version={previous_version}?"
        )
    local = os.path.join(db_root, deps_file)
    if not _same_as_published(deps, local, repository, name, previous_version):
        raise RuntimeError(
            f"You want to depend on '{previous_version}' "
            f"of {name}, "
            f"but the dependency file '{deps_file}' "
            f"in {db_root} "
            f"does not match the dependency file "
            f"for the requested version in the repository. "
            f"Did you forgot to call "
            f"'audb.load_to({db_root}, {name}, "
            f"version='{previous_version}') "
            f"or modified the file manually?"
        )
    return deps


def _same_as_published(
    deps: audb.Dependencies,
    local: str,
    repository: audb.Repository,
    name: str,
    version: str,
) -> bool:
    r"""Tell whether ``deps`` equals the table of ``version`` in ``repository``.

    A file with the checksum of the repository's copy is the same
    without reading the table there;
    else the repository's table is read and compared.

    Args:
        deps: dependency table loaded from ``local``
        local: its file
        repository: repository
        name: database name
        version: published version

    Returns:
        ``True`` if the tables are equal

    Raises:
        audbackend.BackendError: if the repository's table cannot be read

    """
    path = layout.dependencies(name)
    with (
        Remote(repository.create_backend_interface()) as remote,
        tempfile.TemporaryDirectory(prefix="audb-publish-deps-") as tmp,
    ):
        if remote.exists(path, version):
            if local.endswith(DEPENDENCY_FILE):
                checksum = remote.interface.checksum(path, version)
                if checksum == audeer.md5(local):
                    return True
            published = os.path.join(tmp, DEPENDENCY_FILE)
            with open(published, "wb") as fp:
                fp.write(remote.read(path, version))
        else:  # a version published by audb < 1.5
            remote.get_archive(layout.dependencies(name, legacy=True), tmp, version)
            published = os.path.join(tmp, LEGACY_DEPENDENCY_FILE)
        previous = Dependencies()
        previous.load(published)
    return deps().equals(previous())


def check_ids(db: audformat.Database) -> None:
    r"""Check that table and attachment IDs can be part of a backend path.

    Args:
        db: database

    Raises:
        RuntimeError: if an ID has a char not in ``[A-Za-z0-9._-]``

    """
    for kind, ids in (("Table", list(db)), ("Attachment", list(db.attachments))):
        for id_ in ids:
            if _ALLOWED_ID.fullmatch(id_) is None:
                raise RuntimeError(
                    f"{kind} IDs must only contain chars from "
                    f"{ALLOWED_ID_CHARS}, "
                    f"which is not the case for {kind.lower()} '{id_}'."
                )


def read_indices(
    scheduler: Scheduler,
    db: audformat.Database,
    db_root: str,
    cache: TableCache,
) -> dict[str, pd.Index]:
    r"""Read and check every table, in parallel, and keep their indices.

    As :meth:`audformat.Database.load` does,
    misc tables come first, then tables, each in header order,
    and the first table in that order that cannot be loaded
    raises its error, whichever table failed first in time.

    Args:
        scheduler: worker pool, its display shows the bytes of the table files
        db: database header
        db_root: database root
        cache: the unique media files of a table it knows unchanged
            stand for its index, and every table read is recorded

    Returns:
        table ID and index, in the order of ``list(db)``

    Raises:
        RuntimeError, ValueError: as :meth:`audformat.Table.load`

    """
    table_ids = list(db.misc_tables) + list(db.tables)
    sizes = {table_id: _table_bytes(db_root, table_id) for table_id in table_ids}
    scheduler.display.phase(
        "check tables", total_bytes=sum(sizes.values()), total_files=len(table_ids)
    )

    def read(table_id: str) -> pd.Index:
        index = read_index(db, db_root, table_id, cache)
        scheduler.display.update(sizes[table_id], files=1)
        return index

    futures = [scheduler.submit(read, table_id) for table_id in table_ids]
    indices = dict(zip(table_ids, scheduler.ordered(futures), strict=True))
    return {table_id: indices[table_id] for table_id in db}


def read_index(
    db: audformat.Database,
    db_root: str,
    table_id: str,
    cache: TableCache,
) -> pd.Index:
    r"""Index of a table, or its media files from ``cache`` if unchanged.

    Args:
        db: database header
        db_root: database root
        table_id: table ID
        cache: table cache

    Returns:
        index as :func:`audb_publish.indices.table_index` reads it,
        or the unique media files the table references, named ``file``

    Raises:
        RuntimeError, ValueError: as :meth:`audformat.Table.load`

    """
    path = os.path.join(db_root, f"db.{table_id}")
    digest = None
    if cache.enabled and not os.path.exists(f"{path}.pkl"):
        path += ".parquet" if os.path.exists(f"{path}.parquet") else ".csv"
        digest = definition(db, table_id) if os.path.exists(path) else None
    if digest is None:
        return table_index(db_root, table_id, db[table_id])
    index = cache.lookup(table_id, path, digest)
    if index is not None:
        return index
    before = os.stat(path)
    index = table_index(db_root, table_id, db[table_id])
    cache.record(table_id, path, before, digest, index)
    return index


def _table_bytes(db_root: str, table_id: str) -> int:
    return sum(
        os.path.getsize(path)
        for ext in ("csv", "parquet", "pkl")
        if os.path.exists(path := os.path.join(db_root, f"db.{table_id}.{ext}"))
    )


def table_media(db: audformat.Database, indices: Mapping[str, pd.Index]) -> set[str]:
    r"""Media files referenced by filewise and segmented tables.

    Args:
        db: database header
        indices: index of each table

    Returns:
        file names, as :attr:`audformat.Database.files`

    """
    files: set[str] = set()
    for table_id in db.tables:
        # unique first: iterating millions of rows in Python takes seconds
        files.update(indices[table_id].get_level_values("file").unique())
    return files


def is_portable(file: str) -> bool:
    r"""Whether a media path is relative and uses no ``\``, ``.`` or ``..``.

    Args:
        file: path of a media file in a table

    Returns:
        ``True`` if a database with this file is portable,
        as :attr:`audformat.Database.is_portable` decides

    Examples:
        >>> is_portable("a/b.wav"), is_portable("a/../b.wav")
        (True, False)

    """
    return not (
        os.path.isabs(file)
        or "\\" in file
        or file.startswith(("./", "../"))
        or "/./" in file
        or "/../" in file
    )


def check_duplicates(scheduler: Scheduler, indices: Mapping[str, pd.Index]) -> None:
    r"""Check that no table has duplicated index entries, in parallel.

    The first table in the order of ``indices`` with duplicates raises,
    as in :func:`audb.publish` with one worker.

    Args:
        scheduler: worker pool
        indices: index of each table

    Raises:
        ValueError: if a table has duplicated index entries

    """
    scheduler.ordered(
        [
            scheduler.submit(audformat.assert_no_duplicates, index)
            for index in indices.values()
        ]
    )


def list_files(root: str, keys: dict[str, list] | None = None) -> dict[str, int]:
    r"""Files below ``root`` and their sizes, as :func:`audb.publish` sees them.

    Like :func:`audeer.list_file_names` with ``hidden=False``,
    files whose name starts with a dot are left out,
    and symbolic links are followed
    until the operating system refuses to resolve them:
    a link to a parent folder is followed about 40 levels deep,
    as :func:`audeer.list_file_names` does.

    Args:
        root: folder
        keys: if given, lists of the columns of
            :data:`audb_publish.integrity.KEY_SCHEMA`
            to which each file's relative path, device, inode, size,
            ``mtime_ns`` and ``ctime_ns`` are appended

    Returns:
        relative paths with ``/`` separators, and sizes in bytes

    Examples:
        >>> _ = audeer.touch(audeer.mkdir("root", "sub"), "a.wav")
        >>> list_files("root")
        {'sub/a.wav': 0}

    """
    files: dict[str, int] = {}
    stack = [("", root)]
    while stack:
        prefix, folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if _is_dir(entry):
                    stack.append((f"{prefix}{entry.name}/", entry.path))
                elif not entry.name.startswith(".") and _is_file(entry):
                    stat = entry.stat()
                    files[prefix + entry.name] = stat.st_size
                    if keys is not None:
                        keys["file"].append(prefix + entry.name)
                        keys["dev"].append(stat.st_dev)
                        keys["ino"].append(stat.st_ino)
                        keys["size"].append(stat.st_size)
                        keys["mtime_ns"].append(stat.st_mtime_ns)
                        keys["ctime_ns"].append(stat.st_ctime_ns)
    return files


def _is_dir(entry: os.DirEntry) -> bool:
    # as os.path.isdir(): a link that cannot be resolved is no folder
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def check_missing_media(
    media: set[str],
    root_files: Mapping[str, int],
    deps: audb.Dependencies,
) -> None:
    r"""Check that every referenced media file is on disk or already published.

    Args:
        media: media files referenced by the tables
        root_files: files in the database root
        deps: dependency table

    Raises:
        RuntimeError: if a media file is neither on disk
            nor in the dependency table

    """
    missing = sorted(media.difference(deps.media).difference(root_files))
    if not missing:
        return
    shown = 20
    listed = str(missing[:shown])
    if len(missing) > shown:
        listed = listed[:-1] + ", ...]"
    raise RuntimeError(
        f"The following {len(missing)} files are referenced in tables, "
        "but cannot be found on disk "
        f"and are not yet part of the database: {listed}."
    )


def table_files(
    db: audformat.Database, db_root: str, converted_root: str
) -> dict[str, str]:
    r"""File that stores each table, saving pickle-only tables as PARQUET.

    A table stored as PARQUET is published from that file,
    else from its CSV file.
    A table stored only as pickle is saved as PARQUET first,
    as :func:`audb.publish` does.

    Args:
        db: database header, pickle-only tables loaded
        db_root: database root
        converted_root: where pickle-only tables are saved

    Returns:
        table ID and file name relative to ``db_root``,
        or its absolute path if saved outside ``db_root``

    """
    files = {}
    for table_id in list(db):
        name = f"db.{table_id}"
        base = os.path.join(db_root, name)
        if not os.path.exists(f"{base}.csv") and not os.path.exists(f"{base}.parquet"):
            if converted_root != db_root:
                path = os.path.join(os.path.abspath(converted_root), name)
                db[table_id].save(path, storage_format="parquet")
                files[table_id] = f"{path}.parquet"
                continue
            db[table_id].save(base, storage_format="parquet")
        ext = "parquet" if os.path.exists(f"{base}.parquet") else "csv"
        files[table_id] = f"{name}.{ext}"
    return files


def check_parquet_metadata(db_root: str, tables: Mapping[str, str]) -> None:
    r"""Check that every PARQUET table file has metadata.

    :func:`audb.publish` takes the checksum of a PARQUET file
    from the ``hash`` in its metadata,
    or, if the metadata lack it, the MD5 of the file.
    A file without any metadata (written by plain pyarrow)
    makes it fail with
    ``TypeError: argument of type 'NoneType' is not iterable``.

    Args:
        db_root: database root
        tables: table ID and the file that stores it, in audb's order

    Raises:
        TypeError: if a PARQUET table file has no metadata

    """
    for table_id, file in tables.items():
        if not file.endswith(".parquet"):
            continue
        path = os.path.join(db_root, file)
        if pyarrow.parquet.read_schema(path).metadata is None:
            raise TypeError(
                f"The file '{file}' of table '{table_id}' has no metadata, "
                "so audb.publish cannot take its checksum. "
                "Save the table with audformat, "
                f"e.g. db['{table_id}'].save(...)."
            )


def check_tables_as_media(media: set[str], tables: Mapping[str, str]) -> None:
    r"""Check that no table lists a table file as media that audb cannot load.

    :func:`audb.publish` keeps a table file whose checksum is its MD5
    (a CSV file)
    as a table in the dependency table, even if a table lists it as media,
    and :func:`audb.load` then fails to find the media file.
    A PARQUET file, whose checksum is the hash in its metadata
    (see :func:`check_parquet_metadata`), becomes a media file and loads.

    Args:
        media: media files referenced by the tables
        tables: table ID and the file that stores it

    Raises:
        RuntimeError: if a table lists a CSV table file as media

    """
    for file in sorted(media.intersection(tables.values())):
        if not file.endswith(".parquet"):
            raise RuntimeError(
                f"The table file '{file}' is listed as a media file in a table. "
                "audb.publish would publish a version "
                "that audb.load cannot load. "
                "Remove it from the media files of the tables."
            )


def check_attachments(
    db: audformat.Database,
    db_root: str,
    media: set[str],
    deps: audb.Dependencies,
    tables: Mapping[str, str],
) -> dict[str, list[str]]:
    r"""Check attachments and list their files.

    As :func:`audb.publish`, an attachment must not contain
    a media file or the CSV file of a table.
    Stricter than audb, it must not contain a table's PARQUET file either:
    audb publishes such a version, but it cannot be loaded.

    Args:
        db: database
        db_root: database root
        media: media files referenced by the tables
        deps: dependency table
        tables: table ID and the file that stores it

    Returns:
        attachment ID and its files, for attachments on disk

    Raises:
        RuntimeError: if an attachment overlaps with media or tables,
            is a symlink,
            is an empty folder or contains an empty sub-folder
        FileNotFoundError: if an attachment is neither on disk
            nor in the dependency table

    """
    parquet = [f"db.{t}.parquet" for t in db.tables if tables[t].endswith(".parquet")]
    others = sorted(media) + [f"db.{t}.csv" for t in db.tables] + parquet
    others = pd.Index(others, dtype=object)
    files = {}
    for attachment_id, attachment in db.attachments.items():
        overlap = others[others.str.startswith(attachment.path)]
        if len(overlap) > 0:
            raise RuntimeError(
                "An attachment must not "
                "overlap with media or tables. "
                f"But attachment '{attachment_id}' "
                f"contains '{overlap[0]}'."
            )
        path = audeer.path(db_root, attachment.path)
        if not os.path.exists(path):
            if attachment.path not in deps:
                _ = attachment.files  # raises FileNotFoundError
            continue
        check_empty_folders(attachment_id, path)
        files[attachment_id] = attachment.files
        if not files[attachment_id]:
            raise RuntimeError(
                "An attached folder must "
                "contain at least one file. "
                f"But attachment '{attachment_id}' "
                "points to an empty folder."
            )
    return files


def check_empty_folders(attachment_id: str, path: str) -> None:
    r"""Check that an attached folder has no empty sub-folder.

    Args:
        attachment_id: attachment ID
        path: attached file or folder

    Raises:
        RuntimeError: if a sub-folder is empty

    """
    if not os.path.isdir(path):
        return
    folders = audeer.list_dir_names(path, recursive=True, hidden=True, basenames=True)
    for folder in folders:
        if not os.listdir(os.path.join(path, folder)):
            raise RuntimeError(
                "An attachment must not "
                "contain empty sub-folders. "
                f"But attachment '{attachment_id}' "
                f"contains the empty sub-folder '{folder}'."
            )


def check_new_media_extensions(
    media: set[str],
    root_files: Mapping[str, int],
    deps: audb.Dependencies,
) -> None:
    r"""Check that new media files have lowercase extensions.

    Args:
        media: media files referenced by the tables
        root_files: files in the database root
        deps: dependency table

    Raises:
        RuntimeError: if a new media file has an uppercase letter
            in its file extension

    """
    for file in sorted(media.intersection(root_files).difference(deps.media)):
        ext = audeer.file_extension(file)
        if ext.lower() != ext:
            raise RuntimeError(
                "The file extension of a media file must be lowercase, "
                f"but '{file}' includes at least one uppercase letter."
            )
