"""A finished run in words: the lines ``comining train`` prints at its end and the rows of the review
page's summary, from the run's settings, results.json and data.json. The terminal and the page say the
same things because their wording lives here, the noise rate's included (what counted it, how sure it
is, what to do where it is unsure).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from comining import noise_rate
from comining.config import LEGACY_RECIPE, pretrained
from comining.forget_rate import MIXTURE, PROBE, WITHOUT_SPLIT, probe_source
from comining.methods import METHODS
from comining.noise import USER_IMAGE_SETS


def print_summary(cfg, results: dict, out: str) -> None:
    """Print the end of a training run: its data and noise, accuracy, the noise rate it estimated and
    how sure that is, its verdicts, and where its files are (``out``, the run directory)."""
    noise = results.get("noise", {})
    n = results["train_size"]
    method = cfg.method + (f" (recipe {cfg.recipe})" if METHODS[cfg.method].uses_recipe else "")
    if "skipped_files" in results:  # an image folder: labels as given, no synthetic noise to report
        skipped = results["skipped_files"]
        head = (f"{method} on {cfg.dataset}: {n} training images"
                + (f" ({skipped} unreadable file{'s' if skipped != 1 else ''} skipped, listed in skipped_files.txt)"
                   if skipped else ", no unreadable files"))
    else:
        parts = [f"labels of {cfg.labels}" + (f"[{cfg.label_key}]" if cfg.label_key else "")] if cfg.labels else []
        if cfg.closed_rate or cfg.open_ratio or not cfg.labels:  # synthetic noise, on its own or on top
            parts.append(f"{cfg.noise_type} {cfg.closed_rate:.0%}"
                         + (f", open-set {cfg.open_ratio:.0%}" if cfg.open_ratio else ""))
        head = (f"{method} on {cfg.dataset}: {n} training images, "
                f"{noise.get('wrong_labels', 0) * 100:.1f} % of labels wrong ({' + '.join(parts)})")
    left_out = results.get("left_out")
    if left_out:
        head += f"; {left_out} sample{'s' if left_out != 1 else ''} left out of training (no label in the label file)"
    lines = [head]
    unmatched = results.get("unmatched_label_rows")
    if unmatched:
        count = unmatched["count"]
        lines.append(f"warning: {count} row{'s' if count != 1 else ''} of {cfg.labels} name{'' if count != 1 else 's'} "
                     f"no image of the data set (e.g. {unmatched['first']}) and {'were' if count != 1 else 'was'} "
                     "ignored: paths are relative to the data root (a CSV list's folder), as in verdicts.csv, "
                     "or absolute")
    if cfg.train_csv and cfg.val_csv and Path(cfg.train_csv).resolve() == Path(cfg.val_csv).resolve():
        lines.append("warning: --train-csv and --val-csv are the same file, so the test accuracy below is "
                     "training accuracy: list held-out images in --val-csv")
    lines += [f"test accuracy {results['last10_mean']:.2f} ± {results['last10_std']:.2f} % "
             f"(last {min(10, results['epochs'])} epochs; best {results['best_acc']:.2f} at epoch {results['best_epoch']}; "
             f"{results['precision']} on {results['device']}, {results['seconds']:.0f} s)"]
    if results.get("precision_reason"):
        lines.append(f"precision {results['precision_reason']}")
    if "estimated_noise_rate" in results:
        lines.append(f"noise rate estimated from {source_text(results, cfg)}: "
                     + estimated_text(results["estimated_noise_rate"], results.get("estimated_noise_rate_interval"))
                     + (f", realised {noise['wrong_labels']:.1%}" if "wrong_labels" in noise else "")
                     + "; used as the forget rate")
        unsure = unsure_text(results, out)
        if unsure:
            lines.append(unsure)
    if results.get("forget_rate_shortfall"):
        lines.append(f"warning: {results['forget_rate_shortfall']}")
    if "n_wrong_labels" in results:  # final verdicts: every method has them
        wrong = results["n_wrong_labels"]
        lines.append(f"wrong labels caught: {results['wrong_caught']} of {wrong}"
                     + (f" ({results['wrong_caught'] / wrong:.0%})" if wrong else "")
                     + f"; right labels set aside: {results['right_flagged']} of {n - wrong}")
    lines.append(f"verdicts: {results['n_clean']} clean, {results['n_relabelled']} relabelled"
                 + (f" ({results['relabelled_correctly']} to the true class)" if "relabelled_correctly" in results else "")
                 + f", {results['n_discarded']} discarded")
    lines.append(f"run directory: {out} (verdicts.csv, metrics.jsonl, curves.png)")
    if cfg.backbone == "frozen" or cfg.dataset in USER_IMAGE_SETS:
        lines.append(backbone_line(cfg, results.get("backbone")))
    if "skipped_files" in results:
        lines.append(f"look at the verdicts with `comining inspect {shlex.quote(str(out))}`; "
                     f"classify new images with `comining predict --run {shlex.quote(str(out))} PATH...`")
    print("\n".join(lines))


def backbone_line(cfg, frozen: dict | None) -> str:
    """Which backbone mode ran, and how to get the other."""
    if frozen is None:
        if not pretrained(cfg):  # random features: a head on them would learn little
            return f"backbone: {cfg.arch} trained whole from random weights"
        return (f"backbone: {cfg.arch} fine-tuned whole; --backbone frozen trains only a head on its cached "
                "features, minutes on a CPU")
    line = (f"backbone: frozen {frozen['backbone']}, a {frozen['head']} head trained on its cached features "
            f"({frozen['computed']} images computed, {frozen['cached']} from the cache {frozen['cache_dir']})")
    return line + "; --backbone finetune trains the whole network (hours on a CPU, better on a GPU)"


def page_rows(cfg: dict, data: dict, results: dict, n_rows: int, run: Path) -> list[list[str]]:
    """[(what, value)] of the run's summary as the review page of the run in ``run`` shows it, from its
    config.json ``cfg``, data.json ``data``, results.json ``results`` and its ``n_rows`` verdicts."""
    dataset = cfg.get("synthetic") or cfg.get("dataset") or data.get("dataset") or "?"
    noise = results.get("noise") or {}
    if data.get("root"):
        dataset += f" ({data['root']})"
        given = "the labels as given (rate unknown)"
    else:
        given = f"{cfg.get('noise_type', '?')} {cfg.get('closed_rate', 0):.0%}" + (
            f", open-set {cfg['open_ratio']:.0%}" if cfg.get("open_ratio") else "")
        if "wrong_labels" in noise:
            given += f" ({noise['wrong_labels']:.1%} of the labels wrong)"
    estimated = results.get("estimated_noise_rate")
    lines = [["data set", f"{dataset}: {n_rows} training samples, {len(data.get('classes') or [])} classes"],
             ["method", str(cfg.get("method", results.get("method", "?")))],
             ["recipe", str(cfg.get("recipe") or LEGACY_RECIPE)],
             ["noise given", given],
             ["noise estimated", estimated_text(estimated, results.get("estimated_noise_rate_interval"))]]
    readings = readings_text(results)
    if readings:  # what the interval spans: where they disagree, a user may know better
        lines.append(["its readings", readings])
    unsure = unsure_text(results, run, with_readings=False)  # the readings have their row above
    if unsure:  # the page where the flags are decided is where to say it
        lines.append(["unsure", unsure])
    if results.get("forget_rate_shortfall"):
        lines.append(["warning", str(results["forget_rate_shortfall"])])
    if "last10_mean" in results:
        lines.append(["test accuracy", f"{results['last10_mean']:.2f} ± {results.get('last10_std', 0):.2f} % "
                      f"(mean of the last {min(10, results.get('epochs', 10))} epochs; best "
                      f"{results.get('best_acc', 0):.2f} % at epoch {results.get('best_epoch', '?')})"])
    return lines


def source_text(results: dict, cfg) -> str:
    """What set the noise rate of ``results`` (results.json), as the summary names it: "the losses",
    "a count without a split (the losses did not separate)" or the probe, and ", capped at the
    network's disagreement" where the cap set it."""
    by = results.get("noise_rate_estimated_by", MIXTURE)
    text = {PROBE: f"a linear probe of the {probe_source(cfg)}",
            WITHOUT_SPLIT: "a count without a split (the losses did not separate)"}.get(by, "the losses")
    readings, rate = results.get("noise_rate_readings"), results.get("estimated_noise_rate")
    if by != PROBE and isinstance(readings, dict) and isinstance(rate, (int, float)) \
            and isinstance(readings.get("rate"), (int, float)) and rate < readings["rate"]:
        text += ", capped at the network's disagreement"
    return text


