"""scripts/check_docs.py: broken links, missing paths, the architecture page."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "check_docs.py")


def load_script():
    spec = importlib.util.spec_from_file_location("check_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_docs = load_script()

ARCHITECTURE = """# Architecture

- {mod}`audb_publish`: the package.
- {mod}`audb_publish.stage`: a stage.
- {mod}`audb_publish.sub`: a subpackage.
- {mod}`audb_publish.sub.part`: a part of it.
"""


def write(root, path, text=""):
    path = os.path.join(root, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)


@pytest.fixture
def repo(tmp_path):
    """A small repository whose documentation is right."""
    root = str(tmp_path)
    write(root, ".gitignore", "build/\n/benchmarks/cache/\n")
    write(
        root,
        "README.md",
        "# x\n\nSee [usage](docs/usage.md), [the code](audb_publish/stage.py),\n"
        "[a heading](#x), [the site](https://example.org/a.md)\n"
        "and ![a plot](docs/plot.png).\n",
    )
    write(
        root,
        "docs/usage.md",
        "# Usage\n\nBack to [the README](../README.md#x);\n"
        "run `scripts/tool.sh`, see `tests/test_stage.py`;\n"
        "results go to `benchmarks/cache/x/db`.\n\n"
        "```{toctree}\nsub/page\n```\n",
    )
    write(root, "docs/sub/page.rst", "Page\n====\n\n`usage <../usage.md>`_\n")
    write(root, "docs/plot.png")
    write(root, "docs/architecture.md", ARCHITECTURE)
    write(root, "audb_publish/__init__.py", '"""The package: ``docs/usage.md``."""')
    write(root, "audb_publish/stage.py", '"""A stage."""\n')
    write(root, "audb_publish/sub/__init__.py")
    write(root, "audb_publish/sub/part.py")
    write(root, "scripts/tool.sh")
    write(root, "tests/test_stage.py", "def test_stage():\n    assert True\n")
    return root


def run(root):
    result = subprocess.run(
        [sys.executable, SCRIPT, "--root", root], capture_output=True, text=True
    )
    return result.returncode, result.stdout.splitlines()


def test_this_repository_passes():
    assert check_docs.problems(ROOT) == []


def test_correct_docs_pass(repo):
    assert run(repo) == (0, [])


def test_planted_broken_link_fails(repo):
    with open(os.path.join(repo, "docs", "usage.md"), "a", encoding="utf-8") as file:
        file.write("\nSee [the results](benchmarks/results.md).\n")
    code, lines = run(repo)
    assert code == 1
    assert lines == ["docs/usage.md:11: broken link 'benchmarks/results.md'"]


@pytest.mark.parametrize(
    "text, link",
    [
        ("[gone](audb_publish/commit.py)", "audb_publish/commit.py"),
        ("![plot](docs/results.png)", "docs/results.png"),
        ("[outside](../elsewhere/README.md)", "../elsewhere/README.md"),
        ("[an anchor of a missing file](docs/gone.md#part)", "docs/gone.md#part"),
    ],
)
def test_broken_links_in_the_readme_fail(repo, text, link):
    write(repo, "README.md", f"# x\n\n{text}\n")
    assert run(repo) == (1, [f"README.md:3: broken link '{link}'"])


def test_broken_rest_link_fails(repo):
    write(repo, "docs/sub/page.rst", "Page\n====\n\n`usage <usage.md>`_\n")
    assert run(repo) == (1, ["docs/sub/page.rst:4: broken link 'usage.md'"])


def test_missing_path_in_docs_fails(repo):
    write(repo, "docs/usage.md", "# Usage\n\nsee `tests/test_gone.py`.\n")
    assert run(repo) == (
        1,
        ["docs/usage.md:3: names 'tests/test_gone.py', which does not exist"],
    )


def test_missing_path_in_a_docstring_fails(repo):
    source = (
        '"""A stage."""\n\n\n'
        'def f():\n    """Covered by\n    ``tests/test_remote.py``.\n    """\n'
    )
    write(repo, "audb_publish/stage.py", source)
    assert run(repo) == (
        1,
        ["audb_publish/stage.py:6: names 'tests/test_remote.py', which does not exist"],
    )


def test_module_missing_from_architecture_fails(repo):
    write(repo, "audb_publish/layout.py", '"""Repository paths."""\n')
    code, lines = run(repo)
    assert code == 1
    assert lines == [
        "docs/architecture.md:1: module audb_publish.layout is not listed; "
        "add a line '- {mod}`audb_publish.layout`: what it does' to its module list"
    ]


def test_module_gone_but_listed_fails(repo):
    os.remove(os.path.join(repo, "audb_publish", "sub", "part.py"))
    assert run(repo) == (
        1,
        ["docs/architecture.md:6: lists audb_publish.sub.part, which does not exist"],
    )
