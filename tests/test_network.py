"""Requests in flight apart from the cores, one pool, retries (issue 22)."""

from __future__ import annotations

import os
import shutil
import threading
import time

import audb
import audformat
import pytest
import urllib3

import audb_publish
from audb_publish import network
from audb_publish import remote as remote_module
from audb_publish import stores
from audb_publish.commit import VersionLock
from audb_publish.commit.lock import Holder
from audb_publish.relay import Relay

from helpers import assert_same_repository
from helpers import only_repository
from helpers import publish
from helpers import repository_files
from helpers import write_audio


def many_files_db(root: str, n: int, seconds: float = 0.05) -> list[str]:
    r"""Database ``net`` with ``n`` short WAV files, each its own archive."""
    files = [f"audio/{i:04d}.wav" for i in range(n)]
    for i, file in enumerate(files):
        write_audio(os.path.join(root, file), seconds, 8000, 1, "PCM_16", i)
    db = audformat.Database("net")
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    return files


def reports(caplog) -> list:
    return [r.report for r in caplog.records if hasattr(r, "report")]


# ------------------------------------------------------------ the pacer


def test_the_pacer_grows_until_a_slow_down_then_shrinks_and_pauses():
    pacer = network.Pacer(floor=2, start=4, cap=16)
    for _ in range(8):
        with pacer.slot():
            pass
    assert pacer.limit == 12  # slow start: one more per upload
    pacer.slow_down(retry_after=0.3)
    assert pacer.limit == pytest.approx(8.4)
    pacer.slow_down()  # the same burst: no second cut
    assert pacer.limit == pytest.approx(8.4)
    start = time.monotonic()
    with pacer.slot():  # paused for Retry-After
        waited = time.monotonic() - start
    assert waited >= 0.25
    before = pacer.limit
    with pacer.slot():
        pass
    assert pacer.limit == pytest.approx(before + 1 / before)  # additive now
    for _ in range(20):
        pacer._shrunk = 0.0
        pacer.slow_down()
    assert pacer.limit == 2  # never below the floor (num_workers)


