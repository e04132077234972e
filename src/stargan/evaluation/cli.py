"""`stargan evaluate`: train a judge classifier, or evaluate a run and write its report.

    stargan evaluate train-classifier --dataset synthfaces-celeba --image-size 32 \
        --out judges/synth-32.safetensors
    stargan evaluate --run runs/synth-demo [--judge judges/synth-32.safetensors] [--num 500]

``stargan.cli.build_parser`` calls :func:`add_evaluate_parser`; nothing here runs on import.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stargan.config import DataConfig, TrainConfig

if TYPE_CHECKING:
    from stargan.data.labels import LabelLayout

EXIT_USER_ERROR = 2
RUN_JUDGE = "judge.safetensors"
"""`stargan evaluate --run DIR` looks for (and caches) the run's judge at DIR/judge.safetensors."""


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``evaluate`` (and ``evaluate train-classifier``) to the ``stargan`` subcommands.

    Example:
        >>> sub = argparse.ArgumentParser(prog="stargan").add_subparsers(dest="command")
        >>> _ = add_evaluate_parser(sub)
    """
    ev = subparsers.add_parser(
        "evaluate",
        help="evaluate a run (judge accuracy, ground truth, judge-FID) and write its report",
        description="Evaluate the model of a run folder (or a model file) on its dataset's test "
        "split (or --dataset's) and write DIR/results.json and DIR/report.html "
        "(docs/evaluation.md). The judge is --judge, "
        f"else DIR/{RUN_JUDGE}, else one trained now on the train split and cached there.",
    )
    ev.add_argument("--run", metavar="DIR", help="run folder holding model.safetensors")
    ev.add_argument("--model", metavar="FILE", help="a model file instead of a run folder")
    ev.add_argument(
        "--dataset",
        action="append",
        metavar="NAME",
        help="format of the test data (one per dataset of the model), instead of the training "
        "data the model file records",
    )
    ev.add_argument(
        "--out", metavar="DIR", help="folder for the report (default: the run or model's folder)"
    )
    ev.add_argument("--judge", metavar="FILE", help="judge file from `evaluate train-classifier`")
    ev.add_argument("--num", type=int, default=2000, help="test images per dataset (default 2000)")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument(
        "--root", action="append", metavar="DIR", help="dataset root(s) if moved (one per dataset)"
    )
    ev.add_argument("--no-fid", action="store_true", help="skip judge-FID / judge-KID")
    ev.add_argument("--grid", type=int, default=4, metavar="N", help="input rows in the grid")
    ev.add_argument(
        "--judge-epochs", type=int, default=5, help="epochs when a judge must be trained here"
    )
    ev.add_argument("--device", default="cpu")
    ev.set_defaults(func=cmd_evaluate)

    sub = ev.add_subparsers(dest="evaluate_command", metavar="{train-classifier}")
    tc = sub.add_parser(
        "train-classifier",
        help="train the judge classifier on real images",
        description="Train the ResNet-18-style judge on a dataset's train split and report its "
        "held-out error per label (test split, or 10% of train when there is none).",
    )
    src = tc.add_argument_group("data (or --run to reuse a run's datasets)")
    src.add_argument("--dataset", action="append", metavar="NAME", help="format; repeat: joint")
    src.add_argument("--run", metavar="DIR", help="use the datasets of this run's model")
    src.add_argument("--root", action="append", metavar="DIR", help="root(s), one per dataset")
    src.add_argument("--image-size", type=int, help="image side (default: the run's, else 128)")
    src.add_argument("--selected-attrs", nargs="+", metavar="NAME", help="attributes to learn")
    src.add_argument("--num-images", type=int, help="SynthFaces: rendered training images")
    src.add_argument("--test-size", type=int, help="images held out for testing")
    src.add_argument("--split-seed", type=int, help="seed of the train/test split")
    tc.add_argument(
        "--out", metavar="FILE", help="judge file (default judges/NAME-SIZE.safetensors)"
    )
    tc.add_argument("--epochs", type=int, default=10)
    tc.add_argument("--batch-size", type=int, default=64)
    tc.add_argument("--lr", type=float, default=1e-3)
    tc.add_argument("--width", type=int, default=64, help="first-stage channels (ResNet-18: 64)")
    tc.add_argument("--seed", type=int, default=0)
    tc.add_argument(
        "--no-flip",
        action="store_true",
        help="no random mirroring (for labels a mirror changes: digits, text)",
    )
    tc.add_argument("--device", default="cpu")
    tc.set_defaults(func=cmd_train_classifier)
    return ev


def _user_errors(fn: Any) -> Any:
    """Evaluation's own user errors end the command like the other user errors of `stargan`."""

    def run(args: argparse.Namespace) -> int:
        from stargan.evaluation import EvaluationError

        try:
            return fn(args)
        except EvaluationError as e:
            print(f"stargan: error: {e}", file=sys.stderr)
            return EXIT_USER_ERROR

    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


