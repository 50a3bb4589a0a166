"""The workers of one publish, with one progress display.

A :class:`Scheduler` owns a pool of ``num_workers`` threads,
which read and check the tables,
and the executor where scan and put jobs run
(:meth:`Scheduler.dispatch`):
the same threads by default,
or a process pool or a Dask cluster (see :mod:`audb_publish.executors`).
Jobs are plain functions that *return* their results;
they never touch the dependency table.
Threads are sized by what they wait on:
a job on them holds one of :func:`~audb_publish.threads.cores` slots while it runs,
so hashing, probing, compressing and writing archives
never run on more threads than the cores this process may use,
and gives its slot up while it waits on the network
(inside :func:`~audb_publish.threads.waiting`),
so that up to ``num_workers`` jobs wait on the repository at once
(uploads to MinIO/S3 go on in the background,
bounded by :mod:`audb_publish.network`).
A job that can split its work,
such as deflating one large file in blocks,
asks for helpers on idle cores with :func:`~audb_publish.threads.assist`.
The first exception of any job stops the scheduling of new jobs,
cancels the pending ones,
lets running jobs stop at their next read
(they call :meth:`Scheduler.progress`, which raises :class:`Cancelled`),
and is re-raised in the calling thread
with its original type and traceback.
The same happens on :class:`KeyboardInterrupt` in the calling thread.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import concurrent.futures
import enum
import functools
import os
import queue
import threading
import typing

from audb_publish import executors
from audb_publish.progress import READ
from audb_publish.progress import Display
from audb_publish.threads import Cancelled
from audb_publish.threads import cores
from audb_publish.threads import running


def check_num_workers(num_workers: int | None) -> None:
    r"""Check ``num_workers``.

    Args:
        num_workers: limit of work in parallel, ``None`` for five per CPU

    Raises:
        ValueError: if it is smaller than 1

    Examples:
        >>> check_num_workers(0)
        Traceback (most recent call last):
        ...
        ValueError: 'num_workers' must be at least 1, not 0.

    """
    if num_workers is not None and num_workers < 1:
        raise ValueError(f"'num_workers' must be at least 1, not {num_workers}.")


class Scheduler:
    r"""Owner of the worker threads, and the executor, of one publish.

    ``num_workers`` threads run jobs,
    at most :attr:`cores` of them at a time
    outside :func:`~audb_publish.threads.waiting`;
    scan and put jobs run on them or on the executor of ``scheduler``.

    Args:
        num_workers: number of worker threads,
            the limit of work in parallel,
            ``None`` for five per CPU as :func:`audb.publish` documents
        verbose: show one progress display
        desc: text of the progress display
        scheduler: where :meth:`dispatch` runs jobs,
            see :func:`audb_publish.executors.executor`

    Raises:
        ValueError: if ``num_workers`` is smaller than 1

    Examples:
        >>> with Scheduler(2, verbose=False) as scheduler:
        ...     futures = Pending(scheduler.submit(pow, 2, n) for n in range(3))
        ...     sorted(result for _, result in scheduler.drain(futures))
        [1, 2, 4]

    """

    def __init__(
        self,
        num_workers: int | None,
        *,
        verbose: bool,
        desc: str = "",
        scheduler: object = "threads",
    ):
        check_num_workers(num_workers)
        if num_workers is None:
            num_workers = (os.cpu_count() or 1) * 5
        self.num_workers = num_workers
        self.cores = min(num_workers, cores())
        r"""Number of jobs that compute at a time."""
        self.display = Display(verbose, desc)
        self._stop = threading.Event()
        self._slots = threading.Semaphore(self.cores)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            num_workers, thread_name_prefix="audb-publish"
        )
        threads = executors.ThreadExecutor(self.submit, self.cores)
        self.executor = executors.executor(scheduler, num_workers, threads)
        r"""Where :meth:`dispatch` runs jobs: these threads,
        a process pool or a Dask cluster."""

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop()
        self.executor.shutdown(failed=exc_type is not None)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.display.__exit__(exc_type, exc, tb)

    @property
    def parallel(self) -> int:
        r"""Number of jobs :meth:`dispatch` runs at a time."""
        return self.executor.workers

    @property
    def stopped(self) -> bool:
        r"""``True`` once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        r"""Stop scheduling and let running jobs stop at their next read."""
        self._stop.set()

    def progress(self, nbytes: int, stage: str = READ) -> None:
        r"""Report bytes read by a job; the cancellation point of jobs.

        Args:
            nbytes: bytes read since the last call
            stage: stage of the progress display they count for

        Raises:
            Cancelled: if the publish was stopped

        """
        if self._stop.is_set():
            raise Cancelled()
        self.display.update(nbytes, stage=stage)

    def submit(self, function: Callable, *args, **kwargs) -> concurrent.futures.Future:
        r"""Schedule ``function(*args, **kwargs)`` on a worker.

        Args:
            function: job
            *args: positional arguments of ``function``
            **kwargs: keyword arguments of ``function``

        Returns:
            future of the job's result

        Raises:
            Cancelled: if the publish was stopped

        """
        if self._stop.is_set():
            raise Cancelled()
        return self._pool.submit(self._run, function, args, kwargs)

    def dispatch(
        self, function: Callable, *args, stage: str = READ
    ) -> concurrent.futures.Future:
        r"""Schedule ``function(*args, progress)`` where scan and put jobs run.

        On the threads of this scheduler
        (:class:`~audb_publish.executors.ThreadExecutor`)
        ``progress`` is :meth:`progress` for ``stage``;
        on a process pool or a Dask cluster it ignores the bytes,
        which the caller counts when the job finished.

        Args:
            function: job, importable by name for an executor
            *args: its arguments, picklable for an executor
            stage: stage of the progress display its bytes count for

        Returns:
            future of the job's result

        Raises:
            Cancelled: if the publish was stopped

        """
        self.display.start(stage)
        if self._stop.is_set():
            raise Cancelled()
        progress = executors.ignore_progress
        if self.executor.local:
            progress = functools.partial(self.progress, stage=stage)
        return self.executor.submit(function, *args, progress)

    def help(self, helper: Callable[[], None]) -> None:
        r"""Run ``helper`` as a job, for :func:`audb_publish.threads.assist`.

        Args:
            helper: function without arguments

        """
        self._pool.submit(self._run, helper, (), {})

    def _run(self, function: Callable, args: tuple, kwargs: dict):
        with self._slots:
            if self._stop.is_set():
                raise Cancelled()
            with running(self._slots, self):
                return function(*args, **kwargs)

    def drain(
        self, pending: Pending
    ) -> Iterator[tuple[concurrent.futures.Future, object]]:
        r"""Yield ``(future, result)`` of ``pending`` as jobs finish.

        ``pending`` may grow while it is drained.
        Each finished job is taken from a queue,
        so waiting costs the same for ten or a million jobs.

        Args:
            pending: futures to wait for

        Yields:
            finished future and its result

        Raises:
            Exception: the exception of the earliest added job that fails,
                see :meth:`_raise_first`

        """
        while pending.count:
            future = pending.next()
            if future.cancelled():
                continue
            if future.exception() is not None:
                self._raise_first(pending, future)
            yield future, future.result()

    def _raise_first(
        self, pending: Pending, failed: concurrent.futures.Future
    ) -> typing.NoReturn:
        r"""Raise the error of the earliest added job of ``pending`` that fails.

        Jobs added after the failed one are cancelled or,
        if running, stopped.
        Jobs added before it finish,
        and the error of the earliest failing job wins,
        so that the same input raises the same error,
        whatever the number of workers and the timing.

        """
        number = pending.number(failed)
        error = failed.exception()
        pending.cancel_after(number)
        while pending.waiting_before(number):
            future = pending.next()
            if future.cancelled() or future.exception() is None:
                continue
            if pending.number(future) < number:
                number, error = pending.number(future), future.exception()
                pending.cancel_after(number)
        self.stop()
        raise error

    def ordered(self, futures: Iterable[concurrent.futures.Future]) -> list:
        r"""Wait for jobs and return their results in the order of ``futures``.

        The error that wins is deterministic:
        that of the first job in ``futures`` that failed,
        whichever job failed first in time.

        Args:
            futures: futures of submitted jobs

        Returns:
            results, in the order of ``futures``

        Raises:
            Exception: the exception of the first failed job in ``futures``,
                after all other jobs were told to stop

        Examples:
            >>> with Scheduler(2, verbose=False) as scheduler:
            ...     scheduler.ordered([scheduler.submit(pow, 2, n) for n in range(3)])
            [1, 2, 4]

        """
        results = []
        for future in futures:
            error = future.exception()
            if error is not None:
                self.stop()
                raise error
            results.append(future.result())
        return results


