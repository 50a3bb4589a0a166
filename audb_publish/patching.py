"""Make :func:`audb.publish` this package's implementation, and undo it."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import functools

import audb
import audb.core.publish

_ORIGINAL = audb.core.publish.publish


def patch(**defaults) -> None:
    r"""Replace :func:`audb.publish` by :func:`audb_publish.publish`.

    Both ``audb.publish`` and ``audb.core.publish.publish``
    are replaced,
    so scripts and libraries calling either
    publish with this package.
    Calling :func:`patch` again replaces the previous patch.

    Args:
        **defaults: keyword arguments of :func:`audb_publish.publish`
            to use as defaults of the patched function,
            e.g. ``pipeline=True``

    Raises:
        TypeError: if a key of ``defaults``
            is not a keyword argument of :func:`audb_publish.publish`

    Examples:
        >>> patch()
        >>> audb.publish is not _ORIGINAL
        True
        >>> unpatch()
        >>> audb.publish is _ORIGINAL
        True

    """
    from audb_publish.publish import KEYWORDS
    from audb_publish.publish import publish

    unknown = sorted(set(defaults) - set(KEYWORDS))
    if unknown:
        raise TypeError(f"patch() got unexpected keyword arguments: {unknown}")
    function = functools.partial(publish, **defaults) if defaults else publish
    if defaults:
        function = functools.update_wrapper(function, publish)
    audb.publish = function
    audb.core.publish.publish = function


def unpatch() -> None:
    r"""Restore the original :func:`audb.publish`.

    Examples:
        >>> unpatch()
        >>> audb.publish is _ORIGINAL
        True

    """
    audb.publish = _ORIGINAL
    audb.core.publish.publish = _ORIGINAL


def is_patched() -> bool:
    r"""Tell whether :func:`audb.publish` is replaced.

    Returns:
        ``True`` if :func:`patch` is active

    Examples:
        >>> is_patched()
        False

    """
    return audb.publish is not _ORIGINAL


@contextlib.contextmanager
def patched(**defaults) -> Iterator[None]:
    r"""Context manager that patches :func:`audb.publish` while it is active.

    The state before entering is restored on exit,
    also when an exception is raised.

    Args:
        **defaults: see :func:`patch`

    Yields:
        nothing

    Examples:
        >>> with patched():
        ...     is_patched()
        True
        >>> is_patched()
        False

    """
    before = (audb.publish, audb.core.publish.publish)
    patch(**defaults)
    try:
        yield
    finally:
        audb.publish, audb.core.publish.publish = before
