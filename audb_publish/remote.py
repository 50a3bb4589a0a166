"""The one adapter between this package and audbackend.

Everything that touches audbackend goes through :class:`Remote`.
It writes archives with :func:`audb_publish.zipwriter.write_zip`,
which computes the archive's MD5 while writing it,
so no archive is read a second time:

* file-system backend: the archive is written next to its destination
  and renamed into place atomically, never copied
* MinIO/S3 backend: the archive is written to a local temporary folder
  and uploaded from there with the checksum already known
* any other backend: written locally,
  then handed to the backend's public ``put_file()``

As audbackend does,
a file whose destination already exists with the same checksum
is not written again.

Every file put (or found there with the same checksum) gets a stamp,
which :meth:`Remote.changed` compares with the repository before commit:
size, modification time and inode on the file system,
size and checksum (the ETag of a listing, or the checksum metadata
of an object uploaded in parts) on MinIO/S3.
A file can also be created only if it does not exist
(:meth:`Remote.put_file` with ``exclusive=True``, :meth:`Remote.create`):
with a hard link on the file system,
with ``If-None-Match: *`` on MinIO/S3.

The audbackend internals used here
(``FileSystem._expand()`` and ``FileSystem._root``, ``Minio._put_file()``,
``Minio._client``, ``Minio.repository``
and ``audbackend.core.utils.call_function_on_backend()``)
are pinned by ``pyproject.toml``
and exercised by every test that publishes to the file system
and to S3 (SeaweedFS), such as ``tests/test_equivalence.py``,
``tests/test_lock.py`` and ``tests/test_verify.py``.

"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import fcntl
import functools
import getpass
import hashlib
import io
import mimetypes
import os
import shutil
import tempfile
import threading
import typing
from xml.etree import ElementTree

import audb
import audbackend

from audb_publish import hashing
from audb_publish import integrity
from audb_publish import layout
from audb_publish import network
from audb_publish import owners
from audb_publish import zipwriter
from audb_publish.layout import DEPENDENCY_FILE  # noqa: F401 - for commit
from audb_publish.layout import HEADER_FILE  # noqa: F401 - for commit
from audb_publish.threads import waiting

Writer = Callable[[str, bool], str]
r"""Writes a file to a path and returns its MD5, if asked to compute it."""


@dataclasses.dataclass(frozen=True)
class Transfer:
    r"""What one put did.

    Args:
        path: backend path, e.g. ``/db/media/1.0.0/a.zip``
        kind: ``"archive"`` or ``"file"``
        size: bytes written, ``None`` if the file was there already
        stamp: what :meth:`Remote.changed` compares with the repository

    """

    path: str
    kind: str
    size: int | None
    stamp: tuple


@dataclasses.dataclass(frozen=True)
class Entry:
    r"""A small file of the repository, as a conditional write needs it.

    Args:
        data: content
        tag: what :meth:`Remote.replace_if` and :meth:`Remote.remove_if`
            compare: the ETag on MinIO/S3, the MD5 of ``data`` elsewhere
        age: seconds since the file was last written,
            by the clock of the repository
            (its ``Date`` against ``Last-Modified`` on MinIO/S3,
            a file written now against its modification time
            on the file system),
            ``None`` where the backend does not tell

    """

    data: bytes
    tag: str
    age: float | None


class Remote:
    r"""Versioned repository of one database.

    Paths are given as in audb,
    e.g. ``/<name>/media/<archive>.zip`` plus a version,
    and mapped to ``/<name>/media/<version>/<archive>.zip``
    as :class:`audbackend.interface.Versioned` does.

    Open a repository with :meth:`of`:
    on MinIO/S3 it then uploads archives apart from the workers that write them,
    with as many requests in flight as :attr:`pacer` allows,
    through one connection pool,
    see :mod:`audb_publish.network`.

    Args:
        interface: versioned interface returned by
            :meth:`audb.Repository.create_backend_interface`
        pacer: limit of requests in flight, for the connection pool
            of the interface's MinIO client;
            without it, every upload is made by the worker that wrote it,
            through the client's own pool

    Examples:
        >>> import audb
        >>> repo = audb.Repository("repo", "/tmp/host", "file-system")
        >>> remote = Remote(repo.create_backend_interface())
        >>> remote.path("/db/media/a.zip", "1.0.0")
        '/db/media/1.0.0/a.zip'

    """

    def __init__(
        self,
        interface: audbackend.interface.Versioned,
        *,
        pacer: network.Pacer | None = None,
    ):
        self.interface = interface
        self.backend = interface.backend
        self.pacer = pacer
        r"""Limit of requests in flight, ``None`` if not opened by :meth:`of`."""
        self._uploads: network.Uploads | None = None
        self._tmp: str | None = None
        self._lock = threading.Lock()
        self._listed: dict[str, set[str]] = {}
        self.transfers: Counter = Counter()
        r"""Files written and skipped, by kind:
        ``("archive" or "file", "put" or "skipped")``,
        and ``"bytes"`` written."""
        self.stamps: dict[str, tuple] = {}
        r"""Stamp of each backend path put or skipped, see :meth:`changed`:
        local path and :func:`os.stat` values on the file system,
        size and MD5 elsewhere."""

    @classmethod
    def of(cls, repository: audb.Repository) -> Remote:
        r"""The repository, with one connection pool and pacer on MinIO/S3.

        The MinIO client gets the pool
        through audbackend's ``http_client`` argument,
        see :func:`audb_publish.network.http_client`.

        Args:
            repository: repository

        Returns:
            the repository, not yet entered

        Raises:
            ValueError: if the backend is not registered

        Examples:
            >>> import audb
            >>> repo = audb.Repository("repo", "/tmp/host", "file-system")
            >>> Remote.of(repo).pacer is None
            True

        """
        registered = audb.Repository.backend_registry.get(repository.backend)
        if registered is None or not issubclass(registered, audbackend.backend.Minio):
            return cls(repository.create_backend_interface())
        pacer = network.Pacer()
        backend = registered(
            repository.host, repository.name, http_client=network.http_client(pacer)
        )
        return cls(audbackend.interface.Versioned(backend), pacer=pacer)

    def configure(self, num_workers: int, max_requests: int | None) -> None:
        r"""Set the requests in flight of a publish.

        Args:
            num_workers: never fewer requests in flight
            max_requests: requests in flight to start with and at most,
                adapting between :data:`audb_publish.network.START`
                and :data:`audb_publish.network.CAP` if ``None``

        """
        if self.pacer is not None:
            self.pacer.configure(num_workers, max_requests)

    @property
    def retries(self) -> int:
        r"""Requests retried so far."""
        return 0 if self.pacer is None else self.pacer.retries

    def flush(self) -> None:
        r"""Wait for the uploads in flight; raise the first that failed.

        Raises:
            audbackend.BackendError: if an upload failed

        """
        if self._uploads is not None:
            self._uploads.flush()

    def __enter__(self) -> Remote:
        self.backend.open()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._uploads is not None:
            self._uploads.close()
            self._uploads = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.backend.close()

    @property
    def is_file_system(self) -> bool:
        r"""``True`` for audbackend's file-system backend."""
        return isinstance(self.backend, audbackend.backend.FileSystem)

    @property
    def is_minio(self) -> bool:
        r"""``True`` for audbackend's MinIO/S3 backend."""
        return isinstance(self.backend, audbackend.backend.Minio)

    def path(self, path: str, version: str) -> str:
        r"""Backend path of ``path`` in ``version``.

        Args:
            path: unversioned path, e.g. ``/db/media/a.zip``
            version: version string

        Returns:
            versioned path, e.g. ``/db/media/1.0.0/a.zip``

        Raises:
            ValueError: if ``path`` or ``version`` contain chars
                the backend does not allow

        """
        version = audbackend.core.utils.check_version(version)
        return layout.versioned(check_path(path), version)

    def versions(self, path: str) -> list[str]:
        r"""Versions of ``path``, or an empty list if the backend fails.

        Args:
            path: unversioned path

        Returns:
            sorted versions

        """
        return self.interface.versions(path, suppress_backend_errors=True)

    def exists(self, path: str, version: str) -> bool:
        r"""Check if ``path`` exists in ``version``.

        Args:
            path: unversioned path
            version: version string

        Returns:
            ``True`` if it exists

        """
        return self.interface.exists(path, version)

    def present(self, paths: Sequence[str], version: str) -> list[bool]:
        r"""Tell which paths exist in ``version``, listing each folder once.

        Args:
            paths: unversioned paths
            version: version string

        Returns:
            per path, ``True`` if it exists

        """
        with waiting():
            return [self._remote_exists(self.path(p, version)) for p in paths]

    def remove_file(self, path: str, version: str) -> None:
        r"""Remove ``path`` in ``version``.

        Args:
            path: unversioned path
            version: version string

        """
        self.interface.remove_file(path, version)

    def get_archive(self, path: str, dst_root: str, version: str) -> list[str]:
        r"""Download and extract an archive.

        Args:
            path: unversioned path of the archive
            dst_root: folder to extract to
            version: version string

        Returns:
            extracted files relative to ``dst_root``

        """
        with waiting():
            return self.interface.get_archive(path, dst_root, version)

    def put_archive(
        self,
        path: str,
        version: str,
        root: str,
        files: Sequence[str],
        levels: Sequence[zipwriter.Deflate | None],
        *,
        progress: Callable[[int], None] | None = None,
        guards: Sequence[integrity.Guard | None] | None = None,
    ) -> Transfer:
        r"""Write a ZIP archive of ``files`` and put it in ``version``.

        Args:
            path: unversioned path of the archive
            version: version string
            root: folder the files are relative to
            files: member files, relative to ``root``
            levels: deflate engine and level of each member,
                ``None`` to store it
            progress: called with the number of bytes read,
                as the archive is written
            guards: per file, ``None`` or a guard that checks it
                not to have changed since its scan,
                see :func:`audb_publish.zipwriter.write_zip`

        Returns:
            what the put did

        Raises:
            audbackend.BackendError: if the backend fails
            audb_publish.integrity.FileChangedError: if a file
                changed since its scan
            FileNotFoundError: if a file does not exist

        """

        def write(dst: str, md5: bool) -> str:
            info = zipwriter.write_zip(
                dst, root, files, levels, progress=progress, md5=md5, guards=guards
            )
            return info.md5

        return self._put(path, version, write, "archive")

    def put_file(
        self,
        src: str,
        path: str,
        version: str,
        *,
        guard: integrity.Guard | None = None,
        exclusive: bool = False,
    ) -> Transfer:
        r"""Put a local file in ``version``.

        Args:
            src: local file
            path: unversioned destination path
            version: version string
            guard: if given, checks ``src`` after it was copied
                not to have changed since its scan
            exclusive: put it only if no file is at ``path``,
                as one atomic step on the file system and on MinIO/S3.
                Meant for small files: on MinIO/S3 it is sent from memory

        Returns:
            what the put did

        Raises:
            audbackend.BackendError: if the backend fails
            audb_publish.integrity.FileChangedError: if ``src``
                changed since its scan
            FileNotFoundError: if ``src`` does not exist
            FileExistsError: if ``exclusive`` and ``path`` exists

        """

        def write(dst: str, md5: bool) -> str:
            return hashing.copy_md5(src, dst, guard=guard)

        return self._put(path, version, write, "file", exclusive)

    def create(self, path: str, version: str, data: bytes) -> bool:
        r"""Create a small file, only if there is none at ``path``.

        Atomic on the file system (a hard link)
        and on MinIO/S3 servers that honour ``If-None-Match: *``
        (SeaweedFS 4.48 as tested; MinIO and AWS S3 as they document).
        Other backends check and then put.
        The file gets no stamp and is not counted in :attr:`transfers`.

        Args:
            path: unversioned path
            version: version string
            data: content

        Returns:
            ``False`` if a file was there

        Raises:
            audbackend.BackendError: if the backend fails

        """
        dst = self.path(path, version)
        checksum = hashlib.md5(data).hexdigest()
        if self.is_minio:  # sent from memory
            with waiting():
                return self._create_object(data, dst, checksum)
        if self.is_file_system:  # beside its destination, to link it there
            final = self.backend._expand(dst)
            local = _partial_name(final)
            try:
                os.makedirs(os.path.dirname(final), exist_ok=True)
            except OSError as error:
                raise audbackend.BackendError(error) from error
        else:
            local = os.path.join(tempfile.mkdtemp(dir=self._tmp_root()), "file")
        try:
            with open(local, "wb") as fp:
                fp.write(data)
            return self._create(local, dst, checksum)
        finally:
            _remove_quietly(local)

    def read(self, path: str, version: str) -> bytes:
        r"""Content of a small file.

        Args:
            path: unversioned path
            version: version string

        Returns:
            its bytes

        Raises:
            audbackend.BackendError: if the backend fails
                or the file does not exist

        """
        with self.open(path, version) as fp:
            return fp.read()

    def read_entry(self, path: str, version: str) -> Entry | None:
        r"""Content of a small file, with its tag and age.

        On the file system the read takes a shared :func:`fcntl.flock`,
        so it never sees a half-written :meth:`replace_if`.

        Args:
            path: unversioned path
            version: version string

        Returns:
            the file, ``None`` if there is none

        Raises:
            audbackend.BackendError: if the backend fails

        """
        dst = self.path(path, version)
        with waiting():
            try:
                if self.is_file_system:
                    return _read_local(self.backend._expand(dst))
                if self.is_minio:
                    return self._read_object(dst)
            except audbackend.BackendError:
                raise
            except Exception as error:
                raise audbackend.BackendError(error) from error
            if not self.backend.exists(dst):
                return None
            with self.open(path, version) as fp:
                data = fp.read()
            return Entry(data, hashlib.md5(data).hexdigest(), None)

    def replace_if(self, path: str, version: str, data: bytes, tag: str) -> bool:
        r"""Replace a small file, only if it is still as read.

        One atomic step on the file system
        (a rewrite in place under an exclusive :func:`fcntl.flock`)
        and on MinIO/S3 (a PUT with ``If-Match``);
        other backends check and then put.

        Args:
            path: unversioned path
            version: version string
            data: new content
            tag: :attr:`Entry.tag` of the file as read

        Returns:
            ``False`` if the file is gone or changed

        Raises:
            audbackend.BackendError: if the backend fails

        """
        dst = self.path(path, version)
        with waiting():
            try:
                if self.is_file_system:
                    return _replace_local(self.backend._expand(dst), data, tag)
                if self.is_minio:
                    checksum = hashlib.md5(data).hexdigest()
                    return self._write_object(data, dst, checksum, {"If-Match": tag})
            except audbackend.BackendError:
                raise
            except Exception as error:
                raise audbackend.BackendError(error) from error
            entry = self.read_entry(path, version)
            if entry is None or entry.tag != tag:
                return False
            local = os.path.join(tempfile.mkdtemp(dir=self._tmp_root()), "file")
            with open(local, "wb") as fp:
                fp.write(data)
            self.backend.put_file(local, dst)
            return True

    def remove_if(self, path: str, version: str, tag: str) -> bool:
        r"""Remove a small file, only if it is still as read.

        Atomic as :meth:`replace_if`, with ``If-Match`` on a DELETE.
        On the file system the version folder goes too,
        and the database folder, if they are then empty.

        Args:
            path: unversioned path
            version: version string
            tag: :attr:`Entry.tag` of the file as read

        Returns:
            ``False`` if the file is gone or changed

        Raises:
            audbackend.BackendError: if the backend fails

        """
        dst = self.path(path, version)
        with waiting():
            try:
                if self.is_file_system:
                    return _remove_local(self.backend._expand(dst), tag)
                if self.is_minio:
                    return self._delete_object(dst, tag)
            except audbackend.BackendError:
                raise
            except Exception as error:
                raise audbackend.BackendError(error) from error
            entry = self.read_entry(path, version)
            if entry is None or entry.tag != tag:
                return False
            self.backend.remove_file(dst)
            return True

    def sweep_partials(self, folders: Sequence[str], older_than: float) -> list[str]:
        r"""Remove partial files whose writers are gone.

        Only the file system has partial files:
        an archive is written beside its destination
        under a hidden name that holds its writer,
        see :mod:`audb_publish.owners`.
        A partial file is removed if its writer ran on this host
        and is provably gone,
        or if it was last written more than ``older_than`` seconds ago,
        by the clock of the repository.

        Args:
            folders: backend folders, e.g. ``/db/media/1.0.0/``
            older_than: seconds

        Returns:
            backend paths of the files removed

        """
        if not self.is_file_system:
            return []
        removed = []
        for folder in folders:
            local = self.backend._expand(folder)
            try:
                names = [n for n in os.listdir(local) if n.endswith(".partial")]
            except OSError:
                continue
            now = _local_now(local) if names else 0.0
            for name in names:
                path = os.path.join(local, name)
                try:
                    age = now - os.stat(path).st_mtime
                except OSError:
                    continue
                if owners.leftover(path) is not None or age > older_than:
                    _remove_quietly(path)
                    removed.append(folder + name)
        return removed

    def open(self, path: str, version: str) -> typing.BinaryIO:
        r"""Open a file of the repository for reading, without downloading it.

        On MinIO/S3 reads are ranged requests of at least 8 MiB.

        Args:
            path: unversioned path
            version: version string

        Returns:
            seekable binary file

        Raises:
            audbackend.BackendError: if the backend fails
                or the file does not exist

        """
        dst = self.path(path, version)
        try:
            if self.is_file_system:
                return open(self.backend._expand(dst), "rb")
            if self.is_minio:
                return _RangeReader(self.backend, dst)
        except Exception as error:
            raise audbackend.BackendError(error) from error
        folder = tempfile.mkdtemp(dir=self._tmp_root())
        local = os.path.join(folder, dst.rsplit("/", 1)[1])
        self.backend.get_file(dst, local)
        return open(local, "rb")

    def files(self, folder: str, *, partial: bool = False) -> dict[str, int]:
        r"""Files directly in a folder of the repository, with their sizes.

        Args:
            folder: backend folder, e.g. ``/db/media/1.0.0/``
            partial: also list partial files
                (only the file system has them)

        Returns:
            backend path to size in bytes,
            empty if the folder does not exist

        Raises:
            audbackend.BackendError: if the backend fails

        """
        listed = self._list(folder, partial=partial)
        return {path: size for path, (size, _) in listed.items()}

    def changed(self) -> list[str]:
        r"""Files put or skipped by this publish that are no longer as they were.

        Compares each stamp with the repository now:
        size, modification time and inode on the file system;
        on MinIO/S3 size and checksum from one listing per folder,
        plus the checksum metadata of objects uploaded in parts,
        whose ETag is no MD5;
        on other backends the checksum of each file.

        Waits for the uploads in flight first.

        Returns:
            sorted backend paths that are missing or changed

        Raises:
            audbackend.BackendError: if the backend fails

        """
        self.flush()
        with waiting():
            if self.is_file_system:
                return sorted(
                    path
                    for path, (local, stamp) in self.stamps.items()
                    if _file_stamp(local) != stamp
                )
            changed = []
            folders: dict[str, dict] = {}
            if self.is_minio:  # the folders at once: each waits a round trip
                names = sorted({p.rsplit("/", 1)[0] + "/" for p in self.stamps})
                with concurrent.futures.ThreadPoolExecutor(8) as pool:
                    folders = dict(zip(names, pool.map(self._list, names), strict=True))
            for path, (size, md5) in self.stamps.items():
                folder = path.rsplit("/", 1)[0] + "/"
                listed = folders.get(folder, {}).get(path)
                if listed is None and self.is_minio:
                    changed.append(path)
                elif listed is None or "-" in listed[1]:
                    same = self._checksum(path) == md5
                    same = same and (listed is None or listed[0] == size)
                    if not same:
                        changed.append(path)
                elif listed != (size, md5):
                    changed.append(path)
            return sorted(changed)

    def _checksum(self, path: str) -> str | None:
        try:
            return self.backend.checksum(path)
        except audbackend.BackendError:
            return None

    def _list(
        self, folder: str, *, partial: bool = False
    ) -> dict[str, tuple[int, str]]:
        r"""Backend path to size and ETag (``""`` off MinIO/S3) in ``folder``."""
        try:
            if self.is_file_system:
                root = self.backend._expand(folder)
                with os.scandir(root) as entries:
                    return {
                        folder + entry.name: (entry.stat().st_size, "")
                        for entry in entries
                        if entry.is_file()
                        and (partial or not entry.name.endswith(".partial"))
                    }
            if self.is_minio:
                return _list_objects(
                    self.backend._client,
                    self.backend.repository,
                    self.backend.path(folder),
                )
        except FileNotFoundError:
            return {}
        except Exception as error:
            raise audbackend.BackendError(error) from error
        with waiting():
            paths = self.backend.ls(folder, suppress_backend_errors=True)
        return {
            path: (-1, "") for path in paths if path.rsplit("/", 1)[0] + "/" == folder
        }

    def _put(
        self,
        path: str,
        version: str,
        write: Writer,
        kind: str,
        exclusive: bool = False,
    ) -> Transfer:
        r"""Write a file with ``write(dst, md5) -> md5`` and store it at ``path``.

        ``write`` may skip computing the MD5 if ``md5`` is ``False``.

        """
        dst = self.path(path, version)
        if self.is_file_system:
            size, stamp = self._put_local(dst, write, exclusive)
        else:
            # archives go up in the background; other files,
            # such as the dependency table before the header, at once
            size, stamp = self._put_upload(dst, write, exclusive, kind == "archive")
        transfer = Transfer(dst, kind, size, stamp)
        self.record(transfer)
        return transfer

    def record(self, transfer: Transfer) -> None:
        r"""Count a file put or skipped, and keep its stamp for :meth:`changed`.

        Puts of this object record themselves;
        puts of worker processes are recorded by the calling process.

        Args:
            transfer: what a put did

        """
        with self._lock:
            self.stamps[transfer.path] = transfer.stamp
            if transfer.size is None:
                self.transfers[transfer.kind, "skipped"] += 1
            else:
                self.transfers[transfer.kind, "put"] += 1
                self.transfers["bytes"] += transfer.size

    def _put_local(self, dst: str, write: Writer, exclusive: bool) -> tuple:
        final = self.backend._expand(dst)
        partial = _partial_name(final)
        try:
            exists = self._local_exists(final)
            # the checksum is only needed to skip a file that is there
            checksum = write(partial, exists)
            # a rename or a link keeps size, mtime and inode: the stamp
            stat = os.stat(partial)
            size = stat.st_size
            if exclusive:
                _link_new(partial, final)
            elif exists and hashing.md5(final) == checksum:
                os.remove(partial)
                stat, size = os.stat(final), None
            else:
                os.replace(partial, final)
            return size, (final, _stamp_of(stat))
        except BaseException as error:
            _remove_quietly(partial)
            taken = isinstance(error, FileExistsError)
            if isinstance(error, OSError) and not taken and self._in_repository(error):
                # as audbackend wraps errors of the repository
                raise audbackend.BackendError(error) from error
            raise

    def _in_repository(self, error: OSError) -> bool:
        r"""``True`` if ``error`` concerns a path in the file-system repository."""
        root = os.path.join(os.path.abspath(self.backend._root), "")
        return any(
            isinstance(name, str) and os.path.abspath(name).startswith(root)
            for name in (error.filename, error.filename2)
        )

    def _put_upload(
        self, dst: str, write: Writer, exclusive: bool, background: bool = False
    ) -> tuple:
        # keep the file name: the MinIO backend derives the content type from it
        folder = tempfile.mkdtemp(dir=self._tmp_root())
        local = os.path.join(folder, dst.rsplit("/", 1)[1])
        try:
            checksum = write(local, True)
            size = os.path.getsize(local)
            stamp = (size, checksum)
            with waiting():
                if exclusive:
                    if not self._create(local, dst, checksum):
                        raise FileExistsError(f"'{dst}' exists in the repository")
                    return size, stamp
                if self._there(dst, checksum):
                    return None, stamp
            uploads = self._uploads_in_flight() if background else None
            if uploads is None:
                with waiting():
                    self._upload(local, dst, checksum, size)
                return size, stamp
            send = functools.partial(self._upload, local, dst, checksum, size, folder)
            uploads.submit(send, size, _parts(size))
            folder = None  # the upload removes it
            return size, stamp
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _uploads_in_flight(self) -> network.Uploads | None:
        r"""Uploads apart from the workers, on MinIO/S3 opened with a pacer."""
        if self.pacer is None or not self.is_minio:
            return None
        with self._lock:
            if self._uploads is None:
                budget = network.budget(self._tmp_root_unlocked())
                self._uploads = network.Uploads(self.pacer, budget)
            return self._uploads

    def _create(self, local: str, dst: str, checksum: str) -> bool:
        r"""Put ``local`` at ``dst`` if nothing is there; ``False`` otherwise."""
        if self.is_file_system:
            try:
                _link_new(local, self.backend._expand(dst))
            except FileExistsError:
                return False
            except OSError as error:
                raise audbackend.BackendError(error) from error
            return True
        with waiting():
            if self.is_minio:
                with open(local, "rb") as fp:
                    return self._create_object(fp.read(), dst, checksum)
            if self.backend.exists(dst):
                return False
            self.backend.put_file(local, dst)
            return True

    def _create_object(self, data: bytes, dst: str, checksum: str) -> bool:
        r"""PUT with ``If-None-Match: *``, with the metadata audbackend writes.

        If the object is there with the same content,
        it is this PUT's own, retried after its answer was lost.

        """
        if self._write_object(data, dst, checksum, {"If-None-Match": "*"}):
            return True
        entry = self._read_object(dst)
        return entry is not None and hashlib.md5(entry.data).hexdigest() == checksum

    def _write_object(
        self, data: bytes, dst: str, checksum: str, condition: dict[str, str]
    ) -> bool:
        r"""Conditional PUT; ``False`` if the condition does not hold."""
        content_type = mimetypes.guess_type(dst)[0] or "application/octet-stream"
        headers = {
            **condition,
            "Content-Type": content_type,
            "x-amz-meta-checksum": checksum,
            "x-amz-meta-owner": getpass.getuser(),
        }
        return self._conditional("PUT", dst, body=data, headers=headers)

    def _delete_object(self, dst: str, tag: str) -> bool:
        r"""DELETE with ``If-Match``; ``False`` if the object is gone or changed."""
        return self._conditional("DELETE", dst, headers={"If-Match": tag})

    def _conditional(self, method: str, dst: str, **kwargs) -> bool:
        import minio.error

        client = self.backend._client
        try:
            client._execute(
                method, self.backend.repository, self.backend.path(dst), **kwargs
            )
        except minio.error.S3Error as error:
            # 409: another conditional write of the key is in progress
            if error.code in _CONDITION_FAILED:
                return False
            raise audbackend.BackendError(error) from error
        except Exception as error:
            raise audbackend.BackendError(error) from error
        return True

    def _read_object(self, dst: str) -> Entry | None:
        r"""GET an object with its ETag and age by the server's clock."""
        import minio.error

        client = self.backend._client
        try:
            response = client._execute(
                "GET", self.backend.repository, self.backend.path(dst)
            )
        except minio.error.S3Error as error:
            if error.code in ("NoSuchKey", "ResponseNotFound"):
                return None
            raise audbackend.BackendError(error) from error
        headers = response.headers
        age = None
        if "Date" in headers and "Last-Modified" in headers:
            now = email.utils.parsedate_to_datetime(headers["Date"])
            written = email.utils.parsedate_to_datetime(headers["Last-Modified"])
            age = max(0.0, (now - written).total_seconds())
        return Entry(response.data, headers["ETag"], age)

    def _there(self, dst: str, checksum: str) -> bool:
        r"""``True`` if ``dst`` is in the repository with ``checksum``.

        On MinIO/S3 the ETag of the folder's listing is the MD5
        of an object put in one request, so only others cost a request.

        """
        if not self._remote_exists(dst):
            return False
        listed = self._listed[dst.rsplit("/", 1)[0] + "/"]
        etag = listed.get(dst, ("", ""))[1] if isinstance(listed, dict) else ""
        if etag and "-" not in etag:
            return etag == checksum
        return self.backend.checksum(dst) == checksum

    def _upload(
        self,
        local: str,
        dst: str,
        checksum: str,
        size: int,
        folder: str | None = None,
    ) -> None:
        r"""Upload ``local`` to ``dst``; then remove ``folder``, if given."""
        try:
            if self.pacer is None or not self.is_minio:
                if self.is_minio:
                    audbackend.core.utils.call_function_on_backend(
                        self.backend._put_file, local, dst, checksum, False
                    )
                else:
                    self.backend.put_file(local, dst)
                return
            part = _PART if size >= _MULTIPART else max(size, _MIN_PART)
            try:
                self.backend._client.fput_object(
                    self.backend.repository,
                    self.backend.path(dst),
                    local,
                    content_type=mimetypes.guess_type(dst)[0]
                    or "application/octet-stream",
                    metadata={"checksum": checksum, "owner": getpass.getuser()},
                    part_size=part,
                    num_parallel_uploads=_parts(size),
                )
            except Exception as error:
                raise audbackend.BackendError(error) from error
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _tmp_root(self) -> str:
        with self._lock:
            return self._tmp_root_unlocked()

    def _tmp_root_unlocked(self) -> str:
        if self._tmp is None:
            self._tmp = owners.temp_folder()
        return self._tmp

    def _local_exists(self, path: str) -> bool:
        r"""Check if ``path`` exists, creating and listing its folder once.

        Files that appear later than the listing
        are written by this publish,
        which puts each file once.

        """
        folder = os.path.dirname(path)
        with self._lock:
            if folder not in self._listed:
                try:  # a file where the folder must be, say
                    os.makedirs(folder, exist_ok=True)
                    self._listed[folder] = set(os.listdir(folder))
                except OSError as error:
                    raise audbackend.BackendError(error) from error
            return os.path.basename(path) in self._listed[folder]

    def _remote_exists(self, path: str) -> bool:
        r"""Check if ``path`` exists, listing each folder only once.

        One listing per folder replaces a request per file,
        which for a new version finds nothing.

        """
        folder = path.rsplit("/", 1)[0] + "/"
        with self._lock:
            if folder not in self._listed:
                if self.is_minio:
                    try:
                        self._listed[folder] = self._list(folder)
                    except audbackend.BackendError:
                        self._listed[folder] = {}
                else:
                    self._listed[folder] = set(
                        self.backend.ls(folder, suppress_backend_errors=True)
                    )
            return path in self._listed[folder]


