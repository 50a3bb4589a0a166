"""Commit stage: check, then the dependency table, then the header.

The header makes a version visible,
so it is put last, after everything else succeeded,
and only if no header is there.
Before it, :func:`commit` checks that every file this publish put
is still in the repository as it was put
(:meth:`audb_publish.remote.Remote.changed`),
so that no version is committed whose dependency table
records checksums the repository does not hold.
If putting the header fails,
a header that may have arrived is removed again
and the original exception is raised.
The dependency table in the database root
is replaced only after the header is put,
so that a failed publish can simply be run again.

The version lock (:mod:`audb_publish.commit.lock`)
keeps a second publisher of the same version out
from before the first upload to after the header,
and is checked to be still this publish's before the commit.

"""

from __future__ import annotations

from collections.abc import Callable
import concurrent.futures
import contextlib
import os
import tempfile

import audb

from audb_publish import layout
from audb_publish import owners
from audb_publish.commit.lock import VersionLock
from audb_publish.commit.lock import VersionLockedError
from audb_publish.commit.lock import VersionLockLostError
from audb_publish.commit.lock import unlock
from audb_publish.layout import DEPENDENCY_FILE
from audb_publish.layout import HEADER_FILE
from audb_publish.remote import Remote

__all__ = [
    "RepositoryChangedError",
    "VersionLock",
    "VersionLockLostError",
    "VersionLockedError",
    "commit",
    "unlock",
]


class RepositoryChangedError(RuntimeError):
    r"""Files this publish put changed in the repository before the commit.

    Examples:
        >>> issubclass(RepositoryChangedError, RuntimeError)
        True

    """


def commit(
    remote: Remote,
    deps: audb.Dependencies,
    db_root: str,
    name: str,
    version: str,
    lock: VersionLock | None = None,
    *,
    checked: Callable[[], None] | None = None,
) -> None:
    r"""Check the files put and the lock, put the dependency table, then the header.

    Afterwards ``db_root`` holds the new dependency table,
    as after :func:`audb.publish`.

    Args:
        remote: the repository
        deps: final dependency table
        db_root: database root
        name: database name
        version: version to publish
        lock: the claim of ``version``, checked to be still this publish's
        checked: called once the files put and the lock are checked,
            for the report's ``check`` stage

    Raises:
        VersionLockLostError: if the lock is no longer this publish's
        RepositoryChangedError: if a file this publish put
            is missing or changed in the repository
        RuntimeError: if a header of ``version`` is there,
            with :func:`audb.publish`'s message for an existing version
        audbackend.BackendError: if the backend fails;
            the new version is then not visible
            and ``db_root`` is unchanged

    """
    header = layout.header(name)
    exists = RuntimeError(
        f"A version '{version}' already exists for database '{name}'."
    )
    # the checks at once: each waits a round trip on S3
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        checks = [
            pool.submit(check_puts, remote),
            pool.submit(lock.check if lock is not None else lambda: None),
            pool.submit(remote.exists, header, version),
        ]
    for check in checks[:2]:
        check.result()  # raises in this order
    if checked is not None:
        checked()
    if checks[2].result():  # before the dependency table is replaced
        raise exists
    with tempfile.TemporaryDirectory(
        dir=db_root, prefix=owners.temp_prefix(hidden=True)
    ) as tmp:
        deps_file = os.path.join(tmp, DEPENDENCY_FILE)
        deps.save(deps_file)
        remote.put_file(deps_file, layout.dependencies(name), version)
        try:
            remote.put_file(
                os.path.join(db_root, HEADER_FILE), header, version, exclusive=True
            )
        except FileExistsError:
            raise exists from None
        except BaseException:
            with contextlib.suppress(Exception):
                if remote.exists(header, version):
                    remote.remove_file(header, version)
            raise
        os.replace(deps_file, os.path.join(db_root, DEPENDENCY_FILE))


def check_puts(remote: Remote) -> None:
    r"""Check that every file put by this publish is as it was put.

    Args:
        remote: the repository

    Raises:
        RepositoryChangedError: if one is missing or changed
        audbackend.BackendError: if the backend fails

    """
    changed = remote.changed()
    if changed:
        listed = ", ".join(changed[:3])
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        raise RepositoryChangedError(
            f"{len(changed)} files put by this publish changed in the repository "
            f"before the commit: {listed}{more}. "
            "Another process wrote to this version; "
            "it stays invisible, and publishing again replaces the files."
        )
