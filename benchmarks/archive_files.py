"""Ways to create an archive file: partial name and rename, final name, Python file.

Usage::

    python benchmarks/archive_files.py [FOLDER]

Writes 2,000 files of 27,000 bytes five times per way, round-robin,
in fresh folders below FOLDER (default ``benchmarks``), and prints medians per file.
``O_TMPFILE`` with a link into place was tried too;
on the project's VM linking through ``/proc/self/fd`` fails with EXDEV.
"""

import os
import shutil
import statistics
import sys
import tempfile
import time

N = 2000
payload = os.urandom(27000)
base = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def partial_rename(d):
    for i in range(N):
        p = os.path.join(d, f"{i}.zip")
        t = os.path.join(d, f".{i}.zip.partial")
        fd = os.open(t, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.close(fd)
        os.rename(t, p)


def direct(d):
    for i in range(N):
        p = os.path.join(d, f"{i}.zip")
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.close(fd)


def python_open(d):
    for i in range(N):
        t = os.path.join(d, f".{i}.zip.partial")
        with open(t, "wb") as f:
            f.write(payload[:60])
            f.write(payload[60:20000])
            f.write(payload[20000:])
            f.write(b"x" * 100)
        os.replace(t, os.path.join(d, f"{i}.zip"))


res = {f.__name__: [] for f in (partial_rename, direct, python_open)}
for _ in range(5):
    for f in (partial_rename, direct, python_open):
        d = tempfile.mkdtemp(dir=base)
        s = time.perf_counter()
        f(d)
        res[f.__name__].append(time.perf_counter() - s)
        shutil.rmtree(d)
for k, v in res.items():
    median, fastest = statistics.median(v) / N * 1e3, min(v) / N * 1e3
    print(f"{k:16s} median {median:.3f} ms/file  min {fastest:.3f}")
