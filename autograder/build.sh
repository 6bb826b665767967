#!/usr/bin/env bash
# Build the zip to upload as a Gradescope "programming assignment" autograder:
#   bash autograder/build.sh [EXERCISE ...]      (default: all exercises)
# It holds setup.sh and run_autograder at the top (as Gradescope requires),
# the attn-grade wheel built from this checkout, constraints.txt, and
# attn-grade.conf naming the exercises this assignment grades.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="build/autograder"
rm -rf "$OUT" && mkdir -p "$OUT"
python3 -m pip wheel --no-deps --quiet --wheel-dir "$OUT" .
cp autograder/setup.sh autograder/run_autograder constraints.txt "$OUT/"
chmod +x "$OUT/setup.sh" "$OUT/run_autograder"
echo "ATTN_GRADE_EXERCISES=\"${*:-all}\"" > "$OUT/attn-grade.conf"
(cd "$OUT" && python3 -m zipfile -c ../autograder.zip ./*)
echo "wrote build/autograder.zip: upload it as the assignment's autograder"
