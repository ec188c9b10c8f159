"""Issue 30: Co-mining with its discarded samples trained as unlabelled data (--w-un) against the default,
paired by seed, from the run directories of docs/notes/2026-12-06-unlabelled-consistency.md.

    python experiments/summarise_unlabelled.py [RUNS]      # RUNS: the runs folder (default runs)

Per row and arm: the default's and the arm's mean ± sample std over seeds of the last-10 mean test
accuracy, the paired differences arm − default per seed, and both verdict F1s (summarise_dividemix.run_record).
Only seeds where both finished are paired.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from summarise_dividemix import mean_std, run_record  # noqa: E402

# (table, row, arm, the default's run pattern, the arm's run pattern); {s} is the seed
HUMAN = {"human-worse": "human-rows", "human-aggre": "human-rows", "annot35": "testbed-acc"}
PAIRS = (
    [("why: DivideMix without (default column) and with its unlabelled loss (arm)", row, "λ_u 25",
      f"human-rows/{row}-dividemix-lu0-seed{{s}}", f"human-rows/{row}-dividemix-seed{{s}}")
     for row in ("human-worse", "human-aggre")]
    + [("screening (seeds 1-3)", "human-worse", f"w_un {w}", "wun/human-worse-base-seed{s}",
      f"wun/human-worse-wun{w}-seed{{s}}") for w in (5, 25)]
    + [("check (seeds 4-6)", row, "w_un 5", f"{folder}/{row}-comining-true-seed{{s}}", f"wun/{row}-wun5-seed{{s}}")
       for row, folder in HUMAN.items()]
    + [("check (seeds 4-6)", row, "w_un 5", f"dm-study/{row}-comining-seed{{s}}",
        f"wun-study/wun5/{row}-comining-seed{{s}}") for row in ("sym20", "sym50", "sym80", "asym40", "sym20-open20")]
)


def main(runs: Path) -> int:
    table = None
    for name, row, arm, base, new in PAIRS:
        seeds = [s for s in range(1, 10) if (runs / base.format(s=s) / "results.json").exists()
                 and (runs / new.format(s=s) / "results.json").exists()]
        if not seeds:
            continue
        if name != table:
            print(f"\n{name}\n\n| row | arm | seeds | default | arm | arm − default per seed (mean) | F1 default / arm |")
            print("|---|---|---|---:|---:|---|---|")
            table = name
        a = [run_record(runs / base.format(s=s)) for s in seeds]
        b = [run_record(runs / new.format(s=s)) for s in seeds]
        diffs = [y["accuracy"] - x["accuracy"] for x, y in zip(a, b)]
        print(f"| {row} | {arm} | {','.join(map(str, seeds))} | {mean_std([x['accuracy'] for x in a])} "
              f"| {mean_std([y['accuracy'] for y in b])} | {', '.join(f'{d:+.2f}' for d in diffs)} "
              f"({np.mean(diffs):+.2f}) | {np.mean([x['f1'] for x in a]):.3f} / {np.mean([y['f1'] for y in b]):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs")))
