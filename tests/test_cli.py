"""The command line and the patch."""

from __future__ import annotations

import os
import subprocess
import sys

import audb
import audb.core.publish
import audformat
import pytest

import audb_publish
from audb_publish import cli
from audb_publish.patching import _ORIGINAL

from conftest import only_repository
from conftest import write_audio


def small_db(root):
    write_audio(os.path.join(root, "a.wav"), 0.1, 16000, 1, "PCM_16", 0)
    db = audformat.Database("cli")
    db["files"] = audformat.Table(audformat.filewise_index(["a.wav"]))
    db.save(root)


def test_import_patches_nothing():
    code = "import audb, audb_publish; print(audb.publish is audb.core.publish.publish)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True"
    assert audb.publish is _ORIGINAL or audb_publish.is_patched()


def test_patch_unpatch():
    assert not audb_publish.is_patched()
    audb_publish.patch()
    try:
        assert audb.publish is audb_publish.publish
        assert audb.core.publish.publish is audb_publish.publish
    finally:
        audb_publish.unpatch()
    assert audb.publish is _ORIGINAL
    assert audb.core.publish.publish is _ORIGINAL


def test_patched_with_defaults():
    with audb_publish.patched(pipeline=True):
        assert audb_publish.is_patched()
        assert audb.publish.keywords == {"pipeline": True}
        assert audb.publish.__doc__ == audb_publish.publish.__doc__
    assert not audb_publish.is_patched()
    with pytest.raises(TypeError, match="unexpected keyword arguments: \\['speed'\\]"):
        audb_publish.patch(speed=11)
    assert not audb_publish.is_patched()
    with pytest.raises(Injected):
        with audb_publish.patched():
            raise Injected()
    assert not audb_publish.is_patched()


class Injected(Exception):
    pass


@pytest.fixture
def repository(repositories, tmp_path):
    repository = repositories.new("file-system")
    with only_repository(repository, str(tmp_path / "cache")):
        yield repository


def test_publish_command(repository, tmp_path, capsys):
    root = str(tmp_path / "db")
    small_db(root)
    args = [repository.name, repository.host, repository.backend]
    code = cli.main(
        [
            "publish",
            root,
            "1.0.0",
            "--repository",
            *args,
            "--previous-version",
            "none",
            "--num-workers",
            "2",
            "--pipeline",
            "--compression",
            "2",
            "--quiet",
        ]
    )
    assert code == 0
    assert "published 1.0.0: 2 files" in capsys.readouterr().out
    assert audb.versions("cli") == ["1.0.0"]
    # a second time: one-line error, exit code 1
    code = cli.main(["publish", root, "1.0.0", "--repository", *args, "--quiet"])
    assert code == 1
    err = capsys.readouterr().err
    assert (
        err
        == "audb-publish: error: A version '1.0.0' already exists for database 'cli'.\n"
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["publish", "/no/such/folder", "1.0.0"], "is not a folder"),
        (["publish", ".", "1.0.0", "--num-workers", "0"], "must be a positive integer"),
        (["publish", ".", "1.0.0", "--num-workers", "x"], "must be a positive integer"),
        (["publish", ".", "1.0.0", "--repository", "a", "b"], "expected 3 arguments"),
        (["run", "/no/such/script.py"], "not found"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments(argv, message, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    assert code in (1, 2)
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 or err.startswith("usage")


def test_unknown_backend(tmp_path, capsys):
    small_db(str(tmp_path))
    code = cli.main(
        ["publish", str(tmp_path), "1.0.0", "--repository", "r", "h", "nope", "--quiet"]
    )
    assert code == 1
    assert (
        capsys.readouterr().err
        == "audb-publish: error: 'nope' is not a registered backend\n"
    )


def test_run_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import sys, audb, audb_publish\n"
        "print(audb.publish is audb_publish.publish, sys.argv[1:])\n"
        "sys.exit(int(sys.argv[1]))\n"
    )
    for code in ["0", "3"]:
        out = subprocess.run(
            [sys.executable, "-m", "audb_publish", "run", str(script), code],
            capture_output=True,
            text=True,
        )
        assert out.returncode == int(code)
        assert out.stdout.strip() == f"True ['{code}']"


def test_run_script_in_process(tmp_path, capsys):
    script = tmp_path / "script.py"
    script.write_text(
        "import audb, audb_publish\n"
        "print('patched', audb.publish is audb_publish.publish)\n"
    )
    assert cli.main(["run", str(script)]) == 0
    assert capsys.readouterr().out == "patched True\n"
    assert not audb_publish.is_patched()
    script.write_text("import sys\nsys.exit('message')\n")
    assert cli.main(["run", str(script)]) == 1
    assert not audb_publish.is_patched()


def test_console_script_is_installed():
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "audb-publish"), "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert "publish" in out.stdout and "run" in out.stdout
