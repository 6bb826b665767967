#!/usr/bin/env bash
# Grade a class on a Slurm cluster: one array task per shard, then merge.
#
#   sbatch docs/examples/batch-slurm.sh /shared/course/submissions
#   # when every task has finished (or: sbatch --dependency=afterok:JOBID ...):
#   attn-grade merge results/shard-*.json --output grades.csv
#
# Every task writes its own results/shard-I.json; the report cache is shared
# (--cache-dir on a shared filesystem; each entry is written atomically), so a
# regrade only grades what changed.  See docs/batch.md.
#SBATCH --job-name=attn-grade
#SBATCH --array=1-8
#SBATCH --cpus-per-task=2
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=logs/attn-grade-%A_%a.out

set -euo pipefail

submissions="${1:?usage: sbatch batch-slurm.sh SUBMISSIONS_DIR}"
task="${SLURM_ARRAY_TASK_ID:-1}"
count="${SLURM_ARRAY_TASK_COUNT:-1}"
jobs="${SLURM_CPUS_PER_TASK:-2}"
cache="${ATTN_GRADE_CACHE:-$PWD/.attn-grade-cache}"

mkdir -p results logs
status=0
attn-grade batch "$submissions" --shard "$task/$count" --jobs "$jobs" --no-train \
    --cache-dir "$cache" --output "results/shard-$task.json" \
    --feedback-dir results/feedback || status=$?
# 1: some students' rows need attention (they are in the gradebook); anything else failed.
if [ "$status" -gt 1 ]; then
    exit "$status"
fi
