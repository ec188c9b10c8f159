"""Tables of experiments/testbed_accuracy_queue.sh's runs: per testbed row and method, each seed's
last-10 test accuracy with --forget-rate auto and given the realised rate, their difference, the
estimate and its interval, and the final verdicts' F1 against the wrong labels (issue 27, part 4).

    python experiments/summarise_testbed_accuracy.py runs/testbed-acc runs/human-rows
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np


def f1(results: dict) -> float | None:
    if "n_wrong_labels" not in results:
        return None
    flagged = results["n_relabelled"] + results["n_discarded"]
    return 2 * results["wrong_caught"] / (flagged + results["n_wrong_labels"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    args = parser.parse_args()
    runs = defaultdict(dict)  # (row, method) -> seed -> {"auto": results, "true": results}
    for folder in args.folders:
        for path in sorted(folder.glob("*/results.json")):
            found = re.fullmatch(r"(.+)-([a-z]+)-(auto|true)-seed(\d+)", path.parent.name)
            if found:
                row, method, kind, seed = found.groups()
                runs[(row, method)].setdefault(int(seed), {})[kind] = json.loads(path.read_text())
    print("| row | method | seed | realised | estimate (interval) | auto | true | auto − true | F1 auto | F1 true |")
    print("|---|---|---:|---:|---|---:|---:|---:|---:|---:|")
    medians = []
    for (row, method), seeds in sorted(runs.items()):
        diffs = []
        for seed, pair in sorted(seeds.items()):
            auto, true = pair.get("auto"), pair.get("true")
            ref = auto or true
            realised = ref["noise"].get("wrong_labels", float("nan"))
            estimate = "–"
            if auto and "estimated_noise_rate" in auto:
                estimate = f"{auto['estimated_noise_rate']:.3f}"
                if auto.get("estimated_noise_rate_interval"):
                    lo, hi = auto["estimated_noise_rate_interval"]
                    estimate += f" ({lo:.2f}–{hi:.2f})"
            a = auto["last10_mean"] if auto else None
            t = true["last10_mean"] if true else None
            if a is not None and t is not None:
                diffs.append(a - t)
            cells = [f"{a:.2f}" if a is not None else "–", f"{t:.2f}" if t is not None else "–",
                     f"{a - t:+.2f}" if a is not None and t is not None else "–",
                     f"{f1(auto):.3f}" if auto and f1(auto) is not None else "–",
                     f"{f1(true):.3f}" if true and f1(true) is not None else "–"]
            print(f"| {row} | {method} | {seed} | {realised:.3f} | {estimate} | " + " | ".join(cells) + " |")
        if diffs:
            medians.append((row, method, float(np.median(diffs)), len(diffs)))
    print("\n| row | method | median auto − true | seeds |\n|---|---|---:|---:|")
    for row, method, median, n in medians:
        print(f"| {row} | {method} | {median:+.2f} | {n} |")


if __name__ == "__main__":
    main()
