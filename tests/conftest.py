"""Fixtures: databases, repositories on both backends, published references.

Helpers that are no fixtures are in ``helpers.py``.

"""

from __future__ import annotations

import shutil
import uuid

import audb
import audeer
import pytest

from audb_publish import integrity
from audb_publish.patching import _ORIGINAL as upstream_publish
from audb_publish.testing import SeaweedFS

from helpers import BACKENDS
from helpers import build_database
from helpers import publish
from helpers import publish_chain

# ---------------------------------------------------------------- audio


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("template"))
    build_database(root)
    return root


# --------------------------------------------------------- repositories


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    r"""A SeaweedFS S3 server for the whole session."""
    with SeaweedFS(str(tmp_path_factory.mktemp("seaweedfs"))) as server:
        yield server


class Repositories:
    r"""Create empty repositories on a backend."""

    def __init__(self, request, tmp_path_factory):
        self._request = request
        self._tmp = tmp_path_factory

    def new(self, backend: str) -> audb.Repository:
        name = f"r{uuid.uuid4().hex[:12]}"
        if backend == "file-system":
            host = str(self._tmp.mktemp("host"))
            audeer.mkdir(host, name)
            return audb.Repository(name, host, "file-system")
        server = self._request.getfixturevalue("seaweedfs")
        return server.repository(name)


@pytest.fixture(scope="session")
def repositories(request, tmp_path_factory) -> Repositories:
    return Repositories(request, tmp_path_factory)


# ------------------------------------------------ shared fixtures


@pytest.fixture
def clean(repositories, template, tmp_path_factory):
    r"""A repository with a clean publish of the template, once per test."""
    tmp = tmp_path_factory.mktemp("clean")
    repository = repositories.new("file-system")
    root = str(tmp / "db")
    shutil.copytree(template, root)
    publish(root, repository, str(tmp / "cache"), num_workers=2)
    return repository


@pytest.fixture(scope="session", params=BACKENDS)
def reference(request, repositories, template, tmp_path_factory):
    r"""Both versions published by upstream audb.publish, once per backend."""
    repository = repositories.new(request.param)
    tmp = tmp_path_factory.mktemp("upstream")
    deps = publish_chain(upstream_publish, repository, template, tmp, num_workers=2)
    return request.param, repository, deps


@pytest.fixture
def fine_clock(monkeypatch):
    r"""A file is racy for 50 ms only, so that tests need not wait 2 s."""
    monkeypatch.setattr(integrity, "RACY_NS", 50_000_000)