def check_path(path: str) -> str:
    r"""Check that a backend path has only allowed chars.

    Args:
        path: backend path

    Returns:
        ``path`` with consecutive separators collapsed

    Raises:
        ValueError: if ``path`` does not start with ``/``,
            ends with ``/``,
            or has a char not in ``[A-Za-z0-9/._-]``,
            with audbackend's message

    Examples:
        >>> check_path("/db/media/a.zip")
        '/db/media/a.zip'

    """
    return audbackend.core.utils.check_path(path)


class _RangeReader(io.RawIOBase):
    r"""Seekable reader of a MinIO/S3 object by ranged requests."""

    CHUNK = 8 << 20

    def __init__(self, backend: audbackend.backend.Minio, path: str):
        self._client = backend._client
        self._bucket = backend.repository
        self._name = backend.path(path)
        self.size = self._client.stat_object(self._bucket, self._name).size
        self._pos = 0
        self._chunk = b""
        self._chunk_start = 0

    def readable(self) -> bool:  # noqa: D102
        return True

    def seekable(self) -> bool:  # noqa: D102
        return True

    def tell(self) -> int:  # noqa: D102
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:  # noqa: D102
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    def readinto(self, buffer) -> int:  # noqa: D102
        if self._pos >= self.size:
            return 0
        offset = self._pos - self._chunk_start
        if not 0 <= offset < len(self._chunk):
            length = min(max(len(buffer), self.CHUNK), self.size - self._pos)
            with waiting():
                response = self._client.get_object(
                    self._bucket, self._name, offset=self._pos, length=length
                )
                try:
                    self._chunk = response.read()
                finally:
                    response.close()
                    response.release_conn()
            self._chunk_start, offset = self._pos, 0
        n = min(len(buffer), len(self._chunk) - offset)
        buffer[:n] = self._chunk[offset : offset + n]
        self._pos += n
        return n


