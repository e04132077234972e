"""Train the baselines, resumably; save and load their model files.

:class:`BaselineTrainer` trains every method: it runs each of the model's stages for
``cfg.iters`` steps and times the steps alone (``info["train_seconds"]``, the table's
wall-clock). Given a run folder it checkpoints the whole training state (every network, the
current stage's optimizers and buffers, the position ``step`` over all stages, the random
generator, the seconds trained) every ``save_every`` steps, when asked to stop and at the
end; ``resume=True`` continues from the newest valid checkpoint and ends with the weights an
uninterrupted run would have. Checkpoints and model files are safetensors with JSON metadata
and a checksum, written atomically (nothing is unpickled, :mod:`stargan.checkpoint`);
a model file has format ``stargan-baseline/1``: every network's weights, the config, the
label names and the training record.

Example:
    >>> cfg = BaselineConfig.synth("icgan", 32, iters=3000, seed=0)
    >>> BaselineTrainer(cfg, out_dir="runs/icgan", save_every=500).fit()   # doctest: +SKIP
    >>> # Killed part-way? The same with resume=True continues where it was.
    >>> BaselineTrainer(cfg, out_dir="runs/icgan", resume=True).fit()      # doctest: +SKIP
    >>> model = load_baseline("runs/icgan/model.safetensors")             # doctest: +SKIP
    >>> model.translate(x, "neutral", "happy")                            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch

from stargan import checkpoint as ckpt
from stargan.baselines.common import (
    METHODS,
    Baseline,
    BaselineConfig,
    BaselineError,
    ExpressionData,
    Stage,
    build_baseline,
    set_lr,
)
from stargan.data.labels import LabelLayout
from stargan.data.registry import LabelledDataset, build_dataset
from stargan.files import parse_json
from stargan.training.runfolder import RunFolder

BASELINE_FORMAT = "stargan-baseline/1"
STATE_FORMAT = "stargan-baseline-state/1"
OnLog = Callable[[str, int, dict[str, float]], None]
"""(stage name, step within the stage, metrics) -> None; called every ``log_every`` steps."""


def _digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for key, t in sorted(module.state_dict().items()):
        h.update(f"{key}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class BaselineTrainer:
    """Trains one baseline stage by stage; with ``out_dir``, owns that run folder.

    The folder gets ``config.json``, ``metrics.jsonl``, ``checkpoints/state-STEP.safetensors``
    (the newest ``keep_checkpoints``), ``model.safetensors`` at the end and, for DIAT, the
    identity network it compares features with (``identity.safetensors``). A folder that holds
    a run is only continued (``resume``) or started over (``overwrite``). ``step`` counts the
    steps done over all stages: stage k runs steps k * iters ... (k + 1) * iters - 1.

    Example:
        >>> trainer = BaselineTrainer(cfg, out_dir="runs/cyclegan", resume=True)  # doctest: +SKIP
        >>> trainer.fit()  # doctest: +SKIP
        'finished'

    ``fit`` returns 'stopped' instead when :meth:`request_stop` was called (the CLI's signal
    handlers do), after writing a checkpoint.
    """

    def __init__(
        self,
        cfg: BaselineConfig,
        *,
        dataset: LabelledDataset | None = None,
        device: str | torch.device = "cpu",
        out_dir: str | Path | None = None,
        resume: bool = False,
        overwrite: bool = False,
        save_every: int = 500,
        keep_checkpoints: int = 2,
        identity_net: Any = None,
        on_log: OnLog | None = None,
    ) -> None:
        if save_every < 0 or keep_checkpoints < 1:
            raise BaselineError(
                f"save_every must be >= 0 (0: only when stopping and at the end) and "
                f"keep_checkpoints >= 1, got {save_every} and {keep_checkpoints}"
            )
        self.cfg, self.device, self.on_log = cfg, torch.device(device), on_log
        self.save_every, self.keep_checkpoints = save_every, keep_checkpoints
        dataset = dataset if dataset is not None else build_dataset(cfg.data, "train")
        self.data = ExpressionData(dataset, cfg.flip)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.model: Baseline = build_baseline(cfg, dataset.label_spec).to(self.device)
        if identity_net is not None:
            if not hasattr(self.model, "attach_identity_net"):
                raise BaselineError(f"{cfg.method} takes no identity network (DIAT does)")
            self.model.attach_identity_net(identity_net)
        # Every random draw of training comes from this generator, whose state is checkpointed.
        self.rng = torch.Generator().manual_seed(cfg.seed)
        self.stage_names = self.model.stage_names()
        self.total = len(self.stage_names) * cfg.iters
        self.step = 0
        self.stage: Stage | None = None
        self.stage_index = -1
        self.stage_seconds: dict[str, float] = {}
        self.resumed_from: Path | None = None
        self.skipped_checkpoints: list[str] = []
        self.removed_temporaries: list[Path] = []
        self._stop_requested = False
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.folder = None if out_dir is None else RunFolder(out_dir, keep_checkpoints)
        self.log = None if self.folder is None else self.folder.log
        checkpoints = self._prepare_run_folder(resume, overwrite) if self.folder else []

        t0 = time.perf_counter()
        self.model.prepare(self.data, self.device)
        self.prepare_seconds = time.perf_counter() - t0
        if checkpoints:
            self._resume_newest_valid(checkpoints)
        elif self.out_dir is not None:
            self._save_identity_net()
            self.save_state()  # from here on a kill loses at most save_every steps
        if self.out_dir is not None:
            ckpt.atomic_write_bytes(self.out_dir / "config.json", self.cfg.to_json().encode())

    # Run folder, checkpoints and resume.

    @property
    def checkpoint_dir(self) -> Path:
        assert self.folder is not None
        return self.folder.checkpoint_dir

    def checkpoints(self) -> list[Path]:
        """Training-state files, newest first."""
        assert self.folder is not None
        return self.folder.checkpoints()

    def _file(self, name: str) -> Path:
        assert self.folder is not None
        return self.folder.file(name)

    def _prepare_run_folder(self, resume: bool, overwrite: bool) -> list[Path]:
        """The checkpoints to resume from; [] when the run starts (over)."""
        assert self.folder is not None
        existing = self.folder.claim(resume, overwrite, ["model.safetensors"])
        self.removed_temporaries = self.folder.removed_temporaries
        if not existing:
            self._file("identity.safetensors").unlink(missing_ok=True)  # DIAT's, trained anew
        elif getattr(self.model, "identity_net", False) is None:  # DIAT, none given
            self._load_identity_net()
        return existing

    def _load_identity_net(self) -> None:
        from stargan.evaluation.classifier import load_judge

        path = self._file("identity.safetensors")
        if not path.exists():
            raise ckpt.CheckpointError(
                f"{path} is missing: the DIAT run in {self.out_dir} compared the features of that "
                f"identity network; restore it (or pass --identity-net FILE), or --overwrite"
            )
        self.model.attach_identity_net(load_judge(path, self.device))

    def _save_identity_net(self) -> None:
        judge = getattr(self.model, "identity_net", None)
        if judge is not None:
            from stargan.evaluation.classifier import save_judge

            save_judge(judge, self._file("identity.safetensors"))

    def _resume_newest_valid(self, files: list[Path]) -> None:
        assert self.folder is not None
        self.resumed_from = self.folder.resume(files, self.load_state)
        self.skipped_checkpoints = self.folder.skipped_checkpoints
        self._truncate_log()

    def _truncate_log(self) -> None:
        """Drop the metric lines of steps after the checkpoint: they are trained again."""
        assert self.log is not None
        if not self.log.path.exists():
            return
        kept = []
        for line, rec in self.log.lines():
            try:
                position = self.stage_names.index(rec["stage"]) * self.cfg.iters + rec["step"]
            except (KeyError, TypeError, ValueError):
                continue  # not a record of this run's stages; its step is re-done anyway
            if position <= self.step:
                kept.append(line)
        self.log.keep(kept)

    def _stage_in_progress(self) -> Stage | None:
        k, it = divmod(self.step, self.cfg.iters)
        return self.stage if self.stage is not None and self.stage_index == k and it else None

    def save_state(self) -> Path:
        """Write the training state as ``checkpoints/state-STEP.safetensors``; keep the newest
        ``keep_checkpoints``."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        bad = [k for k, v in tensors.items() if v.is_floating_point() and not v.isfinite().all()]
        if bad:
            raise BaselineError(
                f"refusing to save non-finite weights at step {self.step} ({', '.join(bad[:5])}); "
                f"the last checkpoint in {self.checkpoint_dir} is intact; lower --lr"
            )
        tensors["rng"] = self.rng.get_state()
        groups: dict[str, Any] = {}
        stage = self._stage_in_progress()
        if stage is not None:
            for name, opt in stage.optimizers.items():
                opt_tensors, groups[name] = ckpt.optimizer_tensors(opt, f"opt.{name}.")
                tensors |= opt_tensors
            for name, buffer in stage.buffers.items():
                tensors |= {f"buffer.{name}.{k}": v for k, v in buffer.state_tensors().items()}
        judge = getattr(self.model, "identity_net", None)
        meta = {
            "format": STATE_FORMAT,
            "method": self.cfg.method,
            "config": self.cfg.to_dict(),
            "labels": LabelLayout((self.model.spec,)).to_dict(),
            "step": self.step,
            "stage": self.stage_index if stage is not None else -1,
            "optimizers": groups,
            "stage_seconds": self.stage_seconds,
            "prepare_seconds": self.prepare_seconds,
            "identity_net": _digest(judge) if judge is not None else "",
        }
        path = self.checkpoint_dir / f"state-{self.step:08d}.safetensors"
        ckpt.save_tensors(path, tensors, meta)
        self.folder.retire(path)  # only now that the new file is durable
        return path

    def load_state(self, path: Path) -> None:
        """Continue from a file written by :meth:`save_state` (it must be this run's)."""
        tensors, meta = ckpt.load_tensors(path, STATE_FORMAT)
        try:
            cfg = BaselineConfig.from_dict(parse_json(meta["config"]))
            (spec,) = LabelLayout.from_dict(parse_json(meta["labels"])).specs
            step, stage_index = int(meta["step"]), int(meta["stage"])
            groups = parse_json(meta["optimizers"])
            stage_seconds = {k: float(v) for k, v in parse_json(meta["stage_seconds"]).items()}
            prepare_seconds = float(meta["prepare_seconds"])
            identity = meta["identity_net"]
        except (KeyError, TypeError, ValueError) as e:  # ConfigError, LabelError, JSON errors
            raise ckpt.CheckpointError(f"{path}: incomplete training state ({e})") from None
        if cfg != self.cfg:
            theirs, ours = cfg.to_dict(), self.cfg.to_dict()
            diff = {k: (theirs[k], ours[k]) for k in ours if theirs[k] != ours[k]}
            raise ckpt.CheckpointError(
                f"{path} was trained with another config (field: (checkpoint, this run)): {diff}"
            )
        if spec != self.model.spec or not 0 <= step <= self.total:
            raise ckpt.CheckpointError(
                f"{path} holds labels {list(spec.names)} at step {step}; this run has "
                f"{list(self.model.spec.names)} and {self.total} steps"
            )
        judge = getattr(self.model, "identity_net", None)
        if identity != (_digest(judge) if judge is not None else ""):
            raise ckpt.CheckpointError(
                f"{path} was trained with another identity network than this run's (given with "
                f"--identity-net, or {self.out_dir}/identity.safetensors)"
            )
        ckpt.load_module_weights(self.model, tensors, "model.", path)
        self.stage, self.stage_index = None, -1
        if stage_index >= 0:
            stage = self._build_stage(stage_index)
            if set(groups) != set(stage.optimizers) or stage_index != step // self.cfg.iters:
                raise ckpt.CheckpointError(
                    f"{path}: optimizers {sorted(groups)} of stage {stage_index} at step {step}, "
                    f"expected {sorted(stage.optimizers)} of stage {step // self.cfg.iters}"
                )
            for name, opt in stage.optimizers.items():
                ckpt.load_optimizer(opt, tensors, f"opt.{name}.", groups[name], path)
            for name, buffer in stage.buffers.items():
                prefix = f"buffer.{name}."
                own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                buffer.load_state_tensors(own, self.device)
        self.rng.set_state(tensors["rng"])
        self.step, self.stage_seconds = step, stage_seconds
        self.prepare_seconds = prepare_seconds

    def request_stop(self) -> None:
        """Ask :meth:`fit` to checkpoint and return before the next step (signals)."""
        self._stop_requested = True

    # The loop.

    def _build_stage(self, k: int) -> Stage:
        self.stage = self.model.build_stage(k, self.data, self.rng, self.device)
        self.stage_index = k
        return self.stage

    def fit(self) -> Literal["finished", "stopped"]:
        """Train every stage to ``cfg.iters`` steps, or until :meth:`request_stop`; with a run
        folder, stopping writes a checkpoint and finishing also ``model.safetensors``."""
        cfg = self.cfg
        while self.step < self.total:
            if self._stop_requested:
                if self.out_dir is not None:
                    self.save_state()
                return "stopped"
            k, it = divmod(self.step, cfg.iters)
            stage = self.stage
            if stage is None or self.stage_index != k:
                stage = self._build_stage(k)
            set_lr(list(stage.optimizers.values()), cfg, it)
            t0 = time.perf_counter()
            metrics = stage.step(it)
            seconds = time.perf_counter() - t0
            self.stage_seconds[stage.name] = self.stage_seconds.get(stage.name, 0.0) + seconds
            self.step += 1
            bad = sorted(name for name, v in metrics.items() if not math.isfinite(v))
            if bad:
                raise BaselineError(
                    f"{cfg.method} stage {stage.name}, step {it + 1}: loss term(s) {bad} became "
                    f"NaN/Inf; lower --lr"
                )
            if (it + 1) % cfg.log_every == 0 or it + 1 == cfg.iters:
                self._log(stage.name, it + 1, metrics)
            periodic = self.save_every and self.step % self.save_every == 0
            if self.out_dir is not None and periodic and self.step < self.total:
                self.save_state()
        self._finish()
        return "finished"

    def _log(self, stage: str, step: int, metrics: dict[str, float]) -> None:
        if self.log is not None:
            self.log.write({"stage": stage, "step": step, "time": time.time(), **metrics})
        if self.on_log is not None:
            self.on_log(stage, step, metrics)

    def _finish(self) -> None:
        self.stage, self.stage_index = None, -1  # its optimizers are no longer needed
        self.model.eval()
        self.model.info |= {
            "train_seconds": sum(self.stage_seconds.values()),
            "stage_seconds": {name: self.stage_seconds.get(name, 0.0) for name in self.stage_names},
            "prepare_seconds": self.prepare_seconds,
            "steps": self.total,
            "device": str(self.device),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
        if self.out_dir is not None:
            self.save_state()
            save_baseline(self.model, self._file("model.safetensors"))


def train(
    cfg: BaselineConfig,
    *,
    dataset: LabelledDataset | None = None,
    device: str | torch.device = "cpu",
    on_log: OnLog | None = None,
    identity_net: Any = None,
) -> Baseline:
    """Train ``cfg.method`` on ``dataset`` (default: the train split of ``cfg.data``) in
    memory, without a run folder (no checkpoints: :class:`BaselineTrainer` with ``out_dir``).

    ``identity_net`` (DIAT only): a judge trained on identities to use as feature extractor
    instead of training one here. Raises :class:`BaselineError` when a loss becomes NaN/Inf.
    """
    trainer = BaselineTrainer(
        cfg, dataset=dataset, device=device, on_log=on_log, identity_net=identity_net
    )
    trainer.fit()
    return trainer.model


def save_baseline(model: Baseline, path: str | Path) -> Path:
    """Write ``model`` as safetensors + JSON metadata (format ``stargan-baseline/1``)."""
    path = Path(path)
    meta = {
        "format": BASELINE_FORMAT,
        "method": model.method,
        "config": model.cfg.to_json(),
        "labels": json.dumps(LabelLayout((model.spec,)).to_dict()),
        "info": json.dumps(model.info),
    }
    ckpt.save_tensors(path, dict(model.state_dict()), meta)
    return path


def load_baseline(path: str | Path, device: str | torch.device = "cpu") -> Baseline:
    """Read a file written by :func:`save_baseline`; the file is verified and runs no code.

    A file of another kind (a StarGAN model, a judge, a pickle) raises
    :class:`~stargan.checkpoint.CheckpointError` saying what it is.
    """
    path = Path(path)
    try:
        tensors, meta = ckpt.load_tensors(path, BASELINE_FORMAT)
    except ckpt.CheckpointError as e:
        raise ckpt.CheckpointError(
            f"{e}; baseline files are written by `stargan baselines train` (StarGAN model "
            f"files load with stargan.load)"
        ) from None
    try:
        method = meta["method"]
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {sorted(METHODS)}")
        cfg = BaselineConfig.from_dict(parse_json(meta["config"]))
        if cfg.method != method:
            raise ValueError(f"method {method!r} but config for {cfg.method!r}")
        (spec,) = LabelLayout.from_dict(parse_json(meta["labels"])).specs
        info = parse_json(meta.get("info", "{}"))
        model = build_baseline(cfg, spec)
    except (KeyError, TypeError, ValueError) as e:  # ConfigError, LabelError, JSON errors
        raise ckpt.CheckpointError(
            f"{path}: missing or malformed baseline metadata ({e})"
        ) from None
    ckpt.load_module_weights(model, tensors, "", path)
    model.info = info
    return model.to(device).eval()