class Pending:
    r"""Futures to wait for, delivered in the order they finish.

    Args:
        futures: initial futures

    Examples:
        >>> pending = Pending()
        >>> future = concurrent.futures.Future()
        >>> pending.add(future)
        >>> future.set_result(1)
        >>> pending.next().result()
        1

    """

    def __init__(self, futures: Iterable[concurrent.futures.Future] = ()):
        self._numbers: dict[concurrent.futures.Future, int] = {}
        self._waiting: set[concurrent.futures.Future] = set()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        for future in futures:
            self.add(future)

    @property
    def count(self) -> int:
        r"""Number of futures not delivered yet."""
        return len(self._waiting)

    def add(self, future: concurrent.futures.Future) -> None:
        r"""Add a future to wait for.

        Args:
            future: future of a submitted job

        """
        self._numbers[future] = len(self._numbers)
        self._waiting.add(future)
        future.add_done_callback(self._done.put)

    def number(self, future: concurrent.futures.Future) -> int:
        r"""Position of ``future`` among the futures added, from 0.

        Args:
            future: an added future

        Returns:
            its position

        """
        return self._numbers[future]

    def waiting_before(self, number: int) -> int:
        r"""Number of futures added before position ``number`` not delivered yet.

        Args:
            number: position

        Returns:
            number of futures

        """
        return sum(self._numbers[future] < number for future in self._waiting)

    def cancel_after(self, number: int) -> None:
        r"""Cancel futures added after position ``number`` that did not start.

        Args:
            number: position

        """
        for future in self._waiting:
            if self._numbers[future] > number:
                future.cancel()

    def next(self) -> concurrent.futures.Future:
        r"""Wait for the next future to finish.

        Returns:
            the finished future

        """
        while True:
            try:
                future = self._done.get(timeout=0.2)
            except queue.Empty:  # wake up for KeyboardInterrupt
                continue
            self._waiting.discard(future)
            return future


