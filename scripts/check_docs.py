"""Check that the documentation names only what exists.

Fails (exit code 1, one line per problem) on

* a broken relative link or image in ``README.md`` or in ``docs/``
  (Markdown ``[text](target)``, reST ```text <target>`_``,
  ``.. image::``, ``.. figure::``, ``.. include::`` and MyST ``{include}``),
* a repository path (``audb_publish/...``, ``tests/...``, ``benchmarks/...``,
  ``docs/...``, ``scripts/...``, ``examples/...``)
  named in ``README.md``, in ``docs/``, or in a docstring of a Python file,
  that does not exist,
* a module of ``audb_publish/`` missing from the module list
  of ``docs/architecture.md``, or a module listed there that is gone.

Paths below a folder that ``.gitignore`` ignores (generated output,
such as ``benchmarks/cache/``) need not exist.

Run from anywhere::

    python scripts/check_docs.py [--root REPOSITORY]

"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
import os
import re
import sys

TOP_FOLDERS = ("audb_publish", "tests", "benchmarks", "docs", "scripts", "examples")
PATH = re.compile(
    r"(?<![\w./-])(?:" + "|".join(TOP_FOLDERS) + r")/[\w./*-]*",
)
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REST_LINK = re.compile(r"`[^`<]*<([^>`]+)>`__?")
FILE_DIRECTIVES = "image|figure|include|literalinclude"
REST_FILE = re.compile(rf"^\s*\.\. (?:{FILE_DIRECTIVES})::\s*(\S+)", re.M)
MYST_INCLUDE = re.compile(rf"^```\{{(?:{FILE_DIRECTIVES})\}}\s*(\S+)", re.M)
ARCHITECTURE = os.path.join("docs", "architecture.md")
MODULE_LINE = re.compile(r"^- \{mod\}`(audb_publish[\w.]*)`", re.M)
SKIP_FOLDERS = {".git", ".venv", "build", "__pycache__", "node_modules"}


def main(argv: list[str] | None = None) -> int:
    """Print every problem found; 1 if there is one, else 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root",
        default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        help="root of the repository (default: the one of this script)",
    )
    args = parser.parse_args(argv)
    found = problems(args.root)
    for problem in found:
        print(problem)
    if found:
        print(f"check_docs: {len(found)} problems", file=sys.stderr)
    return 1 if found else 0


def problems(root: str) -> list[str]:
    """Every problem of the repository at ``root``, as ``file:line: text``."""
    ignored = ignored_prefixes(root)
    found = []
    for doc in documents(root):
        text = read(root, doc)
        found += broken_links(root, doc, text)
        found += missing_paths(root, doc, without_links(text), ignored)
    for source in python_files(root):
        for line, docstring in docstrings(read(root, source)):
            for problem in missing_paths(root, source, docstring, ignored):
                file, offset, message = problem.split(":", 2)
                found.append(f"{file}:{line + int(offset) - 1}:{message}")
    found += architecture(root)
    return found


def documents(root: str) -> list[str]:
    """``README.md`` and every Markdown and reST file in ``docs/``."""
    found = ["README.md"] if os.path.isfile(os.path.join(root, "README.md")) else []
    return found + sorted(
        path
        for path in walk(root, "docs")
        if path.endswith((".md", ".rst")) and not path.startswith("docs/build/")
    )


def python_files(root: str) -> list[str]:
    """Every Python file of the repository, outside virtual environments."""
    return sorted(path for path in walk(root, ".") if path.endswith(".py"))


def walk(root: str, folder: str) -> Iterator[str]:
    """Files below ``folder``, relative to ``root``, with ``/`` as separator."""
    for current, folders, files in os.walk(os.path.join(root, folder)):
        folders[:] = sorted(f for f in folders if f not in SKIP_FOLDERS)
        for file in files:
            path = os.path.relpath(os.path.join(current, file), root)
            yield path.replace(os.sep, "/")


def read(root: str, path: str) -> str:
    """Text of a file of the repository."""
    with open(os.path.join(root, path), encoding="utf-8") as file:
        return file.read()


