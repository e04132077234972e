"""The `stargan` command: a thin shell that maps flags onto config objects and library calls."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import signal
import sys
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stargan.config import (
    BACKENDS,
    EXPORT_DTYPES,
    EXPORT_FORMATS,
    ONNX_OPSET,
    SPEED_PROFILES,
    ConfigError,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SpeedConfig,
    TrainConfig,
    auto_speed,
    field_docs,
    runs_on_onnx,
)
from stargan.files import UnsafeFileError, describe_error, parse_json, read_text

Subparsers = Any  # argparse._SubParsersAction, which argparse does not export
MAX_CONFIG_BYTES = 1 << 20  # a config is a few KB; nothing larger is read
EXIT_USER_ERROR = 2  # a bad flag, file or value (also a NaN/Inf stop): fix it, then rerun
EXIT_STOPPED = 75  # EX_TEMPFAIL: interrupted, a checkpoint was written, rerun to resume.

# Config sections whose fields become train flags; data flags apply to every dataset
# (per-dataset values in joint training go through --set data.K.FIELD=VALUE).
_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "data": DataConfig,
    "speed": SpeedConfig,
}
# Flag names that differ from the field name (the field name alone would be ambiguous).
_RENAMED = {
    ("data", "name"): "dataset",
    ("run", "out_dir"): "out",
    ("data", "image_size"): None,
    ("model", "image_size"): None,
    ("model", "c_dim"): None,
    ("model", "n_classes"): None,
}


_SECTION_HELP = {
    "speed": "how G and D are computed, never what they are (stargan.accel; measured in "
    "docs/performance.md); --speed NAME sets several",
}


class _WideHelp(argparse.HelpFormatter):
    """Help laid out 100 columns wide, flags in a 32-column margin: one line per flag."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100, max_help_position=32)


def _first_sentence(text: str) -> str:
    """A field's docstring cut to its first sentence: --help says what a flag does; the
    config's docstrings and the docs say the rest."""
    head = text.split(". ", 1)[0].rstrip(".")
    if len(head) <= 95:
        return head
    cuts = [i for i in (head.find(sep, 20) for sep in (": ", "; ", " (", ", so")) if i > 0]
    return head[: min(cuts)] if cuts else head


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    for section, cls in _SECTIONS.items():
        group = p.add_argument_group(f"{section} options", _SECTION_HELP.get(section))
        docs, hints = field_docs(cls), typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            flag = _RENAMED.get((section, f.name), f.name)
            if flag is None:
                continue  # derived from other settings
            # argparse formats help with %: a docstring's "10 % of" must reach it as "%%".
            help_text = _first_sentence(docs.get(f.name, "")).replace("%", "%%")
            tp, kwargs = hints[f.name], {"help": help_text, "default": None}
            dest = f"cfg:{section}:{f.name}"
            name = f"--{flag.replace('_', '-')}"
            if tp is bool:
                action = argparse.BooleanOptionalAction
                group.add_argument(name, dest=dest, action=action, **kwargs)
                continue
            if typing.get_origin(tp) is tuple:
                kwargs["nargs"] = "+"
            elif typing.get_origin(tp) is typing.Literal:
                kwargs["choices"] = typing.get_args(tp)
            else:
                inner = [a for a in typing.get_args(tp) if a is not type(None)] or [tp]
                kwargs["type"] = inner[0]
            metavar = None if "choices" in kwargs else _METAVARS.get(kwargs.get("type"), "X")
            group.add_argument(name, dest=dest, metavar=metavar, **kwargs)


