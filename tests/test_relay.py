"""The HTTP relay: delay, bandwidth limit, counters, faults and its command line.

A small HTTP/1.1 server stands in for S3:
PUT answers 200 with an empty body,
GET /N answers N bytes.
Times are checked only from below:
a delay or a limited link makes a request take at least so long,
which sleeping guarantees whatever the machine's load.
"""

import concurrent.futures
import http.client
import http.server
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

import pytest

from audb_publish import relay as relay_module
from audb_publish.relay import Link
from audb_publish.relay import Relay


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self):  # noqa: N802 - name given by http.server
        length = int(self.headers.get("Content-Length", 0))
        self.server.received.append(len(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):  # noqa: N802
        body = b"x" * int(self.path.strip("/"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def request(connection, method, path="/", body=None):
    connection.request(method, path, body=body)
    response = connection.getresponse()
    return response.status, response.read()


def connect(host):
    address, _, port = host.rpartition(":")
    return http.client.HTTPConnection(address, int(port), timeout=30)


def test_forwards_and_counts(server):
    with Relay(server) as relay:
        first = connect(relay.host)
        assert request(first, "PUT", "/a", b"1234") == (200, b"")
        assert request(first, "GET", "/3") == (200, b"xxx")
        assert request(first, "HEAD") == (200, b"")
        second = connect(relay.host)
        assert request(second, "GET", "/2") == (200, b"xx")
        first.close()
        second.close()
        counters = relay.counters()
    assert counters["requests"] == {"PUT": 1, "GET": 2, "HEAD": 1}
    assert counters["connections"] == 2
    assert counters["bytes_up"] > 4
    assert counters["bytes_down"] > 5
    assert counters["bytes_up"] == relay.bytes_up
    assert counters["bytes_down"] == relay.bytes_down


def test_delay_holds_each_direction(server):
    delay = 0.1
    with Relay(server, delay=delay) as relay:
        connection = connect(relay.host)
        start = time.monotonic()
        assert request(connection, "GET", "/1") == (200, b"x")
        first = time.monotonic() - start
        start = time.monotonic()
        assert request(connection, "PUT", "/a", b"1") == (200, b"")
        second = time.monotonic() - start
        connection.close()
    assert first >= 2 * delay
    assert second >= 2 * delay


def test_rate_limits_both_directions(server):
    rate, size = 2e6, 1_000_000
    with Relay(server, rate=rate) as relay:
        connection = connect(relay.host)
        start = time.monotonic()
        assert request(connection, "PUT", "/big", b"y" * size) == (200, b"")
        up = time.monotonic() - start
        start = time.monotonic()
        status, body = request(connection, "GET", f"/{size}")
        down = time.monotonic() - start
        connection.close()
        assert relay.bytes_up >= size
        assert relay.bytes_down >= size
    assert status == 200 and len(body) == size
    assert up >= size / rate
    assert down >= size / rate


def test_rate_is_shared_by_connections(server):
    rate, size, clients = 2e6, 250_000, 4

    def put(_):
        connection = connect(relay.host)
        result = request(connection, "PUT", "/part", b"z" * size)
        connection.close()
        return result

    with Relay(server, rate=rate) as relay:
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(put, range(clients)))
        elapsed = time.monotonic() - start
        assert relay.connections == clients
    assert results == [(200, b"")] * clients
    assert elapsed >= clients * size / rate


def test_link_without_limit_only_counts():
    link = Link(None)
    assert link.reserve(10**9) == 0.0
    assert link.total == 10**9


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="rate must be positive"):
        Relay("127.0.0.1:9", rate=0)


def test_slow_down_and_drop(server):
    with Relay(server, slow_down=1.0) as relay:
        connection = connect(relay.host)
        status, body = request(connection, "PUT", "/a", b"1")
        connection.close()
    assert status == 503
    assert b"<Code>SlowDown</Code>" in body
    with Relay(server, drop=1.0) as relay:
        connection = connect(relay.host)
        with pytest.raises(http.client.RemoteDisconnected):
            request(connection, "PUT", "/a", b"1")
        connection.close()
        assert relay.requests["PUT"] == 1


def test_down_at_and_restore(server):
    with Relay(server) as relay:
        with pytest.raises(RuntimeError, match="not been started"):
            _ = Relay(server).host
        relay.start()  # running already: nothing happens
        host = relay.host
        relay.down_at("PUT", 2)
        connection = connect(host)
        assert request(connection, "PUT", "/a", b"1") == (200, b"")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            request(connection, "PUT", "/a", b"2")
        connection.close()
        assert relay.down
        with pytest.raises(ConnectionError):
            request(connect(host), "GET", "/1")
        relay.restore()
        assert not relay.down and relay.host == host
        connection = connect(host)
        assert request(connection, "PUT", "/a", b"3") == (200, b"")
        connection.close()
        assert relay.requests["PUT"] == 3


def start_cli(server, tmp_path, *options):
    counters = tmp_path / "counters.json"
    command = [sys.executable, "-m", "audb_publish.relay", server, *options]
    command += ["--counters", str(counters)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(relay_module.__file__).parents[1],
    )
    host = process.stdout.readline().strip()
    return process, host, counters


def test_command_line_reports_counters_on_sigterm(server, tmp_path):
    process, host, counters = start_cli(server, tmp_path, "--delay", "0.05")
    try:
        assert host.startswith("127.0.0.1:")
        connection = connect(host)
        start = time.monotonic()
        assert request(connection, "PUT", "/a", b"abc") == (200, b"")
        assert time.monotonic() - start >= 0.1
        assert request(connection, "GET", "/4") == (200, b"xxxx")
        connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        process.stdout.close()
    result = json.loads(counters.read_text())
    assert result["requests"] == {"PUT": 1, "GET": 1}
    assert result["connections"] == 1
    assert result["bytes_up"] > 3 and result["bytes_down"] > 4
    assert result["cpu_seconds"] >= 0


@pytest.mark.parametrize("to_file", [False, True])
def test_main_reports_counters_on_sigterm(server, tmp_path, capsys, to_file):
    counters = tmp_path / "counters.json"
    options = ["--counters", str(counters)] if to_file else []
    previous = signal.getsignal(signal.SIGTERM)

    def terminate_when_handled():
        while signal.getsignal(signal.SIGTERM) is previous:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=terminate_when_handled, daemon=True)
    thread.start()
    code = relay_module.main([server, "--rate", "1e6", "--slow-down", "0.5", *options])
    assert code == 0
    thread.join(10)
    assert signal.getsignal(signal.SIGTERM) is previous
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("127.0.0.1:")
    report = counters.read_text() if to_file else lines[1]
    assert len(lines) == (1 if to_file else 2)
    result = json.loads(report)
    assert result.pop("cpu_seconds") >= 0
    assert result == {
        "requests": {},
        "connections": 0,
        "bytes_up": 0,
        "bytes_down": 0,
    }
