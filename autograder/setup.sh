#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs attn-grade into /autograder/venv: from the wheel that
# autograder/build.sh put into the zip (so the autograder grades with exactly
# the version it was built from), else from PyPI at the version in
# harness.txt. torch comes from the CPU index (no CUDA packages).
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"

if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip

constraints=()
if [ -f "$SOURCE/constraints.txt" ]; then
    constraints=(-c "$SOURCE/constraints.txt")
fi
shopt -s nullglob
wheels=("$SOURCE"/attn_grade-*.whl)
if [ "${#wheels[@]}" -gt 0 ]; then
    harness="${wheels[-1]}"
elif [ -f "$SOURCE/harness.txt" ]; then
    harness="$(head -n 1 "$SOURCE/harness.txt")"
else
    echo "setup.sh: no attn_grade-*.whl and no harness.txt in $SOURCE (build the zip with autograder/build.sh)" >&2
    exit 1
fi
PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
    "$VENV/bin/python" -m pip install "${constraints[@]}" "$harness"
"$VENV/bin/attn-grade" --version
