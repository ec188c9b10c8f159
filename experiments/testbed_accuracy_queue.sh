#!/usr/bin/env bash
# Issue 27's accuracy check on testbed rows (label files written by experiments/noise_testbed.py labels):
# each METHOD with --forget-rate auto (as a user runs it) and given the row's realised rate (as the
# paper's protocol does), seeds 4-6, FM 3,200 training and 2,000 test images, one thread per run.
# Usage: experiments/testbed_accuracy_queue.sh JOBS OUT METHODS ROW:RATE [ROW:RATE ...]
#   e.g. experiments/testbed_accuracy_queue.sh 2 runs/testbed-acc comining,coteaching annot20:0.194375
# Finished runs are skipped; summarise with experiments/summarise_testbed_accuracy.py OUT.
set -u
jobs=${1:?JOBS}; out=${2:?OUT}; methods=${3:?METHODS}; shift 3
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1
common="--dataset fashion-mnist --train-subset 3200 --test-subset 2000 --quiet"
for seed in 4 5 6; do
  for row in "$@"; do
    name=${row%%:*}; rate=${row##*:}
    for method in ${methods//,/ }; do
      echo "$name-$method-auto-seed$seed --labels runs/testbed/$name.npy --method $method --forget-rate auto --seed $seed"
      echo "$name-$method-true-seed$seed --labels runs/testbed/$name.npy --method $method --forget-rate $rate --seed $seed"
    done
  done
done | xargs -P "$jobs" -L 1 bash -c 'name=$0
  [ -f "'"$out"'/$name/results.json" ] && exit 0
  mkdir -p "'"$out"'"
  '"$PYTHON"' -m comining train '"$common"' --out "'"$out"'/$name" "$@" > "'"$out"'/$name.log" 2>&1 \
    && echo "$(date +%T) done $name" || echo "$(date +%T) FAILED $name"'
