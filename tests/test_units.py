"""Behaviour of single stages that the end-to-end tests do not reach."""

from __future__ import annotations

import os
import shutil
import threading
import time

import audb
import audbackend
import audeer
import audformat
import pytest

import audb_publish
from audb_publish import remote as remote_module
from audb_publish import stores
from audb_publish.patching import _ORIGINAL as upstream_publish
from audb_publish.scheduler import Pending
from audb_publish.scheduler import Scheduler
from audb_publish.threads import Cancelled

from helpers import Injected
from helpers import assert_same_repository
from helpers import headers
from helpers import only_repository
from helpers import repository_files
from helpers import write_audio


def small_db(root: str, files=("a.wav", "b.wav"), attachment: bool = True) -> None:
    for seed, file in enumerate(files):
        write_audio(os.path.join(root, file), 0.1, 16000, 1, "PCM_16", seed)
    db = audformat.Database("unit")
    if files:
        db["files"] = audformat.Table(audformat.filewise_index(list(files)))
    if attachment:
        audeer.touch(audeer.mkdir(root, "docs"), "a.txt")
        db.attachments["docs"] = audformat.Attachment("docs")
    db.save(root)


@pytest.fixture
def repository(repositories, tmp_path):
    repository = repositories.new("file-system")
    with only_repository(repository, str(tmp_path / "cache")):
        yield repository


def publish(root, version, repository, **kwargs):
    kwargs.setdefault("verbose", False)
    return audb_publish.publish(root, version, repository, **kwargs)


def test_header_that_arrived_is_removed(repository, tmp_path, monkeypatch):
    root = str(tmp_path / "db")
    small_db(root)
    original = remote_module.Remote.put_file

    def put_file(self, src, path, version, **kwargs):
        original(self, src, path, version, **kwargs)
        if path.endswith("db.yaml"):
            raise Injected("after the header arrived")

    monkeypatch.setattr(remote_module.Remote, "put_file", put_file)
    with pytest.raises(Injected):
        publish(root, "1.0.0", repository)
    assert headers(repository) == []
    monkeypatch.undo()
    publish(root, "1.0.0", repository)
    assert len(headers(repository)) == 1


def test_update_without_changes(repository, tmp_path):
    r"""Nothing on disk but the header and tables: nothing new is put."""
    root = str(tmp_path / "db")
    small_db(root)
    publish(root, "1.0.0", repository)
    update = str(tmp_path / "update")
    audb.load_to(update, "unit", version="1.0.0", only_metadata=True, verbose=False)
    shutil.copytree(os.path.join(root, "docs"), os.path.join(update, "docs"))
    deps = publish(update, "1.1.0", repository)
    assert set(deps().version) == {"1.0.0"}
    published = repository_files(repository)
    assert [f for f in published if "/1.1.0/" in f] == [
        "/unit/1.1.0/db.parquet",
        "/unit/1.1.0/db.yaml",
    ]
    # the attachment is not on disk: it stays as it is
    update2 = str(tmp_path / "update2")
    audb.load_to(update2, "unit", version="1.1.0", only_metadata=True, verbose=False)
    deps = publish(update2, "1.2.0", repository)
    assert deps.version("docs") == "1.0.0"


def test_database_without_tables(repository, tmp_path):
    root = str(tmp_path / "db")
    small_db(root, files=(), attachment=False)
    deps = publish(root, "1.0.0", repository)
    assert len(deps) == 0
    assert len(headers(repository)) == 1


def test_download_of_missing_members_fails(repository, tmp_path, monkeypatch):
    root = str(tmp_path / "db")
    small_db(root, files=("a.wav", "b.wav", "c.wav"))
    bundle = {"a.wav": "ab", "b.wav": "ab"}
    publish(root, "1.0.0", repository, archives=bundle)
    update = str(tmp_path / "update")
    audb.load_to(update, "unit", version="1.0.0", only_metadata=True, verbose=False)
    db = audformat.Database.load(update)
    db["files"] = audformat.Table(audformat.filewise_index(["b.wav", "c.wav"]))
    db.save(update)

    def get_archive(self, path, dst_root, version):
        audeer.touch(dst_root, "b.wav")
        raise Injected("connection lost")

    monkeypatch.setattr(remote_module.Remote, "get_archive", get_archive)
    with pytest.raises(RuntimeError, match="Failed to download missing media") as error:
        publish(update, "1.1.0", repository)
    assert isinstance(error.value.__cause__, Injected)
    assert not os.path.exists(os.path.join(update, "b.wav"))
    monkeypatch.undo()
    deps = publish(update, "1.1.0", repository)
    assert deps.version("b.wav") == "1.1.0"
    assert os.path.exists(os.path.join(update, "b.wav"))


