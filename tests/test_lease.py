"""A lock that never strands a rerun: leases, takeover, wait, unlock (issue 20)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import audb
import audbackend
import audeer
import pytest

import audb_publish
from audb_publish import cli
from audb_publish import owners
from audb_publish import plan as plan_module
from audb_publish import remote as remote_module
from audb_publish.commit import VersionLock
from audb_publish.commit import VersionLockedError
from audb_publish.commit import VersionLockLostError
from audb_publish.commit.lock import Holder
from audb_publish.commit.lock import read_holder
from audb_publish.relay import Relay

from helpers import ARCHIVES
from helpers import Injected
from helpers import assert_same_repository
from helpers import fail_put
from helpers import headers
from helpers import only_repository
from helpers import publish
from helpers import repository_files

BACKENDS = ["file-system", "s3"]
LOCK = "/equiv/1.0.0/db.lock"


@pytest.fixture
def temp(tmp_path) -> str:
    r"""A system temporary folder of the test's own, for this process."""
    folder = audeer.mkdir(tmp_path, "system-tmp")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(tempfile, "tempdir", folder)
        yield folder


def ours(folder: str) -> list[str]:
    r"""Temporary folders of publishes in ``folder``."""
    return sorted(n for n in os.listdir(folder) if owners.TEMP_PREFIX in n)


def partials(repository: audb.Repository) -> list[str]:
    r"""Partial files anywhere in a file-system repository."""
    root = os.path.join(repository.host, repository.name)
    return [
        f
        for f in audeer.list_file_names(root, recursive=True, hidden=True)
        if f.endswith(".partial")
    ]


def locks(repository: audb.Repository) -> list[str]:
    return [f for f in repository_files(repository) if f.endswith(".lock")]


def lock_of(repository: audb.Repository) -> Holder | None:
    with remote_module.Remote(repository.create_backend_interface()) as remote:
        found = read_holder(remote, "equiv", "1.0.0")
    return None if found is None else found[0]


def plant(repository: audb.Repository, holder: Holder) -> None:
    r"""Put a lock of ``holder`` into the repository."""
    with remote_module.Remote(repository.create_backend_interface()) as remote:
        assert remote.create("/equiv/db.lock", "1.0.0", holder.encode())


