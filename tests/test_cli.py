"""The command line and the patch."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import audb
import audb.core.publish
import audformat
import pytest

import audb_publish
from audb_publish import cli
from audb_publish.patching import _ORIGINAL

from helpers import Injected
from helpers import only_repository
from helpers import write_audio


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
        err == "audb-publish: error: RuntimeError: "
        "A version '1.0.0' already exists for database 'cli'.\n"
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
    assert capsys.readouterr().err == (
        "audb-publish: error: ValueError: 'nope' is not a registered backend; "
        "registered: file-system, minio, s3\n"
    )
    argv = ["verify", "db", "1.0.0", "--repository", "r", "h", "filesystem"]
    assert cli.main([*argv, "--quiet"]) == 1
    assert "registered: file-system, minio, s3" in capsys.readouterr().err


def test_a_folder_without_header_is_not_a_database(tmp_path, capsys):
    argv = ["publish", str(tmp_path), "1.0.0", "--repository", "r", "h", "file-system"]
    assert cli.main(argv) == 1
    assert capsys.readouterr().err == (
        f"audb-publish: error: FileNotFoundError: '{tmp_path}' "
        "is not an audformat database: "
        f"it has no db.yaml ({tmp_path / 'db.yaml'})\n"
    )
    # the same type as upstream
    with pytest.raises(FileNotFoundError, match="not an audformat database"):
        audb_publish.publish(str(tmp_path), "1.0.0", audb.Repository(*argv[-3:]))
    with pytest.raises(FileNotFoundError, match="db.yaml"):
        _ORIGINAL(str(tmp_path), "1.0.0", audb.Repository(*argv[-3:]))


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


NO_NETWORK = """
import socket, sys

def refuse(*args, **kwargs):
    with open(sys.argv[1], "a") as fp:
        fp.write(repr(args[:2]) + "\\n")
    raise OSError("no network in this test")

socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from audb_publish.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _offline_cli(tmp_path, *args):
    r"""Run the command line with audb's default configuration, no network."""
    env = {**os.environ, "HOME": str(tmp_path / "home")}
    log = tmp_path / "connects.log"
    log.write_text("")
    out = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, str(log), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    return out, log.read_text()


def test_update_offline_with_default_config(tmp_path):
    r"""Versions are looked up in --repository only: no request elsewhere."""
    root = str(tmp_path / "db")
    small_db(root)
    host = tmp_path / "host"
    (host / "repo").mkdir(parents=True)
    repository = ["--repository", "repo", str(host), "file-system", "--quiet"]
    for version in ["1.0.0", "1.1.0"]:
        out, connects = _offline_cli(tmp_path, "publish", root, version, *repository)
        assert out.returncode == 0, out.stderr
        assert connects == ""
        assert f"published {version}" in out.stdout
    assert sorted(os.listdir(host / "repo" / "cli")) == [
        "1.0.0",
        "1.1.0",
        "media",
        "meta",
    ]
    # asking the configured repositories as well reaches out to audb's default
    out, connects = _offline_cli(
        tmp_path, "publish", root, "1.2.0", *repository, "--config-repositories"
    )
    assert connects != ""


def test_config_repositories(repository, tmp_path, capsys):
    root = str(tmp_path / "db")
    small_db(root)
    args = [repository.name, repository.host, repository.backend]
    assert cli.main(["publish", root, "1.0.0", "--repository", *args, "--quiet"]) == 0
    # without --repository: that of the previous version in audb's configuration
    assert cli.main(["publish", root, "1.1.0", "--quiet"]) == 1
    assert "--config-repositories" in capsys.readouterr().err
    assert cli.main(["publish", root, "1.1.0", "--config-repositories", "--quiet"]) == 0
    assert audb.versions("cli") == ["1.0.0", "1.1.0"]


