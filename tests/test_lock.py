"""One publisher per version, and a check before the commit (issue 14)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import audb
import audeer
import audformat
import pytest

import audb_publish
from audb_publish import cli
from audb_publish import plan as plan_module
from audb_publish.commit import RepositoryChangedError
from audb_publish.commit import VersionLock
from audb_publish.commit import VersionLockedError
from audb_publish.commit.lock import Holder
from audb_publish.remote import Remote

from helpers import Injected
from helpers import assert_same_repository
from helpers import count_puts
from helpers import fail_put
from helpers import headers
from helpers import only_repository
from helpers import publish
from helpers import repository_files
from helpers import write_audio

BACKENDS = ["file-system", "s3"]
TRIALS = 10

# A publisher process for the race: for each trial,
# it announces itself, waits for the other, then publishes;
# it prints one JSON line per trial with its error and the files it put.
RACER = """
import json, os, sys, time
import audb
import audb_publish
from audb_publish import remote

root, name, host, backend, barrier, me, trials = sys.argv[1:]
puts = []
put = remote.Remote._put
def counting(self, path, *args):
    puts.append(path)
    return put(self, path, *args)
remote.Remote._put = counting
for trial in range(int(trials)):
    open(os.path.join(barrier, f"{trial}-{me}"), "w").close()
    while len([f for f in os.listdir(barrier) if f.startswith(f"{trial}-")]) < 2:
        time.sleep(0.001)
    repository = audb.Repository(f"{name}-{trial}", host, backend)
    puts.clear()
    try:
        audb_publish.publish(
            os.path.join(root, str(trial)), "1.0.0", repository,
            previous_version=None, num_workers=4, verbose=False,
        )
        error = None
    except Exception as ex:
        error = [type(ex).__name__, str(ex)]
    print(json.dumps({"trial": trial, "error": error, "puts": list(puts)}), flush=True)
"""


def race_db(root: str, seed: int) -> None:
    r"""Database ``race`` with 8 media files whose content depends on ``seed``."""
    db = audformat.Database("race")
    files = [f"audio/{n}.wav" for n in range(8)]
    for n, file in enumerate(files):
        path = os.path.join(root, file)
        write_audio(path, 0.1 + 0.01 * n, 8000, 1, "PCM_16", seed * 100 + n)
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)


def locks(repository: audb.Repository) -> list[str]:
    r"""Lock files in the repository."""
    return [f for f in repository_files(repository) if f.endswith(".lock")]


def environment(repositories, backend: str, tmp_path) -> dict[str, str]:
    r"""Environment of a publisher process: its own cache, S3 credentials."""
    env = dict(os.environ, AUDB_CACHE_ROOT=audeer.mkdir(tmp_path, "cache-sub"))
    if backend == "s3":
        env.update(repositories._request.getfixturevalue("seaweedfs").environ())
    return env


@pytest.mark.parametrize("stale", [False, True])
@pytest.mark.parametrize("backend", BACKENDS)
def test_racing_publishers_never_mix(backend, stale, repositories, tmp_path):
    r"""Two processes publish different content as one version: one wins.

    With ``stale``, both find the lock of a publish that was killed,
    and both take it over at the same moment.

    """
    name = f"race-{backend[:2]}{'-stale' if stale else ''}"
    killed = dataclasses.replace(Holder.here(), pid=_dead_pid())
    for trial in range(TRIALS):  # a repository per trial, on one host
        if backend == "file-system":
            host = str(tmp_path / "host")
            audeer.mkdir(host, f"{name}-{trial}")
        else:
            server = repositories._request.getfixturevalue("seaweedfs")
            host = server.repository(f"{name}-{trial}").host
        if stale:
            repository = audb.Repository(f"{name}-{trial}", host, backend)
            with Remote(repository.create_backend_interface()) as remote:
                assert remote.create("/race/db.lock", "1.0.0", killed.encode())
    roots = []
    for me in range(2):
        race_db(str(tmp_path / f"src{me}"), seed=me)
        for trial in range(TRIALS):
            shutil.copytree(tmp_path / f"src{me}", tmp_path / f"db{me}" / str(trial))
        roots.append(str(tmp_path / f"db{me}"))
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    barrier = audeer.mkdir(tmp_path, "barrier")
    env = environment(repositories, backend, tmp_path)
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), roots[me], name, host, backend, barrier]
            + [str(me), str(TRIALS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for me in range(2)
    ]
    outputs = [racer.communicate(timeout=600) for racer in racers]
    for racer, (_, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err
    results = [[json.loads(line) for line in out.splitlines()] for out, _ in outputs]
    for trial in range(TRIALS):
        mine, theirs = results[0][trial], results[1][trial]
        won = [r["error"] is None for r in (mine, theirs)]
        assert sum(won) == 1, (mine, theirs)
        winner = won.index(True)
        loser = (mine, theirs)[1 - winner]
        kind, message = loser["error"]
        # claimed late: the version was published meanwhile
        assert kind == "VersionLockedError" or "already exists" in message, message
        if kind == "VersionLockedError":
            assert f"on host '{socket.gethostname()}'" in message
        assert loser["puts"] == []
        repository = audb.Repository(f"{name}-{trial}", host, backend)
        result = audb_publish.verify("race", "1.0.0", repository, deep=True)
        assert result.intact, result.summary()
        with only_repository(repository, str(tmp_path / f"load{trial}")):
            deps = audb.dependencies("race", version="1.0.0")
        expected = audeer.md5(os.path.join(roots[winner], str(trial), "audio/0.wav"))
        assert deps.checksum("audio/0.wav") == expected
        assert not locks(repository)


def _dead_pid() -> int:
    r"""ID of a process of this host that ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def kill_while_holding_the_lock(root, repository, env) -> int:
    r"""Start a publish, SIGKILL it once it holds the lock; return its PID."""
    script = os.path.join(root, "..", "killed.py")
    with open(script, "w") as fp:
        fp.write(
            "import sys, time\n"
            "import audb, audb_publish\n"
            "from audb_publish import plan\n"
            "def stuck(self, *args):\n"
            "    time.sleep(600)\n"
            "plan.Plan.add_media = stuck\n"
            "repository = audb.Repository(*sys.argv[2:5])\n"
            "audb_publish.publish(sys.argv[1], '1.0.0', repository, verbose=False,\n"
            "    previous_version=None)\n"
        )
    process = subprocess.Popen(
        [sys.executable, script, root]
        + [repository.name, repository.host, repository.backend],
        env=env,
    )
    deadline = time.monotonic() + 120
    while not locks(repository):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.pid


