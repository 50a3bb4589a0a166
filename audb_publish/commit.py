"""Commit stage: the dependency table, then the header.

The header makes a version visible,
so it is put last, after everything else succeeded.
If putting it fails,
a header that may have arrived is removed again
and the original exception is raised.
The dependency table in the database root
is replaced only after the header is put,
so that a failed publish can simply be run again.

"""

from __future__ import annotations

import contextlib
import os
import tempfile

import audb

from audb_publish.remote import DEPENDENCY_FILE
from audb_publish.remote import HEADER_FILE
from audb_publish.remote import Remote


def commit(
    remote: Remote,
    deps: audb.Dependencies,
    db_root: str,
    name: str,
    version: str,
) -> None:
    r"""Put the dependency table, then the header.

    Afterwards ``db_root`` holds the new dependency table,
    as after :func:`audb.publish`.

    Args:
        remote: the repository
        deps: final dependency table
        db_root: database root
        name: database name
        version: version to publish

    Raises:
        audbackend.BackendError: if the backend fails;
            the new version is then not visible
            and ``db_root`` is unchanged

    """
    with tempfile.TemporaryDirectory(dir=db_root, prefix=".audb-publish-") as tmp:
        deps_file = os.path.join(tmp, DEPENDENCY_FILE)
        deps.save(deps_file)
        remote.put_file(deps_file, f"/{name}/{DEPENDENCY_FILE}", version)
        header = f"/{name}/{HEADER_FILE}"
        try:
            remote.put_file(os.path.join(db_root, HEADER_FILE), header, version)
        except BaseException:
            with contextlib.suppress(Exception):
                if remote.exists(header, version):
                    remote.remove_file(header, version)
            raise
        os.replace(deps_file, os.path.join(db_root, DEPENDENCY_FILE))
