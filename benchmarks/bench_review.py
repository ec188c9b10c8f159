"""How long `comining review` takes to build its page, and the page to open and respond, for 50,000 samples.

Builds a run directory for the Fashion-MNIST training set (the real images from the Debian package;
verdicts, scores and label qualities drawn at random in the shares a noisy run gives), times
``build_review``, then opens the page in headless Chromium and times: opening until the first page
of cards is drawn with its thumbnails, turning a page, showing all 50,000 (every verdict ticked,
sorted by name), deciding for all of them at once, and producing the label file.

    python benchmarks/bench_review.py                 # 50,000 samples, run directory in a temp folder
    python benchmarks/bench_review.py --samples 10000 --keep /tmp/review-bench
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from browser import chromium_path, launch  # noqa: E402

from comining.data import load_arrays  # noqa: E402
from comining.review import build_review  # noqa: E402


def fake_run(out: Path, samples: int, seed: int = 0) -> None:
    """A finished Fashion-MNIST run's files with ``samples`` verdicts (no training)."""
    data = load_arrays("fashion-mnist")
    classes, truth = data.classes, data.train_labels[:samples]
    rng = np.random.RandomState(seed)
    given = np.where(rng.rand(samples) < 0.4, rng.randint(0, 10, samples), truth)
    verdict = rng.choice(["clean", "relabelled", "discarded"], samples, p=[0.6, 0.15, 0.25])
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "verdicts.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sample", "given_label", "true_label", "verdict", "suggested_label", "label_quality",
                         "outlier_score", "selection", "score"])
        for i in range(samples):
            suggested = classes[rng.randint(10)] if verdict[i] == "relabelled" else ""
            writer.writerow([i, classes[given[i]], classes[truth[i]], verdict[i], suggested,
                             f"{rng.rand():.4f}", f"{rng.rand():.4f}", verdict[i], f"{rng.rand() * 3:.4f}"])
    (out / "data.json").write_text(json.dumps({"dataset": "fashion-mnist", "root": None, "classes": classes}))
    (out / "config.json").write_text(json.dumps({"dataset": "fashion-mnist", "train_subset": samples,
                                                 "method": "comining", "noise_type": "symmetric",
                                                 "closed_rate": 0.4}))
    (out / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e, "test_acc": 60 + e, "label_precision": 0.8})
                                               + "\n" for e in range(1, 11)))


def timed_in_browser(page_path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    seconds = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        start = time.perf_counter()
        page.goto(page_path.as_uri())
        page.locator(".card").first.wait_for()
        page.wait_for_load_state("load")  # the visible sheets have arrived
        seconds["open (first page drawn, thumbnails loaded)"] = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("#next-page").click()
        page.locator("#page-info", has_text="page 2 ").wait_for()
        seconds["turn a page"] = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("#verdict-filter input[value='0']").check()
        page.locator("#sort").select_option("name")
        seconds["show all samples, sorted by name"] = time.perf_counter() - start
        start = time.perf_counter()
        page.locator("#bulk-keep").click()
        page.locator("#decided-count").wait_for()
        seconds["decide for all shown (keep given)"] = time.perf_counter() - start
        start = time.perf_counter()
        with page.expect_download() as download:
            page.locator("#save").click()
        download.value.path()
        seconds["save the label file"] = time.perf_counter() - start
        browser.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--keep", metavar="DIR", help="write the run directory here (default: a temporary one)")
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.keep or tmp) / "run"
        fake_run(run, args.samples)
        start = time.perf_counter()
        page = build_review(run)
        build = time.perf_counter() - start
        size = page.stat().st_size + sum(p.stat().st_size for p in (run / "review").iterdir())
        print(f"{args.samples} samples, {platform.processor() or platform.machine()}, "
              f"{time.strftime('%Y-%m-%d')}")
        print(f"build_review: {build:.2f} s; page {page.stat().st_size / 2**20:.1f} MiB, "
              f"with thumbnails {size / 2**20:.1f} MiB in {len(list((run / 'review').iterdir()))} sheets")
        for what, value in timed_in_browser(page).items():
            print(f"{what}: {value:.2f} s")


if __name__ == "__main__":
    main()
