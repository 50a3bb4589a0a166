"""Activation by environment: the start-up hook of the wheel, end to end.

A wheel is built from this checkout and installed,
without its dependencies,
into a fresh virtual environment
that reaches the dependencies of the test environment
through a path file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = (
    "import sys, audb\n"
    "print(audb.publish.__module__, audb.core.publish.publish.__module__)\n"
)
MODULES = "import sys; print(sorted(sys.modules))"


def _site_packages(env: str) -> str:
    return sysconfig.get_path("purelib", vars={"base": env, "platbase": env})


def _fresh_env(path: str, wheel: str | None) -> str:
    r"""Virtual environment with the test environment's packages, and ``wheel``."""
    venv.create(path, with_pip=False)
    site = _site_packages(path)
    # the dependencies, but not this checkout's editable install
    with open(os.path.join(site, "dependencies.pth"), "w") as fp:
        fp.write(sysconfig.get_path("purelib") + "\n")
    if wheel is not None:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
            + ["--disable-pip-version-check", "--target", site, wheel],
            check=True,
        )
    return os.path.join(path, "bin", "python")


@pytest.fixture(scope="module")
def envs(tmp_path_factory):
    r"""Python of an environment with the wheel, and of one without."""
    tmp = tmp_path_factory.mktemp("activation")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
        + ["--no-build-isolation", "--disable-pip-version-check"]
        + ["-w", str(tmp / "dist"), ROOT],
        check=True,
    )
    (wheel,) = (tmp / "dist").glob("audb_publish-*.whl")
    return _fresh_env(str(tmp / "with"), str(wheel)), _fresh_env(
        str(tmp / "without"), None
    )


def _run(python: str, code: str, **variables) -> subprocess.CompletedProcess:
    # not in the checkout, whose audb_publish would be found first
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AUDB_PUBLISH_") and key != "PYTHONPATH"
    }
    env.update(variables)
    out = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=os.path.dirname(python),
    )
    return out


def test_wheel_ships_the_hook(envs):
    python, _ = envs
    out = _run(python, "import audb_publish, sys; print(audb_publish.__file__)")
    assert out.returncode == 0, out.stderr
    # audb_publish comes from the wheel, not from this checkout
    assert not out.stdout.startswith(ROOT)
    site = os.path.dirname(os.path.dirname(out.stdout.strip()))
    assert os.path.isfile(os.path.join(site, "audb_publish.pth"))
    assert os.path.isfile(os.path.join(site, "_audb_publish_startup.py"))


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_variable_patches_processes_and_subprocesses(envs, value):
    python, _ = envs
    out = _run(python, CHECK, AUDB_PUBLISH_PATCH=value)
    assert out.stdout.split() == ["audb_publish.publish"] * 2, out.stderr
    # a subprocess inherits the environment, and so the patch
    code = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHECK!r}])"
    out = _run(python, code, AUDB_PUBLISH_PATCH=value)
    assert out.stdout.split() == ["audb_publish.publish"] * 2, out.stderr


@pytest.mark.parametrize("variables", [{}, {"AUDB_PUBLISH_PATCH": "0"}])
def test_without_the_variable_nothing_changes(envs, variables):
    python, plain = envs
    out = _run(python, CHECK + "print('audb_publish' in sys.modules)", **variables)
    assert out.stdout.split() == ["audb.core.publish"] * 2 + ["False"], out.stderr
    # the hook imports nothing: the same modules as without the wheel
    with_wheel = _run(python, MODULES, **variables).stdout
    without = _run(plain, MODULES, **variables).stdout
    assert with_wheel == without
    importtime = subprocess.run(
        [python, "-X", "importtime", "-c", "pass"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("AUDB_PUBLISH")},
    ).stderr
    assert "_audb_publish_startup" not in importtime
    assert "audb" not in importtime


def test_the_variable_imports_only_the_small_hook(envs):
    python, plain = envs
    modules = eval(_run(python, MODULES, AUDB_PUBLISH_PATCH="1").stdout)
    without = eval(_run(plain, MODULES).stdout)
    assert sorted(set(modules) - set(without)) == ["_audb_publish_startup"]


def test_options_from_the_environment(envs):
    python, _ = envs
    code = "import audb; print(audb.publish.keywords)"
    out = _run(
        python,
        code,
        AUDB_PUBLISH_PATCH="1",
        AUDB_PUBLISH_OPTIONS="pipeline=true compression=zlib",
    )
    assert out.stdout.strip() == "{'pipeline': True, 'compression': 'zlib'}"
    # a bad value: an error at the first call, not a silent default
    code = "import audb\naudb.publish('db', '1.0.0')"
    out = _run(
        python, code, AUDB_PUBLISH_PATCH="1", AUDB_PUBLISH_OPTIONS="pipeline=maybe"
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines()[-1] == (
        "ValueError: AUDB_PUBLISH_OPTIONS: 'pipeline' must be true or false, "
        "not 'maybe'."
    )


def test_status(envs):
    python, _ = envs
    code = "from audb_publish.cli import main; main(['status'])"
    out = _run(python, code, AUDB_PUBLISH_PATCH="1")
    lines = out.stdout.splitlines()
    assert lines[0] == "New processes patch audb.publish when they import audb."
    assert lines[1] == "audb.publish is patched by audb_publish in this process."
    assert lines[2] == "AUDB_PUBLISH_PATCH=1."
    assert lines[3].startswith("The start-up hook is installed: ")
    assert lines[4] == "Options (AUDB_PUBLISH_OPTIONS): none"
    out = _run(python, code)
    assert out.stdout.splitlines()[:3] == [
        "New processes keep upstream's audb.publish: AUDB_PUBLISH_PATCH is not set.",
        "audb.publish is upstream's in this process.",
        "AUDB_PUBLISH_PATCH is not set.",
    ]


def test_importing_audb_publish_first(envs):
    python, _ = envs
    code = "import audb_publish, audb; print(audb.publish.__module__)"
    out = _run(python, code, AUDB_PUBLISH_PATCH="1")
    assert out.stdout.strip() == "audb_publish.publish", out.stderr