_S3 = "{http://s3.amazonaws.com/doc/2006-03-01/}"

_MIN_PART = 5 << 20
r"""Smallest part of an upload in parts (S3's limit)."""

_MULTIPART = 64 << 20
r"""Archives of this size and more go up in parts, several at once."""

_PART = 16 << 20
r"""Size of a part."""

_PARALLEL_PARTS = 4
r"""Parts of one archive in flight at once."""


def _parts(size: int) -> int:
    r"""Requests an upload of ``size`` bytes sends at once."""
    return _PARALLEL_PARTS if size >= _MULTIPART else 1


_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")
r"""S3 error codes of a conditional request whose condition does not hold."""


def _list_objects(client, bucket: str, prefix: str) -> dict[str, tuple[int, str]]:
    r"""Objects directly below ``prefix``, by backend path: size and ETag.

    ListObjectsV2 with the XML parsed by :mod:`xml.etree.ElementTree`:
    minio's ``list_objects()`` spends about 130 µs of CPU per object,
    this about 20.

    """
    objects = {}
    query = {"list-type": "2", "prefix": prefix, "delimiter": "/"}
    while True:
        response = client._execute("GET", bucket, query_params=query)
        root = ElementTree.fromstring(response.data)
        for item in root.iter(f"{_S3}Contents"):
            etag = item.findtext(f"{_S3}ETag").strip('"')
            size = int(item.findtext(f"{_S3}Size"))
            objects["/" + item.findtext(f"{_S3}Key")] = (size, etag)
        if root.findtext(f"{_S3}IsTruncated") != "true":
            return objects
        query["continuation-token"] = root.findtext(f"{_S3}NextContinuationToken")


