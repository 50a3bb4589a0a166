r"""Progress that tells the truth: stages with their own rates, lines that fit.

A phase of work (checking tables, scanning and putting, verifying)
has one or more *stages*, each counting its own bytes:
for a publish, ``"hash"``, the bytes hashed by scans,
``"compress"``, the bytes read into archives (compressed) and files to put,
and ``"upload"``, the same bytes once their archive or file
is in the repository
(the repository reports no progress within one upload,
so an archive's bytes count when its upload finished).
Each stage learns its rate during the run:
its bytes done over the seconds since its first job started.
The time a stage still needs is its bytes left over its rate.
Stages that run at the same time form a group,
which takes as long as its slowest stage;
groups run one after the other
(hashing, then compressing and uploading;
with ``pipeline=True`` all three at once).
The ETA is the time the groups still need,
and unknown (``ETA ?``) until every stage with work left has a rate.
The percentage weighs each stage's bytes by the seconds they take,
so that fast hashing does not fill half the bar.
A file counts as done when nothing is left to do with it:
when it was scanned and needs no put, or when its put finished.

On a terminal, one line is redrawn at most five times a second;
it fits the terminal's width (at most ``audeer.config.TQDM_COLUMNS``)
from 40 columns up by dropping whole fields,
the title first, then files, bytes, rate and the ETA,
while the percentage always stays, see :func:`layout`.
Without a terminal, as in CI logs,
a plain line is written every ``interval`` seconds and when a phase ends.

audb shows progress with tqdm through :func:`audeer.progress_bar`.
This module does not:
tqdm's line has one counter with one rate,
from which it computes the ETA,
and it cuts its text at the width instead of leaving fields out
(at 80 columns ``, 2000/2003 files`` became ``, 20``).

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import shutil
import sys
import threading
import time
import typing

import audeer

READ = "read"
r"""Stage of a phase with a single stage."""

UPLOAD = "upload"
r"""Stage of bytes put that were read in another stage before."""

MIN_SECONDS = 0.2
r"""Seconds a stage must have run before its rate counts."""

REDRAW = 0.2
r"""Least seconds between two redraws on a terminal."""

PRIORITY = ("percent", "eta", "rate", "bytes", "files", "title")
r"""Fields of a line, those kept longest first."""


@dataclasses.dataclass
class Stage:
    r"""Bytes of one stage of a phase, and when it started.

    Args:
        total: bytes to do
        done: bytes done
        started: clock time its first job started, ``None`` before
        finished: clock time its bytes were all done, ``None`` before

    """

    total: int = 0
    done: int = 0
    started: float | None = None
    finished: float | None = None

    def add(self, nbytes: int, now: float) -> None:
        r"""Count bytes done.

        Args:
            nbytes: bytes
            now: clock time

        """
        if self.started is None:
            self.started = now
        self.done += nbytes
        self.check(now)

    def check(self, now: float) -> None:
        r"""Note the time the stage finished, once its bytes are done.

        Args:
            now: clock time

        """
        if self.finished is None and self.total and self.done >= self.total:
            self.finished = now

    def rate(self, now: float) -> float | None:
        r"""Bytes per second so far, ``None`` if not known yet.

        Args:
            now: clock time

        Returns:
            rate

        Examples:
            >>> Stage(100, 50, started=0.0).rate(2.0)
            25.0
            >>> Stage(100, 100, started=0.0, finished=1.0).rate(2.0)
            100.0
            >>> Stage(100, 0, started=0.0).rate(2.0) is None
            True

        """
        if self.started is None or self.done <= 0:
            return None
        end = now if self.finished is None else self.finished
        seconds = end - self.started
        if seconds < MIN_SECONDS:
            return None
        return self.done / seconds


@dataclasses.dataclass
class Estimate:
    r"""Where a phase stands.

    Args:
        percent: share of the phase's time done, 0 to 100
        eta: seconds left, ``None`` if unknown
        rate: bytes per second of the stage that ran last, ``None`` if unknown
        stage: that stage
        done: its bytes done
        total: its bytes to do

    """

    percent: float
    eta: float | None
    rate: float | None
    stage: str
    done: int
    total: int


def estimate(
    stages: Mapping[str, Stage],
    now: float,
    *,
    groups: Sequence[Sequence[str]],
    current: str,
) -> Estimate:
    r"""Percentage, ETA and rate of a phase from the rates of its stages.

    Stages of a group run at the same time,
    so a group takes as long as its slowest stage;
    groups run one after the other.
    A stage without a rate yet
    counts as slow as the slowest with one,
    and makes the ETA unknown while it has work left.

    Args:
        stages: stages by name
        now: clock time
        groups: names of stages that run at the same time,
            in the order the groups run
        current: the stage that reported last

    Returns:
        estimate

    Examples:
        >>> stages = {
        ...     "hash": Stage(100, 100, started=0.0, finished=1.0),  # 100 B in 1 s
        ...     "put": Stage(100, 10, started=1.0),  # 10 B in 1 s
        ... }
        >>> e = estimate(stages, 2.0, groups=[["hash"], ["put"]], current="put")
        >>> round(e.percent), e.eta, e.rate
        (18, 9.0, 10.0)

    """
    seconds_per_byte = {}
    for name, stage in stages.items():
        rate = stage.rate(now)
        if rate is not None:
            seconds_per_byte[name] = 1 / rate
    slowest = max(seconds_per_byte.values(), default=1.0)
    weight = {name: seconds_per_byte.get(name, slowest) for name in stages}

    def seconds(left: bool) -> float:
        return sum(
            max(
                (
                    max(stages[n].total - (stages[n].done if left else 0), 0)
                    * weight[n]
                    for n in group
                ),
                default=0.0,
            )
            for group in groups
        )

    total = seconds(left=False)
    left = seconds(left=True)
    percent = 100.0 * (1 - left / total) if total > 0 else 100.0
    unknown = any(
        name not in seconds_per_byte
        for name, stage in stages.items()
        if stage.total > stage.done
    )
    stage = stages[current]
    return Estimate(
        percent,
        None if unknown else left,
        stage.rate(now),
        current,
        min(stage.done, stage.total),
        stage.total,
    )


def fields(title: str, estimate: Estimate, files: int, total_files: int) -> dict:
    r"""Text of each field of a line.

    Args:
        title: title
        estimate: where the phase stands
        files: files done
        total_files: files of the phase, 0 to show none

    Returns:
        text by field name, see :data:`PRIORITY`

    Examples:
        >>> e = Estimate(43.2, 7.4, 2.5e6, "put", 12_300_000, 46_400_000)
        >>> fields("Publish 1.0.0 (scan, then put)", e, 1200, 2003)["files"]
        '1200/2003 files'

    """
    rate = "?" if estimate.rate is None else f"{estimate.rate / 1e6:.1f}"
    eta = "?" if estimate.eta is None else _seconds(estimate.eta)
    texts = {
        "title": title,
        "percent": f"{estimate.percent:3.0f}%",
        "bytes": f"{estimate.stage} {estimate.done / 1e6:.1f}/"
        f"{estimate.total / 1e6:.1f} MB",
        "rate": f"{rate} MB/s",
        "eta": f"ETA {eta}",
        "files": f"{files}/{total_files} files" if total_files else "",
    }
    return {name: text for name, text in texts.items() if text}


def _seconds(seconds: float) -> str:
    r"""Seconds as ``7 s``, ``3:05`` or ``1:02:05``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}:{seconds:02d}"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def layout(texts: Mapping[str, str], width: int, fraction: float) -> str:
    r"""One line of at most ``width`` columns, dropping whole fields.

    The line is ``title percent |bar| bytes rate ETA files``.
    Fields are left out in the reverse order of :data:`PRIORITY`
    until the rest fits;
    the bar takes the columns left, if at least 5.

    Args:
        texts: text by field name, see :func:`fields`
        width: columns
        fraction: share of the bar to fill, 0 to 1

    Returns:
        line

    Examples:
        >>> texts = {"title": "Publish", "percent": " 50%", "eta": "ETA 3 s"}
        >>> layout(texts, 40, 0.5)
        'Publish  50% |########         | ETA 3 s'
        >>> layout(texts, 12, 0.5)
        ' 50% ETA 3 s'

    """
    keep = [name for name in PRIORITY if name in texts]
    while True:
        line = _line(texts, keep, "")
        if len(line) <= width or len(keep) == 1:
            break
        keep.pop()
    room = width - len(line) - 3  # the bar's "|" and "|" and a space
    if room >= 5:
        filled = round(room * min(max(fraction, 0.0), 1.0))
        line = _line(texts, keep, f"|{'#' * filled}{' ' * (room - filled)}|")
    return line[:width]