_METAVARS = {int: "N", float: "X", str: "TEXT"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Preset, then --config file, then flags, then --set overrides (later wins). The custom
    presets then fit the schedule to --num-iters and the test split to the data, wherever the
    flags and --set left those fields unset."""
    from stargan import presets

    name = args.preset or default_preset(args)
    try:
        cfg = presets.get_preset(name)
    except KeyError as e:
        raise ConfigError(str(e.args[0])) from None
    d = cfg.to_dict()
    if args.speed:
        d["speed"] = dataclasses.asdict(SPEED_PROFILES[args.speed])
    auto = not args.speed and cfg.speed == SpeedConfig()
    if auto:  # the preset leaves it to the machine: flags go on top
        size = args.image_size or cfg.model.image_size
        d["speed"] = dataclasses.asdict(SPEED_PROFILES[auto_speed(size, _device_type(args, cfg))])
    if args.config:
        try:
            text = read_text(args.config, MAX_CONFIG_BYTES, "config file")  # a BOM is harmless
            d = TrainConfig.from_dict(parse_json(text, "config file")).to_dict()
        except (OSError, UnsafeFileError) as e:
            reason = describe_error(e)
            raise ConfigError(f"cannot read config file {args.config}: {reason}") from None
    explicit = set()  # "section.field" given by a flag or --set
    for key, value in vars(args).items():
        if not key.startswith("cfg:") or value is None:
            continue
        _, section, field = key.split(":")
        explicit.add(f"{section}.{field}")
        if section == "data":
            for data in d["data"]:
                data[field] = list(value) if isinstance(value, list) else value
        else:
            d[section][field] = value
    if auto and d["speed"]["precision"] == "bf16" and "speed.winograd" not in explicit:
        d["speed"]["winograd"] = False  # an fp32 kernel: bf16 runs G's convs in bf16
    if args.image_size is not None:
        d["model"]["image_size"] = args.image_size
        for data in d["data"]:
            data["image_size"] = args.image_size
    for item in args.set or []:
        _apply_override(d, item)
        explicit.add(".".join(p for p in item.split("=", 1)[0].split(".") if not p.isdigit()))
    if not presets.is_custom(name) or args.config:
        return TrainConfig.from_dict(d)
    _fit_schedule(d, explicit)
    return presets.fit_test_split(TrainConfig.from_dict(d), fixed="data.test_size" in explicit)


def _device_type(args: argparse.Namespace, cfg: TrainConfig) -> str:
    """'cpu' or 'cuda': where the run will train (--device, else the preset's; 'auto' asks
    torch, as the trainer will)."""
    name = getattr(args, "cfg:run:device", None) or cfg.run.device
    if name == "auto":
        import torch

        name = "cuda" if torch.cuda.is_available() else "cpu"
    return name.split(":")[0]


def default_preset(args: argparse.Namespace) -> str:
    """synth-demo, or the custom preset for --image-size when --root or a --dataset other than
    SynthFaces names the user's own data."""
    from stargan.presets import custom_preset_for

    dataset, root = getattr(args, "cfg:data:name"), getattr(args, "cfg:data:root")
    if root is None and (dataset is None or dataset.startswith("synthfaces")):
        return "synth-demo"
    return custom_preset_for(args.image_size)


def _fit_schedule(d: dict[str, Any], explicit: set[str]) -> None:
    """The custom presets' schedule for the config's num_iters, field by field where unset."""
    from stargan.presets import custom_schedule

    num_iters = d["optim"].get("num_iters")
    if not isinstance(num_iters, int) or isinstance(num_iters, bool) or num_iters < 1:
        return  # the config's own check reports it
    schedule = custom_schedule(num_iters, judge=d["run"].get("eval_judge") is not None)
    for section, values in schedule.items():
        for key, value in values.items():
            if f"{section}.{key}" not in explicit:
                d[section][key] = value


def _apply_override(d: dict[str, Any], item: str) -> None:
    """--set data.1.root=/x: a dotted path into the config and a JSON (or bare string) value."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.g_lr=2e-4), got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = parse_json(raw, "--set value")
    except UnsafeFileError:
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


# Commands.


def check_model_file(path: str | Path | None, backend: str = "torch") -> None:
    """Refuse a bad model file by its header and metadata alone, before a command imports
    torch (over a second). ``inference.load`` makes these checks first (``read_metadata``
    reads the header as ``load_tensors`` does; ``parse_model_metadata`` is the same), so the
    file gets the same message, only sooner; checks that need its tensors (checksum, shapes,
    NaN) stay there. None (the packaged model) and files for ONNX Runtime pass.
    """
    from stargan import checkpoint as ckpt

    if path is None or runs_on_onnx(path, backend):
        return
    ckpt.parse_model_metadata(Path(path), ckpt.read_metadata(Path(path), ckpt.MODEL_FORMAT))


def cmd_train(args: argparse.Namespace) -> int:
    from stargan.training import distributed

    cfg = config_from_args(args)
    if args.preset is None and args.config is None and default_preset(args) != "synth-demo":
        print(
            f"preset: {default_preset(args)} (your own data; --preset names another)",
            file=sys.stderr,
        )
    # Under torchrun each worker joins the process group (docs/distributed.md); else a no-op.
    ctx = distributed.init_from_env(cfg.run.dist_backend)
    try:
        return _train(args, cfg, ctx.is_main)
    finally:
        distributed.shutdown()


def _train(args: argparse.Namespace, cfg: TrainConfig, is_main: bool) -> int:
    from stargan.training.logging import ProgressBar
    from stargan.training.trainer import Trainer, periodic_evaluation, resolve

    if args.dry_run:  # build what the run needs, but never touch the run folder
        resolved, _, layout = resolve(cfg)
        if cfg.run.eval_every:
            periodic_evaluation(resolved, layout, "cpu")
        if is_main:
            print(resolved.to_json())
        return 0
    trainer = Trainer(
        cfg,
        callbacks=[] if args.quiet else [ProgressBar()],
        resume="auto" if args.resume else "never",
        overwrite=args.overwrite,
    )
    if getattr(trainer, "resumed_from", None) and is_main:
        print(f"resuming from {trainer.resumed_from} (step {trainer.step})", file=sys.stderr)
        if trainer.resume_changes:  # e.g. a longer --num-iters: the schedule follows it
            print(
                "resuming with changed settings: " + ", ".join(trainer.resume_changes),
                file=sys.stderr,
            )
        for skipped in trainer.skipped_checkpoints:
            print(f"skipped invalid checkpoint: {skipped}", file=sys.stderr)
    for tmp in trainer.removed_temporaries:
        print(f"removed {tmp}, left by an interrupted write", file=sys.stderr)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: trainer.request_stop())
    status = trainer.fit()
    out = Path(cfg.run.out_dir)
    if status == "stopped" and is_main:
        print(
            f"stopped at step {trainer.step}; checkpoint saved. Run the same command with "
            f"--resume to continue.",
            file=sys.stderr,
        )
    if status == "stopped":
        return EXIT_STOPPED
    if not is_main:
        return 0
    print(
        f"done: {trainer.step} iterations. Model: {out / 'model.safetensors'}; samples: "
        f"{out / 'samples'}; metrics: {out / 'metrics.jsonl'}"
    )
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    import math

    from stargan.config import MAX_IMAGE_SIZE

    # Checked before the model loads; beyond these bounds a value would only allocate.
    if args.size is not None and not 1 <= args.size <= MAX_IMAGE_SIZE:
        raise ConfigError(
            f"--size must be a positive number of pixels, at most {MAX_IMAGE_SIZE} (the largest "
            f"model side), got {args.size}"
        )
    if args.strip and args.steps > 64:
        raise ConfigError(f"--steps must be at most 64 images in a strip, got {args.steps}")
    if not all(math.isfinite(v) for v in args.range):
        raise ConfigError(f"--range must be two finite intensities, got {list(args.range)}")
    check_model_file(args.model, args.backend)
    from stargan import inference

    model = inference.load(args.model, args.device, args.backend, args.channels_last)
    targets = [inference.parse_target([t], model.layout, "--target") for t in args.target or []]
    if args.set:
        targets.append(inference.parse_target(args.set, model.layout, "--set"))
    strip = None
    if args.strip:
        start, stop = args.range
        strip = inference.Strip.linear(
            inference.parse_target([args.strip], model.layout, "--strip"), args.steps, start, stop
        )
    report = inference.translate_files(
        model,
        args.input,
        args.out,
        targets,
        source=inference.parse_target(args.source or [], model.layout, "--source") or None,
        grid=args.grid,
        strip=strip,
        face_crop=args.face_crop,
        fmt=args.format,
        size=args.size,
    )
    _print_translate_report(report, args)
    if args.model is None:  # after the outputs: an error above stays one line
        print(inference.PACKAGED_NOTE, file=sys.stderr)  # out of its domain on photos
    return 0


def _print_translate_report(report: Any, args: argparse.Namespace) -> None:
    """Each image's source labels (with --quiet, one count per label), what was left out."""
    from collections import Counter

    from stargan.data.io import IMAGE_EXTENSIONS

    how = "inferred by the model's classifier" if report.inferred else "given"
    if report.inferred and args.source:
        how += ", --source overriding"
    shown = {
        name: [k for k, v in labels.items() if v >= 0.5] or ["none"]
        for name, labels in report.sources.items()
    }
    if args.quiet and shown:
        counts = Counter(label for labels in shown.values() for label in labels)
        summary = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        print(f"source labels ({how}) of {len(shown)} image(s): {summary}")
    elif not args.quiet:
        for name, labels in shown.items():
            print(f"{name}: source labels ({how}): {', '.join(labels)}")
    if report.ignored:
        names = ", ".join(p.name for p in report.ignored[:5])
        more = f" and {len(report.ignored) - 5} more" if len(report.ignored) > 5 else ""
        print(
            f"skipped {len(report.ignored)} file(s) that are not images by their extension "
            f"({names}{more}; images end in {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    if report.no_face:
        names = ", ".join(str(p) for p in report.no_face)
        print(
            f"skipped {len(report.no_face)} photo(s) without exactly one face for "
            f"--face-crop: {names}"
        )
    print(f"wrote {len(report.written)} image(s) to {args.out}")


def _add_channels_last(p: argparse.ArgumentParser) -> None:
    """--channels-last of the commands that translate (translate, serve)."""
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="torch backend: G in NHWC memory order (the same outputs; default: on for CPU "
        "models of 128 px and larger, where it is faster)",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    import math

    from stargan import inference
    from stargan.extras import require
    from stargan.web import Limits, create_app

    require("uvicorn", extra="web", purpose="the web demo (stargan serve)")
    from stargan.web.server import listen, serve

    # Checked before the model loads, so that a typo is reported at once.
    checks = {
        "--port": (args.port, 1 <= args.port <= 65535, "a port number, 1-65535"),
        "--max-upload-mb": (
            args.max_upload_mb,
            1 <= args.max_upload_mb * 2**20 < math.inf,
            "a positive, finite number of MiB",
        ),
        "--max-pixels": (args.max_pixels, args.max_pixels >= 1, "1 or more"),
        "--workers": (args.workers, args.workers >= 1, "1 or more"),
        "--queue": (args.queue, args.queue >= 0, "0 or more"),
        "--timeout": (
            args.timeout,
            0 < args.timeout < math.inf,
            "a positive, finite number of seconds",
        ),
    }
    for flag, (value, ok, expected) in checks.items():
        if not ok:
            raise ConfigError(f"stargan serve {flag} must be {expected}, got {value}")
    limits = Limits(
        max_body_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        workers=args.workers,
        queue=args.queue,
        timeout_s=args.timeout,
    )
    model = inference.load(args.model, args.device, channels_last=args.channels_last)
    sock = listen(args.host, args.port)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}, reachable beyond this machine; the demo has no "
            f"authentication",
            file=sys.stderr,
        )
    print(f"serving {model.path} on http://{args.host}:{args.port}/ (Ctrl-C stops)")
    if args.model is None:
        print(inference.PACKAGED_NOTE, file=sys.stderr)  # the page says it too
    serve(create_app(model, limits=limits), sock)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_model_file(args.model)
    from stargan.export import export_model

    out = export_model(
        args.model,
        args.out,
        args.format,
        opset=args.opset,
        dtype=args.dtype,
        discriminator=not args.no_discriminator,
    )
    print(f"wrote {out}; translate with: stargan translate --model {out} --input IMAGES --out DIR")
    return 0


