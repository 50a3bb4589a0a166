r"""Requests in flight to an object store, apart from the work of the cores.

When each request waits a round trip,
the number of requests in flight is the speed limit,
whatever the cores do.
So uploads to MinIO/S3 do not run on the workers that compute
(``num_workers``, at most the cores):
a worker writes an archive,
hands it to :class:`Uploads` and goes on with the next one,
while up to :attr:`Pacer.limit` uploads wait on the network.

* :class:`Pacer`: one per repository, the limit of requests in flight.
  By default it starts at :data:`START` (32)
  and adapts as TCP does: it grows by one for every upload
  until the first ``SlowDown``, then by one for every limit-many uploads,
  up to :data:`CAP` (128),
  and shrinks by 30% on ``503 SlowDown`` or ``429``,
  pausing new requests for the ``Retry-After`` the server asked for.
  It is never below ``num_workers``.
  ``max_requests`` fixes where it starts and its cap.
* :class:`PacedRetry`: retries 500, 502, 503, 504,
  connection resets and timeouts with exponential backoff and jitter,
  within :data:`RETRY_SECONDS`, honouring ``Retry-After``;
  never 403, bad credentials or a checksum mismatch (400),
  and never the POSTs that create or complete a multipart upload.
  It counts retries and tells the pacer of every ``SlowDown``.
* :func:`http_client`: one connection pool per repository,
  sized to the cap of requests in flight,
  that keeps its connections alive,
  passed to the MinIO client through audbackend's ``http_client`` argument.
* :class:`Uploads`: the uploads in flight,
  bounded in number by the pacer
  and in bytes by :data:`BUDGET` (512 MB, at most half the free space
  of the temporary folder),
  whatever the sizes of the archives.

"""

from __future__ import annotations

from collections.abc import Callable
import concurrent.futures
import contextlib
import os
import shutil
import tempfile
import threading
import time

import certifi
import urllib3
from urllib3.util import Retry

from audb_publish.threads import waiting

START = 32
r"""Requests in flight a repository starts with."""

CAP = 128
r"""Most requests in flight to one repository."""

BUDGET = 512 << 20
r"""Most bytes of archives written and not yet uploaded."""

RETRY_SECONDS = 120.0
r"""Most seconds a request is retried."""

RETRY_STATUS = (500, 502, 503, 504)
r"""HTTP statuses that are retried; ``429`` too, as ``Retry-After`` asks."""