def dead_pid() -> int:
    r"""ID of a process of this host that ended."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def environment(repositories, backend: str, tmp_path, temp: str) -> dict[str, str]:
    r"""Environment of a publisher process: cache, temp folder, S3 credentials."""
    env = dict(
        os.environ,
        AUDB_CACHE_ROOT=audeer.mkdir(tmp_path, "cache-sub"),
        TMPDIR=temp,
    )
    if backend == "s3":
        env.update(repositories._request.getfixturevalue("seaweedfs").environ())
    return env


# ------------------------------------------------------------ unit


def test_holder_reads_locks_of_the_previous_format():
    old = b'{"host": "h", "pid": 1, "user": "u", "started": "s", "token": "t"}'
    holder = Holder.parse(old)
    assert (holder.host, holder.token, holder.lease) == ("h", "t", 60.0)
    assert holder.process_started is None
    assert Holder.parse(b"[1, 2]") is None


def test_a_reused_pid_does_not_keep_a_lock_alive(repositories):
    r"""The PID runs, but its process started after the lock: stale."""
    repository = repositories.new("file-system")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.1)
        an_hour_ago = Holder.here()
        an_hour_ago = dataclasses.replace(
            an_hour_ago,
            pid=sleeper.pid,
            started="2000-01-01T00:00:00+00:00",
            process_started=None,
        )
        assert "started after" in an_hour_ago.gone()
        recorded = dataclasses.replace(
            Holder.here(),
            pid=sleeper.pid,
            process_started=owners.process_start(sleeper.pid) - 100,
        )
        assert "now belongs to another process" in recorded.gone()
        plant(repository, recorded)
        with remote_module.Remote(repository.create_backend_interface()) as remote:
            lock = VersionLock(remote, "equiv", "1.0.0")
            with lock:
                assert lock.events[0].kind == "taken over"
                assert "belongs to another process" in lock.events[0].reason
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_live_pid_of_a_process_older_than_the_lock_is_live(backend, repositories):
    r"""A process of this host that started before the lock may hold it."""
    repository = repositories.new(backend)
    parent = dataclasses.replace(Holder.here(), pid=os.getppid(), process_started=None)
    assert parent.gone() is None
    plant(repository, parent)
    with remote_module.Remote(repository.create_backend_interface()) as remote:
        with pytest.raises(VersionLockedError, match=f"process {os.getppid()} of"):
            VersionLock(remote, "equiv", "1.0.0").claim()
    assert lock_of(repository) == parent


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_holder_renews_and_notices_a_takeover(backend, repositories):
    repository = repositories.new(backend)
    with remote_module.Remote(repository.create_backend_interface()) as remote:
        lock = VersionLock(remote, "equiv", "1.0.0", lease=1.5)
        lock.claim()
        try:
            ages = []
            for _ in range(6):  # 3 s, two leases: alive only if renewed
                time.sleep(0.5)
                ages.append(remote.read_entry("/equiv/db.lock", "1.0.0").age)
            assert max(ages) <= 1.5 + 1  # S3 tells the time in seconds
            lock.check()
            # someone else takes the lock, between two renewals
            other = dataclasses.replace(Holder.here(), host="elsewhere")
            taken = False
            while not taken:
                entry = remote.read_entry("/equiv/db.lock", "1.0.0")
                data = other.encode()
                taken = remote.replace_if("/equiv/db.lock", "1.0.0", data, entry.tag)
            deadline = time.monotonic() + 5
            while lock._lost is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "on host 'elsewhere'" in lock._lost  # found by a renewal
            with pytest.raises(VersionLockLostError, match="Nothing was committed"):
                lock.check()
        finally:
            lock.release()
        assert lock_of(repository) == other  # not removed: not ours


# ------------------------------------------------------------ another host


class OtherHost:
    r"""A publisher on another host that holds the lock and renews it."""

    def __init__(self, repository: audb.Repository, lease: float = 1.5):
        self.holder = dataclasses.replace(Holder.here(lease), host="elsewhere")
        self.remote = remote_module.Remote(repository.create_backend_interface())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew)

    def __enter__(self) -> OtherHost:
        self.remote.__enter__()
        assert self.remote.create("/equiv/db.lock", "1.0.0", self.holder.encode())
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join()
        self.remote.__exit__(*exc_info)

    def _renew(self) -> None:
        while not self.stop.wait(self.holder.lease / 4):
            entry = self.remote.read_entry("/equiv/db.lock", "1.0.0")
            data = self.holder.renew().encode()
            self.remote.replace_if("/equiv/db.lock", "1.0.0", data, entry.tag)

    def finish(self, *, after: float, publish_header: bool = False) -> None:
        r"""Stop renewing after some seconds and remove the lock."""

        def finish():
            time.sleep(after)
            self.stop.set()
            if publish_header:
                self.remote.create("/equiv/db.yaml", "1.0.0", b"name: equiv\n")
            entry = self.remote.read_entry("/equiv/db.lock", "1.0.0")
            self.remote.remove_if("/equiv/db.lock", "1.0.0", entry.tag)

        threading.Thread(target=finish).start()

    def vanish(self, *, after: float) -> None:
        r"""Stop renewing after some seconds, leaving the lock: the host is gone."""
        threading.Timer(after, self.stop.set).start()


def reports(caplog) -> list:
    return [r.report for r in caplog.records if hasattr(r, "report")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_live_holder_elsewhere_fails_the_second_publisher_at_once(
    backend, repositories, template, tmp_path, capsys
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    with OtherHost(repository):
        time.sleep(1)
        with pytest.raises(VersionLockedError) as error:
            publish(root, repository, cache)
        message = str(error.value)
        assert "on host 'elsewhere'" in message and LOCK in message
        assert "lock_timeout" in message and "audb-publish unlock" in message
        assert repository_files(repository) == [LOCK]
        args = ["publish", root, "1.0.0", "--quiet", "--repository"]
        args += [repository.name, repository.host, repository.backend]
        with only_repository(repository, cache):
            assert cli.main(args) == 1
        assert "--lock-timeout" in capsys.readouterr().err


@pytest.mark.parametrize("backend", BACKENDS)
def test_waiting_for_a_holder_elsewhere_that_finishes(
    backend,
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    caplog,
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    with OtherHost(repository) as other, caplog.at_level("INFO", "audb_publish"):
        other.finish(after=1.5)
        publish(root, repository, str(tmp_path / "cache"), lock_timeout=30)
    (report,) = reports(caplog)
    assert len(report.lock) == 1
    assert report.lock[0].startswith("waited") and "'elsewhere'" in report.lock[0]
    assert "lock: waited" in report.summary()
    assert_same_repository(clean, repository, tmp_path)
    assert not locks(repository)


@pytest.mark.parametrize("backend", BACKENDS)
def test_waiting_for_a_holder_elsewhere_that_publishes_the_version(
    backend, repositories, template, tmp_path
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    with OtherHost(repository) as other:
        other.finish(after=1, publish_header=True)
        with pytest.raises(RuntimeError, match="A version '1.0.0' already exists"):
            publish(root, repository, str(tmp_path / "cache"), lock_timeout=30)
    assert repository_files(repository) == ["/equiv/1.0.0/db.yaml"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lock_whose_lease_expired_is_taken_over(
    backend,
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    caplog,
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    with OtherHost(repository) as other, caplog.at_level("INFO", "audb_publish"):
        other.vanish(after=0.5)
        publish(root, repository, str(tmp_path / "cache"), lock_timeout=30)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "taking over the lock" in warnings[0] and "'elsewhere'" in warnings[0]
    assert "its lease of 1.5 s expired" in warnings[0]
    (report,) = reports(caplog)
    assert any(event.startswith("taken over") for event in report.lock)
    assert_same_repository(clean, repository, tmp_path)
    assert not locks(repository)


# ------------------------------------------------------------ broken lock


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lock_broken_while_publishing_commits_nothing(
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
    other = dataclasses.replace(Holder.here(), host="elsewhere")
    apply = plan_module.Plan.apply

    def apply_then_break(self, deps):
        apply(self, deps)
        with remote_module.Remote(repository.create_backend_interface()) as remote:
            entry = remote.read_entry("/equiv/db.lock", "1.0.0")
            remote.replace_if("/equiv/db.lock", "1.0.0", other.encode(), entry.tag)

    monkeypatch.setattr(plan_module.Plan, "apply", apply_then_break)
    with pytest.raises(VersionLockLostError) as error:
        publish(root, repository, cache)
    assert "is now held by process" in str(error.value)
    assert "on host 'elsewhere'" in str(error.value)
    assert "Nothing was committed" in str(error.value)
    assert headers(repository) == []
    assert "/equiv/1.0.0/db.parquet" not in repository_files(repository)
    assert not os.path.exists(os.path.join(root, "db.parquet"))
    assert lock_of(repository) == other  # theirs stays
    monkeypatch.undo()
    assert audb_publish.unlock("equiv", "1.0.0", repository, token=other.token)
    publish(root, repository, cache)
    assert_same_repository(clean, repository, tmp_path)


# ------------------------------------------------------------ unlock


@pytest.mark.parametrize("backend", BACKENDS)
def test_unlock_removes_only_the_lock_it_names(backend, repositories, capsys):
    repository = repositories.new(backend)
    holder = dataclasses.replace(Holder.here(), host="elsewhere")
    plant(repository, holder)
    args = ["unlock", "equiv", "1.0.0", "--repository"]
    args += [repository.name, repository.host, repository.backend]
    assert cli.main([*args, "--token", "not-the-token"]) == 1
    err = capsys.readouterr().err
    assert f"has the token '{holder.token}', not 'not-the-token'" in err
    assert "Nothing was removed" in err
    assert lock_of(repository) == holder
    with pytest.raises(VersionLockedError, match="Nothing was removed"):
        audb_publish.unlock("equiv", "1.0.0", repository, token="x")
    assert cli.main([*args, "--token", holder.token]) == 0
    out = capsys.readouterr().out
    assert "removed the lock of equiv 1.0.0 held by" in out
    assert "on host 'elsewhere'" in out and holder.token in out
    assert locks(repository) == []
    assert cli.main(args) == 0
    assert "no lock" in capsys.readouterr().out


def test_unlock_does_not_remove_a_lock_that_changed(repositories, monkeypatch):
    repository = repositories.new("file-system")
    plant(repository, Holder.here())
    read = remote_module.Remote.read_entry

    def read_then_change(self, path, version):
        entry = read(self, path, version)
        other = dataclasses.replace(Holder.here(), host="elsewhere").encode()
        assert self.replace_if(path, version, other, entry.tag)
        return entry

    monkeypatch.setattr(remote_module.Remote, "read_entry", read_then_change)
    with pytest.raises(VersionLockedError, match="changed while it was removed"):
        audb_publish.unlock("equiv", "1.0.0", repository)
    monkeypatch.undo()
    assert lock_of(repository).host == "elsewhere"


# ------------------------------------------------------------ faults


def down_after(monkeypatch, k: int) -> None:
    r"""The repository goes down for good at the ``k``-th put."""
    put = remote_module.Remote._put
    calls = []
    lock = threading.Lock()

    def gone(*args, **kwargs):
        raise audbackend.BackendError(ConnectionRefusedError("the repository is down"))

    def put_until_down(self, *args):
        with lock:
            calls.append(args[0])
            n = len(calls)
        if n >= k:
            for name in ("read_entry", "replace_if", "remove_if", "exists", "create"):
                monkeypatch.setattr(remote_module.Remote, name, gone)
            gone()
        return put(self, *args)

    monkeypatch.setattr(remote_module.Remote, "_put", put_until_down)


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("k", [1, 5, -2, -1])
def test_file_system_down_at_put_k_and_a_rerun_in_the_same_process(
    k,
    pipeline,
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    temp,
    monkeypatch,
    caplog,
):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    k = k if k > 0 else len(repository_files(clean)) + 1 + k
    down_after(monkeypatch, k)
    with pytest.raises(audbackend.BackendError) as error:
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    (note,) = error.value.__notes__
    assert "could not be removed" in note
    assert "takes it over once it is stale" in note
    assert "the repository is down" in note
    monkeypatch.undo()
    assert headers(repository) == []
    assert lock_of(repository).pid == os.getpid()
    with caplog.at_level("WARNING", "audb_publish"):
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    assert "which no longer publishes it" in caplog.text
    assert_same_repository(clean, repository, tmp_path)
    assert locks(repository) == [] and partials(repository) == []
    assert ours(temp) == []


@pytest.fixture(scope="module")
def relay_puts(seaweedfs, template, tmp_path_factory):
    r"""PUT requests of a clean publish of the template through a relay."""
    tmp = tmp_path_factory.mktemp("relay-count")
    root = str(tmp / "db")
    shutil.copytree(template, root)
    with Relay(seaweedfs.host) as relay:
        repository = seaweedfs.repository("relay-count", host=relay.host)
        publish(root, repository, str(tmp / "cache"))
        return relay.requests["PUT"]


@pytest.mark.parametrize("k, pipeline", [(2, False), (9, True), (-1, True), (0, False)])
def test_s3_down_at_put_k_and_a_rerun_in_the_same_process(
    k,
    pipeline,
    relay_puts,
    seaweedfs,
    clean,  # noqa: F811 (the fixture)
    template,
    tmp_path,
    temp,
):
    r"""A black box: the server behind a relay goes down for good at PUT k.

    ``k`` counts from the end if not positive: 0 is the header, -1 the dependency table.

    """
    k = k if k > 0 else relay_puts + k
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    with Relay(seaweedfs.host) as relay:
        repository = seaweedfs.repository(f"down-{k}-{int(pipeline)}", host=relay.host)
        relay.down_at("PUT", k)
        with pytest.raises(audbackend.BackendError) as error:
            publish(root, repository, cache, num_workers=3, pipeline=pipeline)
        assert "could not be removed" in error.value.__notes__[0]
        assert relay.down
        relay.restore()
        assert headers(repository) == []
        assert lock_of(repository).pid == os.getpid()
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
        assert_same_repository(clean, repository, tmp_path)
        assert locks(repository) == []
    assert ours(temp) == []


RUN = """
import sys
import audb
import audb_publish
from audb_publish import relay as relay_module