def _with_roots(configs: list[DataConfig], roots: list[str] | None) -> list[DataConfig]:
    from stargan.evaluation import EvaluationError

    if not roots:
        return configs
    if len(roots) != len(configs):
        raise EvaluationError(
            f"give one --root per dataset ({len(configs)}: "
            f"{', '.join(c.name for c in configs)}), got {len(roots)}"
        )
    return [dataclasses.replace(c, root=r) for c, r in zip(configs, roots, strict=True)]


def _run_config(run: str) -> TrainConfig:
    from stargan import checkpoint as ckpt
    from stargan.evaluation import EvaluationError

    model = Path(run) / "model.safetensors"
    if not model.is_file():
        raise EvaluationError(f"no model file {model}: is {run} a finished (or saved) run folder?")
    return ckpt.read_train_config(model)


def _splits(cfg: DataConfig, seed: int) -> tuple[Any, Any]:
    """(train, held-out) of one dataset: its test split, or 10% of train if it has none."""
    from stargan.data.registry import DatasetError, build_dataset
    from stargan.evaluation.classifier import holdout_split

    train = build_dataset(cfg, "train")
    try:
        return train, build_dataset(cfg, "test")
    except DatasetError:  # e.g. RaFD's folder layout with test_size=0
        return holdout_split(train, 0.1, seed)


def _judge_data_configs(args: argparse.Namespace) -> list[DataConfig]:
    from stargan.evaluation import EvaluationError
    from stargan.presets import sized_test_split

    if bool(args.run) == bool(args.dataset):
        raise EvaluationError("give either --dataset NAME (repeatable) or --run DIR")
    if args.run:
        configs = list(_run_config(args.run).data)
        if args.image_size:
            configs = [dataclasses.replace(c, image_size=args.image_size) for c in configs]
    else:
        configs = [DataConfig(name=n, image_size=args.image_size or 128) for n in args.dataset]
    changes = {
        "selected_attrs": tuple(args.selected_attrs) if args.selected_attrs else None,
        "num_images": args.num_images,
        "test_size": args.test_size,
        "split_seed": args.split_seed,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    configs = _with_roots([dataclasses.replace(c, **changes) for c in configs], args.root)
    if args.run or args.test_size is not None:
        return configs
    # Data on disk holds out what training and `evaluate --dataset` hold out (a tenth, at
    # most 2,000), so a small folder works and the judge never trains on the test images.
    return [sized_test_split(c) for c in configs]


@_user_errors
def cmd_train_classifier(args: argparse.Namespace) -> int:
    from stargan.evaluation.classifier import (
        JudgeConfig,
        JudgeTrainConfig,
        save_judge,
        train_classifier,
    )

    configs = _judge_data_configs(args)
    pairs = [_splits(c, args.seed) for c in configs]
    size = configs[0].image_size
    out = Path(args.out or f"judges/{'+'.join(c.name for c in configs)}-{size}.safetensors")
    print(f"training a judge on {', '.join(c.name for c in configs)} at {size} px", file=sys.stderr)
    judge = train_classifier(
        [p[0] for p in pairs],
        JudgeConfig(image_size=size, width=args.width),
        JudgeTrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            flip=not args.no_flip,
            seed=args.seed,
        ),
        val=[p[1] for p in pairs],
        device=args.device,
        on_epoch=lambda e, loss: print(f"epoch {e}: loss {loss:.4f}", file=sys.stderr),
    )
    judge.info["data"] = [dataclasses.asdict(c) for c in configs]
    save_judge(judge, out)
    _print_held_out(judge.info["held_out"])
    print(f"wrote {out}")
    return 0


def _print_held_out(reports: list[dict[str, Any]]) -> None:
    for k, rep in enumerate(reports):
        errors = ", ".join(
            f"{name} {err:.2f}%" if math.isfinite(err) else f"{name} n/a (no test images)"
            for name, err in rep["error"].items()
        )
        print(
            f"held-out error, dataset {k} ({rep['n_images']} images): mean "
            f"{rep['mean_error']:.2f}%; {errors}"
        )


def _resolve_judge(
    args: argparse.Namespace,
    out_dir: Path,
    configs: list[DataConfig],
    layout: LabelLayout,
    seed: int,
) -> Any:
    """--judge, else the judge cached in the output folder, else a shipped judge for the
    model's labels and size, else one trained now on ``configs`` (and cached)."""
    from stargan.evaluation.classifier import (
        JudgeConfig,
        JudgeTrainConfig,
        load_judge,
        save_judge,
        shipped_judge,
        train_classifier,
    )

    path = Path(args.judge) if args.judge else out_dir / RUN_JUDGE
    if args.judge or path.is_file():
        return load_judge(path, args.device), path
    size = configs[0].image_size
    shipped = shipped_judge(layout, size)
    if shipped is not None:
        print(f"judge: {shipped} (shipped with stargan)", file=sys.stderr)
        return load_judge(shipped, args.device), shipped
    print(
        f"no judge given and none at {path}: training one ({args.judge_epochs} epochs, "
        f"{size} px) on the train split; it will be cached there",
        file=sys.stderr,
    )
    pairs = [_splits(c, seed) for c in configs]
    judge = train_classifier(
        [p[0] for p in pairs],
        JudgeConfig(image_size=size, width=32 if size <= 64 else 64),
        JudgeTrainConfig(epochs=args.judge_epochs),
        val=[p[1] for p in pairs],
        device=args.device,
    )
    judge.info["data"] = [dataclasses.asdict(c) for c in configs]
    save_judge(judge, path)
    return judge, path


