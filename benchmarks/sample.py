"""Where a small file's time goes: sample one publish with py-spy.

Usage::

    python benchmarks/sample.py DB_ROOT [NUM_WORKERS]

Copies ``DB_ROOT`` (e.g. ``benchmarks/cache/small-x0.1-seed1-g1/db``)
to a temporary folder, publishes it to a file-system repository there
under ``py-spy record``, and prints the worker threads' samples
grouped by the innermost frames, as in ``docs/benchmarks/profile.md``.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

RATE = 250
GROUPS = [
    # innermost frame in write_zip itself: opening the archive file
    ("create the archive file (open 'wb')", r"^write_zip \("),
    ("deflate + CRC (ISA-L), write", r"_copy_deflated|_copy_stored|_Output.write"),
    ("read members (open, readinto)", r"zipwriter.py"),
    ("rename into place, listing", r"_put_local|_local_exists|replace"),
    ("scan: MD5 and read", r"md5_head"),
    ("scan: audio header", r"probe\."),
    ("scan: signatures (fstat)", r"integrity\.(take|confirm)"),
    ("integrity guard after pack", r"Guard\.check|integrity\.check"),
    ("validate: read tables", r"table_index|read_indices"),
]


def publish(src: str, num_workers: int, scheduler: str = "threads") -> float:
    r"""Seconds of one publish of a copy of ``src`` to a new repository."""
    import time

    import audb
    import audeer

    import audb_publish

    tmp = tempfile.mkdtemp()
    try:
        root = os.path.join(tmp, "db")
        shutil.copytree(src, root)
        host = audeer.mkdir(tmp, "host")
        audeer.mkdir(host, "repo")
        repository = audb.Repository("repo", host, "file-system")
        audb.config.REPOSITORIES = [repository]
        audb.config.CACHE_ROOT = os.path.join(tmp, "cache")
        start = time.perf_counter()
        audb_publish.publish(
            root,
            "1.0.0",
            repository,
            num_workers=num_workers,
            verbose=False,
            previous_version=None,
            checksum_cache=False,
            scheduler=scheduler,
        )
        return time.perf_counter() - start
    finally:
        shutil.rmtree(tmp)


def group(raw: str, files: int) -> None:
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in open(raw):
        stack, n = line.rsplit(" ", 1)
        if "Scheduler._run" not in stack:
            continue
        total += int(n)
        frames_all = stack.split(";")
        inner = frames_all[::-1][:6]
        for name, pattern in GROUPS:
            if name.startswith("create"):
                frames = inner[:1]
            elif name.startswith("scan"):
                frames = frames_all
            else:
                frames = inner
            if any(re.search(pattern, frame) for frame in frames):
                counts[name] += int(n)
                break
        else:
            counts["other Python in jobs"] += int(n)
    print("| where | seconds | share | per file |")
    print("|---|---|---|---|")
    for name, n in counts.most_common():
        seconds = n / RATE
        print(
            f"| {name} | {seconds:.2f} s | {n / total:.0%} "
            f"| {1e3 * seconds / files:.3f} ms |"
        )


def record(arguments: list[str], flags: list[str] = ()) -> str:
    r"""Run ``python arguments...`` under ``py-spy record``; path of the samples.

    Args:
        arguments: script and its arguments
        flags: more flags of ``py-spy record``, e.g. ``--idle`` or ``--gil``

    Returns:
        samples in py-spy's raw format, in a new temporary folder

    """
    raw = os.path.join(tempfile.mkdtemp(), "samples.txt")
    subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "py-spy"),
            "record",
            "-r",
            str(RATE),
            "-f",
            "raw",
            "-o",
            raw,
            *flags,
            "--",
            sys.executable,
            *arguments,
        ],
        check=True,
        capture_output=True,
    )
    return raw


def main() -> None:
    if sys.argv[1] == "--publish":
        seconds = publish(sys.argv[2], int(sys.argv[3]))
        print(f"publish: {seconds:.2f} s", file=sys.stderr)
        return
    src = sys.argv[1]
    num_workers = sys.argv[2] if len(sys.argv) > 2 else "1"
    files = sum(f.endswith(".wav") for _, _, fs in os.walk(src) for f in fs)
    group(record([__file__, "--publish", src, num_workers]), files)


if __name__ == "__main__":
    main()
