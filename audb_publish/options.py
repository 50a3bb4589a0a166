"""The keyword options of :func:`audb_publish.publish`, each declared once.

:data:`OPTIONS` holds, per option,
its name, type, default, check, help text,
its command line flag,
whether ``AUDB_PUBLISH_OPTIONS`` may set it
and whether :func:`audb_publish.dry_run` takes it.
From it come :data:`KEYWORDS`,
the flags of ``audb-publish publish`` and ``plan`` (:func:`add_flags`),
the parsing of ``AUDB_PUBLISH_OPTIONS``
(:func:`audb_publish.patching.options_from_environment`)
and :data:`DRY_RUN`.
The signatures of :func:`audb_publish.publish`
and :func:`audb_publish.dry_run` stay written out,
as audb's are;
a test checks that they agree with :data:`OPTIONS`.
Each check is one function here or in the module that owns the option,
called where the option is used and when it is parsed from text.

"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import dataclasses

from audb_publish import compression
from audb_publish import executors
from audb_publish.publish import check_lock_timeout
from audb_publish.publish import check_max_requests
from audb_publish.scheduler import check_num_workers
from audb_publish.threads import cores

_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "false": False,
    "0": False,
    "no": False,
}


def _parse_bool(text: str) -> bool:
    return _BOOLEANS[text.lower()]


def _parse_num_workers(text: str) -> int:
    value = int(text)
    check_num_workers(value)  # the command line refuses it before running
    return value


def _parse_seconds(text: str) -> float:
    value = float(text)
    check_lock_timeout(value)  # the command line refuses it before running
    return value


def _parse_max_requests(text: str) -> int | None:
    value = None if text.lower() == "none" else int(text)
    check_max_requests(value)  # the command line refuses it before running
    return value


def _parse_compression(text: str) -> str | int:
    return int(text) if text.isdigit() else text


@dataclasses.dataclass(frozen=True)
class Option:
    r"""A keyword option of :func:`audb_publish.publish`.

    Args:
        name: keyword
        type: its annotation in :func:`audb_publish.publish`
        default: its default
        help: help text of its command line flag
        flag: command line flag of ``publish`` (and ``plan``),
            ``None`` for none
        flag_default: gives the flag's default
            if it is not the option's default
        metavar: name of the flag's value in the help
        action: ``"value"`` for a flag with a value,
            ``"store_true"`` or ``"store_false"`` for a flag without
        parse: turns the text of a flag
            or of ``AUDB_PUBLISH_OPTIONS`` into a value;
            raises :class:`ValueError` or :class:`KeyError`
        check: checks a value, raises :class:`ValueError`
        expected: what ``parse`` and ``check`` accept, for error messages
        environment: ``AUDB_PUBLISH_OPTIONS`` may set it
        dry_run: :func:`audb_publish.dry_run` takes it

    """

    name: str
    type: str
    default: object
    help: str = ""
    flag: str | None = None
    flag_default: Callable[[], object] | None = None
    metavar: str | None = None
    action: str = "value"
    parse: Callable[[str], object] = str
    check: Callable[[object], None] | None = None
    expected: str = ""
    environment: bool = False
    dry_run: bool = False

    def from_text(self, text: str) -> object:
        r"""Parse and check a value given as text.

        Args:
            text: value

        Returns:
            value

        Raises:
            ValueError: if ``text`` is not valid, naming :attr:`expected`

        Examples:
            >>> OPTION["num_workers"].from_text("4")
            4

        """
        try:
            value = self.parse(text)
            if self.check is not None:
                self.check(value)
        except (KeyError, ValueError):
            raise ValueError(f"must be {self.expected}, not {text!r}") from None
        return value


def _switch(name: str, default: bool, help: str, flag: str, **kwargs) -> Option:
    r"""A ``bool`` option whose flag switches it from its default."""
    return Option(
        name,
        "bool",
        default,
        help,
        flag=flag,
        action="store_false" if default else "store_true",
        parse=_parse_bool,
        expected="true or false",
        environment=True,
        **kwargs,
    )


OPTIONS = (
    Option("archives", "Mapping[str, str] | None", None, dry_run=True),
    Option("previous_version", "str | None", "latest", dry_run=True),
    Option("cache_root", "str | None", None, dry_run=True),
    Option(
        "num_workers",
        "int | None",
        1,
        "most jobs at a time: hashing and compressing run on at most "
        "the cores of this process, uploads and S3 requests on up to this number "
        "(default: the cores this process may use, here %(default)s)",
        flag="--num-workers",
        flag_default=cores,
        parse=_parse_num_workers,
        check=check_num_workers,
        expected="a positive integer",
        environment=True,
        dry_run=True,
    ),
    _switch(
        "verbose",
        True,
        "show no progress, only the result",
        "--quiet",
        dry_run=True,
    ),
    _switch(
        "pipeline",
        False,
        "put each archive as soon as its files are scanned, "
        "while other files are still scanned, instead of scanning everything "
        "first; at most --num-workers archives are on local disk at once",
        "--pipeline",
    ),
    Option(
        "compression",
        "str | int",
        "auto",
        "compression inside archives: 'auto' stores FLAC, MP3, OGG "
        "and deflates the rest with ISA-L or zlib-ng where measured faster "
        "and at most 0.2%% larger than zlib level 6; "
        "'zlib' deflates all with zlib level 6 as audb.publish, "
        "'deflate' with ISA-L, 'store' not at all, 1-3 with that ISA-L level",
        flag="--compression",
        parse=_parse_compression,
        check=compression.check,
        expected="auto, zlib, deflate, store, 1, 2 or 3",
        environment=True,
    ),
    _switch(
        "checksum_cache",
        True,
        "read every media file, table and attachment, "
        "instead of taking the checksums of unchanged ones "
        "from the checksum cache below audb's cache root (which is used "
        "without this flag)",
        "--no-checksum-cache",
        dry_run=True,
    ),
    Option(
        "break_lock",
        "bool",
        False,
        "remove the lock of another publish of this version first; "
        "the last resort: a stale lock is taken over without it, "
        "and 'unlock' removes one lock by its token",
        flag="--break-lock",
        action="store_true",
    ),
    Option(
        "scheduler",
        "str | object",
        "threads",
        "where scan and put jobs run: 'threads', 'processes', "
        "or the address of a Dask scheduler, e.g. tcp://host:8786",
        flag="--scheduler",
        check=executors.check_scheduler,
        expected="threads, processes or the address of a Dask scheduler",
        environment=True,
    ),
    Option(
        "lock_timeout",
        "float",
        0.0,
        "wait up to SECONDS for another publish of this version "
        "to finish or go stale, instead of failing at once",
        flag="--lock-timeout",
        metavar="SECONDS",
        parse=_parse_seconds,
        check=check_lock_timeout,
        expected="0 or more seconds",
        environment=True,
    ),
    Option(
        "max_requests",
        "int | None",
        None,
        "requests in flight to a MinIO/S3 repository at once, "
        "apart from --num-workers, which bounds computing; "
        "without it they adapt between 32 and 128 and shrink on SlowDown, "
        "never below --num-workers; equal to --num-workers, uploads as before, "
        "e.g. to a small self-hosted server",
        flag="--max-requests",
        metavar="N",
        parse=_parse_max_requests,
        check=check_max_requests,
        expected="a positive integer or none",
        environment=True,
    ),
)
r"""The keyword options of :func:`audb_publish.publish`, in its order."""

OPTION = {option.name: option for option in OPTIONS}
r"""Each option by its name."""

KEYWORDS = tuple(OPTION)
r"""Keyword arguments of :func:`audb_publish.publish`."""

DRY_RUN = tuple(option.name for option in OPTIONS if option.dry_run)
r"""Keyword arguments of :func:`audb_publish.dry_run`."""

DRY_RUN_DEFAULTS = {"verbose": False}
r"""Defaults of :func:`audb_publish.dry_run` other than those of publish."""

ENVIRONMENT = tuple(option.name for option in OPTIONS if option.environment)
r"""Options ``AUDB_PUBLISH_OPTIONS`` may set."""


def add_flags(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    r"""Add the command line flags of options.

    A flag with a value is parsed as ``AUDB_PUBLISH_OPTIONS`` is,
    without the checks that only the publish makes;
    a flag without one sets the option only if given,
    so that its help names no default.

    Args:
        parser: parser of a command
        names: options whose flags to add, if they have one

    Examples:
        >>> parser = argparse.ArgumentParser()
        >>> add_flags(parser, ("num_workers", "verbose"))
        >>> args = parser.parse_args(["--num-workers", "4", "--quiet"])
        >>> from_flags(args, ("num_workers", "verbose"))
        {'num_workers': 4, 'verbose': False}
        >>> args = parser.parse_args([])
        >>> from_flags(args, ("num_workers",))["num_workers"] == cores()
        True

    """
    for name in names:
        option = OPTION[name]
        if option.flag is None:
            continue
        if option.action != "value":
            parser.add_argument(
                option.flag,
                dest=name,
                action=option.action,
                default=argparse.SUPPRESS,
                help=option.help,
            )
            continue
        default = option.default
        if option.flag_default is not None:
            default = option.flag_default()
        parser.add_argument(
            option.flag,
            dest=name,
            type=flag_type(name),
            default=default,
            metavar=option.metavar,
            help=option.help,
        )


def flag_type(name: str) -> Callable[[str], object]:
    r"""Parser of the value of an option's flag, for :mod:`argparse`.

    Args:
        name: option

    Returns:
        function that raises :class:`argparse.ArgumentTypeError`

    Examples:
        >>> flag_type("num_workers")("0")
        Traceback (most recent call last):
        ...
        argparse.ArgumentTypeError: must be a positive integer, not '0'

    """
    option = OPTION[name]

    def parse(text: str) -> object:
        try:
            return option.parse(text)
        except (KeyError, ValueError):
            raise argparse.ArgumentTypeError(
                f"must be {option.expected}, not {text!r}"
            ) from None

    return parse


def from_flags(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    r"""Keyword arguments from the parsed flags of options.

    Args:
        args: parsed arguments
        names: options whose flags were added by :func:`add_flags`

    Returns:
        keyword arguments, a flag not given with the option's default

    Examples:
        >>> from_flags(argparse.Namespace(num_workers=4), ("num_workers", "verbose"))
        {'num_workers': 4, 'verbose': True}

    """
    return {
        name: getattr(args, name, OPTION[name].default)
        for name in names
        if OPTION[name].flag is not None
    }
