"""The paper's joint-vs-single experiment on SynthFaces: put each RaFD-like expression on
CelebA-like faces with a model trained jointly (mask vector) and with one trained on the
RaFD-like data only, then the joint model again with the wrong mask bit (the CelebA one).

    python experiments/joint_vs_single.py --joint runs/synth-joint/model.safetensors \
        --single runs/synth-rafd/model.safetensors --json joint_vs_single.json

Scored on the CelebA-like test faces of the joint run's first dataset: expression accuracy by
the RaFD-like judge; ground-truth L1/PSNR against the renderer's face with that expression,
beside doing nothing; and, for the wrong mask, how often the CelebA-like judge sees each
attribute flipped (the paper: the model then edits facial attributes, e.g. age, instead).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import torch

import stargan
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.data.registry import build_dataset
from stargan.evaluation.classifier import Judge, load_judge, shipped_judge
from stargan.evaluation.metrics import PixelStats, ground_truth_fn, unchanged_mask
from stargan.presets import get_preset


def label_vectors(
    layout: LabelLayout, expressions: LabelSpec, name: str, n: int, mask_of: int
) -> torch.Tensor:
    """[n, c_dim]: expression ``name`` in the expression slice, every other slot zero, and the
    mask bit of dataset ``mask_of`` (a single-dataset model has no mask: the one-hot alone)."""
    onehot = torch.zeros(n, expressions.n_labels)
    onehot[:, expressions.index(name)] = 1.0
    k = layout.specs.index(expressions)
    if layout.n_datasets == 1:
        return onehot
    c = torch.zeros(n, layout.c_dim)
    c[:, layout.slice(k)] = onehot
    c[:, layout.n_classes + mask_of] = 1.0
    return c


@torch.no_grad()
def score(
    model: stargan.StarGAN,
    faces: Any,
    expressions: LabelSpec,
    rafd_judge: Judge,
    celeba_judge: Judge,
    *,
    mask_of: int,
    n: int,
    batch_size: int = 50,
) -> dict[str, Any]:
    """Every expression on the first ``n`` faces; see the module docstring for the fields."""
    truth = ground_truth_fn(faces, expressions, same=False)
    if truth is None:
        raise ValueError("ground truth needs SynthFaces CelebA-like faces")
    r_part = rafd_judge.layout.slice(rafd_judge.spec_index(expressions))
    c_part = celeba_judge.layout.slice(celeba_judge.spec_index(faces.label_spec))
    size = faces[0][0].shape[-1]
    out, pixels, nothing = {}, PixelStats(size), PixelStats(size)
    flips = torch.zeros(faces.label_spec.n_labels)
    hits_all = total = 0
    for name in expressions.names:
        hits = 0
        for start in range(0, n, batch_size):
            idx = list(range(start, min(start + batch_size, n)))
            x = torch.stack([faces[i][0] for i in idx])
            c = label_vectors(model.layout, expressions, name, len(idx), mask_of)
            y = model.generator(x.to(model.device), c.to(model.device)).clamp(-1, 1).cpu()
            hits += int(
                rafd_judge.predict(y)[:, r_part].argmax(1).eq(expressions.index(name)).sum()
            )
            gt = truth(idx, name, torch.zeros(len(idx), expressions.n_labels))
            keep = unchanged_mask(x, gt)
            pixels.update(y, gt, keep)
            nothing.update(x, gt, keep)
            before = celeba_judge.predict(x)[:, c_part]
            flips += (celeba_judge.predict(y)[:, c_part] != before).float().sum(0)
        out[name] = 100.0 * hits / n
        hits_all, total = hits_all + hits, total + n
    gt, base = pixels.compute(), nothing.compute()
    return {
        "expression_accuracy": 100.0 * hits_all / total,
        "per_expression_accuracy": out,
        "gt_l1": gt["l1"],
        "gt_psnr": gt["psnr"],
        "do_nothing_gt_l1": base["l1"],
        "do_nothing_gt_psnr": base["psnr"],
        "celeba_attribute_flips": {
            a: 100.0 * float(f) / total for a, f in zip(faces.label_spec.names, flips, strict=True)
        },
    }


def _judge_path(given: Path | None, spec: LabelSpec, size: int, flag: str) -> Path:
    """The judge given, else the one shipped for ``spec`` at ``size``."""
    path = given or shipped_judge(LabelLayout((spec,)), size)
    if path is None:
        raise SystemExit(f"no judge shipped for {list(spec.names)} at {size} px: pass {flag}")
    return path


def run(
    joint: Path,
    single: Path,
    rafd_judge: Path | None,
    celeba_judge: Path | None,
    n: int,
) -> dict[str, Any]:
    joint_model, single_model = stargan.load(joint), stargan.load(single)
    expressions = single_model.layout.specs[0]
    # The held-out faces of the synth-joint preset's CelebA-like data, at the model's size.
    data = dataclasses.replace(
        get_preset("synth-joint").data[0], image_size=joint_model.config.image_size
    )
    faces = build_dataset(data, "test")
    judges = tuple(
        load_judge(_judge_path(given, spec, data.image_size, flag))
        for given, spec, flag in (
            (rafd_judge, expressions, "--rafd-judge"),
            (celeba_judge, faces.label_spec, "--celeba-judge"),
        )
    )
    n = min(n, len(faces))
    k_faces = joint_model.layout.specs.index(faces.label_spec)
    k_expr = joint_model.layout.specs.index(expressions)
    return {
        "n_faces": n,
        "joint": score(joint_model, faces, expressions, *judges, mask_of=k_expr, n=n),
        "single": score(single_model, faces, expressions, *judges, mask_of=0, n=n),
        "joint_wrong_mask": score(joint_model, faces, expressions, *judges, mask_of=k_faces, n=n),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--joint", type=Path, required=True, help="model trained on both datasets")
    p.add_argument("--single", type=Path, required=True, help="model trained on expressions only")
    p.add_argument("--rafd-judge", type=Path, help="judge of the expressions (default: shipped)")
    p.add_argument("--celeba-judge", type=Path, help="judge of the attributes (default: shipped)")
    p.add_argument("--num", type=int, default=500, help="CelebA-like test faces")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    result = run(args.joint, args.single, args.rafd_judge, args.celeba_judge, args.num)
    print(
        f"{'model':18s} {'expr. acc %':>11s} {'GT PSNR':>8s} {'GT L1':>7s}  (do nothing: PSNR, L1)"
    )
    for key in ("joint", "single", "joint_wrong_mask"):
        r = result[key]
        print(
            f"{key:18s} {r['expression_accuracy']:11.1f} {r['gt_psnr']:8.2f} {r['gt_l1']:7.4f}"
            f"  ({r['do_nothing_gt_psnr']:.2f}, {r['do_nothing_gt_l1']:.4f})"
        )
    flips = result["joint_wrong_mask"]["celeba_attribute_flips"]
    print(
        "wrong mask, CelebA attributes flipped (%): "
        + ", ".join(f"{a} {v:.1f}" for a, v in flips.items())
    )
    if args.json:
        args.json.write_text(
            json.dumps(result, indent=2, default=lambda v: None if math.isnan(v) else v)
        )


if __name__ == "__main__":
    main()
