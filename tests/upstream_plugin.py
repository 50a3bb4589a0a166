"""Pytest plugin running audb's own tests with :func:`audb_publish.patch` active.

Load it with ``-p upstream_plugin``
(its folder must be on ``PYTHONPATH``; ``tests/upstream.py`` does this).
It is configured by environment variables:

``AUDB_PUBLISH_PATCH_DEFAULTS``
    JSON object of keyword defaults for :func:`audb_publish.patch`,
    e.g. ``{"pipeline": true}`` (default ``{}``)
``AUDB_PUBLISH_UPSTREAM_PATCH``
    ``0`` for a baseline run:
    nothing is patched and the plugin checks
    that :func:`audb.publish` is upstream's (default ``1``)
``AUDB_PUBLISH_UPSTREAM_NUM_WORKERS``
    value for ``pytest.NUM_WORKERS``,
    which audb's conftest sets (5, or 1 on macOS)
    and its tests pass as ``num_workers``
``AUDB_PUBLISH_UPSTREAM_STATS``
    path of a JSON file to write
    the mode, patch defaults, ``pytest.NUM_WORKERS``
    and the number of :func:`audb.publish` calls to

The session fails loudly at its start
if :func:`audb.publish` is not in the expected state,
and every test errors in setup if it changed since.

"""

from __future__ import annotations

import functools
import json
import os

import audb
import audb.core.publish
import pytest

ENV_PATCH = "AUDB_PUBLISH_UPSTREAM_PATCH"
ENV_DEFAULTS = "AUDB_PUBLISH_PATCH_DEFAULTS"
ENV_NUM_WORKERS = "AUDB_PUBLISH_UPSTREAM_NUM_WORKERS"
ENV_STATS = "AUDB_PUBLISH_UPSTREAM_STATS"

_UPSTREAM = audb.core.publish.publish
_STATE: dict = {"publish_calls": 0}


def _enabled() -> bool:
    return os.environ.get(ENV_PATCH, "1").strip().lower() not in ("0", "false", "no")


def _defaults() -> dict:
    defaults = json.loads(os.environ.get(ENV_DEFAULTS) or "{}")
    if not isinstance(defaults, dict):
        raise pytest.UsageError(f"{ENV_DEFAULTS} must be a JSON object: {defaults!r}")
    return defaults


def _counting(function):
    @functools.wraps(function)
    def publish(*args, **kwargs):
        _STATE["publish_calls"] += 1
        return function(*args, **kwargs)

    return publish


def _check() -> None:
    """Assert :func:`audb.publish` is what this session expects."""
    if audb.publish is not audb.core.publish.publish:
        raise AssertionError(
            "audb.publish and audb.core.publish.publish differ: "
            f"{audb.publish!r} vs {audb.core.publish.publish!r}"
        )
    if _STATE["patched"]:
        import audb_publish

        if not audb_publish.is_patched() or audb.publish is not _STATE["function"]:
            raise AssertionError(
                "audb.publish is not patched by audb_publish: "
                f"{audb.publish!r} (upstream is {_UPSTREAM!r})"
            )
    elif audb.publish is not _UPSTREAM:
        raise AssertionError(
            f"baseline run, but audb.publish is patched: {audb.publish!r}"
        )


def pytest_configure(config):
    _STATE["patched"] = _enabled()
    _STATE["defaults"] = _defaults() if _STATE["patched"] else None
    if _STATE["patched"]:
        import audb_publish

        if getattr(audb_publish, "__file__", None) is None:
            raise pytest.UsageError(
                f"audb_publish is an empty namespace package: {audb_publish!r}; "
                "reinstall it (pip install -e .) or put its checkout on PYTHONPATH"
            )
        _STATE["module"] = audb_publish.__file__
        audb_publish.patch(**_STATE["defaults"])
        # Count calls to make sure the upstream tests go through the patch.
        function = _counting(audb.publish)
        audb.publish = audb.core.publish.publish = function
        _STATE["function"] = function


def pytest_unconfigure(config):
    if _STATE.get("patched"):
        import audb_publish

        audb_publish.unpatch()
    path = os.environ.get(ENV_STATS)
    if path and "patched" in _STATE:
        keys = ("patched", "defaults", "publish_calls", "module")
        stats = {key: _STATE.get(key) for key in keys}
        stats["num_workers"] = getattr(pytest, "NUM_WORKERS", None)
        with open(path, "w") as file:
            json.dump(stats, file)


def pytest_report_header(config):
    if _STATE["patched"]:
        return (
            f"upstream_plugin: audb.publish patched by {_STATE['module']}, "
            f"defaults={_STATE['defaults']}"
        )
    return "upstream_plugin: baseline, audb.publish NOT patched"


def pytest_sessionstart(session):
    # audb's conftest is loaded by now and has set pytest.NUM_WORKERS
    num_workers = os.environ.get(ENV_NUM_WORKERS)
    if num_workers:
        pytest.NUM_WORKERS = int(num_workers)
    _check()


def pytest_runtest_setup(item):
    _check()


def pytest_terminal_summary(terminalreporter):
    mode = "patched" if _STATE["patched"] else "baseline"
    terminalreporter.write_line(
        f"upstream_plugin: {mode}, defaults={_STATE['defaults']}, "
        f"pytest.NUM_WORKERS={getattr(pytest, 'NUM_WORKERS', None)}, "
        f"audb.publish calls={_STATE['publish_calls'] if _STATE['patched'] else '-'}"
    )
