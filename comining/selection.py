"""The selection log: what the method's training steps decided for each sample.

A *selection* is one step's decision about a sample (clean, relabelled or discarded); the log keeps
the last one and a running record of selection scores. The *verdict*, decided once training is
done, lives in ``comining.verdicts``.
"""

from __future__ import annotations

import torch

from comining import distributed

# A step's selection of a sample; `unseen` until some step has seen it.
SELECTIONS = ("clean", "relabelled", "discarded", "unseen")
CLEAN, RELABELLED, DISCARDED, UNSEEN = range(4)


class SelectionLog:
    """What the method decided for every training sample, kept from the last step that saw it.
    Lives on the training device and is written with index tensors, so recording a step's decisions
    never synchronises."""

    def __init__(self, num_samples: int, device):
        self.status = torch.full((num_samples,), UNSEEN, dtype=torch.int8, device=device)  # codes into SELECTIONS
        self.pseudo = torch.full((num_samples,), -1, dtype=torch.long, device=device)  # relabelled ones' label
        self.score = torch.full((num_samples,), float("nan"), device=device)  # lower = more trusted
        self.epoch_seen = torch.zeros(num_samples, dtype=torch.bool, device=device)  # for the per-epoch metrics
        # The running record for the final verdict: the mean over epochs of each sample's score's quantile
        # among the epoch's scores (0 = most trusted, 1 = least), a scale-free summary of the whole training
        # history (losses shrink as training goes on, ranks do not).
        self.rank_mean = torch.zeros(num_samples, device=device)
        self.epochs_ranked = torch.zeros(num_samples, device=device)

    def record(self, index: torch.Tensor, status: torch.Tensor | int, score: torch.Tensor | None = None,
               pseudo: torch.Tensor | None = None) -> None:
        self.status[index] = torch.as_tensor(status, dtype=torch.int8, device=index.device)
        if score is not None:
            self.score[index] = score.detach().float()
        self.pseudo[index] = -1 if pseudo is None else pseudo
        self.epoch_seen[index] = True

    def new_epoch(self) -> None:
        self.epoch_seen.zero_()

    def end_epoch(self) -> None:
        """Fold this epoch's scores, as quantiles among the samples seen, into the running record.
        One argsort on the device per epoch; samples not seen (or without a finite score) keep their
        record unchanged."""
        scored = self.epoch_seen & torch.isfinite(self.score)
        order = self.score.masked_fill(~scored, float("inf")).argsort()
        rank = torch.empty_like(self.score)
        rank[order] = torch.arange(len(order), device=rank.device, dtype=rank.dtype)
        quantile = rank / (scored.sum() - 1).clamp(min=1)
        count = self.epochs_ranked + scored.float()
        self.rank_mean = torch.where(scored, self.rank_mean + (quantile - self.rank_mean) / count.clamp(min=1),
                                     self.rank_mean)
        self.epochs_ranked = count

    def merge_ranks(self) -> None:
        """Under DDP each rank saw its own share of the epoch: give every rank all of the decisions."""
        if not distributed.active():
            return
        seen = self.epoch_seen
        packed = torch.stack([seen.float(), torch.where(seen, self.status.float(), 0.0),
                              torch.where(seen, self.score, 0.0), torch.where(seen, self.pseudo.float(), 0.0)])
        distributed.reduce(packed)  # shares are disjoint, so each sum is its owner's value
        owned = packed[0] > 0
        self.status = torch.where(owned, packed[1].to(torch.int8), self.status)
        self.score = torch.where(owned, packed[2], self.score)
        self.pseudo = torch.where(owned, packed[3].round().long(), self.pseudo)
        self.epoch_seen = owned

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("status", "pseudo", "score", "epoch_seen", "rank_mean", "epochs_ranked")}

    def load_state_dict(self, state: dict) -> None:
        """Load a state; a checkpoint from before the running records leaves them empty (no history).
        ``average`` (the per-sample score average of the removed --score-ema) is not read back."""
        for key, value in state.items():
            if key != "average":
                getattr(self, key).copy_(value)


# The shares ``selection_metrics`` reports, each None where its denominator is empty.
SELECTION_METRICS = ("label_precision", "label_recall", "relabel_acc", "open_discarded")


def selection_metrics(selections: SelectionLog, noisy: torch.Tensor, true: torch.Tensor, num_closed: int) -> dict:
    """Quality of this epoch's decisions, computable because synthetic noise keeps the true labels.
    label_precision: share of the clean set whose given label is right; label_recall: share of the
    right labels that made the clean set; relabel_acc: share of relabelled samples given their true
    class; open_discarded: share of open-set samples discarded. Counts only samples seen this epoch."""
    seen = selections.epoch_seen
    right = (noisy == true) & (true < num_closed) & seen
    clean = (selections.status == CLEAN) & seen
    relabelled = (selections.status == RELABELLED) & seen
    discarded = (selections.status == DISCARDED) & seen
    is_open = (true >= num_closed) & seen
    counts = torch.stack([
        clean.sum(), (clean & right).sum(), right.sum(), relabelled.sum(),
        (relabelled & (selections.pseudo == true)).sum(), discarded.sum(), is_open.sum(), (is_open & discarded).sum(),
    ]).tolist()  # one synchronisation per epoch
    n_clean, n_clean_right, n_right, n_relab, n_relab_right, n_disc, n_open, n_open_disc = counts

    def ratio(a, b):
        return a / b if b else None

    shares = (ratio(n_clean_right, n_clean), ratio(n_clean_right, n_right), ratio(n_relab_right, n_relab),
              ratio(n_open_disc, n_open))
    return {**dict(zip(SELECTION_METRICS, shares)), "clean": n_clean, "relabelled": n_relab, "discarded": n_disc}