def _line(texts: Mapping[str, str], keep: list[str], bar: str) -> str:
    order = ["title", "percent", "bar", "bytes", "rate", "eta", "files"]
    parts = {name: texts[name] for name in keep}
    if bar:
        parts["bar"] = bar
    return " ".join(parts[name] for name in order if name in parts)


class Display:
    r"""One progress display for all workers: stages, files, rate and ETA.

    Work comes in phases (checking tables, then publishing),
    each with its stages and their bytes set at its start,
    and lowered once it turns out
    that fewer bytes than estimated need to be put.
    On a terminal it is a line redrawn in place
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
        clock: seconds of a monotonic clock

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
        clock: Callable[[], float] = time.monotonic,
    ):
        self.files = 0
        self.total_files = 0
        self.bytes = 0
        r"""Bytes read in all phases (of every stage but :data:`UPLOAD`)."""
        self._enabled = enabled
        self._name = desc
        self._desc = desc
        self._stream = stream
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._stages: dict[str, Stage] = {}
        self._groups: list[list[str]] = []
        self._current = READ
        self._terminal = False
        self._drawn = 0.0
        self._started = self._last = clock()

    @property
    def stream(self) -> typing.TextIO:
        r"""Stream the display writes to."""
        return sys.stderr if self._stream is None else self._stream

    def __enter__(self) -> Display:
        return self

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._end_phase(completed=exc_info[0] is None)

    def phase(
        self,
        label: str,
        *,
        total_bytes: int = 0,
        total_files: int = 0,
        stages: Mapping[str, int] | None = None,
        groups: Sequence[Sequence[str]] | None = None,
    ) -> None:
        r"""End the current phase and start one with known totals.

        Args:
            label: name of the phase
            total_bytes: bytes to read, for a phase of one stage
            total_files: files to finish
            stages: bytes of each stage, in the order they run,
                instead of ``total_bytes``
            groups: names of stages that run at the same time,
                in the order the groups run;
                if ``None``, one stage after the other

        """
        with self._lock:
            self._end_phase(completed=True)
            self._desc = f"{self._name} ({label})"
            self.files = 0
            self.total_files = total_files
            stages = {READ: total_bytes} if stages is None else stages
            self._stages = {name: Stage(total) for name, total in stages.items()}
            self._current = next(iter(self._stages))
            self._groups = (
                [[name] for name in self._stages]
                if groups is None
                else [list(group) for group in groups]
            )
            self._started = self._last = self._clock()
            self._terminal = self._enabled and self.stream.isatty()
            self._drawn = 0.0

    def start(self, stage: str = READ) -> None:
        r"""Note that the first job of a stage started, if not yet.

        Args:
            stage: stage

        """
        with self._lock:
            found = self._stages.get(stage)
            if found is not None and found.started is None:
                found.started = self._clock()

    def lower_total(self, total_bytes: int, stage: str = READ) -> None:
        r"""Lower the bytes of a stage to what is now known.

        Args:
            total_bytes: bytes of the stage, no more than set at the start
            stage: stage

        """
        with self._lock:
            found = self._stages.get(stage)
            if found is not None:
                found.total = max(min(found.total, total_bytes), found.done)
                found.check(self._clock())
                self._draw()

    def update(self, nbytes: int, *, files: int = 0, stage: str = READ) -> None:
        r"""Record finished work.

        Args:
            nbytes: bytes done
            files: files done;
                negative for files counted before
                that turned out to need more work
            stage: stage of the bytes

        """
        with self._lock:
            if stage != UPLOAD:
                self.bytes += nbytes
            self.files += files
            found = self._stages.get(stage)
            if found is not None:
                found.add(nbytes, self._clock())
                if nbytes:
                    self._current = stage
            if self._terminal:
                self._draw()
            elif self._enabled and self._clock() - self._last >= self._interval:
                self._plain()

    def estimate(self) -> Estimate:
        r"""Where the current phase stands.

        Returns:
            estimate

        """
        if not self._stages:
            return Estimate(100.0, 0.0, None, READ, 0, 0)
        now = self._clock()
        return estimate(self._stages, now, groups=self._groups, current=self._current)

    def line(self, width: int) -> str:
        r"""The line of the current phase at a width.

        Args:
            width: columns

        Returns:
            line

        """
        found = self.estimate()
        texts = fields(self._desc, found, self.files, self.total_files)
        return layout(texts, width, found.percent / 100)

    def _draw(self, force: bool = False) -> None:
        if not self._terminal:
            return
        now = self._clock()
        if not force and now - self._drawn < REDRAW:
            return
        self._drawn = now
        columns = shutil.get_terminal_size((audeer.config.TQDM_COLUMNS, 24)).columns
        # one column less than the terminal, so that a line never wraps
        width = max(40, min(audeer.config.TQDM_COLUMNS, columns - 1))
        self.stream.write("\r" + self.line(width).ljust(width))
        self.stream.flush()

    def _plain(self) -> None:
        r"""A plain line: percentage, bytes, rate, time, files, ETA."""
        self._last = now = self._clock()
        seconds = now - self._started
        found = self.estimate()
        done = sum(min(s.done, s.total) for s in self._stages.values())
        total = sum(s.total for s in self._stages.values())
        rate = done / seconds if seconds > 0 else 0.0
        text = (
            f"{self._desc}: {found.percent:3.0f}% "
            f"{done / 1e6:.1f}/{total / 1e6:.1f} MB, "
            f"{rate / 1e6:.1f} MB/s, {seconds:.0f} s"
        )
        if self.total_files:
            text += f", {self.files}/{self.total_files} files"
        if found.percent < 100:
            left = "?" if found.eta is None else f"{found.eta:.0f}"
            text += f", about {left} s left"
        print(text, file=self.stream, flush=True)

    def _end_phase(self, completed: bool) -> None:
        if not self._stages:
            return
        if completed:
            for stage in self._stages.values():
                stage.done = max(stage.done, stage.total)
            self.files = max(self.files, self.total_files)
        if self._terminal:
            if completed:
                self._draw(force=True)
                if audeer.config.TQDM_LEAVE:
                    self.stream.write("\n")
                else:
                    self.stream.write("\r\x1b[K")
            else:
                self.stream.write("\r\x1b[K")
            self.stream.flush()
        elif (
            self._enabled and completed and any(s.total for s in self._stages.values())
        ):
            self._plain()
        self._stages = {}
