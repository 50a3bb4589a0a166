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

from audb_publish.cli import capture_report
from audb_publish.report import STAGES

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


def measure(
    source: str, impl: str, workers: int, run: int, tmp: str
) -> tuple[float, dict[str, float]]:
    r"""Seconds of the 1.1.0 publish of one case, and its stages if ours."""
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
    with capture_report() as reports:
        start = time.perf_counter()
        if impl == "floor":
            _floor(root, changed, os.path.join(host, "repo"))
        else:
            _publish(impl, root, "1.1.0", repository, workers)
        seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    return seconds, (reports[-1].stages if reports else {})


def _plan(ctx, cache) -> dict:
    r"""Seconds of the lookup and the plan, files the cache misses read as altered."""
    from audb_publish.plan import Plan
    from audb_publish.scan import MediaScan

    start = time.perf_counter()
    plan = Plan(ctx)
    files, sizes = plan.media_to_scan()
    init = time.perf_counter() - start
    start = time.perf_counter()
    known, files, sizes = cache.split(files, sizes, ctx.root_keys)
    lookup = time.perf_counter() - start
    results = [MediaScan(file, "altered", 16, 1, 1.0, 16000) for file in files]
    start = time.perf_counter()
    puts = plan.add_known(known)
    for i in range(0, len(results), 256):
        puts += plan.add_media(results[i : i + 256])
    plan.apply(ctx.deps)
    return {
        "hits": len(known.files),
        "lookup_s": lookup,
        "plan_s": init + time.perf_counter() - start,
        "plan_puts": len(puts),
    }


def million(source: str, count: int = 1_000_000, changed: float = 0.001) -> dict:
    r"""Seconds to write, load and look up a cache of ``count`` files, and plan."""
    import bookkeeping
    import pyarrow as pa

    from audb_publish import checksum_cache
    from audb_publish import integrity
    from audb_publish import validate
    from audb_publish.scan import MediaScan

    tmp = tempfile.mkdtemp()
    old = time.time_ns() - 10**10
    # the files of the dependency table, and as many new ones as changed
    ctx = bookkeeping.synthetic(count, new=changed)
    names = list(ctx.deps.media)
    try:
        cache = checksum_cache.ChecksumCache(os.path.join(tmp, "db"), None)
        cache.path = checksum_cache.cache_file(cache.db_root, tmp)
        cache.record(
            MediaScan(
                name,
                f"{i:032x}",  # the checksum of the dependency table
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
        # as validation's listing gives them; 0.1% changed: their ctime differs
        every = int(1 / changed)
        ctx.root_keys = pa.table(
            {
                "file": names,
                "dev": [1] * count,
                "ino": range(count),
                "size": [32044] * count,
                "mtime_ns": [old] * count,
                "ctime_ns": [old + (i % every == 0) for i in range(count)],
            },
            integrity.KEY_SCHEMA,
        )
        plan = _plan(ctx, loaded)
        # validation lists every file with os.stat, once
        start = time.perf_counter()
        for _ in range(5):
            validate.list_files(source, {n: [] for n in integrity.KEY_SCHEMA.names})
        listed = len(validate.list_files(source))
        stat = (time.perf_counter() - start) / (5 * listed)
        return {
            "files": count,
            "save_s": save,
            "load_s": load,
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
    stages: dict[tuple[str, int], list[dict]] = {case: [] for case in _cases()}
    try:
        for run in range(args.runs):
            for case in _cases():
                seconds, seen = measure(info["root"], *case, run, tmp)
                times[case].append(seconds)
                stages[case].append(seen)
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
        "Stages of our publish (medians, seconds; they cover the publish):",
        "",
        "| case | num_workers | " + " | ".join(STAGES) + " | sum |",
        "|---|---|" + "---|" * (len(STAGES) + 1),
    ]
    for case in _cases():
        if not case[0].startswith("ours"):
            continue
        seconds = [
            statistics.median(seen.get(stage, 0.0) for seen in stages[case])
            for stage in STAGES
        ]
        cells = " | ".join(f"{value:.3f}" for value in seconds)
        lines.append(f"| {case[0]} | {case[1]} | {cells} | {sum(seconds):.3f} |")
    lines += [
        "",
        f"## {big['files']:,} media files, 0.1% changed",
        "",
        "| step | seconds |",
        "|---|---|",
        f"| write the cache | {big['save_s']:.2f} |",
        f"| load the cache | {big['load_s']:.2f} |",
        f"| look up every file ({big['hits']:,} unchanged) | {big['lookup_s']:.2f} |",
        f"| list and `os.stat` every file, as validation does "
        f"({1e6 * big['stat_s_per_file']:.1f} µs "
        f"per file, measured on {info['files']} files, times {big['files']:,}) "
        f"| {big['stat_s_for_all']:.2f} |",
        f"| plan: previous table, take the results, update the table "
        f"({big['plan_puts']:,} archives to put) | {big['plan_s']:.2f} |",
        f"| **stat, load, look up and plan** | **{total:.2f}** |",
        "",
        "The lookup takes the keys of validation's listing;"
        " the changed files and as many new ones count as scanned and altered.",
        "",
    ]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "update.md").write_text("\n".join(lines))
    records = {
        "cases": [
            {
                "case": case[0],
                "num_workers": case[1],
                "seconds": times[case],
                "stages": stages[case],
            }
            for case in _cases()
        ],
        "million": big,
    }
    (out / "update.json").write_text(json.dumps(records, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