def _test_data(args: argparse.Namespace, model: Any) -> tuple[list[DataConfig], int]:
    """(the datasets to evaluate the model on, the seed of a judge trained on them): the
    --dataset flags, else the training data the model file records."""
    from stargan import checkpoint as ckpt
    from stargan.evaluation import EvaluationError
    from stargan.presets import sized_test_split

    if not args.dataset:
        fix = "`stargan evaluate` can be told the data: --model FILE --dataset NAME [--root DIR]"
        cfg = ckpt.read_train_config(model.path, fix)
        return _with_roots(list(cfg.data), args.root), cfg.run.seed
    specs = model.layout.specs
    if len(args.dataset) != len(specs):
        raise EvaluationError(
            f"give one --dataset per dataset of the model ({len(specs)}, with the labels "
            f"{[list(s.names) for s in specs]}), got {len(args.dataset)}"
        )
    size = model.config.image_size
    configs = [
        DataConfig(name=name, image_size=size, selected_attrs=spec.names)
        for name, spec in zip(args.dataset, specs, strict=True)
    ]
    # The test split as the custom presets hold it out (the same images for a model of ours).
    return [sized_test_split(c) for c in _with_roots(configs, args.root)], 0


def _check_files(model: Path, judge: str | None) -> None:
    """The model file's and --judge's headers and metadata, checked before torch is imported
    (over a second), with the messages their loaders would give (as stargan.cli does)."""
    from stargan import checkpoint as ckpt
    from stargan.evaluation import JUDGE_FORMAT

    ckpt.parse_model_metadata(model, ckpt.read_metadata(model, ckpt.MODEL_FORMAT))
    if judge is not None:
        ckpt.read_metadata(Path(judge), JUDGE_FORMAT)


@_user_errors
def cmd_evaluate(args: argparse.Namespace) -> int:
    from stargan.evaluation import EvaluationError

    if bool(args.run) == bool(args.model):
        raise EvaluationError(
            "give --run DIR or --model FILE (or the train-classifier subcommand); for a model "
            "file that records no training data, also --dataset NAME [--root DIR]"
        )
    model_path = Path(args.model) if args.model else Path(args.run) / "model.safetensors"
    if args.run and not model_path.is_file():
        raise EvaluationError(
            f"no model file {model_path}: is {args.run} a finished (or saved) run folder?"
        )
    _check_files(model_path, args.judge)
    from stargan import inference
    from stargan.data.registry import DatasetError, build_dataset
    from stargan.evaluation.headline import headline
    from stargan.evaluation.metrics import evaluate_model
    from stargan.evaluation.report import translation_grid, write_report

    run_dir = Path(args.out or args.run or model_path.parent)
    model = inference.load(model_path, args.device)
    configs, seed = _test_data(args, model)
    run_dir.mkdir(parents=True, exist_ok=True)  # --out may name a new folder
    judge, judge_path = _resolve_judge(args, run_dir, configs, model.layout, seed)
    evaluations, grids, skipped = [], [], {}
    for k, dcfg in enumerate(configs):
        try:
            test = build_dataset(dcfg, "test")
        except DatasetError as e:
            skipped[str(k)] = str(e)
            print(f"skipping dataset {k} ({dcfg.name}): {e}", file=sys.stderr)
            continue
        print(
            f"evaluating dataset {k} ({dcfg.name}, {min(args.num, len(test))} images)",
            file=sys.stderr,
        )
        ev = evaluate_model(
            model,
            test,
            judge,
            source=k,
            num_images=args.num,
            batch_size=args.batch_size,
            fid=not args.no_fid,
        )
        ev["source"]["name"] = dcfg.name
        evaluations.append(ev)
        if args.grid > 0:
            grid = translation_grid(
                model.generator, model.layout, test, source=k, n=args.grid, device=model.device
            )
            grid.title = f"dataset {k} ({dcfg.name})"
            grids.append(grid)
    if not evaluations:
        raise EvaluationError(f"no dataset of {model_path} has a test split to evaluate on")
    results = {
        "model": {"path": str(model.path), "step": model.step, "labels": model.layout.to_dict()},
        "judge": {
            "path": str(judge_path),
            "config": dataclasses.asdict(judge.cfg),
            "held_out": judge.info.get("held_out"),
        },
        "evaluations": evaluations,
        "skipped": skipped,
    }
    path = write_report(run_dir, results, grids=grids, title=f"StarGAN evaluation: {run_dir}")
    print(f"wrote {run_dir / 'results.json'} and {path}")
    print(headline(results))  # last: what the run achieved, beside doing nothing
    return 0
