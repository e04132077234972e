"""`stargan baselines`: train the paper's baselines, or print their parameter counts.

    stargan baselines train --method cyclegan|diat|icgan --seed 0 --out runs/t3/cyclegan-s0 \
        [--resume]
    stargan baselines params

``stargan.cli.build_parser`` calls :func:`add_baselines_parser`; nothing heavy runs on import.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

EXIT_USER_ERROR = 2
EXIT_STOPPED = 75  # EX_TEMPFAIL, as `stargan train`: a checkpoint was written, rerun to resume.
METHOD_NAMES = ("cyclegan", "diat", "icgan")


def add_baselines_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``baselines train`` and ``baselines params`` to the ``stargan`` subcommands."""
    bp = subparsers.add_parser(
        "baselines",
        help="the paper's baselines (CycleGAN, DIAT, IcGAN) on the same data (docs/baselines.md)",
    )
    sub = bp.add_subparsers(dest="baselines_command", required=True)
    tr = sub.add_parser(
        "train",
        help="train one baseline on RaFD-like SynthFaces",
        description="Train a baseline at the scale of the synth-rafd StarGAN preset (widths 32, "
        "3 residual blocks, 5 D convs) and write OUT/model.safetensors, config.json, "
        "metrics.jsonl and checkpoints/ (DIAT also OUT/identity.safetensors, its identity "
        "network). Killed or stopped (Ctrl-C), the same command with --resume continues.",
    )
    tr.add_argument("--method", required=True, choices=METHOD_NAMES)
    tr.add_argument("--out", required=True, metavar="DIR", help="run folder to write")
    tr.add_argument("--image-size", type=int, default=32, help="image side (default 32)")
    tr.add_argument(
        "--iters",
        type=int,
        help="steps per stage: per pair (CycleGAN), per direction (DIAT), per network (IcGAN); "
        "default: as many as the synth-rafd StarGAN preset trains (1500)",
    )
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--batch-size", type=int, help="default 16")
    tr.add_argument("--conv-dim", type=int, help="network width (default 32)")
    tr.add_argument("--g-repeat-num", type=int, help="CycleGAN/DIAT residual blocks (default 3)")
    tr.add_argument("--d-repeat-num", type=int, help="CycleGAN/DIAT D convs (default 5)")
    tr.add_argument("--num-images", type=int, help="SynthFaces training images (default 4000)")
    tr.add_argument("--lr", type=float, help="Adam learning rate (default 2e-4)")
    tr.add_argument("--identity-net", metavar="FILE", help="DIAT: a trained identity network")
    tr.add_argument("--identity-epochs", type=int, help="DIAT: epochs of its identity network")
    tr.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="any other config field, e.g. --set lambda_cyc=5 (docs/baselines.md lists them)",
    )
    tr.add_argument("--device", default="cpu")
    tr.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (0: default)")
    tr.add_argument(
        "--save-every",
        type=int,
        default=500,
        metavar="N",
        help="checkpoint the training state every N steps (counted over all stages; default "
        "500; 0: only when stopped and at the end)",
    )
    tr.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its newest valid checkpoint, if any",
    )
    tr.add_argument("--overwrite", action="store_true", help="discard a run already in --out")
    tr.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    tr.add_argument("--quiet", action="store_true", help="no progress lines")
    tr.set_defaults(func=cmd_baselines_train)
    pa = sub.add_parser(
        "params",
        help="parameter counts at the paper's scale (128 px) beside its Table 3",
    )
    pa.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pa.set_defaults(func=cmd_baselines_params)
    return bp


