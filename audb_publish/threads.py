"""Cores, waiting and helpers of the job running on this thread.

A leaf module, imported by the jobs' code
(:mod:`audb_publish.remote`, :mod:`audb_publish.deflate_blocks`)
and by :class:`audb_publish.scheduler.Scheduler`, which runs the jobs.
A job of a scheduler holds one of its core slots while it runs
(:func:`running` records the slot and the scheduler for the thread);
inside :func:`waiting` it gives the slot up,
and :func:`assist` starts helpers on idle cores.
Outside a job both do nothing.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import os
import threading
import typing

_local = threading.local()


class Cancelled(Exception):
    r"""Raised inside a job when the publish is stopped."""


class Helped(typing.Protocol):
    r"""What :func:`assist` needs of the scheduler of a job."""

    cores: int
    stopped: bool

    def help(self, helper: Callable[[], None]) -> None:
        r"""Run ``helper`` as a job."""


def cores() -> int:
    r"""Number of cores this process may run on.

    Returns:
        cores in the affinity mask of this process

    Examples:
        >>> cores() >= 1
        True

    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def running(slot: threading.Semaphore, scheduler: Helped) -> Iterator[None]:
    r"""Mark the calling thread as running a job of ``scheduler``.

    Args:
        slot: the core slot the job holds
        scheduler: the scheduler of the job

    Examples:
        >>> with running(threading.Semaphore(1), None):
        ...     pass

    """
    _local.slot = slot
    _local.scheduler = scheduler
    try:
        yield
    finally:
        _local.slot = None
        _local.scheduler = None


@contextlib.contextmanager
def waiting() -> Iterator[None]:
    r"""Give up the core of the calling job while it waits.

    Wrap calls that wait on the network,
    such as uploads and requests to S3.
    Outside a job of a scheduler it does nothing.

    Examples:
        >>> with waiting():
        ...     pass

    """
    slot = getattr(_local, "slot", None)
    if slot is None:
        yield
        return
    slot.release()
    try:
        yield
    finally:
        slot.acquire()


def assist(helper: Callable[[], None], count: int) -> int:
    r"""Run ``helper`` on up to ``count`` more workers beside the calling job.

    The helpers are jobs of the calling job's scheduler
    and take a core only when one is free,
    so the calling job must be able to do all the work itself.
    A helper must return once the work is done,
    also if it starts after that;
    its errors are not raised by the scheduler
    and must be passed on by the calling job.
    Outside a job, or once the publish is stopped,
    no helper is started.

    Args:
        helper: function without arguments
        count: most helpers to start

    Returns:
        number of helpers started

    Examples:
        >>> assist(lambda: None, 1)
        0

    """
    scheduler = getattr(_local, "scheduler", None)
    if scheduler is None or scheduler.stopped:
        return 0
    count = max(0, min(count, scheduler.cores - 1))
    for _ in range(count):
        scheduler.help(helper)
    return count