root, name, host, lease, archives = sys.argv[1:6]
audb_publish.commit.VersionLock.LEASE = float(lease)
audb.config.REPOSITORIES = []
repository = audb.Repository(name, host, "minio")
try:
    audb_publish.publish(root, "1.0.0", repository, verbose=False, num_workers=2,
        archives=eval(archives), previous_version=None, lock_timeout=30)
except Exception as error:
    print(type(error).__name__, error)
    sys.exit(1)
"""


@pytest.mark.parametrize("first_exits", [True, False])
def test_s3_down_and_a_rerun_from_a_new_process(
    first_exits,
    relay_puts,
    repositories,
    seaweedfs,
    clean,  # noqa: F811 (the fixture)
    template,
    tmp_path,
    temp,
):
    r"""The rerun is another process on the same host.

    If the failed publisher ended, its lock is taken over at once;
    if it still runs, once its lease expired (2 s here).

    """
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    script = tmp_path / "run.py"
    script.write_text(RUN)
    with Relay(seaweedfs.host) as relay:
        name = f"new-process-{int(first_exits)}"
        repository = seaweedfs.repository(name, host=relay.host)
        env = environment(repositories, "s3", tmp_path, temp)
        args = [sys.executable, str(script), root, name, relay.host, "2"]
        args.append(repr(ARCHIVES))
        relay.down_at("PUT", 9)
        if first_exits:
            first = subprocess.run(args, env=env, capture_output=True, text=True)
            assert first.returncode == 1 and "BackendError" in first.stdout
            assert "could not be removed" in first.stderr  # logged
        else:
            with pytest.raises(audbackend.BackendError), _lease(2):
                publish(root, repository, str(tmp_path / "cache"), num_workers=2)
        relay.restore()
        assert lock_of(repository) is not None
        rerun = subprocess.run(args, env=env, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        expected = "no longer runs" if first_exits else "its lease of 2 s expired"
        assert "taking over the lock" in rerun.stderr and expected in rerun.stderr
        assert_same_repository(clean, repository, tmp_path)
        assert locks(repository) == []
    assert ours(temp) == []


@contextlib.contextmanager
def _lease(seconds: float):
    before = VersionLock.LEASE
    VersionLock.LEASE = seconds
    try:
        yield
    finally:
        VersionLock.LEASE = before


KILLED = """
import os, sys, time
import audb, audb_publish
from audb_publish import zipwriter

