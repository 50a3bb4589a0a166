"""Ctrl-C in the command line: one line, exit code 130, a rerun completes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import audb
import audformat
import pytest

from audb_publish.testing import dask_cluster

from helpers import headers
from helpers import write_audio

INTERRUPTED = "interrupted: nothing was committed; publish again to resume"


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> str:
    r"""A database whose publish with zlib on one worker takes a while."""
    root = str(tmp_path_factory.mktemp("interrupt") / "db")
    files = [f"{i:03d}.wav" for i in range(240)]
    for seed, file in enumerate(files):
        write_audio(os.path.join(root, file), 4.0, 16000, 1, "PCM_16", seed)
    db = audformat.Database("interrupted")
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    return root


@pytest.fixture(params=["threads", "processes", "dask"])
def scheduler(request) -> str:
    if request.param != "dask":
        yield request.param
        return
    with dask_cluster(2) as client:
        yield client.scheduler.address


def _cli(db_root: str, host: str, scheduler: str) -> subprocess.Popen:
    r"""Start a publish in its own process group, as a shell starts a job."""
    os.makedirs(os.path.join(host, "data"), exist_ok=True)
    argv = [
        *("publish", db_root, "1.0.0", "--repository", "data", host, "file-system"),
        *("--scheduler", scheduler, "--num-workers", "1", "--compression", "zlib"),
        "--no-checksum-cache",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "audb_publish", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "AUDB_CACHE_ROOT": os.path.join(host, "cache")},
    )


def _wait_for_scan(process: subprocess.Popen) -> list[str]:
    r"""Read error lines until the publish checked its tables."""
    lines = []
    while not lines or "(check tables)" not in lines[-1]:
        line = process.stderr.readline()
        assert line, "".join(lines)
        lines.append(line)
    return lines


def test_ctrl_c_prints_one_line_and_a_rerun_completes(database, scheduler, tmp_path):
    host = str(tmp_path / "host")
    root = str(tmp_path / "db")
    shutil.copytree(database, root)
    process = _cli(root, host, scheduler)
    before = _wait_for_scan(process)
    # Ctrl-C in a terminal: SIGINT to every process of the group
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.splitlines() == [INTERRUPTED], "".join(before) + err
    assert out == ""
    repository = audb.Repository("data", host, "file-system")
    assert headers(repository) == []
    assert not _locks(host)
    rerun = _cli(root, host, scheduler)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert headers(repository) == ["/interrupted/1.0.0/db.yaml"]


def _locks(host: str) -> list[str]:
    return [
        os.path.join(folder, file)
        for folder, _, files in os.walk(host)
        for file in files
        if file == "db.lock"
    ]


SECOND = textwrap.dedent(
    """
    import signal, sys, time
    from audb_publish.cli import exit_on_second_interrupt

    with exit_on_second_interrupt():
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            print("first", flush=True)
            signal.raise_signal(signal.SIGINT)  # while cleaning up
            time.sleep(60)
    print("not reached")
    """
)


def test_a_second_ctrl_c_exits_at_once():
    out = subprocess.run(
        [sys.executable, "-c", SECOND], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 130
    assert out.stdout == "first\n"
    assert out.stderr.startswith("interrupted again: exited at once")
    assert len(out.stderr.splitlines()) == 1
