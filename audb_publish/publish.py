"""The publication, told as its stages.

Data flows validate -> scan -> plan -> pack and put -> commit.
:func:`publish` validates the database,
sets up the plan from the previous dependency table,
loads the checksum cache and claims the version,
then scans every file while the plan takes the scan results
and tells which archives and files are ready to put;
they are packed and put once every scan finished,
or as soon as they are ready with ``pipeline``.
Then the plan applies the changes to the dependency table,
and commit puts it and the header.
The report times every step in the stages of
:data:`audb_publish.report.STAGES`, the same whatever ``pipeline`` is;
together they take the time of the whole publish.

"""

from __future__ import annotations

from collections.abc import Mapping
import functools
import logging

import audb

from audb_publish import compression as compression_
from audb_publish import owners
from audb_publish import pack
from audb_publish import pipeline as pipeline_
from audb_publish import scan
from audb_publish.checksum_cache import ChecksumCache
from audb_publish.commit import VersionLock
from audb_publish.commit import commit
from audb_publish.executors import RemoteRef
from audb_publish.plan import Plan
from audb_publish.plan import Put
from audb_publish.report import Report
from audb_publish.scheduler import JobKind
from audb_publish.scheduler import Jobs
from audb_publish.scheduler import Scheduler
from audb_publish.table_cache import TableCache
from audb_publish.validate import Context
from audb_publish.validate import check_basis
from audb_publish.validate import check_versions
from audb_publish.validate import validate

logger = logging.getLogger("audb_publish")


