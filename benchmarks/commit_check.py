"""What the version lock and the check before commit cost (issues 14 and 20).

Usage::

    python benchmarks/commit_check.py [--scale 0.5] [--runs 3] [--workers 8]
        [--lease 60] [--out docs/benchmarks/commit_check]

Per shape (wav, small), backend (file system, SeaweedFS S3) and run,
the shape is published as 1.0.0 to a fresh repository by ``audb_publish.publish``,
timed as a whole, while the steps that issue 14 added are timed inside it:

* claim: creating the lock file, reading it back,
  and looking for a header of the version;
* release: reading the lock back and removing it;
* check: comparing every file put with the repository
  (``os.stat`` per file on the file system, one listing per folder on S3);
* header test: the one look for a header before the dependency table is put;
* renew: the renewals of the lease (issue 20), every third of ``--lease``,
  each a read of the lock and a conditional rewrite (two requests),
  in a thread of their own beside the publish.
  They are counted, and reported as requests per minute of publishing.

The stamps of the files put cost no request:
on the file system they come from the ``os.stat`` a put takes anyway,
on S3 from the size and MD5 it knows.

A new SeaweedFS bucket takes about 0.2 s for its first write,
whichever request that is, so each is warmed with one object first.

Reports the medians and the share of the publish those steps take together.
Writes ``commit_check.md`` and ``commit_check.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
from pathlib import Path
import shutil
import statistics
import sys
import tempfile
import threading
import time

import generate
import report

SHAPES = ("wav", "small")
BACKENDS = ("file-system", "s3")
STEPS = ("claim", "release", "check", "header test", "renew")


class Timers:
    r"""Summed seconds of wrapped functions, by step."""

    def __init__(self):
        self.seconds: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def wrap(self, owner, name: str, step: str, when=lambda *args: True) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            if not when(*args):
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[step] += time.perf_counter() - start
                    self.calls[step] += 1

        setattr(owner, name, timed)


def instrument() -> Timers:
    r"""Time the steps of issue 14 in this process."""
    from audb_publish import remote as remote_module
    import audb_publish.commit as commit_module
    from audb_publish.commit import lock as lock_module

    timers = Timers()
    timers.wrap(lock_module.VersionLock, "claim", "claim")
    timers.wrap(lock_module.VersionLock, "release", "release")
    timers.wrap(commit_module, "check_puts", "check")
    timers.wrap(lock_module.VersionLock, "_renew", "renew")

    def header_test(*args) -> bool:  # the test in commit(), not the claim's
        return sys._getframe(2).f_code.co_name == "commit"

    timers.wrap(remote_module.Remote, "exists", "header test", header_test)
    return timers


def repository_for(backend: str, folder: str, server, run: int):
    import audb

    if backend == "file-system":
        os.makedirs(os.path.join(folder, "host", "repo"))
        return audb.Repository("repo", os.path.join(folder, "host"), backend)
    repository = server.repository(f"check-{run}-{time.monotonic_ns()}")
    # SeaweedFS takes about 0.2 s for the first write to a new bucket,
    # whichever request it is; warm it, so that neither step pays for it
    backend = repository.create_backend_interface().backend
    warm = os.path.join(folder, "warm")
    Path(warm).write_bytes(b"warm")
    with backend:
        backend.put_file(warm, "/warm/file")
    return repository


def measure(shape, backend, source, timers, workers, run, tmp, server) -> dict:
    import audb

    import audb_publish

    folder = tempfile.mkdtemp(dir=tmp)
    root = os.path.join(folder, "db")
    shutil.copytree(source, root)
    repository = repository_for(backend, folder, server, run)
    audb.config.REPOSITORIES = [repository]
    audb.config.CACHE_ROOT = os.path.join(folder, "cache")
    timers.seconds.clear()
    timers.calls.clear()
    start = time.perf_counter()
    audb_publish.publish(
        root,
        "1.0.0",
        repository,
        num_workers=workers,
        verbose=False,
        checksum_cache=False,
    )
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    steps = {step: timers.seconds[step] for step in STEPS}
    renewals = timers.calls["renew"]
    return {
        "shape": shape,
        "backend": backend,
        "seconds": seconds,
        **steps,
        "renewals": renewals,
        "requests_per_minute": 2 * renewals / seconds * 60,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--out", default="docs/benchmarks/commit_check")
    args = parser.parse_args()
    from audb_publish.commit import VersionLock
    from audb_publish.testing import SeaweedFS

    VersionLock.LEASE = args.lease
    timers = instrument()
    tmp = tempfile.mkdtemp()
    records = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(SeaweedFS(os.path.join(tmp, "seaweedfs")))
        for shape in SHAPES:
            info = generate.ensure(shape, args.scale, 1)
            for run in range(args.runs):
                for backend in BACKENDS:
                    record = measure(
                        shape,
                        backend,
                        info["root"],
                        timers,
                        args.workers,
                        run,
                        tmp,
                        server,
                    )
                    record["files"] = info["files"]
                    records.append(record)
                    print(json.dumps(record), flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "# What the version lock and the check before commit cost",
        "",
        *[f"- **{key}**: {value}" for key, value in report.machine_info().items()],
        f"- **command**: `python {' '.join(sys.argv)}`",
        f"- **runs**: {args.runs}, medians; num_workers {args.workers}; "
        f"shapes at scale {args.scale:g}, published as 1.0.0 to a fresh repository; "
        f"lease {args.lease:g} s (renewed every {args.lease / 3:g} s)",
        "",
        "| shape | backend | files | publish s | "
        + " | ".join(f"{step} ms" for step in STEPS)
        + " | share of the publish | renewals | renewal requests per minute |",
        "|---|---|---|---|" + "---|" * len(STEPS) + "---|---|---|",
    ]
    for shape in SHAPES:
        for backend in BACKENDS:
            group = [
                r for r in records if (r["shape"], r["backend"]) == (shape, backend)
            ]
            median = {
                key: statistics.median(r[key] for r in group)
                for key in ("seconds", *STEPS, "renewals", "requests_per_minute")
            }
            share = statistics.median(
                sum(r[step] for step in STEPS) / r["seconds"] for r in group
            )
            lines.append(
                f"| {shape} | {backend} | {group[0]['files']} "
                f"| {median['seconds']:.2f} | "
                + " | ".join(f"{1000 * median[step]:.1f}" for step in STEPS)
                + f" | {share:.2%} | {median['renewals']:g} "
                f"| {median['requests_per_minute']:.1f} |"
            )
    lines += [
        "",
        "Stamps are summed over worker threads, so their share is an upper bound.",
        "Renewals run in a thread of their own while the publish goes on;",
        "their time is counted in the share all the same.",
        "",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "commit_check.md").write_text("\n".join(lines))
    (out / "commit_check.json").write_text(json.dumps(records, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