def _file_stamp(path: str) -> tuple[int, int, int] | None:
    r"""Size, modification time and inode of a file, ``None`` if missing."""
    try:
        return _stamp_of(os.stat(path))
    except FileNotFoundError:
        return None


def _stamp_of(stat: os.stat_result) -> tuple[int, int, int]:
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _link_new(src: str, dst: str) -> None:
    r"""Give ``src`` the name ``dst`` only if ``dst`` does not exist.

    Raises:
        FileExistsError: if ``dst`` exists

    """
    try:
        os.link(src, dst)
    finally:
        _remove_quietly(src)


def _partial_name(path: str) -> str:
    r"""Hidden name beside ``path``, unique for the host, process and thread.

    Examples:
        >>> name = os.path.basename(_partial_name("/repo/db/media/1.0.0/a.zip"))
        >>> owners.owner(name) == (owners.host(), os.getpid())
        True

    """
    folder, name = os.path.split(path)
    suffix = f"{owners.tag()}-{threading.get_ident()}"
    return os.path.join(folder, f".{name}{suffix}.partial")


@contextlib.contextmanager
def _flocked(path: str, mode: str, exclusive: bool):
    r"""Open ``path`` and lock it; yield ``None`` if it is or got removed."""
    try:
        fp = open(path, mode)
    except FileNotFoundError:
        yield None
        return
    with fp:
        fcntl.flock(fp, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        # removed while we waited for the lock
        yield fp if os.fstat(fp.fileno()).st_nlink > 0 else None


def _read_local(path: str) -> Entry | None:
    with _flocked(path, "rb", exclusive=False) as fp:
        if fp is None:
            return None
        data = fp.read()
        written = os.fstat(fp.fileno()).st_mtime
    age = max(0.0, _local_now(os.path.dirname(path)) - written)
    return Entry(data, hashlib.md5(data).hexdigest(), age)


def _replace_local(path: str, data: bytes, tag: str) -> bool:
    with _flocked(path, "r+b", exclusive=True) as fp:
        if fp is None or hashlib.md5(fp.read()).hexdigest() != tag:
            return False
        fd = fp.fileno()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fsync(fd)
        return True


def _remove_local(path: str, tag: str) -> bool:
    with _flocked(path, "rb", exclusive=True) as fp:
        if fp is None or hashlib.md5(fp.read()).hexdigest() != tag:
            return False
        os.remove(path)
    # the version folder and the database folder, if now empty
    for folder in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
        try:
            os.rmdir(folder)
        except OSError:
            break
    return True


def _local_now(folder: str) -> float:
    r"""Now, by the clock of the file system that holds ``folder``."""
    fd, path = tempfile.mkstemp(
        dir=folder, prefix=f".now{owners.tag()}-", suffix=".partial"
    )
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        _remove_quietly(path)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