write_zip = zipwriter.write_zip
def stuck(dst, *args, **kwargs):
    with open(dst, "wb") as fp:
        fp.write(b"PK half an archive")
    open(sys.argv[5], "w").close()
    time.sleep(600)
zipwriter.write_zip = stuck
audb.config.REPOSITORIES = []
repository = audb.Repository(*sys.argv[2:5])
audb_publish.publish(sys.argv[1], "1.0.0", repository, verbose=False,
    previous_version=None, archives=eval(sys.argv[6]))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_while_writing_an_archive_and_a_rerun(
    backend, repositories, template, tmp_path, temp, caplog
):
    r"""SIGKILL while an archive is half written; a plain rerun completes.

    The half-written archive is a partial file in a file-system repository,
    and a file in the temporary folder of the killed process before an upload.

    """
    expected = repositories.new(backend)
    root = str(tmp_path / "clean")
    shutil.copytree(template, root)
    publish(root, expected, str(tmp_path / "cache-clean"))
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    stuck = str(tmp_path / "stuck")
    env = environment(repositories, backend, tmp_path, temp)
    process = subprocess.Popen(
        [sys.executable, str(script), root, repository.name, repository.host]
        + [repository.backend, stuck, repr(ARCHIVES)],
        env=env,
    )
    deadline = time.monotonic() + 120
    while not os.path.exists(stuck):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert lock_of(repository).pid == process.pid
    if backend == "file-system":
        (found,) = partials(repository)
        # a partial file of a publish on another host that may still run
        left = os.path.dirname(found)
        other = os.path.join(left, ".x.zip@elsewhere@1-1.partial")
        open(other, "w").close()
    else:
        assert len(ours(temp)) == 1
    cache = str(tmp_path / "cache")
    with caplog.at_level("INFO", "audb_publish"):
        publish(root, repository, cache)
    assert f"process {process.pid} no longer runs on this host" in caplog.text
    assert f"on host '{socket.gethostname()}'" in caplog.text
    assert ours(temp) == []
    if backend == "file-system":
        assert partials(repository) == [other]
        problems = audb_publish.verify("equiv", "1.0.0", repository).problems
        assert [(p.kind, p.detail) for p in problems] == [("extra", "a partial file")]
        os.remove(other)
    assert_same_repository(expected, repository, tmp_path)
    assert audb_publish.verify("equiv", "1.0.0", repository, deep=True).intact