def cmd_import_official(args: argparse.Namespace) -> int:
    from stargan.official import import_official

    out = import_official(
        args.checkpoint,
        args.out,
        attrs=args.attrs or (),
        classes=args.classes or (),
        image_size=args.image_size,
        discriminator=args.discriminator,
    )
    print(f"wrote {out}; translate with: stargan translate --model {out} --input IMAGES --out DIR")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    check_model_file(args.model)
    import torch

    from stargan import checkpoint as ckpt
    from stargan import inference
    from stargan.data.grid import sample_grid, spread_indices
    from stargan.data.io import save_image
    from stargan.data.registry import build_dataset

    model = inference.load(args.model, args.device)
    train_cfg = ckpt.read_train_config(Path(args.model))
    images, labels = [], []
    for k, dcfg in enumerate(train_cfg.data):
        ds = build_dataset(dataclasses.replace(dcfg, root=args.root or dcfg.root), args.split)
        if ds.label_spec != model.layout.specs[k]:
            raise ConfigError(
                f"dataset labels {ds.label_spec} differ from the model's {model.layout.specs[k]}"
            )
        items = [ds[i] for i in spread_indices(ds, args.num)]  # every class, not the first
        images.append(torch.stack([x for x, _ in items]))
        labels.append(torch.stack([y for _, y in items]))
    grid = sample_grid(model.generator, images, labels, model.layout, model.device, titled=True)
    save_image(grid, Path(args.out))
    print(f"wrote {args.out}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from stargan.presets import preset_names

    for name, desc in preset_names().items():
        print(f"{name:14s} {desc}")
    return 0


def cmd_data_formats(args: argparse.Namespace) -> int:
    from stargan.data import dataset_names

    print("\n".join(dataset_names()))
    return 0


def cmd_data_check(args: argparse.Namespace) -> int:
    import contextlib
    import warnings

    from stargan.data.check import DATA_ERRORS, check_dataset, format_report
    from stargan.presets import sized_test_split

    cfg = DataConfig(
        name=args.format,
        root=args.root,
        image_size=args.image_size,
        crop_size=args.crop_size,
        selected_attrs=tuple(args.selected_attrs or ()),
        test_size=args.test_size or 0,
    )
    if args.test_size is None:  # a tenth of the data, as the custom presets hold out
        with warnings.catch_warnings(), contextlib.suppress(*DATA_ERRORS):
            warnings.simplefilter("ignore")  # check_dataset reports every problem
            cfg = sized_test_split(cfg)
    report = check_dataset(cfg)
    print(format_report(report))
    return 0 if report.ok else 1


def cmd_data_synth(args: argparse.Namespace) -> int:
    from stargan.data.synthfaces import export_celeba, export_rafd

    if args.style == "celeba":
        out = export_celeba(
            args.out, args.num, args.size, args.seed, correlated=args.correlated, ext=args.ext
        )
    else:
        out = export_rafd(args.out, args.num, args.size, args.seed)
    print(f"wrote {args.num} {args.style}-style SynthFaces images to {out}")
    return 0


def _add_train(sub: Subparsers) -> None:
    t = sub.add_parser(
        "train",
        help="train a model",
        usage="stargan train [--preset NAME] [--out DIR] [options]",
        formatter_class=_WideHelp,
        description="Train StarGAN. Settings "
        "come from a preset, then --config, then flags, then --set.",
    )
    t.add_argument(
        "--preset",
        help="starting configuration (`stargan presets`); default: custom-SIZE for --root, "
        "else synth-demo",
    )
    t.add_argument("--config", help="JSON config file (as saved in a run's config.json)")
    t.add_argument(
        "--speed",
        choices=sorted(SPEED_PROFILES),
        help="a named set of the speed options below (cpu-128: the CPU recipe at 128 px)",
    )
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


def _add_translate(sub: Subparsers) -> None:
    tr = sub.add_parser(
        "translate",
        help="translate image files to target labels",
        description="Translate images. Each --target is one translation; --set NAME=V ... is "
        "one more combining several labels. Without --source, a model file that keeps D infers "
        "each image's current labels and says what it found.",
    )
    tr.add_argument(
        "--model", help="model file (default: the packaged SynthFaces model, when installed)"
    )
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
        "--set",
        action="extend",
        nargs="+",
        metavar="NAME=V",
        help="one target combining every NAME=V given, e.g. --set Blond_Hair=1 Male=0 or "
        "--set expression=happy; values between 0 and 1 (and beyond) set intensities",
    )
    tr.add_argument(
        "--source",
        action="append",
        metavar="NAME=V",
        help="the inputs' current labels; without it they are inferred when the model file "
        "keeps D, otherwise binary labels not given are taken as 0",
    )
    tr.add_argument(
        "--strip",
        metavar="NAME[=V,...]",
        help="also write an interpolation strip per image from its own labels to this target",
    )
    tr.add_argument("--steps", type=int, default=5, help="images in a strip (default 5)")
    tr.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=(0.0, 1.0),
        metavar=("FROM", "TO"),
        help="strip intensities (default 0 1; beyond 1 extrapolates)",
    )
    tr.add_argument(
        "--face-crop",
        action="store_true",
        help="find the one face in each photo and crop it like CelebA (pip install "
        "'stargan[face]')",
    )
    tr.add_argument("--format", choices=["png", "jpg"], default="png", help="output format")
    tr.add_argument(
        "--size", type=int, help="output side in pixels (default: the model's, at least 128)"
    )
    tr.add_argument(
        "--grid",
        action="store_true",
        help="also write grid.FORMAT (inputs x targets; grid-1, grid-2, ... of 16 rows each)",
    )
    tr.add_argument(
        "--quiet", action="store_true", help="one summary line, not one line of labels per image"
    )
    tr.add_argument("--device", default="cpu")
    tr.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="who computes G: torch, or onnx (ONNX Runtime, for files from `stargan export`); "
        "default auto: onnx for .onnx files",
    )
    _add_channels_last(tr)
    tr.set_defaults(func=cmd_translate)


