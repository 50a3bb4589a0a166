"""Make :func:`audb.publish` this package's implementation, and undo it.

Besides :func:`patch` in code,
the environment can activate the patch
in every Python process, subprocesses included:
with ``AUDB_PUBLISH_PATCH=1``,
the start-up hook ``audb_publish.pth`` shipped in the wheel
patches :func:`audb.publish` as soon as audb is imported,
with defaults from ``AUDB_PUBLISH_OPTIONS``,
see :func:`options_from_environment`.

"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import functools
import os
import re
import sys

import audb
import audb.core.publish

from audb_publish.options import ENVIRONMENT
from audb_publish.options import KEYWORDS
from audb_publish.options import OPTION
from audb_publish.publish import publish

_ORIGINAL = audb.core.publish.publish

VARIABLE = "AUDB_PUBLISH_PATCH"
r"""Environment variable that activates the patch at start-up."""

OPTIONS_VARIABLE = "AUDB_PUBLISH_OPTIONS"
r"""Environment variable with defaults of the patch."""

_OFF = ("", "0", "false", "no", "off")


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
    unknown = sorted(set(defaults) - set(KEYWORDS))
    if unknown:
        raise TypeError(f"patch() got unexpected keyword arguments: {unknown}")
    function = functools.partial(publish, **defaults) if defaults else publish
    if defaults:
        function = functools.update_wrapper(function, publish)
    audb.publish = function
    audb.core.publish.publish = function


def options_from_environment(text: str | None = None) -> dict:
    r"""Parse the defaults of the patch from ``AUDB_PUBLISH_OPTIONS``.

    The value is a list of ``key=value`` pairs,
    separated by commas or spaces.
    Keys are ``pipeline``, ``verbose``, ``checksum_cache``
    (``true`` or ``false``),
    ``num_workers`` (a positive integer),
    ``lock_timeout`` (seconds, 0 or more),
    ``max_requests`` (a positive integer),
    ``compression`` and ``scheduler``
    (as the arguments of :func:`audb_publish.publish`,
    ``scheduler`` as ``threads``, ``processes``
    or the address of a Dask scheduler, e.g. ``tcp://host:8786``).
    Arguments the caller passes win over these defaults.

    Args:
        text: value to parse, ``AUDB_PUBLISH_OPTIONS`` if ``None``

    Returns:
        keyword arguments

    Raises:
        ValueError: if a pair has no ``=``,
            a key is unknown or given twice,
            or a value is not valid

    Examples:
        >>> options_from_environment("pipeline=true, compression=2")
        {'pipeline': True, 'compression': 2}
        >>> options_from_environment("pipeline=maybe")
        Traceback (most recent call last):
        ...
        ValueError: AUDB_PUBLISH_OPTIONS: 'pipeline' must be true or false, not 'maybe'.

    """  # noqa: E501
    if text is None:
        text = os.environ.get(OPTIONS_VARIABLE, "")
    options = {}
    for pair in re.split(r"[\s,]+", text.strip()):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in ENVIRONMENT:
            raise ValueError(
                f"{OPTIONS_VARIABLE}: {pair!r} is not one of "
                + ", ".join(f"{name}=..." for name in ENVIRONMENT)
                + "."
            )
        if key in options:
            raise ValueError(f"{OPTIONS_VARIABLE}: {key!r} is given twice.")
        try:
            options[key] = OPTION[key].from_text(value.strip())
        except ValueError as error:
            raise ValueError(f"{OPTIONS_VARIABLE}: {key!r} {error}.") from None
    return options


def patch_from_environment() -> None:
    r"""Patch :func:`audb.publish` with the defaults of the environment.

    Called by the start-up hook when ``AUDB_PUBLISH_PATCH`` is set.
    If ``AUDB_PUBLISH_OPTIONS`` is not valid,
    :func:`audb.publish` is replaced by a function
    that raises its error at the first call,
    rather than publishing with defaults the user did not ask for.

    Examples:
        >>> os.environ["AUDB_PUBLISH_OPTIONS"] = "speed=11"
        >>> patch_from_environment()
        >>> audb.publish("db", "1.0.0")
        Traceback (most recent call last):
        ...
        ValueError: AUDB_PUBLISH_OPTIONS: 'speed=11' is not one of num_workers=..., verbose=..., pipeline=..., compression=..., checksum_cache=..., scheduler=....
        >>> del os.environ["AUDB_PUBLISH_OPTIONS"]
        >>> unpatch()

    """  # noqa: E501
    try:
        options = options_from_environment()
    except ValueError as error:
        message = str(error)

        def invalid_options(*args, **kwargs):
            raise ValueError(message)

        audb.publish = audb.core.publish.publish = invalid_options
        return
    patch(**options)


def status() -> str:
    r"""Say whether :func:`audb.publish` is patched in this environment, and why.

    The first line is the conclusion for new processes,
    the lines after it the facts it rests on.

    Returns:
        one line per fact

    Examples:
        >>> print(status().splitlines()[1])
        audb.publish is upstream's in this process.

    """
    import importlib.util
    import site

    who = "patched by audb_publish" if is_patched() else "upstream's"
    facts = [f"audb.publish is {who} in this process."]
    value = os.environ.get(VARIABLE)
    requested = value is not None and value.strip().lower() not in _OFF
    if value is None:
        facts.append(f"{VARIABLE} is not set.")
    else:
        facts.append(f"{VARIABLE}={value}.")
    folders = [*site.getsitepackages(), site.getusersitepackages()]
    hooks = [
        os.path.join(folder, "audb_publish.pth")
        for folder in folders
        if os.path.isfile(os.path.join(folder, "audb_publish.pth"))
    ]
    missing = []
    if hooks:
        facts.append(f"The start-up hook is installed: {hooks[0]}")
    else:
        missing.append("the start-up hook audb_publish.pth is not installed")
        facts.append(
            "The start-up hook audb_publish.pth is not installed "
            "(editable installs lack it; install the wheel: pip install .)."
        )
    if importlib.util.find_spec("_audb_publish_startup") is None:  # pragma: no cover
        missing.append("the module _audb_publish_startup is missing")
        facts.append("The module _audb_publish_startup is missing.")
    invalid = None
    try:
        options = options_from_environment()
    except ValueError as error:
        invalid = error
        facts.append(f"Invalid options, audb.publish will raise: {error}")
    else:
        facts.append(f"Options ({OPTIONS_VARIABLE}): {options or 'none'}")
    if not requested:
        conclusion = (
            f"New processes keep upstream's audb.publish: "
            f"{VARIABLE} is {'not set' if value is None else 'off'}."
        )
    elif missing:
        conclusion = (
            f"New processes keep upstream's audb.publish, "
            f"although {VARIABLE} asks for the patch: {'; '.join(missing)}."
        )
    else:
        conclusion = "New processes patch audb.publish when they import audb"
        conclusion += f", and it raises: {invalid}" if invalid else "."
    return "\n".join([conclusion, *facts])


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


def _patch_if_requested() -> None:
    r"""Patch if the start-up hook asked for it while this module imported audb."""
    startup = sys.modules.get("_audb_publish_startup")
    if getattr(startup, "requested", False):
        startup.requested = False
        patch_from_environment()


_patch_if_requested()
