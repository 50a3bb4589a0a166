r"""Dry run: what a publish would put, without writing anything.

:func:`dry_run` is a reader of the same stages as
:func:`audb_publish.publish`:
it validates exactly as publish does
and scans every file as publish does,
then stops before anything is compressed or put.
It writes nothing to the repository, the database root
or the checksum cache.
Like publish, it reads the previous version's dependency table
from the repository published to.

"""

from __future__ import annotations

from collections.abc import Mapping
import dataclasses
import json
import os
import tempfile

import audb

from audb_publish import layout
from audb_publish import owners
from audb_publish.checksum_cache import ChecksumCache
from audb_publish.pipeline import scan_all
from audb_publish.plan import Plan
from audb_publish.plan import Put
from audb_publish.report import Report
from audb_publish.scheduler import Jobs
from audb_publish.scheduler import Scheduler
from audb_publish.table_cache import TableCache
from audb_publish.validate import check_basis
from audb_publish.validate import check_versions
from audb_publish.validate import validate

COMMIT_FILES = 2
r"""Files every publish puts when it commits: dependency table and header."""


@dataclasses.dataclass
class PlannedPut:
    r"""An archive or file a publish would put.

    Args:
        path: path in the repository, without version,
            e.g. ``/db/media/<archive>.zip``
        kind: ``"media"``, ``"table"`` or ``"attachment"``
        files: files it holds, relative to the database root
        bytes: their size before compression
        present: ``True`` if the path already exists in the new version,
            e.g. after an interrupted publish;
            a publish puts it only if its checksum differs

    """

    path: str
    kind: str
    files: list[str]
    bytes: int
    present: bool


@dataclasses.dataclass
class DryRun:
    r"""What a publish would do.

    Args:
        database: database name
        version: version to publish
        previous_version: version it is based on, or ``None``
        repository: repository as ``name host backend``
        changes: for ``"media"``, ``"tables"`` and ``"attachments"``,
            the files that are ``"new"``, ``"altered"`` or ``"removed"``
        puts: archives and files to put, in the order of their paths

    """

    database: str
    version: str
    previous_version: str | None
    repository: str
    changes: dict[str, dict[str, list[str]]]
    puts: list[PlannedPut]

    @property
    def archives(self) -> int:
        r"""Number of archives to put."""
        return sum(layout.is_archive(put.path) for put in self.puts)

    @property
    def files(self) -> int:
        r"""Number of other files to put.

        PARQUET tables, the dependency table and the header,
        as the report of a publish counts them
        (:attr:`audb_publish.report.Report.files_put`
        and :attr:`~audb_publish.report.Report.files_skipped`).
        """
        return len(self.puts) - self.archives + COMMIT_FILES

    @property
    def bytes(self) -> int:
        r"""Bytes to put before compression."""
        return sum(put.bytes for put in self.puts)

    @property
    def present(self) -> int:
        r"""Number of archives and files already in the repository."""
        return sum(put.present for put in self.puts)

    def to_dict(self) -> dict:
        r"""The dry run as plain types, for JSON.

        Returns:
            every field, and ``archives``, ``files``, ``bytes``, ``present``

        """
        fields = dataclasses.asdict(self)
        fields.update(
            archives=self.archives,
            files=self.files,
            bytes=self.bytes,
            present=self.present,
        )
        return fields

    def to_json(self) -> str:
        r"""The dry run as JSON.

        Returns:
            JSON text of :meth:`to_dict`

        """
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        r"""The dry run in a few lines, for people.

        Returns:
            text

        Examples:
            >>> changes = {"new": ["a.wav"], "altered": [], "removed": []}
            >>> put = PlannedPut("/db/media/x.zip", "media", ["a.wav"], 10, False)
            >>> run = DryRun("db", "1.0.0", None, "r h file-system", {"media": changes}, [put])
            >>> print(run.summary())
            publish db 1.0.0 (from scratch) to r h file-system would put
              media: 1 new, 0 altered, 0 removed
              1 archives and 2 files, 0.0 MB before compression, 0 already there

        """  # noqa: E501
        based = (
            f"on top of {self.previous_version}"
            if self.previous_version
            else "(from scratch)"
        )
        lines = [
            f"publish {self.database} {self.version} {based} "
            f"to {self.repository} would put"
        ]
        for kind, changes in self.changes.items():
            counts = [f"{len(files)} {what}" for what, files in changes.items()]
            lines.append(f"  {kind}: {', '.join(counts)}")
        lines.append(
            f"  {self.archives} archives and {self.files} files, "
            f"{self.bytes / 1e6:.1f} MB before compression, "
            f"{self.present} already there"
        )
        return "\n".join(lines)


