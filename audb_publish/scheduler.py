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
so that up to ``num_workers`` uploads and S3 requests are in flight.
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
import os
import queue
import shutil
import sys
import threading
import time
import typing

import audeer
import tqdm

from audb_publish import executors
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


class Display:
    r"""One progress display for all workers: bytes, files, rate and ETA.

    Work comes in phases (checking tables, then publishing),
    each with its totals set once at its start,
    and lowered once when it turns out
    that fewer files than estimated need to be put.
    On a terminal it is a progress bar
    that fits the terminal's width;
    otherwise, as in CI logs,
    it writes a plain line at most every ``interval`` seconds
    and one when a phase ends.
    Following audb's ``verbose`` convention,
    nothing is shown if ``enabled`` is ``False``.

    Args:
        enabled: show the display
        desc: text beside the display, followed by the phase
        stream: where to write, standard error if ``None``
        interval: seconds between plain lines

    Examples:
        >>> with Display(False, "Publish") as display:
        ...     display.phase("scan and put", total_bytes=10, total_files=1)
        ...     display.update(10, files=1)
        ...     display.files, display.bytes
        (1, 10)

    """

    def __init__(
        self,
        enabled: bool,
        desc: str,
        *,
        stream: typing.TextIO | None = None,
        interval: float = 10.0,
    ):
        self.files = 0
        self.total_files = 0
        self.bytes = 0
        r"""Bytes of all phases."""
        self._enabled = enabled
        self._name = desc
        self._desc = desc
        self._stream = stream
        self._interval = interval
        self._lock = threading.Lock()
        self._bar: tqdm.tqdm | None = None
        self._done = 0
        self._total = 0
        self._started = self._last = time.monotonic()

    @property
    def stream(self) -> typing.TextIO:
        r"""Stream the display writes to."""
        return sys.stderr if self._stream is None else self._stream

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._end_phase(completed=exc_info[0] is None)

    def phase(self, label: str, *, total_bytes: int, total_files: int = 0) -> None:
        r"""End the current phase and start one with known totals.

        Args:
            label: name of the phase
            total_bytes: bytes to read
            total_files: files to finish

        """
        with self._lock:
            self._end_phase(completed=True)
            self._desc = f"{self._name} ({label})"
            self._done = self.files = 0
            self._total = total_bytes
            self.total_files = total_files
            self._started = self._last = time.monotonic()
            if self._enabled and self.stream.isatty():
                self._bar = self._new_bar()

    def lower_total(self, total_bytes: int) -> None:
        r"""Lower the bytes of the current phase to what is now known.

        Args:
            total_bytes: bytes of the phase, no more than set at its start

        """
        with self._lock:
            self._total = max(min(self._total, total_bytes), self._done)
            if self._bar is not None:
                self._bar.total = self._total
                self._bar.refresh()

    def update(self, nbytes: int, *, files: int = 0) -> None:
        r"""Record finished work.

        Args:
            nbytes: bytes read
            files: files finished

        """
        with self._lock:
            self.bytes += nbytes
            self._done += nbytes
            self.files += files
            if self._bar is not None:
                if files:
                    self._bar.set_postfix_str(self._files(), False)
                self._bar.update(nbytes)
            elif self._enabled and time.monotonic() - self._last >= self._interval:
                self._line()

    def _new_bar(self) -> tqdm.tqdm:
        columns = shutil.get_terminal_size((audeer.config.TQDM_COLUMNS, 24)).columns
        bar = tqdm.tqdm(
            total=self._total,
            desc=self._desc,
            file=self.stream,
            unit="B",
            unit_scale=True,
            # one column less than the terminal, so that a line never wraps
            ncols=max(20, min(audeer.config.TQDM_COLUMNS, columns - 1)),
            leave=audeer.config.TQDM_LEAVE,
            bar_format=(
                "{desc} {percentage:3.0f}%|{bar}| {n_fmt}B/{total_fmt}B "
                "[{elapsed}<{remaining}, {rate_fmt}] {postfix}"
            ),
            mininterval=0.2,
            smoothing=0,
        )
        bar.set_postfix_str(self._files(), False)
        return bar

    def _files(self) -> str:
        return f"{self.files}/{self.total_files} files" if self.total_files else ""

    def _line(self) -> None:
        r"""A plain line: percentage, bytes, files, rate, ETA."""
        self._last = now = time.monotonic()
        seconds = now - self._started
        percent = 100 * self._done / self._total if self._total else 100.0
        rate = self._done / seconds if seconds > 0 else 0.0
        left = (self._total - self._done) / rate if rate > 0 else 0.0
        text = (
            f"{self._desc}: {percent:3.0f}% "
            f"{self._done / 1e6:.1f}/{self._total / 1e6:.1f} MB, "
            f"{rate / 1e6:.1f} MB/s, {seconds:.0f} s"
        )
        if self.total_files:
            text += f", {self._files()}"
        if self._done < self._total:
            text += f", about {left:.0f} s left"
        print(text, file=self.stream, flush=True)

    def _end_phase(self, completed: bool) -> None:
        if self._bar is not None:
            if completed:
                self._bar.n = self._bar.total
                self._bar.refresh()
            self._bar.close()
            self._bar = None
        elif self._enabled and self._total and completed:
            self._done = max(self._done, self._total)
            self._line()
        self._total = 0


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
        self.executor = executors.executor(scheduler, num_workers)
        r"""Where :meth:`dispatch` runs jobs, ``None`` for the threads."""

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.stop()
        if self.executor is not None:
            self.executor.shutdown(failed=exc_type is not None)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.display.__exit__(exc_type, exc, tb)

    @property
    def parallel(self) -> int:
        r"""Number of jobs :meth:`dispatch` runs at a time."""
        return self.cores if self.executor is None else self.executor.workers

    @property
    def stopped(self) -> bool:
        r"""``True`` once :meth:`stop` was called."""
        return self._stop.is_set()

    def stop(self) -> None:
        r"""Stop scheduling and let running jobs stop at their next read."""
        self._stop.set()

    def progress(self, nbytes: int) -> None:
        r"""Report bytes read by a job; the cancellation point of jobs.

        Args:
            nbytes: bytes read since the last call

        Raises:
            Cancelled: if the publish was stopped

        """
        if self._stop.is_set():
            raise Cancelled()
        self.display.update(nbytes)

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

    def dispatch(self, function: Callable, *args) -> concurrent.futures.Future:
        r"""Schedule ``function(*args, progress)`` where scan and put jobs run.

        On the threads of this scheduler ``progress`` is :meth:`progress`;
        on an :attr:`executor` it ignores the bytes,
        which the caller counts when the job finished.

        Args:
            function: job, importable by name for an executor
            *args: its arguments, picklable for an executor

        Returns:
            future of the job's result

        Raises:
            Cancelled: if the publish was stopped

        """
        if self.executor is None:
            return self.submit(function, *args, self.progress)
        if self._stop.is_set():
            raise Cancelled()
        return self.executor.submit(function, *args, executors.ignore_progress)

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


