"""An update of a database kept whole on disk: upstream, ours without and with cache.

Usage::

    python benchmarks/update.py [--scale 1.0] [--runs 3] [--out docs/benchmarks/update]

Per run and case, the ``wav`` shape is copied to a fresh folder
and published as 1.0.0 to a fresh file-system repository
by the implementation under test (not timed);
then 1% of its media files are altered, 1% added
and the ``files`` table changed (``benchmarks/incremental.py``),
and the publish of 1.1.0 from the same folder is timed.
The floor hashes and copies only the changed files
(``md5sum`` concurrently with ``cp --parents``).
A second part times what an update of 1,000,000 media files
with 0.1% changed costs before anything is read:
loading the checksum cache, looking every file up,
and ``os.stat`` (measured on the shape's files, per file).
Writes ``update.md`` and ``update.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import generate
import incremental
import report

UPSTREAM_WORKERS = (1, 2, 4)
OURS_WORKERS = (2, 8)
FRACTION = 0.01
SETTLE = 2.2  # seconds: files younger than 2 s are racy and not cached


def _cases() -> list[tuple[str, int]]:
    cases = [("upstream", w) for w in UPSTREAM_WORKERS]
    cases += [("ours, no cache", w) for w in OURS_WORKERS]
    cases += [("ours, cache", w) for w in OURS_WORKERS]
    return cases + [("floor", 0)]


def _publish(impl: str, root: str, version: str, repository, workers: int) -> None:
    import audb_publish
    from audb_publish.patching import _ORIGINAL as upstream

    if impl == "upstream":
        upstream(root, version, repository, num_workers=workers, verbose=False)
    else:
        audb_publish.publish(
            root,
            version,
            repository,
            num_workers=workers,
            verbose=False,
            checksum_cache=impl == "ours, cache",
        )


def _floor(root: str, files: list[str], destination: str) -> None:
    md5 = subprocess.Popen(["md5sum", *files], cwd=root, stdout=subprocess.DEVNULL)
    copy = subprocess.run(["cp", "--parents", *files, destination], cwd=root)
    md5.wait()
    if copy.returncode or md5.returncode:
        raise RuntimeError("floor failed")


def measure(source: str, impl: str, workers: int, run: int, tmp: str) -> float:
    r"""Seconds of the 1.1.0 publish of one case."""
    import audb

    folder = os.path.join(tmp, f"{run}-{impl.replace(', ', '-')}-{workers}")
    root = os.path.join(folder, "db")
    os.makedirs(folder)
    subprocess.run(["cp", "-a", source, root], check=True)
    host = os.path.join(folder, "host")
    os.makedirs(os.path.join(host, "repo"))
    repository = audb.Repository("repo", host, "file-system")
    audb.config.REPOSITORIES = [repository]
    audb.config.CACHE_ROOT = os.path.join(folder, "cache")
    time.sleep(SETTLE)
    if impl != "floor":
        _publish(impl, root, "1.0.0", repository, max(workers, 2))
    changed = incremental.alter(root, FRACTION, 1)
    gc.collect()
    start = time.perf_counter()
    if impl == "floor":
        _floor(root, changed, os.path.join(host, "repo"))
    else:
        _publish(impl, root, "1.1.0", repository, workers)
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    return seconds


def _plan(names: list[str], found: list, changed: float) -> dict:
    r"""Seconds the plan takes for the lookups' results, misses read as altered."""
    import bookkeeping

    from audb_publish.plan import Plan
    from audb_publish.scan import MediaScan

    ctx = bookkeeping.synthetic(len(names), new=changed)
    start = time.perf_counter()
    plan = Plan(ctx)
    files, _ = plan.media_to_scan()
    known = dict(zip(names, found, strict=True))
    results = [
        known.get(file) or MediaScan(file, "altered", 16, 1, 1.0, 16000)
        for file in files
    ]
    puts = []
    for i in range(0, len(results), 256):
        puts += plan.add_media(results[i : i + 256])
    plan.apply(ctx.deps)
    return {"plan_s": time.perf_counter() - start, "plan_puts": len(puts)}


