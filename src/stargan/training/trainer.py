"""The StarGAN training loop as a library object.

Example:
    >>> from stargan.presets import get_preset
    >>> trainer = Trainer(get_preset("synth-tiny"))      # doctest: +SKIP
    >>> trainer.fit()                                     # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from stargan import accel, losses
from stargan import checkpoint as ckpt
from stargan.config import SHIPPED_JUDGE, ConfigError, TrainConfig
from stargan.data.labels import LabelLayout, permute_targets
from stargan.data.registry import DatasetError, LabelledDataset, build_dataset
from stargan.files import parse_json
from stargan.models import build_discriminator, build_generator
from stargan.training import distributed
from stargan.training.logging import Callback, TensorBoardCallback
from stargan.training.runfolder import RunFolder
from stargan.training.schedule import lr_at


class Draws(NamedTuple):
    """One training step's random draws for this rank's share of the batch."""

    flips: torch.Tensor | None  # [N] bool: mirror these images (None: no flips)
    label_trg: torch.Tensor  # [N, n_k] target labels
    alpha: torch.Tensor  # [N] interpolation weights of the gradient penalty

    @staticmethod
    def mirror(x: torch.Tensor, flips: torch.Tensor | None) -> torch.Tensor:
        """x [N, 3, S, S] with the images where ``flips`` is set mirrored left to right."""
        return x if flips is None else torch.where(flips[:, None, None, None], x.flip(3), x)


@contextlib.contextmanager
def frozen(net: torch.nn.Module) -> Iterator[None]:
    """``net``'s parameters take no gradients inside (G's update passes through D)."""
    net.requires_grad_(False)
    try:
        yield
    finally:
        net.requires_grad_(True)


class NonFiniteError(RuntimeError):
    """A loss term became NaN or infinite; the step was not applied."""


ResumeMode = Literal["never", "auto"]


def check_batch_fits(n: int, batch_size: int) -> None:
    if n < batch_size:
        raise DatasetError(
            f"the dataset has {n} training images, fewer than one batch of {batch_size}; "
            f"lower optim.batch_size (--batch-size)"
        )


class EpochBatches:
    """Batches of indices over a dataset, reshuffled each epoch from (seed, epoch) alone.

    Because the order is a pure function of the seed and the epoch, the position in the data
    is just (epoch, batch) and a resumed run reads exactly the batches it would have read.
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int,
        epoch: int = 0,
        batch: int = 0,
        shard: slice = slice(None),
    ):
        check_batch_fits(n, batch_size)
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.batch, self.shard = epoch, batch, shard

    @property
    def per_epoch(self) -> int:
        return self.n // self.batch_size  # drop the last partial batch, as the official code

    def __iter__(self) -> Iterator[list[int]]:
        epoch, batch = self.epoch, self.batch
        while True:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.n, generator=g).tolist()
            for b in range(batch, self.per_epoch):
                # A distributed rank reads only its slice of the global batch.
                yield order[b * self.batch_size : (b + 1) * self.batch_size][self.shard]
            epoch, batch = epoch + 1, 0


class _Stream:
    """An endless batch iterator over one dataset that knows its position."""

    def __init__(
        self,
        dataset: LabelledDataset,
        batch_size: int,
        seed: int,
        workers: int,
        epoch: int = 0,
        batch: int = 0,
        shard: slice = slice(None),
    ) -> None:
        self.dataset, self.batch_size, self.seed, self.workers = dataset, batch_size, seed, workers
        self.shard = shard
        self.seek(epoch, batch)

    def seek(self, epoch: int, batch: int) -> None:
        self.sampler = EpochBatches(
            len(self.dataset), self.batch_size, self.seed, epoch, batch, self.shard
        )
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.sampler,
            num_workers=self.workers,
            persistent_workers=self.workers > 0,
        )
        self.iterator = iter(loader)
        self.epoch, self.batch = epoch, batch

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, label = next(self.iterator)
        self.batch += 1
        if self.batch == self.sampler.per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        return x, label


