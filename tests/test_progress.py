"""Progress that tells the truth: rates per stage, files when done, lines that fit."""

from __future__ import annotations

import io
import os
import shutil

import audeer
import pytest

import audb_publish
from audb_publish import progress
from audb_publish.progress import PRIORITY
from audb_publish.progress import Display
from audb_publish.progress import Estimate
from audb_publish.progress import fields
from audb_publish.progress import layout

from helpers import SMALL
from helpers import only_repository
from helpers import small_db


class Clock:
    r"""A clock the test moves."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


TITLE = "Publish 1.0.0 (scan, then put)"


def _texts(eta: float | None = 7.4, rate: float | None = 2.5e6) -> dict[str, str]:
    found = Estimate(43.2, eta, rate, "put", 12_300_000, 46_400_000)
    return fields(TITLE, found, 2000, 2003)


@pytest.mark.parametrize(
    "width, kept",
    [
        (40, ["percent", "eta", "rate", "bytes"]),
        (80, ["percent", "eta", "rate", "bytes", "files"]),
        (120, ["percent", "eta", "rate", "bytes", "files", "title"]),
    ],
)
def test_layout_drops_whole_fields_by_priority(width, kept):
    texts = _texts()
    line = layout(texts, width, 0.432)
    assert len(line) <= width
    for name in PRIORITY:  # a field is there whole, or not at all
        assert (texts[name] in line) == (name in kept), name
    assert ("|" in line) == (width >= 80)  # a bar in the columns left
    assert line.startswith(TITLE if "title" in kept else " 43%")


def test_layout_at_every_width_from_40():
    texts = _texts(eta=3725.0)
    previous = len(PRIORITY)
    for width in range(40, 200):
        line = layout(texts, width, 0.5)
        assert len(line) <= width
        kept = [name for name in PRIORITY if texts[name] in line]
        assert kept == list(PRIORITY[: len(kept)])  # a prefix of the priorities
        assert "ETA 1:02:05" in line
        assert len(kept) >= 3
        previous = len(kept)
    assert previous == len(PRIORITY)
    # narrower than any field but the percentage: the percentage alone
    assert layout(texts, 8, 0.5) == " 43%"


def test_unknown_rate_and_eta_are_shown_as_unknown():
    texts = _texts(eta=None, rate=None)
    assert texts["eta"] == "ETA ?"
    assert texts["rate"] == "? MB/s"


def test_stages_in_groups():
    clock = Clock()
    display = Display(False, "Publish", clock=clock)
    # hashing, then compressing and uploading at the same time
    stages = {"hash": 1000, "compress": 1000, "upload": 1000}
    groups = [["hash"], ["compress", "upload"]]
    display.phase("scan, then put", stages=stages, groups=groups)
    display.start("hash")
    clock.now += 2
    display.update(1000, stage="hash")  # 500 B/s
    display.start("compress")
    display.start("upload")
    clock.now += 1
    display.update(200, stage="compress")  # 200 B/s: 4 s left
    assert display.estimate().eta is None  # no upload finished yet
    clock.now += 1
    display.update(200, stage="compress")
    display.update(100, stage="upload")  # 50 B/s: 18 s left
    found = display.estimate()
    assert found.eta == pytest.approx(18.0)
    assert found.percent == pytest.approx(100 * (2 + 2) / (2 + 20))
    assert display.bytes == 1400  # bytes read: the uploads are not read again


def test_each_stage_learns_its_rate():
    clock = Clock()
    display = Display(False, "Publish", clock=clock)
    # 1000 MB hashed at 500 MB/s, then 1000 MB put at 100 MB/s
    display.phase("scan, then put", stages={"hash": 1000, "put": 1000})
    display.start("hash")
    assert display.estimate().eta is None  # no rate known yet
    clock.now += 1
    display.update(500, stage="hash")
    found = display.estimate()
    # put's rate is unknown: no ETA, and its bytes weigh as the slowest known
    assert found.eta is None
    assert found.percent == pytest.approx(25.0)
    assert found.rate == pytest.approx(500.0)
    clock.now += 1
    display.update(500, stage="hash")
    display.start("put")
    clock.now += 1
    display.update(100, stage="put")
    found = display.estimate()
    # hashing took 2 s, putting 1 of 10 s: 3 of 12 s
    assert found.percent == pytest.approx(25.0)
    assert found.eta == pytest.approx(9.0)
    assert (found.stage, found.rate) == ("put", pytest.approx(100.0))
    # the rate of a finished stage stays what it was
    clock.now += 4
    display.update(400, stage="put")
    found = display.estimate()
    assert found.eta == pytest.approx(5.0)
    assert found.percent == pytest.approx(100 * 7 / 12)
    # fewer bytes to put than thought: the ETA follows
    display.lower_total(750, stage="put")
    assert display.estimate().eta == pytest.approx(2.5)


def test_stages_that_overlap_take_the_longest():
    clock = Clock()
    display = Display(False, "Publish", clock=clock)
    display.phase(
        "scan and put", stages={"hash": 1000, "put": 1000}, groups=[["hash", "put"]]
    )
    display.start("hash")
    display.start("put")
    clock.now += 1
    display.update(500, stage="hash")
    display.update(100, stage="put")
    assert display.estimate().eta == pytest.approx(9.0)


def test_files_count_when_done():
    display = Display(False, "Publish")
    display.phase("scan, then put", stages={"hash": 10, "put": 10}, total_files=3)
    display.update(10, files=3, stage="hash")  # scanned
    display.update(0, files=-2)  # two of them go into a put
    assert display.files == 1
    display.update(10, files=2, stage="put")  # the put finished
    assert display.files == 3


@pytest.mark.parametrize("leave", [True, False])
@pytest.mark.parametrize("columns", [41, 81, 200])
def test_display_on_a_terminal(columns, leave, monkeypatch):
    monkeypatch.setattr(
        shutil, "get_terminal_size", lambda fallback: os.terminal_size((columns, 24))
    )
    monkeypatch.setattr(progress, "REDRAW", 0)
    monkeypatch.setattr(audeer.config, "TQDM_LEAVE", leave)
    clock = Clock()
    stream = Terminal()
    with Display(True, "Publish", stream=stream, clock=clock) as display:
        display.phase("scan", stages={"hash": 100, "put": 100}, total_files=2)
        display.start("hash")
        clock.now += 1
        display.update(60, files=1, stage="hash")
        display.lower_total(80, stage="hash")
        clock.now += 1
        display.update(20, files=1, stage="hash")
    text = stream.getvalue()
    drawn = [line for line in text.replace("\r", "\n").splitlines() if line]
    width = min(columns - 1, audeer.config.TQDM_COLUMNS)
    assert len(drawn) >= 3
    assert all(len(line) <= width for line in drawn)
    if leave:  # the last line stays
        assert text.endswith("\n")
        last = drawn[-1]
    else:  # and is erased
        assert text.endswith("\r\x1b[K")
        last = drawn[-2]
    assert "100%" in last
    if columns > 80:
        assert last.startswith("Publish (scan) 100%")
        assert "2/2 files" in last


def test_display_in_a_log():
    stream = io.StringIO()
    with Display(True, "Publish 1.0.0", stream=stream, interval=3600) as display:
        display.phase("check tables", total_bytes=10, total_files=1)
        display.update(10, files=1)
        display.phase("scan, then put", total_bytes=2_000_000, total_files=3)
        for _ in range(3):
            display.update(500_000, files=1)
        assert display.bytes == 1_500_010
    lines = stream.getvalue().splitlines()
    # no carriage returns, and a line only when a phase ends
    assert "\r" not in stream.getvalue()
    assert len(lines) == 2
    assert lines[0].startswith("Publish 1.0.0 (check tables): 100% 0.0/0.0 MB")
    assert lines[1].startswith("Publish 1.0.0 (scan, then put): 100% 2.0/2.0 MB")
    assert lines[1].endswith("3/3 files")
    clock = Clock()
    stream = io.StringIO()
    with Display(True, "Publish", stream=stream, interval=0, clock=clock) as display:
        display.phase("scan", total_bytes=4, total_files=0)
        display.start()
        clock.now += 1
        display.update(1)
    first = stream.getvalue().splitlines()[0]
    assert first.startswith("Publish (scan):  25% ")
    assert first.endswith(", about 3 s left")


def test_display_disabled_or_failed():
    stream = Terminal()
    with Display(False, "Publish", stream=stream) as display:
        display.phase("scan", total_bytes=4)
        display.update(4)
    assert stream.getvalue() == ""
    stream = io.StringIO()
    with pytest.raises(ZeroDivisionError):
        with Display(True, "Publish", stream=stream) as display:
            display.phase("scan", total_bytes=4)
            1 / 0  # noqa: B018
    assert stream.getvalue() == ""


def _record(monkeypatch) -> list[tuple]:
    r"""After each update: each stage's done and total bytes, files, and total."""
    seen = []
    update = Display.update

    def recorded(self, *args, **kwargs):
        update(self, *args, **kwargs)
        stages = {name: (s.done, s.total) for name, s in self._stages.items()}
        seen.append((self._desc, stages, self.files, self.total_files))

    monkeypatch.setattr(Display, "update", recorded)
    return seen


