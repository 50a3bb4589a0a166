"""The report of a publish against what the repository received."""

from __future__ import annotations

import json
import os
import time

import audformat
import pytest

import audb_publish
from audb_publish import cli
from audb_publish import commit as commit_module
from audb_publish.report import STAGES

from helpers import download
from helpers import only_repository
from helpers import repository_files
from helpers import write_audio

MEDIA = ["a.wav", "b.wav", "sub/c.wav"]


def _db(root: str) -> int:
    r"""Database with media, a CSV table, a PARQUET table and an attachment."""
    for seed, file in enumerate(MEDIA):
        write_audio(os.path.join(root, file), 0.2, 16000, 1, "PCM_16", seed)
    db = audformat.Database("report")
    db["files"] = audformat.Table(audformat.filewise_index(MEDIA))
    db["more"] = audformat.Table(audformat.filewise_index(MEDIA[:1]))
    os.makedirs(os.path.join(root, "docs"))
    with open(os.path.join(root, "docs", "readme.txt"), "w") as fp:
        fp.write("hello")
    db.attachments["docs"] = audformat.Attachment("docs")
    db.save(root, storage_format="csv")
    db["more"].save(os.path.join(root, "db.more"), storage_format="parquet")
    os.remove(os.path.join(root, "db.more.csv"))
    sizes = [os.path.getsize(os.path.join(root, f)) for f in MEDIA]
    return sum(sizes)


def _received(repository, tmp_path) -> tuple[int, int, int]:
    r"""Archives, other files and bytes in the repository."""
    files = repository_files(repository)
    sizes = [os.path.getsize(download(repository, f, str(tmp_path))) for f in files]
    archives = sum(f.endswith(".zip") for f in files)
    return archives, len(files) - archives, sum(sizes)


@pytest.mark.parametrize("backend", ["file-system", "s3"])
def test_report_equals_what_the_repository_received(
    backend, repositories, tmp_path, capsys
):
    repository = repositories.new(backend)
    root = str(tmp_path / "db")
    media_bytes = _db(root)
    table_bytes = os.path.getsize(os.path.join(root, "db.files.csv"))
    parquet_bytes = os.path.getsize(os.path.join(root, "db.more.parquet"))
    path = str(tmp_path / "report.json")
    args = [repository.name, repository.host, repository.backend]
    with only_repository(repository, str(tmp_path / "cache")):
        argv = ["publish", root, "1.0.0", "--repository", *args, "--quiet"]
        assert cli.main([*argv, "--num-workers", "3", "--report", path]) == 0
    out = capsys.readouterr().out
    with open(path) as fp:
        report = json.load(fp)
    archives, files, size = _received(repository, tmp_path)
    # media, the CSV table and the attachment are archives;
    # the PARQUET table, the dependency table and the header are files
    assert (report["archives_put"], report["files_put"]) == (archives, files)
    assert (archives, files) == (len(MEDIA) + 2, 3)
    assert report["bytes_written"] == size
    assert report["archives_skipped"] == report["files_skipped"] == 0
    assert (report["scanned_media"], report["scanned_tables"]) == (3, 2)
    assert report["scanned_attachments"] == 1
    # every file is read by its scan, and again for its archive or put;
    # tables a third time, when validation loads them as audformat does
    total = media_bytes + table_bytes + parquet_bytes + 5
    assert report["bytes_read"] == 2 * total + table_bytes + parquet_bytes
    assert report["database"] == "report"
    assert report["version"] == "1.0.0"
    assert report["previous_version"] is None
    assert report["repository"] == " ".join(args)
    assert (report["num_workers"], report["cores"]) == (3, min(3, os.cpu_count()))
    assert list(report["stages"]) == list(STAGES)
    assert report["seconds"] >= sum(report["stages"].values()) - 0.01
    rate = report["bytes_read"] / report["seconds"] / 1e6
    assert report["read_mb_per_second"] == pytest.approx(rate, abs=0.002)
    assert out.splitlines()[1] == (
        f"published report 1.0.0 in {report['seconds']:.2f} s"
    )


def test_a_rerun_reports_what_was_already_there(repositories, tmp_path, monkeypatch):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    _db(root)
    put_file = commit_module.Remote.put_file

    def fail_on_header(self, src, path, version, **kwargs):
        if path.endswith("db.yaml"):
            raise OSError("disk full")
        return put_file(self, src, path, version, **kwargs)

    with only_repository(repository, str(tmp_path / "cache")):
        monkeypatch.setattr(commit_module.Remote, "put_file", fail_on_header)
        with pytest.raises(OSError, match="disk full"):
            audb_publish.publish(root, "1.0.0", repository, verbose=False)
        monkeypatch.undo()
        with cli.capture_report() as reports:
            audb_publish.publish(root, "1.0.0", repository, verbose=False)
    (report,) = reports
    assert report.archives_put == 0
    assert report.archives_skipped == len(MEDIA) + 2
    # the PARQUET table and the dependency table were there, the header not
    assert (report.files_put, report.files_skipped) == (1, 2)
    assert report.bytes_written == os.path.getsize(os.path.join(root, "db.yaml"))


def test_report_is_logged_at_info(repositories, tmp_path, caplog):
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    _db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        with caplog.at_level("INFO", logger="audb_publish"):
            audb_publish.publish(root, "1.0.0", repository, verbose=False)
    (record,) = [r for r in caplog.records if hasattr(r, "report")]
    assert record.levelname == "INFO"
    assert record.getMessage() == record.report.summary()
    assert record.getMessage().startswith("published report 1.0.0 in ")


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"pipeline": True}, {"num_workers": 3, "checksum_cache": False}],
    ids=["default", "pipeline", "no-cache"],
)
def test_stages_cover_the_publish(kwargs, repositories, tmp_path):
    # the same stages whatever the options, and together the whole publish
    repository = repositories.new("file-system")
    root = str(tmp_path / "db")
    _db(root)
    with only_repository(repository, str(tmp_path / "cache")):
        with cli.capture_report() as reports:
            start = time.perf_counter()
            audb_publish.publish(root, "1.0.0", repository, verbose=False, **kwargs)
            wall = time.perf_counter() - start
    (report,) = reports
    assert list(report.stages) == list(STAGES)
    assert all(seconds >= 0 for seconds in report.stages.values())
    assert abs(sum(report.stages.values()) - wall) <= 0.05 * wall
    assert abs(report.seconds - wall) <= 0.05 * wall
