"""Command line: publish a database, or run a script with the patch active.

.. code-block:: console

    $ audb-publish publish DB_ROOT VERSION --repository NAME HOST BACKEND
    $ audb-publish run publish_my_db.py --its-own-args

"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
import runpy
import sys

import audb
import audbackend

from audb_publish.patching import patched
from audb_publish.publish import publish

ERRORS = (
    audbackend.BackendError,
    FileNotFoundError,
    NotADirectoryError,
    RuntimeError,
    ValueError,
)
r"""Exceptions reported as a one-line error instead of a traceback."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2 as argparse does
        self.exit(2, f"{self.prog}: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    r"""Argument parser of the command line.

    Returns:
        parser

    """
    main = _Parser(
        prog="audb-publish",
        description="Fast, drop-in replacement for audb.publish().",
    )
    commands = main.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a Python script with audb.publish replaced by audb_publish",
    )
    run.add_argument("script", help="Python script")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments of the script")

    pub = commands.add_parser("publish", help="publish a database")
    pub.add_argument("db_root", help="root folder of the database")
    pub.add_argument("version", help="version to publish")
    pub.add_argument(
        "--repository",
        nargs=3,
        metavar=("NAME", "HOST", "BACKEND"),
        help="repository, e.g. data /srv/repos file-system",
    )
    pub.add_argument(
        "--previous-version",
        default="latest",
        help="version this one is based on, 'latest' (default) or 'none'",
    )
    pub.add_argument("--num-workers", type=_positive_int, default=1)
    pub.add_argument("--pipeline", action="store_true", help="put while scanning")
    pub.add_argument(
        "--compression",
        default="auto",
        help="'auto' (default), 'zlib', 'deflate', 'store' or an ISA-L level 1-3",
    )
    pub.add_argument("--quiet", action="store_true", help="no progress display")
    return main


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not '{value}'")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    r"""Run the command line.

    Args:
        argv: arguments, ``sys.argv[1:]`` if ``None``

    Returns:
        exit code

    """
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            return run_script(args.script, args.args)
        return publish_command(args)
    except ERRORS as error:
        print(f"audb-publish: error: {error}", file=sys.stderr)
        return 1


def run_script(script: str, args: Sequence[str]) -> int:
    r"""Run a script as ``__main__`` with :func:`audb.publish` patched.

    Args:
        script: path of the script
        args: its arguments

    Returns:
        exit code, 0 unless the script calls :func:`sys.exit`

    Raises:
        FileNotFoundError: if ``script`` does not exist

    """
    if not os.path.isfile(script):
        raise FileNotFoundError(f"script '{script}' not found")
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


def publish_command(args: argparse.Namespace) -> int:
    r"""Publish a database from parsed arguments.

    Args:
        args: parsed arguments of the ``publish`` command

    Returns:
        exit code

    """
    repository = audb.Repository(*args.repository) if args.repository else None
    previous = args.previous_version
    if previous.lower() == "none":
        previous = None
    compression = args.compression
    if compression.isdigit():
        compression = int(compression)
    if not os.path.isdir(args.db_root):
        raise NotADirectoryError(f"database root '{args.db_root}' is not a folder")
    deps = publish(
        args.db_root,
        args.version,
        repository,
        previous_version=previous,
        num_workers=args.num_workers,
        verbose=not args.quiet,
        pipeline=args.pipeline,
        compression=compression,
    )
    print(f"published {args.version}: {len(deps)} files in the dependency table")
    return 0