def test_backend_error_names_its_cause(tmp_path, capsys):
    root = str(tmp_path / "db")
    small_db(root)
    missing = str(tmp_path / "no-host")
    argv = ["publish", root, "1.0.0", "--repository", "r", missing, "file-system"]
    assert cli.main([*argv, "--quiet"]) == 1
    lines = capsys.readouterr().err.splitlines()
    # the cause in place of "please see stack trace", which is not shown
    assert lines[0].startswith("audb-publish: error: BackendError: FileNotFoundError:")
    assert missing in lines[0]
    assert "stack trace" not in lines[0]
    assert len(lines) == 1


def test_run_keeps_the_traceback_of_the_script(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import audb\n\n\ndef f():\n    raise ValueError('bad')\n\n\nf()\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "audb_publish", "run", str(script)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.startswith("Traceback")
    assert f'File "{script}", line 5, in f' in out.stderr
    assert out.stderr.strip().endswith("ValueError: bad")
    with pytest.raises(ValueError, match="bad"):
        cli.main(["run", str(script)])
    assert not audb_publish.is_patched()


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--version"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    assert out == f"audb-publish {audb_publish.__version__} (audb {audb.__version__})\n"
    with pytest.raises(SystemExit):
        cli.main(["publish", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--num-workers NUM_WORKERS most jobs at a time" in help_text
    assert "(default: the cores this process may use, here" in help_text
    assert "(default: latest)" in help_text
    assert "--config-repositories" in help_text


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


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", {}),
        ("  ", {}),
        ("pipeline=yes,verbose=0", {"pipeline": True, "verbose": False}),
        ("num-workers=8 compression=store", {"num_workers": 8, "compression": "store"}),
        ("compression=3", {"compression": 3}),
        ("scheduler=processes", {"scheduler": "processes"}),
        ("scheduler=tcp://host:8786", {"scheduler": "tcp://host:8786"}),
    ],
)
def test_options_from_environment(text, expected):
    from audb_publish.patching import options_from_environment

    assert options_from_environment(text) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("pipeline", "'pipeline' is not one of num_workers=..., verbose=..."),
        ("speed=11", "'speed=11' is not one of"),
        ("pipeline=true pipeline=false", "'pipeline' is given twice"),
        ("num_workers=0", "'num_workers' must be a positive integer, not '0'"),
        ("num_workers=x", "'num_workers' must be a positive integer, not 'x'"),
        ("compression=9", "'compression' must be auto, zlib, deflate, store, 1, 2"),
        ("scheduler=dask", "'scheduler' must be threads, processes or the address"),
    ],
)
def test_bad_options_from_environment(text, message):
    from audb_publish.patching import options_from_environment

    with pytest.raises(ValueError, match=re.escape(f"AUDB_PUBLISH_OPTIONS: {message}")):
        options_from_environment(text)


def test_patch_requested_by_the_start_up_hook(monkeypatch):
    import types

    from audb_publish import patching

    startup = types.ModuleType("_audb_publish_startup")
    startup.requested = True
    monkeypatch.setitem(sys.modules, "_audb_publish_startup", startup)
    monkeypatch.setenv("AUDB_PUBLISH_OPTIONS", "pipeline=true")
    try:
        patching._patch_if_requested()
        assert audb.publish.keywords == {"pipeline": True}
        assert not startup.requested
    finally:
        audb_publish.unpatch()
    patching._patch_if_requested()
    assert not audb_publish.is_patched()


