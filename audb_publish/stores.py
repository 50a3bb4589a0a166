r"""One store per repository kind: how files are written, listed and read.

:class:`audb_publish.remote.Remote` checks paths, records transfers
and wraps errors in :class:`audbackend.BackendError`;
a store does the work for one kind of audbackend backend,
as audbackend's own backends implement the hooks
of its base class:

* :class:`FileSystemStore`: an archive is written beside its destination
  under a partial name (see :mod:`audb_publish.owners`)
  and renamed into place atomically, never copied;
  a file is created only if there is none by a hard link;
  small files are replaced and removed conditionally
  under :func:`fcntl.flock`
* :class:`S3Store` (MinIO/S3): an archive is written to a local
  temporary folder and uploaded from there with its checksum known,
  in the background and within the requests in flight of a
  :class:`~audb_publish.network.Pacer`;
  conditional writes with ``If-None-Match`` and ``If-Match``;
  listings parsed with :mod:`xml.etree.ElementTree`;
  reads in ranges of 8 MiB
* :class:`Store`: any other backend, through its public methods:
  written locally, handed to ``put_file()``, checked and then put

:func:`store_for` is the one place that tells the kinds apart.

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

import audbackend

from audb_publish import hashing
from audb_publish import network
from audb_publish import owners
from audb_publish.threads import waiting

Writer = Callable[[str, bool], str]
r"""Writes a file to a path and returns its MD5, if asked to compute it."""

Listing = dict[str, tuple[int, str]]
r"""Backend path to size and ETag (``""`` off MinIO/S3)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    r"""A small file of the repository, as a conditional write needs it.

    Args:
        data: content
        tag: what :meth:`Store.replace_if` and :meth:`Store.remove_if`
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


class Store:
    r"""A repository of any audbackend backend, through its public methods.

    Paths are versioned backend paths, e.g. ``/db/media/1.0.0/a.zip``.
    The hooks raise what the backend raises;
    :class:`~audb_publish.remote.Remote` wraps it.
    Only :meth:`put` tells errors of the repository
    (raised as :class:`audbackend.BackendError`)
    from errors of the local files it writes (raised as they are).

    Args:
        backend: audbackend backend, opened by the remote
        tmp_root: gives the local temporary folder of the remote

    """

    def __init__(self, backend, tmp_root: Callable[[], str]):
        self.backend = backend
        self._tmp_root = tmp_root
        self._lock = threading.Lock()
        self._listed: dict[str, typing.Any] = {}

    def flush(self) -> None:
        r"""Wait for the uploads in flight; raise the first that failed."""

    def close(self) -> None:
        r"""Cancel uploads not started, wait for the others."""

    # -- writing ----------------------------------------------------------

    def put(
        self, dst: str, write: Writer, exclusive: bool, background: bool
    ) -> tuple[int | None, tuple]:
        r"""Write a file with ``write(dst, md5) -> md5`` and store it at ``dst``.

        Args:
            dst: backend path
            write: writes the file, computing its MD5 if asked to
            exclusive: only if nothing is at ``dst``
            background: the upload may go on after the return
                (archives; never the dependency table before the header)

        Returns:
            bytes written (``None`` if the file was there already)
            and the stamp :meth:`changed` compares

        Raises:
            audbackend.BackendError: if the repository fails
            FileExistsError: if ``exclusive`` and ``dst`` exists

        """
        # keep the file name: the MinIO backend derives the content type from it
        folder = tempfile.mkdtemp(dir=self._tmp_root())
        local = os.path.join(folder, dst.rsplit("/", 1)[1])
        try:
            checksum = write(local, True)
            size = os.path.getsize(local)
            stamp = (size, checksum)
            with waiting():
                if exclusive:
                    if not self.create_file(local, dst, checksum):
                        raise FileExistsError(f"'{dst}' exists in the repository")
                    return size, stamp
                if self.there(dst, checksum):
                    return None, stamp
            uploads = self._uploads_in_flight() if background else None
            if uploads is None:
                with waiting():
                    self.upload(local, dst, checksum, size)
                return size, stamp
            send = functools.partial(self.upload, local, dst, checksum, size, folder)
            uploads.submit(send, size, _parts(size))
            folder = None  # the upload removes it
            return size, stamp
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _uploads_in_flight(self) -> network.Uploads | None:
        return None

    def upload(
        self,
        local: str,
        dst: str,
        checksum: str,
        size: int,
        folder: str | None = None,
    ) -> None:
        r"""Upload ``local`` to ``dst``; then remove ``folder``, if given."""
        try:
            self._send(local, dst, checksum, size)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _send(self, local: str, dst: str, checksum: str, size: int) -> None:
        r"""Upload ``local`` to ``dst``: the backend's ``put_file()``."""
        self.backend.put_file(local, dst)

    def create(self, dst: str, data: bytes) -> bool:
        r"""Create a small file only if there is none; ``False`` if there was."""
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp_root()), "file")
        try:
            with open(local, "wb") as fp:
                fp.write(data)
            return self.create_file(local, dst, hashlib.md5(data).hexdigest())
        finally:
            _remove_quietly(local)

    def create_file(self, local: str, dst: str, checksum: str) -> bool:
        r"""Put ``local`` at ``dst`` if nothing is there; ``False`` otherwise."""
        if self.backend.exists(dst):
            return False
        self.backend.put_file(local, dst)
        return True

    def read_entry(self, dst: str) -> Entry | None:
        r"""A small file with its tag and age, ``None`` if there is none."""
        if not self.backend.exists(dst):
            return None
        with self.open(dst) as fp:
            data = fp.read()
        return Entry(data, hashlib.md5(data).hexdigest(), None)

    def replace_if(self, dst: str, data: bytes, tag: str) -> bool:
        r"""Replace a small file only if it is still as read."""
        entry = self.read_entry(dst)
        if entry is None or entry.tag != tag:
            return False
        local = os.path.join(tempfile.mkdtemp(dir=self._tmp_root()), "file")
        with open(local, "wb") as fp:
            fp.write(data)
        self.backend.put_file(local, dst)
        return True

    def remove_if(self, dst: str, tag: str) -> bool:
        r"""Remove a small file only if it is still as read."""
        entry = self.read_entry(dst)
        if entry is None or entry.tag != tag:
            return False
        self.backend.remove_file(dst)
        return True

    def sweep_partials(self, folders: Sequence[str], older_than: float) -> list[str]:
        r"""Remove partial files of gone writers; only file systems have them."""
        return []

    # -- reading ----------------------------------------------------------

    def open(self, dst: str) -> typing.BinaryIO:
        r"""A file of the repository for reading."""
        folder = tempfile.mkdtemp(dir=self._tmp_root())
        local = os.path.join(folder, dst.rsplit("/", 1)[1])
        self.backend.get_file(dst, local)
        return open(local, "rb")

    def list(self, folder: str, partial: bool = False) -> Listing:
        r"""Files directly in ``folder``, empty if it does not exist."""
        paths = self.backend.ls(folder, suppress_backend_errors=True)
        return {
            path: (-1, "") for path in paths if path.rsplit("/", 1)[0] + "/" == folder
        }

    def exists(self, dst: str) -> bool:
        r"""Check if ``dst`` exists, listing each folder only once.

        One listing per folder replaces a request per file,
        which for a new version finds nothing.
        Files that appear later are written by this publish,
        which puts each file once.

        """
        folder = dst.rsplit("/", 1)[0] + "/"
        with self._lock:
            if folder not in self._listed:
                self._listed[folder] = self._list_once(folder)
            return dst in self._listed[folder]

    def _list_once(self, folder: str):
        return set(self.backend.ls(folder, suppress_backend_errors=True))

    def there(self, dst: str, checksum: str) -> bool:
        r"""``True`` if ``dst`` is in the repository with ``checksum``."""
        return self.exists(dst) and self.backend.checksum(dst) == checksum

    def changed(self, stamps: dict[str, tuple]) -> list[str]:
        r"""Paths of ``stamps`` whose files are missing or changed."""
        return [
            path for path, (_, md5) in stamps.items() if self._checksum(path) != md5
        ]

    def _checksum(self, path: str) -> str | None:
        try:
            return self.backend.checksum(path)
        except audbackend.BackendError:
            return None


