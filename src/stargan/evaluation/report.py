"""The evaluation report: ``results.json`` and a self-contained ``report.html`` in a run folder.

The HTML page holds the metric tables, a grid of inputs x targets (with the true image beside
each translation on SynthFaces) and plots of the run's ``metrics.jsonl``: training losses
against the step and periodic-evaluation metrics against wall-clock time. Every picture is
embedded in the page (base64 PNG) and also written to ``<run>/report/``.

Example:
    >>> grid = translation_grid(model.generator, model.layout, test_set)   # doctest: +SKIP
    >>> write_report("runs/synth-demo", results, grids=[grid])             # doctest: +SKIP
    PosixPath('runs/synth-demo/report.html')
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from stargan.atomic import atomic_write_bytes
from stargan.data.grid import make_grid, to_uint8
from stargan.data.labels import LabelLayout
from stargan.data.registry import LabelledDataset
from stargan.evaluation.metrics import eval_targets, ground_truth_fn
from stargan.training.logging import MetricsLog


@dataclass
class Grid:
    """Rows of images (one input each) under titled columns: input, then each target's
    translation and, where known, its true image."""

    title: str
    columns: list[str]
    images: torch.Tensor  # [rows, columns, 3, S, S] in [-1, 1]


@torch.no_grad()
def translation_grid(
    generator: nn.Module,
    layout: LabelLayout,
    dataset: LabelledDataset,
    *,
    source: int = 0,
    target_datasets: Sequence[int] | None = None,
    n: int = 4,
    ground_truth: bool = True,
    device: torch.device | str = "cpu",
) -> Grid:
    """The first ``n`` images of ``dataset`` (dataset ``source`` of the model) translated to
    every evaluation target, each followed by its ground truth when the dataset has one.

    Example:
        >>> g = translation_grid(model.generator, model.layout, test_set, n=4)  # doctest: +SKIP
        >>> g.columns[:3]                                                       # doctest: +SKIP
        ['input', 'Black_Hair', 'Black_Hair (truth)']
    """
    idx = list(range(min(n, len(dataset))))
    items = [dataset[i] for i in idx]
    x = torch.stack([im for im, _ in items]).to(device)
    labels = torch.stack([lab for _, lab in items]).float()
    columns, images = ["input"], [x.cpu()]
    targets_of = list(range(layout.n_datasets)) if target_datasets is None else target_datasets
    for j in targets_of:
        truth_fn = ground_truth_fn(dataset, layout.specs[j], j == source) if ground_truth else None
        for name, lab_j in eval_targets(layout, source, j, labels):
            columns.append(name)
            images.append(generator(x, layout.embed(j, lab_j).to(device)).cpu())
            if truth_fn is not None:
                columns.append(f"{name} (truth)")
                images.append(truth_fn(idx, name, lab_j).cpu())
    return Grid(f"dataset {source}", columns, torch.stack(images, dim=1))


def jsonable(obj: Any) -> Any:
    """Strict-JSON copy: non-finite floats become the strings "inf", "-inf" and "nan"."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (lines cut short by a kill are skipped)."""
    return [rec for rec in MetricsLog(Path(path)).read() if "step" in rec]


def _series(records: list[dict[str, Any]], key: str, x: str) -> tuple[list[float], list[float]]:
    pts = [(r[x], r[key]) for r in records if isinstance(r.get(key), int | float) and x in r]
    return [p[0] for p in pts], [float(p[1]) for p in pts]


def _ema(values: list[float]) -> list[float]:
    """Exponential moving average spanning about 2 % of the curve (none for short logs)."""
    alpha = 1 - min(1.0, 50 / max(len(values), 1))
    out, acc = [], None
    for v in values:
        acc = v if acc is None or not math.isfinite(acc) else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def _loss_group(key: str) -> str | None:
    name = key.split(":", 1)[-1]  # joint runs prefix terms with the dataset: "0:D/adv"
    return name[:1] if name[:2] in ("D/", "G/") else None


