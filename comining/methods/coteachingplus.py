"""Co-teaching+: the co-teaching exchange, restricted to the samples the two networks disagree on.

Keeping the networks diverged keeps the exchange informative; where so few disagreements remain
that not even one sample would be kept, both networks fall back to cross-entropy on the batch.
"""

import torch

from comining.methods import TwoNetworks, register
from comining.methods.coteaching import exchange_losses


@register("coteachingplus")
class CoTeachingPlus(TwoNetworks):
    title, paper_column = "Co-teaching+", 3

    def loss(self, views, labels, index, epoch, rate):
        z1, z2, ce1, ce2 = self.forward_ce(views[0], labels)
        disagree = z1.argmax(1) != z2.argmax(1)
        loss1, loss2, picked1, picked2 = exchange_losses(ce1, ce2, rate, among=disagree)
        fallback = disagree.sum() * (1.0 - rate) < 1  # not one sample would be kept
        loss1 = torch.where(fallback, ce1.mean(), loss1)
        loss2 = torch.where(fallback, ce2.mean(), loss2)
        self.record(index, (picked1 | picked2) | fallback, ce1)
        return loss1 + loss2, {"ce1": loss1, "ce2": loss2, "fallback": fallback.float()}
