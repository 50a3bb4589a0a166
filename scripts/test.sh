#!/usr/bin/env bash
# Set everything up and run the whole test suite:
# lint, the docs check, the documentation site (built with warnings as errors)
# and its doctests, the tests (with audb's own publish tests and a real S3 server),
# the doctests, and a quick benchmark as a smoke test.
# Everything the tests write goes to one temporary folder, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # layers of pyproject.toml: no upward import, no cycle
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# audb's own tests, downloaded once, are kept beside the virtual environment
export AUDB_PUBLISH_UPSTREAM_CACHE="${AUDB_PUBLISH_UPSTREAM_CACHE:-$PWD/.venv/audb-upstream-tests}"
export TMPDIR="$tmp"
.venv/bin/python scripts/check_docs.py
.venv/bin/python -m sphinx -W --keep-going -q -b html -d "$tmp/docs/doctrees" docs "$tmp/docs/html"
.venv/bin/python -m sphinx -W --keep-going -q -b doctest -d "$tmp/docs/doctrees" docs "$tmp/docs/doctest"
.venv/bin/python -m pytest -rs --basetemp "$tmp/pytest" \
    --cov=audb_publish --cov-report=term-missing "$@"
.venv/bin/python benchmarks/run.py --quick --out "$tmp/benchmark"
