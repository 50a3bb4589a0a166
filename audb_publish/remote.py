"""The one adapter between this package and audbackend.

Everything that touches audbackend goes through :class:`Remote`:
it checks paths and maps them to a version,
as :class:`audbackend.interface.Versioned` does,
records what each put did,
and wraps every error of the repository in :class:`audbackend.BackendError`
with the original as cause, in one place (:meth:`Remote._call`).
The work is done by the store of the repository's kind,
see :mod:`audb_publish.stores`.
Archives are written with :func:`audb_publish.zipwriter.write_zip`,
which computes the archive's MD5 while writing it,
so no archive is read a second time.

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

"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
import dataclasses
import shutil
import threading
import typing

import audb
import audbackend

from audb_publish import hashing
from audb_publish import integrity
from audb_publish import layout
from audb_publish import network
from audb_publish import owners
from audb_publish import stores
from audb_publish import zipwriter
from audb_publish.stores import Entry  # noqa: F401 - for the lock
from audb_publish.stores import Writer
from audb_publish.threads import waiting


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
        self._tmp: str | None = None
        self._lock = threading.Lock()
        self.store = stores.store_for(self.backend, self._tmp_root, pacer)
        r"""Does the work for the repository's kind."""
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
    def max_requests(self) -> int | None:
        r"""``max_requests`` this remote was configured with, see :meth:`configure`."""
        return None if self.pacer is None else self.pacer.max_requests

    @property
    def retries(self) -> int:
        r"""Requests retried so far."""
        return 0 if self.pacer is None else self.pacer.retries

    def flush(self) -> None:
        r"""Wait for the uploads in flight; raise the first that failed.

        Raises:
            audbackend.BackendError: if an upload failed

        """
        self._call(self.store.flush)

    def __enter__(self) -> Remote:
        self.backend.open()
        return self

    def __exit__(self, *exc_info) -> None:
        self.store.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.backend.close()

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
        dsts = [self.path(p, version) for p in paths]
        return self._call(lambda: [self.store.exists(dst) for dst in dsts])

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
        return self._call(self.store.create, self.path(path, version), data)

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

    def read_entry(self, path: str, version: str) -> stores.Entry | None:
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
        return self._call(self.store.read_entry, self.path(path, version))

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
            tag: :attr:`~audb_publish.stores.Entry.tag` of the file as read

        Returns:
            ``False`` if the file is gone or changed

        Raises:
            audbackend.BackendError: if the backend fails

        """
        dst = self.path(path, version)
        return self._call(self.store.replace_if, dst, data, tag)

    def remove_if(self, path: str, version: str, tag: str) -> bool:
        r"""Remove a small file, only if it is still as read.

        Atomic as :meth:`replace_if`, with ``If-Match`` on a DELETE.
        On the file system the version folder goes too,
        and the database folder, if they are then empty.

        Args:
            path: unversioned path
            version: version string
            tag: :attr:`~audb_publish.stores.Entry.tag` of the file as read

        Returns:
            ``False`` if the file is gone or changed

        Raises:
            audbackend.BackendError: if the backend fails

        """
        return self._call(self.store.remove_if, self.path(path, version), tag)

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
        return self._call(self.store.sweep_partials, folders, older_than)

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
        return self._call(self.store.open, self.path(path, version))

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
        listed = self._call(self.store.list, folder, partial)
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
        return sorted(self._call(self.store.changed, self.stamps))

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
        Archives may go up in the background;
        other files, such as the dependency table before the header, at once.
        The store tells errors of the repository
        from errors of the local files it writes.

        """
        dst = self.path(path, version)
        size, stamp = self.store.put(dst, write, exclusive, kind == "archive")
        transfer = Transfer(dst, kind, size, stamp)
        self.record(transfer)
        return transfer

    def _call(self, function: Callable, *args):
        r"""Call a hook of the store, waiting; wrap its errors in BackendError."""
        with waiting():
            try:
                return function(*args)
            except audbackend.BackendError:
                raise
            except Exception as error:
                raise audbackend.BackendError(error) from error

    def _tmp_root(self) -> str:
        with self._lock:
            if self._tmp is None:
                self._tmp = owners.temp_folder()
            return self._tmp


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
