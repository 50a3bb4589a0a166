"""Deflate one large CSV table in blocks: speed against cores, size against one stream.

Usage::

    python benchmarks/blocks.py [--scale 1.0] [--runs 3] [--out docs/benchmarks/blocks]

Takes the table of the ``bigtable`` shape (about 1.5 GB at scale 1)
and writes it into a ZIP archive with :func:`audb_publish.zipwriter.write_zip`,
as a publish does, inside a job of a scheduler with 1, 2 and 4 workers
(deflated in blocks, on as many cores as are free),
and once as a single deflate stream (blocks switched off).
Engine and level are those ``compression="auto"`` picks for CSV
(zlib-ng, level 6);
upstream's zlib level 6 stream is measured for the size.
Writes ``blocks.md`` and ``blocks.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import statistics
import sys
import tempfile
import time
import zlib

import generate
import report

from audb_publish import compression
from audb_publish import deflate_blocks
from audb_publish import zipwriter
from audb_publish.scheduler import Scheduler

TABLE = "db.segments.csv"


def write(root: str, archive: str, num_workers: int, codec) -> tuple[float, int]:
    """Seconds and bytes of one archive written in a scheduler job."""
    with Scheduler(num_workers, verbose=False) as scheduler:
        start = time.perf_counter()
        job = scheduler.submit(zipwriter.write_zip, archive, root, [TABLE], codec)
        info = scheduler.ordered([job])[0]
        seconds = time.perf_counter() - start
    os.remove(archive)
    return seconds, info.size


def upstream_size(path: str) -> int:
    """Bytes of the table deflated by zlib level 6 in one stream, as upstream."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    size = 0
    with open(path, "rb") as fp:
        while chunk := fp.read(1 << 22):
            size += len(compressor.compress(chunk))
    return size + len(compressor.flush())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks/blocks")
    args = parser.parse_args()
    info = generate.ensure("bigtable", args.scale, 1)
    root = info["root"]
    table_bytes = os.path.getsize(os.path.join(root, TABLE))
    codec = compression.codec(TABLE, "auto")
    folder = tempfile.mkdtemp()
    archive = os.path.join(folder, "table.zip")
    cases = [("one stream", 1), ("blocks", 1), ("blocks", 2), ("blocks", 4)]
    times: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
    sizes: dict[tuple[str, int], int] = {}
    threshold = deflate_blocks.THRESHOLD
    for run in range(args.runs):
        for case in cases:
            deflate_blocks.THRESHOLD = threshold if case[0] == "blocks" else 1 << 62
            seconds, size = write(root, archive, case[1], codec)
            times[case].append(seconds)
            sizes[case] = size
            label = f"{case[0]:<10} w={case[1]}"
            print(f"run {run + 1} {label}: {seconds:.2f} s", flush=True)
    deflate_blocks.THRESHOLD = threshold
    shutil.rmtree(folder)
    upstream = upstream_size(os.path.join(root, TABLE))
    medians = {case: statistics.median(values) for case, values in times.items()}
    base = medians[("blocks", 1)]
    stream = sizes[("one stream", 1)]
    lines = [
        "# One large CSV table deflated in blocks",
        "",
        *[f"- **{key}**: {value}" for key, value in report.machine_info().items()],
        f"- **command**: `python {' '.join(sys.argv)}`",
        f"- **table**: `{TABLE}` of the bigtable shape at scale {args.scale:g}, "
        f"{table_bytes / 1e6:.0f} MB, {info.get('rows', 0):,} rows",
        f"- **codec**: {codec.engine} level {codec.level} "
        f"(what `compression='auto'` picks for CSV); "
        f"blocks of {deflate_blocks.BLOCK_SIZE >> 20} MiB",
        f"- **runs**: {args.runs}, medians; the table is in the page cache",
        "",
        "| deflate | num_workers | seconds | MB/s | × blocks, 1 worker "
        "| archive bytes | / one stream | / upstream (zlib 6) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        seconds = medians[case]
        rate = table_bytes / seconds / 1e6
        lines.append(
            f"| {case[0]} | {case[1]} | {seconds:.2f} | {rate:.0f} "
            f"| {base / seconds:.2f} | {sizes[case]:,} "
            f"| {sizes[case] / stream:.5f} | {sizes[case] / upstream:.4f} |"
        )
    lines += ["", f"Upstream's zlib level 6 stream: {upstream:,} bytes.", ""]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "blocks.md").write_text("\n".join(lines))
    (out / "blocks.json").write_text(
        json.dumps(
            {
                "table_bytes": table_bytes,
                "upstream_bytes": upstream,
                "cases": [
                    {
                        "deflate": case[0],
                        "num_workers": case[1],
                        "seconds": times[case],
                        "bytes": sizes[case],
                    }
                    for case in cases
                ],
            },
            indent=2,
        )
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