class Pacer:
    r"""The limit of requests in flight to one repository.

    Args:
        floor: the limit never goes below it (``num_workers``)
        start: limit to start with
        cap: most requests in flight

    Examples:
        >>> pacer = Pacer(floor=2, start=4, cap=8)
        >>> with pacer.slot():
        ...     pacer.in_flight
        1
        >>> pacer.limit  # one more per upload until the first SlowDown
        5.0
        >>> pacer.slow_down()
        >>> pacer.limit
        3.5

    """

    def __init__(self, floor: int = 1, start: int = START, cap: int = CAP):
        self._limits(floor, start, cap)
        self.max_requests: int | None = None
        r"""``max_requests`` of :meth:`configure`, ``None`` if it adapts freely."""
        self.in_flight = 0
        self.most = 0
        r"""Most requests in flight at once."""
        self.retries = 0
        r"""Requests retried."""
        self.slow_downs = 0
        r"""``SlowDown`` (503) or ``429`` answers."""
        self._resume = 0.0
        self._shrunk = 0.0
        self._condition = threading.Condition()

    def configure(self, floor: int, max_requests: int | None) -> None:
        r"""Set the floor, and a fixed start and cap.

        Args:
            floor: ``num_workers``
            max_requests: start and cap, :data:`START` and :data:`CAP` if ``None``

        Examples:
            >>> pacer = Pacer()
            >>> pacer.configure(8, 4)
            >>> pacer.limit, pacer.cap
            (8.0, 8)

        """
        with self._condition:
            self.max_requests = max_requests
            if max_requests is None:
                self._limits(floor, START, CAP)
            else:
                self._limits(floor, max_requests, max_requests)
            self._condition.notify_all()

    def _limits(self, floor: int, start: int, cap: int) -> None:
        self.floor = floor
        self.cap = max(cap, floor)
        self.limit = float(min(max(start, floor), self.cap))

    @contextlib.contextmanager
    def slot(self, n: int = 1):
        r"""Hold ``n`` of the requests in flight while active.

        Waits while the limit is reached
        (a request of more than the limit waits until none is in flight)
        and while the server asked to pause.

        Args:
            n: requests, e.g. the parts uploaded at once

        Yields:
            nothing

        """
        with self._condition:
            while True:
                pause = self._resume - time.monotonic()
                if pause > 0:
                    self._condition.wait(pause)
                    continue
                if self.in_flight == 0 or self.in_flight + n <= self.limit:
                    break
                self._condition.wait()
            self.in_flight += n
            self.most = max(self.most, self.in_flight)
        ok = False
        try:
            yield
            ok = True
        finally:
            with self._condition:
                self.in_flight -= n
                if ok:  # slow start until the first SlowDown, as TCP does
                    step = n if not self.slow_downs else n / self.limit
                    self.limit = min(self.cap, self.limit + step)
                self._condition.notify_all()

    def slow_down(self, retry_after: float | None = None) -> None:
        r"""The server asked for fewer requests: shrink the limit, maybe pause.

        The limit shrinks at most once per second,
        so that a burst of answers to requests sent at once
        counts as one.

        Args:
            retry_after: seconds the server asked to wait

        """
        with self._condition:
            now = time.monotonic()
            self.slow_downs += 1
            if now - self._shrunk >= 1.0:
                self._shrunk = now
                self.limit = max(float(self.floor), round(self.limit * 0.7, 6))
            if retry_after:
                self._resume = max(self._resume, now + retry_after)

    def retried(self) -> None:
        r"""Count a retry."""
        with self._condition:
            self.retries += 1


class PacedRetry(Retry):
    r"""urllib3's retry that tells its :class:`Pacer` and stops after a time.

    Args:
        pacer: told of retries and ``SlowDown`` answers
        seconds: most seconds from the first failure
        **kwargs: as :class:`urllib3.util.Retry`

    """

    def __init__(self, *args, pacer: Pacer | None = None, seconds=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.pacer = pacer
        self.seconds = RETRY_SECONDS if seconds is None else seconds
        self.deadline: float | None = None

    def new(self, **kwargs) -> PacedRetry:  # noqa: D102
        retry = super().new(**kwargs)
        retry.pacer, retry.seconds = self.pacer, self.seconds
        retry.deadline = self.deadline
        return retry

    def increment(self, method=None, url=None, response=None, error=None, **kwargs):
        r"""Count the retry, tell the pacer of a ``SlowDown``, check the time."""
        now = time.monotonic()
        if self.pacer is not None:
            self.pacer.retried()
            if response is not None and response.status in (429, 503):
                self.pacer.slow_down(self.get_retry_after(response))
        retry = super().increment(method, url, response, error, **kwargs)
        retry.deadline = now + self.seconds if self.deadline is None else self.deadline
        if now > retry.deadline:
            cause = error or urllib3.exceptions.ResponseError(
                f"retried for more than {self.seconds:g} s"
            )
            raise urllib3.exceptions.MaxRetryError(kwargs.get("_pool"), url, cause)
        return retry


def retry(pacer: Pacer | None = None) -> PacedRetry:
    r"""The retry policy of requests to an object store.

    Args:
        pacer: told of retries and ``SlowDown`` answers

    Returns:
        retry policy

    Examples:
        >>> policy = retry()
        >>> 503 in policy.status_forcelist, 403 in policy.status_forcelist
        (True, False)

    """
    return PacedRetry(
        total=10,
        backoff_factor=0.1,
        backoff_max=10,
        backoff_jitter=0.1,
        status_forcelist=(*RETRY_STATUS, 429),
        respect_retry_after_header=True,
        pacer=pacer,
    )


def http_client(pacer: Pacer, *, read_timeout: float | None = 300.0):
    r"""A connection pool for one object store, sized to the requests in flight.

    As minio's own,
    but it keeps up to :data:`CAP` plus a few connections alive
    instead of 10, and retries with :class:`PacedRetry`.

    Args:
        pacer: of the repository
        read_timeout: seconds to wait for an answer

    Returns:
        pool for :class:`minio.Minio`'s ``http_client``

    """
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=10.0, read=read_timeout),
        maxsize=CAP + 8,
        block=False,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=retry(pacer),
    )


