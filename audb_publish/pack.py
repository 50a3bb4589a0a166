"""Pack-and-put stage: archives and files to the repository, in worker jobs.

Each job builds one archive (or takes one file) and puts it,
reading every member once;
it returns what it did, a :class:`~audb_publish.remote.Transfer`,
which the calling process records,
and never touches the dependency table.
Every member that was scanned
is checked right after it was written
not to have changed since its scan,
see :mod:`audb_publish.integrity`.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import os
import shutil
import tempfile

from audb_publish import compression as compression_
from audb_publish import integrity
from audb_publish import owners
from audb_publish.executors import RemoteRef
from audb_publish.executors import resolve
from audb_publish.plan import Put
from audb_publish.progress import UPLOAD
from audb_publish.remote import Remote
from audb_publish.remote import Transfer


def put(
    remote: Remote | RemoteRef,
    db_root: str,
    version: str,
    item: Put,
    compression: str | int,
    progress: Callable[[int], None],
) -> Transfer:
    r"""Build an archive, or take a file, and put it in the repository.

    Args:
        remote: the repository, or a reference to it
            for a job on another process
        db_root: database root
        version: version to publish
        item: what to put
        compression: see :func:`audb_publish.compression.check`
        progress: called with the number of bytes after each read;
            it may raise to stop the job;
            and with the bytes of ``item`` and ``stage="upload"``
            once it is in the repository

    Returns:
        what the put did

    Raises:
        RuntimeError: if members missing on disk cannot be downloaded
            from the previous version
        audb_publish.integrity.FileChangedError: if a file
            changed since its scan
        FileNotFoundError: if a file was deleted since its scan,
            with its path relative to ``db_root`` as ``filename``
        audbackend.BackendError: if the backend fails

    """
    remote = resolve(remote)
    if item.missing:
        download_missing(remote, db_root, item)
    guards = integrity.guards(item.kind, item.files, item.signatures)
    if item.is_archive:
        transfer = remote.put_archive(
            item.path,
            version,
            db_root,
            item.files,
            [
                compression_.codec(file, compression, *audio)
                for file, audio in zip(item.files, item.audio, strict=True)
            ],
            progress=progress,
            guards=guards,
        )
    else:
        transfer = remote.put_file(
            os.path.join(db_root, item.files[0]), item.path, version, guard=guards[0]
        )
        progress(item.nbytes)
    progress(item.nbytes, stage=UPLOAD)  # in the repository now
    return transfer


def put_many(
    remote: Remote | RemoteRef,
    db_root: str,
    version: str,
    items: Sequence[Put],
    compression: str | int,
    progress: Callable[[int], None],
) -> list[Transfer]:
    r"""Put several archives or files, one after the other.

    One job per small archive would cost more in scheduling
    than writing the archive does.

    Args:
        remote: the repository, or a reference to it
        db_root: database root
        version: version to publish
        items: what to put
        compression: see :func:`audb_publish.compression.check`
        progress: see :func:`put`

    Returns:
        what each put did

    """
    transfers = [
        put(remote, db_root, version, item, compression, progress) for item in items
    ]
    if isinstance(remote, RemoteRef):  # on another process: its uploads end here
        resolve(remote).flush()
    return transfers


def download_missing(remote: Remote, db_root: str, item: Put) -> None:
    r"""Copy members of an archive that are not on disk from the previous version.

    This happens when a media file is removed
    from a database loaded with ``only_metadata=True``,
    and its archive holds other media files.
    As with :func:`audb.publish`,
    the downloaded files stay in ``db_root``.

    Args:
        remote: the repository
        db_root: database root
        item: the archive with ``missing`` members

    Raises:
        RuntimeError: if the download fails;
            files copied so far are removed

    """
    with tempfile.TemporaryDirectory(prefix=owners.temp_prefix()) as tmp:
        try:
            remote.get_archive(item.path, tmp, item.missing_version)
            for file in item.missing:
                dst = os.path.join(db_root, file)
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy(os.path.join(tmp, file), dst)
        except Exception as error:
            for file in item.missing:
                try:
                    os.remove(os.path.join(db_root, file))
                except OSError:
                    pass
            raise RuntimeError(
                "Failed to download missing media files "
                f"for archive {item.path}: {error}"
            ) from error
