#!/usr/bin/env bash
# Runs a study's `comining table` lines one cell (noise row × seed) at a time, JOBS cells at once, so
# that many small runs share one GPU (or many cores). Each queue line is
#     OUT ROWS SEEDS FLAGS...
# (ROWS and SEEDS comma-separated) and stands for
#     comining table $COMMON --noise ROWS --seeds SEEDS --out OUT FLAGS...
# Every cell writes its own run directory, so finished cells are skipped on a second pass and the
# line's table is written by running that line's command once more when all its cells exist.
# Usage: COMMON="--dataset fashion-mnist ..." experiments/run_cells.sh JOBS QUEUE
set -u
jobs=${1:?JOBS}; queue=${2:?QUEUE}
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
while read -r out rows seeds flags; do
  case "$out" in ''|\#*) continue;; esac
  for row in ${rows//,/ }; do
    for seed in ${seeds//,/ }; do
      # no trailing blank when a line has no flags: xargs -L would join the next line onto it
      echo "$out $row $seed${flags:+ $flags}"
    done
  done
done < "$queue" |
  xargs -P "$jobs" -L 1 bash -c 'out=$0 row=$1 seed=$2; shift 2
    mkdir -p "$out"
    $PYTHON -m comining table $COMMON --quiet --noise "$row" --seeds "$seed" --out "$out" "$@" \
      > "$out/$row-seed$seed.log" 2>&1 && echo "$(date +%T) done $out $row $seed" \
      || echo "$(date +%T) FAILED $out $row $seed (see $out/$row-seed$seed.log)"'
