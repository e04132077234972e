"""The `stargan` command: a thin shell that maps flags onto config objects and library calls."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stargan.config import (
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
    field_docs,
)

EXIT_USER_ERROR = 2
EXIT_STOPPED = 75  # EX_TEMPFAIL: interrupted, a checkpoint was written, rerun to resume.

# Config sections whose fields become train flags; data flags apply to every dataset
# (per-dataset values in joint training go through --set data.K.FIELD=VALUE).
_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "data": DataConfig,
}
# Flag names that differ from the field name (the field name alone would be ambiguous).
_RENAMED = {
    ("data", "name"): "dataset",
    ("run", "out_dir"): "out",
    ("data", "image_size"): None,
    ("model", "c_dim"): None,
    ("model", "n_classes"): None,
}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    for section, cls in _SECTIONS.items():
        group = p.add_argument_group(f"{section} options")
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flag = _RENAMED.get((section, f.name), f.name)
            if flag is None:
                continue  # derived from other settings
            tp, kwargs = hints[f.name], {"help": docs.get(f.name, ""), "default": None}
            dest = f"cfg:{section}:{f.name}"
            if tp is bool:
                group.add_argument(
                    f"--{flag.replace('_', '-')}",
                    dest=dest,
                    action=argparse.BooleanOptionalAction,
                    **kwargs,
                )
                continue
            if typing.get_origin(tp) is tuple:
                kwargs["nargs"] = "+"
            elif typing.get_origin(tp) is typing.Literal:
                kwargs["choices"] = typing.get_args(tp)
            else:
                inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
                kwargs["type"] = inner[0]
            group.add_argument(
                f"--{flag.replace('_', '-')}", dest=dest, metavar=flag.upper(), **kwargs
            )


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset, then --config file, then flags, then --set overrides (later wins)."""
    from stargan.presets import get_preset

    try:
        cfg = get_preset(args.preset)
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from None
    d = cfg.to_dict()
    if args.config:
        try:
            d = TrainConfig.from_dict(json.loads(Path(args.config).read_text())).to_dict()
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read config file {args.config}: {e}") from None
    for key, value in vars(args).items():
        if not key.startswith("cfg:") or value is None:
            continue
        _, section, name = key.split(":")
        if section == "data":
            for data in d["data"]:
                data[name] = list(value) if isinstance(value, list) else value
        else:
            d[section][name] = value
    if args.image_size is not None:
        d["model"]["image_size"] = args.image_size
        for data in d["data"]:
            data["image_size"] = args.image_size
    for item in args.set or []:
        _apply_override(d, item)
    return TrainConfig.from_dict(d)


