"""Benchmark audb_publish.publish against upstream audb.publish and the hardware floor.

See benchmarks/README.md. Examples::

    python benchmarks/run.py --quick                    # CI smoke test, under 2 minutes
    python benchmarks/run.py                            # everything, full scale
    python benchmarks/run.py --shapes wav --backends fs --workers 1,4 --runs 1
    python benchmarks/run.py --bandwidth 50,200 --shapes wav --backends s3
    python benchmarks/run.py --profile                  # docs/benchmarks/profile.md

Exits with a non-zero code if any measurement failed
or if two publish runs of the same input wrote different dependency tables.

"""

import argparse
import dataclasses
import json
import os
from pathlib import Path
import shlex
import shutil
import signal
import subprocess
import sys
import time

import generate
import report
import targets

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
WORK_ROOT = HERE / "work"
SHAPES = (
    "wav",
    "small",
    "flac",
    "tables",
    "attachments",
    "incremental",
    "bigtable",
)
IMPLS = ("upstream", "ours", "pipeline", "processes", "dask", "floor")
QUICK = {  # a smoke test of the harness, under 2 minutes
    "scale": 0.02,
    "runs": 1,
    "workers": "2",
    "shapes": "wav,tables,incremental,bigtable",
    "backends": "fs,s3",
    "impls": "upstream,ours,floor",
}
DEFAULTS = {
    "scale": 1.0,
    "runs": 3,
    "workers": "1,2,4,8,16",
    "shapes": ",".join(SHAPES),
    "backends": "fs,s3",
}
PROFILE_DEFAULTS = {**DEFAULTS, "runs": 1, "workers": "1"}
INCREMENTAL_FRACTION = 0.01
VERSION = {"incremental": "1.1.0"}


@dataclasses.dataclass
class Source:
    """What a measurement starts from: a database folder and maybe a repository."""

    root: str
    repo: dict | None = None  # prepared repository to clone (incremental)
    repo_bytes: int = 0
    files: list[str] | None = None  # files the floor copies (None: all)


# ---------------------------------------------------------------------------
# command line


def parse_args(argv=None) -> argparse.Namespace:
    """Parse the command line and fill in mode-dependent defaults."""
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Options left out take the defaults of the mode "
        f"(full: {DEFAULTS}, --quick: {QUICK}, --profile: {PROFILE_DEFAULTS}).",
    )
    add = parser.add_argument
    add("--shapes", help=f"comma-separated subset of {','.join(SHAPES)}")
    add("--backends", help="comma-separated subset of fs,s3")
    add("--workers", help="comma-separated num_workers values")
    add("--impls", help=f"comma-separated subset of {','.join(IMPLS)}")
    add("--runs", type=int, help="runs per measurement; the median is reported")
    add("--scale", type=float, help="database size, 1.0 = the sizes in the README")
    add("--seed", type=int, default=1, help="seed of the database generator")
    add("--bandwidth", default="", help="MB/s of throttled S3 targets, e.g. 50,200")
    add("--quick", action="store_true", help="small smoke test (CI)")
    add("--profile", action="store_true", help="write a per-stage breakdown instead")
    add("--out", type=Path, help="output folder (default docs/benchmarks, quick: work)")
    add("--timeout", type=float, help="seconds per measurement (3600, quick: 600)")
    add("--floor-threads", type=int, default=8, help="upload threads of the S3 floor")
    add("--keep-work", action="store_true", help="keep benchmarks/work/<session>")
    add(
        "--merge",
        action="store_true",
        help="add to the results in --out instead of replacing them "
        "(re-measured shape/backend pairs are replaced)",
    )
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else PROFILE_DEFAULTS if args.profile else DEFAULTS
    if args.profile:
        defaults = {**defaults, "workers": PROFILE_DEFAULTS["workers"]}
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.timeout is None:
        args.timeout = 600 if args.quick else 3600
    if args.impls is None:
        args.impls = "upstream,ours" if args.profile else ",".join(IMPLS)
    args.shapes = _choices(args.shapes, SHAPES, "shape")
    args.backends = _choices(args.backends, ("fs", "s3"), "backend")
    args.impls = _choices(args.impls, IMPLS, "impl")
    args.workers = [int(w) for w in args.workers.split(",")]
    args.bandwidth = [float(b) for b in args.bandwidth.split(",") if b]
    if args.out is None:
        args.out = (
            WORK_ROOT / "quick-results"
            if args.quick
            else REPO_ROOT / "docs" / "benchmarks"
        )
    return args