@pytest.mark.parametrize("backend", BACKENDS)
def test_lock_of_a_killed_publish_is_taken_over(
    backend, repositories, template, tmp_path, caplog
):
    r"""SIGKILL while holding the lock: a plain rerun takes it over and completes."""
    expected = repositories.new(backend)
    root = str(tmp_path / "clean")
    shutil.copytree(template, root)
    publish(root, expected, str(tmp_path / "cache-clean"), previous_version=None)
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    env = environment(repositories, backend, tmp_path)
    pid = kill_while_holding_the_lock(root, repository, env)
    cache = str(tmp_path / "cache")
    with caplog.at_level("WARNING", "audb_publish"):
        publish(root, repository, cache, previous_version=None)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"taking over the lock of equiv 1.0.0 held by process {pid}" in warning
    assert f"on host '{socket.gethostname()}'" in warning
    assert f"process {pid} no longer runs on this host" in warning
    assert_same_repository(expected, repository, tmp_path)
    assert not locks(repository)


@pytest.mark.parametrize("backend", BACKENDS)
def test_break_lock_removes_a_live_lock(
    backend, repositories, template, tmp_path, capsys, caplog
):
    r"""The last resort still works: it removes a lock that is not stale."""
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    elsewhere = dataclasses.replace(Holder.here(), host="elsewhere")
    with Remote(repository.create_backend_interface()) as remote:
        assert remote.create("/equiv/db.lock", "1.0.0", elsewhere.encode())
    with pytest.raises(VersionLockedError) as error:
        publish(root, repository, cache, previous_version=None)
    assert "on host 'elsewhere'" in str(error.value)
    assert "/equiv/1.0.0/db.lock" in str(error.value)
    assert headers(repository) == []
    args = ["publish", root, "1.0.0", "--repository", repository.name]
    args += [repository.host, repository.backend, "--previous-version", "none"]
    with only_repository(repository, cache):
        assert cli.main([*args, "--quiet"]) == 1
    assert "audb-publish unlock" in capsys.readouterr().err
    with caplog.at_level("INFO", "audb_publish"):
        publish(root, repository, cache, previous_version=None, break_lock=True)
    assert "breaking the lock of equiv 1.0.0 held by" in caplog.text
    (report,) = [r.report for r in caplog.records if hasattr(r, "report")]
    assert report.lock == [
        f"broken the lock of {elsewhere}: break_lock=True",
    ]
    assert not locks(repository)


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_publisher_fails_at_once_and_puts_nothing(
    backend, repositories, template, tmp_path, monkeypatch
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    with Remote(repository.create_backend_interface()) as remote:
        with VersionLock(remote, "equiv", "1.0.0"):
            before = repository_files(repository)
            assert before == ["/equiv/1.0.0/db.lock"]
            puts = count_puts(monkeypatch)
            with pytest.raises(VersionLockedError, match="is being published by"):
                publish(root, repository, str(tmp_path / "cache"))
            assert puts == []
            assert repository_files(repository) == before
        assert repository_files(repository) == []


def test_the_lock_is_invisible_to_stock_audb(repositories, template, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    publish(root, repository, cache)
    with Remote(repository.create_backend_interface()) as remote:
        # a publish of 1.1.0 in progress, and a lock left in 1.0.0
        with VersionLock(remote, "equiv", "1.1.0"):
            remote.create("/equiv/db.lock", "1.0.0", Holder.here().encode())
            assert "/equiv/1.1.0/db.lock" in repository_files(repository)
            with only_repository(repository, cache):
                assert audb.versions("equiv") == ["1.0.0"]
                available = audb.available(only_latest=False)
                assert available["version"].tolist() == ["1.0.0"]
                deps = audb.dependencies("equiv", version="1.0.0")
                assert len(deps) > 0
                db = audb.load("equiv", version="1.0.0", verbose=False, num_workers=1)
                assert 0 < len(db.files) <= len(deps.media)
            with pytest.raises(RuntimeError, match="already exists"):
                # a claim of a version that was published meanwhile
                VersionLock(remote, "equiv", "1.0.0", break_lock=True).claim()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_lock_is_gone_after_a_failed_publish(
    backend, repositories, template, tmp_path, monkeypatch
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    fail_put(monkeypatch, 2)
    with pytest.raises(Injected):
        publish(root, repository, str(tmp_path / "cache"))
    assert repository_files(repository)  # something was put
    assert not locks(repository)
    assert headers(repository) == []


def overwrite_before_commit(monkeypatch, repository, path: str, data: bytes):
    r"""Let another writer replace ``path`` after the puts, before the commit."""
    apply = plan_module.Plan.apply

    def apply_then_overwrite(self, deps):
        apply(self, deps)
        with Remote(repository.create_backend_interface()) as remote:
            local = os.path.join(audeer.mkdir(self.ctx.db_root, ".other"), "file")
            with open(local, "wb") as fp:
                fp.write(data)
            remote.interface.backend.put_file(local, path)
            shutil.rmtree(os.path.dirname(local))

    monkeypatch.setattr(plan_module.Plan, "apply", apply_then_overwrite)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_file_changed_before_the_commit_is_found(
    backend,
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    monkeypatch,
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    path = [f for f in repository_files(clean) if "/media/" in f][0]
    overwrite_before_commit(monkeypatch, repository, path, b"not the archive")
    with pytest.raises(RepositoryChangedError, match=f"before the commit: {path}"):
        publish(root, repository, cache)
    assert headers(repository) == []
    monkeypatch.undo()
    publish(root, repository, cache)
    assert_same_repository(clean, repository, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_header_is_put_only_if_none_is_there(
    backend, repositories, template, tmp_path, monkeypatch
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    header = "/equiv/1.0.0/db.yaml"
    overwrite_before_commit(monkeypatch, repository, header, b"their header")
    with pytest.raises(RuntimeError, match="A version '1.0.0' already exists"):
        publish(root, repository, str(tmp_path / "cache"))
    backend_ = repository.create_backend_interface().backend
    with backend_:
        local = str(tmp_path / "header")
        backend_.get_file(header, local)
    with open(local, "rb") as fp:
        assert fp.read() == b"their header"
    # the dependency table was not put either
    assert "/equiv/1.0.0/db.parquet" not in repository_files(repository)


def test_multipart_objects_are_checked_by_their_checksum(repositories, tmp_path):
    r"""On S3 an object uploaded in parts has an ETag that is no MD5."""
    repository = repositories.new("s3")
    big = tmp_path / "big"
    big.write_bytes(os.urandom(6 << 20))  # more than minio's 5 MiB part
    with Remote(repository.create_backend_interface()) as remote:
        remote.put_file(str(big), "/db/media/big.zip", "1.0.0")
        remote.put_file(str(big), "/db/media/same.zip", "1.0.0")
        listed = remote.store.list("/db/media/1.0.0/")
        assert "-" in listed["/db/media/1.0.0/big.zip"][1]
        assert remote.changed() == []
        other = tmp_path / "other"
        other.write_bytes(os.urandom(6 << 20))
        remote.backend.put_file(str(other), "/db/media/1.0.0/big.zip")
        assert remote.changed() == ["/db/media/1.0.0/big.zip"]
        remote.backend.remove_file("/db/media/1.0.0/same.zip")
        assert remote.changed() == [
            "/db/media/1.0.0/big.zip",
            "/db/media/1.0.0/same.zip",
        ]
