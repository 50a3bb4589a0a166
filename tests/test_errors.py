"""Bad input raises what audb.publish raises, and publishes nothing visible."""

from __future__ import annotations

import functools
import os
import shutil

import audb
import audeer
import pytest

import audb_publish
from audb_publish.patching import _ORIGINAL as upstream_publish

from error_cases import CASES
from error_cases import OURS_ONLY
from error_cases import OWN_MESSAGE
from error_cases import header_versions
from error_cases import run
from helpers import only_repository
from helpers import small_db

NAME = "bad"


# each case changes a fresh database and returns publish arguments


def outcome(publish, case, repositories, tmp_path) -> tuple[type, str]:
    r"""Type and message of the error a publish of ``case`` raises."""
    root = str(tmp_path / "db")
    small_db(root)
    repository = repositories.new("file-system")
    kwargs = CASES[case](root, repository)
    error = run(publish, root, repository, kwargs, audeer.mkdir(tmp_path, "cache"))
    assert header_versions(repository) == (
        ["1.0.0"] if case == "num_workers_zero_and_version_exists" else []
    )
    return type(error), str(error).replace(root, "<root>")


@pytest.fixture(scope="module")
def upstream_outcomes(repositories, tmp_path_factory):
    r"""Upstream's outcome of each case, computed once."""
    outcomes = {}

    def get(case: str) -> tuple[type, str]:
        if case not in outcomes:
            tmp = tmp_path_factory.mktemp(f"upstream-{case}")
            outcomes[case] = outcome(upstream_publish, case, repositories, tmp)
        return outcomes[case]

    return get


@pytest.mark.parametrize("num_workers", [1, 4])
@pytest.mark.parametrize("case", sorted(CASES))
def test_same_error(case, num_workers, repositories, upstream_outcomes, tmp_path):
    publish = functools.partial(audb_publish.publish, num_workers=num_workers)
    ours = outcome(publish, case, repositories, tmp_path)
    if case in OURS_ONLY:
        assert ours[0] is OURS_ONLY[case][0]
        assert OURS_ONLY[case][1] in ours[1]
        return
    expected = upstream_outcomes(case)
    if case in OWN_MESSAGE:
        assert ours[0] is expected[0]
        assert OWN_MESSAGE[case] in ours[1]
        return
    assert ours == expected


def test_version_exists(repositories, tmp_path):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        audb_publish.publish(root, "1.0.0", repository, verbose=False)
        shutil.rmtree(root)
        small_db(root)
        with pytest.raises(RuntimeError, match="already exists"):
            audb_publish.publish(
                root, "1.0.0", repository, previous_version=None, verbose=False
            )
        with pytest.raises(RuntimeError, match="don't have a 'db.parquet'"):
            audb_publish.publish(root, "1.1.0", repository, verbose=False)
        audb.load_to(root, NAME, version="1.0.0", only_metadata=True, verbose=False)
        deps = audb.Dependencies()
        deps.load(os.path.join(root, "db.parquet"))
        deps._add_meta("db.other.csv", "1.0.0", "x")
        deps.save(os.path.join(root, "db.parquet"))
        with pytest.raises(RuntimeError, match="does not match"):
            audb_publish.publish(root, "1.1.0", repository, verbose=False)
    assert header_versions(repository) == ["1.0.0"]


def test_previous_version_in_other_repository(repositories, tmp_path):
    first = repositories.new("file-system")
    second = repositories.new("file-system")
    root = str(tmp_path / "db")
    small_db(root)
    before = audb.config.REPOSITORIES, audb.config.CACHE_ROOT
    audb.config.REPOSITORIES = [first, second]
    audb.config.CACHE_ROOT = str(tmp_path / "cache")
    try:
        audb_publish.publish(root, "1.0.0", first, verbose=False)
        with pytest.raises(RuntimeError, match="Cannot publish version '1.1.0'"):
            audb_publish.publish(root, "1.1.0", second, verbose=False)
        # without a repository, the previous version's is used
        deps = audb_publish.publish(root, "1.1.0", verbose=False)
    finally:
        audb.config.REPOSITORIES, audb.config.CACHE_ROOT = before
    assert deps.version("a.wav") == "1.0.0"
    assert header_versions(first) == ["1.0.0", "1.1.0"]
    assert header_versions(second) == []
