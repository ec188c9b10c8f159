#!/usr/bin/env bash
# Issues 27 and 30 on the human-like rows (the CIFAR-N-style Fashion-MNIST file's two keys, written by
# experiments/noise_testbed.py labels): DivideMix (α 0.5, as in the five-row study), and Co-mining with
# --forget-rate auto (as a user runs it) and given the realised rate (as the paper's protocol does),
# seeds 4-6, FM 3,200 training and 2,000 test images, one thread per run, JOBS runs at once.
# Usage: experiments/human_rows_queue.sh JOBS OUT   (finished runs are skipped)
set -u
jobs=${1:?JOBS}; out=${2:?OUT}
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1
common="--dataset fashion-mnist --train-subset 3200 --test-subset 2000 --quiet"
for seed in 4 5 6; do
  for row in human-aggre:0.0878125 human-worse:0.395625; do
    name=${row%%:*}; rate=${row##*:}
    echo "$name-dividemix-seed$seed --labels runs/testbed/$name.npy --method dividemix --dm-alpha 0.5 --seed $seed"
    echo "$name-comining-auto-seed$seed --labels runs/testbed/$name.npy --forget-rate auto --seed $seed"
    echo "$name-comining-true-seed$seed --labels runs/testbed/$name.npy --forget-rate $rate --seed $seed"
  done
done | xargs -P "$jobs" -L 1 bash -c 'name=$0
  [ -f "'"$out"'/$name/results.json" ] && exit 0
  mkdir -p "'"$out"'"
  '"$PYTHON"' -m comining train '"$common"' --out "'"$out"'/$name" "$@" > "'"$out"'/$name.log" 2>&1 \
    && echo "$(date +%T) done $name" || echo "$(date +%T) FAILED $name"'
