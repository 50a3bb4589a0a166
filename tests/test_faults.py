"""Failures anywhere: original exception, no header, and a rerun completes."""

from __future__ import annotations

import os
import shutil
import threading
import time

import audb
import audeer
import pytest

from audb_publish import remote as remote_module
from audb_publish import scan as scan_module
from audb_publish import stores
from audb_publish import validate as validate_module

from helpers import Injected
from helpers import assert_same_repository
from helpers import count_puts
from helpers import fail_put
from helpers import headers
from helpers import publish


@pytest.fixture(scope="module")
def number_of_puts(repositories, template, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("count")
    root = str(tmp / "db")
    shutil.copytree(template, root)
    with pytest.MonkeyPatch.context() as monkeypatch:
        calls = count_puts(monkeypatch)
        publish(root, repositories.new("file-system"), str(tmp / "cache"))
    assert calls[-2].endswith("/db.parquet")
    assert calls[-1].endswith("/db.yaml")
    return len(calls)


@pytest.mark.parametrize("pipeline", [False, True])
@pytest.mark.parametrize("k", [1, 5, -3, -2, -1])
def test_put_fails(
    k, pipeline, number_of_puts, clean, repositories, template, tmp_path, monkeypatch
):
    r"""The k-th put fails: first, middle, last archive, dependency table, header."""
    k = k if k > 0 else number_of_puts + 1 + k
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    fail_put(monkeypatch, k)
    with pytest.raises(Injected, match=f"put {k} of"):
        publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    assert headers(repository) == []
    assert not os.path.exists(os.path.join(root, "db.parquet"))
    monkeypatch.undo()
    publish(root, repository, cache, num_workers=3, pipeline=pipeline)
    assert_same_repository(clean, repository, tmp_path)


@pytest.mark.parametrize("pipeline", [False, True])
def test_scan_job_fails_while_another_is_slow(
    pipeline, clean, repositories, template, tmp_path, monkeypatch
):
    original = scan_module.scan_media_file
    started = threading.Event()

    def scan_media_file(root, file, progress):
        if file == "wav/a.wav":
            started.set()
            for _ in range(50):  # slow, but stops when told to
                progress(0)
                time.sleep(0.01)
        if file == "wav/d.wav":
            started.wait(5)
            raise Injected(file)
        return original(root, file, progress)

    monkeypatch.setattr(scan_module, "scan_media_file", scan_media_file)
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    before = threading.active_count()
    with pytest.raises(Injected, match="wav/d.wav") as error:
        publish(root, repository, cache, num_workers=4, pipeline=pipeline)
    assert "scan_media_file" in str(error.traceback[-1])
    assert threading.active_count() == before
    assert headers(repository) == []
    monkeypatch.undo()
    publish(root, repository, cache, num_workers=4, pipeline=pipeline)
    assert_same_repository(clean, repository, tmp_path)


def test_keyboard_interrupt(clean, repositories, template, tmp_path, monkeypatch):
    r"""Ctrl-C in the calling thread stops the workers and publishes nothing."""
    from audb_publish import plan as plan_module

    def add_media(self, results):
        raise KeyboardInterrupt

    monkeypatch.setattr(plan_module.Plan, "add_media", add_media)
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    before = threading.active_count()
    with pytest.raises(KeyboardInterrupt):
        publish(root, repository, cache, num_workers=2, pipeline=True)
    assert threading.active_count() == before
    assert headers(repository) == []
    monkeypatch.undo()
    publish(root, repository, cache, num_workers=2, pipeline=True)
    assert_same_repository(clean, repository, tmp_path)


class MainThreadDependencies(audb.Dependencies):
    r"""Dependency table that fails when used off the thread that made it."""

    def __init__(self):
        object.__setattr__(self, "_owner", threading.get_ident())
        super().__init__()

    def __getattribute__(self, name):
        if threading.get_ident() != object.__getattribute__(self, "_owner"):
            raise AssertionError(f"Dependencies.{name} used by a worker thread")
        return object.__getattribute__(self, name)


@pytest.mark.parametrize("pipeline", [False, True])
def test_workers_never_touch_deps(
    pipeline, clean, repositories, template, tmp_path, monkeypatch
):
    monkeypatch.setattr(validate_module, "Dependencies", MainThreadDependencies)
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    deps = publish(
        root, repository, str(tmp_path / "cache"), num_workers=4, pipeline=pipeline
    )
    assert isinstance(deps, MainThreadDependencies)
    assert_same_repository(clean, repository, tmp_path)
    # the subclass does fail off its thread
    errors = []
    thread = threading.Thread(target=lambda: errors.append(_try(lambda: deps.media)))
    thread.start()
    thread.join()
    assert isinstance(errors[0], AssertionError)


def _try(function):
    try:
        function()
    except Exception as error:
        return error


@pytest.mark.parametrize("num_workers", [1, 2, 3])
def test_archives_on_disk_bounded(
    num_workers, repositories, template, tmp_path, monkeypatch
):
    r"""At most ``num_workers`` archives exist locally or are in flight.

    An archive exists from the start of its writing
    to the end of its upload in :meth:`Remote._put`.

    """
    original = remote_module.Remote._put
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def put(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        try:
            time.sleep(0.01)
            return original(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    monkeypatch.setattr(remote_module.Remote, "_put", put)
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    publish(
        root,
        repositories.new("file-system"),
        str(tmp_path / "cache"),
        num_workers=num_workers,
        pipeline=True,
    )
    assert 1 <= state["max"] <= num_workers
    leftovers = [
        f
        for f in audeer.list_file_names(root, recursive=True, hidden=True)
        if "partial" in f or ".audb-publish" in f
    ]
    assert leftovers == []


def test_rerun_on_s3_puts_only_what_is_missing(
    number_of_puts, clean, repositories, template, tmp_path, monkeypatch
):
    import audbackend

    repository = repositories.new("s3")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    fail_put(monkeypatch, number_of_puts)  # the header
    with pytest.raises(Injected):
        publish(root, repository, cache, num_workers=2)
    monkeypatch.undo()
    uploads = []
    original = audbackend.backend.Minio._put_file

    def put_file(self, src, dst, checksum, verbose):
        uploads.append(dst)
        return original(self, src, dst, checksum, verbose)

    # the header is created only if it is not there
    create = stores.S3Store._create_object

    def create_object(self, data, dst, checksum):
        uploads.append(dst)
        return create(self, data, dst, checksum)

    monkeypatch.setattr(audbackend.backend.Minio, "_put_file", put_file)
    monkeypatch.setattr(stores.S3Store, "_create_object", create_object)
    publish(root, repository, cache, num_workers=2)
    # the lock, then the header
    assert uploads == ["/equiv/1.0.0/db.lock", "/equiv/1.0.0/db.yaml"]
    assert_same_repository(clean, repository, tmp_path)
