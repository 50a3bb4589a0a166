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
* hold every message for a delay in each direction;
* limit the bytes per second in each direction,
  shared by all connections, as a link does.

Traffic goes to loopback only.
For benchmarks, run it in a process of its own,
so that its threads do not compete for the GIL
with the code measured::

    python -m audb_publish.relay 127.0.0.1:8333 --delay 0.025 --rate 100e6 \
        --counters counters.json

prints the address to connect to on its first line of output
and serves until SIGTERM or SIGINT,
then writes its counters as JSON
(:meth:`Relay.counters`, and ``cpu_seconds``,
the CPU time the relay process used while serving,
to tell whether the relay itself was the bottleneck)
to the ``--counters`` file,
or prints them if there is none.

"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import random
import signal
import socket
import sys
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
        rate: bytes per second in each direction,
            shared by all connections;
            ``None`` for no limit

    Raises:
        ValueError: if ``rate`` is not positive

    Examples:
        >>> with Relay("127.0.0.1:9") as relay:
        ...     relay.down_at("PUT", 1)
        ...     relay.requests["PUT"]
        0
        >>> Relay("127.0.0.1:9", delay=0.025, rate=100e6).counters()
        {'requests': {}, 'connections': 0, 'bytes_up': 0, 'bytes_down': 0}

    """

    def __init__(
        self,
        target: str,
        *,
        delay: float = 0.0,
        slow_down: float = 0.0,
        drop: float = 0.0,
        seed: int = 0,
        rate: float | None = None,
    ):
        if rate is not None and not rate > 0:
            raise ValueError(f"rate must be positive or None, not {rate!r}")
        address, _, port = target.rpartition(":")
        self._address = (address, int(port))
        self.delay = delay
        self.rate = rate
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
        self._up = Link(rate)
        self._down = Link(rate)

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

    @property
    def bytes_up(self) -> int:
        r"""Bytes forwarded from clients to the server."""
        return self._up.total

    @property
    def bytes_down(self) -> int:
        r"""Bytes forwarded from the server to clients."""
        return self._down.total

    def counters(self) -> dict:
        r"""Requests by method, connections and bytes forwarded so far.

        Returns:
            dictionary with keys
            ``"requests"``, ``"connections"``, ``"bytes_up"``, ``"bytes_down"``

        """
        with self._lock:
            return {
                "requests": dict(self.requests),
                "connections": self.connections,
                "bytes_up": self.bytes_up,
                "bytes_down": self.bytes_down,
            }

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
                    self._down.send(client, _SLOW_DOWN % (len(body), body))
                    continue
                if upstream is None:
                    upstream = socket.create_connection(self._address, timeout=60)
                    self._track(upstream)
                    upstream_reader = upstream.makefile("rb")
                self._up.send(upstream, request.raw)
                response = _read_message(upstream_reader, head=request.method == "HEAD")
                if response is None:
                    return
                if action == "drop":
                    return
                if self.delay:
                    time.sleep(self.delay)
                self._down.send(client, response.raw)
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


class Link:
    r"""One direction of a link of ``rate`` bytes per second.

    Shared by all connections in that direction:
    every chunk sent moves the time the link is free again
    by ``size / rate``,
    and the sender waits until its chunk went through,
    so ``n`` bytes take at least ``n / rate`` seconds,
    whatever the number of connections.
    Chunks of at most 64 KiB
    let concurrent connections take turns.

    Args:
        rate: bytes per second, ``None`` for no limit

    Examples:
        >>> link = Link(1e6)
        >>> 0.001 <= link.reserve(1000) <= 0.002
        True
        >>> link.total
        1000

    """

    chunk_size = 64 << 10

    def __init__(self, rate: float | None):
        self.rate = rate
        self.total = 0
        r"""Bytes sent."""
        self._free = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self, size: int) -> float:
        r"""Account for ``size`` bytes and return the seconds to wait."""
        with self._lock:
            self.total += size
            if self.rate is None:
                return 0.0
            now = time.monotonic()
            self._free = max(self._free, now) + size / self.rate
            return self._free - now

    def send(self, sock: socket.socket, data: bytes) -> None:
        r"""Send ``data`` on ``sock`` at the rate of the link."""
        if self.rate is None:
            self.reserve(len(data))
            sock.sendall(data)
            return
        view = memoryview(data)
        for start in range(0, len(view), self.chunk_size):
            chunk = view[start : start + self.chunk_size]
            time.sleep(self.reserve(len(chunk)))
            sock.sendall(chunk)


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


# -- command line -----------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    r"""Run a relay until SIGTERM or SIGINT, then report its counters.

    Args:
        argv: command line arguments, ``sys.argv[1:]`` if ``None``

    Returns:
        exit code

    """
    args = _parser().parse_args(argv)
    relay = Relay(
        args.target,
        delay=args.delay,
        slow_down=args.slow_down,
        drop=args.drop,
        seed=args.seed,
        rate=args.rate,
    )
    stop = threading.Event()
    handlers = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    cpu = time.process_time()
    try:
        relay.start()
        print(relay.host, flush=True)
        stop.wait()
    finally:
        relay.stop()
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    cpu = time.process_time() - cpu
    text = json.dumps({**relay.counters(), "cpu_seconds": round(cpu, 3)})
    if args.counters:
        with open(args.counters, "w") as fp:
            fp.write(text + "\n")
    else:
        print(text, flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m audb_publish.relay",
        description="HTTP relay on 127.0.0.1 in front of TARGET "
        "that delays messages, limits bandwidth and counts requests. "
        "Prints its address, serves until SIGTERM or SIGINT, "
        "then writes its counters as JSON.",
    )
    add = parser.add_argument
    add("target", help="address IP:PORT of the server")
    add("--delay", type=float, default=0.0, help="seconds per message and direction")
    add("--rate", type=float, help="bytes per second per direction (default: none)")
    add("--slow-down", type=float, default=0.0, help="share answered 503 SlowDown")
    add("--drop", type=float, default=0.0, help="share of answers dropped")
    add("--seed", type=int, default=0, help="seed of the random choices")
    add("--counters", help="file for the counters (default: print them)")
    return parser


if __name__ == "__main__":
    sys.exit(main())
