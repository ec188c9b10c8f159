"""The forget rate: the share of each batch that a method sets aside as suspect, over a whole run.

One object per run (``ForgetRate``) owns everything about it: the target (``--forget-rate``, or
the rate the synthetic noise implies, or an estimate where it is unknown: from the networks during
training, or on pretrained features from a linear probe before it), the ramp that brings it
in, when the noise rate is estimated (``--forget-rate auto``) and what survives a second estimate,
its recovery on ``--resume``, and the prior share of wrong labels that the final verdicts use.
The engine asks it for the epoch's rate once per epoch; the estimators are in ``noise_rate``, and
how a finished run's summary words the estimate in ``summary``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from comining import config, noise_rate
from comining.methods import AFTER_WARMUP, FROM_START, UNUSED
from comining.noise import forget_rate, rate_is_unknown


def target_rate(cfg) -> float | None:
    """--forget-rate if given; else the share of wrong labels the noise protocol implies. None where
    the rate is to be estimated (``auto``, the default where no protocol fixes it)."""
    if cfg.forget_rate == "auto" or (cfg.forget_rate is None and rate_is_unknown(cfg)):
        return None
    if cfg.forget_rate is not None:
        return cfg.forget_rate
    return forget_rate(cfg.closed_rate, cfg.open_ratio)


def probe_source(cfg) -> str:
    """What the probe of a run read its features from, as the summary names it."""
    return "frozen features" if cfg.backbone == "frozen" else "features of the pretrained network before fine-tuning"


def ramped(target: float, epoch: int, ramp: str, num_gradual: int, warmup_epochs: int) -> float:
    """The rate of ``epoch`` (0-based) on the way to ``target``."""
    if ramp == UNUSED:
        return 0.0
    if ramp == FROM_START and num_gradual:
        return target * min(epoch / max(num_gradual - 1, 1), 1.0)  # = linspace(0, r, num_gradual)[epoch]
    if ramp == AFTER_WARMUP and num_gradual:
        return target * min(max(epoch - warmup_epochs + 1, 0) / num_gradual, 1.0)
    return target


class ForgetRate:
    """The forget rate of one run of ``method`` (its ``ramp``, ``first_estimate_after``,
    ``second_estimate_after`` and ``counts_without_split`` say how it uses the rate)."""

    def __init__(self, cfg, method):
        self.cfg, self.method = cfg, method
        self.estimated = target_rate(cfg) is None  # --forget-rate auto
        self.target: float | None = target_rate(cfg)  # None until an auto rate has been estimated
        # Pretrained features never saw the labels: a probe cross-fitted on them counts the wrong
        # labels once, before training, in place of the networks' readings (comining/probe.py). That
        # holds for the frozen mode and for the network that fine-tuning starts from; from random
        # weights the features carry nothing to count with.
        self.by_probe = self.estimated and (cfg.backbone == "frozen" or config.pretrained(cfg))

    def shortfall(self, epochs: int) -> str | None:
        """What a run of ``epochs`` is too short to do with its forget rate, as a sentence; None where
        it does all of it, or its method sets nothing aside by a rate: set samples aside at all (an auto
        rate is first estimated after the method's first estimate epoch) and, by its last epoch, at the
        full rate (the ramp brings it in over --num-gradual epochs)."""
        cfg, method = self.cfg, self.method
        if method.ramp == UNUSED or self.target == 0:
            return None
        first = method.first_estimate_after
        if self.estimated and not self.by_probe and epochs <= first:
            warmup = first == cfg.warmup_epochs > 1  # Co-mining estimates after its warm-up
            return (f"no sample is set aside during training: the noise rate is first estimated after epoch "
                    f"{first}{' (the warm-up)' if warmup else ''} and the run has {epochs}; pass --epochs above "
                    f"{first}{', a shorter --warmup-epochs' if warmup else ''}, or --forget-rate RATE")
        reached = ramped(1.0, epochs - 1, method.ramp, cfg.num_gradual, cfg.warmup_epochs)
        if reached < 1:
            return (f"the run ends before the forget rate has ramped in: its last epoch sets aside {reached:.0%} "
                    f"of the rate (it ramps in over --num-gradual {cfg.num_gradual} epochs"
                    + (f" after a warm-up of {cfg.warmup_epochs}" if method.ramp == AFTER_WARMUP else "")
                    + "); pass a smaller --num-gradual, or more --epochs")
        return None

    def at(self, epoch: int) -> float:
        """The rate the method uses in ``epoch``; 0 while an auto rate has not been estimated yet."""
        if self.target is None:
            return 0.0
        return ramped(self.target, epoch, self.method.ramp, self.cfg.num_gradual, self.cfg.warmup_epochs)

    def estimate_due(self, epochs_done: int) -> bool:
        """Whether the noise rate is estimated after this many epochs: at the method's first estimate
        (or the first epoch after it, on a resumed run), and at its second where it has one."""
        if not self.estimated or self.by_probe:
            return False
        if self.target is None:
            return epochs_done >= self.method.first_estimate_after
        return epochs_done == self.method.second_estimate_after

    def read(self, losses: np.ndarray, probs: np.ndarray, labels: np.ndarray) -> noise_rate.NoiseEstimate:
        """The noise rate as the networks see it now, from ``losses`` [N], each training sample's
        cross-entropy of its given label (``evidence.given_label_losses``), ``probs`` [N×C], the
        un-augmented class probabilities they came from (NaN rows: unreadable images), and the given
        ``labels``. Where the method's network has fitted the labels (``counts_without_split``), the
        confident joint is read too, for the interval, and an estimate, first or second, whose losses
        do not separate counts the wrong labels without a split; a second one also measures how
        concentrated the disagreements are."""
        estimate = replace(noise_rate.estimate_noise_rate(losses, seed=self.cfg.seed),
                           disagreement=noise_rate.disagreement_share(probs, labels))
        if self.method.counts_without_split:
            estimate = replace(estimate, confident_joint_rate=noise_rate.confident_joint_noise_rate(probs, labels))
            if not estimate.separated:
                estimate = noise_rate.without_split(estimate, probs, labels, self.method.epsilon)
        if self.target is None:
            return estimate
        return replace(estimate, concentration=noise_rate.disagreement_concentration(probs, labels))

    def adopt(self, estimate: noise_rate.NoiseEstimate, history: list[dict], record: dict) -> str:
        """Make ``estimate`` (from ``read``; under DDP rank 0's, so all ranks agree) the target from the
        next epoch on; a second estimate as ``adopt_second`` says. Adds the readings, and the interval
        around the rate in use, to ``record`` (the epoch's metrics); returns the line to print."""
        record.update(noise_separation=estimate.separation, disagreement_share=estimate.disagreement)
        if estimate.confident_joint_rate is not None:
            record.update(confident_joint_noise_rate=estimate.confident_joint_rate)
        if estimate.concentration is not None:
            record.update(disagreement_concentration=estimate.concentration)
        if estimate.mixture_rate is not None:  # the count without a split replaced the mixture's
            record.update(mixture_noise_rate=estimate.mixture_rate, anchor_noise_rate=estimate.anchor_rate)
        if self.target is not None:
            return self.adopt_second(estimate, history, record)
        self.target = estimate.rate
        record.update(estimated_noise_rate=estimate.rate,
                      **interval_record(estimate.rate, estimate.disagreement, estimate.confident_joint_rate,
                                        counted_by(estimate)))
        return (f"{estimate.describe()}; interval {interval_text(record['noise_rate_interval'])}; "
                f"forget rate {estimate.rate:.3f}")

    def adopt_second(self, estimate: noise_rate.NoiseEstimate, history: list[dict], record: dict) -> str:
        """A second estimate: the first stands where ``noise_rate.why_first_holds`` finds a reason, else
        this one's rate replaces it; either is then capped at the disagreement read in the same pass
        (``noise_rate.capped_by_disagreement``). The interval spans the uncapped rate, the
        disagreement and the confident joint."""
        first_record = next(r for r in history if "estimated_noise_rate" in r)
        held_by = noise_rate.why_first_holds(estimate, self.target, first_record.get("noise_separation", 0.0))
        rate = self.target if held_by is not None else estimate.rate
        by = counted_by_record(first_record) if held_by is not None else counted_by(estimate)
        capped = noise_rate.capped_by_disagreement(rate, estimate.disagreement)
        spans = interval_record(rate, estimate.disagreement, estimate.confident_joint_rate, by)
        record.update(**spans)
        if held_by is not None:
            record.update(unused_noise_rate=estimate.rate)
        line = f"second estimate {estimate.rate:.3f} ({estimate.how_counted()})"
        if held_by is not None and not (capped < rate and estimate.rate >= capped):  # else the cap decides alone
            line += f" not used, as {held_by}"
        elif held_by is None:
            line += f" replaces {self.target:.3f}"
        if capped < rate:
            record.update(estimated_noise_rate=capped, uncapped_noise_rate=rate)
            above = ("it lies" if held_by is None else f"both it and the rate in use, {rate:.3f}, lie"
                     if estimate.rate >= capped else f"the rate in use, {rate:.3f}, lies")
            line += f"; {above} above the share of labels the network puts outside their class, {capped:.3f}, which caps it"
        elif held_by is None:
            record.update(estimated_noise_rate=rate)
        self.target = capped
        return f"{line}: forget rate {capped:.3f} (interval {interval_text(spans['noise_rate_interval'])})"

    @staticmethod
    def read_probe(probs: np.ndarray, labels: np.ndarray) -> dict | None:
        """The noise rate as the pretrained features' probe sees it: the confident joint's count on its
        out-of-fold ``probs`` [N×C] (NaN rows: samples without features) of the given ``labels``,
        the probe's disagreement, and the interval between them, as the run records them; None
        where the probe has no readable row (too few samples to cross-fit)."""
        if not noise_rate.readable(probs).any():
            return None
        rate = noise_rate.confident_joint_noise_rate(probs, labels)
        disagreement = noise_rate.disagreement_share(probs, labels)
        return {"estimated_noise_rate": rate, "probe_noise_rate": rate, "disagreement_share": disagreement,
                **interval_record(rate, disagreement, by=PROBE)}

    def adopt_probe(self, reading: dict | None, record: dict) -> str:
        """Make the probe's count (``read_probe``; under DDP rank 0's) the target from the next epoch
        on, for the rest of the run; adds the reading to ``record``; returns the line to print.
        Without a reading the networks' own readings estimate the rate, as when fine-tuning."""
        if reading is None:
            self.by_probe = False
            return ("too few readable samples to cross-fit a linear probe on the pretrained features: the noise "
                    "rate is estimated from the networks' losses instead")
        self.target = reading["estimated_noise_rate"]
        record.update(reading)
        return (f"estimated noise rate {self.target:.3f} (confident joint on a linear probe cross-fitted on the "
                f"{probe_source(self.cfg)}); interval {interval_text(reading['noise_rate_interval'])}; "
                f"forget rate {self.target:.3f}")

    def restore(self, history: list[dict]) -> None:
        """On --resume: an estimated rate holds for the rest of the run. A run that has trained
        without a probe reading (made before the probe, or whose probe had nothing to read) goes on
        with the networks' readings, as it began."""
        rate = estimated_noise_rate(history)
        if rate is not None:
            self.target = rate
        if history and not any("probe_noise_rate" in record for record in history):
            self.by_probe = False

    def prior(self, probs: np.ndarray, labels: np.ndarray) -> float:
        """The share of wrong labels the final verdicts expect: the target, or (an auto run too short
        to have estimated it) the mixture's estimate from the final network's ``probs`` [N×C]."""
        if self.target is not None:
            return float(self.target)
        given = probs[np.arange(len(labels)), labels]
        return float(noise_rate.estimate_noise_rate(-np.log(np.clip(given, 1e-12, 1)), seed=self.cfg.seed).rate)


def estimated_noise_rate(history: list[dict]) -> float | None:
    """The noise rate that --forget-rate auto estimated during the run (None if it made none)."""
    estimates = [r["estimated_noise_rate"] for r in history if "estimated_noise_rate" in r]
    return estimates[-1] if estimates else None


# What counted the rate an estimate reads (``noise_rate_estimated_by`` in its record and in results.json):
# the losses' two populations, a count that needs no split (where they did not separate), or a linear
# probe of pretrained features. Runs made before it was recorded counted with the losses or the probe.
MIXTURE, WITHOUT_SPLIT, PROBE = "mixture", "without_split", "probe"


def counted_by(estimate: noise_rate.NoiseEstimate) -> str:
    """MIXTURE, or WITHOUT_SPLIT where the confident joint and anchor points replaced the mixture's rate."""
    return WITHOUT_SPLIT if estimate.mixture_rate is not None else MIXTURE


def counted_by_record(record: dict) -> str:
    """What counted the rate of an estimate's ``record`` (metrics.jsonl), in runs made before it was
    recorded too: there a count without a split left the mixture's rate beside it."""
    return record.get("noise_rate_estimated_by",
                      WITHOUT_SPLIT if "mixture_noise_rate" in record else PROBE if "probe_noise_rate" in record
                      else MIXTURE)


def interval_record(rate: float, disagreement: float | None, joint: float | None = None, by: str = MIXTURE) -> dict:
    """What an estimate's record holds about how sure it is: ``noise_rate_interval``, [low, high]
    around ``rate`` (``noise_rate.rate_interval``); ``noise_rate_readings``, the readings it spans
    (``rate``, ``disagreement``, ``confident_joint``; those that are None left out); and
    ``noise_rate_estimated_by``, what counted ``rate`` (MIXTURE, WITHOUT_SPLIT or PROBE)."""
    readings = {"rate": rate, "disagreement": disagreement, "confident_joint": joint}
    return {"noise_rate_interval": list(noise_rate.rate_interval(rate, disagreement, joint)),
            "noise_rate_readings": {name: value for name, value in readings.items() if value is not None},
            "noise_rate_estimated_by": by}


def estimated_by(history: list[dict]) -> str | None:
    """What counted the rate the run's last interval spans (MIXTURE, WITHOUT_SPLIT or PROBE), in runs
    made before it was recorded too: where a second estimate left the first standing, the first's
    count; None where the run made no estimate."""
    last = last_interval_record(history)
    first = next((r for r in history if "estimated_noise_rate" in r), None)
    if first is None:
        return None
    return last.get("noise_rate_estimated_by", counted_by_record(first if "unused_noise_rate" in last else last))


def last_interval_record(history: list[dict]) -> dict:
    """The record of the run's last estimate (``interval_record``'s keys: ``noise_rate_interval``, and
    ``noise_rate_readings`` in runs made since they are recorded); {} if it made none."""
    return next((r for r in reversed(history) if "noise_rate_interval" in r), {})


def interval_text(interval) -> str:
    """"0.27–0.35" for an interval [low, high]."""
    return f"{interval[0]:.2f}–{interval[1]:.2f}"
