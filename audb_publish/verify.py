r"""Verify a published version in place, against its dependency table.

A reader of the layout of :mod:`audb_publish.layout`:

* every archive and file the dependency table names
  is in the repository for its version:
  ``/<name>/media/<version>/<archive>.zip``,
  ``/<name>/attachment/<version>/<archive>.zip``,
  ``/<name>/meta/<version>/<table>.zip`` or ``.parquet``,
  plus the header and the dependency table itself;
* each archive holds the files the table assigns to it
  (read from its central directory only:
  a few KB per archive, from the end of the file);
  an archive of the verified version holds nothing else;
  an archive of an earlier version may also hold files
  the table now takes from a newer archive;
* the folders of the version hold nothing else:
  no lock of a publish, no partial file of a publish that was killed,
  no file the table does not name.

With ``deep=True``,
every member the table names is streamed
and its MD5 compared with the table
(for an attachment folder, its checksum as :func:`audeer.md5` computes it;
for a PARQUET table, the hash in its metadata),
without writing anything to disk.
On MinIO/S3 that reads every byte of the version once,
in ranged requests of 8 MiB.

"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import hashlib
import json
import os
import posixpath
import tempfile
import zipfile

import audb
import audbackend

from audb_publish import hashing
from audb_publish import layout
from audb_publish import owners
from audb_publish.layout import DEPENDENCY_FILE
from audb_publish.layout import LOCK_FILE
from audb_publish.remote import Remote
from audb_publish.scheduler import JobKind
from audb_publish.scheduler import Jobs
from audb_publish.scheduler import Scheduler

r"""Remote folder of each dependency type, tables are in ``meta``."""


@dataclasses.dataclass(frozen=True)
class Problem:
    r"""What is wrong with one file of a published version.

    Args:
        kind: ``"missing"`` (an archive or file),
            ``"missing member"``, ``"extra member"``,
            ``"wrong checksum"``, ``"unreadable"``,
            or ``"extra"`` (a file in a folder of the version
            the table does not name:
            the lock of a publish of the version
            that is running or was killed,
            a partial file of a killed publish, or any other file,
            but for an empty archive,
            which audb puts for an archive whose files were all removed)
        path: backend path, e.g. ``/db/media/1.0.0/a.zip``
        detail: the member, or what was found

    Examples:
        >>> str(Problem("missing", "/db/media/1.0.0/a.zip"))
        'missing: /db/media/1.0.0/a.zip'

    """

    kind: str
    path: str
    detail: str = ""

    def __str__(self) -> str:
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.kind}: {self.path}{detail}"


@dataclasses.dataclass
class Verification:
    r"""Result of :func:`verify`.

    Args:
        name: database name
        version: version verified
        repository: ``name host backend`` of the repository
        deep: whether members were read and checksummed
        files: archives and files checked
        members: archive members checked
        bytes_read: bytes of members read (with ``deep``)
        problems: what is missing, extra or wrong

    Examples:
        >>> Verification("db", "1.0.0", "repo host file-system", False).intact
        True

    """

    name: str
    version: str
    repository: str
    deep: bool
    files: int = 0
    members: int = 0
    bytes_read: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def intact(self) -> bool:
        r"""``True`` if no problem was found."""
        return not self.problems

    def to_json(self) -> str:
        r"""The result as JSON.

        Returns:
            JSON with every field and ``intact``

        """
        data = dataclasses.asdict(self)
        data["intact"] = self.intact
        return json.dumps(data, indent=1)

    def summary(self) -> str:
        r"""The result as text, one line per problem.

        Returns:
            text

        Examples:
            >>> result = Verification("db", "1.0.0", "r h file-system", True, 3, 2)
            >>> print(result.summary())
            db 1.0.0 in r h file-system: intact (3 files and 2 members, checksums)

        """
        what = f"{self.files} files and {self.members} members"
        if self.deep:
            what += ", checksums"
        head = f"{self.name} {self.version} in {self.repository}"
        if self.intact:
            return f"{head}: intact ({what})"
        lines = [f"{head}: {len(self.problems)} problems ({what})"]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)


@dataclasses.dataclass
class _Expected:
    r"""A file of the repository and what the table says it holds."""

    kind: int | None  # dependency type, None for header and dependency table
    path: str  # unversioned backend path
    version: str
    files: dict[str, str]  # member (or attachment path) -> checksum
    current: bool  # of the version verified
    in_table: frozenset[str] = frozenset()  # an older archive may hold these

    @property
    def is_archive(self) -> bool:
        return layout.is_archive(self.path)


def verify(
    name: str,
    version: str,
    repository: audb.Repository,
    *,
    deep: bool = False,
    num_workers: int | None = 1,
    verbose: bool = False,
) -> Verification:
    r"""Check a published version against its dependency table.

    Args:
        name: database name
        version: published version
        repository: repository it is in
        deep: also read every member and compare its checksum
        num_workers: limit of archives checked in parallel
        verbose: show progress

    Returns:
        what was checked and found

    Raises:
        RuntimeError: if ``version`` of ``name`` has no header
            in ``repository``
        audbackend.BackendError: if the repository fails

    Examples:
        >>> db = audformat.Database("mydb")
        >>> db.save("mydb")
        >>> repo = audb.Repository("repo", audeer.mkdir("host"), "file-system")
        >>> _ = audeer.mkdir("host", "repo")
        >>> from audb_publish import publish
        >>> _ = publish("mydb", "1.0.0", repo, verbose=False)
        >>> verify("mydb", "1.0.0", repo).intact
        True

    """
    result = Verification(
        name,
        version,
        f"{repository.name} {repository.host} {repository.backend}",
        deep,
    )
    with Remote(repository.create_backend_interface()) as remote:
        if not remote.exists(layout.header(name), version):
            raise RuntimeError(
                f"There is no version '{version}' of database '{name}' "
                f"in repository '{repository.name}'."
            )
        deps = _dependencies(remote, name, version, result)
        if deps is None:
            return result
        expected = _expected(deps, name, version)
        present = _present(remote, expected, result)
        result.problems += _extras(remote, expected, name, version)
        with Scheduler(num_workers, verbose=verbose, desc=f"Verify {version}") as pool:
            total = sum(present.values()) if deep else 0
            pool.display.phase("verify", total_bytes=total, total_files=len(expected))
            jobs = Jobs(pool)
            for item in expected:
                if remote.path(item.path, item.version) in present:
                    jobs.submit(
                        JobKind.CHECK, None, _check, remote, item, deep, files=1
                    )
            pool.display.update(0, files=len(expected) - jobs.count)  # missing
            for _, _, (members, nbytes, problems) in jobs.finished():
                result.members += members
                result.bytes_read += nbytes
                result.problems += problems
    result.problems.sort(key=lambda problem: (problem.path, problem.detail))
    return result


def _dependencies(
    remote: Remote, name: str, version: str, result: Verification
) -> audb.Dependencies | None:
    r"""The dependency table of the version, ``None`` if it cannot be read."""
    path = layout.dependencies(name)
    with tempfile.TemporaryDirectory(prefix=owners.temp_prefix()) as tmp:
        local = os.path.join(tmp, DEPENDENCY_FILE)
        try:
            data = remote.read(path, version)
        except audbackend.BackendError:
            result.problems.append(Problem("missing", remote.path(path, version)))
            return None
        with open(local, "wb") as fp:
            fp.write(data)
        deps = audb.Dependencies()
        try:
            deps.load(local)
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            result.problems.append(
                Problem("unreadable", remote.path(path, version), detail)
            )
            return None
        return deps


def _expected(deps: audb.Dependencies, name: str, version: str) -> list[_Expected]:
    r"""Archives and files the table names, each with its members."""
    df = deps()
    in_table = frozenset(df.index)
    groups: dict[tuple[str, str], _Expected] = {}
    for file, kind, archive, file_version, checksum in zip(
        df.index, df["type"], df["archive"], df["version"], df["checksum"], strict=True
    ):
        path = layout.of_entry(name, file, kind, archive)
        key = (path, file_version)
        if key not in groups:
            current = file_version == version
            groups[key] = _Expected(kind, path, file_version, {}, current, in_table)
        groups[key].files[file] = checksum
    header = _Expected(None, layout.header(name), version, {}, True)
    return [*groups.values(), header]


def _present(
    remote: Remote, expected: list[_Expected], result: Verification
) -> dict[str, int]:
    r"""Sizes of the expected files that are there; the others are problems."""
    folders: dict[str, dict[str, int]] = {}
    present = {}
    for item in expected:
        path = remote.path(item.path, item.version)
        folder = path.rsplit("/", 1)[0] + "/"
        if folder not in folders:
            folders[folder] = remote.files(folder)
        if path in folders[folder]:
            present[path] = folders[folder][path]
        else:
            result.problems.append(Problem("missing", path))
        result.files += 1
    return present


def _extras(
    remote: Remote, expected: list[_Expected], name: str, version: str
) -> list[Problem]:
    r"""Files in the folders of ``version`` that the table does not name."""
    named = {remote.path(item.path, item.version) for item in expected}
    named.add(remote.path(layout.dependencies(name), version))
    problems = []
    for folder in layout.version_folders(name, version):
        for path in remote.files(folder, partial=True):
            if path in named:
                continue
            file = path.rsplit("/", 1)[1]
            if _empty_archive(remote, path):
                continue  # audb puts one for an archive whose files were removed
            if file == LOCK_FILE:
                detail = "a lock of a publish"
            elif file.endswith(".partial"):
                detail = "a partial file"
            else:
                detail = "not in the dependency table"
            problems.append(Problem("extra", path, detail))
    return problems


def _empty_archive(remote: Remote, path: str) -> bool:
    r"""``True`` if ``path`` is a ZIP archive without members."""
    if not layout.is_archive(path):
        return False
    folder, file = path.rsplit("/", 1)
    version = folder.rsplit("/", 1)[1]
    unversioned = f"{folder.rsplit('/', 1)[0]}/{file}"
    try:
        with (
            remote.open(unversioned, version) as fp,
            zipfile.ZipFile(fp) as archive,
        ):
            return archive.namelist() == []
    except (zipfile.BadZipFile, OSError, audbackend.BackendError):
        return False


def _check(
    remote: Remote, item: _Expected, deep: bool, progress: Callable[[int], None]
) -> tuple[int, int, list[Problem]]:
    r"""Check one archive or file: members checked, bytes read, problems."""
    path = remote.path(item.path, item.version)
    parquet = item.path.endswith(".parquet")
    if not item.is_archive and not (deep and parquet):
        return 0, 0, []  # there, as the listing showed
    try:
        with remote.open(item.path, item.version) as fp:
            if item.is_archive:
                return _check_archive(fp, path, item, deep, progress)
            ((file, checksum),) = item.files.items()
            found = hashing.parquet_hash(fp)
            if found != checksum:
                detail = f"{file}: {found}, not {checksum}"
                return 1, 0, [Problem("wrong checksum", path, detail)]
            return 1, 0, []
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        return 0, 0, [Problem("unreadable", path, f"{type(error).__name__}: {error}")]


def _check_archive(
    fp, path: str, item: _Expected, deep: bool, progress: Callable[[int], None]
) -> tuple[int, int, list[Problem]]:
    with zipfile.ZipFile(fp) as archive:
        members = [name for name in archive.namelist() if not name.endswith("/")]
        owner = {
            member: _owner(member, item.files, item.kind == layout.ATTACHMENT)
            for member in members
        }
        problems = [
            Problem("missing member", path, file)
            for file in item.files
            if file not in owner.values()
        ]
        problems += [
            Problem("extra member", path, member)
            for member, file in owner.items()
            if file is None and (item.current or member not in item.in_table)
        ]
        nbytes = 0
        if deep:
            for file, checksum in item.files.items():
                names = sorted(m for m, f in owner.items() if f == file)
                if not names:
                    continue
                found, n = _checksum(archive, file, names, progress)
                nbytes += n
                if found != checksum:
                    detail = f"{file}: {found}, not {checksum}"
                    problems.append(Problem("wrong checksum", path, detail))
    return len(members), nbytes, problems


def _owner(member: str, files: dict[str, str], attachment: bool) -> str | None:
    r"""The file of the table a member belongs to, ``None`` if none."""
    if member in files:
        return member
    if attachment:
        for file in files:
            if member.startswith(file.rstrip("/") + "/"):
                return file
    return None


def _checksum(
    archive: zipfile.ZipFile,
    file: str,
    names: list[str],
    progress: Callable[[int], None],
) -> tuple[str, int]:
    r"""Checksum of a file, or of a folder as :func:`audeer.md5` computes it."""
    hasher = hashlib.md5()
    folder = names != [file]
    buffer = hashing.buffer()
    nbytes = 0
    for name in names:
        if folder:
            hasher.update(posixpath.relpath(name, file.rstrip("/")).encode())
        with archive.open(name) as member:
            while n := member.readinto(buffer):
                hasher.update(buffer[:n])
                nbytes += n
        # the display counts the bytes of the archives in the repository
        progress(archive.getinfo(name).compress_size)
    return hasher.hexdigest(), nbytes