def plot_metrics(records: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Plot losses against the step (``losses.png``: D terms, G terms; light = raw, dark =
    smoothed) and ``eval/*`` metrics against wall-clock minutes (``eval_vs_time.png``).
    Returns the written files (none for a log without those metrics)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in records for k, v in r.items() if isinstance(v, int | float)})
    written = []
    groups = {g: [k for k in keys if _loss_group(k) == g] for g in ("D", "G")}
    if any(groups.values()):
        fig = Figure(figsize=(11, 4), layout="constrained")
        for ax, (g, group) in zip(fig.subplots(1, 2), groups.items(), strict=True):
            for i, key in enumerate(group):
                steps, values = _series(records, key, "step")
                colour = f"C{i % 10}"
                ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
                ax.plot(steps, _ema(values), color=colour, label=key, linewidth=1.5)
            ax.set(title=f"{g} loss terms", xlabel="step")
            if group:
                ax.legend(fontsize="small")
        written.append(_save_figure(fig, out_dir / "losses.png"))
    eval_keys = [k for k in keys if k.startswith("eval/")]
    if eval_keys:
        t0 = min(r["time"] for r in records if isinstance(r.get("time"), int | float))
        cols = min(3, len(eval_keys))
        rows = math.ceil(len(eval_keys) / cols)
        fig = Figure(figsize=(4 * cols, 3 * rows), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
        for ax, key in zip(axes, eval_keys, strict=False):
            times, values = _series(records, key, "time")
            ax.plot([(t - t0) / 60 for t in times], values, marker="o", markersize=3)
            ax.set(title=key, xlabel="wall-clock minutes")
        for ax in axes[len(eval_keys) :]:
            ax.set_visible(False)
        written.append(_save_figure(fig, out_dir / "eval_vs_time.png"))
    return written


def _save_figure(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _img_tag(data: bytes, alt: str, css: str = "") -> str:
    b64 = base64.b64encode(data).decode()
    return f'<img src="data:image/png;base64,{b64}" alt="{html.escape(alt)}" {css}>'


def _fmt(v: Any, digits: int = 2) -> str:
    if isinstance(v, dict) and "mean" in v:
        return f"{_fmt(v['mean'], 4)} ± {_fmt(v['std'], 4)}"
    if not isinstance(v, int | float):
        return "–" if v is None else html.escape(str(v))
    if math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.{digits}f}"


def _pair(a: Any, b: Any, digits: int = 2) -> str:
    return f"{_fmt(a, digits)} <span class=dim>/ {_fmt(b, digits)}</span>"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


_TARGET_HEADER = [
    "target",
    "judged accuracy %",
    "all labels %",
    "rec L1",
    "judge-FID",
    "GT L1",
    "GT PSNR dB",
    "GT SSIM",
    "identity L1",
    "identity PSNR dB",
    "edit-region L1",
    "truth judged %",
    "unchanged px %",
]


def _target_row(name: str, r: Mapping[str, Any]) -> list[str]:
    gt = r.get("ground_truth") or {}
    g, b = gt.get("translation", {}), gt.get("do_nothing", {})
    return [
        html.escape(name),
        _pair(r["accuracy"], r["do_nothing"]["accuracy"], 1),
        _pair(r["all_correct"], r["do_nothing"]["all_correct"], 1),
        _fmt(r["rec_l1"], 4),
        _fmt(r.get("judge_fid")),
        _pair(g.get("l1"), b.get("l1"), 4) if gt else "–",
        _pair(g.get("psnr"), b.get("psnr")) if gt else "–",
        _pair(g.get("ssim"), b.get("ssim"), 3) if gt else "–",
        _fmt(g.get("identity_l1"), 4),
        _fmt(g.get("identity_psnr")),
        _pair(g.get("edit_l1"), b.get("edit_l1"), 4) if gt else "–",
        _fmt(gt.get("judge_accuracy"), 1),
        _fmt(gt.get("unchanged_pixels"), 1),
    ]


def _summary_row(name: str, s: Mapping[str, Any]) -> list[str]:
    return [
        f"<b>{html.escape(name)}</b>",
        _pair(s.get("accuracy"), s.get("do_nothing_accuracy"), 1),
        _pair(s.get("all_correct"), s.get("do_nothing_all_correct"), 1),
        _fmt(s.get("rec_l1"), 4),
        _fmt(s.get("judge_fid")),
        _pair(s.get("gt_l1"), s.get("do_nothing_gt_l1"), 4),
        _pair(s.get("gt_psnr"), s.get("do_nothing_gt_psnr")),
        _pair(s.get("gt_ssim"), s.get("do_nothing_gt_ssim"), 3),
        _fmt(s.get("gt_identity_l1"), 4),
        _fmt(s.get("gt_identity_psnr")),
        _pair(s.get("gt_edit_l1"), s.get("do_nothing_gt_edit_l1"), 4),
        _fmt(s.get("gt_judge_accuracy"), 1),
        "",
    ]


def _evaluation_html(ev: Mapping[str, Any]) -> str:
    src = ev["source"]
    parts = [
        f"<h2>Dataset {src['dataset']} images ({html.escape(', '.join(src['labels']))}) "
        f"&rarr; targets of dataset(s) {ev['target_datasets']}</h2>",
        f"<p>{src['n_images']} test images at {src['image_size']} px; ground truth: "
        f"{'yes' if ev['ground_truth'] else 'no'}. Cells “a / b” give the translation, "
        f"then the do-nothing baseline (the input itself).</p>",
    ]
    rows = [_target_row(name, r) for name, r in ev["targets"].items()]
    for key, s in ev["summary"].items():
        rows.append(_summary_row("mean" if key == "overall" else f"mean, dataset {key}", s))
    parts.append(_table(_TARGET_HEADER, rows))
    overall = ev["summary"]["overall"]
    if "judge_kid" in overall:
        parts.append(
            f"<p>Overall judge-FID {_fmt(overall.get('judge_fid'))}, judge-KID "
            f"{_fmt(overall['judge_kid'])} (real test images vs all translations, on the "
            f"judge's features; not Inception scores).</p>"
        )
    if "real" in ev:
        real = ev["real"]
        header = ["", *map(html.escape, real["error"]), "mean", "any label wrong"]
        values = [_fmt(v, 2) for v in real["error"].values()]
        row = [
            "judge error % on real test images",
            *values,
            _fmt(real["mean_error"]),
            _fmt(real["all_correct_error"]),
        ]
        parts.append(_table(header, [row]))
    return "\n".join(parts)


def _grid_html(grid: Grid, out_dir: Path, index: int) -> str:
    rows, cols = grid.images.shape[:2]
    picture = make_grid(grid.images, titles=grid.columns)
    atomic_write_bytes(out_dir / f"grid-{index}.png", _png(picture))
    cells = to_uint8(grid.images.reshape(rows * cols, *grid.images.shape[2:]))
    header = "".join(f"<th>{html.escape(c)}</th>" for c in grid.columns)
    body = ""
    for r in range(rows):
        tds = "".join(
            f"<td class=cell>{_img_tag(_png(cells[r * cols + c]), grid.columns[c])}</td>"
            for c in range(cols)
        )
        body += f"<tr>{tds}</tr>"
    return (
        f"<h3>Translations: {html.escape(grid.title)}</h3>"
        f"<table class=grid><tr>{header}</tr>{body}</table>"
    )


_CSS = """body{font-family:sans-serif;margin:2em;max-width:1400px}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f3f3f3}.dim{color:#888}
table.grid td.cell{padding:1px}table.grid img{width:80px;image-rendering:pixelated}
table.grid th{font-size:10px;max-width:80px;overflow-wrap:anywhere}"""


def write_report(
    run_dir: str | Path,
    results: Mapping[str, Any],
    *,
    grids: Sequence[Grid] = (),
    metrics_path: str | Path | None = None,
    title: str = "StarGAN evaluation",
) -> Path:
    """Write ``results.json``, ``report.html`` and ``report/*.png`` into ``run_dir``.

    ``results`` is one :func:`~stargan.evaluation.metrics.evaluate_model` dict or a dict with
    a list of them under ``"evaluations"`` (plus anything else, e.g. model and judge facts,
    shown as JSON). ``metrics_path`` defaults to ``run_dir/metrics.jsonl`` when it exists.

    Example:
        >>> write_report("runs/synth-demo", results)        # doctest: +SKIP
        PosixPath('runs/synth-demo/report.html')
    """
    run_dir = Path(run_dir)
    out_dir = run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    clean = jsonable(results)
    atomic_write_bytes(run_dir / "results.json", json.dumps(clean, indent=2).encode())
    evaluations = [results] if "targets" in results else list(results.get("evaluations", []))
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [_evaluation_html(ev) for ev in evaluations]
    body += [_grid_html(grid, out_dir, i) for i, grid in enumerate(grids)]
    metrics_path = Path(metrics_path) if metrics_path else run_dir / "metrics.jsonl"
    if metrics_path.is_file():
        plots = plot_metrics(read_metrics(metrics_path), out_dir)
        body.append("<h2>Training curves</h2>")
        body += [_img_tag(p.read_bytes(), p.stem, 'style="max-width:100%"') for p in plots]
        if not plots:
            body.append(f"<p>{html.escape(str(metrics_path))} holds no loss or eval metrics.</p>")
    else:
        body.append(f"<p>No training log at {html.escape(str(metrics_path))}.</p>")
    other = {k: v for k, v in clean.items() if k != "evaluations"}
    if "evaluations" in results and other:
        dump = html.escape(json.dumps(other, indent=2))
        body.append(f"<h2>Run facts</h2><pre>{dump}</pre>")
    page = (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    path = run_dir / "report.html"
    atomic_write_bytes(path, page.encode())
    return path
