"""Outcome parity with the official code (issue #30): the 2018 release (github yunjey/stargan,
run unmodified) and our ``synth-paper-32`` trained on the same CelebA-format SynthFaces export,
seed for seed, then scored by the same ``stargan evaluate``.

    python experiments/official_parity.py --official /work/official --seeds 0 1 2 --resume \
        --json experiments/results/official_parity.json --write docs/results.md

``--official DIR`` is a checkout (or ``git archive``) of yunjey/stargan, fetched at run time and
never copied into this repository. Its imports of torchvision (which does not import with our
torch) are served by a stand-in package this script writes into each run folder: only the
pieces data_loader.py and solver.py use (transforms Compose / RandomHorizontalFlip / CenterCrop
/ Resize / ToTensor / Normalize, datasets.ImageFolder, utils.save_image). A wrapper seeds torch
(the release never does), sets one thread and runs its main.py in a subprocess.

Protocol (one run at a time; a run is finished once its ``eval/results.json`` exists):
- data: ``stargan data synth --style celeba --size 32 --num 6000 --seed 2468`` (PNG, already
  face-sized: both codes crop 32, a no-op, and resize 32 -> 32, a no-op). Both train on the
  release's split of it (a seeded shuffle holds out 1,999; ours: ``--official-split``), i.e.
  the same 4,001 files; the release's CelebA defaults pick the 5 attributes.
- recipe: widths 32, 3 G blocks, 5 D layers, batch 16, WGAN-GP, lambda_cls 1, lambda_rec 10,
  lambda_gp 10, n_critic 5, Adam 1e-4 (0.5, 0.999), 1,500 iterations, decay over the last 750
  (the release's step-wise decay changes the LR once in this run, REFERENCE.md).
- scoring: the release's 1500-G.ckpt through ``stargan import-official``; every model through
  ``stargan evaluate --model FILE --dataset synthfaces-celeba --num 500`` (500 unseen faces
  rendered with their ground truth; a celeba-format folder carries no ground truth, and its
  held-out part would overlap the release's training images), shipped judge.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
SIZE, ITERS, DECAY, WIDTH, G_BLOCKS, D_LAYERS, BATCH = 32, 1500, 750, 32, 3, 5, 16
EXPORT = {"num": 6000, "seed": 2468}  # the preset's own training seed (2 * split_seed 1234)
EVAL_NUM = 500

# Runs of the same seed differ only in these flags ("one factor" checks after the main table).
OURS_FLAGS: dict[str, list[str]] = {
    "ours": [],
    # The release's LR schedule: near-constant (one step of 1e-4/750 at iteration 1000).
    "ours-lr-official": ["--lr-decay", "official", "--lr-update-step", "1000"],
}
OFFICIAL_FLAGS: dict[str, list[str]] = {
    "official": [],
    # The release with its decay applied every iteration: the paper's linear decay to 0.
    "official-lr-linear": ["--lr_update_step", "1"],
}
CODES = (*OFFICIAL_FLAGS, *OURS_FLAGS)

SHIM: dict[str, str] = {
    "__init__.py": '"""Stand-in for the few torchvision pieces the 2018 StarGAN imports."""\n'
    "from . import datasets, transforms, utils  # noqa: F401\n",
    "transforms.py": '''"""Stand-in torchvision.transforms: PIL in, tensor out, as torchvision."""
import numpy as np
import torch
from PIL import Image


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, img):
        if torch.rand(1).item() < self.p:
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return img


class CenterCrop:
    """Centre crop; a side larger than the image is padded with black (PIL's crop)."""

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img):
        w, h = img.size
        th, tw = self.size
        top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
        return img.crop((left, top, left + tw, top + th))


class Resize:
    """int: the shorter side becomes size, aspect kept; (h, w): exactly that."""

    def __init__(self, size, interpolation=Image.BILINEAR):
        self.size, self.interpolation = size, interpolation

    def __call__(self, img):
        w, h = img.size
        if isinstance(self.size, int):
            if (w <= h and w == self.size) or (h <= w and h == self.size):
                return img
            if w < h:
                ow, oh = self.size, int(self.size * h / w)
            else:
                oh, ow = self.size, int(self.size * w / h)
            return img.resize((ow, oh), self.interpolation)
        return img.resize(tuple(self.size)[::-1], self.interpolation)


