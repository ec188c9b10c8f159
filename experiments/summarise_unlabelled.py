"""Issue 30: Co-mining with its discarded samples trained as unlabelled data (--w-un) against the default,
paired by seed, from the run directories of docs/notes/2026-12-06-unlabelled-consistency.md.

    python experiments/summarise_unlabelled.py [RUNS]      # RUNS: the runs folder (default runs)

Per row and arm, the default (base) against the arm, paired by seed (summarise_dividemix.print_pairs).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from summarise_dividemix import print_pairs  # noqa: E402

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
    print_pairs(runs, PAIRS)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs")))