def test_interrupted_on_the_process_pool_leaves_no_partial_file(
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    temp,
    monkeypatch,
):
    r"""Ctrl-C while worker processes write archives, then a rerun."""
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    record = remote_module.Remote.record

    def interrupted(self, transfer):
        raise KeyboardInterrupt

    monkeypatch.setattr(remote_module.Remote, "record", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish(root, repository, cache, scheduler="processes", num_workers=2)
    monkeypatch.setattr(remote_module.Remote, "record", record)
    assert headers(repository) == [] and locks(repository) == []
    publish(root, repository, cache, scheduler="processes", num_workers=2)
    assert partials(repository) == []
    assert_same_repository(clean, repository, tmp_path)
    assert ours(temp) == []


def test_verify_reports_files_the_table_does_not_name(repositories, template, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    publish(root, repository, str(tmp_path / "cache"))
    media = os.path.join(repository.host, repository.name, "equiv", "media", "1.0.0")
    for name in (".a.zip@box@1-2.partial", "stray.zip"):
        with open(os.path.join(media, name), "w") as fp:
            fp.write("x")
    plant(repository, Holder.here())
    result = audb_publish.verify("equiv", "1.0.0", repository)
    assert not result.intact
    assert sorted((p.kind, p.path, p.detail) for p in result.problems) == [
        ("extra", LOCK, "a lock of a publish"),
        (
            "extra",
            "/equiv/media/1.0.0/.a.zip@box@1-2.partial",
            "a partial file",
        ),
        ("extra", "/equiv/media/1.0.0/stray.zip", "not in the dependency table"),
    ]


def test_no_empty_version_folder_after_a_failure(
    repositories, template, tmp_path, monkeypatch
):
    r"""A failed publish whose lock was removed leaves no empty version folder."""

    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    fail_put(monkeypatch, 1)
    with pytest.raises(Injected):
        publish(root, repository, str(tmp_path / "cache"))
    assert not os.path.exists(
        os.path.join(repository.host, repository.name, "equiv", "1.0.0")
    )


def test_verify_accepts_the_empty_archive_audb_puts(repositories, template, tmp_path):
    r"""audb puts an empty archive for one whose files were all removed."""
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    publish(root, repository, str(tmp_path / "cache"))
    media = os.path.join(repository.host, repository.name, "equiv", "media", "1.0.0")
    import zipfile

    with zipfile.ZipFile(os.path.join(media, "gone.zip"), "w"):
        pass
    assert audb_publish.verify("equiv", "1.0.0", repository).intact
    with zipfile.ZipFile(os.path.join(media, "gone.zip"), "w") as archive:
        archive.writestr("x.wav", b"x")
    problems = audb_publish.verify("equiv", "1.0.0", repository).problems
    assert [(p.kind, p.detail) for p in problems] == [
        ("extra", "not in the dependency table")
    ]
