"""Co-teaching: each network picks its small-loss samples, and its peer trains on them.

Networks fit clean labels before noisy ones, so small-loss samples are likely clean; exchanging the
picks stops each network from confirming its own selection errors.
"""

from comining.methods import TwoNetworks, masked_mean, pick_smallest, register


def exchange_losses(ce1, ce2, rate, among=None):
    """Co-teaching's exchange: network 1 trains on network 2's small-loss picks and vice versa."""
    picked1, picked2 = pick_smallest(ce1, rate, among), pick_smallest(ce2, rate, among)
    return masked_mean(ce1, picked2), masked_mean(ce2, picked1), picked1, picked2


@register("coteaching")
class CoTeaching(TwoNetworks):
    title, paper_column = "Co-teaching", 2

    def loss(self, views, labels, index, epoch, rate):
        z1, z2, ce1, ce2 = self.forward_ce(views[0], labels)
        loss1, loss2, picked1, picked2 = exchange_losses(ce1, ce2, rate)
        self.record(index, picked1 | picked2, ce1)
        return loss1 + loss2, {"ce1": loss1, "ce2": loss2}