def test_the_pacer_bounds_requests_in_flight():
    pacer = network.Pacer(floor=1, start=3, cap=3)
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    def request():
        with pacer.slot():
            with lock:
                state["now"] += 1
                state["most"] = max(state["most"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1

    threads = [threading.Thread(target=request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state["most"] == pacer.most == 3


def test_max_requests_fixes_start_and_cap_never_below_num_workers():
    pacer = network.Pacer()
    assert (pacer.limit, pacer.cap) == (network.START, network.CAP)
    pacer.configure(8, 16)
    assert (pacer.limit, pacer.cap) == (16, 16)
    pacer.configure(8, 2)
    assert (pacer.limit, pacer.cap) == (8, 8)
    pacer.configure(1, network.CAP)  # fixed at the cap: not adaptive from 32
    assert (pacer.limit, pacer.cap, pacer.max_requests) == (128, 128, 128)
    pacer.configure(1, None)
    assert (pacer.limit, pacer.cap) == (network.START, network.CAP)
    assert pacer.max_requests is None
    with pytest.raises(ValueError, match="max_requests must be None or a positive"):
        audb_publish.publish("db", "1.0.0", None, max_requests=0)


@pytest.mark.parametrize(
    "status, retried",
    [(500, True), (502, True), (503, True), (504, True), (429, True)]
    + [(400, False), (403, False), (404, False), (412, False)],
)
def test_which_answers_are_retried(status, retried):
    policy = network.retry()
    assert policy.is_retry("PUT", status, has_retry_after=False) == retried


def test_posts_and_passing_faults():
    policy = network.retry()
    # creating or completing a multipart upload is not idempotent
    assert not policy._is_method_retryable("POST")
    assert policy._is_method_retryable("PUT")
    pacer = network.Pacer()
    policy = network.retry(pacer)
    response = urllib3.HTTPResponse(status=503, headers={"Retry-After": "0"})
    policy = policy.increment("PUT", "/x", response=response)
    assert pacer.retries == 1 and pacer.slow_downs == 1
    assert policy.deadline is not None  # counted from the first failure
    policy.deadline = time.monotonic() - 1  # no time left
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        policy.increment("PUT", "/x", error=ConnectionResetError("reset"))


# ------------------------------------------------------------ S3 behind a relay


@pytest.fixture
def net_db(tmp_path) -> str:
    root = str(tmp_path / "db")
    many_files_db(root, 120)
    return root


def publish_net(root, repository, cache, **kwargs):
    with only_repository(repository, cache):
        return audb_publish.publish(
            root,
            "1.0.0",
            repository,
            previous_version=None,
            verbose=False,
            checksum_cache=False,
            **kwargs,
        )


def test_uploads_overlap_with_one_worker_and_connections_last(
    seaweedfs, net_db, tmp_path, caplog
):
    r"""num_workers=1: computing stays sequential while uploads overlap.

    The relay holds every message 20 ms each way.
    Connections are kept alive: a publish opens about as many
    as requests in flight, not one per request.

    """
    with Relay(seaweedfs.host, delay=0.02) as relay:
        repository = seaweedfs.repository("net-one-worker", host=relay.host)
        with caplog.at_level("INFO", "audb_publish"):
            publish_net(net_db, repository, str(tmp_path / "c"), num_workers=1)
        (report,) = reports(caplog)
        assert report.archives_put == 120
        assert report.requests_in_flight > 8  # uploads overlapped
        assert report.retries == 0
        requests = sum(relay.requests.values())
        assert relay.requests["PUT"] <= 120 + 4  # lock, table, deps, header
        assert requests <= 1.25 * 120
        assert relay.connections <= report.requests_in_flight + 12
        assert audb_publish.verify("net", "1.0.0", repository, deep=True).intact


def test_max_requests_bounds_uploads_and_connections(
    seaweedfs, net_db, tmp_path, caplog
):
    with Relay(seaweedfs.host, delay=0.01) as relay:
        repository = seaweedfs.repository("net-max-requests", host=relay.host)
        with caplog.at_level("INFO", "audb_publish"):
            publish_net(
                net_db, repository, str(tmp_path / "c"), num_workers=2, max_requests=4
            )
        (report,) = reports(caplog)
        assert 1 <= report.requests_in_flight <= 4
        # each client of validation opens one or two; the publish 4, plus a few
        assert relay.connections <= 4 + 12


def test_an_update_makes_requests_only_for_what_changed(seaweedfs, net_db, tmp_path):
    with Relay(seaweedfs.host) as relay:
        repository = seaweedfs.repository("net-update", host=relay.host)
        cache = str(tmp_path / "c")
        publish_net(net_db, repository, cache)
        files = sorted(os.listdir(os.path.join(net_db, "audio")))
        for i, file in enumerate(files[:2]):  # 2 of 120 changed
            write_audio(
                os.path.join(net_db, "audio", file), 0.05, 8000, 1, "PCM_16", 1000 + i
            )
        before = sum(relay.requests.values())
        with only_repository(repository, cache):
            audb_publish.publish(
                net_db, "1.1.0", repository, verbose=False, num_workers=4
            )
        requests = sum(relay.requests.values()) - before
        assert requests <= 2 + 40  # the changed archives, plus a constant


def test_transient_faults_are_retried_and_counted(
    seaweedfs,
    clean,
    template,
    tmp_path,
    caplog,
):
    r"""20% of requests answered 503 SlowDown, 5% of answers lost."""
    root = str(tmp_path / "db")
    shutil.copytree(template, root)
    with Relay(seaweedfs.host, slow_down=0.2, drop=0.05, seed=3) as relay:
        repository = seaweedfs.repository("net-faults", host=relay.host)
        with caplog.at_level("INFO", "audb_publish"):
            publish(root, repository, str(tmp_path / "cache"), num_workers=4)
        relay.slow_down = relay.drop = 0.0
        assert_same_repository(clean, repository, tmp_path)
        assert not [f for f in repository_files(repository) if f.endswith(".lock")]
    (report,) = reports(caplog)
    assert report.retries > 0


def test_the_limit_shrinks_on_slow_down(seaweedfs, net_db, tmp_path, monkeypatch):
    pacers = []
    of = remote_module.Remote.of

    def remember(cls, repository):
        remote = of(repository)
        pacers.append(remote.pacer)
        return remote

    monkeypatch.setattr(remote_module.Remote, "of", classmethod(remember))
    with Relay(seaweedfs.host, slow_down=0.3, seed=1) as relay:
        repository = seaweedfs.repository("net-slow-down", host=relay.host)
        publish_net(net_db, repository, str(tmp_path / "c"), num_workers=2)
    (pacer,) = [p for p in pacers if p is not None and p.most]
    assert pacer.slow_downs > 0
    assert 2 <= pacer.limit < network.START
    assert relay.requests["PUT"] > 120  # retried


def test_a_retried_conditional_write_finds_its_own(repositories, monkeypatch):
    r"""The answer to a conditional PUT was lost; its retry gets 412."""
    repository = repositories.new("s3")
    with remote_module.Remote.of(repository) as remote:
        data = Holder.here().encode()
        assert remote.create("/net/db.lock", "1.0.0", data)
        assert remote.create("/net/db.lock", "1.0.0", data)  # its own
        assert not remote.create("/net/db.lock", "1.0.0", b"another")
        remote.remove_if(
            "/net/db.lock", "1.0.0", remote.read_entry("/net/db.lock", "1.0.0").tag
        )
        # the lock: a claim whose create answered False, but wrote
        create = remote_module.Remote.create

        def create_lost_answer(self, path, version, data):
            create(self, path, version, data)
            return False

        monkeypatch.setattr(remote_module.Remote, "create", create_lost_answer)
        lock = VersionLock(remote, "net", "1.0.0")
        with lock:
            assert lock.events == []  # nothing taken over: it was its own
            lock.check()


def test_the_bytes_in_flight_are_bounded(repositories, tmp_path, monkeypatch):
    r"""Large archives: the bytes written and not yet uploaded stay in the budget."""
    monkeypatch.setattr(network, "BUDGET", 5 << 20)
    slow = stores.S3Store.upload

    def slow_upload(self, *args):
        time.sleep(0.2)
        return slow(self, *args)

    monkeypatch.setattr(stores.S3Store, "upload", slow_upload)
    root = str(tmp_path / "db")
    files = [f"big/{i}.bin" for i in range(6)]
    for file in files:
        os.makedirs(os.path.dirname(os.path.join(root, file)), exist_ok=True)
        with open(os.path.join(root, file), "wb") as fp:
            fp.write(os.urandom(2 << 20))
    db = audformat.Database("net")
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db.save(root)
    repository = repositories.new("s3")
    uploads = []
    uploads_in_flight = stores.S3Store._uploads_in_flight

    def remember(self):
        found = uploads_in_flight(self)
        if found is not None and found not in uploads:
            uploads.append(found)
        return found

    monkeypatch.setattr(stores.S3Store, "_uploads_in_flight", remember)
    publish_net(root, repository, str(tmp_path / "c"), num_workers=4)
    (found,) = uploads
    assert found.budget == 5 << 20
    assert (2 << 20) <= found.most_bytes <= 5 << 20
    assert audb_publish.verify("net", "1.0.0", repository, deep=True).intact


def test_big_archives_go_up_in_parts(repositories, tmp_path, monkeypatch):
    monkeypatch.setattr(stores, "_MULTIPART", 6 << 20)
    monkeypatch.setattr(stores, "_PART", 5 << 20)
    root = str(tmp_path / "db")
    os.makedirs(os.path.join(root, "big"))
    with open(os.path.join(root, "big", "a.bin"), "wb") as fp:
        fp.write(os.urandom(12 << 20))
    db = audformat.Database("net")
    db["files"] = audformat.Table(audformat.filewise_index(["big/a.bin"]))
    db.save(root)
    repository = repositories.new("s3")
    publish_net(root, repository, str(tmp_path / "c"), num_workers=2)
    with remote_module.Remote.of(repository) as remote:
        listed = remote.store.list("/net/media/1.0.0/")
    (etag,) = [etag for _, etag in listed.values()]
    assert etag.endswith("-3")  # 5 MiB parts of 12 MiB
    assert audb_publish.verify("net", "1.0.0", repository, deep=True).intact
    with only_repository(repository, str(tmp_path / "load")):
        db = audb.load("net", version="1.0.0", verbose=False, full_path=False)
    with (
        open(os.path.join(db.root, "big", "a.bin"), "rb") as fp,
        open(os.path.join(root, "big", "a.bin"), "rb") as original,
    ):
        assert fp.read() == original.read()
