"""Peer-learning: exchange small-loss picks where the networks agree, learn from all disagreements.

Where both predict the same class, the label is either clearly right or clearly wrong, and the
small-loss exchange sorts them; where they disagree, the sample is informative and both train on it.
"""

from comining.methods import TwoNetworks, masked_mean, pick_smallest, register


@register("peerlearning")
class PeerLearning(TwoNetworks):
    title, paper_column = "Peer-learning", 5

    def loss(self, views, labels, index, epoch, rate):
        z1, z2, ce1, ce2 = self.forward_ce(views[0], labels)
        agree = z1.argmax(1) == z2.argmax(1)
        picked1 = pick_smallest(ce1, rate, among=agree)  # handed to network 2
        picked2 = pick_smallest(ce2, rate, among=agree)  # handed to network 1
        train1, train2 = picked2 | ~agree, picked1 | ~agree
        loss1, loss2 = masked_mean(ce1, train1), masked_mean(ce2, train2)
        self.record(index, train1 | train2, ce1)
        return loss1 + loss2, {"ce1": loss1, "ce2": loss2, "agree": agree.float().mean()}
