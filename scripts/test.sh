#!/usr/bin/env bash
# Set everything up and run the whole test suite:
# lint, the tests (with audb's own publish tests and a real S3 server),
# the doctests, and a quick benchmark as a smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest --cov=audb_publish --cov-report=term-missing "$@"
.venv/bin/python benchmarks/run.py --quick
