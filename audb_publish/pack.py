"""Pack-and-put stage: archives and files to the repository, in worker jobs.

Each job builds one archive (or takes one file) and puts it,
reading every member once;
it returns the :class:`~audb_publish.plan.Put` it finished
and never touches the dependency table.

"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import os
import shutil
import tempfile

from audb_publish import zipwriter
from audb_publish.plan import Put
from audb_publish.remote import Remote

COMPRESSIONS = ("auto", "deflate", "store")
r"""Named values of ``compression``; an ISA-L level 1 to 3 is also accepted."""


def check_compression(compression: str | int) -> None:
    r"""Check the ``compression`` argument of :func:`audb_publish.publish`.

    Args:
        compression: ``"auto"``, ``"deflate"``, ``"store"``,
            or an ISA-L level from 1 to 3

    Raises:
        ValueError: if ``compression`` is none of these

    Examples:
        >>> check_compression("auto")
        >>> check_compression(9)
        Traceback (most recent call last):
        ...
        ValueError: 'compression' must be one of 'auto', 'deflate', 'store', or an int from 1 to 3, not 9.

    """  # noqa: E501
    valid = compression in COMPRESSIONS or (
        isinstance(compression, int)
        and not isinstance(compression, bool)
        and 1 <= compression <= 3
    )
    if not valid:
        raise ValueError(
            "'compression' must be one of 'auto', 'deflate', 'store', "
            f"or an int from 1 to 3, not {compression!r}."
        )


def levels(files: Sequence[str], compression: str | int) -> list[int | None]:
    r"""ISA-L level of each archive member, ``None`` to store it.

    Args:
        files: member files
        compression: see :func:`check_compression`;
            ``"auto"`` stores already compressed formats such as FLAC
            and deflates everything else
            at a level whose output is not larger than zlib's level 6

    Returns:
        one level per file

    Examples:
        >>> levels(["a.wav", "b.flac"], "auto")
        [2, None]
        >>> levels(["a.wav", "b.flac"], "store")
        [None, None]

    """
    if compression == "auto":
        return [zipwriter.default_level(file) for file in files]
    if compression == "store":
        return [None] * len(files)
    level = zipwriter.DEFAULT_LEVEL if compression == "deflate" else compression
    return [level] * len(files)


def put(
    remote: Remote,
    db_root: str,
    version: str,
    item: Put,
    compression: str | int,
    progress: Callable[[int], None],
) -> Put:
    r"""Build an archive, or take a file, and put it in the repository.

    Args:
        remote: the repository
        db_root: database root
        version: version to publish
        item: what to put
        compression: see :func:`check_compression`
        progress: called with the number of bytes after each read;
            it may raise to stop the job

    Returns:
        ``item``

    Raises:
        RuntimeError: if members missing on disk cannot be downloaded
            from the previous version
        audbackend.BackendError: if the backend fails

    """
    if item.missing:
        download_missing(remote, db_root, item)
    if item.is_archive:
        remote.put_archive(
            item.path,
            version,
            db_root,
            item.files,
            levels(item.files, compression),
            progress=progress,
        )
    else:
        remote.put_file(os.path.join(db_root, item.files[0]), item.path, version)
        progress(item.nbytes)
    return item


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
    with tempfile.TemporaryDirectory() as tmp:
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
