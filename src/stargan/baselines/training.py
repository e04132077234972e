"""Train, save and load the baselines; count their parameters as the paper's Table 3 does.

One loop trains every method: it runs each of the model's stages for ``cfg.iters`` steps
and times the steps alone (``info["train_seconds"]``, the table's wall-clock). A model file
is safetensors with format ``stargan-baseline/1``: every network's weights, the config, the
label names and the training record as JSON metadata, and a checksum (nothing is
unpickled, :mod:`stargan.training.checkpoint`).

Example:
    >>> cfg = BaselineConfig.synth("icgan", 32, iters=3000, seed=0)
    >>> model = train(cfg)                                      # doctest: +SKIP
    >>> save_baseline(model, "runs/icgan/model.safetensors")   # doctest: +SKIP
    >>> model = load_baseline("runs/icgan/model.safetensors")   # doctest: +SKIP
    >>> model.translate(x, "neutral", "happy")                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from stargan.baselines.common import (
    METHODS,
    Baseline,
    BaselineConfig,
    BaselineError,
    ExpressionData,
)
from stargan.config import ModelConfig
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.data.registry import LabelledDataset, build_dataset
from stargan.data.synthetic import EXPRESSIONS
from stargan.training import checkpoint as ckpt

BASELINE_FORMAT = "stargan-baseline/1"
OnLog = Callable[[str, int, dict[str, float]], None]
"""(stage name, step within the stage, metrics) -> None; called every ``log_every`` steps."""

PAPER_TABLE3: dict[str, dict[str, Any]] = {
    "real": {"error": 0.45},
    "stargan": {"error": 2.12, "params_m": 53.2, "models": 1},
    "diat": {"error": 4.10, "params_m": 52.6, "models": 7},
    "cyclegan": {"error": 5.99, "params_m": 52.6, "models": 14},
    "icgan": {"error": 8.07, "params_m": 67.8, "models": 1},
}
"""The paper's Table 3 (REFERENCE.md, 'Results to compare against'): classification error
(%) on RaFD expression synthesis and parameters as "N (millions) x models" at 128 px."""

RAFD_EXPRESSIONS = LabelSpec(EXPRESSIONS, "categorical")
"""RaFD's 8 expressions in class order (SynthFaces' RaFD style uses the same)."""


def build_baseline(cfg: BaselineConfig, spec: LabelSpec) -> Baseline:
    """The untrained model of ``cfg.method`` over the expressions ``spec``."""
    return METHODS[cfg.method](cfg, spec)


def train(
    cfg: BaselineConfig,
    *,
    dataset: LabelledDataset | None = None,
    device: str | torch.device = "cpu",
    on_log: OnLog | None = None,
    identity_net: Any = None,
) -> Baseline:
    """Train ``cfg.method`` on ``dataset`` (default: the train split of ``cfg.data``).

    ``identity_net`` (DIAT only): a judge trained on identities to use as feature extractor
    instead of training one here. Raises :class:`BaselineError` when a loss becomes NaN/Inf.
    """
    device = torch.device(device)
    dataset = dataset if dataset is not None else build_dataset(cfg.data, "train")
    data = ExpressionData(dataset, cfg.flip)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_baseline(cfg, dataset.label_spec).to(device)
    if identity_net is not None:
        if not hasattr(model, "attach_identity_net"):
            raise BaselineError(f"{cfg.method} takes no identity network (DIAT does)")
        model.attach_identity_net(identity_net)
    t0 = time.perf_counter()
    model.prepare(data, device)
    prepare_seconds = time.perf_counter() - t0
    rng = torch.Generator().manual_seed(cfg.seed)
    stage_seconds: dict[str, float] = {}
    for name, step in model.stages(data, rng, device):
        seconds = 0.0
        for it in range(cfg.iters):
            t = time.perf_counter()
            metrics = step(it)
            seconds += time.perf_counter() - t
            bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
            if bad:
                raise BaselineError(
                    f"{cfg.method} stage {name}, step {it + 1}: loss term(s) "
                    f"{bad} became NaN/Inf; lower --lr"
                )
            if on_log is not None and ((it + 1) % cfg.log_every == 0 or it + 1 == cfg.iters):
                on_log(name, it + 1, metrics)
        stage_seconds[name] = seconds
    model.eval()
    model.info |= {
        "train_seconds": sum(stage_seconds.values()),
        "stage_seconds": stage_seconds,
        "prepare_seconds": prepare_seconds,
        "steps": cfg.iters * len(stage_seconds),
        "device": str(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    return model


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
    :class:`~stargan.training.checkpoint.CheckpointError` saying what it is.
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
        cfg = BaselineConfig.from_dict(json.loads(meta["config"]))
        if cfg.method != method:
            raise ValueError(f"method {method!r} but config for {cfg.method!r}")
        (spec,) = LabelLayout.from_dict(json.loads(meta["labels"])).specs
        info = json.loads(meta.get("info", "{}"))
        model = build_baseline(cfg, spec)
    except (KeyError, TypeError, ValueError) as e:  # ConfigError, LabelError, JSON errors
        raise ckpt.CheckpointError(
            f"{path}: missing or malformed baseline metadata ({e})"
        ) from None
    ckpt.load_module_weights(model, tensors, "", path)
    model.info = info
    return model.to(device).eval()


def train_to_folder(
    cfg: BaselineConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    device: str | torch.device = "cpu",
    on_log: OnLog | None = None,
    identity_net: Any = None,
) -> Path:
    """Train and write ``out_dir``: ``config.json``, ``metrics.jsonl``, ``model.safetensors``
    and, for DIAT, the identity network it trained (``identity.safetensors``)."""
    from stargan.evaluation.classifier import save_judge
    from stargan.training.logging import MetricsLog

    out = Path(out_dir)
    model_path = out / "model.safetensors"
    if model_path.exists() and not overwrite:
        raise BaselineError(f"{model_path} exists; pass --overwrite or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    ckpt.atomic_write_bytes(out / "config.json", cfg.to_json().encode())
    log = MetricsLog(out / "metrics.jsonl")
    log.path.unlink(missing_ok=True)

    def record(stage: str, step: int, metrics: dict[str, float]) -> None:
        log.write({"stage": stage, "step": step, "time": time.time(), **metrics})
        if on_log is not None:
            on_log(stage, step, metrics)

    model = train(cfg, device=device, on_log=record, identity_net=identity_net)
    judge = getattr(model, "identity_net", None)
    if judge is not None and identity_net is None:
        save_judge(judge, out / "identity.safetensors")
    return save_baseline(model, model_path)


def paper_scale_parameters() -> dict[str, tuple[int, int]]:
    """(parameters per model, models) of StarGAN and every baseline at the paper's scale
    (128 px, widths 64, RaFD's 8 expressions), built on the meta device (no memory).

    Example:
        >>> paper_scale_parameters()["stargan"]
        (53226560, 1)
    """
    from stargan.models import build_discriminator, build_generator, count_parameters

    out: dict[str, tuple[int, int]] = {}
    n = RAFD_EXPRESSIONS.n_labels
    with torch.device("meta"):
        cfg = ModelConfig(image_size=128, c_dim=n, n_classes=n)
        out["stargan"] = (
            count_parameters(build_generator(cfg)) + count_parameters(build_discriminator(cfg)),
            1,
        )
        for method in sorted(METHODS):
            out[method] = build_baseline(
                BaselineConfig.paper(method), RAFD_EXPRESSIONS
            ).num_parameters()
    return out


def format_parameters(count: tuple[int, int]) -> str:
    """(53226560, 1) -> '53.2M x 1', the paper's notation."""
    return f"{count[0] / 1e6:.1f}M x {count[1]}"
