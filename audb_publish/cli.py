"""Command line: publish a database, or run a script with the patch active.

.. code-block:: console

    $ audb-publish publish DB_ROOT VERSION --repository NAME HOST BACKEND
    $ audb-publish run publish_my_db.py --its-own-args
    $ audb-publish plan DB_ROOT VERSION --repository NAME HOST BACKEND --json
    $ audb-publish status

``publish`` looks up earlier versions in ``--repository`` only,
so that an update works without any audb configuration
and no request goes to a repository that is not involved;
``--config-repositories`` also asks those of audb's configuration,
as :func:`audb.publish` does.

"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import logging
import os
import runpy
import signal
import sys
import threading

import audb
import audbackend

from audb_publish import executors
from audb_publish import options
from audb_publish.commit import unlock
from audb_publish.dry_run import dry_run
from audb_publish.patching import patched
from audb_publish.patching import status
from audb_publish.publish import logger
from audb_publish.publish import publish
from audb_publish.report import Report
from audb_publish.threads import cores
from audb_publish.verify import verify

ERRORS = (
    audbackend.BackendError,
    FileNotFoundError,
    ImportError,
    KeyError,
    NotADirectoryError,
    RuntimeError,
    ValueError,
)
r"""Exceptions reported as a one-line error instead of a traceback."""

INTERRUPTED = {
    "publish": "interrupted: nothing was committed; publish again to resume",
    "plan": "interrupted: nothing was written",
    "verify": "interrupted: nothing was written",
}
r"""The line printed on Ctrl-C, per command."""

EXIT_INTERRUPTED = 130
r"""Exit code after Ctrl-C (128 + SIGINT), as a shell reports it."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    r"""Help with the default of options that take a value only.

    A flag's default (``--no-checksum-cache ... (default: True)``)
    reads backwards, and ``(default: None)`` says nothing.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.nargs == 0 or action.default is None:
            return action.help or ""
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # one line, exit code 2 as argparse does
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    r"""Argument parser of the command line.

    Returns:
        parser

    """
    from audb_publish import __version__

    main = _Parser(
        prog="audb-publish",
        description="Fast, drop-in replacement for audb.publish().",
    )
    main.add_argument(
        "--version",
        action="version",
        version=f"audb-publish {__version__} (audb {audb.__version__})",
    )
    commands = main.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a Python script with audb.publish replaced by audb_publish",
    )
    run.add_argument("script", help="Python script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")

    commands.add_parser(
        "status",
        help="say whether audb.publish is patched in this environment, and why",
    )

    pub = commands.add_parser(
        "publish",
        help="publish a database",
        description="Publish a database, as audb.publish() does.",
    )
    _database_arguments(pub, options.KEYWORDS)
    pub.add_argument(
        "--report",
        metavar="FILE",
        help="write what the publish did as JSON to FILE "
        "(fields: see audb_publish.report.Report)",
    )

    plan = commands.add_parser(
        "plan",
        help="tell what publish would put, without writing anything",
        description="Validate and scan a database as publish does, "
        "and tell what it would put, without writing anything. "
        "Exits with 1 and publish's error if the database cannot be published.",
    )
    _database_arguments(plan, options.DRY_RUN)
    plan.add_argument(
        "--json",
        action="store_true",
        help="print JSON (fields: see audb_publish.dry_run.DryRun)",
    )

    check = commands.add_parser(
        "verify",
        help="check a published version against its dependency table",
        description="Check that every archive and file the dependency table "
        "of a published version names is in the repository, "
        "and that each archive holds the files the table assigns to it. "
        "Exits with 0 if the version is intact, 1 if not.",
    )
    check.add_argument("name", help="database name")
    check.add_argument("version", help="published version")
    check.add_argument(
        "--repository",
        nargs=3,
        required=True,
        metavar=("NAME", "HOST", "BACKEND"),
        help="repository of the version, e.g. data /srv/repos file-system",
    )
    check.add_argument(
        "--deep",
        action="store_true",
        help="also read every archive and compare the MD5 of each member "
        "with the table (reads the whole version)",
    )
    check.add_argument(
        "--num-workers",
        type=options.flag_type("num_workers"),
        default=cores(),
        help="most archives checked at a time "
        "(default: the cores this process may use, here %(default)s)",
    )
    check.add_argument(
        "--quiet", action="store_true", help="show no progress, only the result"
    )
    check.add_argument(
        "--json",
        action="store_true",
        help="print JSON (fields: see audb_publish.verify.Verification)",
    )
    free = commands.add_parser(
        "unlock",
        help="show who holds the lock of a version, and remove that lock",
        description="Show who holds the lock of a version of a database "
        "and remove that lock, as 'terraform force-unlock' does: "
        "only the lock as shown, and with --token only if its token matches. "
        "A lock left by a publish that is gone is taken over "
        "by the next publish without this, once it is stale. "
        "Exits with 1 if the lock's token is not the one given.",
    )
    free.add_argument("name", help="database name")
    free.add_argument("version", help="version")
    free.add_argument(
        "--repository",
        nargs=3,
        required=True,
        metavar=("NAME", "HOST", "BACKEND"),
        help="repository of the version, e.g. data /srv/repos file-system",
    )
    free.add_argument(
        "--token",
        help="remove the lock only if this is its token, as shown by a first call",
    )
    return main