class Jobs:
    r"""Jobs of one stage on a scheduler, each with a kind and a key.

    Args:
        scheduler: worker pool

    """

    def __init__(self, scheduler: Scheduler):
        self.scheduler = scheduler
        self._pending = Pending()
        self._kinds: dict[object, tuple[str, str | None, int]] = {}

    def submit(
        self,
        kind: str,
        key: str | None,
        function: Callable,
        *args,
        nbytes: int = 0,
    ) -> None:
        r"""Submit ``function(*args, progress)`` with :meth:`Scheduler.dispatch`.

        Args:
            kind: kind of job
            key: ID of what the job works on, or ``None``
            function: job
            *args: its arguments, before the progress callback
            nbytes: bytes the job reads,
                shown when it finished if it ran on an executor

        """
        future = self.scheduler.dispatch(function, *args)
        self._kinds[future] = (kind, key, nbytes)
        self._pending.add(future)

    @property
    def count(self) -> int:
        r"""Jobs not finished yet."""
        return self._pending.count

    def finished(self) -> Iterator[tuple[str, str | None, object]]:
        r"""Kind, key and result of jobs as they finish, also those added meanwhile.

        Yields:
            kind, key and result

        Raises:
            Exception: the error of the earliest submitted job that fails

        """
        elsewhere = self.scheduler.executor is not None
        for future, result in self.scheduler.drain(self._pending):
            kind, key, nbytes = self._kinds.pop(future)
            if elsewhere:
                self.scheduler.display.update(nbytes)
            yield kind, key, result