def resolve(
    cfg: TrainConfig, datasets: Sequence[LabelledDataset] | None = None
) -> tuple[TrainConfig, list[LabelledDataset], LabelLayout]:
    """The config as it will run, with the training datasets and their label layout.

    The label layout, not the user, decides how many label channels the nets have. Nothing is
    written, so a dry run can call this safely.
    """
    datasets = (
        list(datasets) if datasets is not None else [build_dataset(d, "train") for d in cfg.data]
    )
    for ds in datasets:
        check_batch_fits(len(ds), cfg.optim.batch_size)
    layout = LabelLayout(tuple(d.label_spec for d in datasets))
    model = dataclasses.replace(cfg.model, c_dim=layout.c_dim, n_classes=layout.n_classes)
    return dataclasses.replace(cfg, model=model), datasets, layout


def periodic_evaluation(
    cfg: TrainConfig, layout: LabelLayout, device: str | torch.device
) -> Callable[[Trainer, int], dict[str, float]]:
    """The run's periodic evaluation: its judge loaded and its test sets built, so that a dry
    run finds a missing judge or an empty test split before any training."""
    from stargan.evaluation import EvaluationError, PeriodicEvaluation, load_judge, shipped_judge

    path = cfg.run.eval_judge
    if path == SHIPPED_JUDGE:
        path = shipped_judge(layout, cfg.model.image_size)
        if path is None:
            raise EvaluationError(
                f"run.eval_judge 'shipped': no judge shipped with stargan knows the labels "
                f"{layout.to_dict()} at {cfg.model.image_size} px; train one "
                f"(`stargan evaluate train-classifier`) and give its file (--eval-judge FILE), "
                f"or pass --eval-every 0"
            )
    if path is None:
        raise EvaluationError("run.eval_every needs run.eval_judge (--eval-judge FILE)")
    judge = load_judge(path, device)
    for spec in layout.specs:
        judge.spec_index(spec)  # raises, naming the labels, for a judge of other data
    if judge.image_size != cfg.model.image_size:
        raise EvaluationError(
            f"{path}: the judge classifies {judge.image_size} px images but the run trains at "
            f"{cfg.model.image_size} px; train a judge at {cfg.model.image_size} px"
        )
    tests = [build_dataset(d, "test") for d in cfg.data]
    return PeriodicEvaluation(cfg.run.eval_every, tests, judge, n=cfg.run.eval_num)


