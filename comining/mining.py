"""Co-mining's feature-space machinery: memory bank, semi-hard triplet loss, k-reciprocal relabelling.

All three work on the training device with fixed-size tensors, so a training step never waits on
the host (no ``.item()``, no boolean-mask indexing whose size depends on the data).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def full_precision(device: torch.device):
    """Similarities in float32 even inside a bfloat16 autocast region: bf16 keeps about 3 significant
    digits, coarser than the gaps between the neighbours and margins being ranked here."""
    return torch.autocast(device.type, enabled=False)


class MemoryBank:
    """FIFO ring buffer of ``size`` detached, L2-normalised features and their labels.
    ``push(feats, labels)`` overwrites the oldest slots; ``feats`` and ``labels`` return the valid
    part (all slots once the bank has filled, in slot order). The fill count is a host integer that
    only depends on how many rows were pushed, so reading the valid part never synchronises."""

    def __init__(self, size: int, dim: int, device=None):
        self.size, self.dim = int(size), int(dim)
        self.buffer = torch.zeros(self.size, self.dim, device=device)
        self.label_buffer = torch.zeros(self.size, dtype=torch.long, device=device)
        self.ptr = 0
        self.count = 0

    @torch.no_grad()
    def push(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        n = feats.shape[0]
        if n == 0:
            return
        if n > self.size:  # only the newest `size` rows would survive anyway
            feats, labels, n = feats[-self.size:], labels[-self.size:], self.size
        slots = (torch.arange(n, device=self.buffer.device) + self.ptr) % self.size
        self.buffer[slots] = F.normalize(feats.detach().to(self.buffer.device, torch.float32), dim=1)
        self.label_buffer[slots] = labels.to(self.label_buffer.device, torch.long)
        self.ptr = (self.ptr + n) % self.size
        self.count = min(self.count + n, self.size)

    @property
    def feats(self) -> torch.Tensor:
        return self.buffer[: self.count]

    @property
    def labels(self) -> torch.Tensor:
        return self.label_buffer[: self.count]

    def state_dict(self) -> dict:
        return {"buffer": self.buffer, "label_buffer": self.label_buffer, "ptr": self.ptr, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.buffer.copy_(state["buffer"])
        self.label_buffer.copy_(state["label_buffer"])
        self.ptr, self.count = int(state["ptr"]), int(state["count"])  # other keys are ignored


def _ranked_mean(values: torch.Tensor, valid: torch.Tensor, lo: int, hi: int, descending: bool):
    """Per row, mean of the valid entries ranked [lo, hi) in the given order, and whether any exist.
    Invalid entries are pushed to the end of the order with ±inf, so ranks count valid entries only."""
    fill = float("-inf") if descending else float("inf")
    take = min(hi, values.shape[1])
    if take <= lo:
        zeros = values[:, 0] * 0  # zeros that stay in the graph, so .backward() always works
        return zeros, zeros.bool()
    ranked = torch.topk(values.masked_fill(~valid, fill), take, dim=1, largest=descending).values[:, lo:]
    in_range = torch.isfinite(ranked)
    count = in_range.sum(1)
    total = torch.where(in_range, ranked, torch.zeros_like(ranked)).sum(1)
    return total / count.clamp(min=1), count > 0


def semi_hard_triplet(anchors: torch.Tensor, anchor_labels: torch.Tensor, bank_feats: torch.Tensor,
                      bank_labels: torch.Tensor, margin: float, pos_range=(0, 5), neg_range=(0, 5)) -> torch.Tensor:
    """Per-anchor loss max(0, s_n - s_p + margin) against a memory bank (docs/METHOD.md, step 7).
    anchors [A×D] and bank_feats [B×D] are compared by cosine similarity. s_p is the mean similarity
    of the positives (same label) ranked ``pos_range`` counting from the least similar: hard
    positives, but not the very hardest when ``pos_range`` starts above 0. s_n is the mean of the
    negatives ranked ``neg_range`` counting from the most similar. An anchor with no positive or no
    negative in its rank range contributes 0. Returns a tensor of shape [A]; gradients flow into
    ``anchors`` only."""
    if anchors.shape[0] == 0 or bank_feats.shape[0] == 0:
        return anchors.new_zeros(anchors.shape[0]) * anchors.sum()  # keeps the graph connected
    with full_precision(anchors.device):
        sim = F.normalize(anchors.float(), dim=1) @ F.normalize(bank_feats.detach().float(), dim=1).T
    positive = anchor_labels[:, None] == bank_labels[None, :]
    s_p, has_p = _ranked_mean(sim, positive, *pos_range, descending=False)
    s_n, has_n = _ranked_mean(sim, ~positive, *neg_range, descending=True)
    loss = F.relu(s_n - s_p + margin)
    return torch.where(has_p & has_n, loss, torch.zeros_like(loss))


@torch.no_grad()
def reciprocal_relabel(queries: torch.Tensor, bank_feats: torch.Tensor, bank_labels: torch.Tensor,
                       k: int, sigma: float, num_classes: int):
    """Soft labels for queries from their k-reciprocal neighbours in a memory bank (§2 step 8).

    A bank entry g among the k nearest of query q is reciprocal when q is also among the k nearest
    of g, searched over all queries plus the bank; this filters neighbours that are close to q only
    because q sits in a crowded region (typical of out-of-distribution samples). The soft label is
    the mean one-hot of the reciprocal neighbours' labels (all k neighbours if none is reciprocal).

    Returns (soft_labels [Q×C], is_in_distribution [Q] bool: max entry >= sigma,
    pseudo_labels [Q] long: argmax). With an empty bank every query is uniform and not in-distribution.
    The largest matrix built is (Q·k) × (Q + B), or about DISTANCE_BLOCK elements where that is larger."""
    q_count, b_count = queries.shape[0], bank_feats.shape[0]
    device = queries.device
    if b_count == 0 or q_count == 0:
        soft = torch.full((q_count, num_classes), 1.0 / num_classes, device=device)
        return soft, torch.zeros(q_count, dtype=torch.bool, device=device), torch.zeros(
            q_count, dtype=torch.long, device=device)
    q = F.normalize(queries.float(), dim=1)
    bank = F.normalize(bank_feats.float(), dim=1)
    k_bank = min(k, b_count)
    with full_precision(device):
        # Squared distances between unit vectors are 2 - 2·cos, so ranking by cosine is ranking by distance.
        neighbours = torch.topk(q @ bank.T, k_bank, dim=1).indices  # [Q, k]
        pool = torch.cat([q, bank])  # queries first: the pool index of query i is i
    per_piece = max(1, DISTANCE_BLOCK // (k_bank * pool.shape[0]))
    reciprocal = torch.cat([is_reciprocal(bank, pool, neighbours[first:first + per_piece], first, k)
                            for first in range(0, q_count, per_piece)])
    weights = torch.where(reciprocal.any(1, keepdim=True), reciprocal.float(), torch.ones_like(reciprocal.float()))
    # Votes per class by scatter-add (F.one_hot would read the labels' range back to the host).
    votes = torch.zeros(q_count, num_classes, device=device).scatter_add_(1, bank_labels[neighbours], weights)
    soft = votes / weights.sum(1, keepdim=True)
    top, pseudo = soft.max(1)
    return soft, top >= sigma, pseudo


# Elements of the distance matrix reciprocal_relabel builds at once (4 MiB of float32, so a piece stays
# in the CPU's cache between the product and the comparisons). Each row is compared only with itself,
# so pieces decide exactly what one block would; the final verdicts' search over 512 queries then needs
# a fraction of the memory.
DISTANCE_BLOCK = 1 << 20


def is_reciprocal(bank: torch.Tensor, pool: torch.Tensor, neighbours: torch.Tensor, first: int, k: int):
    """[q×k] bool: whether each bank entry in ``neighbours`` [q×k] (of the queries ``first`` to
    ``first + q``, pool rows of the same index) has its query among its own k nearest in ``pool``."""
    q_count, k_bank = neighbours.shape
    with full_precision(pool.device):
        g = bank[neighbours.reshape(-1)]  # [q·k, D]
        dist = (g @ pool.T).mul_(-2).add_(2).clamp_(min=0)  # [q·k, Q+B]: 2 - 2·cos, in place
    owner = torch.arange(first, first + q_count, device=pool.device).repeat_interleave(k_bank)
    to_owner = dist.gather(1, owner[:, None])
    return (torch.lt(dist, to_owner).sum(1, dtype=torch.int32) < k).view(q_count, k_bank)


QUERY_CHUNK = 512  # queries per k-reciprocal search (whose distances are made in pieces: DISTANCE_BLOCK)


def neighbour_votes(feats: torch.Tensor, banks, k: int, sigma: float, num_classes: int) -> torch.Tensor:
    """[N×C]: the mean over the memory ``banks`` of the k-reciprocal neighbours' soft labels of each
    row of ``feats`` [N×D] (``reciprocal_relabel`` with ``k`` and ``sigma``), in chunks of queries."""
    total = torch.zeros(feats.shape[0], num_classes, device=feats.device)
    for start in range(0, feats.shape[0], QUERY_CHUNK):
        chunk = feats[start:start + QUERY_CHUNK]
        for bank in banks:
            soft, _, _ = reciprocal_relabel(chunk, bank.feats, bank.labels, k, sigma, num_classes)
            total[start:start + QUERY_CHUNK] += soft / len(banks)
    return total