def _apply_override(d: dict[str, Any], item: str) -> None:
    """--set data.1.root=/x: a dotted path into the config and a JSON (or bare string) value."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.g_lr=2e-4), got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    *parents, last = key.split(".")
    node: Any = d
    for part in parents:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError):
            raise ConfigError(f"--set {item!r}: no config entry {key!r}") from None
    if isinstance(node, list):
        raise ConfigError(f"--set {item!r}: {key!r} names a list, not a field")
    if last not in node:
        raise ConfigError(f"--set {item!r}: unknown field {last!r}; valid: {sorted(node)}")
    node[last] = value


def _parse_assignments(items: Sequence[str], what: str) -> dict[str, float]:
    """['Blond_Hair=1,Male=0'] -> {'Blond_Hair': 1.0, 'Male': 0.0}; a bare name means 1."""
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, item.split(",")):
            name, _, value = part.partition("=")
            try:
                out[name.strip()] = float(value) if value else 1.0
            except ValueError:
                raise ConfigError(
                    f"{what} {part!r}: value must be a number, e.g. {name}=1"
                ) from None
    return out


# Commands.


def cmd_train(args: argparse.Namespace) -> int:
    from stargan.training.logging import ProgressBar
    from stargan.training.trainer import Trainer

    cfg = config_from_args(args)
    trainer = Trainer(
        cfg,
        callbacks=[] if args.quiet else [ProgressBar()],
        resume="auto" if args.resume else "never",
        overwrite=args.overwrite,
    )
    if args.dry_run:
        print(trainer.cfg.to_json())
        return 0
    if getattr(trainer, "resumed_from", None):
        print(f"resuming from {trainer.resumed_from} (step {trainer.step})", file=sys.stderr)
        for skipped in trainer.skipped_checkpoints:
            print(f"skipped invalid checkpoint: {skipped}", file=sys.stderr)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: trainer.request_stop())
    status = trainer.fit()
    out = Path(cfg.run.out_dir)
    if status == "stopped":
        print(
            f"stopped at step {trainer.step}; checkpoint saved. Run the same command with "
            f"--resume to continue.",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    print(
        f"done: {trainer.step} iterations. Model: {out / 'model.safetensors'}; samples: "
        f"{out / 'samples'}; metrics: {out / 'metrics.jsonl'}"
    )
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from stargan.translate import translate_files

    targets = [_parse_assignments([t], "--target") for t in args.target or []]
    source = _parse_assignments(args.source or [], "--source")
    written = translate_files(
        args.model, args.input, args.out, targets, source=source, grid=args.grid, device=args.device
    )
    print(f"wrote {len(written)} image(s) to {args.out}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from stargan import inference
    from stargan.data.io import save_image
    from stargan.data.registry import build_dataset

    model = inference.load(args.model, args.device)
    train_cfg = _train_config_of(args.model)
    images, labels = [], []
    for k, dcfg in enumerate(train_cfg.data):
        ds = build_dataset(dataclasses.replace(dcfg, root=args.root or dcfg.root), args.split)
        if ds.label_spec != model.layout.specs[k]:
            raise ConfigError(
                f"dataset labels {ds.label_spec} differ from the model's {model.layout.specs[k]}"
            )
        items = [ds[i] for i in range(min(args.num, len(ds)))]
        images.append(torch.stack([x for x, _ in items]))
        labels.append(torch.stack([y for _, y in items]))
    grid = inference.sample_grid(model.generator, images, labels, model.layout, model.device)
    save_image(grid, Path(args.out))
    print(f"wrote {args.out}")
    return 0


def _train_config_of(model_path: str) -> TrainConfig:
    from stargan.training import checkpoint as ckpt

    _, meta = ckpt.load_tensors(Path(model_path), ckpt.MODEL_FORMAT)
    if "train_config" not in meta:
        raise ConfigError(f"{model_path} records no training config; `sample` needs one")
    return TrainConfig.from_dict(json.loads(meta["train_config"]))


def cmd_presets(args: argparse.Namespace) -> int:
    from stargan.presets import preset_names

    for name, desc in preset_names().items():
        print(f"{name:14s} {desc}")
    return 0


def cmd_data_formats(args: argparse.Namespace) -> int:
    from stargan.data import dataset_names

    print("\n".join(dataset_names()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="stargan",
        description="StarGAN: multi-domain image-to-image translation (Choi et al., CVPR 2018).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train",
        help="train a model",
        description="Train StarGAN. Settings "
        "come from a preset, then --config, then flags, then --set.",
    )
    t.add_argument(
        "--preset",
        default="synth-demo",
        help="starting configuration (`stargan presets` lists them; default: synth-demo)",
    )
    t.add_argument("--config", help="JSON config file (as saved in a run's config.json)")
    t.add_argument("--image-size", type=int, help="image side for the model and every dataset")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any field by dotted path, e.g. --set data.1.root=data/RaFD",
    )
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest valid checkpoint, if any",
    )
    t.add_argument("--overwrite", action="store_true", help="discard a run already in --out")
    t.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_flags(t)
    t.set_defaults(func=cmd_train)

    tr = sub.add_parser("translate", help="translate image files to target labels")
    tr.add_argument("--model", required=True, help="model file (model.safetensors)")
    tr.add_argument("--input", required=True, help="an image file or a folder of images")
    tr.add_argument("--out", required=True, help="output folder")
    tr.add_argument(
        "--target",
        action="append",
        metavar="NAME=V[,NAME=V]",
        help="one target per flag (repeatable), e.g. --target Blond_Hair=1,Male=0; "
        "default: one target per label, as sample grids",
    )
    tr.add_argument(
        "--source",
        action="append",
        metavar="NAME=V",
        help="the inputs' current labels (binary labels not given are taken as 0)",
    )
    tr.add_argument("--grid", action="store_true", help="also write grid.png (inputs x targets)")
    tr.add_argument("--device", default="cpu")
    tr.set_defaults(func=cmd_translate)

    s = sub.add_parser("sample", help="write a sample grid for a model on its dataset")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True, help="PNG file to write")
    s.add_argument("--split", default="test", choices=["train", "test"])
    s.add_argument("--root", help="dataset root, if it moved since training")
    s.add_argument("--num", type=int, default=8, help="images per dataset")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_sample)

    pr = sub.add_parser("presets", help="list the named configurations")
    pr.set_defaults(func=cmd_presets)

    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    df = dsub.add_parser("formats", help="list the registered dataset formats")
    df.set_defaults(func=cmd_data_formats)

    from stargan.evaluation.cli import add_evaluate_parser

    add_evaluate_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from stargan.data.labels import LabelError
    from stargan.data.registry import DatasetError
    from stargan.training.checkpoint import CheckpointError
    from stargan.training.trainer import RunFolderError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, LabelError, DatasetError, CheckpointError, RunFolderError) as e:
        print(f"stargan: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
