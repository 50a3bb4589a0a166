"""Tests and doctests write below temporary folders only.

Doctests run each in its own temporary folder, without network.
For the whole session, ``HOME`` is a temporary folder,
so audb's default cache root ``~/audb``
(and with it the checksum and table caches)
is one below it, in this process and in every process a test starts;
``audb.config.SHARED_CACHE_ROOT`` is one, too.
"""

import os

import audb
import audeer
import audformat
import pytest

collect_ignore = ["audb_publish/__main__.py", "benchmarks", "examples", "scripts"]


@pytest.fixture(autouse=True, scope="session")
def _temporary_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("AUDB_CACHE_ROOT", raising=False)
        monkeypatch.delenv("AUDB_SHARED_CACHE_ROOT", raising=False)
        monkeypatch.setattr(audb.config, "CACHE_ROOT", "~/audb")
        monkeypatch.setattr(audb.config, "SHARED_CACHE_ROOT", str(home / "shared"))
        yield home


@pytest.fixture(autouse=True)
def _doctest_environment(request, tmp_path, monkeypatch, doctest_namespace):
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    monkeypatch.chdir(tmp_path)
    doctest_namespace.update(audb=audb, audeer=audeer, audformat=audformat, os=os)
    repositories = audb.config.REPOSITORIES
    audb.config.REPOSITORIES = []  # never ask a public repository
    try:
        yield
    finally:
        audb.config.REPOSITORIES = repositories
