"""Nothing is written outside its place: not into the home folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import small_db

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "examples", "publish_example.py"
)


def _environment(home: str, **variables: str) -> dict[str, str]:
    r"""This process's environment with an empty home folder and no audb roots."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDB_")}
    os.makedirs(home)
    return {**env, "HOME": home, **variables}


def _written(folder: str) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, folders, files in os.walk(folder)
        for name in folders + files
    )


def test_quick_start_example_writes_below_example_only(tmp_path):
    home = str(tmp_path / "home")
    out = subprocess.run(
        [
            sys.executable,
            os.path.abspath(EXAMPLE),
            "--files",
            "12",
            "--num-workers",
            "2",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_environment(home),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "Loaded it back with audb.load: 12 files" in out.stdout
    assert _written(home) == []
    assert sorted(os.listdir(tmp_path)) == ["example", "home"]
    assert sorted(os.listdir(tmp_path / "example")) == ["cache", "db", "repos"]
    assert os.path.isdir(tmp_path / "example" / "cache" / "audb-publish" / "checksums")


@pytest.mark.parametrize("command", ["plan", "publish"])
def test_command_line_writes_nothing_into_home(command, repositories, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    home = str(tmp_path / "home")
    cache = str(tmp_path / "cache")
    fields = [repository.name, repository.host, repository.backend]
    argv = [command, root, "1.0.0", "--repository", *fields]
    out = subprocess.run(
        [sys.executable, "-m", "audb_publish", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_environment(home, AUDB_CACHE_ROOT=cache),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert _written(home) == []
    if command == "publish":  # the checksum cache is below audb's cache root
        assert "audb-publish" in os.listdir(cache)