class ToTensor:
    """uint8 PIL image [H, W, C] -> float tensor [C, H, W] in [0, 1]."""

    def __call__(self, img):
        a = np.asarray(img, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, t):
        mean = torch.as_tensor(self.mean, dtype=t.dtype).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=t.dtype).view(-1, 1, 1)
        return (t - mean) / std
''',
    "datasets.py": '''"""Stand-in torchvision.datasets: ImageFolder (a folder per class)."""
import os

from PIL import Image


class ImageFolder:
    def __init__(self, root, transform=None):
        self.classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [
            (os.path.join(root, c, f), self.class_to_idx[c])
            for c in self.classes
            for f in sorted(os.listdir(os.path.join(root, c)))
        ]
        self.transform = transform

    def __getitem__(self, index):
        path, target = self.samples[index]
        img = Image.open(path).convert("RGB")
        return (self.transform(img) if self.transform else img), target

    def __len__(self):
        return len(self.samples)
''',
    "utils.py": '''"""Stand-in torchvision.utils: save_image, a batch as one grid."""
import math

import numpy as np
import torch
from PIL import Image


def save_image(tensor, fp, nrow=8, padding=2, pad_value=0, **kwargs):
    t = tensor.detach().cpu()
    if t.dim() == 3:
        t = t.unsqueeze(0)
    n, c, h, w = t.shape
    cols = min(nrow, n)
    rows = int(math.ceil(n / cols))
    grid = torch.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding),
                      float(pad_value))
    for k in range(n):
        y, x = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[:, y:y + h, x:x + w] = t[k]
    a = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(np.squeeze(a, 2) if c == 1 else a).save(fp)
''',
}

WRAPPER = '''"""wrapper.py SEED DIR ARGS: the official main.py, torch seeded, one thread."""
import runpy
import sys
from pathlib import Path

import torch