class Trainer:
    """Trains G and D with the configured losses, schedule and data; owns the run folder.

    Callbacks receive every logged metric (progress bars, TensorBoard); the trainer itself
    writes only files: ``config.json``, ``metrics.jsonl``, ``samples/``, ``checkpoints/`` and
    ``model.safetensors`` (the latest generator, ready for ``stargan translate``).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        callbacks: Sequence[Callback] = (),
        resume: ResumeMode = "never",
        overwrite: bool = False,
        datasets: Sequence[LabelledDataset] | None = None,
    ) -> None:
        self.cfg, self.datasets, self.layout = resolve(cfg, datasets)
        model_cfg = self.cfg.model
        self.out_dir = Path(cfg.run.out_dir)
        # Under torchrun (process group initialised by the caller) rank 0 alone writes files.
        self.dist = distributed.current()
        if cfg.optim.batch_size % self.dist.world_size:
            raise ConfigError(
                f"optim.batch_size ({cfg.optim.batch_size}) is the global batch and must be "
                f"divisible by the number of ranks ({self.dist.world_size})"
            )
        self.device = distributed.device_for(cfg.run.device, self.dist)
        accel.check(cfg.speed, self.device)
        self.callbacks = list(callbacks) if self.dist.is_main else []
        if cfg.run.tensorboard and self.dist.is_main:
            self.callbacks.append(TensorBoardCallback(self.out_dir / "tensorboard"))
        if cfg.run.num_threads:
            torch.set_num_threads(cfg.run.num_threads)

        torch.manual_seed(cfg.run.seed)
        # The paper's networks, then the speed settings applied from outside (stargan.accel):
        # G_train and D_train are what the training passes call (autocast, compiled, DDP).
        self.G, self.D = build_generator(model_cfg), build_discriminator(model_cfg)
        G_train, self.D_fwd = accel.accelerate(self.G, self.D, cfg.speed, self.device)
        o = cfg.optim
        # Fused Adam: the same update in one kernel per device instead of the default per-tensor
        # loop (5x faster on D's 44.8 M parameters on a CPU: docs/performance.md).
        self.opt_g = torch.optim.Adam(self.G.parameters(), o.g_lr, (o.beta1, o.beta2), fused=True)
        self.opt_d = torch.optim.Adam(self.D.parameters(), o.d_lr, (o.beta1, o.beta2), fused=True)
        # Every random draw of training comes from this generator, whose state is checkpointed.
        self.rng = torch.Generator().manual_seed(cfg.run.seed)
        self.step = 0
        self.streams = [
            _Stream(
                ds,
                o.batch_size,
                cfg.run.seed + 7919 * k,
                d.num_workers,
                shard=self.dist.shard(o.batch_size),
            )
            for k, (ds, d) in enumerate(zip(self.datasets, cfg.data, strict=True))
        ]
        self.folder = RunFolder(self.out_dir, cfg.run.keep_checkpoints)
        self.log = self.folder.log
        self.train_seconds = 0.0  # training time alone (no eval, sampling or saving), resumed
        self.evaluate = (
            periodic_evaluation(self.cfg, self.layout, self.device)
            if cfg.run.eval_every and self.dist.is_main
            else None
        )
        self._stop_requested = False
        self.resume_changes: list[str] = []  # recipe settings changed since the checkpoint
        self._fixed_batches: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._prepare_run_folder(resume, overwrite)
        distributed.check_same_value(self.dist, "the step to resume from", self.step)
        # The forwards whose backward updates a net go through DDP wrappers under torchrun
        # (gradients averaged over ranks during backward). G's pass through D updates nothing
        # of D and uses D_fwd without DDP; checkpoints, samples and evaluation use the bare G
        # and D, so parameter names never gain a "module." prefix.
        self.G_train = distributed.wrap(self.dist, G_train)
        self.D_train = distributed.wrap(self.dist, self.D_fwd)

    # Run folder, checkpoints and resume.

    @property
    def checkpoint_dir(self) -> Path:
        return self.folder.checkpoint_dir

    def checkpoints(self) -> list[Path]:
        """Training-state files, newest first."""
        return self.folder.checkpoints()

    def _prepare_run_folder(self, resume: ResumeMode, overwrite: bool) -> None:
        outputs = ["model.safetensors"]
        if not self.dist.is_main:  # rank 0 alone writes; every rank resumes
            existing = self.folder.check(resume == "auto", overwrite, outputs)[0]
            existing = existing if resume == "auto" else []
        else:
            existing = self.folder.claim(resume == "auto", overwrite, outputs)
            ckpt.atomic_write_bytes(self.folder.file("config.json"), self.cfg.to_json().encode())
        if existing:
            self.folder.resume(existing, self.load_state)
            if self.dist.is_main:
                self.log.truncate_after(self.step)
        self.resumed_from = self.folder.resumed_from
        self.skipped_checkpoints = self.folder.skipped_checkpoints
        self.removed_temporaries = self.folder.removed_temporaries

    def save_state(self) -> Path:
        """Rank 0 writes the training state (every rank returns its path); under torchrun
        the ranks first prove they hold the same weights, and wait for the write."""
        tensors = {f"G.{k}": v for k, v in self.G.state_dict().items()}
        tensors |= {f"D.{k}": v for k, v in self.D.state_dict().items()}
        path = self.checkpoint_dir / f"state-{self.step:08d}.safetensors"
        distributed.check_same_on_all_ranks(self.dist, "the weights of G and D", tensors)
        if self.dist.is_main:
            self._write_state(tensors, path)
        distributed.barrier(self.dist)
        return path

    def _write_state(self, tensors: dict[str, torch.Tensor], path: Path) -> None:
        opt_g, groups_g = ckpt.optimizer_tensors(self.opt_g, "opt_g.")
        opt_d, groups_d = ckpt.optimizer_tensors(self.opt_d, "opt_d.")
        tensors |= opt_g | opt_d
        tensors["rng"] = self.rng.get_state()
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
        if bad:
            raise NonFiniteError(
                f"refusing to save non-finite values at step {self.step} ({', '.join(bad[:5])}"
                f"{' ...' if len(bad) > 5 else ''}); the last checkpoint in "
                f"{self.checkpoint_dir} is intact"
            )
        meta = {
            "format": ckpt.STATE_FORMAT,
            "step": self.step,
            "config": self.cfg.to_dict(),
            "labels": self.layout.to_dict(),
            "data_position": [[s.epoch, s.batch] for s in self.streams],
            "train_seconds": self.train_seconds,
            "opt_g_groups": groups_g,
            "opt_d_groups": groups_d,
        }
        ckpt.save_tensors(path, tensors, meta)
        ckpt.save_model_file(
            self.out_dir / "model.safetensors",
            self.G,
            self.cfg.model,
            self.layout,
            step=self.step,
            train_config=self.cfg,
            discriminator=self.D,
        )
        self.folder.retire(path)  # only now that the new file is durable

    def load_state(self, path: Path) -> None:
        tensors, meta = ckpt.load_tensors(path, ckpt.STATE_FORMAT)
        try:
            saved_cfg = TrainConfig.from_dict(parse_json(meta["config"]))
            saved_layout = LabelLayout.from_dict(parse_json(meta["labels"]))
            step = int(meta["step"])
            position = parse_json(meta["data_position"])
            train_seconds = float(meta["train_seconds"])
            groups = parse_json(meta["opt_g_groups"]), parse_json(meta["opt_d_groups"])
        except (KeyError, ValueError) as e:
            raise ckpt.CheckpointError(f"{path}: incomplete training state ({e})") from None
        if saved_cfg.model != self.cfg.model:
            raise ckpt.CheckpointError(
                f"{path} was trained with model {saved_cfg.model}, this run uses {self.cfg.model}"
            )
        if saved_layout != self.layout:
            raise ckpt.CheckpointError(
                f"{path} has labels {saved_layout.to_dict()}, this run's data has "
                f"{self.layout.to_dict()}"
            )
        ckpt.load_module_weights(self.G, tensors, "G.", path)
        ckpt.load_module_weights(self.D, tensors, "D.", path)
        ckpt.load_optimizer(self.opt_g, tensors, "opt_g.", groups[0], path)
        ckpt.load_optimizer(self.opt_d, tensors, "opt_d.", groups[1], path)
        self.rng.set_state(tensors["rng"])
        for stream, (epoch, batch) in zip(self.streams, position, strict=True):
            stream.seek(epoch, batch)
        self.step, self.train_seconds = step, train_seconds
        self.resume_changes = self.cfg.changes_from(saved_cfg)

    def request_stop(self) -> None:
        """Ask :meth:`fit` to checkpoint and return after the current iteration (signals)."""
        self._stop_requested = True

    # The loop.

    def fit(self) -> Literal["finished", "stopped"]:
        """Train until ``optim.num_iters`` or a stop request; always ends on a checkpoint."""
        run, total = self.cfg.run, self.cfg.optim.num_iters
        for cb in self.callbacks:
            cb.on_start(self.step, total)
        status: Literal["finished", "stopped"] = "finished"
        window_s, window_steps = 0.0, 0
        while self.step < total:
            # All ranks must leave the loop at the same step (a signal may reach one first).
            if distributed.any_rank(self.dist, self._stop_requested):
                status = "stopped"
                break
            t0 = time.perf_counter()
            metrics = self.train_iteration()
            self.step += 1
            elapsed = time.perf_counter() - t0
            self.train_seconds += elapsed
            window_s, window_steps = window_s + elapsed, window_steps + 1
            evaluation = self.evaluate(self, self.step) if self.evaluate is not None else {}
            metrics |= evaluation
            if self.step % run.log_every == 0 or self.step == total or evaluation:
                metrics["time/iter_s"] = window_s / window_steps
                metrics["time/train_s"] = self.train_seconds
                self._log(metrics)
                window_s, window_steps = 0.0, 0
            if run.sample_every and self.step % run.sample_every == 0:
                self.save_samples()
            if self.step % run.save_every == 0 and self.step != total:
                self.save_state()
        self.save_state()
        if status == "finished" and run.sample_every:
            self.save_samples()
        for cb in self.callbacks:
            cb.on_end(self.step)
        return status

    def _log(self, metrics: dict[str, float]) -> None:
        if not self.dist.is_main:
            return
        record = {"step": self.step, "time": time.time(), **metrics}
        self.log.write(record)
        for cb in self.callbacks:
            cb.on_metrics(self.step, metrics)

    def _set_lrs(self) -> None:
        o = self.cfg.optim
        for opt, base in ((self.opt_g, o.g_lr), (self.opt_d, o.d_lr)):
            for group in opt.param_groups:
                group["lr"] = lr_at(base, self.step, o)

    def train_iteration(self) -> dict[str, float]:
        """One iteration: per dataset, ``ratio`` D updates, each followed by a G update
        when ``(step + 1) % n_critic == 0`` (the official alternation)."""
        self._set_lrs()
        update_g = (self.step + 1) % self.cfg.optim.n_critic == 0
        metrics: dict[str, float] = {
            "lr/g": self.opt_g.param_groups[0]["lr"],
            "lr/d": self.opt_d.param_groups[0]["lr"],
        }
        warmup = self.step < self.cfg.optim.d_cls_warmup
        for k, (stream, dcfg) in enumerate(zip(self.streams, self.cfg.data, strict=True)):
            for _ in range(dcfg.ratio):
                x, label = stream.next()
                if warmup:
                    step_metrics = self.warmup_step(k, x, label, flip=dcfg.flip)
                else:
                    step_metrics = self.train_step(k, x, label, update_g, flip=dcfg.flip)
                tag = "" if self.layout.n_datasets == 1 else f"{k}:"
                metrics.update({f"{tag}{name}": v for name, v in step_metrics.items()})
        return metrics

    def draw(self, label_org: torch.Tensor, flip: bool) -> Draws:
        """This step's random draws: flips, target labels (the global batch's labels permuted)
        and the gradient penalty's interpolation weights.

        Under torchrun each rank holds a slice of the global batch; every draw is made for the
        global batch on every rank (same generator, same order) and sliced, so N ranks compute
        exactly what one process would."""
        n_global, mine = self._share(label_org.shape[0])
        flips = self._flips(label_org.shape[0]) if flip else None
        all_labels = distributed.all_gather_rows(self.dist, label_org)
        label_trg = permute_targets(all_labels, self.rng)[mine]
        alpha = torch.rand(n_global, generator=self.rng)[mine]
        return Draws(flips, label_trg, alpha)

    def _share(self, n: int) -> tuple[int, slice]:
        """(global batch size, this rank's slice of it) for a local batch of n."""
        if not self.dist.active:
            return n, slice(None)
        return n * self.dist.world_size, self.dist.shard(self.cfg.optim.batch_size)

    def _flips(self, n: int) -> torch.Tensor:
        """Which of this rank's n images to mirror: a random half of the global batch."""
        n_global, mine = self._share(n)
        return (torch.rand(n_global, generator=self.rng) < 0.5)[mine]

    def warmup_step(
        self, k: int, x_real: torch.Tensor, label_org: torch.Tensor, flip: bool = False
    ) -> dict[str, float]:
        """A D update on the classification loss of real images alone (optim.d_cls_warmup).

        Why: with WGAN-GP, D's classifier can sit at chance for the whole of a short run (the
        adversarial term shapes D's shared features first), and G, whose only reason to change
        an attribute is that classifier, then learns nothing; see docs/results.md."""
        spec, part = self.layout.specs[k], self.layout.slice(k)
        if flip:
            x_real = Draws.mirror(x_real, self._flips(x_real.shape[0]))
        x_real, label_org = x_real.to(self.device, non_blocking=True), label_org.to(self.device)
        src, cls = self.D_train(x_real)
        terms = {"D/cls": losses.classification_loss(spec.kind, cls[:, part], label_org)}
        # The source head takes part with weight 0: DDP requires every parameter to get a
        # gradient in each backward, and one process must do exactly what N ranks do.
        loss = self.cfg.loss.lambda_cls * terms["D/cls"] + 0.0 * src.sum()
        return self._apply(self.opt_d, self.D, loss, terms, "D")

    def train_step(
        self, k: int, x_real: Tensor, label_org: Tensor, update_g: bool, flip: bool = False
    ) -> dict[str, float]:
        """Algorithm 1 of the official code for dataset k's batch: a D update, then a G update
        if ``update_g`` (every n_critic-th iteration)."""
        spec, part, lc = self.layout.specs[k], self.layout.slice(k), self.cfg.loss
        draws = self.draw(label_org, flip)
        x_real = draws.mirror(x_real, draws.flips).to(self.device, non_blocking=True)
        label_org, label_trg = label_org.to(self.device), draws.label_trg.to(self.device)
        c_org, c_trg = self.layout.embed(k, label_org), self.layout.embed(k, label_trg)
        per_loss = {"kind": spec.kind, "part": part, "cfg": lc}

        # Translate once. G's graph is kept only when G is updated: its step reuses x_fake.
        attention = None  # G's mask, when its mean is penalised (loss.lambda_mask)
        with torch.set_grad_enabled(update_g):
            if update_g and lc.lambda_mask:
                x_fake, attention = self.G_train(x_real, c_trg, return_attention=True)
            else:
                x_fake = self.G_train(x_real, c_trg)

        # Update D on real, fake and interpolated images.
        alpha = draws.alpha.to(self.device)
        d_loss, terms = losses.discriminator_loss(
            self.D_train, x_real, x_fake, label_org, alpha, **per_loss
        )
        metrics = self._apply(self.opt_d, self.D, d_loss, terms, "D")
        if not update_g:
            return metrics

        # Update G through the updated D, whose weights need no gradients here.
        with frozen(self.D):
            g_loss, terms = losses.generator_loss(
                self.G_train, self.D_fwd, x_real, x_fake, c_org, label_trg,
                attention=attention, **per_loss,
            )  # fmt: skip
            metrics |= self._apply(self.opt_g, self.G, g_loss, terms, "G")
        return metrics

    def _apply(
        self,
        opt: torch.optim.Optimizer,
        net: torch.nn.Module,
        loss: torch.Tensor,
        terms: dict[str, torch.Tensor],
        who: str,
    ) -> dict[str, float]:
        """Backward and step, unless a loss term or a gradient is NaN/Inf: then the update is
        not applied and the run stops (or, with on_nonfinite='skip', goes on without it).
        Returns the terms as floats, averaged over ranks under torchrun."""
        metrics = distributed.average_scalars(self.dist, terms)
        bad = [f"loss term {k} is {v}" for k, v in metrics.items() if not math.isfinite(v)]
        if not bad:
            loss.backward()  # under torchrun DDP has averaged the gradients when this returns
            grads = [p.grad for p in net.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads).item()
            if not math.isfinite(norm):
                bad.append(f"the gradient norm of {who} is {norm}")
        if not bad:
            opt.step()
        # Gradients are freed as soon as they are used (every path): D's 44.8 M would
        # otherwise stay resident through G's update, at its memory peak.
        opt.zero_grad(set_to_none=True)
        if not bad:
            return metrics
        metrics[f"{who}/skipped"] = 1.0
        if self.cfg.run.on_nonfinite == "skip":
            return metrics
        raise NonFiniteError(
            f"{'; '.join(bad)} at step {self.step}: the update was not applied and the last "
            f"checkpoint in {self.checkpoint_dir} is intact. Lower the learning rates, check "
            f"the data for NaNs, or pass --on-nonfinite skip."
        )

    # Samples.

    def fixed_batches(self, n: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same images of every dataset for every sample grid of the run, spread over the
        labels (a folder dataset's first images in sorted order would all be one class)."""
        from stargan.data.grid import spread_indices

        if self._fixed_batches is None:
            self._fixed_batches = []
            for ds in self.datasets:
                items = [ds[i] for i in spread_indices(ds, n)]
                self._fixed_batches.append(
                    (torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]))
                )
        return self._fixed_batches

    def save_samples(self) -> Path:
        from stargan.data.grid import sample_grid
        from stargan.data.io import save_image

        path = self.out_dir / "samples" / f"step-{self.step:08d}.png"
        if not self.dist.is_main:
            return path
        x, label = zip(*self.fixed_batches(), strict=True)
        grid = sample_grid(self.G, list(x), list(label), self.layout, self.device, titled=True)
        save_image(grid, path)
        return path
