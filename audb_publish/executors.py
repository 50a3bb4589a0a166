r"""Where scan and put jobs run: threads, a process pool, or a Dask cluster.

The :class:`~audb_publish.scheduler.Scheduler` owns the workers.
By default (``scheduler="threads"``, as in Dask)
every job runs on its threads in this process.
With ``"processes"``, or a Dask cluster
(a :class:`distributed.Client`, or a scheduler address such as
``"tcp://host:8786"``),
the jobs that read files, scan and put
run on an :class:`Executor` of this module instead;
validation, planning and the dependency table stay in the calling process.

Those jobs are plain functions of plain data
(:func:`audb_publish.scan.scan_media`, :func:`audb_publish.scan.scan_path`,
:func:`audb_publish.pack.put_many`),
and the repository travels as a :class:`RemoteRef`:
its name, host and backend.
Each worker process opens the repository itself
with the credentials of its own environment and audbackend configuration;
no credential is sent.
A job returns what it did;
the calling process records the files put for the check before commit.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import uuid
import weakref

import audb

from audb_publish.layout import HEADER_FILE
from audb_publish.remote import Remote
from audb_publish.threads import cores

THREADS = "threads"
PROCESSES = "processes"
DASK_INSTALL = "pip install 'audb-publish[dask]'"
_SCHEDULERS = (
    "'scheduler' must be 'threads', 'processes', "
    "a distributed.Client or the address of a Dask scheduler"
)


@dataclasses.dataclass(frozen=True)
class RemoteRef:
    r"""A repository as jobs on other processes get it.

    Args:
        name: repository name
        host: repository host
        backend: backend name
        token: unique to one publish,
            so that a worker opens the repository anew for each publish
        num_workers: of the publish, the least requests in flight
        max_requests: of the publish, see :meth:`Remote.configure`

    Examples:
        >>> ref = RemoteRef.of(audb.Repository("repo", "/host", "file-system"))
        >>> ref.name, ref.backend
        ('repo', 'file-system')

    """

    name: str
    host: str
    backend: str
    token: str
    num_workers: int = 1
    max_requests: int | None = None

    @classmethod
    def of(
        cls,
        repository: audb.Repository,
        num_workers: int = 1,
        max_requests: int | None = None,
    ) -> RemoteRef:
        r"""Reference to a repository for one publish.

        Args:
            repository: the repository
            num_workers: of the publish
            max_requests: of the publish

        Returns:
            reference with a new token

        """
        return cls(
            repository.name,
            repository.host,
            repository.backend,
            uuid.uuid4().hex,
            num_workers,
            max_requests,
        )


OPENED = 8
r"""Most repositories a worker process keeps open, one per publish."""

_opened: dict[RemoteRef, Remote] = {}
_opened_lock = threading.Lock()


def resolve(remote: Remote | RemoteRef) -> Remote:
    r"""The repository of a job, opened once per worker process and publish.

    Args:
        remote: the repository itself (threads), or a reference to it

    Returns:
        the repository, open

    """
    if isinstance(remote, Remote):
        return remote
    with _opened_lock:
        if remote not in _opened:
            # forget the oldest, without closing it:
            # a worker may serve several publishes at once
            while len(_opened) >= OPENED:
                _opened.pop(next(iter(_opened)))
            repository = audb.Repository(remote.name, remote.host, remote.backend)
            _opened[remote] = Remote.of(repository)
            _opened[remote].configure(remote.num_workers, remote.max_requests)
            _opened[remote].__enter__()
        return _opened[remote]


def ignore_progress(nbytes: int, stage: str | None = None) -> None:
    r"""Progress callback of jobs on other processes: progress comes with results.

    Args:
        nbytes: bytes read
        stage: stage of the progress display they count for

    """


class Executor:
    r"""Runs jobs outside this process.

    Args:
        pool: a :class:`concurrent.futures.Executor`
        workers: number of jobs it runs at a time
        name: how errors name it

    """

    local = False
    r"""``True`` if jobs run in this process,
    which then sees their progress and records their transfers itself."""

    def __init__(self, pool: concurrent.futures.Executor, workers: int, name: str):
        self.pool = pool
        self.workers = workers
        self.name = name

    def submit(self, function: Callable, *args) -> concurrent.futures.Future:
        r"""Run ``function(*args)`` on a worker.

        Args:
            function: a function importable by name
            *args: picklable arguments

        Returns:
            future of its result

        """
        return self.pool.submit(function, *args)

    def check_storage(self, db_root: str, repository: audb.Repository) -> None:
        r"""Check that every worker sees the files as this process does.

        Args:
            db_root: database root
            repository: the repository

        Raises:
            RuntimeError: if a worker does not

        """

    def shutdown(self, *, failed: bool) -> None:
        r"""Stop the workers this executor started.

        Args:
            failed: the publish failed or was interrupted:
                cancel pending jobs and stop running ones

        """
        self.pool.shutdown(wait=not failed, cancel_futures=True)


class ThreadExecutor(Executor):
    r"""The threads of the scheduler of this process.

    Jobs run on the threads of :class:`audb_publish.scheduler.Scheduler`,
    each holding one of its core slots,
    and report their progress as they read.
    Nothing is started or stopped here: the scheduler owns the threads.

    Args:
        submit: the scheduler's submit, runs ``function(*args)`` on a thread
        workers: number of jobs that compute at a time

    Examples:
        >>> executor = ThreadExecutor(lambda f, *args: f(*args), 2)
        >>> executor.local, executor.submit(pow, 2, 3)
        (True, 8)

    """

    local = True

    def __init__(self, submit: Callable, workers: int):
        super().__init__(None, workers, "thread")
        self._submit = submit

    def submit(self, function: Callable, *args) -> concurrent.futures.Future:  # noqa: D102
        return self._submit(function, *args)

    def shutdown(self, *, failed: bool) -> None:  # noqa: D102
        pass  # the scheduler stops its threads


class ProcessExecutor(Executor):
    r"""A pool of worker processes on this machine.

    The processes start from a fork server,
    so they do not inherit the threads of this process
    (and, as with :mod:`multiprocessing`'s spawn,
    they import the main script again:
    it must guard its entry point with ``if __name__ == "__main__":``),
    and take the environment this process has now,
    as child processes do
    (the fork server keeps the one it started with).

    Args:
        workers: number of processes

    """

    def __init__(self, workers: int):
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["audb_publish.pack", "audb_publish.scan"])
        with _sigint_ignored():
            # the fork server and the processes it forks keep ignoring SIGINT:
            # Ctrl-C in a terminal, sent to the whole process group,
            # interrupts only this process, which ends the pool
            multiprocessing.forkserver.ensure_running()
        pool = concurrent.futures.ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_worker,
            initargs=(dict(os.environ),),
        )
        super().__init__(pool, workers, "process pool")
        _process_executors.add(self)

    def submit(self, function: Callable, *args) -> concurrent.futures.Future:  # noqa: D102
        if len(self.processes()) >= self.workers:
            return super().submit(function, *args)
        # a submit may start a process: a Ctrl-C waits until it is recorded,
        # so that shutdown finds and ends it
        with _sigint_deferred():
            return super().submit(function, *args)

    def shutdown(self, *, failed: bool) -> None:  # noqa: D102
        if failed:  # running jobs cannot be told to stop: end their processes
            # first, so that none still starting reads a queue already gone
            kill(self.processes())
        super().shutdown(failed=failed)
        _process_executors.discard(self)

    def processes(self) -> list[multiprocessing.Process]:
        r"""Worker processes of the pool.

        Returns:
            processes started so far

        """
        return list((getattr(self.pool, "_processes", None) or {}).values())


_process_executors: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


def kill(processes: list[multiprocessing.Process]) -> None:
    r"""Kill processes and wait up to 2 s for each to end.

    Args:
        processes: processes

    """
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=2)


def kill_workers() -> None:
    r"""Kill the worker processes of every process pool not shut down.

    For an exit at once (a second Ctrl-C),
    which leaves no worker running a job.

    """
    for pool in list(_process_executors):
        for process in pool.processes():
            process.kill()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    r"""Ignore SIGINT while active, if this is the main thread.

    A process started meanwhile inherits that,
    and Python keeps a SIGINT ignored at its start ignored.
    (A blocked SIGINT is not inherited: the mask is reset on exec.)
    A Ctrl-C in the few milliseconds of the start is lost.

    """
    if threading.current_thread() is not threading.main_thread():
        yield  # the workers ignore SIGINT from their initializer on
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    r"""Hold SIGINT back while active, if this is the main thread.

    A SIGINT that arrives meanwhile is raised again at the end,
    to the handler there was before.

    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGINT) is None:  # not set from Python
        yield
        return
    held = []
    before = signal.signal(signal.SIGINT, lambda *_: held.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if held:
            signal.raise_signal(signal.SIGINT)


def _start_worker(environ: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # this process ends the pool
    os.environ.clear()
    os.environ.update(environ)


class DaskExecutor(Executor):
    r"""The workers of a Dask cluster.

    Args:
        client: a :class:`distributed.Client`
        owned: close ``client`` on :meth:`shutdown`

    """

    def __init__(self, client, *, owned: bool = False):
        self.client = client
        self.owned = owned
        workers = sum(client.nthreads().values())
        super().__init__(client.get_executor(pure=False), workers, "Dask cluster")

    def check_storage(self, db_root: str, repository: audb.Repository) -> None:  # noqa: D102
        folder = None
        if repository.backend == "file-system":
            folder = os.path.join(repository.host, repository.name)
        expected = storage_signature(db_root, folder)
        seen = self.client.run(storage_signature, db_root, folder)
        for worker, signature in sorted(seen.items()):
            for (path, mine), (_, theirs) in zip(expected, signature, strict=True):
                if theirs != mine:
                    raise RuntimeError(
                        f"Dask worker {worker} does not see '{path}' "
                        f"as this process does ({theirs}, not {mine}); "
                        "all workers must share db_root "
                        "and a file-system repository"
                    )

    def shutdown(self, *, failed: bool) -> None:  # noqa: D102
        self.pool.shutdown(wait=not failed)  # cancels the jobs if failed
        if self.owned:
            self.client.close()


def storage_signature(
    db_root: str, repository_folder: str | None
) -> list[tuple[str, str]]:
    r"""What a process sees of the database root and the repository folder.

    Args:
        db_root: database root
        repository_folder: folder of a file-system repository, or ``None``

    Returns:
        per path: the MD5 of the database header,
        and whether the repository folder is a folder

    Examples:
        >>> storage_signature("nowhere", None)
        [('nowhere/db.yaml', 'missing')]

    """
    header = os.path.join(db_root, HEADER_FILE)
    try:
        with open(header, "rb") as fp:
            seen = [(header, hashlib.md5(fp.read()).hexdigest())]
    except OSError as error:
        seen = [
            (header, "missing" if isinstance(error, FileNotFoundError) else str(error))
        ]
    if repository_folder is not None:
        exists = "folder" if os.path.isdir(repository_folder) else "missing"
        seen.append((repository_folder, exists))
    return seen


def check_scheduler(scheduler: object) -> None:
    r"""Check the ``scheduler`` argument of :func:`audb_publish.publish`.

    Only a string can be checked without :mod:`distributed`;
    another object is checked by :func:`executor`.

    Args:
        scheduler: ``"threads"``, ``"processes"``,
            the address of a Dask scheduler,
            or a :class:`distributed.Client`

    Raises:
        ValueError: if it is a string and none of these

    Examples:
        >>> check_scheduler("tcp://host:8786")
        >>> check_scheduler("dask")
        Traceback (most recent call last):
        ...
        ValueError: 'scheduler' must be 'threads', 'processes', a distributed.Client or the address of a Dask scheduler, not 'dask'.

    """  # noqa: E501
    if isinstance(scheduler, str) and scheduler not in (THREADS, PROCESSES):
        if "://" not in scheduler:
            raise ValueError(f"{_SCHEDULERS}, not '{scheduler}'.")


def executor(scheduler, num_workers: int, threads: ThreadExecutor) -> Executor:
    r"""Executor for the ``scheduler`` argument of :func:`audb_publish.publish`.

    Args:
        scheduler: ``"threads"``, ``"processes"``,
            a :class:`distributed.Client`,
            or the address of a Dask scheduler
        num_workers: the limit of work in parallel;
            a process pool gets that many processes,
            at most as many as this process has cores
        threads: the executor of the threads of this process

    Returns:
        executor, ``threads`` for ``"threads"``

    Raises:
        ValueError: if ``scheduler`` is none of these
        ImportError: if a Dask cluster is asked for
            and :mod:`distributed` is not installed

    Examples:
        >>> threads = ThreadExecutor(lambda f, *args: f(*args), 2)
        >>> executor("threads", 4, threads) is threads
        True

    """
    check_scheduler(scheduler)
    if isinstance(scheduler, str) and scheduler == THREADS:
        return threads
    if isinstance(scheduler, str) and scheduler == PROCESSES:
        return ProcessExecutor(max(1, min(num_workers, cores())))
    try:
        import distributed
    except ImportError:
        raise ImportError(
            f"A Dask cluster needs the package 'distributed': {DASK_INSTALL}"
        ) from None
    if isinstance(scheduler, str):
        client = distributed.Client(scheduler, set_as_default=False, timeout=30)
        return DaskExecutor(client, owned=True)
    if not isinstance(scheduler, distributed.Client):
        raise ValueError(f"{_SCHEDULERS}, not {type(scheduler).__name__}.")
    return DaskExecutor(scheduler)
