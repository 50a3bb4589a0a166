"""Cost of the dependency-table bookkeeping for very many media files.

No file is read: a synthetic dependency table of N published media files
(version 1.0.0) and scan results for all of them,
1% altered and 1% new, go through :class:`audb_publish.plan.Plan`
as in an update to 1.1.0.
Prints the seconds of each step and writes them to
``docs/benchmarks/bookkeeping.md``.

    python benchmarks/bookkeeping.py [--files 1000000]

"""

import argparse
import datetime
import os
import platform
import resource
import time
import types

import audb

from audb_publish.plan import Plan
from audb_publish.scan import MediaScan

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "docs", "benchmarks", "bookkeeping.md")


class _Database:
    r"""The parts of an audformat database that the plan reads."""

    name = "big"
    attachments: dict = {}

    def __iter__(self):
        return iter([])


def synthetic(n: int, new: float = 0.01):
    r"""Dependency table of ``n`` media files and a context that adds ``new``."""
    files = [f"audio/{i // 1000:04d}/{i:07d}.wav" for i in range(n)]
    deps = audb.Dependencies()
    deps._add_media(
        [
            (f, f"archive{i}", 16, 1, f"{i:032x}", 1.0, "wav", 0, 16000, 1, "1.0.0")
            for i, f in enumerate(files)
        ]
    )
    new = [f"audio/new/{i:07d}.wav" for i in range(int(n * new))]
    media = files + new
    ctx = types.SimpleNamespace(
        db=_Database(),
        db_root="/nonexistent",
        version="1.1.0",
        previous_version="1.0.0",
        deps=deps,
        root_files=dict.fromkeys(media, 1000),
        media=set(media),
        tables={},
        attachments={},
        archives={},
    )
    return ctx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    args = parser.parse_args()

    times = {}
    start = time.perf_counter()
    ctx = synthetic(args.files)
    times["build the synthetic table (not part of a publish)"] = (
        time.perf_counter() - start
    )

    start = time.perf_counter()
    plan = Plan(ctx)
    times["plan: read the previous table, find new and known files"] = (
        time.perf_counter() - start
    )

    files, _ = plan.media_to_scan()
    results = [
        MediaScan(f, "altered" if i % 100 == 0 else f"{i:032x}", 16, 1, 1.0, 16000)
        for i, f in enumerate(files)
    ]
    start = time.perf_counter()
    puts = []
    for i in range(0, len(results), 256):
        puts += plan.add_media(results[i : i + 256])
    times["plan: take all scan results, decide the archives to put"] = (
        time.perf_counter() - start
    )

    start = time.perf_counter()
    plan.apply(ctx.deps)
    times["plan: update the dependency table"] = time.perf_counter() - start

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = sum(v for k, v in times.items() if k.startswith("plan"))
    lines = [
        "# Dependency-table bookkeeping",
        "",
        f"`python benchmarks/bookkeeping.py --files {args.files}`,"
        f" {datetime.date.today()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()}, audb {audb.__version__}.",
        "",
        f"A table of {args.files:,} published media files,"
        f" an update that alters 1% and adds 1%"
        f" ({len(puts):,} archives to put). No file is read.",
        "",
        "| step | seconds |",
        "|---|---|",
        *[f"| {step} | {seconds:.2f} |" for step, seconds in times.items()],
        f"| **all bookkeeping of the publish** | **{total:.2f}** |",
        "",
        f"Peak memory of the process: {peak:.0f} MB.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    with open(OUT, "w") as fp:
        fp.write(text)


if __name__ == "__main__":
    main()