def _truthful(seen: list[tuple], phase: str) -> list[tuple]:
    updates = [entry for entry in seen if entry[0].endswith(f"({phase})")]
    assert updates
    for _, stages, files, total_files in updates:
        assert all(done <= total for done, total in stages.values()), stages
        assert 0 <= files <= total_files
    return updates


@pytest.mark.parametrize("pipeline", [False, True])
def test_publish_counts_files_when_put(pipeline, repositories, tmp_path, monkeypatch):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    seen = _record(monkeypatch)
    with only_repository(repository, str(tmp_path / "cache")):
        audb_publish.publish(
            root, "1.0.0", repository, pipeline=pipeline, num_workers=2
        )
    phase = "scan and put" if pipeline else "scan, then put"
    updates = _truthful(seen, phase)
    # each media file goes into an archive: none is done when scanned
    stages = updates[-1][1]
    assert set(stages) == {"hash", "compress", "upload"}
    assert all(done > 0 for done, _ in stages.values())
    scanned = [e for e in updates if e[1]["upload"][0] == 0 and e[1]["hash"][0] > 0]
    assert scanned and all(files <= 1 for _, _, files, _ in scanned)
    assert updates[-1][2] == updates[-1][3]  # all done when the last put finished


def test_verify_deep_progress(repositories, tmp_path, monkeypatch):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        audb_publish.publish(root, "1.0.0", repository, verbose=False)
    seen = _record(monkeypatch)
    result = audb_publish.verify(SMALL, "1.0.0", repository, deep=True, num_workers=2)
    assert result.intact
    updates = _truthful(seen, "verify")
    _, stages, files, total_files = updates[-1]
    assert files == total_files > 0
    done, total = stages["read"]
    assert 0 < done <= total
