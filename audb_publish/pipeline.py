"""Pipeline: the calling thread drives the scan jobs and hands results on.

:func:`scan_all` submits the jobs of :mod:`audb_publish.scan`,
hands their results to the :class:`~audb_publish.plan.Plan`
and the archives and files that are then ready to be put to its caller,
for :func:`audb_publish.publish` and :func:`audb_publish.dry_run` alike.

"""

from __future__ import annotations

from collections.abc import Callable

from audb_publish import scan
from audb_publish.checksum_cache import ChecksumCache
from audb_publish.plan import Plan
from audb_publish.plan import Put
from audb_publish.report import Report
from audb_publish.scheduler import JobKind
from audb_publish.scheduler import Jobs
from audb_publish.validate import Context

PUT = ("compress", "upload")
r"""Stages of the progress display that puts report, see :mod:`audb_publish.pack`."""


def scan_all(
    jobs: Jobs,
    ctx: Context,
    plan: Plan,
    report: Report,
    ready: Callable[[list[Put]], None],
    scanned: Callable[[], None],
    label: str,
    cache: ChecksumCache,
    *,
    puts: bool = True,
    overlap: bool = False,
) -> None:
    r"""Scan attachments, tables and media, and tell what is ready to be put.

    Args:
        jobs: where the scans are submitted;
            ``ready`` and ``scanned`` may submit puts there, too
        ctx: validated publication
        plan: collects scan results
        report: takes the number of files scanned
        ready: takes archives and files to put as they become known
        scanned: called once every scan finished
        label: name of the phase in the progress display
        cache: media files, table files and attachments
            it knows unchanged are not read,
            and it records every scan
            (:meth:`~audb_publish.checksum_cache.ChecksumCache.off`
            knows and records nothing)
        puts: the caller puts what is ready, as jobs of ``jobs``
            submitted with the stages :data:`PUT`
            and the files they hold (:attr:`~audb_publish.plan.Put.scanned`),
            so the display shows those stages,
            and a file handed to a put is done when the put finished
        overlap: puts run while files are scanned

    """
    display = jobs.scheduler.display
    root = ctx.db_root
    attachments = plan.attachments_to_scan()
    tables = plan.tables_to_scan()
    files, sizes = plan.media_to_scan()
    report.scanned_media = len(files)
    report.scanned_tables = len(tables)
    report.scanned_attachments = len(attachments)
    # every scanned file may have changed and need a put, until scans tell
    scan_bytes = _scan_bytes(ctx, plan, sizes)
    without_scan = plan.media_ready_without_scan()
    # the bytes to put are known once every scan finished
    stages = {"hash": scan_bytes}
    groups = [["hash"]]
    if puts:
        put_total = scan_bytes + sum(item.nbytes for item in without_scan)
        stages.update(compress=put_total, upload=put_total)
        groups = [["hash", "compress", "upload"]] if overlap else [*groups, PUT]
    display.phase(
        label,
        stages=stages,
        groups=groups,
        total_files=len(files) + len(tables) + len(attachments),
    )
    put_bytes = 0
    cached_bytes = 0
    elsewhere = not jobs.scheduler.executor.local
    # looked up here, with the keys of validation's listing
    known, files, sizes = cache.split(files, sizes, ctx.root_keys)
    report.cached_media = len(known.files)
    cached_bytes = known.nbytes
    size_of = ctx.root_files

    def take(items: list[Put]) -> None:
        nonlocal put_bytes
        put_bytes += sum(item.nbytes for item in items)
        if puts:  # not done until put
            display.update(0, files=-sum(item.scanned for item in items))
        ready(items)

    def take_media(result: list[scan.MediaScan]) -> None:
        cache.record(result)
        take(plan.add_media(result))

    def take_path(kind: JobKind, key: str, path: str, result: scan.PathScan) -> None:
        if path not in ctx.media:
            cache.record_path(path, result)
        add = plan.add_attachment if kind is JobKind.ATTACHMENT else plan.add_table
        take(add(key, result.checksum, result.signatures))

    # table files and attachments the cache knows are not read;
    # a table file listed as media is cached as media, with its MD5
    cached_paths = []
    paths = [
        (JobKind.ATTACHMENT, key, path, ctx.attachments[key])
        for key, path in attachments
    ]
    paths += [(JobKind.TABLE, key, file, [file]) for key, file in tables]
    paths_of = {(kind, key): path for kind, key, path, _ in paths}
    for kind, key, path, path_files in paths:
        hit = None
        if path not in ctx.media:
            hit = cache.lookup_path(path, path_files)
        if hit is None:
            nbytes = sum(size_of.get(f, 0) for f in path_files)
            jobs.submit(
                kind,
                key,
                scan.scan_path,
                root,
                path,
                kind.value,
                nbytes=nbytes,
                stage="hash",
            )
        else:
            cached_paths.append((kind, key, path, hit))
    for batch in scan.batches(files, sizes, jobs.scheduler.parallel):
        nbytes = sum(size_of.get(file, 0) for file in batch)
        jobs.submit(
            JobKind.MEDIA,
            None,
            scan.scan_media,
            root,
            batch,
            nbytes=nbytes,
            stage="hash",
        )
    scans = jobs.count
    # after counting the scans: take() may submit puts
    take(without_scan)
    for kind, key, path, hit in cached_paths:
        if kind is JobKind.TABLE:
            report.cached_tables += 1
        else:
            report.cached_attachments += 1
        cached_bytes += sum(signature.size for signature in hit.signatures.values())
        display.update(0, files=1)
        take_path(kind, key, path, hit)
    if cache.enabled:  # as with a cache that knows nothing yet
        display.update(0, files=len(known.files))
        take(plan.add_known(known))
    display.lower_total(scan_bytes - cached_bytes, stage="hash")

    def done() -> None:
        for stage in PUT:
            display.lower_total(put_bytes, stage=stage)
        scanned()

    if scans == 0:
        done()
    for kind, key, result in jobs.finished():
        if kind is JobKind.PUT:
            if elsewhere:  # recorded in another process's Remote: here, too
                for transfer in result:
                    ctx.remote.record(transfer)
            continue
        display.update(0, files=len(result) if kind is JobKind.MEDIA else 1)
        if kind is JobKind.MEDIA:
            take_media(result)
        else:
            take_path(kind, key, paths_of[kind, key], result)
        scans -= 1
        if scans == 0:
            done()


def _scan_bytes(ctx: Context, plan: Plan, media_sizes: list[int]) -> int:
    sizes = ctx.root_files
    tables = sum(sizes.get(file, 0) for _, file in plan.tables_to_scan())
    attachments = sum(
        sizes.get(f, 0) for files in ctx.attachments.values() for f in files
    )
    return sum(media_sizes) + tables + attachments
