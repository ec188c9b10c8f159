"""Standard: one network, cross-entropy on the given labels; every sample is trusted."""

import torch.nn.functional as F

from comining.methods import UNUSED, Method, register
from comining.selection import CLEAN


@register("standard")
class Standard(Method):
    title, paper_column = "Standard", 0
    history_weight = 1.0  # it trains on every label, so its final network agrees with all of them
    ramp = UNUSED  # it sets nothing aside

    def loss(self, views, labels, index, epoch, rate):
        logits, _ = self.nets[0](views[0])
        per_sample = F.cross_entropy(logits.float(), labels, reduction="none")
        self.selections.record(index, CLEAN, per_sample)
        ce = per_sample.mean()
        return ce, {"ce": ce}
