"""Plan stage: what changed, what to put, and the new dependency table.

A :class:`Plan` reads the dependency table of the previous version once,
column by column into plain dictionaries
(per-row pandas access would cost minutes for a million files),
and then only its own dictionaries.
It takes the scan results as they arrive
and answers which archives and files are ready to be put:
an archive is ready when all of its members on disk are scanned
and one of them is new or altered,
or it held a removed media file.
Only :meth:`Plan.apply` changes the dependency table,
in the calling thread,
in the same order as :func:`audb.publish`,
so the resulting table is identical to upstream's,
whatever the number of workers and the order results arrived in.

"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from collections.abc import Mapping
import dataclasses
import itertools
import operator
import os

import audb
import audeer
import pandas as pd

from audb_publish import integrity
from audb_publish import layout
from audb_publish.checksum_cache import Known
from audb_publish.integrity import Signature
from audb_publish.layout import ATTACHMENT
from audb_publish.layout import MEDIA
from audb_publish.layout import META
from audb_publish.remote import check_path
from audb_publish.scan import MediaScan
from audb_publish.validate import Context


@dataclasses.dataclass(frozen=True)
class Put:
    r"""An archive or file to put in the repository.

    Args:
        kind: ``"media"``, ``"table"`` or ``"attachment"``
        path: unversioned backend path, e.g. ``/db/media/<archive>.zip``
        files: files relative to the database root;
            the members of the archive,
            or the one file to put if ``path`` is not a ZIP archive
        nbytes: bytes to read
        missing: members to download from the previous version first
        missing_version: version to download them from
        audio: bit depth and channels of each file, ``(0, 0)`` if not audio
        signatures: signature of each file when it was scanned,
            ``None`` for a file that was not,
            see :mod:`audb_publish.integrity`

    """

    kind: str
    path: str
    files: tuple[str, ...]
    nbytes: int = 0
    missing: tuple[str, ...] = ()
    missing_version: str | None = None
    audio: tuple[tuple[int, int], ...] = ()
    signatures: tuple[Signature | None, ...] = dataclasses.field(
        default=(), compare=False
    )

    def __post_init__(self):
        if not self.audio:
            object.__setattr__(self, "audio", ((0, 0),) * len(self.files))
        if not self.signatures:
            object.__setattr__(self, "signatures", (None,) * len(self.files))

    @property
    def is_archive(self) -> bool:
        r"""``True`` if a ZIP archive of ``files`` is put."""
        return layout.is_archive(self.path)

    @property
    def scanned(self) -> int:
        r"""Scanned files it holds: 1 for an attachment, else those on disk.

        Examples:
            >>> Put("media", "/db/media/a.zip", ("a.wav", "b.wav"), missing=("b.wav",)).scanned
            1

        """  # noqa: E501
        if self.kind == "attachment":
            return 1
        return len(self.files) - len(self.missing)


def _removed_attachments(ctx: Context, df: pd.DataFrame) -> list[str]:
    r"""A file of each published attachment the database no longer has."""
    rows = df[df["type"] == ATTACHMENT]
    removed_ids = [a for a in rows["archive"].unique() if a not in ctx.db.attachments]
    return [rows.index[rows["archive"] == archive][0] for archive in removed_ids]


def _removed_tables(ctx: Context, df: pd.DataFrame) -> list[str]:
    r"""Published table files the database no longer has."""
    published = df.index[df["type"] == META]
    return list(set(published) - set(ctx.tables.values()))


@dataclasses.dataclass
class _MediaArchives:
    r"""The media files of a publication and their archives, before any scan.

    Args:
        table_media: table files listed as media, see ``Plan._take_table_media``
        removed: published media files no table lists any more
        forced: archives put whatever the scans tell:
            they lost a file or have a new one
        archive_of: archive of each media file
        single_member: the one member of archives with one
        several_members: the members of archives with more than one
        added_members: the new members of each archive
        error: the error of the first new archive name the backend refuses
        new: new media files
        files: media files to scan or take from the checksum cache

    """

    table_media: set[str]
    removed: list[str]
    forced: set[str]
    archive_of: dict[str, str]
    single_member: dict[str, str]
    several_members: dict[str, list[str]]
    added_members: dict[str, list[str]]
    error: ValueError | None
    new: set[str]
    files: list[str]

    @classmethod
    def of(cls, ctx: Context, media: pd.DataFrame) -> _MediaArchives:
        r"""Media archives of ``ctx`` from the media rows of the previous version.

        Args:
            ctx: validated publication
            media: media rows of the previous dependency table

        Returns:
            media archives

        """
        # whole-list passes and C-level counting:
        # per-row pandas access costs minutes for a million files,
        # and a Python loop with several steps per row seconds
        name = ctx.db.name
        db_media = ctx.media
        root_files = ctx.root_files
        table_files = {file: table_id for table_id, file in ctx.tables.items()}
        table_media = {f for f in table_files if f in db_media}
        files = media.index.tolist()
        archives = media["archive"].tolist()
        if table_files:  # audb's table stage makes them table rows again
            rows = [
                (f, a)
                for f, a in zip(files, archives, strict=True)
                if f not in table_files
            ]
            files, archives = [f for f, _ in rows], [a for _, a in rows]
        # members of archives, in the order audb lists them after the update
        gone = []
        if db_media.issuperset(files):
            members = dict(zip(files, archives, strict=True))
        else:
            pairs = zip(files, archives, strict=True)
            members = {f: a for f, a in pairs if f in db_media}
            pairs = zip(files, archives, strict=True)
            gone = [(f, a) for f, a in pairs if f not in members]
        forced = {a for _, a in gone}
        for file in media.index[media["removed"] != 0]:  # removed before
            members.pop(file, None)
        archive_of = members
        single_member = {a: f for f, a in members.items()}
        several_members: dict[str, list[str]] = {}
        if len(single_member) < len(members):
            counts = collections.Counter(members.values())
            several_members = {a: [] for a, n in counts.items() if n > 1}
            for file, archive in members.items():
                if archive in several_members:
                    several_members[archive].append(file)
        added_members: dict[str, list[str]] = {}
        # an archive is ready once all its members on disk are taken
        on_disk = [f for f in members if f in root_files]
        new = db_media.difference(files).difference(table_files)
        new = sorted(f for f in new if f in root_files)
        error = None
        for file in new:
            # as audb: an archive name that is false becomes a UID,
            # and an int names the archive as its str does
            archive = str(
                ctx.archives.get(file)
                or audeer.uid(from_string=file.replace("\\", "/"))
            )
            layout.check_archive_name(file, archive, name, ctx.version)
            known = archive in single_member or archive in added_members
            if not known and error is None:
                try:
                    # with the leading "//" that audb's join() gives, as its error
                    check_path(layout.media_as_joined(name, archive))
                except ValueError as exception:
                    error = exception
            archive_of[file] = archive
            added_members.setdefault(archive, []).append(file)
            forced.add(archive)
        return cls(
            table_media=table_media,
            removed=[f for f, _ in gone],
            forced=forced,
            archive_of=archive_of,
            single_member=single_member,
            several_members=several_members,
            added_members=added_members,
            error=error,
            new=set(new),
            files=[*on_disk, *new, *sorted(table_media)],
        )


class Plan:
    r"""What changed in a database, and how to update its dependency table.

    Args:
        ctx: validated publication

    """

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.name = ctx.db.name
        df = ctx.deps()
        media = df[df["type"] == MEDIA]
        # the previous version, read once
        self._checksums = dict(
            zip(df.index.tolist(), df["checksum"].tolist(), strict=True)
        )
        self._versions = df["version"]
        self._snapshot_audio = media[["bit_depth", "channels"]]
        # what was removed, and the archives of the media files
        self._removed_attachments = _removed_attachments(ctx, df)
        self._removed_tables = _removed_tables(ctx, df)
        archives = _MediaArchives.of(ctx, media)
        self._table_media = archives.table_media
        self._removed_media = archives.removed
        self._forced = archives.forced
        self._archive_of = archives.archive_of
        self._single_member = archives.single_member
        self._several_members = archives.several_members
        self._added_members = archives.added_members
        self._archive_error = archives.error
        self._new = archives.new
        self.media_files = archives.files
        r"""Media files to scan or take from the checksum cache."""
        # what the scans tell, as they arrive
        self._attachment_checksums: dict[str, str] = {}
        self._table_checksums: dict[str, str] = {}
        self._table_scans: dict[str, str] = {}
        self._parked: dict[str, MediaScan] = {}
        self._changed: set[str] = set()
        self._audio: dict[str, tuple[int, int]] = {}
        self._signatures: dict[str, Signature | None] = {}
        self._known: Known | None = None
        self._known_files: set[str] = set()
        # archives: members taken so far, and those put
        self._due_counts: dict[str, int] = {}
        self._on_disk_counts: dict[str, int] = {}
        self._taken: dict[str, int] = {}
        self._put_archives: set[str] = set()
        self.put_media: list[Put] = []
        # rows of the new dependency table
        self._add_values: list[tuple] = []
        self._update_values: list[tuple] = []

    # attachments

    def attachments_to_scan(self) -> list[tuple[str, str]]:
        r"""Attachments on disk, to be checksummed.

        Returns:
            attachment ID and path relative to the database root

        """
        return [
            (attachment_id, self.ctx.db.attachments[attachment_id].path)
            for attachment_id in self.ctx.attachments
        ]

    def add_attachment(
        self,
        attachment_id: str,
        checksum: str,
        signatures: Mapping[str, Signature] | None = None,
    ) -> list[Put]:
        r"""Take the checksum of an attachment.

        Args:
            attachment_id: attachment ID
            checksum: its checksum
            signatures: signatures of its files taken by the scan

        Returns:
            the attachment's archive if it is new or altered

        Raises:
            audb_publish.integrity.FileChangedError: if the scan read
                other files than were listed before

        """
        path = self.ctx.db.attachments[attachment_id].path
        if self._checksums.get(path) == checksum:
            return []
        self._attachment_checksums[attachment_id] = checksum
        files = self.ctx.attachments[attachment_id]
        return [
            Put(
                "attachment",
                layout.attachment(self.name, attachment_id),
                tuple(files),
                self._size(files),
                signatures=integrity.aligned("attachment", files, signatures),
            )
        ]

    # tables

    def tables_to_scan(self) -> list[tuple[str, str]]:
        r"""Table files to be checksummed.

        Returns:
            table ID and file relative to the database root

        """
        return list(self.ctx.tables.items())

    def add_table(
        self,
        table_id: str,
        checksum: str,
        signatures: Mapping[str, Signature] | None = None,
    ) -> list[Put]:
        r"""Take the checksum of a table file.

        Args:
            table_id: table ID
            checksum: checksum of its file
            signatures: signature of its file taken by the scan

        Returns:
            the table's archive or PARQUET file if it is new or altered,
            and the media archive of the file if a table lists it as media
            (see :meth:`_take_table_media`)

        """
        file = self.ctx.tables[table_id]
        self._table_scans[file] = checksum
        ready = self._take_table_media(file)
        if self._checksums.get(file) == checksum:
            return ready
        self._table_checksums[table_id] = checksum
        put = Put(
            "table",
            layout.table(self.name, file),
            (file,),
            self._size([file]),
            signatures=integrity.aligned("table", [file], signatures),
        )
        return [put] + ready

    # media

    def _due(self, archive: str, known: bool = True) -> int:
        r"""Media files of an archive on disk: its scans to take before a put.

        Table files listed as media are not counted,
        see :meth:`_take_table_media`,
        nor files taken by :meth:`add_known` unless ``known`` is ``False``.

        """
        counts = self._due_counts if known else self._on_disk_counts
        if archive not in counts:
            on_disk, media = self.ctx.root_files, self._archive_of
            files = [f for f in self._members(archive) if f in on_disk and f in media]
            if known:
                files = [f for f in files if f not in self._known_files]
            counts[archive] = len(files)
        return counts[archive]

    def _members(self, archive: str) -> list[str]:
        r"""Members of an archive, in the order audb lists them after the update."""
        if archive in self._several_members:
            files = list(self._several_members[archive])
        elif archive in self._single_member:
            files = [self._single_member[archive]]
        else:
            files = []
        return files + self._added_members.get(archive, [])

    @property
    def archives_valid(self) -> bool:
        r"""``False`` if a new archive name has a char the backend forbids."""
        return self._archive_error is None

    def check_archives(self) -> None:
        r"""Check the backend paths of new archives.

        :func:`audb.publish` checks them when it puts media archives,
        after every media file was scanned,
        so call this once every scan succeeded
        and before any media archive is put.

        Raises:
            ValueError: if an archive name has a char not in ``[A-Za-z0-9/._-]``,
                with audbackend's message

        """
        if self._archive_error is not None:
            raise self._archive_error

    def media_to_scan(self) -> tuple[list[str], list[int]]:
        r"""Media files to be scanned and their sizes.

        Returns:
            files relative to the database root and sizes in bytes:
            published files in the order of the dependency table,
            then new files, then table files listed as media, sorted

        """
        sizes = list(map(self.ctx.root_files.__getitem__, self.media_files))
        return self.media_files, sizes

    def media_ready_without_scan(self) -> list[Put]:
        r"""Archives to put that have no member to scan.

        They held removed media files,
        and their other members, if any,
        are not on disk.

        Returns:
            archives to put

        """
        return [
            self._media_put(archive)
            for archive in sorted(self._forced)
            if not self._due(archive, known=False)
        ]

    def add_media(self, results: Iterable[MediaScan]) -> list[Put]:
        r"""Take scan results of media files.

        Args:
            results: scan results

        Returns:
            archives that became ready to be put

        """
        ready = []
        for result in results:
            if result.file in self._table_media:
                self._parked[result.file] = result
                ready.extend(self._take_table_media(result.file))
                continue
            self._audio[result.file] = (result.bit_depth, result.channels)
            self._signatures[result.file] = result.signature
            archive = self._archive_of[result.file]
            if result.file in self._new:
                self._add_values.append(self._media_values(result, archive))
                self._changed.add(archive)
            elif self._checksums[result.file] != result.checksum:
                self._update_values.append(self._media_values(result, archive))
                self._changed.add(archive)
            taken = self._taken.get(archive, 0) + 1
            self._taken[archive] = taken
            if (
                archive in self._changed or archive in self._forced
            ) and taken == self._due(archive):
                ready.append(self._media_put(archive))
        return ready

    def add_known(self, known: Known) -> list[Put]:
        r"""Take media files whose values the checksum cache gives.

        A file whose checksum is the one the previous version recorded
        is taken as it is, without a scan result:
        its signature and audio properties are made from the cache
        only if its archive is put.
        Any other file is taken as a scan result, see :meth:`add_media`.

        Args:
            known: what the cache knows, from
                :meth:`audb_publish.checksum_cache.ChecksumCache.split`

        Returns:
            archives that became ready to be put

        """
        self._known = known
        files = known.files
        # whole-list passes with map() and compress(), as a million files
        # would spend seconds in a Python loop;
        # a new file has no previous checksum, so it is never the same
        previous = map(self._checksums.get, files)
        same = list(map(operator.eq, previous, known.checksums))
        if self._table_media:  # decided with their tables
            table_media = self._table_media
            same = [
                s and f not in table_media for s, f in zip(same, files, strict=True)
            ]
        others = list(itertools.compress(files, map(operator.not_, same)))
        self._known_files.update(itertools.compress(files, same))
        self._due_counts.clear()
        ready = [
            self._media_put(archive)
            for archive in sorted(self._changed.union(self._forced))
            if archive not in self._put_archives
            and self._due(archive, known=False)
            and self._taken.get(archive, 0) == self._due(archive)
        ]
        return ready + self.add_media(known.scan(f) for f in others)

    def _take_table_media(self, file: str) -> list[Put]:
        r"""Decide on a table file that a table lists as media, as audb does.

        audb's table stage has made it a table row
        before its media stage compares the file's MD5 with that row's checksum.
        A PARQUET table, whose checksum is the hash in its metadata,
        then becomes a media row in the archive of the table row, ``""``.
        (A table file whose checksum is its MD5 would stay a table row;
        validation refuses it, see
        :func:`audb_publish.validate.check_tables_as_media`.)
        Needs the scan of the file as table and as media.

        """
        result = self._parked.get(file)
        checksum = self._table_scans.get(file)
        if result is None or checksum is None or result.checksum == checksum:
            return []
        archive = ""  # audb's archive of a PARQUET table row
        self._audio[file] = (result.bit_depth, result.channels)
        self._signatures[file] = result.signature
        self._update_values.append(self._media_values(result, archive))
        self._added_members.setdefault(archive, []).append(file)
        self._changed.add(archive)
        if self._taken.get(archive, 0) < self._due(archive):
            return []  # put with the archive's last scanned member
        return [self._media_put(archive)]

    def _media_values(self, result: MediaScan, archive: str) -> tuple:
        return (
            result.file,
            archive,
            result.bit_depth,
            result.channels,
            result.checksum,
            result.duration,
            audeer.file_extension(result.file).lower(),
            0,
            result.sampling_rate,
            MEDIA,
            self.ctx.version,
        )

    def _media_put(self, archive: str) -> Put:
        files = self._members(archive)
        missing = ()
        if self.ctx.previous_version:
            # published members that are not on disk are downloaded first;
            # a scanned one that is gone was deleted since: the pack raises
            missing = tuple(
                f
                for f in files
                if f not in self._new
                and f not in self._signatures
                and f not in self._known_files
                and not os.path.exists(os.path.join(self.ctx.db_root, f))
            )
        put = Put(
            "media",
            self._media_path(archive),
            tuple(files),
            self._size(files),
            missing,
            self._versions[missing[0]] if missing else None,
            tuple(self._audio_of(f) for f in files),
            tuple(self._signature_of(f) for f in files),
        )
        self.put_media.append(put)
        self._put_archives.add(archive)
        return put

    def _signature_of(self, file: str) -> Signature | None:
        if file in self._known_files:
            return self._known.signature(file)
        return self._signatures.get(file)

    def _audio_of(self, file: str) -> tuple[int, int]:
        if file in self._audio:
            return self._audio[file]
        if file in self._known_files:
            scan = self._known.scan(file)
            return scan.bit_depth, scan.channels
        bit_depth, channels = self._snapshot_audio.loc[file]
        return int(bit_depth), int(channels)

    def _media_path(self, archive: str) -> str:
        return layout.media(self.name, archive)

    def _size(self, files: Iterable[str]) -> int:
        sizes = self.ctx.root_files
        return sum(sizes.get(f, 0) for f in files)

    # what changed

    def changes(self) -> dict[str, dict[str, list[str]]]:
        r"""New, altered and removed files; call once every scan finished.

        Returns:
            for ``"media"``, ``"tables"`` and ``"attachments"``,
            the sorted paths, relative to the database root,
            that are ``"new"``, ``"altered"`` or ``"removed"``

        """
        attachments = {
            self.ctx.db.attachments[a].path: c
            for a, c in self._attachment_checksums.items()
        }
        tables = {self.ctx.tables[t]: c for t, c in self._table_checksums.items()}
        return {
            "media": {
                "new": sorted(self._new),
                "altered": sorted(values[0] for values in self._update_values),
                "removed": sorted(self._removed_media),
            },
            "tables": self._changed_files(tables, self._removed_tables),
            "attachments": self._changed_files(attachments, self._removed_attachments),
        }

    def _changed_files(
        self, checksums: Mapping[str, str], removed: Iterable[str]
    ) -> dict[str, list[str]]:
        return {
            "new": sorted(f for f in checksums if f not in self._checksums),
            "altered": sorted(f for f in checksums if f in self._checksums),
            "removed": sorted(removed),
        }

    # dependency table

    def apply(self, deps: audb.Dependencies) -> None:
        r"""Update the dependency table; call once, after every put succeeded.

        The changes are made in the order :func:`audb.publish` makes them:
        attachments, tables, then media,
        so that the rows end up in the same order.

        Args:
            deps: dependency table of the publication

        """
        version = self.ctx.version
        deps._drop(self._removed_attachments)
        for attachment_id in self.ctx.db.attachments:
            if attachment_id in self._attachment_checksums:
                deps._add_attachment(
                    file=self.ctx.db.attachments[attachment_id].path,
                    version=version,
                    archive=attachment_id,
                    checksum=self._attachment_checksums[attachment_id],
                )
        deps._drop(self._removed_tables)
        for table_id in self.ctx.db:
            if table_id in self._table_checksums:
                deps._add_meta(
                    self.ctx.tables[table_id],
                    version,
                    self._table_checksums[table_id],
                )
        deps._drop(self._removed_media)
        if self._update_values:
            deps._update_media(sorted(self._update_values, key=lambda x: x[0]))
        if self._add_values:
            deps._add_media(sorted(self._add_values, key=lambda x: x[0]))
        uploaded = [file for put in self.put_media for file in put.files]
        if uploaded:
            deps._update_media_version(uploaded, version)