def _database_arguments(
    command: argparse.ArgumentParser, names: tuple[str, ...]
) -> None:
    r"""Arguments of ``publish`` and ``plan``: database, version, repository.

    Then the flags of the options ``names``,
    see :func:`audb_publish.options.add_flags`.

    """
    command.add_argument("db_root", help="root folder of the database")
    command.add_argument("version", help="version to publish")
    command.add_argument(
        "--repository",
        nargs=3,
        metavar=("NAME", "HOST", "BACKEND"),
        help="repository to publish to, "
        "where earlier versions are looked up, "
        "e.g. data /srv/repos file-system",
    )
    command.add_argument(
        "--config-repositories",
        action="store_true",
        help="also look up earlier versions in the repositories "
        "of audb's configuration (audb.config.REPOSITORIES); "
        "without --repository, publish to that of the previous version",
    )
    command.add_argument(
        "--previous-version",
        default="latest",
        help="version this one is based on, 'latest' or 'none'",
    )
    options.add_flags(command, names)


def main(argv: Sequence[str] | None = None) -> int:
    r"""Run the command line.

    Args:
        argv: arguments, ``sys.argv[1:]`` if ``None``

    Returns:
        exit code

    """
    args = parser().parse_args(argv)
    if args.command == "status":
        print(status())
        return 0
    if args.command == "run":
        if not os.path.isfile(args.script):
            message = f"audb-publish: error: script '{args.script}' not found"
            print(message, file=sys.stderr)
            return 1
        # errors of the script itself keep their traceback
        return run_script(args.script, args.args)
    commands = {
        "plan": plan_command,
        "publish": publish_command,
        "verify": verify_command,
        "unlock": unlock_command,
    }
    command = commands[args.command]
    with exit_on_second_interrupt():
        try:
            return command(args)
        except KeyboardInterrupt:
            # clean-up ran as the exception left the publish:
            # no header, no lock, and a rerun completes
            print(INTERRUPTED[args.command], file=sys.stderr)
            return EXIT_INTERRUPTED
        except ERRORS as error:
            print(describe(error), file=sys.stderr)
            return 1


