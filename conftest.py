"""Doctests of the package: each in its own temporary folder, no network."""

import os

import audb
import audeer
import audformat
import pytest

collect_ignore = ["audb_publish/__main__.py", "benchmarks", "examples", "scripts"]


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
