"""Slow, loop-based float64 reference for the two mining functions.

Written independently of ``comining.mining`` from the method's description (docs/METHOD.md, steps 7-8) so that the
vectorised implementation can be checked against something obviously correct. numpy in, numpy out.
"""
import numpy as np


def _normalise(x):
    x = np.asarray(x, dtype=np.float64)
    # Same floor as torch.nn.functional.normalize, so zero rows stay zero on both sides.
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def semi_hard_triplet(anchors, anchor_labels, bank_feats, bank_labels, margin,
                      pos_range=(0, 5), neg_range=(0, 5)):
    a, b = _normalise(anchors), _normalise(bank_feats)
    losses = np.zeros(len(a))
    for i in range(len(a)):
        sims = [float(np.dot(a[i], b[j])) for j in range(len(b))]
        pos = sorted(s for s, l in zip(sims, bank_labels) if l == anchor_labels[i])
        neg = sorted((s for s, l in zip(sims, bank_labels) if l != anchor_labels[i]), reverse=True)
        pos = pos[pos_range[0]:min(pos_range[1], len(pos))]
        neg = neg[neg_range[0]:min(neg_range[1], len(neg))]
        if pos and neg:
            losses[i] = max(0.0, np.mean(neg) - np.mean(pos) + margin)
    return losses


def _dist(x, y):
    return float(np.sqrt(np.sum((x - y) ** 2)))


def _neighbours(q, bank, k):
    """Indices of the min(k, B) bank rows nearest to q (stable order on ties)."""
    d = [_dist(q, g) for g in bank]
    return sorted(range(len(bank)), key=lambda j: d[j])[:min(k, len(bank))]


def reciprocal_relabel(queries, bank_feats, bank_labels, k, sigma, num_classes):
    q, b = _normalise(queries), _normalise(bank_feats)
    n_q = len(q)
    if len(b) == 0:
        return (np.full((n_q, num_classes), 1.0 / num_classes), np.zeros(n_q, dtype=bool),
                np.zeros(n_q, dtype=np.int64))
    pool = np.concatenate([q, b])
    soft = np.zeros((n_q, num_classes))
    for i in range(n_q):
        nbrs = _neighbours(q[i], b, k)
        recip = []
        for j in nbrs:
            d_gq = _dist(b[j], q[i])
            closer = sum(1 for p in pool if _dist(b[j], p) < d_gq)
            if closer < k:
                recip.append(j)
        chosen = recip if recip else nbrs
        counts = np.zeros(num_classes)
        for j in chosen:
            counts[bank_labels[j]] += 1
        soft[i] = counts / len(chosen)
    is_id = soft.max(axis=1) >= sigma
    pseudo = soft.argmax(axis=1).astype(np.int64)  # numpy argmax takes the first max
    return soft, is_id, pseudo


def reciprocal_min_gap(queries, bank_feats, k):
    """Smallest distance gap behind any discrete decision the reference makes.

    Random tests skip inputs where this is tiny: there a float32 implementation may legitimately
    pick a different neighbour set than this float64 reference.
    """
    q, b = _normalise(queries), _normalise(bank_feats)
    pool = np.concatenate([q, b])
    gap = np.inf
    for i in range(len(q)):
        d = np.sort([_dist(q[i], g) for g in b])
        if k < len(d):
            gap = min(gap, d[k] - d[k - 1])
        for j in _neighbours(q[i], b, k):
            d_gq = _dist(b[j], q[i])
            others = [abs(_dist(b[j], p) - d_gq) for t, p in enumerate(pool) if t != i]
            gap = min([gap] + others)
    return gap
