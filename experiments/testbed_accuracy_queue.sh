#!/usr/bin/env bash
# Runs on testbed rows (label files written by experiments/noise_testbed.py labels), seeds 4-6, FM 3,200
# training and 2,000 test images, one thread per run, JOBS at once. Each METHOD runs with
# --forget-rate auto (as a user runs it) and given the row's realised rate (as the paper's protocol does),
# named ROW-METHOD-auto-seedS and ROW-METHOD-true-seedS; dividemix, which has no forget rate, runs once,
# with the α 0.5 of issue 30's study, named ROW-dividemix-seedS (issues 27 and 30).
# Usage: experiments/testbed_accuracy_queue.sh JOBS OUT METHODS ROW:RATE [ROW:RATE ...]
#   e.g. experiments/testbed_accuracy_queue.sh 2 runs/human-rows comining,dividemix human-aggre:0.0878125
# A ROW named NAME-open is NAME's label file with --open-ratio 0.2, as the testbed's rows.json has it.
# LABELS=DIR takes the label files from DIR instead of runs/testbed (e.g. runs/holdout-mlp).
# Finished runs are skipped; summarise with experiments/summarise_testbed_accuracy.py OUT (auto against
# true) and experiments/summarise_dividemix.py OUT comining-true (DivideMix against Co-mining).
set -u
jobs=${1:?JOBS}; out=${2:?OUT}; methods=${3:?METHODS}; shift 3
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1
common="--dataset fashion-mnist --train-subset 3200 --test-subset 2000 --quiet"
for seed in 4 5 6; do
  for row in "$@"; do
    name=${row%%:*}; rate=${row##*:}
    file=${LABELS:-runs/testbed}/${name%-open}.npy; flags=""
    [ "$name" != "${name%-open}" ] && flags="--open-ratio 0.2"
    for method in ${methods//,/ }; do
      if [ "$method" = dividemix ]; then
        echo "$name-dividemix-seed$seed --labels $file $flags --method dividemix --dm-alpha 0.5 --seed $seed"
        continue
      fi
      echo "$name-$method-auto-seed$seed --labels $file $flags --method $method --forget-rate auto --seed $seed"
      echo "$name-$method-true-seed$seed --labels $file $flags --method $method --forget-rate $rate --seed $seed"
    done
  done
done | xargs -P "$jobs" -L 1 bash -c 'name=$0
  [ -f "'"$out"'/$name/results.json" ] && exit 0
  mkdir -p "'"$out"'"
  '"$PYTHON"' -m comining train '"$common"' --out "'"$out"'/$name" "$@" > "'"$out"'/$name.log" 2>&1 \
    && echo "$(date +%T) done $name" || echo "$(date +%T) FAILED $name"'