def publish(
    db_root: str,
    version: str,
    repository: audb.Repository | None = None,
    *,
    archives: Mapping[str, str] | None = None,
    previous_version: str | None = "latest",
    cache_root: str | None = None,
    num_workers: int | None = 1,
    verbose: bool = True,
    pipeline: bool = False,
    compression: str | int = "auto",
    checksum_cache: bool = True,
    break_lock: bool = False,
    scheduler: str | object = "threads",
    lock_timeout: float = 0.0,
    max_requests: int | None = None,
) -> audb.Dependencies:
    r"""Publish a database, as :func:`audb.publish` does, but faster.

    Same arguments, defaults, checks, exceptions and result
    as :func:`audb.publish` of audb 1.15,
    plus the keyword-only arguments ``pipeline`` and ``compression``.
    The repository it writes equals upstream's:
    the same dependency table, remote paths and versions,
    and archives that extract to the same bytes.
    Only the compression inside an archive differs.

    All checksums, audio properties and archives
    are computed by jobs on the workers of ``scheduler``
    (by default threads of this process,
    which hash and compress with the GIL released).
    ``num_workers`` limits the work in parallel, as in :func:`audb.publish`,
    but computing (hashing, probing, compressing, writing archives)
    never runs on more threads than the cores this process may use;
    only waiting on the repository (uploads, S3 requests)
    uses the threads beyond them.
    So any ``num_workers`` at or above the number of cores
    gives the best speed.
    Workers return results;
    the dependency table is changed only by the calling thread,
    so it does not depend on ``num_workers``.

    Before its first upload,
    a publish claims the version in the repository with a lock file
    that stock audb never reads,
    so a second publisher of the same version fails at once,
    or waits up to ``lock_timeout`` seconds.
    The lock is a lease the publish renews;
    the lock of a publish that is provably gone
    (its process ended on this host, or its lease expired)
    is taken over with a warning,
    see :mod:`audb_publish.commit.lock`.
    Before the header, it checks that every file it put
    is still in the repository as it put it.
    The header is put last, and only if none is there.
    If anything fails,
    the original exception is raised,
    the new version stays invisible,
    and publishing again completes the version.
    Unlike :func:`audb.publish`,
    a failure to put the header is raised, too.
    After a successful publish,
    what it did (files scanned, archives put and skipped,
    bytes read and written, the time of each stage)
    is logged at INFO on the ``audb_publish`` logger,
    see :class:`audb_publish.report.Report`.

    Args:
        db_root: root folder of the database
        version: version to publish
        repository: repository to publish to.
            If ``None``,
            the repository of ``previous_version`` is used
        archives: archive names of media files,
            to bundle several files into one archive.
            Names have no extension
        previous_version: version this one is based on.
            ``"latest"`` takes the latest published version, if any.
            ``None`` starts from scratch
        cache_root: where the checksum cache is kept,
            see ``checksum_cache``.
            The previous version's dependency table
            is read from the repository,
            not from audb's cache as :func:`audb.publish` does,
            which may hold the table of another database
            of the same name and version in another repository
        num_workers: limit of work in parallel.
            At most as many threads compute as there are cores,
            the others wait on the repository.
            ``None`` for five per CPU
        verbose: show progress
        pipeline: put each archive as soon as its members are scanned,
            while other files are still scanned,
            instead of scanning everything first.
            At most ``num_workers`` archives exist on local disk
            or are in flight at once, whatever the size of the database
        compression: compression inside archives.
            ``"auto"`` stores formats that are already compressed,
            such as FLAC, MP3 and OGG,
            and deflates everything else
            with ISA-L or zlib-ng where they are faster than zlib level 6
            and were measured at most 0.2% larger, else with zlib level 6,
            see :mod:`audb_publish.compression`.
            ``"zlib"`` deflates everything with zlib level 6 as upstream,
            ``"deflate"`` everything with ISA-L,
            ``"store"`` nothing,
            an int from 1 to 3 deflates everything at that ISA-L level
        checksum_cache: take the checksum and audio properties
            of a media file, table file or attachment
            whose files' paths, devices, inodes, sizes,
            modification and change times are those of the last publish
            of this ``db_root`` from a cache under ``cache_root``
            (audb's default cache root if ``None``)
            instead of reading the file,
            see :mod:`audb_publish.checksum_cache`,
            and the media a table references
            if its file and definition are unchanged
            since it passed validation,
            see :mod:`audb_publish.table_cache`.
            The dependency table is the same with or without the cache
        break_lock: remove the lock of another publisher of ``version``
            before claiming the version.
            The last resort, rarely needed:
            a lock left by a publish that no longer runs
            is taken over without it once it is stale,
            and :func:`audb_publish.unlock` removes one lock by its token.
            Breaking the lock of a running publish
            makes it fail before its commit
        scheduler: where scan and put jobs run, named as in Dask:
            ``"threads"`` of this process,
            ``"processes"``, a pool of ``num_workers`` processes
            (at most as many as this process has cores),
            or a Dask cluster, as a :class:`distributed.Client`
            or the address of its scheduler, e.g. ``"tcp://host:8786"``
            (needs ``pip install audb-publish[dask]``).
            Workers of a cluster must see ``db_root``
            (and a file-system repository) at the same path;
            this is checked before anything is put.
            Each worker opens the repository with its own credentials.
            Validation, planning and the dependency table
            stay in this process,
            see :mod:`audb_publish.executors`
        lock_timeout: seconds to wait for another publisher of ``version``
            to finish or go stale, instead of failing at once.
            If it finishes and ``version`` exists,
            :func:`audb.publish`'s error for an existing version is raised
        max_requests: requests in flight to a MinIO/S3 repository
            at once, apart from ``num_workers``,
            which bounds computing.
            ``None`` adapts: it starts at 32,
            grows while no ``SlowDown`` arrives, up to 128,
            and shrinks on ``SlowDown``, never below ``num_workers``.
            An int fixes where it starts and its cap
            (at least ``num_workers``);
            ``max_requests=num_workers`` uploads as before this option,
            e.g. to a small self-hosted server.
            See :mod:`audb_publish.network`

    Returns:
        dependency table of the new version

    Raises:
        audb_publish.commit.VersionLockedError: if another publisher
            holds the version
            and did not finish or go stale within ``lock_timeout``
            (a :class:`RuntimeError`)
        audb_publish.commit.VersionLockLostError: if another publisher
            took the lock while this one published,
            or it could not be renewed for a whole lease;
            nothing is committed (a :class:`RuntimeError`)
        audb_publish.commit.RepositoryChangedError: if a file put
            changed in the repository before the commit
            (a :class:`RuntimeError`)
        RuntimeError: if the version exists,
            tables reference files that are neither on disk
            nor published,
            an attachment is missing, a symlink, empty,
            overlaps media or tables,
            or contains an empty folder,
            the dependency table in ``db_root`` does not match
            ``previous_version``,
            the previous version is in another repository,
            the database is not portable,
            a new media file has an uppercase extension,
            a table or attachment ID has a char not in ``[A-Za-z0-9._-]``,
            a table cannot be loaded by audformat,
            a table lists a CSV table file as media
            (stricter than :func:`audb.publish`),
            or sox and mediainfo are needed but not installed
        audb_publish.integrity.FileChangedError: if a file changed
            between its scan and its pack (a :class:`RuntimeError`)
        ValueError: if a version cannot be parsed,
            ``previous_version`` is not smaller than ``version``,
            ``repository`` is ``None`` without a previous version,
            a value in a table does not match its scheme,
            a table has duplicated index entries,
            an archive name has a char the backend does not allow,
            or a ``..`` part
            (stricter than :func:`audb.publish`),
            ``num_workers`` is smaller than 1,
            ``lock_timeout`` is negative,
            ``max_requests`` is smaller than 1,
            ``compression`` or ``scheduler`` is not valid
        TypeError: if a PARQUET table file has no metadata,
            as :func:`audb.publish`, with a clearer message
        KeyError: if audb cannot read the audio properties of a media file,
            e.g. of a WAV file with an NMS ADPCM subtype
        FileNotFoundError: if ``db_root`` has no database header,
            or a file was deleted while publishing
        audbackend.BackendError: if the repository fails
        ImportError: if ``scheduler`` is a Dask cluster
            and :mod:`distributed` is not installed

    Examples:
        >>> db = audformat.Database("mydb")
        >>> db.save("mydb")
        >>> repository = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> deps = publish("mydb", "1.0.0", repository, verbose=False)
        >>> len(deps)
        0
        >>> sorted(os.listdir(os.path.join("host", "repo", "mydb")))
        ['1.0.0']

    """
    report = Report(version=version)  # its clock starts
    check_versions(version, previous_version)
    compression_.check(compression)
    check_lock_timeout(lock_timeout)
    check_max_requests(max_requests)
    basis = check_basis(db_root, version, repository, previous_version)
    # temporary folders of publishes on this host that are gone
    owners.sweep()
    owners.sweep(db_root, hidden=True)
    with Scheduler(
        num_workers, verbose=verbose, desc=f"Publish {version}", scheduler=scheduler
    ) as workers:
        _mark(report, "validate")
        if checksum_cache:
            tables = TableCache.load(db_root, cache_root)
        else:
            tables = TableCache.off(db_root)
        _mark(report, "caches")
        ctx = validate(workers, basis, archives, table_cache=tables)
        _mark(report, "validate")
        tables.save()  # the tables passed validation
        if checksum_cache:
            cache = ChecksumCache.load(db_root, cache_root)
        else:
            cache = ChecksumCache.off(db_root)
        _mark(report, "caches")
        plan = Plan(ctx)
        _mark(report, "plan")
        lock = VersionLock(
            ctx.remote,
            ctx.db.name,
            version,
            break_lock=break_lock,
            lock_timeout=lock_timeout,
        )
        ctx.remote.configure(workers.num_workers, max_requests)
        with ctx.remote, lock:
            _mark(report, "lock")
            report.lock = [str(event) for event in lock.events]
            scan_and_put(workers, ctx, plan, compression, pipeline, report, cache)
            plan.apply(ctx.deps)
            _mark(report, "dependencies")
            checked = functools.partial(_mark, report, "check")
            commit(
                ctx.remote,
                ctx.deps,
                db_root,
                ctx.db.name,
                version,
                lock,
                checked=checked,
            )
            _mark(report, "commit")
    _mark(report, "release")
    _log_report(report, ctx, workers)
    return ctx.deps


