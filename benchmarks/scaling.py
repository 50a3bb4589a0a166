"""What decides the scaling: the share of job time that holds the GIL (issue 13).

Usage::

    python benchmarks/scaling.py [--scale 0.1] [--runs 3] [--shapes wav,small,flac]
        [--out docs/benchmarks/scaling.md]

Per shape, one publish with ``num_workers=1`` (threads) runs under ``py-spy``
three times, sampling at 250 Hz:

* with ``--idle``: every sample of the worker thread,
  so ``J``, the wall time of its jobs;
* with ``--gil``: the samples in which the worker thread holds the GIL, ``G``;
* as is: the samples in which the calling thread runs, ``S``,
  the serial part (validation, planning, commit) outside the jobs.

The sampled seconds are scaled so that ``S + J``
equals the median wall time of a publish with 1 worker.
The model: on ``k = min(n, cores)`` cores,

* threads: ``T(n) = S + max(G, J / k)``:
  the jobs' GIL-holding parts run one at a time,
  everything else (read, write, MD5, deflate, waiting) in parallel;
* processes: ``T(n) = S + J / k``;

both capped by the rate of the disk
(the floor measured in ``docs/benchmarks/workers-fs``).
The same script then measures ``T`` with 1 and 2 workers,
threads and processes, medians of ``--runs``,
to check what the model predicts for 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import shutil
import statistics
import sys

import generate
import report
import sample
from sample import publish

RATE = sample.RATE
WORKERS = (4, 8, 16, 64)


def sampled(src: str, flags: list[str]) -> dict:
    r"""Samples of the jobs and of the calling thread of one publish, 1 worker."""
    raw = sample.record([__file__, "--publish", src], flags)
    counts = {"jobs": 0, "caller": 0}
    with open(raw) as fp:
        for line in fp:
            stack, n = line.rsplit(" ", 1)
            if "Scheduler._run" in stack:
                counts["jobs"] += int(n)
            elif "audb_publish/publish.py" in stack:
                counts["caller"] += int(n)
    shutil.rmtree(os.path.dirname(raw))
    return counts


def shares(src: str) -> dict:
    r"""``S``, ``G`` and ``J`` in seconds of one publish, see the module."""
    idle = sampled(src, ["--idle"])
    gil = sampled(src, ["--gil"])
    active = sampled(src, [])
    jobs = idle["jobs"] / RATE
    return {
        "J": jobs,
        "G": gil["jobs"] / RATE,
        "S": active["caller"] / RATE,
        "gil_share": gil["jobs"] / idle["jobs"],
    }


def model(s: float, g: float, j: float, n: int, cores: int, floor: float) -> dict:
    r"""Seconds the model predicts for threads and processes."""
    k = min(n, cores)
    threads = max(s + max(g, j / k), floor)
    processes = max(s + j / k, floor)
    return {"threads": threads, "processes": processes}


def main() -> None:
    if sys.argv[1] == "--publish":
        publish(sys.argv[2], 1)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default="wav,small,flac")
    parser.add_argument("--out", default="docs/benchmarks/scaling-measured.md")
    args = parser.parse_args()
    records = {}
    for shape in args.shapes.split(","):
        info = generate.ensure(shape, args.scale, 1)
        src = info["root"]
        measured = {}
        for scheduler in ("threads", "processes"):
            for workers in (1, 2):
                runs = [publish(src, workers, scheduler) for _ in range(args.runs)]
                measured[f"{scheduler} {workers}"] = statistics.median(runs)
        part = shares(src)
        records[shape] = {"files": info["files"], **part, **measured}
        print(json.dumps({shape: records[shape]}), flush=True)
    lines = [
        "# Scaling: measured shares and 2-worker checks",
        "",
        *[f"- **{key}**: {value}" for key, value in report.machine_info().items()],
        f"- **command**: `python {' '.join(sys.argv)}`",
        "",
        "| shape | files | T threads 1 | S caller | J jobs | G jobs holding the GIL "
        "| G / J | predicted T threads 2 | measured | predicted T processes 2 "
        "| measured |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, r in records.items():
        # scale the sampled seconds to the median 1-worker run
        factor = r["threads 1"] / (r["S"] + r["J"])
        s, g, j = r["S"] * factor, r["G"] * factor, r["J"] * factor
        two = model(s, g, j, 2, os.cpu_count() or 1, 0.0)
        r.update(S_scaled=s, G_scaled=g, J_scaled=j, predicted_2=two)
        lines.append(
            f"| {shape} | {r['files']} | {r['threads 1']:.2f} | {s:.2f} | {j:.2f} "
            f"| {g:.2f} | {r['gil_share']:.0%} | {two['threads']:.2f} "
            f"| {r['threads 2']:.2f} | {two['processes']:.2f} "
            f"| {r['processes 2']:.2f} |"
        )
    lines += [
        "",
        "## Projection on machines with n cores (speedup over 1 worker)",
        "",
        "Not capped by disk or network rates; see scaling.md for the caps.",
        "",
        "| shape | "
        + " | ".join(f"threads {n} | processes {n}" for n in WORKERS)
        + " |",
        "|---|" + "---|---|" * len(WORKERS),
    ]
    for shape, r in records.items():
        s, g, j = r["S_scaled"], r["G_scaled"], r["J_scaled"]
        cells = []
        for n in WORKERS:
            t = model(s, g, j, n, n, 0.0)
            cells.append(
                f"{r['threads 1'] / t['threads']:.1f} "
                f"| {r['threads 1'] / t['processes']:.1f}"
            )
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    lines.append("")
    Path(args.out).write_text("\n".join(lines))
    Path(args.out).with_suffix(".json").write_text(json.dumps(records, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
