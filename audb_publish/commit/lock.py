r"""The version lock: one publisher per version, held as a lease.

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
the later of two writers wins and the earlier one gives up.

The lock holds who publishes
(host, process ID and the start of that process, user, start of the claim),
its lease and when it was last renewed; no credentials.
Stock audb never reads it:
it finds versions by their header ``db.yaml``
and the files of a version through its dependency table.

**The lease.**
While it publishes, the holder renews the lock every third of its lease
(:attr:`VersionLock.LEASE`, 60 s, written into the lock,
so every reader applies the holder's value),
rewriting it only if it is still its own
(:meth:`audb_publish.remote.Remote.replace_if`:
``If-Match`` on MinIO/S3, a rewrite under :func:`fcntl.flock`
on the file system).
If the lock is no longer its own,
or could not be renewed for a whole lease,
the publish stops before its commit with :class:`VersionLockLostError`.

**Stale locks are taken over.**
A lock is stale, and the next publish of the version takes it over
with one warning in the log, if

* its holder ran on this host and its process is gone,
  or its process ID now belongs to a process
  that started after the lock
  (see :func:`audb_publish.owners.gone`);
* its holder is this very process,
  and no publish of the version runs in it
  (the failed attempt before a retry in the same script);
* its lease expired: it was not renewed for longer than its lease,
  judged by the clock of the repository
  (``Last-Modified`` against ``Date`` on MinIO/S3,
  its modification time against a file written now on the file system),
  not by the clocks of two machines.

Taking over is a conditional write of the stale lock as read,
so of two publishers that take over at once exactly one wins.
Any other lock is live:
the claim fails at once with :class:`VersionLockedError`,
or waits up to ``lock_timeout`` seconds for it to go or go stale.

The lock is removed after the header is put, and after any failure.
If the repository is down then,
the failure says so,
and the next publish takes the lock over once it is stale.
:func:`unlock` removes a lock by hand, as ``terraform force-unlock`` does;
``break_lock=True`` removes any lock before claiming, as a last resort.

"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import getpass
import json
import logging
import os
import threading
import time
import uuid

import audb

from audb_publish import layout
from audb_publish import owners
from audb_publish.remote import Entry
from audb_publish.remote import Remote

logger = logging.getLogger("audb_publish")

_ACTIVE: set[tuple] = set()
r"""The locks this process holds, see :meth:`VersionLock.key`."""
_ACTIVE_LOCK = threading.Lock()


class VersionLockedError(RuntimeError):
    r"""Another publisher holds the version.

    Examples:
        >>> issubclass(VersionLockedError, RuntimeError)
        True

    """


class VersionLockLostError(RuntimeError):
    r"""The lock of a publish was taken by another, or could not be renewed.

    Examples:
        >>> issubclass(VersionLockLostError, RuntimeError)
        True

    """


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _epoch(iso: str) -> float | None:
    try:
        return datetime.datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


@dataclasses.dataclass(frozen=True)
class Holder:
    r"""Who holds a version lock.

    Args:
        host: host name
        pid: process ID
        user: user name
        started: start of the claim, ISO 8601 in UTC
        token: random, unique to the claim
        process_started: start of the holder's process,
            in seconds since the epoch, ``None`` if unknown
        lease: seconds the lock stays live without a renewal
        renewed: last renewal, ISO 8601 in UTC

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
    process_started: float | None = None
    lease: float = 60.0
    renewed: str = ""

    @classmethod
    def here(cls, lease: float = 60.0) -> Holder:
        r"""Holder for a claim by this process, now.

        Args:
            lease: seconds

        Returns:
            holder with a new token

        """
        now = _now()
        return cls(
            owners.host(),
            os.getpid(),
            getpass.getuser(),
            now,
            uuid.uuid4().hex,
            owners.process_start(os.getpid()),
            lease,
            now,
        )

    def renew(self) -> Holder:
        r"""The same claim, renewed now.

        Returns:
            holder

        """
        return dataclasses.replace(self, renewed=_now())

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

        Examples:
            >>> Holder.parse(b"not a lock") is None
            True

        """
        try:
            values = json.loads(data)
            fields = {field.name for field in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in values.items() if k in fields})
        except (ValueError, TypeError, AttributeError):
            return None

    @classmethod
    def read(cls, data: bytes) -> Holder:
        r"""Who holds a lock: as :meth:`parse`, an unknown holder if it fails.

        An unknown holder has no host and process,
        so only its lease tells it stale (the default of 60 s).

        Args:
            data: content of a lock file

        Returns:
            holder

        Examples:
            >>> Holder.read(b"not a lock").host
            '?'

        """
        return cls.parse(data) or cls("?", 0, "?", "?", "")

    def gone(self) -> str | None:
        r"""Tell why the holder's process is provably gone.

        Returns:
            the reason, ``None`` if it may still run or runs on another host

        """
        if self.host != owners.host():
            return None
        reason = owners.gone(self.pid, alive_at=_epoch(self.started))
        if reason is None and self.process_started is not None:
            start = owners.process_start(self.pid)
            if start is not None and abs(start - self.process_started) > 1:
                reason = f"process ID {self.pid} now belongs to another process"
        return reason

    def __str__(self) -> str:
        return (
            f"process {self.pid} of user '{self.user}' on host '{self.host}', "
            f"started {self.started}"
        )


@dataclasses.dataclass(frozen=True)
class Event:
    r"""What a claim did about the lock of another publisher.

    Args:
        kind: ``"waited"``, ``"taken over"`` or ``"broken"``
        holder: the other publisher
        reason: why, e.g. why its lock was stale
        seconds: seconds waited

    """

    kind: str
    holder: str
    reason: str
    seconds: float = 0.0

    def __str__(self) -> str:
        if self.kind == "waited":
            return f"waited {self.seconds:.1f} s for the lock of {self.holder}"
        return f"{self.kind} the lock of {self.holder}: {self.reason}"


class VersionLock:
    r"""Claim of a version in a repository, as a context manager.

    Args:
        remote: the repository
        name: database name
        version: version to publish
        break_lock: remove a lock that is there before claiming
        lock_timeout: seconds to wait for a live holder
            to finish or go stale; 0 to fail at once
        lease: seconds, :attr:`LEASE` if ``None``

    Examples:
        >>> repo = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> with Remote(repo.create_backend_interface()) as remote:
        ...     with VersionLock(remote, "db", "1.0.0"):
        ...         os.path.exists("host/repo/db/1.0.0/db.lock")
        True
        >>> os.path.exists("host/repo/db/1.0.0/db.lock")
        False

    """

    LEASE = 60.0
    r"""Seconds a lock stays live without a renewal."""

    POLL = 2.0
    r"""Most seconds between two looks at a live lock while waiting."""

    def __init__(
        self,
        remote: Remote,
        name: str,
        version: str,
        *,
        break_lock: bool = False,
        lock_timeout: float = 0.0,
        lease: float | None = None,
    ):
        self.remote = remote
        self.name = name
        self.version = version
        self.break_lock = break_lock
        self.lock_timeout = lock_timeout
        self.lease = self.LEASE if lease is None else lease
        self.path = layout.lock(name)
        self.events: list[Event] = []
        r"""What the claim did about other publishers' locks."""
        self._holder: Holder | None = None
        self._header_seen: bool | None = None
        self._tag: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._mutex = threading.Lock()

    def __enter__(self) -> VersionLock:
        self.claim()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        failure = self.release()
        if failure is not None and exc is not None and hasattr(exc, "add_note"):
            exc.add_note(failure)

    @property
    def key(self) -> tuple:
        r"""Identity of the lock: repository and path."""
        backend = self.remote.backend
        return (
            type(backend).__name__,
            backend.host,
            backend.repository,
            self.remote.path(self.path, self.version),
        )

    def claim(self) -> None:
        r"""Create the lock, take over a stale one, or raise who holds it.

        Raises:
            VersionLockedError: if another publisher holds the version
                and did not finish or go stale within ``lock_timeout``
            RuntimeError: if the version was published meanwhile
            audbackend.BackendError: if the backend fails

        """
        with _ACTIVE_LOCK:
            if self.key in _ACTIVE:
                raise VersionLockedError(
                    f"Version '{self.version}' of database '{self.name}' "
                    "is being published by this process."
                )
            _ACTIVE.add(self.key)
        try:
            if self.break_lock:
                self._break()
            self._wait_for_claim()
            self._start_renewing()
            header = self._header_seen
            if header is None:
                header = self.remote.exists(layout.header(self.name), self.version)
            if header:
                raise RuntimeError(
                    f"A version '{self.version}' already exists "
                    f"for database '{self.name}'."
                )
            self._sweep()
        except BaseException:
            self.release()
            raise

    def check(self) -> None:
        r"""Raise if the lock is no longer this claim's.

        Reads the lock once, so it also finds a takeover
        that happened since the last renewal.

        Raises:
            VersionLockLostError: if another publisher took the lock,
                it is gone, or it could not be renewed for a whole lease
            audbackend.BackendError: if the backend fails

        """
        if self._lost is None:
            with self._mutex:
                entry = self._read()
                self._lost = self._lost_because(entry)
                if self._lost is None:
                    self._tag = entry.tag  # until the next renewal
        if self._lost is not None:
            raise VersionLockLostError(
                f"The lock of version '{self.version}' of database '{self.name}' "
                f"is no longer this publish's: {self._lost}. "
                "Nothing was committed."
            )

    def release(self) -> str | None:
        r"""Stop renewing, and remove the lock if it is this claim's.

        A failure to remove it is logged and returned, not raised:
        the lock is invisible to audb,
        and the next publish of the version takes it over
        once it is stale.

        Returns:
            what went wrong, ``None`` if nothing did

        """
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        failure = None
        if self._holder is not None:
            try:
                # one request if the lock is as this claim read it last
                tag = self._tag
                if tag is None or not self.remote.remove_if(
                    self.path, self.version, tag
                ):
                    entry = self._read()
                    if self._lost_because(entry) is None:
                        self.remote.remove_if(self.path, self.version, entry.tag)
            except Exception as error:
                failure = (
                    f"The lock '{self._where()}' could not be removed "
                    f"({_describe(error)}). "
                    "The next publish of this version takes it over once it is "
                    "stale: at once from this process or once it ends, "
                    f"else after its lease of {self.lease:g} s."
                )
                logger.warning("%s", failure)
            self._holder = None
        with _ACTIVE_LOCK:
            _ACTIVE.discard(self.key)
        return failure

    # -- claiming ---------------------------------------------------------

    def _wait_for_claim(self) -> None:
        start = time.monotonic()
        told = start
        last = ""
        while True:
            holder = self._try_claim()
            if holder is None:
                waited = time.monotonic() - start
                if waited > 0.5:
                    self.events.insert(0, Event("waited", last, "", waited))
                return
            last = str(holder)
            now = time.monotonic()
            if now - start >= self.lock_timeout:
                raise VersionLockedError(self._message(holder))
            if now - told >= 60:
                told = now
                logger.info(
                    "waiting %.0f s for the lock of %s %s held by %s",
                    now - start,
                    self.name,
                    self.version,
                    holder,
                )
            wait = min(self.POLL, holder.lease / 6, start + self.lock_timeout - now)
            time.sleep(max(0.05, wait))

    def _try_claim(self) -> Holder | None:
        r"""Claim the lock; return the live holder if that fails."""
        mine = Holder.here(self.lease)
        while True:
            if self.remote.create(self.path, self.version, mine.encode()):
                # read back, for servers that ignore If-None-Match,
                # while looking for a header of the version
                with concurrent.futures.ThreadPoolExecutor(1) as pool:
                    header = pool.submit(
                        self.remote.exists, layout.header(self.name), self.version
                    )
                    entry = self._read()
                    self._header_seen = header.result()
                if entry is None:
                    continue  # removed meanwhile
                if entry.data != mine.encode():
                    return Holder.read(entry.data)
                self._holder = mine
                return None
            entry = self._read()
            if entry is None:
                continue  # removed meanwhile
            if entry.data == mine.encode():  # a retried write found its own
                self._holder = mine
                return None
            holder = Holder.read(entry.data)
            reason = self._stale(holder, entry)
            if reason is None:
                return holder
            if self.remote.replace_if(
                self.path, self.version, mine.encode(), entry.tag
            ):
                taken = self._read()
                if taken is not None and taken.data == mine.encode():
                    logger.warning(
                        "taking over the lock of %s %s held by %s: %s",
                        self.name,
                        self.version,
                        holder,
                        reason,
                    )
                    self.events.append(Event("taken over", str(holder), reason))
                    self._holder = mine
                    return None
            # another publisher changed the lock meanwhile: look again

    def _stale(self, holder: Holder, entry: Entry) -> str | None:
        r"""Why a lock is stale, ``None`` if it is live."""
        if holder.host == owners.host() and holder.pid == os.getpid():
            own = owners.process_start(os.getpid())
            if (
                holder.process_started is None
                or own is None
                or (abs(own - holder.process_started) <= 1)
            ):
                # this process holds no lock of the version: _ACTIVE says so
                return "it was taken by this process, which no longer publishes it"
        reason = holder.gone()
        if reason is not None:
            return reason
        if entry.age is not None and entry.age > holder.lease:
            return (
                f"its lease of {holder.lease:g} s expired "
                f"(not renewed for {entry.age:.0f} s)"
            )
        return None

    def _break(self) -> None:
        entry = self._read()
        if entry is None:
            return
        holder = Holder.parse(entry.data) or "an unknown publisher"
        logger.warning(
            "breaking the lock of %s %s held by %s", self.name, self.version, holder
        )
        self.events.append(Event("broken", str(holder), "break_lock=True"))
        self.remote.remove_if(self.path, self.version, entry.tag)

    def _sweep(self) -> None:
        r"""Remove partial files of this version whose writers are gone."""
        folders = layout.version_folders(self.name, self.version)
        for path in self.remote.sweep_partials(folders, older_than=self.lease):
            logger.info("removed %s, left by a publish that is gone", path)

    # -- renewing ---------------------------------------------------------

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewer = threading.Thread(
            target=self._renew_loop, name="audb-publish-lease", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self) -> None:
        renewed = time.monotonic()
        while not self._stop.wait(self.lease / 3):
            try:
                self._lost = self._renew()
                renewed = time.monotonic()
            except Exception as error:  # the repository is down: try again
                if time.monotonic() - renewed > self.lease:
                    self._lost = (
                        f"it could not be renewed for {self.lease:g} s "
                        f"({_describe(error)})"
                    )
            if self._lost is not None:
                logger.warning("%s: %s", self._where(), self._lost)
                return

    def _renew(self) -> str | None:
        r"""Renew the lock; tell why it is lost, if it is."""
        with self._mutex:
            entry = self._read()
            lost = self._lost_because(entry)
            if lost is not None:
                return lost
            renewed = self._holder.renew()
            data = renewed.encode()
            self._tag = None
            if not self.remote.replace_if(self.path, self.version, data, entry.tag):
                now = self._read()
                if now is None or now.data != data:  # else a retry found its own
                    return self._lost_because(now) or "it changed while renewed"
            self._holder = renewed
            return None

    # -- helpers ----------------------------------------------------------

    def _read(self) -> Entry | None:
        return self.remote.read_entry(self.path, self.version)

    def _lost_because(self, entry: Entry | None) -> str | None:
        if self._holder is None:
            return "it was released"
        if entry is None:
            return "it was removed by someone else"
        holder = Holder.parse(entry.data)
        if holder is None or holder.token != self._holder.token:
            return f"it is now held by {holder or 'an unknown publisher'}"
        return None

    def _where(self) -> str:
        return self.remote.path(self.path, self.version)

    def _message(self, holder: Holder) -> str:
        message = (
            f"Version '{self.version}' of database '{self.name}' "
            f"is being published by {holder} "
            f"(lock '{self._where()}', lease {holder.lease:g} s). "
        )
        return message + (
            "Wait for it with lock_timeout (CLI: --lock-timeout); "
            "if that publish no longer runs, its lock is taken over "
            "once its lease expires, "
            "or remove it with audb-publish unlock."
        )


