r"""Who left a file behind, and whether that writer is provably gone.

A publish names what it leaves around while it runs
with its owner, ``@<host>@<pid>``:
the partial files beside their destination
in a file-system repository,
and its temporary folders on the local disk.
A publish that fails removes them;
a process killed with SIGKILL cannot.
A later publish on the same host removes those
whose owner is gone (:func:`sweep`),
judged as git judges its ``gc.pid``:

* the process no longer runs on this host, or
* its process ID now belongs to a process
  that started after the file was last written:
  a reused process ID does not keep a leftover alive.

The start time of a process comes from ``/proc``,
so the second rule holds on Linux only;
elsewhere only the first one is applied.

"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import tempfile

_OWNER = re.compile(r"@(?P<host>[^@/]+)@(?P<pid>[0-9]+)(?:@|-|$)")

TEMP_PREFIX = "audb-publish"
r"""Start of the names of the temporary folders of a publish."""


def host() -> str:
    r"""Name of this host.

    Returns:
        host name

    Examples:
        >>> host() == socket.gethostname()
        True

    """
    return socket.gethostname()


def tag(pid: int | None = None) -> str:
    r"""Owner part of a file name: ``@<host>@<pid>``.

    Args:
        pid: process ID, this process if ``None``

    Returns:
        owner tag

    Examples:
        >>> tag(42) == f"@{host()}@42"
        True

    """
    return f"@{host()}@{os.getpid() if pid is None else pid}"


def owner(name: str) -> tuple[str, int] | None:
    r"""Host and process ID in a name made with :func:`tag`.

    Args:
        name: file or folder name

    Returns:
        host and process ID, ``None`` if the name has no owner

    Examples:
        >>> owner(".a.zip@box@17-140.partial")
        ('box', 17)
        >>> owner("audb-publish@box.lan@9@x1y2")
        ('box.lan', 9)
        >>> owner("a.zip") is None
        True

    """
    match = _OWNER.search(name)
    if match is None:
        return None
    return match["host"], int(match["pid"])


def temp_prefix(*, hidden: bool = False) -> str:
    r"""Start of the name of a temporary folder of this process.

    Args:
        hidden: start the name with a dot

    Returns:
        prefix for :func:`tempfile.mkdtemp`

    Examples:
        >>> temp_prefix().startswith(f"audb-publish@{host()}@")
        True

    """
    return f"{'.' if hidden else ''}{TEMP_PREFIX}{tag()}@"


def temp_folder(*, dir: str | None = None, hidden: bool = False) -> str:
    r"""Create a temporary folder named after this process.

    Args:
        dir: where, the system's temporary folder if ``None``
        hidden: start the name with a dot

    Returns:
        path of the new folder

    Examples:
        >>> folder = temp_folder()
        >>> owner(os.path.basename(folder)) == (host(), os.getpid())
        True
        >>> os.rmdir(folder)

    """
    return tempfile.mkdtemp(prefix=temp_prefix(hidden=hidden), dir=dir)


def process_start(pid: int) -> float | None:
    r"""Start of a running process in seconds since the epoch.

    Args:
        pid: process ID

    Returns:
        start time, ``None`` if the process does not run
        or its start cannot be read (not Linux)

    Examples:
        >>> import time
        >>> process_start(os.getpid()) < time.time()
        True

    """
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fp:
            stat = fp.read()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: split after its end
    fields = stat[stat.rfind(b")") + 2 :].split()
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


@functools.cache
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fp:
            for line in fp:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:  # pragma: no cover (not Linux)
        pass
    return None  # pragma: no cover


def running(pid: int) -> bool:
    r"""Check if a process with this ID runs on this host.

    Args:
        pid: process ID

    Returns:
        ``True`` if it runs, also if it belongs to another user

    Examples:
        >>> running(os.getpid())
        True

    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gone(pid: int, *, alive_at: float | None = None) -> str | None:
    r"""Tell why a process of this host is provably gone.

    Args:
        pid: process ID
        alive_at: a time in seconds since the epoch
            at which the process was known to run,
            e.g. when it last wrote a file

    Returns:
        the reason, ``None`` if the process may still run

    Examples:
        >>> gone(os.getpid()) is None
        True
        >>> import time
        >>> gone(os.getpid(), alive_at=time.time() - 10**9) is not None
        True

    """
    if not running(pid):
        return f"process {pid} no longer runs on this host"
    start = process_start(pid)
    if alive_at is not None and start is not None and start > alive_at + 1:
        return (
            f"process ID {pid} now belongs to a process that started after "
            "the lock or file was written"
        )
    return None


def leftover(path: str) -> str | None:
    r"""Tell why the writer of a file or folder named with :func:`tag` is gone.

    Args:
        path: file or folder

    Returns:
        the reason, ``None`` if its writer may still run,
        runs on another host, or the name has no owner

    """
    found = owner(os.path.basename(path))
    if found is None or found[0] != host():
        return None
    try:
        written = os.stat(path).st_mtime
    except OSError:
        return None
    return gone(found[1], alive_at=written)


def sweep(folder: str | None = None, *, hidden: bool = False) -> list[str]:
    r"""Remove the temporary folders of publishes on this host that are gone.

    Args:
        folder: where to look, the system's temporary folder if ``None``
        hidden: look for names that start with a dot,
            as :func:`temp_folder` with ``hidden=True`` makes them

    Returns:
        paths removed

    Examples:
        >>> import subprocess, sys
        >>> code = "import os; print(os.getpid())"
        >>> child = subprocess.run([sys.executable, "-c", code], capture_output=True)
        >>> pid = int(child.stdout)
        >>> left = audeer.mkdir(f"audb-publish@{host()}@{pid}@abc")
        >>> sweep(".") == [os.path.join(".", os.path.basename(left))]
        True

    """
    folder = tempfile.gettempdir() if folder is None else folder
    start = f"{'.' if hidden else ''}{TEMP_PREFIX}@"
    removed = []
    try:
        entries = [entry.name for entry in os.scandir(folder)]
    except OSError:
        return removed
    for name in entries:
        path = os.path.join(folder, name)
        if name.startswith(start) and leftover(path) is not None:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