seed, official = int(sys.argv[1]), str(Path(sys.argv[2]).resolve())
torch.manual_seed(seed)
torch.set_num_threads(1)
sys.path[:0] = [str(Path(__file__).resolve().parent / "shim"), official]
sys.argv = [official + "/main.py", *sys.argv[3:]]
runpy.run_path(official + "/main.py", run_name="__main__")
'''


class ParityError(SystemExit):
    """A one-line refusal (bad --official folder, a failed step)."""


def check_official(path: Path) -> Path:
    """``path`` if it holds the release's main.py and solver.py, else a one-line refusal."""
    missing = [f for f in ("main.py", "solver.py") if not (path / f).is_file()]
    if missing:
        raise ParityError(
            f"--official {path}: no {' or '.join(missing)} there; give a checkout of "
            "github.com/yunjey/stargan"
        )
    return path


def _git(path: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _machine() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)


def official_commit(path: Path) -> str | None:
    """The checkout's commit: git's HEAD, else a COMMIT file beside main.py, else None."""
    if (path / ".git").exists() and (head := _git(path, "rev-parse", "HEAD")):
        return head
    marker = path / "COMMIT"
    if marker.is_file():
        return marker.read_text().strip() or None
    return None


def write_shim(run_dir: Path) -> Path:
    """The stand-in torchvision package and the wrapper, written into ``run_dir``."""
    pkg = run_dir / "shim" / "torchvision"
    pkg.mkdir(parents=True, exist_ok=True)
    for name, text in SHIM.items():
        (pkg / name).write_text(text)
    wrapper = run_dir / "wrapper.py"
    wrapper.write_text(WRAPPER)
    return wrapper


def official_train_args(export: Path, run_dir: Path, extra: Sequence[str]) -> list[str]:
    """main.py's flags: the recipe, the export's files, nothing slow (no TensorBoard, no
    samples, one checkpoint at the end)."""
    return [
        "--dataset", "CelebA", "--mode", "train", "--image_size", str(SIZE),
        "--celeba_crop_size", str(SIZE), "--c_dim", str(len(ATTRS)),
        "--g_conv_dim", str(WIDTH), "--d_conv_dim", str(WIDTH),
        "--g_repeat_num", str(G_BLOCKS), "--d_repeat_num", str(D_LAYERS),
        "--batch_size", str(BATCH), "--num_iters", str(ITERS), "--num_iters_decay", str(DECAY),
        "--lambda_cls", "1", "--lambda_rec", "10", "--lambda_gp", "10", "--n_critic", "5",
        "--g_lr", "0.0001", "--d_lr", "0.0001", "--beta1", "0.5", "--beta2", "0.999",
        "--model_save_step", str(ITERS), "--sample_step", str(10 * ITERS), "--log_step", "10",
        "--use_tensorboard", "False", "--num_workers", "0",
        "--celeba_image_dir", str(export / "images"),
        "--attr_path", str(export / "list_attr_celeba.txt"),
        "--log_dir", str(run_dir / "logs"), "--model_save_dir", str(run_dir / "models"),
        "--sample_dir", str(run_dir / "samples"), "--result_dir", str(run_dir / "results"),
        "--selected_attrs", *ATTRS, *extra,
    ]  # fmt: skip


def ours_train_args(export: Path, run_dir: Path, seed: int, extra: Sequence[str]) -> list[str]:
    """``stargan train`` flags: the preset (already widths 32, 3 / 5 layers, batch 16, the
    paper's losses and rates) with the release's data, split, length and no side work."""
    return [
        "train", "--preset", "synth-paper-32", "--dataset", "celeba", "--root", str(export),
        "--crop-size", str(SIZE), "--test-size", "2000", "--official-split",
        "--split-seed", "1234", "--num-iters", str(ITERS), "--num-iters-decay", str(DECAY),
        "--eval-every", "0", "--sample-every", "0", "--save-every", str(ITERS),
        "--num-threads", "1", "--seed", str(seed), "--out", str(run_dir), "--quiet", *extra,
    ]  # fmt: skip


def evaluate_args(model: Path, out: Path) -> list[str]:
    return [
        "evaluate", "--model", str(model), "--dataset", "synthfaces-celeba",
        "--num", str(EVAL_NUM), "--out", str(out), "--device", "cpu",
    ]  # fmt: skip


def _cpu_children() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(cmd: Sequence[str], log: Path) -> tuple[float, float]:
    """Run ``cmd`` (one thread), appending its output to ``log``: (wall, CPU) seconds. The CPU
    time is what one thread spent, unaffected by other jobs on the core or a paused process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start, cpu = time.time(), _cpu_children()
    with log.open("a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        done = subprocess.run(list(cmd), stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise ParityError(f"failed ({done.returncode}): {' '.join(cmd)}; see {log}")
    return time.time() - start, _cpu_children() - cpu


def ensure_export(export: Path, log: Path) -> Path:
    if not (export / "identities.json").is_file():
        _run([str(BIN / "stargan"), "data", "synth", "--out", str(export), "--style", "celeba",
              "--size", str(SIZE), "--num", str(EXPORT["num"]), "--seed", str(EXPORT["seed"])],
             log)  # fmt: skip
    return export


def run_one(code: str, seed: int, official: Path, export: Path, runs: Path) -> dict[str, Any]:
    """Train (unless the model file is there), evaluate, and write the run's record."""
    run_dir = runs / f"{code}-s{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log, model, record_path = (run_dir / n for n in ("run.log", "model.safetensors", "run.json"))
    record: dict[str, Any] = {"code": code, "seed": seed}
    if record_path.is_file():
        record = json.loads(record_path.read_text())
    stargan = str(BIN / "stargan")
    if not model.is_file():
        if code in OFFICIAL_FLAGS:
            wrapper = write_shim(run_dir)
            cmd = [sys.executable, "-u", str(wrapper), str(seed), str(official),
                   *official_train_args(export, run_dir, OFFICIAL_FLAGS[code])]  # fmt: skip
            record["train_seconds"], record["train_cpu_seconds"] = _run(cmd, log)
            ckpt = run_dir / "models"
            _run([stargan, "import-official", str(ckpt / f"{ITERS}-G.ckpt"), "--out", str(model),
                  "--attrs", *ATTRS, "--image-size", str(SIZE),
                  "--discriminator", str(ckpt / f"{ITERS}-D.ckpt")], log)  # fmt: skip
        else:
            flags = ours_train_args(export, run_dir, seed, OURS_FLAGS[code])
            cmd = [stargan, *flags, "--overwrite"]
            record["train_seconds"], record["train_cpu_seconds"] = _run(cmd, log)
        record["train_command"] = " ".join(cmd)
        record_path.write_text(json.dumps(record, indent=2))
    _run([stargan, *evaluate_args(model, run_dir / "eval")], log)
    return record


def read_run(run_dir: Path, code: str, seed: int, commit: str | None) -> dict[str, Any] | None:
    """One run's figures from its evaluation JSON (None if it has none yet)."""
    results = run_dir / "eval" / "results.json"
    if not results.is_file():
        return None
    overall = json.loads(results.read_text())["evaluations"][0]["summary"]["overall"]
    rec = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").is_file() else {}
    # CPU minutes of the training process (one thread); else its wall clock, else (ours,
    # trained outside the script) its own training clock.
    secs, clock = rec.get("train_cpu_seconds"), "cpu"
    if secs is None:
        secs, clock = rec.get("train_seconds"), "wall"
    metrics = run_dir / "metrics.jsonl"
    if secs is None and metrics.is_file():
        secs, clock = json.loads(metrics.read_text().splitlines()[-1]).get("time/train_s"), "wall"
    return {
        "code": code,
        "seed": seed,
        "target_accuracy": overall.get("accuracy"),
        "gt_psnr": overall.get("gt_psnr"),
        "gt_l1": overall.get("gt_l1"),
        "rec_l1": overall.get("rec_l1"),
        "judge_fid": overall.get("judge_fid"),
        "train_minutes": None if secs is None else secs / 60,
        "train_clock": clock,
        "official_commit": commit if code in OFFICIAL_FLAGS else None,
        "train_command": rec.get("train_command"),
        "do_nothing": {
            "target_accuracy": overall.get("do_nothing_accuracy"),
            "gt_psnr": overall.get("do_nothing_gt_psnr"),
            "gt_l1": overall.get("do_nothing_gt_l1"),
        },
    }


METRICS = ("train_minutes", "target_accuracy", "gt_psnr", "gt_l1", "judge_fid")  # table order
COMPARED = METRICS[1:]  # the outcomes


def stats(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation of the finite values (std None below two)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return {
        "n": len(vals),
        "mean": statistics.fmean(vals) if vals else None,
        "std": statistics.stdev(vals) if len(vals) > 1 else None,
    }


def _value(run: dict[str, Any], metric: str) -> float | None:
    """A run's figure; training minutes only where they are CPU minutes (wall-clock minutes
    on a shared, sometimes paused core say nothing)."""
    if metric == "train_minutes" and run.get("train_clock") != "cpu":
        return None
    return run[metric]


def welch_t(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Welch's t of mean(a) - mean(b) (None below two values a side or with no spread)."""
    x, y = ([float(v) for v in vs if v is not None and math.isfinite(v)] for vs in (a, b))
    if len(x) < 2 or len(y) < 2:
        return None
    se = math.sqrt(statistics.variance(x) / len(x) + statistics.variance(y) / len(y))
    return (statistics.fmean(x) - statistics.fmean(y)) / se if se > 0 else None


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per code: mean ± std of each metric over its seeds, and each code against the release
    (difference of means, Welch's t); plus the do-nothing figures (the same test faces for
    every run, so any run's)."""
    codes = [c for c in CODES if any(r["code"] == c for r in runs)]
    values = {c: {m: [_value(r, m) for r in runs if r["code"] == c] for m in METRICS}
              for c in codes}  # fmt: skip
    per_code = {c: {m: stats(v) for m, v in values[c].items()} for c in codes}
    against = {
        c: {
            m: {
                "difference": per_code[c][m]["mean"] - per_code["official"][m]["mean"],
                "welch_t": welch_t(values[c][m], values["official"][m]),
            }
            for m in COMPARED
            if per_code[c][m]["mean"] is not None and per_code["official"][m]["mean"] is not None
        }
        for c in codes
        if c != "official" and "official" in codes
    }
    return {
        "per_code": per_code,
        "against_official": against,
        "do_nothing": runs[0]["do_nothing"] if runs else None,
    }


def _fmt(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else f"{v:{fmt}}"


def _ms(s: dict[str, Any], fmt: str) -> str:
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:{fmt}}" + ("" if s["std"] is None else f" ± {s['std']:{fmt}}")


FORMATS = {"target_accuracy": ".1f", "gt_psnr": ".2f", "gt_l1": ".3f", "judge_fid": ".1f",
           "train_minutes": ".1f"}  # fmt: skip


def markdown(result: dict[str, Any]) -> str:
    """A row per code: each seed's figure joined by ' / ', then (mean ± std); do nothing last."""
    runs, summary = result["runs"], result["summary"]
    lines = [
        "| code | seeds | train minutes | target accuracy (%) | GT PSNR (dB) | GT L1 | judge-FID |",
        "|---|---|---|---|---|---|---|",
    ]
    for code, per in summary["per_code"].items():
        mine = sorted((r for r in runs if r["code"] == code), key=lambda r: r["seed"])
        seeds = " / ".join(str(r["seed"]) for r in mine)
        cells = []
        for m in METRICS:
            each = " / ".join(_fmt(_value(r, m), FORMATS[m]) for r in mine)
            cells.append(each if per[m]["std"] is None else f"{each} ({_ms(per[m], FORMATS[m])})")
        lines.append(f"| {code} | {seeds} | " + " | ".join(cells) + " |")
    nothing = summary["do_nothing"]
    if nothing:
        lines.append(
            f"| do nothing | | | {_fmt(nothing['target_accuracy'], '.1f')} | "
            f"{_fmt(nothing['gt_psnr'], '.2f')} | {_fmt(nothing['gt_l1'], '.3f')} | |"
        )
    if summary.get("against_official"):
        lines += [
            "",
            "Against the release: difference of the means (Welch's t; with three seeds a side, "
            "|t| above about 2.8 is a difference beyond the seeds' spread at 95 %).",
            "",
            "| code | target accuracy (%) | GT PSNR (dB) | GT L1 | judge-FID |",
            "|---|---|---|---|---|",
        ]
        for code, diffs in summary["against_official"].items():
            cells = [
                "n/a"
                if m not in diffs
                else f"{diffs[m]['difference']:+{FORMATS[m]}} "
                f"(t {_fmt(diffs[m]['welch_t'], '.1f')})"
                for m in COMPARED
            ]
            lines.append(f"| {code} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def collect(runs_dir: Path, codes: Sequence[str], seeds: Sequence[int], commit: str | None) -> dict:
    runs = [
        r
        for s in seeds
        for c in codes
        if (r := read_run(runs_dir / f"{c}-s{s}", c, s, commit)) is not None
    ]
    return {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "commit": _git(ROOT, "rev-parse", "HEAD"),
        "official_commit": commit,
        "conditions": "one thread per run (taskset -c 1), one run at a time, on a core shared "
        "with other jobs: train minutes are CPU minutes where train_clock is 'cpu'; 'wall' "
        "ones include waiting for the core",
        "protocol": {
            "export": f"stargan data synth --style celeba --size {SIZE} --num {EXPORT['num']} "
            f"--seed {EXPORT['seed']}",
            "attrs": list(ATTRS),
            "iterations": ITERS,
            "decay": DECAY,
            "evaluation": " ".join(["stargan", *evaluate_args(Path("MODEL"), Path("OUT"))]),
        },
        "runs": runs,
        "summary": summarise(runs),
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--official", type=Path, required=True, help="checkout of yunjey/stargan")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--codes", nargs="+", choices=CODES, default=["official", "ours"])
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "parity")
    p.add_argument("--resume", action="store_true", help="skip runs that have an evaluation")
    p.add_argument("--report-only", action="store_true", help="train nothing: tabulate")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--write", type=Path, help="replace the generated table in this Markdown file")
    args = p.parse_args(argv)
    official = check_official(args.official)
    commit = official_commit(official)
    if not args.report_only:
        export = ensure_export(args.runs / "export", args.runs / "export.log")
        for seed in args.seeds:  # official and ours alternate, so partial results stay balanced
            for code in args.codes:
                done = (args.runs / f"{code}-s{seed}" / "eval" / "results.json").is_file()
                if args.resume and done:
                    continue
                print(f"{time.strftime('%H:%M:%S')} {code} seed {seed}", flush=True)
                run_one(code, seed, official, export, args.runs)
    result = collect(args.runs, args.codes, args.seeds, commit)
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from generated import write_block

        write_block(args.write, "experiments/official_parity.py", markdown(result))


if __name__ == "__main__":
    main()