def _choices(text: str, allowed: tuple, what: str) -> list[str]:
    values = [v for v in text.split(",") if v]
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise SystemExit(f"Unknown {what}(s) {unknown}, choose from {list(allowed)}")
    return values


def cases(impls: list[str], workers: list[int]) -> list[tuple[str, int]]:
    """``(impl, num_workers)`` pairs measured per shape and backend.

    The floor has no num_workers (it always uses all cores), marked by 0.

    """
    out = [(impl, w) for impl in impls if impl != "floor" for w in workers]
    if "floor" in impls:
        out.append(("floor", 0))
    return out


# ---------------------------------------------------------------------------
# session: work folders


class Session:
    """Work folder of one benchmark invocation."""

    def __init__(self, args):
        self.args = args
        self.folder = (
            WORK_ROOT / f"session-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        )
        self.folder.mkdir(parents=True)
        self._count = 0

    def new_folder(self, label: str) -> Path:
        """Fresh folder for one measurement."""
        self._count += 1
        folder = self.folder / f"{self._count:04d}-{label}"
        folder.mkdir()
        return folder

    def close(self):
        """Remove the work folder unless asked to keep it."""
        if not self.args.keep_work:
            shutil.rmtree(self.folder, ignore_errors=True)


def copy_tree(source: str, destination: Path):
    """Copy a folder with ``cp -a`` (reflinks where the file system has them)."""
    subprocess.run(["cp", "-a", "--reflink=auto", source, str(destination)], check=True)


# ---------------------------------------------------------------------------
# running one worker


def tree_rss(process) -> int:
    """Summed RSS of a psutil process and its descendants (bytes)."""
    import psutil

    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def wait_sampling(proc: subprocess.Popen, timeout: float) -> tuple:
    """Wait for ``proc``, sampling the RSS of its process tree meanwhile.

    Returns:
        ``(exit code, peak tree RSS in bytes, timed out)``

    """
    import psutil

    handle = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    peak, timed_out = 0, False
    while True:
        if proc.poll() is not None:
            return proc.returncode, peak, timed_out
        peak = max(peak, tree_rss(handle))
        if not timed_out and time.monotonic() > deadline:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's own process group
        time.sleep(0.1)


def run_worker(spec: dict, folder: Path, timeout: float) -> dict:
    """Run ``worker.py`` on ``spec`` in a fresh process and collect its result."""
    spec = {**spec, "result": str(folder / "result.json")}
    spec_path = folder / "spec.json"
    spec_path.write_text(json.dumps(spec))
    log_path = folder / "worker.log"
    os.sync()  # start every measurement without dirty pages of the previous one
    start = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "worker.py"), str(spec_path)],
            cwd=HERE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        code, peak, timed_out = wait_sampling(proc, timeout)
    result = {
        "ok": False,
        "error": f"worker exited with {code}",
        "seconds": None,
        "stages": [],
    }
    if Path(spec["result"]).exists():
        result.update(json.loads(Path(spec["result"]).read_text()))
    if timed_out:
        result.update(ok=False, error=f"timed out after {timeout:g} s")
    if not result["ok"]:
        tail = log_path.read_text(errors="replace").splitlines()[-30:]
        print("\n".join(["    | " + line for line in tail]), file=sys.stderr)
    result.update(
        process_seconds=time.perf_counter() - start,
        rss_mb=result["peak_rss_kib"] * 1024 / 1e6
        if "peak_rss_kib" in result
        else None,
        tree_rss_mb=peak / 1e6,
    )
    return result


# ---------------------------------------------------------------------------
# one measurement


def worker_spec(
    args, action: str, impl: str, workers: int, root: Path, repo: dict, shape: str
):
    """Spec of one worker run."""
    return {
        "action": action,
        "impl": impl,
        "workers": workers,
        "db_root": str(root),
        "version": VERSION.get(shape, "1.0.0"),
        "repository": repo,
        "cache_root": str(root.parent / "audb-cache"),
        "profile": args.profile,
        "cores": os.cpu_count() or 1,
        "floor_threads": args.floor_threads,
    }