def _describe(error: BaseException) -> str:
    r"""Type and message of an error, of the backend's error if wrapped."""
    inner = getattr(error, "exception", None)
    if isinstance(inner, BaseException):
        error = inner
    return f"{type(error).__name__}: {error}"


def read_holder(remote: Remote, name: str, version: str) -> tuple[Holder, Entry] | None:
    r"""Who holds the lock of a version.

    Args:
        remote: the repository
        name: database name
        version: version

    Returns:
        holder and the lock as read, ``None`` if there is no lock

    Raises:
        audbackend.BackendError: if the backend fails

    """
    entry = remote.read_entry(layout.lock(name), version)
    if entry is None:
        return None
    return Holder.read(entry.data), entry


def unlock(
    name: str,
    version: str,
    repository: audb.Repository,
    *,
    token: str | None = None,
) -> Holder | None:
    r"""Remove the lock of a version, as ``terraform force-unlock`` does.

    Removes only the lock as read:
    if it changes meanwhile, or its token is not ``token``,
    nothing is removed.
    Only for a lock left by a publish that no longer runs
    and that is not taken over automatically,
    e.g. of a host that is gone, before its lease expires.

    Args:
        name: database name
        version: version
        repository: repository
        token: the token of the lock to remove,
            as :attr:`Holder.token`; any if ``None``

    Returns:
        the holder of the lock removed, ``None`` if there was none

    Raises:
        VersionLockedError: if the lock's token is not ``token``,
            or the lock changed while it was removed
        audbackend.BackendError: if the backend fails

    Examples:
        >>> repo = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> with Remote(repo.create_backend_interface()) as remote:
        ...     remote.create("/db/db.lock", "1.0.0", Holder.here().encode())
        True
        >>> unlock("db", "1.0.0", repo).pid == os.getpid()
        True
        >>> unlock("db", "1.0.0", repo) is None
        True

    """
    with Remote(repository.create_backend_interface()) as remote:
        found = read_holder(remote, name, version)
        if found is None:
            return None
        holder, entry = found
        if token is not None and token != holder.token:
            raise VersionLockedError(
                f"The lock of version '{version}' of database '{name}' "
                f"has the token '{holder.token}', not '{token}' ({holder}). "
                "Nothing was removed."
            )
        if not remote.remove_if(layout.lock(name), version, entry.tag):
            raise VersionLockedError(
                f"The lock of version '{version}' of database '{name}' "
                "changed while it was removed. Nothing was removed."
            )
        logger.warning("removed the lock of %s %s held by %s", name, version, holder)
        return holder