def _add_export(sub: Subparsers) -> None:
    ex = sub.add_parser(
        "export",
        help="export the generator for another runtime (ONNX), or a compact model file",
        description="onnx: G with a dynamic batch axis; inputs image [N, 3, S, S] in [-1, 1] "
        "and labels [N, c_dim], output [N, 3, S, S]. The label names and model config go into "
        "the file's metadata, so `stargan translate --model G.onnx` needs nothing else. The "
        "export is checked against PyTorch with ONNX Runtime before it is written "
        "(pip install 'stargan[onnx]'). safetensors: a copy of the model file with its "
        "weights in --dtype and, with --no-discriminator, without D (then source labels "
        "cannot be inferred and must be given).",
    )
    ex.add_argument(
        "--model", help="model file (default: the packaged SynthFaces model, when installed)"
    )
    ex.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="default onnx")
    ex.add_argument("--out", required=True, help="file to write, e.g. G.onnx")
    ex.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"default {ONNX_OPSET}")
    ex.add_argument(
        "--dtype", choices=EXPORT_DTYPES, default="float32", help="safetensors: weight dtype"
    )
    ex.add_argument("--no-discriminator", action="store_true", help="safetensors: drop D")
    ex.set_defaults(func=cmd_export)


def _add_serve(sub: Subparsers) -> None:
    sv = sub.add_parser(
        "serve",
        help="start the web demo",
        description="Serve the web demo (pip install 'stargan[web]'). Binds to loopback by "
        "default; the demo has no authentication. A request head must arrive within 10 s and a "
        "body within 60 s, and open connections are capped below the open-file limit (ulimit "
        "-n); see docs/reliability.md.",
    )
    sv.add_argument("--model", help="model file (default: the packaged SynthFaces model)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    sv.add_argument("--max-upload-mb", type=float, default=8.0, help="largest request body, MiB")
    sv.add_argument("--max-pixels", type=int, default=16_000_000, help="largest upload W x H")
    sv.add_argument("--workers", type=int, default=1, help="translations computed at once")
    sv.add_argument("--queue", type=int, default=4, help="requests waiting before 503s")
    sv.add_argument("--timeout", type=float, default=30.0, help="seconds per request (504)")
    sv.add_argument("--device", default="cpu")
    _add_channels_last(sv)
    sv.set_defaults(func=cmd_serve)


def _add_import_official(sub: Subparsers) -> None:
    io_ = sub.add_parser(
        "import-official",
        help="convert a 2018 official release checkpoint (G.ckpt) into a model file",
        description="Load the official release's state dict with weights_only=True (no code "
        "runs), check every parameter name and shape against our generator and write a model "
        "file. The checkpoint has no label names: give them in training order.",
    )
    io_.add_argument("checkpoint", help="the release's generator, e.g. 200000-G.ckpt")
    io_.add_argument("--out", required=True, help="model file to write (.safetensors)")
    io_.add_argument("--attrs", nargs="+", help="CelebA attribute names, in training order")
    io_.add_argument("--classes", nargs="+", help="RaFD class names (sorted folder order)")
    io_.add_argument("--image-size", type=int, default=128, help="training image size")
    io_.add_argument(
        "--discriminator", help="the matching D.ckpt, kept so source labels can be inferred"
    )
    io_.set_defaults(func=cmd_import_official)


def _add_sample(sub: Subparsers) -> None:
    s = sub.add_parser("sample", help="write a sample grid for a model on its dataset")
    s.add_argument("--model", required=True)
    s.add_argument("--out", required=True, help="PNG file to write")
    s.add_argument("--split", default="test", choices=["train", "test"])
    s.add_argument("--root", help="dataset root, if it moved since training")
    s.add_argument("--num", type=int, default=8, help="images per dataset, spread over the labels")
    s.add_argument("--device", default="cpu")
    s.set_defaults(func=cmd_sample)


def _add_presets(sub: Subparsers) -> None:
    pr = sub.add_parser("presets", help="list the named configurations")
    pr.set_defaults(func=cmd_presets)


def _add_data(sub: Subparsers) -> None:
    d = sub.add_parser("data", help="dataset tools")
    dsub = d.add_subparsers(dest="data_command", required=True)
    df = dsub.add_parser("formats", help="list the registered dataset formats")
    df.set_defaults(func=cmd_data_formats)
    dc = dsub.add_parser("check", help="validate a dataset and summarise it")
    dc.add_argument("root", help="dataset folder (or attribute file)")
    dc.add_argument("--format", default="celeba", help="dataset format (`stargan data formats`)")
    dc.add_argument(
        "--image-size", type=int, default=128, help="side images are checked at (default 128)"
    )
    dc.add_argument("--crop-size", type=int)
    dc.add_argument("--selected-attrs", nargs="+")
    dc.add_argument(
        "--test-size", type=int, help="images held out (default: a tenth, at most 2,000)"
    )
    dc.set_defaults(func=cmd_data_check)
    ds = dsub.add_parser("synth", help="export SynthFaces in the official CelebA/RaFD formats")
    ds.add_argument("--out", required=True, help="output folder")
    ds.add_argument("--style", choices=["celeba", "rafd"], default="celeba")
    ds.add_argument("--size", type=int, default=128, help="image side in pixels (16-256)")
    ds.add_argument("--num", type=int, default=2000, help="number of images")
    ds.add_argument("--seed", type=int, default=0)
    ds.add_argument(
        "--correlated",
        action="store_true",
        help="celeba style: realistic correlations between attributes",
    )
    ds.add_argument(
        "--ext",
        choices=["png", "jpg"],
        default="png",
        help="celeba style: PNG (exact ground truth) or JPEG like CelebA",
    )
    ds.set_defaults(func=cmd_data_synth)


def build_parser() -> argparse.ArgumentParser:
    """The `stargan` command: one sub-parser per command, each added by its own function."""
    from stargan.baselines.cli import add_baselines_parser
    from stargan.evaluation.cli import add_evaluate_parser

    p = argparse.ArgumentParser(
        prog="stargan",
        description="StarGAN: multi-domain image-to-image translation (Choi et al., CVPR 2018).",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in (
        _add_train,
        _add_translate,
        _add_export,
        _add_serve,
        _add_import_official,
        _add_sample,
        _add_presets,
        _add_data,
        add_evaluate_parser,
        add_baselines_parser,
    ):
        add(sub)
    return p


# OS errors that describe the user's machine, not a bug here: a folder that is read-only, full,
# missing or a file; too long a name. Any other OSError keeps its traceback.
_ENVIRONMENT_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENAMETOOLONG,
        errno.EMFILE,
        errno.EFBIG,
    }
)