@contextlib.contextmanager
def exit_on_second_interrupt() -> Iterator[None]:
    r"""Exit at once on a second Ctrl-C, while active.

    The first SIGINT raises :class:`KeyboardInterrupt` as usual,
    so that the publish cleans up;
    a second one, while it cleans up or Python exits,
    kills the worker processes and exits with code 130 at once.
    The lock of the version may then stay in the repository,
    until the next publish takes it over,
    see :mod:`audb_publish.commit.lock`.
    Only in the main thread, where Python handles signals.

    Yields:
        nothing

    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = False

    def handler(signum, frame):
        nonlocal interrupted
        if interrupted:
            executors.kill_workers()
            os.write(
                sys.stderr.fileno(),
                b"interrupted again: exited at once; "
                b"the next publish of the version takes its lock over\n",
            )
            os._exit(EXIT_INTERRUPTED)
        interrupted = True
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        if not interrupted:  # else a Ctrl-C while Python exits ends it at once
            signal.signal(signal.SIGINT, before)


def describe(error: BaseException, causes: int = 3) -> str:
    r"""One line ``Type: message`` for an error, then its causes and notes.

    The causes are the chain of ``__cause__``
    (or ``__context__``, unless suppressed),
    each as ``caused by Type: message``;
    notes added with :meth:`BaseException.add_note` follow
    as ``note: ...``.
    A :class:`audbackend.BackendError` says only
    that the backend raised an error and to see the stack trace,
    which the command line does not show:
    its cause takes the place of its message.

    Args:
        error: error
        causes: most causes to show

    Returns:
        text to print

    Examples:
        >>> try:
        ...     try:
        ...         open("/no/such/host/db.yaml")
        ...     except OSError as cause:
        ...         raise audbackend.BackendError(cause) from cause
        ... except audbackend.BackendError as error:
        ...     print(describe(error))
        audb-publish: error: BackendError: FileNotFoundError: [Errno 2] No such file or directory: '/no/such/host/db.yaml'
        >>> try:
        ...     try:
        ...         {}["a.wav"]
        ...     except KeyError as cause:
        ...         raise RuntimeError("cannot read a.wav") from cause
        ... except RuntimeError as error:
        ...     error.add_note("a.wav is an NMS ADPCM WAV")
        ...     print(describe(error))
        audb-publish: error: RuntimeError: cannot read a.wav
          note: a.wav is an NMS ADPCM WAV
          caused by KeyError: 'a.wav'

    """  # noqa: E501
    seen = {id(error)}
    message = str(error)
    cause = _cause(error)
    if isinstance(error, audbackend.BackendError) and cause is not None:
        seen.add(id(cause))
        message = _one(cause)
        notes = _notes(error) + _notes(cause)
        cause = _cause(cause)
    else:
        notes = _notes(error)
    lines = [f"audb-publish: error: {type(error).__name__}: {message}", *notes]
    shown = 0
    while cause is not None and id(cause) not in seen and shown < causes:
        seen.add(id(cause))
        lines.append(f"  caused by {_one(cause)}")
        lines += _notes(cause)
        shown += 1
        cause = _cause(cause)
    return "\n".join(lines)


def _one(error: BaseException) -> str:
    r"""``Type: message`` of an error, or a BackendError's cause."""
    if isinstance(error, audbackend.BackendError) and _cause(error) is not None:
        return _one(_cause(error))
    return f"{type(error).__name__}: {error}"


def _notes(error: BaseException) -> list[str]:
    return [f"  note: {note}" for note in getattr(error, "__notes__", [])]