def broken_links(root: str, doc: str, text: str) -> list[str]:
    """Relative links and included files of ``doc`` that do not exist."""
    targets = []
    for pattern in (MARKDOWN_LINK, REST_LINK, REST_FILE, MYST_INCLUDE):
        targets += [(m.start(1), m.group(1)) for m in pattern.finditer(text)]
    found = []
    for start, target in sorted(targets):
        path = target.split("#", 1)[0]
        if not path or re.match(r"^[a-z][a-z0-9+.-]*:", path):
            continue  # an anchor in the same file, or a URL
        if doc.endswith(".rst") and target.endswith("_"):
            continue  # a named reference, not a file
        resolved = os.path.normpath(os.path.join(os.path.dirname(doc), path))
        if resolved.startswith("..") or not os.path.exists(
            os.path.join(root, resolved)
        ):
            found.append(f"{doc}:{line_of(text, start)}: broken link '{target}'")
    return found


def without_links(text: str) -> str:
    """``text`` with the targets of its links blanked, which are relative paths."""
    for pattern in (MARKDOWN_LINK, REST_LINK, REST_FILE, MYST_INCLUDE):
        text = pattern.sub(lambda match: _blank(match, 1), text)
    return text


def _blank(match: re.Match, group: int) -> str:
    start, end = match.span(group)
    whole = match.group(0)
    offset = match.start(0)
    return whole[: start - offset] + " " * (end - start) + whole[end - offset :]


def missing_paths(
    root: str, where: str, text: str, ignored: tuple[str, ...]
) -> list[str]:
    """Repository paths named in ``text`` that do not exist."""
    found = []
    for match in PATH.finditer(text):
        path = match.group(0).rstrip(".,:;")
        if "*" in path or path.startswith(ignored):
            continue  # a pattern, or generated output
        if not exists(root, where, path):
            line = line_of(text, match.start())
            found.append(f"{where}:{line}: names '{path}', which does not exist")
    return found


def exists(root: str, where: str, path: str) -> bool:
    """Whether ``path`` exists in the repository.

    In ``docs/`` a path may also be a page relative to the page naming it,
    as a toctree entry of ``docs/benchmarks.md`` is.
    """
    candidates = [path]
    if where.startswith("docs/"):
        relative = os.path.join(os.path.dirname(where), path)
        candidates += [relative, relative + ".md", relative + ".rst"]
    return any(os.path.exists(os.path.join(root, name)) for name in candidates)


def docstrings(source: str) -> Iterator[tuple[int, str]]:
    """First line and text of each docstring of a Python source."""
    tree = ast.parse(source)
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    for node in ast.walk(tree):
        if not isinstance(node, kinds) or not node.body:
            continue
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            if isinstance(first.value.value, str):
                yield first.lineno, first.value.value


def ignored_prefixes(root: str) -> tuple[str, ...]:
    """Folders that ``.gitignore`` ignores by path, such as ``benchmarks/cache/``."""
    path = os.path.join(root, ".gitignore")
    if not os.path.isfile(path):
        return ()
    with open(path, encoding="utf-8") as file:
        lines = [line.strip() for line in file]
    return tuple(
        line.lstrip("/")
        for line in lines
        if line.endswith("/") and "/" in line.strip("/") and "*" not in line
    )


def architecture(root: str) -> list[str]:
    """Modules missing from, or gone but listed in, the architecture page."""
    if not os.path.isfile(os.path.join(root, ARCHITECTURE)):
        return [f"{ARCHITECTURE}:1: missing"]
    text = read(root, ARCHITECTURE)
    listed = {match.group(1): match.start() for match in MODULE_LINE.finditer(text)}
    actual = set(modules(root))
    found = [
        f"{ARCHITECTURE}:1: module {name} is not listed; add a line "
        f"'- {{mod}}`{name}`: what it does' to its module list"
        for name in sorted(actual - set(listed))
    ]
    found += [
        f"{ARCHITECTURE}:{line_of(text, start)}: lists {name}, which does not exist"
        for name, start in sorted(listed.items())
        if name not in actual
    ]
    return found


def modules(root: str) -> list[str]:
    """Dotted names of the modules and packages of ``audb_publish/``."""
    names = []
    for path in walk(root, "audb_publish"):
        if not path.endswith(".py"):
            continue
        name = path[: -len(".py")].replace("/", ".")
        names.append(name.removesuffix(".__init__"))
    return sorted(names)


def line_of(text: str, position: int) -> int:
    """Line number of a position in ``text``, counted from 1."""
    return text.count("\n", 0, position) + 1


if __name__ == "__main__":
    sys.exit(main())