def dry_run(
    db_root: str,
    version: str,
    repository: audb.Repository | None = None,
    *,
    archives: Mapping[str, str] | None = None,
    previous_version: str | None = "latest",
    cache_root: str | None = None,
    num_workers: int | None = 1,
    verbose: bool = False,
    checksum_cache: bool = True,
) -> DryRun:
    r"""Tell what :func:`audb_publish.publish` would do, without doing it.

    Validates as :func:`audb_publish.publish` does,
    raising the same errors,
    and scans every file (checksums and audio properties),
    but compresses and puts nothing
    and writes nothing to the repository or to ``db_root``.

    Args:
        db_root: root folder of the database
        version: version to publish
        repository: see :func:`audb_publish.publish`
        archives: see :func:`audb_publish.publish`
        previous_version: see :func:`audb_publish.publish`
        cache_root: where the checksum cache is read,
            see :func:`audb_publish.publish`
        num_workers: see :func:`audb_publish.publish`
        verbose: show progress
        checksum_cache: read the checksum cache, never write it,
            see :func:`audb_publish.publish`

    Returns:
        what a publish would put

    Raises:
        RuntimeError: as :func:`audb_publish.publish`
        ValueError: as :func:`audb_publish.publish`
        KeyError: as :func:`audb_publish.publish`
        FileNotFoundError: as :func:`audb_publish.publish`
        audbackend.BackendError: as :func:`audb_publish.publish`

    Examples:
        >>> db = audformat.Database("mydb")
        >>> db.save("mydb")
        >>> repository = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> run = dry_run("mydb", "1.0.0", repository)
        >>> run.archives, run.files, os.listdir(os.path.join("host", "repo"))
        (0, 2, [])

    """
    check_versions(version, previous_version)
    with tempfile.TemporaryDirectory(prefix=owners.temp_prefix()) as tmp:
        basis = check_basis(db_root, version, repository, previous_version)
        with Scheduler(
            num_workers, verbose=verbose, desc=f"Dry run {version}"
        ) as workers:
            # publish saves tables stored only as pickle as PARQUET in db_root;
            # the dry run saves them in a temporary folder
            if checksum_cache:
                tables = TableCache.load(db_root, cache_root)
            else:
                tables = TableCache.off(db_root)
            ctx = validate(
                workers,
                basis,
                archives,
                converted_root=tmp,
                table_cache=tables,  # read, never written
            )
            plan = Plan(ctx)
            if checksum_cache:
                cache = ChecksumCache.load(db_root, cache_root)
            else:
                cache = ChecksumCache.off(db_root)
            puts: list[Put] = []
            with ctx.remote:
                scan_all(
                    Jobs(workers),
                    ctx,
                    plan,
                    Report(version=version),
                    puts.extend,
                    plan.check_archives,
                    "scan",
                    cache,
                    puts=False,
                )
                puts.sort(key=lambda put: put.path)
                present = ctx.remote.present([put.path for put in puts], version)
            converted = os.path.join(tmp, "")

            def name(file: str) -> str:
                return file[len(converted) :] if file.startswith(converted) else file

            planned = [
                PlannedPut(
                    put.path,
                    put.kind,
                    [name(file) for file in put.files],
                    put.nbytes
                    + sum(os.path.getsize(f) for f in put.files if name(f) != f),
                    exists,
                )
                for put, exists in zip(puts, present, strict=True)
            ]
            changes = {
                kind: {
                    what: [name(file) for file in files] for what, files in c.items()
                }
                for kind, c in plan.changes().items()
            }
    repository = ctx.repository
    return DryRun(
        database=ctx.db.name,
        version=version,
        previous_version=ctx.previous_version,
        repository=f"{repository.name} {repository.host} {repository.backend}",
        changes=changes,
        puts=planned,
    )