def check_lock_timeout(lock_timeout: float) -> None:
    r"""Check ``lock_timeout`` of :func:`publish`.

    Args:
        lock_timeout: seconds

    Raises:
        ValueError: if it is not a number of seconds, 0 or more

    Examples:
        >>> check_lock_timeout(0)
        >>> check_lock_timeout(-1)
        Traceback (most recent call last):
        ValueError: lock_timeout must be 0 or more seconds, not -1

    """
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float):
        raise ValueError(
            f"lock_timeout must be 0 or more seconds, not {lock_timeout!r}"
        )
    if not lock_timeout >= 0:
        raise ValueError(
            f"lock_timeout must be 0 or more seconds, not {lock_timeout!r}"
        )


def check_max_requests(max_requests: int | None) -> None:
    r"""Check ``max_requests`` of :func:`publish`.

    Args:
        max_requests: requests in flight

    Raises:
        ValueError: if it is neither ``None`` nor an int of 1 or more

    Examples:
        >>> check_max_requests(None)
        >>> check_max_requests(0)
        Traceback (most recent call last):
        ValueError: max_requests must be None or a positive integer, not 0

    """
    if max_requests is None:
        return
    if isinstance(max_requests, bool) or not isinstance(max_requests, int):
        ok = False
    else:
        ok = max_requests >= 1
    if not ok:
        raise ValueError(
            f"max_requests must be None or a positive integer, not {max_requests!r}"
        )