def million(source: str, count: int = 1_000_000, changed: float = 0.001) -> dict:
    r"""Seconds to write, load and look up a cache of ``count`` files, and stat."""
    from audb_publish import checksum_cache
    from audb_publish import integrity
    from audb_publish.scan import MediaScan

    tmp = tempfile.mkdtemp()
    old = time.time_ns() - 10**10
    names = [f"audio/{i // 1000:04d}/{i:07d}.wav" for i in range(count)]
    try:
        cache = checksum_cache.ChecksumCache(os.path.join(tmp, "db"), None)
        cache.path = checksum_cache.cache_file(cache.db_root, tmp)
        cache.record(
            MediaScan(
                name,
                f"{i:032x}",
                16,
                1,
                1.0,
                16000,
                integrity.Signature(1, i, 32044, old, old),
            )
            for i, name in enumerate(names)
        )
        start = time.perf_counter()
        cache.save()
        save = time.perf_counter() - start
        del cache
        gc.collect()
        start = time.perf_counter()
        loaded = checksum_cache.ChecksumCache.load(os.path.join(tmp, "db"), tmp)
        load = time.perf_counter() - start
        every = int(1 / changed)
        # 0.1% of the files changed: their ctime differs
        # mode, ino, dev, nlink, uid, gid, size, three times in s,
        # three times as float, atime_ns, mtime_ns, ctime_ns
        keys = [
            os.stat_result(
                (0o100644, i, 1, 1, 0, 0, 32044, 0, 0, 0, 0.0, 0.0, 0.0)
                + (0, old, old + (i % every == 0))
            )
            for i in range(count)
        ]
        start = time.perf_counter()
        found = [
            loaded.lookup(name, key) for name, key in zip(names, keys, strict=True)
        ]
        lookup = time.perf_counter() - start
        hits = sum(result is not None for result in found)
        plan = _plan(names, found, changed)
        files = [os.path.join(d, n) for d, _, ns in os.walk(source) for n in ns]
        start = time.perf_counter()
        for _ in range(5):
            for file in files:
                os.stat(file)
        stat = (time.perf_counter() - start) / (5 * len(files))
        return {
            "files": count,
            "hits": hits,
            "save_s": save,
            "load_s": load,
            "lookup_s": lookup,
            "stat_s_per_file": stat,
            "stat_s_for_all": stat * count,
            **plan,
        }
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", default="docs/benchmarks/update")
    parser.add_argument("--files", type=int, default=1_000_000, help="second part")
    args = parser.parse_args()
    info = generate.ensure("wav", args.scale, 1)
    tmp = tempfile.mkdtemp()
    times: dict[tuple[str, int], list[float]] = {case: [] for case in _cases()}
    try:
        for run in range(args.runs):
            for case in _cases():
                seconds = measure(info["root"], *case, run, tmp)
                times[case].append(seconds)
                label = f"{case[0]:<15} w={case[1]}"
                print(f"run {run + 1} {label}: {seconds:.2f} s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    big = million(info["root"], args.files)
    total = big["stat_s_for_all"] + big["load_s"] + big["lookup_s"] + big["plan_s"]
    medians = {case: statistics.median(values) for case, values in times.items()}
    best = min(medians[case] for case in medians if case[0] == "upstream")
    floor = medians[("floor", 0)]
    lines = [
        "# An update of a database kept whole on disk",
        "",
        *[f"- **{key}**: {value}" for key, value in report.machine_info().items()],
        f"- **command**: `python {' '.join(sys.argv)}`",
        f"- **database**: wav shape at scale {args.scale:g}, "
        f"{info['files']} files, {info['bytes'] / 1e6:.0f} MB; "
        f"1.1.0 alters {FRACTION:.0%} of the media, adds as many "
        "and changes the files table",
        f"- **runs**: {args.runs}, medians",
        "",
        "| case | num_workers | seconds | × upstream's best | / floor |",
        "|---|---|---|---|---|",
    ]
    for case in _cases():
        seconds = medians[case]
        workers = case[1] or "all"
        lines.append(
            f"| {case[0]} | {workers} | {seconds:.2f} | {best / seconds:.1f} "
            f"| {seconds / floor:.1f} |"
        )
    lines += [
        "",
        "The floor hashes and copies only the changed files.",
        "",
        f"## {big['files']:,} media files, 0.1% changed",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| write the cache | {big['save_s']:.2f} |",
        f"| load the cache | {big['load_s']:.2f} |",
        f"| look up every file ({big['hits']:,} unchanged) | {big['lookup_s']:.2f} |",
        f"| `os.stat` of every file ({1e6 * big['stat_s_per_file']:.1f} µs "
        f"per file, measured on {info['files']} files, times {big['files']:,}) "
        f"| {big['stat_s_for_all']:.2f} |",
        f"| plan: previous table, take the results, update the table "
        f"({big['plan_puts']:,} archives to put) | {big['plan_s']:.2f} |",
        f"| **stat, load, look up and plan** | **{total:.2f}** |",
        "",
        "The plan gets the lookups' results;"
        " the changed files and as many new ones count as scanned and altered.",
        "",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "update.md").write_text("\n".join(lines))
    records = {
        "cases": [
            {"case": case[0], "num_workers": case[1], "seconds": times[case]}
            for case in _cases()
        ],
        "million": big,
    }
    (out / "update.json").write_text(json.dumps(records, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