class JobKind(enum.Enum):
    r"""What a job of :class:`Jobs` does.

    The value of a scan job's kind is the kind of file it scans,
    as :mod:`audb_publish.integrity` names it.

    Examples:
        >>> JobKind.TABLE.value
        'table'

    """

    MEDIA = "media"
    r"""Scans a batch of media files."""
    TABLE = "table"
    r"""Scans a table file."""
    ATTACHMENT = "attachment"
    r"""Scans an attachment."""
    PUT = "put"
    r"""Packs and puts archives and files."""
    CHECK = "check"
    r"""Checks a published archive or file (:func:`audb_publish.verify`)."""


class Jobs:
    r"""Jobs of one stage on a scheduler, each with a kind and a key.

    Args:
        scheduler: worker pool

    """

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self._pending = Pending()
        self._kinds: dict[object, tuple[JobKind, str | None, int, int, tuple]] = {}

    def submit(
        self,
        kind: JobKind,
        key: str | None,
        function: Callable,
        *args,
        nbytes: int = 0,
        files: int = 0,
        stage: str = READ,
        credit: tuple[str, ...] | None = None,
    ) -> None:
        r"""Submit ``function(*args, progress)`` with :meth:`Scheduler.dispatch`.

        Args:
            kind: kind of job
            key: ID of what the job works on, or ``None``
            function: job
            *args: its arguments, before the progress callback
            nbytes: bytes the job reads,
                shown when it finished if it ran on an executor
            files: files done when the job finished
            stage: stage of the progress display its bytes count for
            credit: stages ``nbytes`` count for
                if the job ran on an executor, ``(stage,)`` if ``None``

        """
        future = self.scheduler.dispatch(function, *args, stage=stage)
        self._kinds[future] = (kind, key, nbytes, files, credit or (stage,))
        self._pending.add(future)

    @property
    def count(self) -> int:
        r"""Jobs not finished yet."""
        return self._pending.count

    def finished(self) -> Iterator[tuple[JobKind, str | None, object]]:
        r"""Kind, key and result of jobs as they finish, also those added meanwhile.

        Yields:
            kind, key and result

        Raises:
            Exception: the error of the earliest submitted job that fails

        """
        elsewhere = not self.scheduler.executor.local
        display = self.scheduler.display
        for future, result in self.scheduler.drain(self._pending):
            kind, key, nbytes, files, stages = self._kinds.pop(future)
            display.update(0, files=files)
            if elsewhere:
                for stage in stages:
                    display.update(nbytes, stage=stage)
            yield kind, key, result
