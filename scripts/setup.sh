#!/usr/bin/env bash
# Install what audb-publish needs into .venv: sox, mediainfo and ffmpeg
# through apt where missing (audb reads non-WAV/FLAC/OGG media with them),
# then the package with its test, benchmark and docs extras.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in sox mediainfo ffmpeg; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "Installing ${missing[*]} with apt"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,benchmark,docs]'