def measure(
    session, shape, target, source: Source, impl, workers, run
) -> tuple[dict, object]:
    """Publish (or run the floor) once into a fresh repository.

    Returns:
        the record and the published dependency table (or ``None``)

    """
    args = session.args
    folder = session.new_folder(
        f"{shape}-{target.name.replace('/', '')}-{impl}-{workers}"
    )
    root = folder / "db"
    copy_tree(source.root, root)
    repo = target.clone(source.repo) if source.repo else target.new()
    # write the copies out now, so their writeback does not slow down
    # whatever is measured next, whichever implementation that is
    os.sync()
    try:
        action = "floor" if impl == "floor" else "publish"
        spec = worker_spec(args, action, impl, workers, root, repo, shape)
        spec["files"] = source.files
        result = run_worker(spec, folder, args.timeout)
        written = target.size(repo) - source.repo_bytes
    finally:
        target.delete(repo)
    deps = None
    if result["ok"] and impl != "floor":
        import pandas as pd

        deps = pd.read_parquet(root / "db.parquet")
    if not args.keep_work:
        shutil.rmtree(folder, ignore_errors=True)
    record = {
        "shape": shape,
        "backend": target.name,
        "impl": impl,
        "workers": workers,
        "run": run,
        "ok": result["ok"],
        "error": result.get("error"),
        "seconds": result["seconds"],
        "process_seconds": result["process_seconds"],
        "rss_mb": result["rss_mb"],
        "tree_rss_mb": result["tree_rss_mb"],
        "written_bytes": written,
        "stages": result.get("stages", []),
    }
    return record, deps


# ---------------------------------------------------------------------------
# sources


def prepare_source(session, shape: str, target, info: dict) -> Source:
    """Database folder (and repository) every measurement of a shape starts from."""
    if shape != "incremental":
        return Source(root=info["root"])
    folder = session.folder / f"incremental-{target.name.replace('/', '')}"
    folder.mkdir()
    base = folder / "base"
    copy_tree(info["root"], base)
    repo = target.new()
    spec = worker_spec(session.args, "prepare", "upstream", 4, base, repo, shape)
    spec.update(
        target_root=str(folder / "db"),
        fraction=INCREMENTAL_FRACTION,
        seed=session.args.seed,
    )
    print(f"  preparing incremental 1.0.0 on {target.name} ...", flush=True)
    result = run_worker(spec, session.new_folder("prepare"), session.args.timeout)
    if not result["ok"]:
        raise RuntimeError(f"Preparing the incremental shape failed: {result['error']}")
    shutil.rmtree(base)
    files = result["changed"] + ["db.yaml", "db.parquet"]
    return Source(str(folder / "db"), repo, target.size(repo), files)


def release_source(source: Source, target):
    """Delete a prepared repository."""
    if source.repo:
        target.delete(source.repo)


# ---------------------------------------------------------------------------
# dependency table comparison


class DepsChecker:
    """Compare every published dependency table with the first one per shape."""

    def __init__(self):
        self.reference = {}
        self.problems = []

    def check(self, record: dict, deps):
        """Remember the first table of a shape, compare the others to it."""
        import pandas as pd

        if deps is None:
            return
        label = f"{record['impl']} {record['backend']} num_workers={record['workers']}"
        shape = record["shape"]
        if shape not in self.reference:
            self.reference[shape] = (label, deps)
            return
        ref_label, ref = self.reference[shape]
        try:
            pd.testing.assert_frame_equal(deps, ref, check_exact=True)
        except AssertionError as error:
            text = (
                f"{shape}: dependency table of {label} differs from {ref_label}: "
                f"{str(error).strip()[:800]}"
            )
            print("  MISMATCH " + text, file=sys.stderr)
            self.problems.append({"shape": shape, "text": text})


# ---------------------------------------------------------------------------
# main loop


def label(record: dict) -> str:
    """Fixed-width name of a measurement."""
    workers = record["workers"] or "all"
    return (
        f"{record['shape']:<11} {record['backend']:<10} {record['impl']:<8} "
        f"w={workers:<3} run {record['run'] + 1}"
    )


def describe(record: dict) -> str:
    """One progress line."""
    if not record["ok"]:
        return f"FAILED: {record['error']}"
    written = (record["written_bytes"] or 0) / 1e6
    return (
        f"{record['seconds']:.2f} s, rss {record['rss_mb']:.0f} MB "
        f"(tree {record['tree_rss_mb']:.0f} MB), {written:.1f} MB written"
    )


def failure_record(shape: str, backend: str, impl: str, error: str) -> dict:
    """Record of something that failed before a measurement could start."""
    return {
        "shape": shape,
        "backend": backend,
        "impl": impl,
        "workers": 0,
        "run": 0,
        "ok": False,
        "error": error,
        "seconds": None,
        "process_seconds": None,
        "rss_mb": None,
        "tree_rss_mb": None,
        "written_bytes": None,
        "stages": [],
    }


