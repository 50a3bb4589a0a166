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
* processes: ``T(n) = S + O + J / k``,
  with ``O`` the cost of starting the pool
  (processes minus threads at 1 worker).

The projection for more cores is not capped by disk or network rates;
``docs/benchmarks/scaling.md`` states the caps.
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


def model(s: float, g: float, j: float, o: float, n: int, cores: int) -> dict:
    r"""Seconds the model predicts for threads and processes.

    ``o`` is the cost of starting the process pool,
    measured as processes minus threads with 1 worker.
    """
    k = min(n, cores)
    return {"threads": s + max(g, j / k), "processes": s + o + j / k}


def measure(shapes: list[str], scale: float, runs: int) -> dict:
    r"""Shares and wall times of each shape."""
    records = {}
    for shape in shapes:
        info = generate.ensure(shape, scale, 1)
        src = info["root"]
        measured = {}
        for scheduler in ("threads", "processes"):
            for workers in (1, 2):
                times = [publish(src, workers, scheduler) for _ in range(runs)]
                measured[f"{scheduler} {workers}"] = statistics.median(times)
        records[shape] = {"files": info["files"], **shares(src), **measured}
        print(json.dumps({shape: records[shape]}), flush=True)
    return records


def render(records: dict, command: str) -> str:
    r"""The measured shares, the 2-worker check and the projection."""
    lines = [
        "# Scaling: measured shares and 2-worker checks",
        "",
        *[f"- **{key}**: {value}" for key, value in report.machine_info().items()],
        f"- **command**: `{command}`",
        "",
        "Seconds of one publish, medians; S, G, J sampled with py-spy at 1 worker "
        "and scaled so that S + J is the 1-worker wall time; "
        "O = processes minus threads at 1 worker.",
        "",
        "| shape | files | T threads 1 | S caller | J jobs | G holding the GIL "
        "| G / J | O | threads 2 predicted | measured | error "
        "| processes 2 predicted | measured | error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape, r in records.items():
        factor = r["threads 1"] / (r["S"] + r["J"])
        s, g, j = r["S"] * factor, r["G"] * factor, r["J"] * factor
        o = max(0.0, r["processes 1"] - r["threads 1"])
        two = model(s, g, j, o, 2, 2)
        r.update(S_s=s, G_s=g, J_s=j, O_s=o, predicted_2=two)
        errors = {
            kind: two[kind] / r[f"{kind} 2"] - 1 for kind in ("threads", "processes")
        }
        lines.append(
            f"| {shape} | {r['files']} | {r['threads 1']:.2f} | {s:.2f} | {j:.2f} "
            f"| {g:.2f} | {r['gil_share']:.0%} | {o:.2f} "
            f"| {two['threads']:.2f} | {r['threads 2']:.2f} | {errors['threads']:+.0%} "
            f"| {two['processes']:.2f} | {r['processes 2']:.2f} "
            f"| {errors['processes']:+.0%} |"
        )
    lines += [
        "",
        "## Projection on machines with n cores (speedup over threads at 1 worker)",
        "",
        "Not capped by disk or network rates; see scaling.md for the caps.",
        "",
        "| shape | "
        + " | ".join(f"threads {n} | processes {n}" for n in WORKERS)
        + " |",
        "|---|" + "---|---|" * len(WORKERS),
    ]
    for shape, r in records.items():
        cells = []
        for n in WORKERS:
            t = model(r["S_s"], r["G_s"], r["J_s"], r["O_s"], n, n)
            cells.append(
                f"{r['threads 1'] / t['threads']:.1f} "
                f"| {r['threads 1'] / t['processes']:.1f}"
            )
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1] == "--publish":
        publish(sys.argv[2], 1)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shapes", default="wav,small,flac")
    parser.add_argument("--out", default="docs/benchmarks/scaling-measured.md")
    parser.add_argument(
        "--render", metavar="JSON", help="only write the tables of earlier records"
    )
    args = parser.parse_args()
    command = f"python {' '.join(sys.argv)}"
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        records, command = saved["records"], saved["command"]
    else:
        records = measure(args.shapes.split(","), args.scale, args.runs)
    text = render(records, command)
    Path(args.out).write_text(text)
    saved = {"command": command, "records": records}
    Path(args.out).with_suffix(".json").write_text(json.dumps(saved, indent=2))
    print(text)


if __name__ == "__main__":
    main()