def test_many_missing_media(repository, tmp_path):
    root = str(tmp_path / "db")
    small_db(root)
    db = audformat.Database.load(root)
    files = [f"missing{i:02d}.wav" for i in range(25)]
    db["more"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    with pytest.raises(
        RuntimeError, match=r"The following 25 files .*'missing19.wav', \.\.\.\]\."
    ):
        publish(root, "1.0.0", repository)


def test_other_backends_use_put_file(repository, tmp_path, monkeypatch):
    r"""A backend that is neither file system nor MinIO gets its put_file()."""
    calls = []
    original = audb.Repository.create_backend_interface

    # the file system as any backend: no store of its own
    monkeypatch.setattr(stores, "KINDS", ())

    def put_file(self, src, dst, *args, **kwargs):
        calls.append(dst)
        return type(self).__mro__[1].put_file(self, src, dst, *args, **kwargs)

    def create_backend_interface(self):
        interface = original(self)
        interface.backend.put_file = put_file.__get__(interface.backend)
        return interface

    monkeypatch.setattr(
        audb.Repository, "create_backend_interface", create_backend_interface
    )
    root = str(tmp_path / "db")
    small_db(root)
    publish(root, "1.0.0", repository)
    assert "/unit/1.0.0/db.yaml" in calls
    assert len(headers(repository)) == 1


def test_scheduler_workers_and_stop():
    with Scheduler(None, verbose=False) as scheduler:
        assert scheduler.num_workers == (os.cpu_count() or 1) * 5
        assert not scheduler.stopped
        scheduler.stop()
        assert scheduler.stopped
        with pytest.raises(Cancelled):
            scheduler.submit(print)
        with pytest.raises(Cancelled):
            scheduler.progress(1)
    with pytest.raises(ValueError, match="at least 1"):
        Scheduler(0, verbose=False)


def test_scheduler_first_error_stops_the_rest():
    started = threading.Event()

    def slow(scheduler):
        started.set()
        while True:
            scheduler.progress(0)

    def fail():
        started.wait(5)
        raise Injected("first")

    with pytest.raises(Injected, match="first"):
        with Scheduler(2, verbose=False) as scheduler:
            futures = [scheduler.submit(fail), scheduler.submit(slow, scheduler)]
            list(scheduler.drain(Pending(futures)))
    assert isinstance(futures[1].exception(), Cancelled)


@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_scheduler_error_of_the_earliest_job_wins(num_workers):
    second_failed = threading.Event()
    ran = []

    def late_failure():
        second_failed.wait(1)
        raise Injected("earliest")

    def early_failure():
        second_failed.set()
        raise Injected("later")

    def never():
        ran.append(True)
        time.sleep(0.05)

    with pytest.raises(Injected, match="earliest"):
        with Scheduler(num_workers, verbose=False) as scheduler:
            pending = Pending()
            pending.add(scheduler.submit(late_failure))
            pending.add(scheduler.submit(early_failure))
            for _ in range(20):
                pending.add(scheduler.submit(never))
            for _ in scheduler.drain(pending):
                pass
    # jobs after the failure were cancelled before they started
    assert len(ran) < 20


def test_progress_is_one_display(repository, tmp_path, capsys):
    root = str(tmp_path / "db")
    small_db(root)
    audb_publish.publish(root, "1.0.0", repository, num_workers=2, verbose=True)
    err = capsys.readouterr().err
    # captured output is no terminal: a plain line per phase
    assert err.splitlines()[0].startswith("Publish 1.0.0 (check tables): 100%")
    assert err.splitlines()[1].startswith("Publish 1.0.0 (scan, then put): 100%")
    assert len(err.splitlines()) == 2
    assert "Put media" not in err and "Scan media" not in err


def test_bad_compression_is_checked_first(tmp_path):
    with pytest.raises(ValueError, match="'compression'"):
        audb_publish.publish(str(tmp_path), "1.0.0", compression=True)
    with pytest.raises(ValueError, match="'compression'"):
        audb_publish.publish(str(tmp_path), "1.0.0", compression=0)


def test_file_system_errors_of_the_repository_are_backend_errors(
    repository, tmp_path, monkeypatch
):
    # a read-only repository, as root cannot make one
    root = str(tmp_path / "db")
    small_db(root)
    replace = os.replace

    def refuse(src, dst):
        if dst.startswith(repository.host):
            raise PermissionError(13, "Permission denied", dst)
        replace(src, dst)

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(audbackend.BackendError) as error:
        publish(root, "1.0.0", repository)
    assert isinstance(error.value.__cause__, PermissionError)
    assert headers(repository) == []
    # an error of a file in db_root is not the backend's
    monkeypatch.setattr(os, "replace", replace)
    remote = remote_module.Remote(repository.create_backend_interface())
    with remote, pytest.raises(FileNotFoundError):
        remote.put_file(os.path.join(root, "missing.wav"), "/unit/x.wav", "1.0.0")


class Concurrency:
    r"""Counts how many threads are inside a block at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self):
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc_info):
        with self._lock:
            self.now -= 1


@pytest.mark.parametrize("num_workers", [1, 3, 16])
def test_computing_never_runs_on_more_threads_than_cores(
    num_workers, repository, tmp_path, monkeypatch
):
    from audb_publish import scan as scan_module
    from audb_publish import zipwriter

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    computing = Concurrency()

    def counted(function):
        def wrapper(*args, **kwargs):
            with computing:
                time.sleep(0.005)  # long enough for jobs to overlap
                return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        scan_module, "scan_media_file", counted(scan_module.scan_media_file)
    )
    monkeypatch.setattr(zipwriter, "write_zip", counted(zipwriter.write_zip))
    root = str(tmp_path / "db")
    small_db(root, files=[f"{i}.wav" for i in range(40)])
    publish(root, "1.0.0", repository, num_workers=num_workers)
    assert computing.most == min(num_workers, 2)


def test_waiting_jobs_run_up_to_num_workers(monkeypatch):
    from audb_publish.threads import waiting

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    computing, uploading = Concurrency(), Concurrency()

    def job():
        with computing:
            time.sleep(0.01)
        with waiting(), uploading:
            time.sleep(0.05)

    with Scheduler(6, verbose=False) as scheduler:
        assert scheduler.cores == 1
        scheduler.ordered([scheduler.submit(job) for _ in range(12)])
    assert computing.most == 1
    assert uploading.most > 1


def test_workers_open_each_repository_once_per_publish(tmp_path):
    from audb_publish import executors

    host = str(tmp_path)
    refs = []
    for n in range(executors.OPENED + 1):
        os.makedirs(os.path.join(host, f"repo{n}"))
        repository = audb.Repository(f"repo{n}", host, "file-system")
        refs.append(executors.RemoteRef.of(repository))
    first = executors.resolve(refs[0])
    assert executors.resolve(refs[0]) is first
    assert executors.resolve(first) is first
    for ref in refs[1:]:
        executors.resolve(ref)
    assert len(executors._opened) == executors.OPENED
    assert refs[0] not in executors._opened  # the oldest is forgotten
    assert executors.resolve(refs[0]) is not first


def test_update_after_remove_media(repositories, tmp_path):
    r"""A file flagged removed by audb.remove_media but still in a table."""
    published = {}
    for side, function in [("upstream", upstream_publish), ("ours", publish)]:
        repository = repositories.new("file-system")
        with only_repository(repository, str(tmp_path / f"cache-{side}")):
            root = str(tmp_path / side)
            small_db(root, files=("a.wav", "b.wav", "c.wav"))
            function(root, "1.0.0", repository, verbose=False)
            audb.remove_media("unit", ["b.wav"], verbose=False)
            update = str(tmp_path / f"{side}-update")
            audb.load_to(update, "unit", version="1.0.0", verbose=False)
            assert not os.path.exists(os.path.join(update, "b.wav"))
            write_audio(os.path.join(update, "a.wav"), 0.2, 16000, 1, "PCM_16", 9)
            function(update, "1.1.0", repository, verbose=False)
        published[side] = repository
    assert_same_repository(published["upstream"], published["ours"], tmp_path)
