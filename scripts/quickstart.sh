#!/usr/bin/env bash
# Set everything up and publish an example database to a local repository,
# then load it back with stock audb.load.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/publish_example.py "$@"