def test_status_in_this_process(monkeypatch):
    from audb_publish.patching import status

    monkeypatch.setenv("AUDB_PUBLISH_PATCH", "off")
    monkeypatch.setenv("AUDB_PUBLISH_OPTIONS", "speed=11")
    lines = status().splitlines()
    # the conclusion first
    assert lines[0] == (
        "New processes keep upstream's audb.publish: AUDB_PUBLISH_PATCH is off."
    )
    assert lines[2] == "AUDB_PUBLISH_PATCH=off."
    # an editable install has no hook in site-packages
    assert lines[3].startswith("The start-up hook audb_publish.pth is not installed")
    assert lines[4].startswith("Invalid options, audb.publish will raise: ")
    monkeypatch.setenv("AUDB_PUBLISH_PATCH", "1")
    assert status().splitlines()[0] == (
        "New processes keep upstream's audb.publish, "
        "although AUDB_PUBLISH_PATCH asks for the patch: "
        "the start-up hook audb_publish.pth is not installed."
    )
    monkeypatch.delenv("AUDB_PUBLISH_PATCH")
    assert status().splitlines()[:3] == [
        "New processes keep upstream's audb.publish: AUDB_PUBLISH_PATCH is not set.",
        "audb.publish is upstream's in this process.",
        "AUDB_PUBLISH_PATCH is not set.",
    ]


def test_status_command(monkeypatch, tmp_path, capsys):
    import site

    (tmp_path / "audb_publish.pth").write_text("")
    monkeypatch.setattr(site, "getsitepackages", lambda: [str(tmp_path)])
    monkeypatch.setenv("AUDB_PUBLISH_PATCH", "1")
    monkeypatch.delenv("AUDB_PUBLISH_OPTIONS", raising=False)
    assert cli.main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "New processes patch audb.publish when they import audb."
    assert lines[2] == "AUDB_PUBLISH_PATCH=1."
    assert lines[3] == (
        f"The start-up hook is installed: {tmp_path / 'audb_publish.pth'}"
    )
    monkeypatch.setenv("AUDB_PUBLISH_OPTIONS", "speed=11")
    assert cli.main(["status"]) == 0
    conclusion = capsys.readouterr().out.splitlines()[0]
    assert conclusion.startswith(
        "New processes patch audb.publish when they import audb, and it raises: "
    )


def test_describe_a_backend_error_without_cause():
    import audbackend

    error = audbackend.BackendError(PermissionError("no write access to /srv"))
    assert cli.describe(error) == (
        "audb-publish: error: BackendError: PermissionError: no write access to /srv"
    )
    assert cli.describe(ValueError("plain")) == "audb-publish: error: ValueError: plain"


def _raised(function):
    try:
        function()
    except Exception as error:
        return error


def test_describe_causes_context_and_notes():
    def chain():
        try:
            try:
                raise OSError("disk full")
            except OSError:
                raise KeyError("a.wav")  # noqa: B904 (context, not cause)
        except KeyError as error:
            error.add_note("while scanning")
            raise RuntimeError("publish failed") from error

    lines = cli.describe(_raised(chain)).splitlines()
    assert lines == [
        "audb-publish: error: RuntimeError: publish failed",
        "  caused by KeyError: 'a.wav'",
        "  note: while scanning",
        "  caused by OSError: disk full",
    ]

    def suppressed():
        try:
            raise OSError("hidden")
        except OSError:
            raise ValueError("shown") from None

    assert cli.describe(_raised(suppressed)) == "audb-publish: error: ValueError: shown"
    # a long chain shows its first causes only
    error = ValueError("0")
    for i in range(1, 6):
        cause, error = error, ValueError(str(i))
        error.__cause__ = cause
    assert len(cli.describe(error).splitlines()) == 4


@pytest.mark.parametrize("command", ["publish", "plan", "verify"])
def test_num_workers_default_to_the_cores_and_flags_show_no_default(command):
    from audb_publish.threads import cores

    parser = cli.parser()
    argv = {"verify": ["db", "1.0.0", "--repository", "r", "h", "file-system"]}
    args = parser.parse_args([command, *argv.get(command, ["db", "1.0.0"])])
    assert args.num_workers == cores()
    subparser = parser._subparsers._group_actions[0].choices[command]
    text = " ".join(subparser.format_help().split())
    assert f"(default: the cores this process may use, here {cores()})" in text
    assert "(default: True)" not in text
    assert "(default: False)" not in text
    assert "(default: None)" not in text
    for action in subparser._actions:  # every option says what it does
        assert action.help and len(action.help) > 10, action.dest
