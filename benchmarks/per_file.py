"""What one small file costs, piece by piece, outside a publish.

Usage::

    python benchmarks/per_file.py [DB_ROOT] [--runs 5]

Takes the WAV files of ``DB_ROOT``
(default: the small shape at scale 0.1, generated if missing)
and times, per file, medians over ``--runs`` runs:
deflating the bytes alone (``compression="auto"``, ISA-L level 3),
:func:`audb_publish.zipwriter.write_zip` into memory
(reading, CRC, ZIP records, MD5 of the archive),
creating and writing a file of the archive's size,
the same with a rename into place,
``write_zip`` to a new file,
and creating files on 1, 2 and 4 threads,
with the user and system CPU time of the process.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
import io
import os
import resource
import shutil
import statistics
import tempfile
import time

import generate

from audb_publish import compression
from audb_publish import zipwriter


def _timed(function, runs: int, count: int) -> tuple[float, float, float]:
    r"""Median wall, user and system milliseconds per file."""
    results = []
    for _ in range(runs):
        folder = tempfile.mkdtemp()
        before = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        function(folder)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        shutil.rmtree(folder)
        results.append(
            (
                wall,
                after.ru_utime - before.ru_utime,
                after.ru_stime - before.ru_stime,
            )
        )
    medians = (statistics.median(result[i] for result in results) for i in range(3))
    return tuple(1e3 * median / count for median in medians)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = args.root or generate.ensure("small", 0.1, 1)["root"]
    files = sorted(
        os.path.relpath(os.path.join(folder, name), root)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".wav")
    )
    datas = []
    for file in files:
        with open(os.path.join(root, file), "rb") as fp:
            datas.append(fp.read())
    codec = compression.SPEECH
    archive = io.BytesIO()
    zipwriter.write_zip(archive, root, files[:1], codec)
    size = len(archive.getvalue())
    payload = os.urandom(size)

    def deflate(folder):
        for data in datas:
            compressor = codec.compressor()
            compressor.compress(data)
            compressor.flush()

    def zip_to_memory(folder):
        for file in files:
            zipwriter.write_zip(io.BytesIO(), root, [file], codec)

    def create(lo, hi, folder, rename=False):
        for i in range(lo, hi):
            path = os.path.join(folder, f"{i}.zip")
            partial = path + ".partial" if rename else path
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(fd, payload)
            os.close(fd)
            if rename:
                os.replace(partial, path)

    def zip_to_file(folder):
        for i, file in enumerate(files):
            zipwriter.write_zip(os.path.join(folder, f"{i}.zip"), root, [file], codec)

    def threaded(threads):
        def run(folder):
            chunks = range(0, len(files), 16)
            with ThreadPoolExecutor(threads) as pool:
                list(
                    pool.map(
                        lambda lo: create(lo, min(lo + 16, len(files)), folder), chunks
                    )
                )

        return run

    cases = [
        ("deflate alone (ISA-L 3)", deflate),
        ("write_zip into memory", zip_to_memory),
        (f"create + write {size:,} bytes", lambda f: create(0, len(files), f)),
        ("... and rename into place", lambda f: create(0, len(files), f, True)),
        ("write_zip to a new file", zip_to_file),
        ("create + write, 2 threads", threaded(2)),
        ("create + write, 4 threads", threaded(4)),
    ]
    print(f"{len(files)} files of {sum(map(len, datas)) / len(files):,.0f} bytes")
    print("| step | wall ms per file | user ms | system ms |")
    print("|---|---|---|---|")
    for name, function in cases:
        wall, user, system = _timed(function, args.runs, len(files))
        print(f"| {name} | {wall:.3f} | {user:.3f} | {system:.3f} |", flush=True)


if __name__ == "__main__":
    main()