def _describe_os_error(e: OSError) -> str:
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    return f"{where}: {e.strerror}" if where and e.strerror else str(e)


# Errors a user can fix (a bad flag, file or value), reported in one line: (module, class).
_USER_ERRORS = (
    ("stargan.config", "ConfigError"),
    ("stargan.files", "UnsafeFileError"),
    ("stargan.data.labels", "LabelError"),
    ("stargan.data.registry", "DatasetError"),
    ("stargan.data.io", "ImageDecodeError"),
    ("stargan.checkpoint", "CheckpointError"),
    ("stargan.training.runfolder", "RunFolderError"),
    ("stargan.training.trainer", "NonFiniteError"),
    ("stargan.facecrop", "FaceCropError"),
    ("stargan.extras", "MissingExtraError"),
    ("stargan.evaluation.common", "EvaluationError"),
)


def _user_error_types() -> tuple[type[Exception], ...]:
    """The classes of :data:`_USER_ERRORS` whose modules are loaded: a module that was never
    imported raised nothing, and importing it here would load torch (over a second) just to
    report a refused file."""
    return tuple(getattr(sys.modules[m], n) for m, n in _USER_ERRORS if m in sys.modules)


# libgomp's threads spin 300,000 times at a barrier before they sleep. Beside another busy
# process that made 2-thread training 6-16x slower on a 2-core machine; 10,000 keeps the idle
# speed and loses far less (docs/performance.md, "Sharing the machine"). libgomp reads it when
# torch loads, which the commands do after this.
GOMP_SPINCOUNT = "10000"


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)  # a user's own value wins
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:
        if isinstance(e, _user_error_types()):
            print(f"stargan: error: {e}", file=sys.stderr)
        elif isinstance(e, OSError) and (
            e.errno in _ENVIRONMENT_ERRNOS or isinstance(e, FileNotFoundError)
        ):
            print(f"stargan: error: {_describe_os_error(e)}", file=sys.stderr)
        else:
            raise
    return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
