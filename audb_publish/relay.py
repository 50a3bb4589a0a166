r"""An HTTP relay in front of an S3 server, for tests and benchmarks.

:class:`Relay` listens on 127.0.0.1
and forwards each HTTP/1.1 request of a client connection
to the server over a connection of its own,
one request at a time, as a network between them would.
It counts requests by method and the connections clients open,
and it can fail as a network or a server fails:

* go down for good at the k-th request of a method
  (the request is not forwarded,
  every connection is closed and new ones are refused)
  and come back with :meth:`Relay.restore`;
* answer a share of requests itself with ``503 SlowDown``;
* drop a share of answers after the server did the work;
* hold every message for a delay in each direction.

Traffic goes to loopback only.

"""

from __future__ import annotations

import collections
import contextlib
import random
import socket
import threading
import time

LOCALHOST = "127.0.0.1"

_SLOW_DOWN = (
    b"HTTP/1.1 503 Slow Down\r\n"
    b"Content-Type: application/xml\r\n"
    b"Retry-After: 1\r\n"
    b"Content-Length: %d\r\n\r\n%s"
)
_SLOW_DOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
    b"</Message></Error>"
)


class Relay:
    r"""HTTP relay on 127.0.0.1 in front of ``target``.

    Args:
        target: address ``"IP:PORT"`` of the server
        delay: seconds each message is held, per direction
        slow_down: share of requests answered with ``503 SlowDown``
        drop: share of answers dropped after the server answered
        seed: seed of the random choices

    Examples:
        >>> with Relay("127.0.0.1:9") as relay:
        ...     relay.down_at("PUT", 1)
        ...     relay.requests["PUT"]
        0

    """

    def __init__(
        self,
        target: str,
        *,
        delay: float = 0.0,
        slow_down: float = 0.0,
        drop: float = 0.0,
        seed: int = 0,
    ):
        address, _, port = target.rpartition(":")
        self._address = (address, int(port))
        self.delay = delay
        self.slow_down = slow_down
        self.drop = drop
        self.requests: collections.Counter = collections.Counter()
        r"""Requests received, by method."""
        self.connections = 0
        r"""Connections clients opened."""
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._sockets: set[socket.socket] = set()
        self._fail: tuple[str, int] | None = None
        self.down = False
        r"""``True`` once the relay went down, until :meth:`restore`."""

    def __enter__(self) -> Relay:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    @property
    def host(self) -> str:
        r"""Address ``"127.0.0.1:PORT"`` to connect to."""
        if self._port is None:
            raise RuntimeError("The relay has not been started.")
        return f"{LOCALHOST}:{self._port}"

    def start(self) -> None:
        r"""Listen, on the port of the last start if there was one."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOCALHOST, self._port or 0))
        listener.listen(128)
        self._port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        r"""Close the listener and every connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _shut(listener)
            listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)

    def down_at(self, method: str, k: int) -> None:
        r"""Go down for good when the ``k``-th request of ``method`` arrives.

        Counts from the requests received so far.

        Args:
            method: HTTP method, e.g. ``"PUT"``
            k: 1 for the next one

        """
        with self._lock:
            self._fail = (method, self.requests[method] + k)

    def restore(self) -> None:
        r"""Come back after going down, on the same port."""
        with self._lock:
            self._fail = None
            self.down = False
        self.start()

    # -- internals ---------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        upstream = None
        reader = client.makefile("rb")
        try:
            while True:
                request = _read_message(reader, request=True)
                if request is None:
                    return
                action = self._action(request.method)
                if action == "down":
                    self.stop()
                    return
                if self.delay:
                    time.sleep(self.delay)
                if action == "slow down":
                    body = _SLOW_DOWN_BODY
                    client.sendall(_SLOW_DOWN % (len(body), body))
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self._address, timeout=60)
                    self._track(upstream)
                    upstream_reader = upstream.makefile("rb")
                upstream.sendall(request.raw)
                response = _read_message(upstream_reader, head=request.method == "HEAD")
                if response is None:
                    return
                if action == "drop":
                    return
                if self.delay:
                    time.sleep(self.delay)
                client.sendall(response.raw)
                if response.close:
                    return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    _shut(sock)
                    sock.close()
                    with self._lock:
                        self._sockets.discard(sock)

    def _action(self, method: str) -> str:
        with self._lock:
            self.requests[method] += 1
            if self.down:
                return "down"
            if self._fail is not None and self._fail == (method, self.requests[method]):
                self.down = True
                return "down"
            if self.slow_down and self._random.random() < self.slow_down:
                return "slow down"
            if self.drop and self._random.random() < self.drop:
                return "drop"
        return "forward"


class _Message:
    def __init__(self, raw: bytes, method: str, close: bool):
        self.raw = raw
        self.method = method
        self.close = close


def _read_message(reader, *, request: bool = False, head: bool = False):
    r"""One HTTP/1.1 message with its body, ``None`` at the end of the stream."""
    start = reader.readline()
    if not start:
        return None
    lines = [start]
    length = None
    chunked = close = False
    while True:
        line = reader.readline()
        if not line:
            return None
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and value == "close":
            close = True
    method = start.split(b" ", 1)[0].decode("latin-1")
    status = b"" if request else start.split(b" ", 2)[1]
    no_body = head or status[:1] == b"1" or status in (b"204", b"304")
    if not no_body:
        if chunked:
            while True:
                size_line = reader.readline()
                lines.append(size_line)
                size = int(size_line.split(b";")[0], 16)
                lines.append(reader.read(size + 2))
                if size == 0:
                    break
        elif length is not None:
            lines.append(reader.read(length))
        elif not request:
            lines.append(reader.read())
            close = True
    return _Message(b"".join(lines), method, close)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
