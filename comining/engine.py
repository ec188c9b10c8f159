"""The training engine: one epoch loop for every method and data set.

``Trainer`` builds the data, the method (its networks), the selection log, the optimiser and the views from
a Config; ``fit()`` runs the epochs, evaluates after each, and keeps the run directory current
(metrics.jsonl and checkpoint.pt every epoch; results.json, verdicts.csv and plots at the end).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from comining import distributed, evidence, hardware, noise_rate, probe, report, verdicts
from comining.config import Config, from_stored, validate
from comining.data import load_arrays
from comining.data.augment import Views
from comining.data.features import FeatureData, check_same_backbone
from comining.data.image_set import FolderData, is_folder_dataset
from comining.data.in_memory import InMemoryData
from comining.data.training_set import check_same_data
from comining.errors import UserError
from comining.forget_rate import ForgetRate, estimated_by, estimated_noise_rate, last_interval_record
from comining.guards import Interrupted, LossMonitor, stop_on_signals
from comining.methods import build_method
from comining.selection import SelectionLog, selection_metrics
from comining.models import build_model
from comining.models.weights import load_weights
from comining.rundir import (RunDir, atomic_json, atomic_torch_save, foreign_entry, holds_a_run, write_data_files,
                             write_verdicts)


def schedule(cfg: Config, epoch: int) -> tuple[float, float]:
    """(learning rate, Adam β1) of an epoch.
    linear (the paper's CIFAR plan): constant until --epoch_decay_start, then linear decay towards 0
    with β1 = 0.1. cosine (the web plan): constant for the warm-up epochs, then cosine decay to 0."""
    if cfg.schedule == "linear":
        if epoch < cfg.epoch_decay_start:
            return cfg.lr, 0.9
        return cfg.lr * (cfg.epochs - epoch) / max(cfg.epochs - cfg.epoch_decay_start, 1), 0.1
    if epoch < cfg.warmup_epochs:
        return cfg.lr, 0.9
    progress = (epoch - cfg.warmup_epochs) / max(cfg.epochs - cfg.warmup_epochs, 1)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress)), 0.9


def make_optimizer(cfg: Config, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True)


def load_training_data(cfg: Config, device, precision: str = "fp32", progress: bool = False):
    """The training set of ``cfg.dataset``: an image folder streamed from disk, or arrays in memory;
    with --backbone frozen, their features (computed in ``precision``, with a progress bar if ``progress``)."""
    if cfg.backbone == "frozen":
        return FeatureData(cfg, device, precision, progress)
    if is_folder_dataset(cfg.dataset):
        return FolderData(cfg, device)
    return InMemoryData(cfg, load_arrays(cfg.dataset, cfg.data_root), device)


def check_enough_samples(labels: torch.Tensor, rate_estimated: bool, subset: int | None = None) -> None:
    """UserError, before anything trains, where too little is left to train on (a label file that keeps
    a few samples): samples of fewer than two classes, or, where the noise rate is to be estimated,
    fewer samples than its mixture needs."""
    kept, present = int(labels.numel()), int(torch.unique(labels).numel())
    if present < 2 or (rate_estimated and kept < noise_rate.MIN_SAMPLES):
        need = f"at least {noise_rate.MIN_SAMPLES} samples of" if rate_estimated else "samples of"
        raise UserError(f"only {kept} training sample{'s' if kept != 1 else ''} of {present} class"
                        f"{'es' if present != 1 else ''} kept: a run needs {need} at least 2 classes"
                        + (" to estimate its noise rate" if rate_estimated else "")
                        + (f"; raise --train-subset {subset}, or give" if subset else "; give")
                        + " labels to more samples (label file, folders or CSV list)")


class Trainer:
    """Everything one run needs; ``fit()`` trains, ``Trainer.resume(path)`` continues a run."""

    def __init__(self, cfg: Config, out=None, resuming: bool = False):
        self.cfg = cfg
        launched = distributed.launched()
        self.device = distributed.setup(cfg.device) if launched else hardware.resolve_device(cfg.device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        # Never start over a run's state; decided by rank 0 (which writes) and shared, so all ranks stop.
        taken = out is not None and not resuming and distributed.is_main() and holds_a_run(Path(out))
        if distributed.any_rank(taken, self.device):
            raise UserError(f"{out} already holds a run: continue it with --resume {out}, or choose another --out")
        # Nor write among files it did not make: a run's files would replace the user's of the same name.
        foreign = foreign_entry(Path(out)) if out is not None and not resuming and distributed.is_main() else None
        if distributed.any_rank(foreign is not None, self.device):
            raise UserError(f"{out} holds files that are not a run's ({foreign or 'on rank 0'}): choose a new or "
                            "empty --out")
        if cfg.batch_size % self.world:
            raise UserError(f"--batch-size {cfg.batch_size} does not split evenly over {self.world} processes: "
                            f"use a multiple of {self.world}")
        self.precision, self.precision_reason = hardware.precision_choice(cfg.precision, self.device)
        self.pretrained = not resuming  # a resumed run takes its weights from the checkpoint
        hardware.seed_everything(cfg.seed + self.rank)  # DDP copies rank 0's weights; views differ per rank
        self.frozen = cfg.backbone == "frozen"  # a head on cached features (comining/data/features.py)
        self.data = load_training_data(cfg, self.device, self.precision, not cfg.quiet and distributed.is_main())
        if self.data.num_classes < 2:
            raise UserError(f"the training set has {self.data.num_classes} class: a classifier needs at least 2 "
                            "classes (class folders, or closed classes left by --open-ratio)")
        self.selections = SelectionLog(len(self.data), self.device)
        self.method = build_method(cfg, self.data.num_classes, self.make_model, self.selections)
        self.forget = ForgetRate(cfg, self.method)
        check_enough_samples(self.data.labels, self.forget.estimated, cfg.train_subset)
        self.optimizer = make_optimizer(cfg, self.method.parameters())
        if self.frozen:
            self.data.prepare(self.method.view_kinds)
            self.views = self.data.feature_views()
        else:
            plain = self.method.view_kinds == ("plain",)  # the authors' baselines: tensor conversion only
            self.views = Views(self.data.crop_size, self.data.padding, self.data.flip,
                               None if plain else self.data.normalize, channels_last=True)
        self.history: list[dict] = []
        self.start_epoch = 0
        self.run = RunDir(out) if out is not None and distributed.is_main() else None  # rank 0 writes
        self.quiet = cfg.quiet or not distributed.is_main()
        self.monitor_every = 1 if self.device.type == "cpu" else 50
        self.stop_signal: str | None = None  # set by SIGINT/SIGTERM: stop after the current step
        self.ddp_wrapped = False
        self.partial = None  # (steps done, LossMonitor) of an epoch interrupted mid-way
        self.final: verdicts.Verdicts | None = None  # the final verdicts, once training is done
        self.probe_probs: np.ndarray | None = None  # pretrained features' out-of-fold probabilities, once fitted

    def make_model(self):
        if self.frozen:  # a head on the backbone's features; --weights are the backbone's
            return build_model(self.cfg.head, self.data.feature_dim, self.data.num_classes, 1).to(self.device)
        return self.network(with_weights=self.pretrained)

    def network(self, with_weights: bool):
        """A network of ``--arch`` on the device, with ``--weights`` loaded where ``with_weights``."""
        model = build_model(self.cfg.arch, self.data.channels, self.data.num_classes, self.data.crop_size)
        if with_weights:
            load_weights(model, self.cfg.weights, self.cfg.arch, progress=not self.cfg.quiet)
        return model.to(self.device, memory_format=torch.channels_last)  # faster on GPUs and our CPUs alike

    # -- the loop -------------------------------------------------------------------------------

    def train_epoch(self, epoch: int, progress=None) -> dict:
        cfg, method, optimizer = self.cfg, self.method, self.optimizer
        lr, beta1 = schedule(cfg, epoch)
        rate = self.forget.at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
            if "betas" in group:
                group["betas"] = (beta1, group["betas"][1])
        method.train()
        start, monitor = self.partial or (0, LossMonitor(self.device, self.monitor_every))
        if self.partial is None:  # an epoch resumed mid-way has begun already: the method keeps its state
            self.selections.new_epoch()
            method.begin_epoch(epoch, rate, self.data.labels, lambda: evidence.network_probabilities(
                method, self.data, self.views, self.precision, cfg.eval_batch_size))
        self.partial = None
        batches = self.data.batches(epoch, cfg.batch_size, cfg.seed, rank=self.rank, world=self.world, start=start)
        for step, (index, images, labels) in enumerate(batches, start):
            views = [self.views(images, kind) for kind in method.view_kinds]
            with hardware.autocast(self.device, self.precision):
                loss, terms = method.loss(views, labels, index, epoch, rate)
            monitor.add({"loss": loss, **terms}, step, epoch)  # on a CPU: stops before a bad update
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if progress is not None:
                progress.update(1)
            if self.stop_requested(step):  # pre-empted: keep this step, save, and go
                monitor.check(epoch)
                self.save(epoch, step=step + 1, monitor=monitor)
                raise Interrupted(self.stop_signal or "SIGTERM", epoch, step + 1, self.run)
        monitor.check(epoch)
        self.selections.merge_ranks()
        self.selections.end_epoch()
        distributed.broadcast_buffers(self.method)
        return {"lr": lr, "forget_rate": rate, "loss": monitor.means()}

    def stop_requested(self, step: int | None = None) -> bool:
        """Whether a signal asks to stop now. Under DDP the ranks agree (one tiny all-reduce) every 10
        steps and at epoch ends, so that all of them stop at the same step."""
        if self.world == 1:
            return self.stop_signal is not None
        if step is not None and (step + 1) % 10:
            return False
        return distributed.any_rank(self.stop_signal is not None, self.device)

    @torch.no_grad()
    def evaluate(self) -> list[float]:
        """Test accuracy (%) of every network of the method (each rank scores its share of batches)."""
        self.method.eval()
        counts = torch.zeros(len(self.method.nets) + 1, device=self.device)  # correct per network, total
        for images, labels in self.data.test_batches(self.cfg.eval_batch_size, self.rank, self.world):
            x = self.views(images, "test")
            with hardware.autocast(self.device, self.precision):
                for n, net in enumerate(evidence.evaluation_nets(self.method)):
                    counts[n] += (net(x)[0].argmax(1) == labels).sum()
            counts[-1] += labels.shape[0]
        counts = distributed.reduce(counts)
        return (100 * counts[:-1] / counts[-1].clamp(min=1)).tolist()

    def wrap_for_ddp(self) -> None:
        """Wrap every network in DistributedDataParallel (after a resume has loaded plain weights)."""
        if self.world == 1 or self.ddp_wrapped:
            return
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        for i, net in enumerate(self.method.nets):
            self.method.nets[i] = DistributedDataParallel(net, device_ids=ids)
        self.ddp_wrapped = True

    def method_state(self) -> dict:
        """The method's state dict with DDP's `module.` level removed, so any run can load it."""
        return {key.replace(".module.", ".", 1): value for key, value in self.method.state_dict().items()}

    def fit(self) -> dict:
        """Train the remaining epochs; SIGINT/SIGTERM stop after the current step with a checkpoint."""
        cfg = self.cfg
        if self.run is not None:
            self.run.create()
            atomic_json(self.run.config, cfg.to_dict())
            write_data_files(self.run, cfg.dataset, self.data, self.views.normalize, self.backbone_record())
        self.wrap_for_ddp()
        started = time.time() - sum(r["seconds"] for r in self.history)
        pending = self.estimate_by_probe() if self.forget.by_probe and self.forget.target is None else {}
        if not self.quiet and self.start_epoch == 0:
            for warning in (self.forget.shortfall(cfg.epochs),
                            hardware.slow_on_cpu(cfg.arch, self.data.crop_size, self.device, self.frozen)):
                if warning:
                    tqdm.write(f"warning: {warning}")
        epochs = tqdm(range(self.start_epoch, cfg.epochs), initial=self.start_epoch, total=cfg.epochs,
                      desc=f"{cfg.method} {cfg.dataset}", unit="epoch", disable=self.quiet, dynamic_ncols=True)
        with stop_on_signals(self):
            for epoch in epochs:
                tick = time.time()
                with tqdm(total=self.data.num_batches(cfg.batch_size), initial=self.partial[0] if self.partial else 0,
                          desc=f"epoch {epoch + 1}", unit="batch", leave=False, disable=self.quiet,
                          dynamic_ncols=True) as bar:
                    record = {"epoch": epoch + 1, **self.train_epoch(epoch, bar), **pending}
                pending = {}
                accs = self.evaluate()
                record.update(test_acc=float(np.mean(accs)), test_acc_nets=accs)
                if self.data.true_labels is not None:
                    record.update(selection_metrics(self.selections, self.data.labels, self.data.true_labels,
                                                    self.data.num_classes))
                if self.forget.estimate_due(epoch + 1):
                    self.estimate_forget_rate(record)
                record["seconds"] = time.time() - tick
                self.history.append(record)
                self.save(epoch + 1)
                postfix = {"acc": f"{record['test_acc']:.2f}"}
                if record.get("label_precision") is not None:
                    postfix["precision"] = f"{record['label_precision']:.3f}"
                epochs.set_postfix(postfix)
                if self.stop_requested():
                    raise Interrupted(self.stop_signal or "SIGTERM", epoch + 1, 0, self.run)
            return self.finish(time.time() - started)

    def finish(self, seconds: float) -> dict:
        """After the last epoch: the final verdicts, results.json, verdicts.csv and the plots."""
        cfg = self.cfg
        # The frozen head's ranking takes the probe's margin (fine-tuning's network ranks on its own);
        # fitted, where a resumed run has not yet, on this rank's readable rows, as before the first epoch.
        probe_probs = self.probe_probabilities() if self.frozen and self.forget.by_probe else None
        if self.world > 1 and self.data.reads_files:  # files that broke on any rank
            for skipped, failed in distributed.gather_objects((self.data.skipped_files, self.data.failed_positions)):
                self.data.skipped_files.update(skipped)
                self.data.failed_positions.update(failed)
        self.final = verdicts.decide(evidence.gather(self.method, self.data, self.views, self.selections,
                                                     self.precision, cfg.eval_batch_size, cfg.seed, self.forget.prior,
                                                     probe_probs))
        if self.stop_requested():  # before any final file: the last checkpoint holds every epoch, --resume finishes
            raise Interrupted(self.stop_signal or "SIGTERM", len(self.history), 0, self.run)
        results = self.results(seconds)
        if self.run is not None:
            atomic_json(self.run.results, results)
            write_verdicts(self.run, self.selections, self.data, self.final)
            write_data_files(self.run, cfg.dataset, self.data, self.views.normalize,  # files broken meanwhile
                             self.backbone_record())
            report.plot_run(self.history, self.run.curves, title=self.run.path.name)
        return results

    def backbone_record(self) -> dict | None:
        """data.json's record of the frozen backbone (what predict rebuilds); None when fine-tuning."""
        return self.data.backbone if self.frozen else None

    def estimate_forget_rate(self, record: dict) -> None:
        """--forget-rate auto: estimate the noise rate from the networks as they are now (one
        un-augmented pass over the training set); rank 0's reading holds for every rank."""
        probs = evidence.plain_probabilities(self.method, self.data, self.views, self.precision,
                                             self.cfg.eval_batch_size)
        losses = evidence.given_label_losses(probs, self.data.labels)
        reading = self.forget.read(losses, probs.cpu().numpy(), self.data.labels.cpu().numpy())
        # A file that failed on one rank, or a GPU's rounding, could otherwise move a rank's split and
        # have the ranks train with different forget rates.
        message = self.forget.adopt(distributed.gather_objects(reading)[0], self.history, record)
        if distributed.is_main():
            tqdm.write(f"after epoch {record['epoch']}: {message}")

    def estimate_by_probe(self) -> dict:
        """--forget-rate auto on pretrained features (frozen, or fine-tuning's starting network): the
        noise rate from a linear probe cross-fitted on the un-augmented features, before the first
        epoch; returns the readings for its record."""
        reading = self.forget.read_probe(self.probe_probabilities(), self.data.labels.cpu().numpy())
        record: dict = {}
        # A file that failed on one rank only could move its count: rank 0's holds for every rank.
        message = self.forget.adopt_probe(distributed.gather_objects(reading)[0], record)
        if distributed.is_main():
            tqdm.write(f"before epoch {self.start_epoch + 1}: {message}")
        return record

    def probe_probabilities(self) -> np.ndarray:
        """[N×C] out-of-fold probabilities of a linear probe on the pretrained features' un-augmented
        view (``comining.probe``; NaN rows for samples without features), fitted once per process. When
        frozen, the feature cache keeps them, so a later run on the same features, labels and seed reads
        them back instead of fitting again (at web-bird's size the fit takes minutes)."""
        if self.probe_probs is None:
            readable = np.ones(len(self.data), dtype=bool)
            readable[list(self.data.failed_positions)] = False
            args = (self.probe_features(), self.data.labels.cpu().numpy(), self.data.num_classes, self.cfg.seed,
                    readable)
            fit = lambda: probe.out_of_fold_probabilities(*args)  # noqa: E731
            self.probe_probs = (self.data.remembered("probe-" + probe.result_key(*args),
                                                     (len(readable), self.data.num_classes), fit)
                                if self.frozen else fit())
        return self.probe_probs

    def probe_features(self) -> np.ndarray:
        """[N×D] what the probe reads: the cached un-augmented view when frozen, of the backbone's last
        stage only (its classifier's input; the stages before it widen the features, and a linear
        probe fitted on those fits more of the wrong labels and counts too many: docs/BACKBONE.md);
        when fine-tuning, the features of the network as ``--weights`` give it, built afresh so that
        a run resumed after some training reads the same (NaN rows for images that cannot be read)."""
        if self.frozen:
            return self.data.last_stage_plain()
        # Its random classifier, and the data loader's seed on image folders, must not move the run's
        # draws: a run given the probe's count replays this one.
        with torch.random.fork_rng(devices=[]):
            return evidence.features(self.network(with_weights=True), self.data, self.views,
                                     evidence.plain_view_kind(self.method), self.precision,
                                     self.cfg.eval_batch_size).numpy()

    # -- state ----------------------------------------------------------------------------------

    def save(self, epoch: int, step: int = 0, monitor: LossMonitor | None = None) -> None:
        """Checkpoint after ``epoch`` whole epochs and ``step`` steps of the next (a pre-emption)."""
        rng = distributed.gather_objects(hardware.rng_state())  # collective: every rank takes part
        if self.run is None:
            return
        if step == 0:
            self.run.write_metrics(self.history)
        atomic_torch_save(self.run.checkpoint, {
            "config": self.cfg.to_dict(), "epoch": epoch, "step": step,
            "monitor": monitor.state_dict() if monitor is not None else None,
            "method": self.method_state(), "optimizer": self.optimizer.state_dict(),
            # "ledger": the selection log's key in every checkpoint, older ones included
            "ledger": self.selections.state_dict(), "rng": rng[0], "rng_ranks": rng, "history": self.history,
            "data": self.data.fingerprint()})

    @classmethod
    def resume(cls, path, overrides: dict | None = None) -> "Trainer":
        """A Trainer that continues the run in ``path`` from its checkpoint.
        ``overrides`` may change the settings of ``config.RESUMABLE``: those that leave the computation's
        meaning intact (device, precision, learning rate after a divergence, workers, evaluation batch
        size, progress bars)."""
        run = RunDir(path)
        state = run.load_checkpoint()  # checks the format and that every part is there
        try:
            cfg = Config(**{**from_stored(state["config"]), **(overrides or {}), "out": str(path)})
            validate(cfg)
        except (TypeError, UserError) as err:
            raise UserError(f"checkpoint {run.checkpoint} holds settings this version cannot use ({err}): "
                            "resume it with the version that wrote it, or start a new run") from None
        trainer = cls(cfg, out=path, resuming=True)
        check_same_data(run.checkpoint, state.get("data"), trainer.data)  # before a state sized for other data loads
        if trainer.frozen:
            check_same_backbone(run.checkpoint, state.get("data"), trainer.data)
        try:
            trainer.method.load_state_dict(state["method"])
            trainer.optimizer.load_state_dict(state["optimizer"])
            trainer.selections.load_state_dict(state["ledger"])
            if state["step"]:
                trainer.partial = (state["step"], LossMonitor.from_state(state["monitor"], trainer.device,
                                                                         trainer.monitor_every))
            rng = state.get("rng_ranks") or [state["rng"]]
            hardware.set_rng_state(rng[trainer.rank] if trainer.rank < len(rng) else state["rng"])
        except (RuntimeError, KeyError, ValueError, IndexError, TypeError, AttributeError) as err:
            reason = str(err).splitlines()[0][:120] if str(err) else type(err).__name__
            raise UserError(f"checkpoint {run.checkpoint} does not fit its own settings ({reason}): "
                            "it was written by another configuration; start a new run") from None
        trainer.history = state["history"]
        trainer.start_epoch = state["epoch"]
        trainer.forget.restore(trainer.history)
        return trainer

    def results(self, seconds: float) -> dict:
        accs = [r["test_acc"] for r in self.history]
        last10 = np.asarray(accs[-10:], dtype=float)  # the paper's number: their mean and population std
        best = int(np.argmax(accs))
        results = {"last10_mean": float(last10.mean()), "last10_std": float(last10.std()), "best_acc": accs[best],
                   "best_epoch": best + 1, "final_acc": accs[-1], "epochs": len(accs), "seconds": seconds,
                   "method": self.cfg.method, "dataset": self.cfg.dataset, "precision": self.precision,
                   "device": str(self.device), "noise": self.data.noise, "train_size": len(self.data),
                   "label_precision": self.history[-1].get("label_precision"), "recipe": self.cfg.recipe,
                   "forget_rate": self.forget.target, "precision_reason": self.precision_reason}
        estimate = estimated_noise_rate(self.history)
        if estimate is not None:
            results["estimated_noise_rate"] = estimate
            last = last_interval_record(self.history)  # how sure the last estimate is, and what counted it
            results["estimated_noise_rate_interval"] = last.get("noise_rate_interval")
            if "noise_rate_readings" in last:
                results["noise_rate_readings"] = last["noise_rate_readings"]
            results["noise_rate_estimated_by"] = estimated_by(self.history)
        shortfall = self.forget.shortfall(self.cfg.epochs)
        if shortfall:
            results["forget_rate_shortfall"] = shortfall
        if self.data.reads_files:
            results["skipped_files"] = len(self.data.skipped_files)
        if self.cfg.labels or self.data.left_out:  # a -1 or empty label, or an unlisted path
            results["left_out"] = self.data.left_out
        if self.data.unmatched_label_rows:
            results["unmatched_label_rows"] = {"count": len(self.data.unmatched_label_rows),
                                               "first": self.data.unmatched_label_rows[0]}
        if self.final is not None:
            results.update(verdicts.verdict_summary(self.final, self.data))
        if self.frozen:
            results["backbone"] = self.data.summary()
        return results


def train(cfg: Config, out=None) -> dict:
    """Train one run from a Config; writes the run directory ``out`` if given. Returns results."""
    return Trainer(cfg, out).fit()
