"""cleanlab on the testbed's rows (issue 27's target: Co-mining's verdicts find wrong labels better).

For each row's label file (experiments/noise_testbed.py labels), cleanlab.filter.find_label_issues
given out-of-fold probabilities of the same small CNN, as benchmarks/label_issues_vs_cleanlab.py
trains it (5 folds, plain cross-entropy, each fold at its best of 20 epochs, seed 1). Writes
OUT/ROW.json with precision, recall, F1 and the number flagged; the Co-mining side is the F1 of the
runs' own verdicts (experiments/summarise_testbed_accuracy.py).

    python experiments/cleanlab_on_testbed.py --out runs/testbed-cleanlab human-aggre human-worse
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from label_issues_vs_cleanlab import cleanlab_verdicts, cnn_oof, scores  # noqa: E402

from comining.config import resolve  # noqa: E402
from comining.engine import Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="+")
    parser.add_argument("--testbed", type=Path, default=Path("runs/testbed"))
    parser.add_argument("--out", type=Path, default=Path("runs/testbed-cleanlab"))
    parser.add_argument("--cnn-epochs", type=int, default=20)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = json.loads((args.testbed / "rows.json").read_text())  # as noise_testbed.py labels wrote them
    for row in args.rows:
        dest = args.out / f"{row}.json"
        if dest.exists():
            continue
        spec = rows[row]  # its label file, and --open-ratio for the rows with open-set images
        flags = spec["flags"]
        open_ratio = float(flags[flags.index("--open-ratio") + 1]) if "--open-ratio" in flags else 0.0
        cfg = resolve({"dataset": "fashion-mnist", "labels": str(args.testbed / Path(spec["file"]).name),
                       "train_subset": 3200, "test_subset": 2000, "open_ratio": open_ratio, "device": "cpu",
                       "quiet": True, "seed": 1})
        data = Trainer(cfg).data
        start = time.process_time()
        oof = cnn_oof(cfg, data, 5, args.cnn_epochs, cfg.seed)
        flagged, _ = cleanlab_verdicts(data.labels.numpy(), oof)
        true, given = data.true_labels.cpu().numpy(), data.labels.cpu().numpy()
        wrong = (given != true) | (true >= data.num_classes)
        result = {"row": row, "wrong": int(wrong.sum()), "cpu_s": time.process_time() - start, **scores(flagged, wrong)}
        dest.write_text(json.dumps(result, indent=1))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