def scan_and_put(
    scheduler: Scheduler,
    ctx: Context,
    plan: Plan,
    compression: str | int,
    pipeline: bool,
    report: Report,
    cache: ChecksumCache,
) -> None:
    r"""Scan every file and put what changed, on the workers of ``scheduler``.

    Scan results go to ``plan`` as they arrive.
    Without ``pipeline``, puts start once every scan finished;
    with it, each archive is put as soon as it is ready.

    Args:
        scheduler: worker pool
        ctx: validated publication
        plan: collects scan results
        compression: see :func:`publish`
        pipeline: see :func:`publish`
        report: takes the number of files scanned and the stage times
        cache: checksum cache, saved once every scan finished

    """
    # as in audb, scan errors win over an archive name the backend forbids,
    # which is raised before anything is put
    pipeline = pipeline and plan.archives_valid
    jobs = Jobs(scheduler)
    held: list[Put] = []
    scheduler.executor.check_storage(ctx.db_root, ctx.repository)
    remote = ctx.remote
    if not scheduler.executor.local:  # workers open the repository themselves
        remote = RemoteRef.of(
            ctx.repository, scheduler.num_workers, ctx.remote.max_requests
        )

    def submit_puts() -> None:
        sizes = [item.nbytes for item in held]
        for batch in scan.batches(held, sizes, scheduler.num_workers):
            nbytes = sum(item.nbytes for item in batch)
            jobs.submit(
                JobKind.PUT,
                None,
                pack.put_many,
                remote,
                ctx.db_root,
                ctx.version,
                batch,
                compression,
                nbytes=nbytes,
                files=sum(item.scanned for item in batch),
                stage=pipeline_.PUT[0],
                credit=pipeline_.PUT,
            )
        held.clear()

    def ready(items: list[Put]) -> None:
        held.extend(items)
        if pipeline:
            submit_puts()

    def scanned() -> None:
        _mark(report, "scan")
        plan.check_archives()
        submit_puts()
        cache.save()  # while the workers put

    label = "scan and put" if pipeline else "scan, then put"
    pipeline_.scan_all(
        jobs, ctx, plan, report, ready, scanned, label, cache, overlap=pipeline
    )
    ctx.remote.flush()  # uploads still in flight
    _mark(report, "put")


def _mark(report: Report, name: str) -> None:
    r"""End a part of stage ``name`` now, see :meth:`Report.mark`."""
    seconds = report.mark(name)
    logger.debug("%s: %.3f s", name, seconds, extra={"stage": name, "seconds": seconds})


def _log_report(report: Report, ctx: Context, scheduler: Scheduler) -> None:
    r"""Complete the report and log it at INFO."""
    transfers = ctx.remote.transfers
    repository = ctx.repository
    report.database = ctx.db.name
    report.previous_version = ctx.previous_version
    report.repository = f"{repository.name} {repository.host} {repository.backend}"
    report.num_workers = scheduler.num_workers
    report.cores = scheduler.cores
    report.archives_put = transfers["archive", "put"]
    report.archives_skipped = transfers["archive", "skipped"]
    report.files_put = transfers["file", "put"]
    report.files_skipped = transfers["file", "skipped"]
    report.bytes_read = scheduler.display.bytes
    report.bytes_written = transfers["bytes"]
    report.retries = ctx.remote.retries
    if ctx.remote.pacer is not None:
        report.requests_in_flight = ctx.remote.pacer.most
    report.finish()
    logger.info("%s", report.summary(), extra={"report": report})
