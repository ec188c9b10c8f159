#!/usr/bin/env bash
# Issue 30 on the annotator-model rows (experiments/noise_testbed.py labels --out runs/testbed): DivideMix
# (α 0.5, λ_u from its unknown-rate rule, as for any label file), seeds 4-6, FM 3,200 training and 2,000
# test images, one thread per run, JOBS at once; Co-mining's runs are testbed_accuracy_queue.sh's.
# Usage: experiments/annot_dividemix_queue.sh JOBS OUT   (finished runs are skipped)
set -u
jobs=${1:?JOBS}; out=${2:?OUT}
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1
for seed in 4 5 6; do for row in annot20 annot35; do echo "$row $seed"; done; done |
  xargs -P "$jobs" -L 1 bash -c 'row=$0 seed=$1 dest="'"$out"'/$row-dividemix-seed$seed"
    [ -f "$dest/results.json" ] && exit 0
    mkdir -p "'"$out"'"
    '"$PYTHON"' -m comining train --dataset fashion-mnist --train-subset 3200 --test-subset 2000 --quiet \
      --labels "runs/testbed/$row.npy" --method dividemix --dm-alpha 0.5 --seed "$seed" --out "$dest" \
      > "$dest.log" 2>&1 && echo "$(date +%T) done $row $seed" || echo "$(date +%T) FAILED $row $seed"'
