#!/usr/bin/env bash
# Issue 30, DivideMix's third screening round (seeds 1-3, the comparison's seeds being 4-6): the rows
# the first two rounds left unscreened. Each arm changes one setting of the comparison's DivideMix
# (--dm-alpha 0.5, λ_u by the paper's rule) and is paired by seed with that setting's own runs:
#   annotator 20 % and 35 % (label files, so the rule's λ_u is 25): λ_u 0;
#   pair flip 40 % (λ_u 0 by the rule): λ_u 25, the CIFAR α 4, τ 0.7;
#   symmetric 20 % + open-set 20 % (λ_u 0 by the rule): λ_u 25;
#   symmetric 80 % (λ_u 150): the CIFAR α 4, against runs/dm-screen2/alpha05 of the second round.
# The fourth round (runs/dm-screen4) follows the third's finding that λ_u decides most rows, 0 and 25
# each winning some: λ_u 5 between them on human-like worse_label (with its 25 and 0 on these seeds),
# annotator 35 % and symmetric 50 % (against round 2's 25 and 0); and a 10-epoch warm-up under pair flip.
# The fifth (runs/dm-screen5) puts λ_u 5 on every other row whose rule gives 0 or 25: annotator 20 %,
# human-like aggre_label (with its 25 and 0 on these seeds), symmetric 20 % and the open-set row.
# Fashion-MNIST, 3,200 training and 2,000 test images, one thread per run, JOBS at once; finished
# runs are skipped. Label files come from experiments/noise_testbed.py labels --out runs/testbed.
# Usage: experiments/dividemix_screening.sh JOBS   then   python experiments/summarise_dm_screening.py
set -u
jobs=${1:?JOBS}
PYTHON=${PYTHON:-python3}
export OMP_NUM_THREADS=1 PYTHON
{
  for row in annot20 annot35; do
    for arm in "lu25:" "lu0:--dm-lambda-u 0"; do
      for seed in 1 2 3; do
        echo "train dm-screen3/$row-${arm%%:*}-seed$seed --labels runs/testbed/$row.npy --method dividemix --dm-alpha 0.5 --seed $seed ${arm#*:}"
      done
    done
  done
  for arm in "lu25:--dm-lambda-u 25" "lu5:--dm-lambda-u 5" "lu0:--dm-lambda-u 0"; do
    for seed in 1 2 3; do
      echo "train dm-screen4/human-worse-${arm%%:*}-seed$seed --labels runs/testbed/human-worse.npy --method dividemix --dm-alpha 0.5 --seed $seed ${arm#*:}"
    done
  done
  for seed in 1 2 3; do
    echo "train dm-screen4/annot35-lu5-seed$seed --labels runs/testbed/annot35.npy --method dividemix --dm-alpha 0.5 --seed $seed --dm-lambda-u 5"
  done
  for seed in 1 2 3; do
    echo "train dm-screen5/annot20-lu5-seed$seed --labels runs/testbed/annot20.npy --method dividemix --dm-alpha 0.5 --seed $seed --dm-lambda-u 5"
  done
  for arm in "lu25:--dm-lambda-u 25" "lu5:--dm-lambda-u 5" "lu0:--dm-lambda-u 0"; do
    for seed in 1 2 3; do
      echo "train dm-screen5/human-aggre-${arm%%:*}-seed$seed --labels runs/testbed/human-aggre.npy --method dividemix --dm-alpha 0.5 --seed $seed ${arm#*:}"
    done
  done
  for arm in "dm-screen5/sym20-lu5 sym20 --dm-alpha 0.5 --dm-lambda-u 5" "dm-screen5/open-lu5 sym20-open20 --dm-alpha 0.5 --dm-lambda-u 5" \
             "dm-screen4/sym50-lu5 sym50 --dm-alpha 0.5 --dm-lambda-u 5" "dm-screen4/asym40-warmup10 asym40 --dm-alpha 0.5 --warmup 10"; do
    set -- $arm; out=$1 row=$2; shift 2
    for seed in 1 2 3; do echo "table $out $row $seed --methods dividemix $*"; done
  done
  for arm in "asym40-base asym40 --dm-alpha 0.5" "asym40-lu25 asym40 --dm-alpha 0.5 --dm-lambda-u 25" \
             "asym40-alpha4 asym40 --dm-alpha 4" "asym40-tau07 asym40 --dm-alpha 0.5 --dm-tau 0.7" \
             "open-base sym20-open20 --dm-alpha 0.5" "open-lu25 sym20-open20 --dm-alpha 0.5 --dm-lambda-u 25" \
             "sym80-alpha4 sym80 --dm-alpha 4"; do
    set -- $arm; name=$1 row=$2; shift 2
    for seed in 1 2 3; do echo "table dm-screen3/$name $row $seed --methods dividemix $*"; done
  done
} | sed 's/ *$//' | xargs -P "$jobs" -L 1 bash -c 'kind=$0
  common="--dataset fashion-mnist --train-subset 3200 --test-subset 2000 --quiet"
  if [ "$kind" = table ]; then out=runs/$1 row=$2 seed=$3; shift 3; log=$out/$row-seed$seed.log
    ls "$out"/$row-dividemix-seed$seed/results.json >/dev/null 2>&1 && exit 0
    mkdir -p "$out"
    $PYTHON -m comining table $common --noise "$row" --seeds "$seed" --out "$out" "$@" > "$log" 2>&1
  else out=runs/$1; shift; log=$out.log
    [ -f "$out/results.json" ] && exit 0
    mkdir -p "$(dirname "$out")"
    $PYTHON -m comining train $common --out "$out" "$@" > "$log" 2>&1
  fi && echo "$(date +%T) done $out" || echo "$(date +%T) FAILED $out (see $log)"'
