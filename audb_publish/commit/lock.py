r"""The version lock: one publisher per version.

Before its first upload,
a publish claims its version by creating the lock file
``/<name>/<version>/db.lock`` in the repository,
only if there is none,
as one atomic step (see :meth:`audb_publish.remote.Remote.create`):
a hard link on the file system,
a PUT with ``If-None-Match: *`` on MinIO/S3
(SeaweedFS 4.48 answers the second with 412, as tested;
MinIO and AWS S3 document the same, not tested here).
The lock holds a random token, and the claim reads it back:
on a server that ignored ``If-None-Match``,
the later of two writers wins and the earlier one gives up,
unless both read back before the second write arrived.

The lock holds who publishes (host, process ID, user, start time)
and no credentials.
Stock audb never reads it:
it finds versions by their header ``db.yaml``
and the files of a version through its dependency table.
The lock is removed after the header is put,
and after any failure the process survives.
After a SIGKILL it stays,
and the next publish of the version names its holder;
``break_lock=True`` removes it first.

"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import json
import logging
import os
import socket
import uuid

import audbackend

from audb_publish.remote import HEADER_FILE
from audb_publish.remote import Remote

logger = logging.getLogger("audb_publish")

LOCK_FILE = "db.lock"
r"""Name of the lock file in the version folder of a database."""


class VersionLockedError(RuntimeError):
    r"""Another publisher holds the version.

    Examples:
        >>> issubclass(VersionLockedError, RuntimeError)
        True

    """


@dataclasses.dataclass(frozen=True)
class Holder:
    r"""Who holds a version lock.

    Args:
        host: host name
        pid: process ID
        user: user name
        started: start of the claim, ISO 8601 in UTC
        token: random, unique to the claim

    Examples:
        >>> holder = Holder.here()
        >>> Holder.parse(holder.encode()) == holder
        True

    """

    host: str
    pid: int
    user: str
    started: str
    token: str

    @classmethod
    def here(cls) -> Holder:
        r"""Holder for a claim by this process, now.

        Returns:
            holder with a new token

        """
        now = datetime.datetime.now(datetime.timezone.utc)
        return cls(
            socket.gethostname(),
            os.getpid(),
            getpass.getuser(),
            now.isoformat(timespec="seconds"),
            uuid.uuid4().hex,
        )

    def encode(self) -> bytes:
        r"""Content of the lock file.

        Returns:
            JSON

        """
        return json.dumps(dataclasses.asdict(self), indent=1).encode()

    @classmethod
    def parse(cls, data: bytes) -> Holder | None:
        r"""Read the content of a lock file.

        Args:
            data: content

        Returns:
            holder, or ``None`` if ``data`` is no lock of this package

        """
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError):
            return None

    def gone(self) -> bool:
        r"""``True`` if the holder ran on this host and its process is gone.

        Returns:
            whether the holder is known to be gone

        """
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    def __str__(self) -> str:
        return (
            f"process {self.pid} of user '{self.user}' on host '{self.host}', "
            f"started {self.started}"
        )


class VersionLock:
    r"""Claim of a version in a repository, as a context manager.

    Args:
        remote: the repository
        name: database name
        version: version to publish
        break_lock: remove a lock that is there before claiming

    Examples:
        >>> import audb
        >>> repo = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> with Remote(repo.create_backend_interface()) as remote:
        ...     with VersionLock(remote, "db", "1.0.0"):
        ...         os.path.exists("host/repo/db/1.0.0/db.lock")
        True
        >>> os.path.exists("host/repo/db/1.0.0/db.lock")
        False

    """

    ATTEMPTS = 3

    def __init__(
        self, remote: Remote, name: str, version: str, *, break_lock: bool = False
    ):
        self.remote = remote
        self.name = name
        self.version = version
        self.break_lock = break_lock
        self.path = f"/{name}/{LOCK_FILE}"
        self._claim: bytes | None = None

    def __enter__(self) -> VersionLock:
        self.claim()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def claim(self) -> None:
        r"""Create the lock, or raise who holds it.

        Raises:
            VersionLockedError: if another publisher holds the version
            RuntimeError: if the version was published meanwhile
            audbackend.BackendError: if the backend fails

        """
        if self.break_lock:
            self._break()
        data = Holder.here().encode()
        for _ in range(self.ATTEMPTS):
            if self.remote.create(self.path, self.version, data):
                break
            holder = self._holder()
            if holder is not None:  # else it was removed meanwhile: try again
                raise VersionLockedError(self._message(holder))
        # read back, for servers that ignore If-None-Match
        if self._holder_data() != data:
            raise VersionLockedError(self._message(self._holder()))
        self._claim = data
        if self.remote.exists(f"/{self.name}/{HEADER_FILE}", self.version):
            self.release()
            raise RuntimeError(
                f"A version '{self.version}' already exists for database '{self.name}'."
            )

    def release(self) -> None:
        r"""Remove the lock if it is this claim's.

        A failure to remove it is logged, not raised:
        the lock is invisible to audb,
        and the next publish of the version names it.

        """
        if self._claim is None:
            return
        try:
            if self._holder_data() == self._claim:
                self.remote.remove_file(self.path, self.version)
        except Exception as error:  # pragma: no cover (a failing backend)
            logger.warning("could not remove the lock %s: %s", self.path, error)
        self._claim = None

    def _break(self) -> None:
        holder = self._holder()
        if holder is None:
            return
        logger.warning(
            "breaking the lock of %s %s held by %s", self.name, self.version, holder
        )
        with contextlib.suppress(audbackend.BackendError):
            self.remote.remove_file(self.path, self.version)

    def _holder_data(self) -> bytes | None:
        try:
            return self.remote.read(self.path, self.version)
        except audbackend.BackendError:
            return None

    def _holder(self) -> Holder | None:
        data = self._holder_data()
        if data is None:
            return None
        return Holder.parse(data) or Holder("?", 0, "?", "?", "")

    def _message(self, holder: Holder | None) -> str:
        who = "another publisher" if holder is None else str(holder)
        message = (
            f"Version '{self.version}' of database '{self.name}' "
            f"is being published by {who} "
            f"(lock '{self.remote.path(self.path, self.version)}'). "
        )
        if holder is not None and holder.gone():
            message += f"Process {holder.pid} no longer runs on this host. "
        return message + (
            "If that publish is no longer running, "
            "publish again with break_lock=True (CLI: --break-lock)."
        )