def run_shape(session, shape, target, info, checker, records):
    """All runs of all cases of one shape on one target."""
    args = session.args
    try:
        source = prepare_source(session, shape, target, info)
    except Exception as error:  # noqa: BLE001 - recorded as a failed measurement
        records.append(failure_record(shape, target.name, "prepare", str(error)))
        print(f"  {shape} {target.name}: FAILED to prepare: {error}", flush=True)
        return
    try:
        todo = cases(args.impls, args.workers)
        for run in range(args.runs):
            for impl, workers in todo:
                record, deps = measure(
                    session, shape, target, source, impl, workers, run
                )
                checker.check(record, deps)
                records.append(record)
                print(f"  {label(record)}: {describe(record)}", flush=True)
    finally:
        release_source(source, target)


def generate_all(args) -> dict:
    """Generate (or load from the cache) every needed database."""
    datasets = {}
    for shape in args.shapes:
        start = time.perf_counter()
        info = generate.ensure(shape, args.scale, args.seed)
        base = generate.BASE_SHAPE.get(shape, shape)
        size = info["bytes"] / 1e6
        print(
            f"database {shape:<11} ({base}) {info['files']:>6} files {size:9.1f} MB, "
            f"zlib-6 {info['zlib6_ratio']:.3f}, generated in "
            f"{info['generation_seconds']} s, ready after "
            f"{time.perf_counter() - start:.1f} s",
            flush=True,
        )
        datasets[shape] = info
    return datasets


def merge_state(path: Path, state: dict) -> dict:
    """Combine with the records of earlier invocations (``--merge``).

    Records of a (shape, backend) pair measured now replace earlier ones.

    """
    if not path.exists():
        return state
    old = json.loads(path.read_text())
    if (old["scale"], old["seed"]) != (state["scale"], state["seed"]):
        raise SystemExit(
            f"Cannot merge with {path}: it has scale {old['scale']} and seed "
            f"{old['seed']}, this run {state['scale']} and {state['seed']}."
        )
    pairs = {(r["shape"], r["backend"]) for r in state["records"]}
    shapes = {shape for shape, _ in pairs}
    return {
        **state,
        "records": [
            r for r in old["records"] if (r["shape"], r["backend"]) not in pairs
        ]
        + state["records"],
        "datasets": {**old["datasets"], **state["datasets"]},
        "problems": [p for p in old["problems"] if p["shape"] not in shapes]
        + state["problems"],
        "commands": old["commands"] + state["commands"],
        "runs": max(old["runs"], state["runs"]),
    }


def write_outputs(args, records, datasets, problems) -> list[Path]:
    """CSV, Markdown and plot (or the profile) into ``args.out``."""
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/run.py " + shlex.join(sys.argv[1:])
    state = {
        "records": records,
        "datasets": datasets,
        "problems": problems,
        "commands": [f"`{command}` ({report.machine_info()['date']})"],
        "scale": args.scale,
        "runs": args.runs,
        "seed": args.seed,
    }
    path = args.out / ("profile-records.json" if args.profile else "records.json")
    if args.merge:
        state = merge_state(path, state)
    path.write_text(json.dumps(state, indent=1))
    meta = {**state, "machine": report.machine_info()}
    if args.profile:
        report.write_profile(state["records"], meta, args.out / "profile.md")
        return [args.out / "profile.md", path]
    rows = report.aggregate(state["records"])
    report.write_csv(rows, args.out / "results.csv")
    report.plot(rows, args.out / "results.png")
    meta["plot"] = "results.png"
    title = "audb_publish benchmark" + (" (quick smoke test)" if args.quick else "")
    report.write_markdown(rows, meta, args.out / "results.md", title=title)
    names = ("results.md", "results.csv", "results.png")
    return [args.out / name for name in names] + [path]


def main(argv=None) -> int:
    """Run the benchmark, write the outputs, return the exit code."""
    args = parse_args(argv)
    start = time.perf_counter()
    datasets = generate_all(args)
    session = Session(args)
    records, checker = [], DepsChecker()
    try:
        with targets.open_targets(
            args.backends, args.bandwidth, session.folder
        ) as all_targets:
            for shape in args.shapes:
                for target in all_targets:
                    run_shape(session, shape, target, datasets[shape], checker, records)
    finally:
        session.close()
    failures = [r for r in records if not r["ok"]]
    problems = checker.problems + [
        {"shape": r["shape"], "text": f"{label(r)} failed: {r['error']}"}
        for r in failures
    ]
    outputs = write_outputs(args, records, datasets, problems)
    print(f"\n{len(records)} measurements in {time.perf_counter() - start:.0f} s")
    print("wrote " + ", ".join(str(p) for p in outputs))
    if problems:
        print(f"\n{len(problems)} PROBLEM(S):", file=sys.stderr)
        print("\n".join("  " + p["text"] for p in problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