class FileSystemStore(Store):
    r"""A repository of audbackend's file-system backend."""

    def put(
        self, dst: str, write: Writer, exclusive: bool, background: bool
    ) -> tuple[int | None, tuple]:
        r"""Write beside the destination, then rename or link into place."""
        final = self.backend._expand(dst)
        partial = _partial_name(final)
        try:
            exists = self._exists_local(final)
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
        r"""``True`` if ``error`` concerns a path in the repository."""
        root = os.path.join(os.path.abspath(self.backend._root), "")
        return any(
            isinstance(name, str) and os.path.abspath(name).startswith(root)
            for name in (error.filename, error.filename2)
        )

    def _exists_local(self, path: str) -> bool:
        r"""Check if ``path`` exists, creating and listing its folder once."""
        folder = os.path.dirname(path)
        with self._lock:
            if folder not in self._listed:
                try:  # a file where the folder must be, say
                    os.makedirs(folder, exist_ok=True)
                    self._listed[folder] = set(os.listdir(folder))
                except OSError as error:
                    raise audbackend.BackendError(error) from error
            return os.path.basename(path) in self._listed[folder]

    def create(self, dst: str, data: bytes) -> bool:  # noqa: D102
        # beside its destination, to link it there
        final = self.backend._expand(dst)
        local = _partial_name(final)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            with open(local, "wb") as fp:
                fp.write(data)
            return self.create_file(local, dst, "")
        finally:
            _remove_quietly(local)

    def create_file(self, local: str, dst: str, checksum: str) -> bool:  # noqa: D102
        try:
            _link_new(local, self.backend._expand(dst))
        except FileExistsError:
            return False
        return True

    def read_entry(self, dst: str) -> Entry | None:  # noqa: D102
        return _read_local(self.backend._expand(dst))

    def replace_if(self, dst: str, data: bytes, tag: str) -> bool:  # noqa: D102
        return _replace_local(self.backend._expand(dst), data, tag)

    def remove_if(self, dst: str, tag: str) -> bool:  # noqa: D102
        return _remove_local(self.backend._expand(dst), tag)

    def sweep_partials(self, folders: Sequence[str], older_than: float) -> list[str]:  # noqa: D102
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

    def open(self, dst: str) -> typing.BinaryIO:  # noqa: D102
        return open(self.backend._expand(dst), "rb")

    def list(self, folder: str, partial: bool = False) -> Listing:  # noqa: D102
        root = self.backend._expand(folder)
        try:
            with os.scandir(root) as entries:
                return {
                    folder + entry.name: (entry.stat().st_size, "")
                    for entry in entries
                    if entry.is_file()
                    and (partial or not entry.name.endswith(".partial"))
                }
        except FileNotFoundError:
            return {}

    def changed(self, stamps: dict[str, tuple]) -> list[str]:  # noqa: D102
        return [
            path
            for path, (local, stamp) in stamps.items()
            if _file_stamp(local) != stamp
        ]


