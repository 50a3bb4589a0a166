"""Sphinx configuration of the documentation, in the style of audb's.

Build it with (warnings as errors, as ``scripts/test.sh`` does)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs build/html
    .venv/bin/python -m sphinx -W --keep-going -b doctest docs build/doctest

The build needs no network:
links to the documentation of other packages
are resolved from the inventories only if ``AUDB_PUBLISH_DOCS_INTERSPHINX=1``.

"""

from datetime import date
import os

from sphinx.util.docutils import SphinxDirective

import audb_publish

# Project -----------------------------------------------------------------
project = "audb-publish"
copyright = f"2026-{date.today().year}, the audb-publish authors"
author = "the audb-publish authors"
version = audb_publish.__version__
release = version
title = "Documentation"

# General -----------------------------------------------------------------
master_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = ["build", "Thumbs.db", ".DS_Store"]
pygments_style = None
highlight_language = "none"  # usage lines of the command line are no Python
smartquotes = False  # keep "--" of command line flags
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # Google-style docstrings
    "sphinx_autodoc_typehints",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "sphinx_copybutton",
    "sphinxarg.ext",  # the command line reference from the argparse parser
    "myst_parser",  # the benchmark results are Markdown
]

napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "description"
typehints_document_rtype = False
myst_heading_anchors = 3
suppress_warnings = [
    # result tables of the benchmarks start at heading level 2 or 3
    "myst.header",
]

# no fetch at build time unless asked for: the build must work offline
intersphinx_mapping = {}
if os.environ.get("AUDB_PUBLISH_DOCS_INTERSPHINX") == "1":  # pragma: no cover
    intersphinx_mapping = {
        "audb": ("https://audeering.github.io/audb/", None),
        "audbackend": ("https://audeering.github.io/audbackend/", None),
        "audeer": ("https://audeering.github.io/audeer/", None),
        "audformat": ("https://audeering.github.io/audformat/", None),
        "python": ("https://docs.python.org/3/", None),
    }

# Doctests of the usage pages ---------------------------------------------
# Only ``.. doctest::`` blocks of the pages run here;
# the examples in the docstrings run with pytest (``--doctest-modules``).
doctest_test_doctest_blocks = ""
# Each page runs in its own temporary folder with its own audb cache,
# and asks no public repository.
doctest_global_setup = """
import os
import tempfile

import audb
import audeer
import audformat

import audb_publish

_doc_cwd = os.getcwd()
_doc_tmp = tempfile.mkdtemp(prefix="audb-publish-docs-")
os.chdir(_doc_tmp)
_doc_config = (
    audb.config.CACHE_ROOT,
    audb.config.SHARED_CACHE_ROOT,
    audb.config.REPOSITORIES,
)
audb.config.CACHE_ROOT = os.path.join(_doc_tmp, "cache")
audb.config.SHARED_CACHE_ROOT = os.path.join(_doc_tmp, "shared")
audb.config.REPOSITORIES = []
"""
doctest_global_cleanup = """
import shutil

audb_publish.unpatch()
(
    audb.config.CACHE_ROOT,
    audb.config.SHARED_CACHE_ROOT,
    audb.config.REPOSITORIES,
) = _doc_config
os.chdir(_doc_cwd)
shutil.rmtree(_doc_tmp)
"""

# HTML --------------------------------------------------------------------
html_theme = "sphinx_audeering_theme"
html_theme_options = {
    "display_version": True,
    "logo_only": False,
    "footer_links": False,
    "wide_pages": ["benchmarks"],
}
# no link to a repository host: the theme would guess audEERING's GitLab
html_context = {"display_github": False, "display_gitlab": False}
html_title = title


# The docstring of every module -------------------------------------------
def _modules() -> list[str]:
    r"""Every module of the package, the package first."""
    root = os.path.dirname(audb_publish.__file__)
    names = []
    for folder, _, files in os.walk(root):
        package = os.path.relpath(folder, os.path.dirname(root)).replace(os.sep, ".")
        for file in files:
            if file == "__init__.py":
                names.append(package)
            elif file.endswith(".py"):
                names.append(f"{package}.{file[:-3]}")
    return sorted(names, key=lambda name: (name != "audb_publish", name))


def _module_directives(app, docname: str, source: list[str]) -> None:
    r"""Expand ``.. audb-publish-modules::`` to one ``automodule`` per module."""
    if docname != "modules":
        return
    blocks = []
    for name in _modules():
        if name == "audb_publish.__main__":
            continue  # importing it runs the command line
        block = f"{name}\n{'-' * len(name)}\n\n.. automodule:: {name}\n"
        if name.rsplit(".", 1)[-1] in audb_publish.__all__:
            block += "    :no-index:\n"  # the function of that name is in the API
        blocks.append(block)
    source[0] = source[0].replace(".. audb-publish-modules::", "\n".join(blocks))


class _OptionsTable(SphinxDirective):
    r"""``audb-publish-options``: a table of the options, from their spec.

    For Markdown pages: the table is parsed as MyST.
    """

    def run(self) -> list:
        from audb_publish.options import OPTIONS

        rows = [
            "| keyword | default | flag of `publish` | environment | dry run |",
            "|---|---|---|---|---|",
        ]
        for option in OPTIONS:
            flag = f"`{option.flag}`" if option.flag else ""
            if option.flag and option.flag_default is not None:
                what = option.flag_default.__doc__.strip().splitlines()[0]
                flag += f", default: {what[0].lower()}{what[1:].rstrip('.')}"
            cells = [
                f"`{option.name}`",
                f"`{option.default!r}`",
                flag,
                "yes" if option.environment else "",
                "yes" if option.dry_run else "",
            ]
            rows.append("| " + " | ".join(cells) + " |")
        return self.parse_text_to_nodes("\n".join(rows))


def setup(app) -> None:
    r"""Register the expansion of the modules page and the options table."""
    app.connect("source-read", _module_directives)
    app.add_directive("audb-publish-options", _OptionsTable)
