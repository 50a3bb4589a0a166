"""Scan and put jobs on a process pool or a Dask cluster (issue 13)."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time

import audformat
import pandas as pd
import psutil
import pytest

import audb_publish
from audb_publish import executors
from audb_publish import plan as plan_module
from audb_publish.testing import dask_cluster

from helpers import assert_same_repository
from helpers import cached_db
from helpers import headers
from helpers import publish
from helpers import publish_cached
from helpers import publish_chain
from helpers import repository_files
from helpers import small_db
from helpers import write_audio

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(seaweedfs):
    r"""A Dask cluster of 2 worker processes with one thread each.

    Its workers start with the environment that points audbackend
    to the SeaweedFS server and its credentials, as workers of a real cluster
    are configured for the repositories they write to.

    """
    with dask_cluster(2) as client:
        yield client


@pytest.fixture(params=["processes", "dask"])
def where(request):
    if request.param == "dask":
        return request.getfixturevalue("cluster")
    return request.param


def _workers() -> set[int]:
    r"""Processes of process pools: children of a fork server."""
    servers = [
        p for p in psutil.Process().children() if "forkserver" in " ".join(p.cmdline())
    ]
    return {child.pid for server in servers for child in server.children()}


@pytest.mark.parametrize("pipeline", [False, True])
def test_same_repository_as_upstream(
    reference,  # noqa: F811 (the fixture)
    pipeline,
    where,
    repositories,
    template,
    tmp_path,  # noqa: F811
):
    backend, expected, expected_deps = reference
    actual = repositories.new(backend)
    deps = publish_chain(
        audb_publish.publish,
        actual,
        template,
        tmp_path,
        num_workers=2,
        pipeline=pipeline,
        scheduler=where,
    )
    for ours, theirs in zip(deps, expected_deps, strict=True):
        pd.testing.assert_frame_equal(ours(), theirs())
    assert_same_repository(expected, actual, tmp_path)


def test_failing_job_raises_its_type_and_leaves_nothing(where, repositories, tmp_path):
    r"""A scan job fails in a worker: the original type reaches the caller."""
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    db = small_db(root)
    write_audio(os.path.join(root, "c.wav"), 0.1, 8000, 1, "NMS_ADPCM_16", 0)
    db["more"] = audformat.Table(audformat.filewise_index(["c.wav"]))
    db.save(root)
    before = _workers()
    with pytest.raises(KeyError):
        publish(root, repository, str(tmp_path / "cache"), scheduler=where)
    assert headers(repository) == []
    assert _workers() - before == set()


def test_keyboard_interrupt_stops_the_processes(
    repositories, template, tmp_path, monkeypatch
):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)

    def interrupted(self, results):
        raise KeyboardInterrupt

    monkeypatch.setattr(plan_module.Plan, "add_media", interrupted)
    before = _workers()
    with pytest.raises(KeyboardInterrupt):
        publish(root, repository, str(tmp_path / "cache"), scheduler="processes")
    deadline = time.monotonic() + 2
    while _workers() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers() - before == set()
    assert headers(repository) == []


def test_killed_process_raises_and_a_rerun_completes(
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    cache = str(tmp_path / "cache")
    killer = _kill_a_worker_soon()
    try:
        publish(root, repository, cache, scheduler="processes")
    except Exception as error:  # the pool is broken: raised, no header
        assert "terminated abruptly" in str(error) or isinstance(error, OSError)
        assert headers(repository) == []
    killer.join()
    publish(root, repository, cache, scheduler="processes")
    assert_same_repository(clean, repository, tmp_path)


def _kill_a_worker_soon() -> threading.Thread:
    def kill():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = _workers()
            if workers:
                os.kill(workers.pop(), signal.SIGKILL)
                return
            time.sleep(0.001)

    thread = threading.Thread(target=kill)
    thread.start()
    return thread


def test_dask_worker_killed_mid_publish(
    clean,  # noqa: F811 (the fixture)
    repositories,
    template,
    tmp_path,
    monkeypatch,
):
    r"""A worker killed once the first scans are back: Dask runs its jobs again."""
    with dask_cluster(2) as client:
        repository = repositories.new("file-system")
        root = str(tmp_path / "db")
        shutil.copytree(template, root)
        cache = str(tmp_path / "cache")
        pids = list(client.run(os.getpid).values())
        add_media = plan_module.Plan.add_media
        killed = []

        def kill_then_add(self, results):
            if not killed:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            return add_media(self, results)

        monkeypatch.setattr(plan_module.Plan, "add_media", kill_then_add)
        try:
            publish(root, repository, cache, scheduler=client, num_workers=2)
        except Exception:  # Dask gave up on the jobs: no header, rerun
            assert headers(repository) == []
            publish(root, repository, cache, scheduler=client)
        assert killed
        assert pids[0] not in client.run(os.getpid).values()
    assert_same_repository(clean, repository, tmp_path)


def hide_path(path: str):
    r"""A worker plugin that makes ``path`` invisible to ``open()``.

    Its class is made here, so that Dask sends it by value:
    the workers need not import this test module.

    """

    class HidePath(distributed.WorkerPlugin):
        def setup(self, worker):
            import builtins

            original = builtins.open

            def hiding_open(file, *args, **kwargs):
                if isinstance(file, str) and file.startswith(path):
                    raise FileNotFoundError(2, "hidden", file)
                return original(file, *args, **kwargs)

            builtins.open = hiding_open

    return HidePath()


def test_worker_that_cannot_see_db_root(repositories, template, tmp_path):
    with dask_cluster(2) as client:
        root = str(tmp_path / "db")
        shutil.copytree(template, root)
        client.register_plugin(hide_path(root), name="hide")
        repository = repositories.new("file-system")
        with pytest.raises(RuntimeError, match="does not see") as error:
            publish(root, repository, str(tmp_path / "cache"), scheduler=client)
    message = str(error.value)
    assert "Dask worker tcp://127.0.0.1:" in message
    assert f"'{root}/db.yaml'" in message
    assert repository_files(repository) == []  # nothing put, the lock removed


def test_bad_scheduler_and_missing_dask(monkeypatch):
    threads = executors.ThreadExecutor(lambda function, *args: function(*args), 2)
    with pytest.raises(ValueError, match="'scheduler' must be"):
        executors.executor("gpu", 2, threads)
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'audb-publish\[dask\]'"):
        executors.executor("tcp://127.0.0.1:1", 2, threads)


def test_update_in_place_with_the_cache_on_processes(
    repositories, tmp_path, monkeypatch
):
    r"""The checksum cache stays in the caller: hits are not sent to workers."""
    from audb_publish import integrity

    monkeypatch.setattr(integrity, "RACY_NS", 50_000_000)  # no need to wait 2 s

    deps = []
    for scheduler in ("threads", "processes"):
        repository = repositories.new("file-system")
        root = str(tmp_path / scheduler)
        cache = str(tmp_path / f"cache-{scheduler}")
        cached_db(root)
        publish_cached(root, "1.0.0", repository, cache)
        time.sleep(0.1)
        write_audio(os.path.join(root, "audio/0.wav"), 0.3, 16000, 1, "PCM_16", 9)
        time.sleep(0.1)
        result, report = publish_cached(
            root, "1.1.0", repository, cache, scheduler=scheduler
        )
        assert report.cached_media == 5
        deps.append(result())
    pd.testing.assert_frame_equal(*deps)
