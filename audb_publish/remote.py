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

The audbackend internals used here
(``FileSystem._expand()`` and ``FileSystem._root``, ``Minio._put_file()``
and ``audbackend.core.utils.call_function_on_backend()``)
are pinned by ``pyproject.toml``
and covered by ``tests/test_remote.py``.

"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
import os
import shutil
import tempfile
import threading

import audbackend

from audb_publish import hashing
from audb_publish import integrity
from audb_publish import zipwriter
from audb_publish.scheduler import waiting

Writer = Callable[[str, bool], str]
r"""Writes a file to a path and returns its MD5, if asked to compute it."""

HEADER_FILE = "db.yaml"
DEPENDENCY_FILE = "db.parquet"


class Remote:
    r"""Versioned repository of one database.

    Paths are given as in audb,
    e.g. ``/<name>/media/<archive>.zip`` plus a version,
    and mapped to ``/<name>/media/<version>/<archive>.zip``
    as :class:`audbackend.interface.Versioned` does.

    Args:
        interface: versioned interface returned by
            :meth:`audb.Repository.create_backend_interface`

    Examples:
        >>> import audb
        >>> repo = audb.Repository("repo", "/tmp/host", "file-system")
        >>> remote = Remote(repo.create_backend_interface())
        >>> remote.path("/db/media/a.zip", "1.0.0")
        '/db/media/1.0.0/a.zip'

    """

    def __init__(self, interface: audbackend.interface.Versioned):
        self.interface = interface
        self.backend = interface.backend
        self._tmp: str | None = None
        self._lock = threading.Lock()
        self._listed: dict[str, set[str]] = {}
        self.transfers: Counter = Counter()
        r"""Files written and skipped, by kind:
        ``("archive" or "file", "put" or "skipped")``,
        and ``"bytes"`` written."""

    def __enter__(self) -> Remote:
        self.backend.open()
        return self

    def __exit__(self, *exc_info) -> None:
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
        root, name = check_path(path).rsplit("/", 1)
        return f"{root}/{audbackend.core.utils.check_version(version)}/{name}"

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
    ) -> None:
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

        self._put(path, version, write, "archive")

    def put_file(
        self,
        src: str,
        path: str,
        version: str,
        *,
        guard: integrity.Guard | None = None,
    ) -> None:
        r"""Put a local file in ``version``.

        Args:
            src: local file
            path: unversioned destination path
            version: version string
            guard: if given, checks ``src`` after it was copied
                not to have changed since its scan

        Raises:
            audbackend.BackendError: if the backend fails
            audb_publish.integrity.FileChangedError: if ``src``
                changed since its scan
            FileNotFoundError: if ``src`` does not exist

        """

        def write(dst: str, md5: bool) -> str:
            return hashing.copy_md5(src, dst, guard=guard)

        self._put(path, version, write, "file")

    def _put(self, path: str, version: str, write: Writer, kind: str) -> None:
        r"""Write a file with ``write(dst, md5) -> md5`` and store it at ``path``.

        ``write`` may skip computing the MD5 if ``md5`` is ``False``.

        """
        dst = self.path(path, version)
        if self.is_file_system:
            size = self._put_local(dst, write)
        else:
            size = self._put_upload(dst, write)
        with self._lock:
            if size is None:
                self.transfers[kind, "skipped"] += 1
            else:
                self.transfers[kind, "put"] += 1
                self.transfers["bytes"] += size

    def _put_local(self, dst: str, write: Writer) -> int | None:
        final = self.backend._expand(dst)
        partial = _partial_name(final)
        try:
            exists = self._local_exists(final)
            # the checksum is only needed to skip a file that is there
            checksum = write(partial, exists)
            if exists and hashing.md5(final) == checksum:
                os.remove(partial)
                return None
            size = os.path.getsize(partial)
            os.replace(partial, final)
            return size
        except BaseException as error:
            _remove_quietly(partial)
            if isinstance(error, OSError) and self._in_repository(error):
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

    def _put_upload(self, dst: str, write: Writer) -> int | None:
        # keep the file name: the MinIO backend derives the content type from it
        folder = tempfile.mkdtemp(dir=self._tmp_root())
        local = os.path.join(folder, dst.rsplit("/", 1)[1])
        try:
            checksum = write(local, True)
            with waiting():
                if self._upload(local, dst, checksum):
                    return os.path.getsize(local)
                return None
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _upload(self, local: str, dst: str, checksum: str) -> bool:
        if self._remote_exists(dst) and self.backend.checksum(dst) == checksum:
            return False
        if self.is_minio:
            audbackend.core.utils.call_function_on_backend(
                self.backend._put_file, local, dst, checksum, False
            )
        else:
            self.backend.put_file(local, dst)
        return True

    def _tmp_root(self) -> str:
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix="audb-publish-")
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
                os.makedirs(folder, exist_ok=True)
                self._listed[folder] = set(os.listdir(folder))
            return os.path.basename(path) in self._listed[folder]

    def _remote_exists(self, path: str) -> bool:
        r"""Check if ``path`` exists, listing each folder only once.

        One listing per folder replaces a request per file,
        which for a new version finds nothing.

        """
        folder = path.rsplit("/", 1)[0] + "/"
        with self._lock:
            if folder not in self._listed:
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


def _partial_name(path: str) -> str:
    r"""Hidden name beside ``path``, unique for the process and thread."""
    folder, name = os.path.split(path)
    suffix = f"{os.getpid()}-{threading.get_ident()}"
    return os.path.join(folder, f".{name}.{suffix}.partial")


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
