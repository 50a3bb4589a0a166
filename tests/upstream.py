"""Run audb's own publish tests, with or without :func:`audb_publish.patch`.

The tests are taken from the sdist of the *installed* audb version,
downloaded from the package index with pip at test time
and cached (never committed) in
``$AUDB_PUBLISH_UPSTREAM_CACHE``,
by default ``<system temp dir>/audb-publish-upstream``,
in one folder per audb version,
so repeated runs don't download again.

Only ``tests/`` and ``pyproject.toml`` are extracted:
the sdist's ``audb/`` package is left out,
so the tests import the installed audb,
which is the one :func:`audb_publish.patch` replaces ``publish`` in.

The tests run in a subprocess
with the sdist's ``pyproject.toml`` as pytest configuration
(its ``addopts``, which ask for 100 % coverage of audb, are dropped),
its ``tests/conftest.py`` as the only conftest,
and the plugin ``upstream_plugin`` (next to this file),
which patches :func:`audb.publish` (or, for a baseline run, checks it is not)
and can set ``pytest.NUM_WORKERS`` of the upstream tests.

Command line, e.g. to find what fails for upstream itself::

    python tests/upstream.py --unpatched
    python tests/upstream.py --defaults '{"pipeline": true}' --num-workers 1

"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import importlib.metadata
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree

import filelock

HERE = pathlib.Path(__file__).resolve().parent
PLUGIN = "upstream_plugin"
PLUGIN_FILE = HERE / f"{PLUGIN}.py"

TEST_FILES = (
    "tests/test_publish.py",
    "tests/test_publish_table.py",
    "tests/test_attachments.py",
)

# Environment variables read here or by the plugin
ENV_CACHE = "AUDB_PUBLISH_UPSTREAM_CACHE"
ENV_PATCH = "AUDB_PUBLISH_UPSTREAM_PATCH"  # "0": baseline, upstream unpatched
ENV_DEFAULTS = "AUDB_PUBLISH_PATCH_DEFAULTS"  # JSON object, e.g. {"pipeline": true}
ENV_NUM_WORKERS = "AUDB_PUBLISH_UPSTREAM_NUM_WORKERS"  # pytest.NUM_WORKERS
ENV_STATS = "AUDB_PUBLISH_UPSTREAM_STATS"  # JSON file the plugin writes
ENV_ARGS = "AUDB_PUBLISH_UPSTREAM_ARGS"  # extra pytest args, e.g. "-k table"

FAILED = ("failed", "error")


def installed_version() -> str:
    return importlib.metadata.version("audb")


def cache_root() -> pathlib.Path:
    path = os.environ.get(ENV_CACHE)
    if path:
        return pathlib.Path(path).expanduser().resolve()
    return pathlib.Path(tempfile.gettempdir()) / "audb-publish-upstream"


def fetch(version: str | None = None, cache: os.PathLike | None = None) -> pathlib.Path:
    """Download and extract the audb sdist, return its ``tests/`` folder.

    Nothing is downloaded if the version is already in the cache.

    """
    version = version or installed_version()
    cache = pathlib.Path(cache) if cache is not None else cache_root()
    target = cache / f"audb-{version}"
    if (target / "tests" / "conftest.py").exists():
        return target / "tests"
    cache.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(cache / f".audb-{version}.lock"), timeout=900):
        if (target / "tests" / "conftest.py").exists():
            return target / "tests"
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            tmp = pathlib.Path(tmp)
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "--disable-pip-version-check",
                "--dest",
                str(tmp / "sdist"),
                f"audb=={version}",
            ]
            proc = subprocess.run(
                command, capture_output=True, text=True, timeout=900, check=False
            )
            sdists = sorted((tmp / "sdist").glob("audb-*.tar.gz"))
            if proc.returncode != 0 or len(sdists) != 1:
                raise RuntimeError(
                    f"could not download the sdist of audb {version}:\n"
                    f"$ {shlex.join(command)}\n{proc.stdout}\n{proc.stderr}"
                )
            extracted = tmp / "extracted"
            _extract(sdists[0], extracted)
            if not (extracted / "tests" / "conftest.py").exists():
                raise RuntimeError(f"{sdists[0].name} has no tests/conftest.py")
            shutil.rmtree(target, ignore_errors=True)
            os.replace(extracted, target)
    return target / "tests"


def _extract(sdist: pathlib.Path, destination: pathlib.Path) -> None:
    """Extract ``tests/`` and ``pyproject.toml`` of the sdist, without top folder."""
    with tarfile.open(sdist) as tar:
        members = []
        for member in tar.getmembers():
            top, _, relative = member.name.partition("/")
            if not (relative.startswith("tests/") or relative == "pyproject.toml"):
                continue
            if not (member.isfile() or member.isdir()):
                continue
            member.name = relative
            members.append(member)
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(destination, members=members, **kwargs)


@dataclasses.dataclass
class Result:
    """Outcome of one run of the upstream tests."""

    command: list[str]
    env: dict[str, str]
    returncode: int
    output: str
    duration: float
    outcomes: dict[str, str]  # node id -> passed/failed/error/skipped/xfailed
    messages: dict[str, str]  # node id -> first line of failure/error message
    stats: dict  # written by the plugin
    log: pathlib.Path  # full output

    @property
    def failed(self) -> list[str]:
        return sorted(n for n, o in self.outcomes.items() if o in FAILED)

    def counts(self) -> dict[str, int]:
        return dict(collections.Counter(self.outcomes.values()))

    def tail(self, lines: int = 100) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])

    def describe(self, nodeids=None, *, lines: int = 100) -> str:
        """Readable report: command, counts, given node ids, output tail."""
        nodeids = self.failed if nodeids is None else nodeids
        text = [
            f"$ {' '.join(f'{k}={shlex.quote(v)}' for k, v in self.env.items())} "
            f"{shlex.join(self.command)}",
            f"exit code {self.returncode}, {self.duration:.1f} s, {self.counts()}",
            f"plugin stats: {self.stats}",
            f"full output: {self.log}",
        ]
        for nodeid in nodeids:
            message = self.messages.get(nodeid, "")
            outcome = self.outcomes.get(nodeid, "not run")
            text.append(f"  {outcome.upper()} {nodeid}  {message}".rstrip())
        text.append(f"----- last {lines} lines of output -----")
        text.append(self.tail(lines))
        return "\n".join(text)


def run(
    *,
    patch: bool = True,
    defaults: dict | None = None,
    num_workers: int | None = None,
    files: tuple[str, ...] = TEST_FILES,
    extra_args: tuple[str, ...] | None = None,
    workdir: os.PathLike | None = None,
    timeout: float = 3600,
) -> Result:
    """Run upstream test files in a subprocess and collect per-test outcomes.

    Args:
        patch: activate :func:`audb_publish.patch` (``False``: baseline run
            checking that :func:`audb.publish` is upstream's)
        defaults: keyword defaults given to :func:`audb_publish.patch`
        num_workers: value for ``pytest.NUM_WORKERS``
            of the upstream tests (``None``: upstream's choice)
        files: test files relative to the sdist root
        extra_args: further pytest arguments,
            by default taken from ``$AUDB_PUBLISH_UPSTREAM_ARGS``
        workdir: folder for junit xml, basetemp, pytest cache, plugin copy
            (default: a new temporary folder)
        timeout: seconds before the subprocess is killed

    """
    root = fetch().parent
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="audb-publish-upstream-run-")
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # The plugin's folder goes on PYTHONPATH:
    # use a copy so none of our own test modules can shadow upstream's.
    plugin_dir = workdir / "plugin"
    plugin_dir.mkdir(exist_ok=True)
    shutil.copy2(PLUGIN_FILE, plugin_dir / PLUGIN_FILE.name)
    junit = workdir / "junit.xml"
    stats_file = workdir / "stats.json"
    for path in (junit, stats_file):
        path.unlink(missing_ok=True)
    if extra_args is None:
        extra_args = tuple(shlex.split(os.environ.get(ENV_ARGS, "")))

    env_changes = {
        ENV_PATCH: "1" if patch else "0",
        ENV_DEFAULTS: json.dumps(defaults or {}),
        ENV_STATS: str(stats_file),
        "PYTHONPATH": os.pathsep.join(
            [
                str(plugin_dir),
                *_project_path(),
                *filter(None, [os.environ.get("PYTHONPATH")]),
            ]
        ),
    }
    if num_workers is not None:
        env_changes[ENV_NUM_WORKERS] = str(num_workers)
    env = dict(os.environ)
    env.pop(ENV_NUM_WORKERS, None)
    env.pop("PYTEST_ADDOPTS", None)  # options of the outer run aren't meant here
    env.update(env_changes)

    command = [
        sys.executable,
        "-m",
        "pytest",
        *files,
        "--rootdir",
        str(root),
        "-c",
        str(root / "pyproject.toml"),
        "--confcutdir",
        str(root),
        "-o",
        "addopts=",  # upstream's: --cov=audb --cov-fail-under=100 ...
        "-o",
        f"cache_dir={workdir / '.pytest_cache'}",
        "-p",
        PLUGIN,
        "--basetemp",
        str(workdir / "basetemp"),
        "--junitxml",
        str(junit),
        "-rfE",
        "--tb=short",
        "--disable-warnings",
        "--color=no",
        *extra_args,
    ]
    start = time.monotonic()
    try:
        proc = subprocess.run(
            command,
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        returncode, output = proc.returncode, proc.stdout
    except subprocess.TimeoutExpired as ex:
        returncode = -1
        output = ex.stdout or ""
        if isinstance(output, bytes):
            output = output.decode(errors="replace")
        output += f"\n!!! timed out after {timeout} s"
    duration = time.monotonic() - start
    log = workdir / "output.log"
    log.write_text(output)

    outcomes, messages = parse_junit(junit, files) if junit.exists() else ({}, {})
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    return Result(
        command=command,
        env=env_changes,
        returncode=returncode,
        output=output,
        duration=duration,
        outcomes=outcomes,
        messages=messages,
        stats=stats,
        log=log,
    )


def _project_path() -> list[str]:
    """The checkout holding these tests, to import its ``audb_publish``.

    This tests the source next to this file
    also where the installed ``audb_publish`` resolves elsewhere,
    e.g. as an empty namespace package
    when an editable install was made before ``__init__.py`` existed.

    """
    root = HERE.parent
    return [str(root)] if (root / "audb_publish" / "__init__.py").exists() else []


_SEVERITY = ("passed", "skipped", "xfailed", "failed", "error")


def parse_junit(
    path: os.PathLike, files: tuple[str, ...] = TEST_FILES
) -> tuple[dict[str, str], dict[str, str]]:
    """Map pytest node ids to outcome and first message line from a junit xml."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        nodeid = _nodeid(case.get("classname", ""), case.get("name", ""), files)
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed" if child.tag == "failure" else "error"
                message = child.get("message", "")
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                outcome = "xfailed" if xfail else "skipped"
                message = child.get("message", "")
        previous = outcomes.get(nodeid, "passed")
        if _SEVERITY.index(outcome) >= _SEVERITY.index(previous):
            outcomes[nodeid] = outcome
            if message:
                messages[nodeid] = message.strip().splitlines()[0][:300]
    return outcomes, messages


def _nodeid(classname: str, name: str, files: tuple[str, ...]) -> str:
    # junit: classname "tests.test_publish[.Class]", name "test_x[param]"
    for file in sorted(files, key=len, reverse=True):
        module = file.removesuffix(".py").replace("/", ".")
        if classname == module:
            return f"{file}::{name}"
        if classname.startswith(module + "."):
            classes = classname[len(module) + 1 :].replace(".", "::")
            return f"{file}::{classes}::{name}"
    # e.g. a collection error: classname "", name "tests.test_publish"
    return f"{classname}::{name}" if classname else name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--unpatched", action="store_true", help="baseline: upstream audb.publish"
    )
    parser.add_argument("--defaults", default="{}", help="patch defaults as JSON")
    parser.add_argument("--num-workers", type=int, default=None)
    parser.add_argument("--fetch-only", action="store_true")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments")
    args = parser.parse_args(argv)
    if args.fetch_only:
        print(fetch())
        return 0
    result = run(
        patch=not args.unpatched,
        defaults=json.loads(args.defaults),
        num_workers=args.num_workers,
        extra_args=tuple(args.pytest_args) or None,
    )
    print(result.describe(lines=40))
    print(f"failed: {json.dumps(result.failed, indent=2)}")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
