"""Drop-in, parallel and fast replacement for :func:`audb.publish`.

Importing this package changes nothing in :mod:`audb`.
Call :func:`audb_publish.publish` directly,
or :func:`audb_publish.patch` to make :func:`audb.publish` use it.
:func:`audb_publish.dry_run` tells what a publish would put,
:func:`audb_publish.verify` checks a published version,
:func:`audb_publish.unlock` removes the lock of a version by hand.

"""

from audb_publish.commit import unlock
from audb_publish.dry_run import dry_run
from audb_publish.patching import is_patched
from audb_publish.patching import patch
from audb_publish.patching import patched
from audb_publish.patching import unpatch
from audb_publish.publish import publish
from audb_publish.verify import verify

__all__ = [
    "dry_run",
    "is_patched",
    "patch",
    "patched",
    "publish",
    "unlock",
    "unpatch",
    "verify",
]
__version__ = "0.1.0"