def budget(folder: str | None = None) -> int:
    r"""Most bytes of archives in flight: :data:`BUDGET`, or half the free space.

    Args:
        folder: where archives are written before their upload,
            the system's temporary folder if ``None``

    Returns:
        bytes

    Examples:
        >>> 0 < budget() <= BUDGET
        True

    """
    folder = tempfile.gettempdir() if folder is None else folder
    try:
        free = shutil.disk_usage(folder).free
    except OSError:  # pragma: no cover
        return BUDGET
    return max(1, min(BUDGET, free // 2))


class Uploads:
    r"""Uploads in flight, bounded in number and bytes.

    :meth:`submit` waits, giving up its core,
    while the bytes in flight would pass the budget
    (an upload larger than the budget waits until none is in flight);
    each upload then waits for a slot of the pacer.
    The first failure is raised by the next :meth:`submit`
    and by :meth:`flush`.

    Args:
        pacer: of the repository
        budget: most bytes in flight

    Examples:
        >>> uploads = Uploads(Pacer(start=2, cap=2), budget=10)
        >>> done = []
        >>> uploads.submit(lambda: done.append(1), 6)
        >>> uploads.submit(lambda: done.append(2), 6)
        >>> uploads.flush()
        >>> sorted(done)
        [1, 2]
        >>> uploads.close()

    """

    def __init__(self, pacer: Pacer, budget: int):
        self.pacer = pacer
        self.budget = budget
        self.bytes = 0
        self.most_bytes = 0
        r"""Most bytes in flight at once."""
        self._futures: list[concurrent.futures.Future] = []
        self._error: BaseException | None = None
        self._condition = threading.Condition()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=CAP + 8, thread_name_prefix="audb-publish-upload"
        )

    def submit(self, upload: Callable[[], None], nbytes: int, parts: int = 1) -> None:
        r"""Start an upload once the budget allows.

        Args:
            upload: does the upload and cleans up after it
            nbytes: bytes it sends
            parts: requests it sends at once

        Raises:
            Exception: the first failure of an earlier upload

        """
        with waiting(), self._condition:
            while (
                self._error is None
                and self.bytes
                and (self.bytes + nbytes > self.budget)
            ):
                self._condition.wait()
            if self._error is not None:
                raise self._error
            self.bytes += nbytes
            self.most_bytes = max(self.most_bytes, self.bytes)
        self._futures.append(self._executor.submit(self._run, upload, nbytes, parts))

    def _run(self, upload: Callable[[], None], nbytes: int, parts: int) -> None:
        try:
            with self.pacer.slot(min(parts, self.pacer.cap)):
                upload()
        except BaseException as error:
            with self._condition:
                if self._error is None:
                    self._error = error
            raise
        finally:
            with self._condition:
                self.bytes -= nbytes
                self._condition.notify_all()

    def flush(self) -> None:
        r"""Wait for every upload; raise the first failure.

        Raises:
            Exception: the first failure of an upload

        """
        with waiting():
            futures, self._futures = self._futures, []
            concurrent.futures.wait(futures)
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        r"""Cancel the uploads not started, and wait for the others."""
        for future in self._futures:
            future.cancel()
        self._executor.shutdown(wait=True)