def estimated_text(estimated, interval) -> str:
    """"31.3% (likely 24% to 41%)": an estimated noise rate, with its interval where the run has one
    (older runs do not); "not estimated" without a rate."""
    if not isinstance(estimated, (int, float)):
        return "not estimated"
    if is_interval(interval):
        return f"{estimated:.1%} (likely {interval[0]:.0%} to {interval[1]:.0%})"
    return f"{estimated:.1%}"


def readings_text(results: dict) -> str:
    """"the losses 43%, the network's disagreement 18%, confident learning's count 10%": the readings
    the interval of ``results`` (results.json) spans, named as the summary names them (the probe's
    where the pretrained features' probe read them); "" where the run recorded none, or they are
    damaged."""
    readings, by = results.get("noise_rate_readings"), results.get("noise_rate_estimated_by", MIXTURE)
    if not isinstance(readings, dict):
        return ""
    names = {"rate": {PROBE: "the probe's count", WITHOUT_SPLIT: "the count without a split"}.get(by, "the losses"),
             "disagreement": "the probe's disagreement" if by == PROBE else "the network's disagreement",
             "confident_joint": "confident learning's count"}
    return ", ".join(f"{names[k]} {readings[k]:.0%}" for k in names if isinstance(readings.get(k), (int, float)))


