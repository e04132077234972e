"""The paper's Table 3 on SynthFaces: StarGAN against DIAT, CycleGAN and IcGAN on RaFD-like
expression synthesis, each method's files one per seed.

    python experiments/table3.py --judge judges/synthfaces-rafd-32.safetensors \
        --stargan runs/t3/stargan-s{0,1,2}/model.safetensors \
        --cyclegan runs/t3/cyclegan-s{0,1,2} --diat runs/t3/diat-s{0,1,2} \
        --icgan runs/t3/icgan-s{0,1,2} --json table3.json

Protocol (docs/baselines.md). The paper translated RaFD test faces to each expression and
reported the error of an expression classifier trained on real images. CycleGAN and DIAT
only learned neutral -> expression, so the main column uses the **neutral test faces**
translated to each of the 7 other expressions, for every method alike (same inputs, same
targets). StarGAN and IcGAN can start from any expression, so a second column translates
**every test face to each expression other than its own**. Per method and file:

- classification error (%): the judge's class is not the target (``--judge``, trained on the
  real train split: ``stargan evaluate train-classifier --dataset synthfaces-rafd``);
- ground truth: L1 ([-1, 1] scale) and PSNR against the renderer's true face with the target
  expression (``counterfactual``), and PSNR on the pixels the true edit leaves unchanged;
- parameters "N x count" of the trained files and of the same architecture at 128 px;
- training minutes from the run's metrics.jsonl with stops left out (``log_train_seconds``),
  else the run's own record (baselines: ``train_seconds`` in the model file; StarGAN: its
  step-time counter ``time/train_s``); the JSON keeps the record as ``recorded_seconds``.

Rows "real images" (the judge on the real test faces: the paper's 0.45 %) and "do nothing"
(the input returned unchanged) frame the numbers. Means and sample standard deviations are
over the files given per method.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from generated import write_block
from safetensors import safe_open
from torch.utils.data import Subset

import stargan
from stargan.baselines import PAPER_TABLE3, format_parameters, load_baseline, paper_scale_parameters
from stargan.config import DataConfig, TrainConfig
from stargan.data.grid import make_grid
from stargan.data.io import save_image
from stargan.data.labels import LabelSpec
from stargan.data.registry import build_dataset
from stargan.evaluation.classifier import Judge, judge_error, load_judge
from stargan.evaluation.metrics import PixelStats, ground_truth_fn, unchanged_mask
from stargan.models import build_discriminator, build_generator, count_parameters

Translate = Callable[[torch.Tensor, str, str], torch.Tensor]
# Each baseline also has a row at twice StarGAN's update steps ("icgan-2x": `stargan baselines
# train --iters 3000`), for a baseline that clearly needs more to be fair.
BASE_METHODS = ("stargan", "diat", "cyclegan", "icgan")
METHODS = BASE_METHODS + tuple(f"{m}-2x" for m in BASE_METHODS[1:])
LABELS = {"stargan": "StarGAN", "diat": "DIAT", "cyclegan": "CycleGAN", "icgan": "IcGAN"}
LABELS |= {f"{m}-2x": f"{LABELS[m]}, 2x steps" for m in BASE_METHODS[1:]}


class Method(NamedTuple):
    """One trained file behind the common interface."""

    path: Path
    translate: Translate
    spec: LabelSpec
    parameters: tuple[int, int]
    recorded_seconds: float | None
    data: DataConfig | None
    image_size: int
    any_source: bool


def _model_file(path: Path) -> Path:
    return path / "model.safetensors" if path.is_dir() else path


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), "pt") as f:  # the header only; the loaders verify the file
        return f.metadata() or {}


# A logged interval that took this many times its stage's median time per step was not all
# training: the process was stopped (SIGSTOP, a suspended laptop) or killed and resumed later.
STOPPED = 3.0


def log_train_seconds(log: Path) -> float | None:
    """Training seconds from a run's metrics.jsonl, stops left out: per stage, the time between
    consecutive logged steps (StarGAN: its step-time counter ``time/train_s``; baselines: the
    lines' clock ``time``), an interval over STOPPED times the stage's median time per step
    counted at the median, and the steps before a stage's first line at the median. None
    without a log or with a stage of one line. Slowed but running (another process on the
    core) counts."""
    if not log.is_file():
        return None
    last: dict[str | None, tuple[int, float]] = {}
    intervals: dict[str | None, list[tuple[int, float]]] = {}
    for line in log.read_text().splitlines():
        try:
            rec = json.loads(line)
            step = int(rec["step"])
            clock = float(rec["time/train_s"] if "time/train_s" in rec else rec["time"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue
        stage = rec.get("stage")
        if stage not in last and "time/train_s" in rec:
            last[stage] = (0, 0.0)  # a step-time counter starts at 0 with step 0
        if stage in last and step > last[stage][0]:
            intervals.setdefault(stage, []).append((step - last[stage][0], clock - last[stage][1]))
        last[stage] = (step, clock)
    if not last or set(intervals) != set(last):
        return None
    total = 0.0
    for stage, pairs in intervals.items():
        median = statistics.median(dt / steps for steps, dt in pairs)
        total += sum(median * steps if dt > STOPPED * median * steps else dt for steps, dt in pairs)
        total += median * (last[stage][0] - sum(steps for steps, _ in pairs))
    return total


def stargan_train_seconds(model_path: Path) -> float | None:
    """The run's own record of its step time: its metrics.jsonl, else its newest checkpoint."""
    log = model_path.parent / "metrics.jsonl"
    if log.exists():
        for line in reversed(log.read_text().splitlines()):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "time/train_s" in rec:
                return float(rec["time/train_s"])
    states = sorted((model_path.parent / "checkpoints").glob("state-*.safetensors"))
    if states and "train_seconds" in (meta := _metadata(states[-1])):
        return float(meta["train_seconds"])
    return None


def load_stargan(path: Path, spec: LabelSpec) -> Method:
    model = stargan.load(path)
    if spec not in model.layout.specs:
        raise SystemExit(f"{path} was not trained on the expressions {list(spec.names)}")
    k = model.layout.specs.index(spec)

    @torch.no_grad()
    def translate(x: torch.Tensor, source: str, target: str) -> torch.Tensor:
        onehot = torch.zeros(x.shape[0], spec.n_labels)
        onehot[:, spec.index(target)] = 1.0
        c = model.layout.embed(k, onehot).to(model.device)
        return model.generator(x.to(model.device), c).cpu()

    with torch.device("meta"):
        n = count_parameters(build_generator(model.config))
        n += count_parameters(build_discriminator(model.config))
    meta = _metadata(path)
    data = (
        TrainConfig.from_dict(json.loads(meta["train_config"])).data[k]
        if ("train_config" in meta)
        else None
    )
    return Method(
        path,
        translate,
        spec,
        (n, 1),
        stargan_train_seconds(path),
        data,
        model.config.image_size,
        any_source=True,
    )


def load_baseline_method(path: Path, spec: LabelSpec) -> Method:
    model = load_baseline(path)
    if model.spec != spec:
        raise SystemExit(f"{path} was trained on {list(model.spec.names)}, not {list(spec.names)}")
    return Method(
        path,
        model.translate,
        spec,
        model.num_parameters(),
        model.info.get("train_seconds"),
        model.cfg.data,
        model.cfg.image_size,
        any_source=model.method == "icgan",
    )


def test_faces(methods: Sequence[Method], num: int | None) -> tuple[Any, list[int]]:
    """The test split every method's data shares, and the indices evaluated."""
    datas = [m.data for m in methods if m.data is not None]
    if not datas:
        raise SystemExit(
            "no file records its training data; pass a baseline or a StarGAN "
            "model written by `stargan train`"
        )
    key = lambda d: (d.name, d.root, d.image_size, d.test_size, d.split_seed, d.crop_size)  # noqa: E731
    if len({key(d) for d in datas}) > 1 or len({m.image_size for m in methods}) > 1:
        raise SystemExit(
            "the files were trained on different data or image sizes: "
            + "; ".join(f"{m.path}: {key(m.data) if m.data else m.image_size}" for m in methods)
        )
    faces = build_dataset(datas[0], "test")
    return faces, list(range(len(faces) if num is None else min(num, len(faces))))


class Truths:
    """The renderer's true translations, computed once for every method."""

    def __init__(self, faces: Any, spec: LabelSpec) -> None:
        fn = ground_truth_fn(faces, spec, same=True)
        if fn is None:
            raise SystemExit("ground truth needs SynthFaces test data")
        self.fn, self.spec, self.cache = fn, spec, {}
        self.keep = faces[0][0].shape[-1] <= 64  # 500 x 7 truths at 32 px: 43 MB

    def __call__(self, idx: list[int], target: str) -> torch.Tensor:
        onehot = torch.zeros(len(idx), self.spec.n_labels)
        onehot[:, self.spec.index(target)] = 1.0
        if not self.keep:
            return self.fn(idx, target, onehot)
        missing = [r for r, i in enumerate(idx) if (i, target) not in self.cache]
        if missing:
            images = self.fn([idx[r] for r in missing], target, onehot[missing])
            self.cache |= {(idx[r], target): img for r, img in zip(missing, images, strict=True)}
        return torch.stack([self.cache[(i, target)] for i in idx])


def jobs(
    labels: list[int], spec: LabelSpec, neutral: str | None
) -> list[tuple[str, str, list[int]]]:
    """(source, target, indices): neutral faces -> each other expression when ``neutral`` is
    given, else every face -> each expression other than its own."""
    out = []
    for target in spec.names:
        for source in [neutral] if neutral else spec.names:
            if source != target:
                idx = [i for i, lab in enumerate(labels) if lab == spec.index(source)]
                out.append((source, target, idx))
    return out


@torch.no_grad()
def score(
    translate: Translate,
    faces: Any,
    judge: Judge,
    truths: Truths,
    spec: LabelSpec,
    work: list[tuple[str, str, list[int]]],
    batch_size: int,
) -> dict[str, Any]:
    """Classification error and ground-truth agreement of ``translate`` over ``work``."""
    part = judge.layout.slice(judge.spec_index(spec))
    size = int(faces[0][0].shape[-1])
    pixels, wrong, total = (
        PixelStats(size),
        dict.fromkeys(spec.names, 0),
        dict.fromkeys(spec.names, 0),
    )
    for source, target, idx in work:
        for start in range(0, len(idx), batch_size):
            batch = idx[start : start + batch_size]
            x = torch.stack([faces[i][0] for i in batch])
            y = translate(x, source, target).clamp(-1, 1)
            judged = judge.predict(y)[:, part].argmax(1)
            wrong[target] += int((judged != spec.index(target)).sum())
            total[target] += len(batch)
            truth = truths(batch, target)
            pixels.update(y, truth, unchanged_mask(truth, x))
    gt, n = pixels.compute(), sum(total.values())
    return {
        "error": 100.0 * sum(wrong.values()) / n if n else math.nan,
        "per_target_error": {t: 100.0 * wrong[t] / total[t] for t in spec.names if total[t]},
        "n_translations": n,
        "gt_l1": gt["l1"],
        "gt_psnr": gt["psnr"],
        "gt_identity_psnr": gt["identity_psnr"],
    }


def _stats(values: list[float | None]) -> dict[str, float | None]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return {"mean": None, "std": None}
    return {
        "mean": statistics.fmean(vals),
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
    }


def _train_seconds(m: Method) -> float | None:
    logged = log_train_seconds(m.path.parent / "metrics.jsonl")
    return m.recorded_seconds if logged is None else logged


def method_result(
    name: str,
    methods: list[Method],
    evaluate: Callable[[Translate, str], dict[str, Any]],
    at_128: tuple[int, int],
) -> dict[str, Any]:
    """Every file of one method scored, then mean and std over the files (seeds)."""
    runs = [
        {
            "file": str(m.path),
            "parameters": list(m.parameters),
            "train_seconds": _train_seconds(m),
            "recorded_seconds": m.recorded_seconds,
            "neutral": evaluate(m.translate, "neutral"),
            "all": evaluate(m.translate, "all") if m.any_source else None,
        }
        for m in methods
    ]
    paper = PAPER_TABLE3[name.removesuffix("-2x")]
    return {
        "runs": runs,
        "summary": {
            "neutral_error": _stats([r["neutral"]["error"] for r in runs]),
            "all_error": _stats([r["all"]["error"] if r["all"] else None for r in runs]),
            "gt_l1": _stats([r["neutral"]["gt_l1"] for r in runs]),
            "gt_psnr": _stats([r["neutral"]["gt_psnr"] for r in runs]),
            "gt_identity_psnr": _stats([r["neutral"]["gt_identity_psnr"] for r in runs]),
            "train_seconds": _stats([r["train_seconds"] for r in runs]),
        },
        "parameters": format_parameters(methods[0].parameters),
        "parameters_128px": format_parameters(at_128),
        "paper": {
            "error": paper["error"],
            "parameters": f"{paper['params_m']}M x {paper['models']}",
        },
    }


FIGURE_FACES = 2


def figure(
    loaded: dict[str, list[Method]], faces: Any, truths: Truths, spec: LabelSpec, neutral: str
) -> Any:
    """The comparison picture: for each of the first FIGURE_FACES neutral test faces, a row of
    the renderer's true faces, then one row per method (its first seed), each named on the
    left; columns: the input, then each other expression."""
    idx = [i for i in range(len(faces)) if int(faces[i][1].argmax()) == spec.index(neutral)]
    targets = [t for t in spec.names if t != neutral]
    rows = []
    makers: list[Translate | None] = [None] + [ms[0].translate for ms in loaded.values()]
    for i in idx[:FIGURE_FACES]:
        x = faces[i][0][None]
        for translate in makers:  # None: the renderer's truth
            outs = [
                truths([i], t) if translate is None else translate(x, neutral, t) for t in targets
            ]
            rows.append(torch.cat([x, *(o.clamp(-1, 1) for o in outs)]))
    names = ["truth", *(LABELS[name] for name in loaded)] * (len(rows) // len(makers))
    return make_grid(torch.stack(rows), titles=["input", *targets], row_titles=names)


def run(
    files: dict[str, list[Path]],
    judge_path: Path,
    *,
    num: int | None = None,
    neutral: str = "neutral",
    batch_size: int = 64,
    figure_path: Path | None = None,
) -> dict[str, Any]:
    judge = load_judge(judge_path)
    specs = [s for s in judge.layout.specs if s.kind == "categorical" and neutral in s.names]
    if not specs:
        raise SystemExit(
            f"{judge_path} judges {judge.layout.to_dict()}, no expressions with "
            f"{neutral!r}: train it on synthfaces-rafd"
        )
    spec = specs[0]
    loaded = {
        name: [
            (load_stargan if name == "stargan" else load_baseline_method)(_model_file(p), spec)
            for p in paths
        ]
        for name, paths in files.items()
        if paths
    }
    faces, idx = test_faces([m for ms in loaded.values() for m in ms], num)
    if judge.image_size != faces[0][0].shape[-1]:
        raise SystemExit(
            f"the judge works on {judge.image_size} px, the models on {faces[0][0].shape[-1]} px"
        )
    labels = [int(faces[i][1].argmax()) for i in idx]
    work = {"neutral": jobs(labels, spec, neutral), "all": jobs(labels, spec, None)}
    truths = Truths(faces, spec)

    def evaluate(fn: Translate, protocol: str) -> dict[str, Any]:
        return score(fn, faces, judge, truths, spec, work[protocol], batch_size)

    real = Subset(faces, idx)
    real.label_spec = spec  # type: ignore[attr-defined]
    out: dict[str, Any] = {
        "n_test_images": len(idx),
        "n_neutral_images": len(work["neutral"][0][2]),
        "image_size": int(faces[0][0].shape[-1]),
        "real": {"error": judge_error(judge, real)[0]["mean_error"], "paper_error": 0.45},
        "do_nothing": {p: evaluate(lambda x, s, t: x, p) for p in ("neutral", "all")},
        "methods": {},
    }
    if figure_path is not None:
        save_image(figure(loaded, faces, truths, spec, neutral), figure_path)
    at_128 = paper_scale_parameters()
    for name, methods in loaded.items():
        base = name.removesuffix("-2x")
        out["methods"][name] = method_result(name, methods, evaluate, at_128[base])
    return out


def _cell(s: dict[str, float | None], fmt: str = ".2f") -> str:
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:{fmt}}" + (f" ± {s['std']:{fmt}}" if s["std"] is not None else "")


def markdown(r: dict[str, Any]) -> str:
    head = (
        "| method | runs | error % (neutral → 7) | error % (any → other) | GT L1 | GT PSNR dB "
        "| unchanged PSNR dB | parameters | at 128 px | train min | paper error % "
        "| paper parameters |"
    )
    lines = [head, "|" + "---|" * 12]
    lines.append(
        f"| real images | | {r['real']['error']:.2f} (all test faces) | | | | | | | | 0.45 | |"
    )
    dn = r["do_nothing"]["neutral"]
    lines.append(
        f"| do nothing | | {dn['error']:.2f} | {r['do_nothing']['all']['error']:.2f} | "
        f"{dn['gt_l1']:.4f} | {dn['gt_psnr']:.2f} | {dn['gt_identity_psnr']:.2f} | | | | | |"
    )
    for name in METHODS:
        if name not in r["methods"]:
            continue
        m, s = r["methods"][name], r["methods"][name]["summary"]
        minutes = {k: (v / 60 if v is not None else None) for k, v in s["train_seconds"].items()}
        lines.append(
            f"| {LABELS[name]} | {len(m['runs'])} | {_cell(s['neutral_error'])} | "
            f"{_cell(s['all_error'])} | {_cell(s['gt_l1'], '.4f')} | {_cell(s['gt_psnr'])} | "
            f"{_cell(s['gt_identity_psnr'])} | {m['parameters']} | {m['parameters_128px']} | "
            f"{_cell(minutes, '.1f')} | "
            f"{m['paper']['error']:.2f} | {m['paper']['parameters']} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--judge", type=Path, required=True, help="expression judge (real images)")
    for name in METHODS:
        p.add_argument(
            f"--{name}",
            type=Path,
            nargs="+",
            default=[],
            metavar="FILE_OR_DIR",
            help=f"{LABELS[name]} model files or run folders, one per seed",
        )
    p.add_argument("--num", type=int, help="evaluate the first NUM test images (default: all)")
    p.add_argument("--neutral", default="neutral", help="the pairwise models' source class")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--write", type=Path, help="replace the generated table in this Markdown file")
    p.add_argument("--figure", type=Path, help="also write the comparison picture here (PNG)")
    args = p.parse_args()
    files = {name: getattr(args, name.replace("-", "_")) for name in METHODS}
    if not any(files.values()):
        p.error("give at least one model (--stargan, --diat, --cyclegan, --icgan)")
    result = run(
        files,
        args.judge,
        num=args.num,
        neutral=args.neutral,
        batch_size=args.batch_size,
        figure_path=args.figure,
    )
    print(
        f"{result['n_test_images']} test faces, {result['n_neutral_images']} neutral, "
        f"{result['image_size']} px"
    )
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(finite(result), indent=2))
    if args.write:
        write_block(args.write, "experiments/table3.py", markdown(result))


def finite(obj: Any) -> Any:
    """``obj`` with NaN/Inf floats as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


if __name__ == "__main__":
    main()
