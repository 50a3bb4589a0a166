r"""What a publish did: counts, bytes and the time of each stage.

:func:`audb_publish.publish` fills one :class:`Report`
and logs it at INFO on the ``audb_publish`` logger when it succeeded,
with the report as the record's ``report`` attribute.
The command line prints it
and writes :meth:`Report.to_dict` as JSON with ``--report FILE``.
Its fields are stable: new fields may be added,
existing ones keep their name and meaning.

"""

from __future__ import annotations

import dataclasses
import json
import time

STAGES = (
    "validate",
    "caches",
    "plan",
    "lock",
    "scan",
    "put",
    "dependencies",
    "check",
    "commit",
    "release",
)
r"""Stages of a publish, in the order they start.

``validate``: the checks of the database, its previous version
and the repository, and starting the workers;
``caches``: loading and saving the checksum and table caches
(a save after the scans is part of ``scan``);
``plan``: what changed, from the dependency table and the listing;
``lock``: opening the repository and claiming the version;
``scan``: until the last file was scanned,
with ``pipeline`` while the first archives are put;
``put``: the puts left after that;
``dependencies``: the new dependency table in memory;
``check``: the check of the files put and of the lock before the commit;
``commit``: putting the dependency table, then the header;
``release``: removing the lock, closing the repository,
stopping the workers.
The same stages whatever ``pipeline`` and ``scheduler`` are,
and together they take the time of the whole publish."""


@dataclasses.dataclass
class Report:
    r"""Summary of one publish.

    Args:
        database: database name
        version: published version
        previous_version: version it is based on, or ``None``
        repository: repository as ``name host backend``
        num_workers: ``num_workers`` of the call
        cores: most jobs that computed at a time
        scanned_media: media files scanned (checksum and audio properties)
        cached_media: of those, the ones whose values came
            from the checksum cache, without reading them
        scanned_tables: table files scanned
        cached_tables: of those, the ones whose checksums came
            from the checksum cache
        scanned_attachments: attachments scanned
        cached_attachments: of those, the ones whose checksums came
            from the checksum cache
        archives_put: archives written to the repository
        archives_skipped: archives already in the repository
            with the same checksum, not written again
        files_put: other files written: PARQUET tables,
            the dependency table and the header
        files_skipped: other files already in the repository
        bytes_read: bytes read from the database root
            by scans and archives
        bytes_written: bytes written to the repository
        stages: seconds of each stage of :data:`STAGES`, in the order they ran
        seconds: seconds of the whole publish
        retries: requests to the repository retried
            after a passing fault (MinIO/S3 opened with a pacer)
        requests_in_flight: most uploads to the repository at once
            (MinIO/S3), see :mod:`audb_publish.network`
        lock: what the claim of the version did
            about the lock of another publisher, and why:
            waited for it, took it over or broke it,
            see :class:`audb_publish.commit.lock.Event`

    Examples:
        >>> report = Report(database="db", version="1.0.0", seconds=2.0)
        >>> report.bytes_read = 10_000_000
        >>> report.to_dict()["read_mb_per_second"]
        5.0

    """

    database: str = ""
    version: str = ""
    previous_version: str | None = None
    repository: str = ""
    num_workers: int = 1
    cores: int = 1
    scanned_media: int = 0
    cached_media: int = 0
    scanned_tables: int = 0
    cached_tables: int = 0
    scanned_attachments: int = 0
    cached_attachments: int = 0
    archives_put: int = 0
    archives_skipped: int = 0
    files_put: int = 0
    files_skipped: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    retries: int = 0
    requests_in_flight: int = 0
    lock: list[str] = dataclasses.field(default_factory=list)
    _start: float = dataclasses.field(default_factory=time.perf_counter, repr=False)
    _last: float = dataclasses.field(default=0.0, repr=False)

    def mark(self, name: str) -> float:
        r"""Add the time since the last mark to stage ``name``.

        The first mark counts from the creation of the report,
        so the stages add up to the time of the whole publish.

        Args:
            name: stage, one of :data:`STAGES`

        Returns:
            seconds added

        Examples:
            >>> report = Report()
            >>> report.mark("validate") >= 0
            True
            >>> list(report.stages)
            ['validate']

        """
        now = time.perf_counter()
        seconds = now - (self._last or self._start)
        self._last = now
        self.stages[name] = self.stages.get(name, 0.0) + seconds
        return seconds

    def finish(self) -> Report:
        r"""Set the total time.

        Returns:
            the report

        """
        self.seconds = time.perf_counter() - self._start
        return self

    def to_dict(self) -> dict:
        r"""The report as plain types, for JSON.

        Returns:
            every field, with seconds rounded to milliseconds,
            plus ``read_mb_per_second``:
            bytes read per second of the whole publish, in MB (1e6 bytes)

        """
        fields = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if not field.name.startswith("_")
        }
        fields["stages"] = {name: round(s, 3) for name, s in self.stages.items()}
        fields["seconds"] = round(self.seconds, 3)
        seconds = fields["seconds"]  # so that the JSON agrees with itself
        rate = self.bytes_read / seconds / 1e6 if seconds > 0 else 0.0
        fields["read_mb_per_second"] = round(rate, 3)
        return fields

    def to_json(self) -> str:
        r"""The report as JSON.

        Returns:
            JSON text of :meth:`to_dict`

        """
        return json.dumps(self.to_dict(), indent=2)

    def summary(self) -> str:
        r"""The report in a few lines, for people.

        Returns:
            text

        Examples:
            >>> print(Report(database="db", version="1.0.0").summary())
            published db 1.0.0 in 0.00 s
              scanned 0 media, 0 tables, 0 attachments
                (0, 0, 0 from the checksum cache)
              read 0.0 MB (0.0 MB/s)
              put 0 archives and 0 files (0.0 MB), 0 already there
              stages: none

        """
        data = self.to_dict()
        stages = ", ".join(f"{name} {s:.2f} s" for name, s in self.stages.items())
        return "\n".join(
            [
                f"published {self.database} {self.version} in {data['seconds']:.2f} s",
                f"  scanned {self.scanned_media} media, "
                f"{self.scanned_tables} tables, "
                f"{self.scanned_attachments} attachments",
                f"    ({self.cached_media}, {self.cached_tables}, "
                f"{self.cached_attachments} from the checksum cache)",
                f"  read {self.bytes_read / 1e6:.1f} MB "
                f"({data['read_mb_per_second']:.1f} MB/s)",
                f"  put {self.archives_put} archives and {self.files_put} files "
                f"({self.bytes_written / 1e6:.1f} MB), "
                f"{self.archives_skipped + self.files_skipped} already there",
                *(
                    [
                        f"  network: at most {self.requests_in_flight} uploads "
                        f"in flight, {self.retries} requests retried"
                    ]
                    if self.requests_in_flight or self.retries
                    else []
                ),
                f"  stages: {stages or 'none'}",
                *(f"  lock: {event}" for event in self.lock),
            ]
        )