def unsure_text(results: dict, run_dir: str = "RUN_DIR", with_readings: bool = True) -> str:
    """Where the interval of ``results`` (results.json of the run in ``run_dir``) is too wide to act
    on (``is_wide``), what the summary and the review page say about it, with what to do (and,
    ``with_readings``, the readings it spans); "" otherwise."""
    interval = results.get("estimated_noise_rate_interval")
    if not is_wide(interval):
        return ""
    readings = readings_text(results) if with_readings else ""
    return (f"the estimate is unsure: its interval, {interval[0]:.0%} to {interval[1]:.0%}, spans more than "
            f"{noise_rate.WIDE_INTERVAL * 100:.0f} points" + (f" (its readings: {readings})" if readings else "")
            + ". If you know about how many labels are wrong (for example from 50 training images drawn at "
            "random and checked by eye: each wrong one is 2 %), pass --forget-rate RATE to train again, or set "
            f"that share of this run's samples aside now: comining export {shlex.quote(str(run_dir))} --share RATE "
            "--out labels.csv (from Python: comining.find_label_issues(run, share=RATE))")


def is_wide(interval) -> bool:
    """Whether an interval [low, high] is too wide to act on (``noise_rate.WIDE_INTERVAL``); False
    for a missing or damaged one."""
    return is_interval(interval) and interval[1] - interval[0] > noise_rate.WIDE_INTERVAL


def is_interval(interval) -> bool:
    """Whether ``interval`` (from results.json, so possibly absent or damaged) is [low, high]."""
    return isinstance(interval, list) and len(interval) == 2 and all(isinstance(v, (int, float)) for v in interval)
