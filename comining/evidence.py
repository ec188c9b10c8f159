"""What a finished run knows about each training sample, gathered once at the end of training by one
pass over the training set in order with the final network(s), for ``comining.verdicts``; and the
un-augmented class probabilities that ``--forget-rate auto`` estimates the noise rate from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from comining import hardware


@dataclass
class Evidence:
    """Per-sample evidence for the final verdicts (N training samples, C known classes).
    probs: [V×N×C] class probabilities under each view (averaged over the method's networks);
    labels: [N] given labels (>= 0); history: [N] mean over epochs of the selection score's quantile
    (0 = most trusted, 1 = least; NaN where no epoch ranked the sample); votes: [N×C] soft labels
    from k-reciprocal bank neighbours, or None without banks; prior_rate: the share of wrong labels
    expected before looking (the run's forget-rate target), which sets how many are flagged;
    history_weight: the history's share of the label quality (the method's ``history_weight``);
    probe: [N×C] out-of-fold probabilities of a linear probe on frozen features (``comining.probe``;
    NaN rows for samples without features) where the run estimated its noise rate with it, else None. Samples the final pass could not read (image
    files broken since training) keep uniform probabilities."""

    probs: np.ndarray
    labels: np.ndarray
    history: np.ndarray
    votes: np.ndarray | None
    prior_rate: float
    history_weight: float
    probe: np.ndarray | None = None


def final_view_kinds(method) -> tuple[str, ...]:
    """The views the final pass uses: the method's training views, once each, and un-augmented.
    Not the strong (AutoAugment) view: it distorts images on purpose, and on digits its predictions
    alone found the wrong labels with F1 0.83 against 0.99 for the weak view (docs/METHOD.md)."""
    kinds = tuple(k for k in dict.fromkeys(method.view_kinds) if k != "strong")
    return kinds if kinds == ("plain",) else tuple(dict.fromkeys((*kinds, "test")))


@torch.no_grad()
def gather(method, data, views, selections, precision: str, batch_size: int, seed: int, prior,
           probe: np.ndarray | None = None) -> Evidence:
    """Evidence from the trained ``method`` on every training sample of ``data``. The weak view's random
    crops are drawn after seeding torch with ``seed`` inside ``fork_rng``, so the evidence repeats for a
    given run and the run's own random state is left as it was. ``prior(probs, labels)`` gives the
    expected share of wrong labels (``ForgetRate.prior``) from the un-augmented probabilities;
    ``probe``, the frozen features' out-of-fold probabilities, is passed through."""
    device = selections.status.device
    n, num_classes = len(data), method.num_classes
    kinds = final_view_kinds(method)
    probs = torch.full((len(kinds), n, num_classes), 1.0 / num_classes, device=device)
    votes = None  # the neighbours' votes, for a method that keeps features (``Method.neighbour_votes``)
    nets = evaluation_nets(method)
    was_training = method.training
    method.eval()
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        for index, images in data.ordered_batches(batch_size):
            for v, kind in enumerate(kinds):
                x = views(images, kind)
                with hardware.autocast(device, precision):
                    outputs = [net(x) for net in nets]
                probs[v, index] = torch.stack([logits.float().softmax(1) for logits, _ in outputs]).mean(0)
                batch_votes = method.neighbour_votes(outputs[0][1].float()) if kind in ("test", "plain") else None
                if batch_votes is not None:
                    if votes is None:
                        votes = torch.zeros(n, num_classes, device=device)
                    votes[index] = batch_votes
    method.train(was_training)
    history = torch.where(selections.epochs_ranked > 0, selections.rank_mean, float("nan"))
    probs, labels = probs.cpu().numpy(), data.labels.cpu().numpy()
    return Evidence(probs=probs, labels=labels, history=history.cpu().numpy(),
                    votes=None if votes is None else votes.cpu().numpy(), prior_rate=prior(probs[-1], labels),
                    history_weight=method.history_weight, probe=probe)


def evaluation_nets(method) -> list:
    """The method's networks without their DDP wrappers: a pass over the data that each rank makes on
    its own (the training set's evidence, the test accuracy) must not enter DDP's collectives."""
    return [getattr(net, "module", net) for net in method.nets]


def plain_probabilities(method, data, views, precision: str, batch_size: int) -> torch.Tensor:
    """``network_probabilities`` averaged over the networks: [N×C]."""
    return network_probabilities(method, data, views, precision, batch_size).mean(0)


@torch.no_grad()
def network_probabilities(method, data, views, precision: str, batch_size: int) -> torch.Tensor:
    """[K×N×C] class probabilities of every training sample under the un-augmented view, one slice
    per network of the method (K of them), in evaluation mode; NaN rows for images that could not be read."""
    device = next(method.parameters()).device
    kind = plain_view_kind(method)
    nets, was_training = evaluation_nets(method), method.training
    method.eval()
    probs = torch.full((len(nets), len(data), method.num_classes), float("nan"), device=device)
    for index, images in data.ordered_batches(batch_size):
        x = views(images, kind)
        with hardware.autocast(device, precision):
            probs[:, index] = torch.stack([net(x)[0].float().softmax(1) for net in nets])
    method.train(was_training)
    return probs


def plain_view_kind(method) -> str:
    """The un-augmented view of ``method``'s images: tensor conversion only for the authors' baselines,
    else normalised and centred."""
    return "plain" if method.view_kinds == ("plain",) else "test"


@torch.no_grad()
def features(net, data, views, kind: str, precision: str, batch_size: int) -> torch.Tensor:
    """[N×D] float32 features on the host (the second output of ``net``, which is put in evaluation
    mode) of every training sample under the view ``kind``; NaN rows for images that could not be
    read (every row, one column wide, where none could)."""
    device = next(net.parameters()).device
    net.eval()
    out = None
    for index, images in data.ordered_batches(batch_size):
        with hardware.autocast(device, precision):
            feats = net(views(images, kind))[1].float().cpu()  # N×D on the host, not beside the training
        if out is None:
            out = torch.full((len(data), feats.shape[1]), float("nan"))
        out[index.cpu()] = feats
    return out if out is not None else torch.full((len(data), 1), float("nan"))


def given_label_losses(probs: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """[N] cross-entropy of each given label under ``plain_probabilities``' [N×C] ``probs`` (NaN for
    images that could not be read). An un-augmented pass in evaluation mode, because the training steps'
    own scores mix random views and a network that changed during the epoch: on Fashion-MNIST at 50 %
    symmetric noise they put the rate at 0.77 where this pass gives 0.50 (realised 0.49; docs/METHOD.md)."""
    given = probs.gather(1, labels[:, None]).squeeze(1)
    return (-given.clamp(min=1e-12).log()).cpu().numpy()
