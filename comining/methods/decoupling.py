"""Decoupling ("when to update" vs "how to update"): update only where the two networks disagree.

Samples both networks already classify alike carry little new information and, under noise, are
often the ones whose wrong label both have memorised; so each network trains on the disagreements.
"""

from comining.methods import UNUSED, TwoNetworks, masked_mean, register


@register("decoupling")
class Decoupling(TwoNetworks):
    title, paper_column = "Decoupling", 1
    ramp = UNUSED  # selects by disagreement, not by loss

    def loss(self, views, labels, index, epoch, rate):
        z1, z2, ce1, ce2 = self.forward_ce(views[0], labels)
        disagree = z1.argmax(1) != z2.argmax(1)
        loss1, loss2 = masked_mean(ce1, disagree), masked_mean(ce2, disagree)
        self.record(index, disagree, ce1)
        return loss1 + loss2, {"ce1": loss1, "ce2": loss2, "disagree": disagree.float().mean()}