class S3Store(Store):
    r"""A repository of audbackend's MinIO/S3 backend.

    Args:
        backend: audbackend backend
        tmp_root: gives the local temporary folder of the remote
        pacer: limit of requests in flight
            for the connection pool of the backend's client;
            without it, every upload is made by the worker that wrote it,
            through the client's own pool

    """

    def __init__(self, backend, tmp_root, pacer: network.Pacer | None = None):
        super().__init__(backend, tmp_root)
        self.pacer = pacer
        self._uploads: network.Uploads | None = None

    def flush(self) -> None:  # noqa: D102
        if self._uploads is not None:
            self._uploads.flush()

    def close(self) -> None:  # noqa: D102
        if self._uploads is not None:
            self._uploads.close()
            self._uploads = None

    def _uploads_in_flight(self) -> network.Uploads | None:
        r"""Uploads apart from the workers, with a pacer."""
        if self.pacer is None:
            return None
        with self._lock:
            if self._uploads is None:
                budget = network.budget(self._tmp_root())
                self._uploads = network.Uploads(self.pacer, budget)
            return self._uploads

    def _send(self, local: str, dst: str, checksum: str, size: int) -> None:
        r"""One PUT, or parts at once for 64 MB and more, within the pacer."""
        if self.pacer is None:
            audbackend.core.utils.call_function_on_backend(
                self.backend._put_file, local, dst, checksum, False
            )
            return
        part = _PART if size >= _MULTIPART else max(size, _MIN_PART)
        try:
            self.backend._client.fput_object(
                self.backend.repository,
                self.backend.path(dst),
                local,
                content_type=mimetypes.guess_type(dst)[0] or "application/octet-stream",
                metadata={"checksum": checksum, "owner": getpass.getuser()},
                part_size=part,
                num_parallel_uploads=_parts(size),
            )
        except Exception as error:
            raise audbackend.BackendError(error) from error

    def create(self, dst: str, data: bytes) -> bool:  # noqa: D102
        # sent from memory
        return self._create_object(data, dst, hashlib.md5(data).hexdigest())

    def create_file(self, local: str, dst: str, checksum: str) -> bool:  # noqa: D102
        with open(local, "rb") as fp:
            return self._create_object(fp.read(), dst, checksum)

    def _create_object(self, data: bytes, dst: str, checksum: str) -> bool:
        r"""PUT with ``If-None-Match: *``, with the metadata audbackend writes.

        If the object is there with the same content,
        it is this PUT's own, retried after its answer was lost.

        """
        if self._write_object(data, dst, checksum, {"If-None-Match": "*"}):
            return True
        entry = self.read_entry(dst)
        return entry is not None and hashlib.md5(entry.data).hexdigest() == checksum

    def replace_if(self, dst: str, data: bytes, tag: str) -> bool:  # noqa: D102
        checksum = hashlib.md5(data).hexdigest()
        return self._write_object(data, dst, checksum, {"If-Match": tag})

    def remove_if(self, dst: str, tag: str) -> bool:  # noqa: D102
        return self._conditional("DELETE", dst, headers={"If-Match": tag})

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

    def read_entry(self, dst: str) -> Entry | None:
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
        except Exception as error:
            raise audbackend.BackendError(error) from error
        headers = response.headers
        age = None
        if "Date" in headers and "Last-Modified" in headers:
            now = email.utils.parsedate_to_datetime(headers["Date"])
            written = email.utils.parsedate_to_datetime(headers["Last-Modified"])
            age = max(0.0, (now - written).total_seconds())
        return Entry(response.data, headers["ETag"], age)

    def open(self, dst: str) -> typing.BinaryIO:  # noqa: D102
        return _RangeReader(self.backend, dst)

    def list(self, folder: str, partial: bool = False) -> Listing:  # noqa: D102
        return _list_objects(
            self.backend._client, self.backend.repository, self.backend.path(folder)
        )

    def _list_once(self, folder: str) -> Listing:
        try:
            return self.list(folder)
        except Exception:
            return {}

    def there(self, dst: str, checksum: str) -> bool:
        r"""``True`` if ``dst`` is in the repository with ``checksum``.

        The ETag of the folder's listing is the MD5
        of an object put in one request, so only others cost a request.

        """
        if not self.exists(dst):
            return False
        etag = self._listed[dst.rsplit("/", 1)[0] + "/"].get(dst, ("", ""))[1]
        if etag and "-" not in etag:
            return etag == checksum
        return self.backend.checksum(dst) == checksum

    def changed(self, stamps: dict[str, tuple]) -> list[str]:
        r"""Size and checksum from one listing per folder, the folders at once.

        Objects uploaded in parts, whose ETag is no MD5,
        are compared by their checksum metadata.

        """
        names = sorted({p.rsplit("/", 1)[0] + "/" for p in stamps})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            folders = dict(zip(names, pool.map(self.list, names), strict=True))
        changed = []
        for path, (size, md5) in stamps.items():
            listed = folders[path.rsplit("/", 1)[0] + "/"].get(path)
            if listed is None:
                changed.append(path)
            elif "-" in listed[1]:
                if not (listed[0] == size and self._checksum(path) == md5):
                    changed.append(path)
            elif listed != (size, md5):
                changed.append(path)
        return changed


KINDS = (
    (audbackend.backend.FileSystem, FileSystemStore),
    (audbackend.backend.Minio, S3Store),
)
r"""Store of each kind of backend; any other gets :class:`Store`."""


def store_for(backend, tmp_root: Callable[[], str], pacer=None) -> Store:
    r"""The store of a backend.

    Args:
        backend: audbackend backend
        tmp_root: gives the local temporary folder
        pacer: limit of requests in flight, for an object store

    Returns:
        store

    Examples:
        >>> backend = audbackend.backend.FileSystem("/tmp/host", "repo")
        >>> type(store_for(backend, tempfile.gettempdir)).__name__
        'FileSystemStore'

    """
    for kind, store in KINDS:
        if isinstance(backend, kind):
            if store is S3Store:
                return store(backend, tmp_root, pacer)
            return store(backend, tmp_root)
    return Store(backend, tmp_root)


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