def _cause(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None:
        return error.__cause__
    if isinstance(error, audbackend.BackendError):
        return error.exception
    if not error.__suppress_context__:
        return error.__context__
    return None


def run_script(script: str, args: Sequence[str]) -> int:
    r"""Run a script as ``__main__`` with :func:`audb.publish` patched.

    Args:
        script: path of the script
        args: its arguments

    Returns:
        exit code, 0 unless the script calls :func:`sys.exit`

    Raises:
        Exception: what the script raises

    """
    argv = sys.argv
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        with patched():
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exit:
        return exit.code if isinstance(exit.code, int) else 1
    finally:
        sys.argv = argv
        sys.path.pop(0)
    return 0


@contextlib.contextmanager
def repositories(lookup: list[audb.Repository]) -> Iterator[None]:
    r"""Let audb look up versions in ``lookup`` only, while active.

    Args:
        lookup: repositories

    Yields:
        nothing

    Examples:
        >>> repository = audb.Repository("data", "/srv", "file-system")
        >>> with repositories([repository]):
        ...     audb.config.REPOSITORIES == [repository]
        True

    """
    before = audb.config.REPOSITORIES
    audb.config.REPOSITORIES = list(lookup)
    try:
        yield
    finally:
        audb.config.REPOSITORIES = before


def _database(
    args: argparse.Namespace,
) -> tuple[audb.Repository | None, list[audb.Repository], str | None]:
    r"""Repository, where to look up versions, and previous version.

    Raises:
        NotADirectoryError: if the database root is not a folder
        ValueError: if neither ``--repository``
            nor ``--config-repositories`` is given

    """
    if not os.path.isdir(args.db_root):
        raise NotADirectoryError(f"database root '{args.db_root}' is not a folder")
    repository = _repository(args.repository) if args.repository else None
    if repository is None and not args.config_repositories:
        raise ValueError(
            "give the repository to publish to with --repository, "
            "or --config-repositories to publish to that of the previous version "
            "among the repositories of audb's configuration"
        )
    lookup = [] if repository is None else [repository]
    if args.config_repositories:
        lookup += [r for r in audb.config.REPOSITORIES if r not in lookup]
    previous = args.previous_version
    if previous.lower() == "none":
        previous = None
    return repository, lookup, previous


def _repository(fields: Sequence[str]) -> audb.Repository:
    r"""The repository of ``--repository NAME HOST BACKEND``.

    Raises:
        ValueError: if the backend is unknown, naming the known ones

    """
    repository = audb.Repository(*fields)
    known = sorted(audb.Repository.backend_registry)
    if repository.backend not in known:
        raise ValueError(
            f"'{repository.backend}' is not a registered backend; "
            f"registered: {', '.join(known)}"
        )
    return repository


def plan_command(args: argparse.Namespace) -> int:
    r"""Tell what a publish would put, from parsed arguments.

    Args:
        args: parsed arguments of the ``plan`` command

    Returns:
        exit code

    """
    repository, lookup, previous = _database(args)
    with repositories(lookup):
        run = dry_run(
            args.db_root,
            args.version,
            repository,
            previous_version=previous,
            **options.from_flags(args, options.DRY_RUN),
        )
    print(run.to_json() if args.json else run.summary())
    return 0


def publish_command(args: argparse.Namespace) -> int:
    r"""Publish a database from parsed arguments.

    Args:
        args: parsed arguments of the ``publish`` command

    Returns:
        exit code

    """
    repository, lookup, previous = _database(args)
    with repositories(lookup), capture_report() as reports:
        deps = publish(
            args.db_root,
            args.version,
            repository,
            previous_version=previous,
            **options.from_flags(args, options.KEYWORDS),
        )
    print(f"published {args.version}: {len(deps)} files in the dependency table")
    (report,) = reports
    print(report.summary())
    if args.report:
        with open(args.report, "w") as fp:
            fp.write(report.to_json() + "\n")
    return 0


def verify_command(args: argparse.Namespace) -> int:
    r"""Verify a published version from parsed arguments.

    Args:
        args: parsed arguments of the ``verify`` command

    Returns:
        exit code: 0 if the version is intact, 1 if not

    """
    result = verify(
        args.name,
        args.version,
        _repository(args.repository),
        deep=args.deep,
        num_workers=args.num_workers,
        verbose=not args.quiet,
    )
    print(result.to_json() if args.json else result.summary())
    return 0 if result.intact else 1


def unlock_command(args: argparse.Namespace) -> int:
    r"""Remove the lock of a version from parsed arguments.

    Args:
        args: parsed arguments of the ``unlock`` command

    Returns:
        exit code: 0 if the lock was removed or there was none

    """
    holder = unlock(
        args.name, args.version, audb.Repository(*args.repository), token=args.token
    )
    if holder is None:
        print(f"no lock: {args.name} {args.version} is not being published")
    else:
        print(
            f"removed the lock of {args.name} {args.version} held by {holder} "
            f"(token {holder.token})"
        )
    return 0


@contextlib.contextmanager
def capture_report() -> Iterator[list[Report]]:
    r"""Collect the reports :func:`audb_publish.publish` logs while active.

    Yields:
        list the reports are appended to

    Examples:
        >>> with capture_report() as reports:
        ...     pass
        >>> reports
        []

    """
    reports: list[Report] = []
    handler = _ReportHandler(reports)
    before = logger.level
    logger.addHandler(handler)
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    try:
        yield reports
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


class _ReportHandler(logging.Handler):
    def __init__(self, reports: list[Report]):
        super().__init__(logging.INFO)
        self._reports = reports

    def emit(self, record: logging.LogRecord) -> None:
        report = getattr(record, "report", None)
        if report is not None:
            self._reports.append(report)
