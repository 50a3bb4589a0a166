"""The repository we write equals the one audb.publish writes."""

from __future__ import annotations

import zipfile

import audb
import pandas as pd
import pytest

import audb_publish

from helpers import NAME
from helpers import assert_same_load
from helpers import assert_same_repository
from helpers import download
from helpers import publish_chain
from helpers import repository_files


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_workers": 1},
        {"num_workers": 4},
        {"num_workers": 4, "pipeline": True},
        {"num_workers": 1, "pipeline": True},
        {"num_workers": 4, "checksum_cache": False},
    ],
    ids=["nw1", "nw4", "nw4-pipeline", "nw1-pipeline", "nw4-no-cache"],
)
def test_same_repository(reference, kwargs, repositories, template, tmp_path):
    backend, expected, expected_deps = reference
    actual = repositories.new(backend)
    deps = publish_chain(audb_publish.publish, actual, template, tmp_path, **kwargs)
    for ours, theirs in zip(deps, expected_deps, strict=True):
        assert isinstance(ours, audb.Dependencies)
        pd.testing.assert_frame_equal(ours(), theirs())
    assert_same_repository(expected, actual, tmp_path)
    for version in ["1.0.0", "1.1.0"]:
        assert_same_load(expected, actual, version, tmp_path)
        result = audb_publish.verify(NAME, version, actual, deep=True, num_workers=3)
        assert result.intact, result.summary()


def test_verify_passes_on_upstream_repositories(reference):
    _, expected, _ = reference
    for version in ["1.0.0", "1.1.0"]:
        result = audb_publish.verify(NAME, version, expected, deep=True)
        assert result.intact, result.summary()
        assert result.members > 0 and result.bytes_read > 0


def publish_compressed(reference, compression, repositories, template, tmp_path):
    r"""Both versions published with ``compression``, on the file system only."""
    backend, expected, _ = reference
    if backend != "file-system":
        pytest.skip("compression is independent of the backend")
    actual = repositories.new(backend)
    publish_chain(
        audb_publish.publish,
        actual,
        template,
        tmp_path,
        num_workers=2,
        compression=compression,
    )
    return expected, actual


@pytest.mark.parametrize("compression", ["store", "deflate", 1, 3])
def test_same_repository_any_compression(
    reference, compression, repositories, template, tmp_path
):
    expected, actual = publish_compressed(
        reference, compression, repositories, template, tmp_path
    )
    max_ratio = None  # an explicit compression trades size for speed
    assert_same_repository(expected, actual, tmp_path, max_ratio=max_ratio)
    assert_same_load(expected, actual, "1.1.0", tmp_path)


def test_zlib_compresses_every_member_as_upstream(
    reference, repositories, template, tmp_path
):
    expected, actual = publish_compressed(
        reference, "zlib", repositories, template, tmp_path
    )
    assert_same_repository(expected, actual, tmp_path, max_ratio=1.0)
    archives = [f for f in repository_files(expected) if f.endswith(".zip")]
    assert archives
    for path in archives:
        sizes = []
        for repository in (expected, actual):
            with zipfile.ZipFile(download(repository, path, str(tmp_path))) as zf:
                sizes.append({i.filename: i.compress_size for i in zf.infolist()})
        assert sizes[0] == sizes[1], path