def config_from_args(args: argparse.Namespace) -> Any:
    from stargan.baselines import BaselineConfig
    from stargan.config import ConfigError
    from stargan.files import UnsafeFileError, parse_json

    flags = {
        "iters": args.iters,
        "batch_size": args.batch_size,
        "conv_dim": args.conv_dim,
        "g_repeat_num": args.g_repeat_num,
        "d_repeat_num": args.d_repeat_num,
        "lr": args.lr,
        "identity_epochs": args.identity_epochs,
    }
    cfg = BaselineConfig.synth(
        args.method,
        args.image_size,
        seed=args.seed,
        **{k: v for k, v in flags.items() if v is not None},
    )
    d = cfg.to_dict()
    if args.num_images is not None:
        d["data"]["num_images"] = args.num_images
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or key not in d or key in ("method", "data"):
            raise ConfigError(
                f"--set expects FIELD=VALUE with a config field other than "
                f"method/data, got {item!r}; fields: {sorted(d)}"
            )
        try:
            d[key] = parse_json(raw, "--set value")
        except UnsafeFileError:
            d[key] = raw
    return BaselineConfig.from_dict(d)


def cmd_baselines_train(args: argparse.Namespace) -> int:
    import torch

    from stargan.baselines import BaselineError, BaselineTrainer
    from stargan.checkpoint import CheckpointError
    from stargan.config import ConfigError
    from stargan.data.registry import DatasetError
    from stargan.training.runfolder import RunFolderError

    try:
        cfg = config_from_args(args)
        if args.dry_run:
            print(cfg.to_json())
            return 0
        if args.num_threads:
            torch.set_num_threads(args.num_threads)
        identity = None
        if args.identity_net:
            from stargan.evaluation.classifier import load_judge

            identity = load_judge(args.identity_net, args.device)

        def show(stage: str, step: int, metrics: dict[str, float]) -> None:
            terms = " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            print(f"{cfg.method} {stage} {step}/{cfg.iters} {terms}", flush=True)

        trainer = BaselineTrainer(
            cfg,
            device=args.device,
            out_dir=args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            save_every=args.save_every,
            identity_net=identity,
            on_log=None if args.quiet else show,
        )
        if trainer.resumed_from is not None:
            print(f"resuming from {trainer.resumed_from} (step {trainer.step})", file=sys.stderr)
        for skipped in trainer.skipped_checkpoints:
            print(f"skipped invalid checkpoint: {skipped}", file=sys.stderr)
        for tmp in trainer.removed_temporaries:
            print(f"removed {tmp}, left by an interrupted write", file=sys.stderr)
        # Ctrl-C or a TERM ends the current step and writes a checkpoint.
        signals = (signal.SIGINT, signal.SIGTERM)
        before = [signal.signal(sig, lambda *_: trainer.request_stop()) for sig in signals]
        try:
            status = trainer.fit()
        finally:
            for sig, handler in zip(signals, before, strict=True):
                signal.signal(sig, handler)
    except (
        BaselineError,
        ConfigError,
        DatasetError,
        CheckpointError,
        RunFolderError,
        FileNotFoundError,
    ) as e:
        print(f"stargan: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    if status == "stopped":
        print(
            f"stopped at step {trainer.step} of {trainer.total}; checkpoint saved. Run the same "
            f"command with --resume to continue.",
            file=sys.stderr,
        )
        return EXIT_STOPPED
    print(f"wrote {Path(args.out) / 'model.safetensors'}")
    return 0


def cmd_baselines_params(args: argparse.Namespace) -> int:
    from stargan.baselines import PAPER_TABLE3, format_parameters, paper_scale_parameters

    ours = paper_scale_parameters()
    rows = {
        name: {
            "ours": list(count),
            "ours_text": format_parameters(count),
            "paper_text": f"{PAPER_TABLE3[name]['params_m']}M x {PAPER_TABLE3[name]['models']}",
        }
        for name, count in ours.items()
    }
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'method':10s} {'ours (128 px)':>16s} {'paper Table 3':>14s} {'exact count':>12s}")
    for name, r in rows.items():
        print(f"{name:10s} {r['ours_text']:>16s} {r['paper_text']:>14s} {r['ours'][0]:>12,d}")
    return 0
