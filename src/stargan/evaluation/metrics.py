"""Translation metrics: judged target accuracy, reconstruction, ground truth, judge-FID/KID.

Pure functions first, then :func:`evaluate_model`, which runs the protocol of
``docs/evaluation.md`` over a test split: every image goes to every sample-grid target
(:func:`eval_targets`), and each translation is judged, reconstructed and, on SynthFaces,
compared with its true counterfactual. Conventions:

- accuracies and errors are percentages;
- L1 is the mean absolute difference on the model's [-1, 1] scale (the training log's G/rec);
- PSNR and SSIM use images mapped to [0, 1] (``data_range=1``); PSNR is computed from the mean
  squared error over a whole set of images, so a perfect set scores ``inf``;
- summaries average the per-target values (every target has the same images).

Example:
    >>> results = evaluate_model(stargan.load("runs/synth-demo/model.safetensors"),
    ...                          test_set, judge)                        # doctest: +SKIP
    >>> results["summary"]["overall"]["accuracy"]                         # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import Subset
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchmetrics.image.fid import FrechetInceptionDistance  # not re-exported without
from torchmetrics.image.kid import KernelInceptionDistance  # torch-fidelity; fine for us

from stargan.data.labels import LabelLayout, LabelSpec, sample_targets, set_target
from stargan.data.registry import LabelledDataset
from stargan.evaluation.classifier import ErrorCounts, EvaluationError, Judge, decisions

if TYPE_CHECKING:
    from stargan.inference import StarGAN

PIXEL_TOLERANCE = 1 / 255
"""Two pixels are 'the same' when every channel differs by at most this on the [0, 1] scale
(one 8-bit level): the identity mask of :func:`unchanged_mask`."""

TruthFn = Callable[[Sequence[int], str, torch.Tensor], torch.Tensor]
"""(dataset indices, target name, target labels [N, n_j]) -> true images [N, 3, S, S]."""


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (clamped), the scale PSNR and SSIM are computed on."""
    return (x.clamp(-1, 1) + 1) / 2


def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """10 log10(range^2 / MSE) in dB; ``inf`` for identical images, ``nan`` for no pixels."""
    if math.isnan(mse):
        return math.nan
    return math.inf if mse == 0 else 10 * math.log10(data_range**2 / mse)


def unchanged_mask(
    truth: torch.Tensor, source: torch.Tensor, tol: float = PIXEL_TOLERANCE
) -> torch.Tensor:
    """bool [N, 1, H, W]: pixels the true translation left as they were (all channels within
    ``tol`` on the [0, 1] scale). Identity preservation is measured there.

    Example:
        >>> x = torch.zeros(1, 3, 2, 2); t = x.clone(); t[0, :, 0, 0] = 1
        >>> unchanged_mask(t, x)[0, 0].tolist()
        [[False, True], [True, True]]
    """
    diff = (to_unit(truth) - to_unit(source)).abs().amax(dim=1, keepdim=True)
    return diff <= tol + 1e-6


def target_hits(
    pred: torch.Tensor, target: torch.Tensor, spec: LabelSpec, name: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: (the targeted label judged as asked, every label judged as the target vector).

    Binary (paper Table 3 protocol applied per attribute): the judged value of attribute
    ``name`` equals its target value. Categorical: the judged class is the target class.

    Example:
        >>> spec = LabelSpec(("a", "b"), "binary")
        >>> hit, every = target_hits(torch.tensor([[1., 0.]]), torch.tensor([[1., 1.]]), spec, "a")
        >>> hit.tolist(), every.tolist()
        ([True], [False])
    """
    if pred.shape != target.shape or pred.shape[1] != spec.n_labels:
        raise EvaluationError(
            f"decisions and targets must both be [N, {spec.n_labels}], got "
            f"{list(pred.shape)} and {list(target.shape)}"
        )
    every = (pred == target).all(dim=1)
    if spec.kind == "categorical":
        return pred.argmax(1) == target.argmax(1), every
    col = spec.index(name)
    return pred[:, col] == target[:, col], every


def eval_targets(
    layout: LabelLayout, source: int, target: int, labels: torch.Tensor
) -> list[tuple[str, torch.Tensor]]:
    """The evaluation targets of dataset ``source``'s images [N, n_source] in dataset
    ``target``'s slice: (name, labels [N, n_target]) pairs, as the sample-grid columns of
    :func:`stargan.data.grid.domain_targets`. Own dataset: a hair colour is set, any other
    binary attribute flipped, each category chosen. Another dataset: its labels start from
    zeros and each one is set in turn."""
    if source == target:
        return sample_targets(layout.specs[source], labels)
    spec = layout.specs[target]
    base = torch.zeros(labels.shape[0], spec.n_labels)
    return [(name, set_target(spec, base, name)) for name in spec.names]


def _unwrap(dataset: Any) -> tuple[Any, Callable[[int], int]]:
    """The dataset under any ``Subset`` wrappers and the map from outer to inner indices."""
    maps: list[Sequence[int]] = []
    while isinstance(dataset, Subset):
        maps.append(dataset.indices)
        dataset = dataset.dataset

    def inner(i: int) -> int:
        for indices in maps:
            i = int(indices[i])
        return i

    return dataset, inner


def _uint8_to_tensor(img: Any) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1).float().div(127.5).sub(1.0)


def ground_truth_fn(dataset: LabelledDataset, spec: LabelSpec, same: bool) -> TruthFn | None:
    """How to get the true translation of ``dataset``'s images to targets of ``spec``, or None.

    Own labels (``same``): the dataset's ``counterfactual(i, label)`` (SynthFaces has it).
    Another dataset's labels: for SynthFaces images the renderer re-draws the face with that
    expression (categorical targets) or with the named attribute set to its target value
    (binary targets; other attributes keep their true values).
    """
    base, inner = _unwrap(dataset)
    if same:
        if not callable(getattr(base, "counterfactual", None)):
            return None
        return lambda idx, name, lab: torch.stack(
            [base.counterfactual(inner(i), lab[r]) for r, i in enumerate(idx)]
        )
    from stargan.data import synthfaces as synthetic

    if not isinstance(base, synthetic.SynthFaces):
        return None
    if spec.kind == "categorical" and set(spec.names) <= set(synthetic.EXPRESSIONS):
        change = lambda state, name, row: state.with_expression(name)  # noqa: E731
    elif spec.kind == "binary" and set(spec.names) <= set(synthetic.CELEBA_ATTRIBUTES):
        change = lambda state, name, row: state.with_attribute(  # noqa: E731
            name, bool(row[spec.index(name)] > 0.5)
        )
    else:
        return None

    def truth(idx: Sequence[int], name: str, lab: torch.Tensor) -> torch.Tensor:
        images = []
        for r, i in enumerate(idx):
            identity, state = base.identity(inner(i)), base.state(inner(i))
            img = synthetic.render(identity, change(state, name, lab[r]), base.size)
            images.append(_uint8_to_tensor(img))
        return torch.stack(images)

    return truth


class PixelStats:
    """Running agreement of images with reference images: L1, PSNR and SSIM over whole images,
    and L1/PSNR on the pixels a mask keeps ('identity') and on the rest ('edit')."""

    def __init__(self, image_size: int, device: torch.device | str = "cpu") -> None:
        kernel = 11 if image_size >= 22 else 7
        self.psnr = PeakSignalNoiseRatio(data_range=1.0).to(device)
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0, kernel_size=kernel).to(device)
        self.sums = dict.fromkeys(("abs", "n", "id_abs", "id_sq", "id_n", "ed_abs", "ed_sq"), 0.0)
        self.sums["ed_n"] = 0.0

    def update(self, images: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor) -> None:
        """images, truth [N, 3, S, S] in [-1, 1]; keep bool [N, 1, S, S] (identity pixels)."""
        a, b = to_unit(images), to_unit(truth)
        self.psnr.update(a, b)
        self.ssim.update(a, b)  # float32: identical images score 1 - 3e-5 (float64: 15x slower)
        diff = (images - truth).abs()  # L1 on the [-1, 1] scale
        sq = (a - b).square()
        keep3 = keep.expand_as(diff)
        s = self.sums
        s["abs"] += float(diff.sum())
        s["n"] += diff.numel()
        s["id_abs"] += float(diff[keep3].sum())
        s["id_sq"] += float(sq[keep3].sum())
        s["id_n"] += float(keep3.sum())
        s["ed_abs"] += float(diff[~keep3].sum())
        s["ed_sq"] += float(sq[~keep3].sum())
        s["ed_n"] += float((~keep3).sum())

    def compute(self) -> dict[str, float]:
        s, nan = self.sums, math.nan
        return {
            "l1": s["abs"] / s["n"] if s["n"] else nan,
            "psnr": float(self.psnr.compute()),
            "ssim": float(self.ssim.compute()),
            "identity_l1": s["id_abs"] / s["id_n"] if s["id_n"] else nan,
            "identity_psnr": psnr_from_mse(s["id_sq"] / s["id_n"] if s["id_n"] else nan),
            "edit_l1": s["ed_abs"] / s["ed_n"] if s["ed_n"] else nan,
            "edit_psnr": psnr_from_mse(s["ed_sq"] / s["ed_n"] if s["ed_n"] else nan),
        }


class _GivenFeatures(nn.Module):
    """Lets torchmetrics' FID/KID take features computed elsewhere (the judge's, one pass)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def judge_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to judge features [N, F] (torchmetrics' FID
    formula on our own features: call it judge-FID, never Inception-FID)."""
    if len(real) < 2 or len(fake) < 2:
        return math.nan
    fid = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]))
    fid.update(real.double(), real=True)
    fid.update(fake.double(), real=False)
    return float(fid.compute())


def judge_kid(
    real: torch.Tensor, fake: torch.Tensor, subset_size: int = 1000, subsets: int = 100
) -> dict[str, float]:
    """Kernel (polynomial MMD) distance on judge features, mean and std over seeded subsets."""
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        return {"mean": math.nan, "std": math.nan}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(
            feature=_GivenFeatures(real.shape[1]), subsets=subsets, subset_size=size
        )
    kid.update(real.double(), real=True)
    kid.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):  # KID draws its subsets from the global RNG
        torch.manual_seed(0)
        mean, std = kid.compute()
    return {"mean": float(mean), "std": float(std)}


@dataclass
class _TargetStats:
    """Everything accumulated for one target over the evaluated images."""

    dataset: int
    kind: str
    n: int = 0
    hits: int = 0
    every: int = 0
    base_hits: int = 0
    base_every: int = 0
    truth_hits: int = 0
    truth_every: int = 0
    rec_abs: float = 0.0
    rec_n: int = 0
    unchanged: float = 0.0
    unchanged_n: int = 0
    features: list[torch.Tensor] = field(default_factory=list)
    pixels: PixelStats | None = None
    baseline: PixelStats | None = None

    def result(self, real_features: torch.Tensor, fid: bool) -> dict[str, Any]:
        pct = lambda v: 100.0 * v / self.n if self.n else math.nan  # noqa: E731
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "kind": self.kind,
            "accuracy": pct(self.hits),
            "all_correct": pct(self.every),
            "rec_l1": self.rec_abs / self.rec_n if self.rec_n else math.nan,
            "do_nothing": {"accuracy": pct(self.base_hits), "all_correct": pct(self.base_every)},
        }
        if fid:
            out["judge_fid"] = judge_fid(real_features, torch.cat(self.features))
        if self.pixels is not None and self.baseline is not None:
            out["ground_truth"] = {
                "translation": self.pixels.compute(),
                "do_nothing": self.baseline.compute(),
                "unchanged_pixels": 100 * self.unchanged / max(self.unchanged_n, 1),
                "judge_accuracy": pct(self.truth_hits),
                "judge_all_correct": pct(self.truth_every),
            }
        return out


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise(targets: dict[str, dict[str, Any]], datasets: Sequence[int]) -> dict[str, Any]:
    """Per target dataset and overall: the mean of each per-target number (judge-FID is
    not averaged: :class:`_Run` computes it over each group's pooled translations)."""

    def flat(rec: dict[str, Any]) -> dict[str, float]:
        out = {k: v for k, v in rec.items() if isinstance(v, float) and k != "judge_fid"}
        out |= {f"do_nothing_{k}": v for k, v in rec["do_nothing"].items()}
        gt = rec.get("ground_truth")
        if gt:
            out |= {f"gt_{k}": v for k, v in gt["translation"].items()}
            out |= {f"do_nothing_gt_{k}": v for k, v in gt["do_nothing"].items()}
            out["gt_judge_accuracy"] = gt["judge_accuracy"]
        return out

    def average(recs: list[dict[str, Any]]) -> dict[str, float]:
        rows = [flat(r) for r in recs]
        keys = [k for k in rows[0] if all(k in r for r in rows)] if rows else []
        return {k: _mean([r[k] for r in rows]) for k in keys}

    out: dict[str, Any] = {
        str(j): average([r for r in targets.values() if r["dataset"] == j]) for j in datasets
    }
    out["overall"] = average(list(targets.values()))
    return out


class _Run:
    """One evaluation pass: the checked inputs and what has been accumulated so far."""

    def __init__(
        self,
        generator: nn.Module,
        layout: LabelLayout,
        dataset: LabelledDataset,
        judge: Judge,
        source: int,
        targets_of: list[int],
        device: torch.device | str,
        ground_truth: bool,
        fid: bool,
        tolerance: float,
    ) -> None:
        self.generator, self.layout, self.dataset, self.judge = generator, layout, dataset, judge
        self.source, self.targets_of, self.device = source, targets_of, device
        self.fid, self.tolerance = fid, tolerance
        spec = dataset.label_spec
        self.slots = {j: judge.layout.slice(judge.spec_index(layout.specs[j])) for j in targets_of}
        self.own = (
            judge.layout.slice(judge.spec_index(spec)) if spec in judge.layout.specs else None
        )
        self.truths = {
            j: ground_truth_fn(dataset, layout.specs[j], j == source) if ground_truth else None
            for j in targets_of
        }
        self.stats: dict[str, _TargetStats] = {}
        self.real_features: list[torch.Tensor] = []
        self.real_errors = ErrorCounts(spec)

    def batch(self, idx: list[int]) -> None:
        """Translate images ``idx`` to every target and score each translation."""
        items = [self.dataset[i] for i in idx]
        x = torch.stack([im for im, _ in items]).to(self.device)  # [B, 3, S, S]
        labels = torch.stack([lab for _, lab in items]).float()  # [B, n_source]
        c_org = self.layout.embed(self.source, labels).to(self.device)
        logits_x, feat_x = self.judge.logits_and_features(x)
        pred_x = decisions(logits_x, self.judge.layout).cpu()
        self.real_features.append(feat_x.double().cpu())
        if self.own is not None:
            self.real_errors.update(pred_x[:, self.own], labels)
        for j in self.targets_of:
            spec = self.layout.specs[j]
            for name, lab_j in eval_targets(self.layout, self.source, j, labels):
                clash = name in self.stats and self.stats[name].dataset != j
                st = self.stats.setdefault(
                    f"{j}:{name}" if clash else name, _TargetStats(j, spec.kind)
                )
                y = self.generator(x, self.layout.embed(j, lab_j).to(self.device))
                rec = self.generator(y, c_org)
                logits_y, feat_y = self.judge.logits_and_features(y)
                pred_y = decisions(logits_y, self.judge.layout)[:, self.slots[j]].cpu()
                hit, every = target_hits(pred_y, lab_j, spec, name)
                base_hit, base_every = target_hits(pred_x[:, self.slots[j]], lab_j, spec, name)
                st.n += len(idx)
                st.hits, st.every = st.hits + int(hit.sum()), st.every + int(every.sum())
                st.base_hits += int(base_hit.sum())
                st.base_every += int(base_every.sum())
                st.rec_abs += float((rec - x).abs().sum())
                st.rec_n += rec.numel()
                if self.fid:
                    st.features.append(feat_y.double().cpu())
                truth_fn = self.truths[j]
                if truth_fn is not None:
                    truth = truth_fn(idx, name, lab_j).to(self.device)
                    self._score_truth(st, x, y, truth, self.slots[j], lab_j, spec, name)

    def _score_truth(
        self,
        st: _TargetStats,
        x: torch.Tensor,
        y: torch.Tensor,
        truth: torch.Tensor,
        slot: slice,
        lab_j: torch.Tensor,
        spec: LabelSpec,
        name: str,
    ) -> None:
        """Score a translation batch and the do-nothing baseline against the true images."""
        if truth.shape != y.shape:
            raise EvaluationError(
                f"ground truth images are {list(truth.shape)}, translations {list(y.shape)}"
            )
        if st.pixels is None or st.baseline is None:
            st.pixels = PixelStats(y.shape[-1], y.device)
            st.baseline = PixelStats(y.shape[-1], y.device)
        keep = unchanged_mask(truth, x, self.tolerance)
        st.pixels.update(y, truth, keep)
        st.baseline.update(x, truth, keep)
        st.unchanged += float(keep.sum())
        st.unchanged_n += keep.numel()
        # The judge on the truth itself: the best accuracy any translator could get.
        hit, every = target_hits(self.judge.predict(truth)[:, slot].cpu(), lab_j, spec, name)
        st.truth_hits += int(hit.sum())
        st.truth_every += int(every.sum())

    def result(self, n: int, size: int) -> dict[str, Any]:
        real = torch.cat(self.real_features)
        targets = {key: st.result(real, self.fid) for key, st in self.stats.items()}
        spec = self.dataset.label_spec
        out: dict[str, Any] = {
            "source": {
                "dataset": self.source,
                "labels": list(spec.names),
                "kind": spec.kind,
                "n_images": n,
                "image_size": size,
            },
            "target_datasets": self.targets_of,
            "ground_truth": any(t is not None for t in self.truths.values()),
            "targets": targets,
            "summary": summarise(targets, self.targets_of),
        }
        if self.own is not None:
            out["real"] = self.real_errors.result()
        if self.fid:  # pooled over each target dataset's translations, then over all
            for j in self.targets_of:
                fakes = [f for st in self.stats.values() if st.dataset == j for f in st.features]
                out["summary"][str(j)]["judge_fid"] = judge_fid(real, torch.cat(fakes))
            fakes = [f for st in self.stats.values() for f in st.features]
            out["summary"]["overall"]["judge_fid"] = judge_fid(real, torch.cat(fakes))
            out["summary"]["overall"]["judge_kid"] = judge_kid(real, torch.cat(fakes))
        return out


@torch.no_grad()
def evaluate_generator(
    generator: nn.Module,
    layout: LabelLayout,
    dataset: LabelledDataset,
    judge: Judge,
    *,
    source: int = 0,
    target_datasets: Sequence[int] | None = None,
    num_images: int | None = None,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    ground_truth: bool = True,
    fid: bool = True,
    tolerance: float = PIXEL_TOLERANCE,
) -> dict[str, Any]:
    """:func:`evaluate_model` for a bare generator and its label layout (used in training).

    Example:
        >>> r = evaluate_generator(trainer.G, trainer.layout, test_set, judge,
        ...                        num_images=100, fid=False)          # doctest: +SKIP
    """
    if not 0 <= source < layout.n_datasets or dataset.label_spec != layout.specs[source]:
        raise EvaluationError(
            f"the images' labels {list(dataset.label_spec.names)} are not dataset {source} of "
            f"the model, whose datasets have {[list(s.names) for s in layout.specs]}"
        )
    targets_of = list(range(layout.n_datasets) if target_datasets is None else target_datasets)
    bad = [j for j in targets_of if not 0 <= j < layout.n_datasets]
    if bad or not targets_of:
        raise EvaluationError(
            f"target datasets {targets_of} must be a non-empty list of indices in "
            f"0..{layout.n_datasets - 1} (the model's datasets)"
        )
    n = len(dataset) if num_images is None else min(num_images, len(dataset))
    if n < 1:
        raise EvaluationError("no images to evaluate (empty dataset or num_images < 1)")
    size = int(dataset[0][0].shape[-1])
    if judge.image_size != size:
        raise EvaluationError(
            f"the judge classifies {judge.image_size} px images but the test images are "
            f"{size} px; train a judge at {size} px"
        )
    judge.eval().to(device)
    run = _Run(
        generator, layout, dataset, judge, source, targets_of, device, ground_truth, fid, tolerance
    )
    # Evenly spaced images, not the first n: folder datasets list their images class by
    # class, so the first n would judge only the first classes.
    picked = [i * len(dataset) // n for i in range(n)]
    for start in range(0, n, batch_size):
        run.batch(picked[start : start + batch_size])
    return run.result(n, size)


def evaluate_model(
    model: StarGAN,
    dataset: LabelledDataset,
    judge: Judge,
    *,
    source: int = 0,
    target_datasets: Sequence[int] | None = None,
    num_images: int | None = None,
    batch_size: int = 32,
    ground_truth: bool = True,
    fid: bool = True,
    tolerance: float = PIXEL_TOLERANCE,
) -> dict[str, Any]:
    """Evaluate ``model`` on images of its dataset ``source`` translated to every target of the
    datasets ``target_datasets`` (default: all; a joint model's other datasets are reached by
    their mask bit). Returns a JSON-ready dict (see docs/evaluation.md for every key).

    Example:
        >>> model = stargan.load("runs/both/model.safetensors")            # doctest: +SKIP
        >>> r = evaluate_model(model, celeba_test, judge, source=0,  # doctest: +SKIP
        ...                    target_datasets=[1])   # CelebA faces -> RaFD expressions
        >>> r["targets"]["happy"]["accuracy"]                              # doctest: +SKIP
    """
    return evaluate_generator(
        model.generator,
        model.layout,
        dataset,
        judge,
        source=source,
        target_datasets=target_datasets,
        num_images=num_images,
        batch_size=batch_size,
        device=model.device,
        ground_truth=ground_truth,
        fid=fid,
        tolerance=tolerance,
    )


def quick_eval(
    generator: nn.Module,
    layout: LabelLayout,
    dataset: LabelledDataset,
    judge: Judge,
    n: int = 256,
    device: torch.device | str = "cpu",
    *,
    source: int = 0,
    batch_size: int = 64,
) -> dict[str, float]:
    """A fast evaluation for use during training: ``n`` evenly spaced images to their own
    dataset's targets, no FID. Keys: accuracy, all_correct, rec_l1 and, with ground truth,
    psnr, ssim, l1, identity_psnr and do_nothing_psnr.

    Example:
        >>> quick_eval(trainer.G, trainer.layout, test_set, judge, n=256)  # doctest: +SKIP
        {'accuracy': 91.2, 'all_correct': 80.4, 'rec_l1': 0.05, 'psnr': 24.1, ...}
    """
    r = evaluate_generator(
        generator,
        layout,
        dataset,
        judge,
        source=source,
        target_datasets=[source],
        num_images=n,
        batch_size=batch_size,
        device=device,
        fid=False,
    )
    s = r["summary"]["overall"]
    out = {k: s[k] for k in ("accuracy", "all_correct", "rec_l1")}
    for key in ("psnr", "ssim", "l1", "identity_psnr"):
        if f"gt_{key}" in s:
            out[key] = s[f"gt_{key}"]
    if "do_nothing_gt_psnr" in s:
        out["do_nothing_psnr"] = s["do_nothing_gt_psnr"]
    return out


class PeriodicEvaluation:
    """A training hook: every ``every`` steps, :func:`quick_eval` on each dataset's test images.

    ``hook(trainer, step)`` returns ``{}`` between evaluations and otherwise metrics named
    ``eval/accuracy``, ``eval/psnr`` ... (joint runs: ``eval/0:accuracy``, ``eval/1:...``)
    for the trainer to log. It reads ``trainer.G``, ``trainer.layout`` and ``trainer.device``,
    draws no random numbers and changes no trainer state, so exact resume is unaffected.

    Example:
        >>> hook = PeriodicEvaluation(500, [test_set], judge, n=256)     # doctest: +SKIP
        >>> hook(trainer, 500)                                          # doctest: +SKIP
        {'eval/accuracy': 88.5, 'eval/psnr': 23.9, ...}
    """

    def __init__(
        self,
        every: int,
        datasets: LabelledDataset | Sequence[LabelledDataset],
        judge: Judge,
        n: int = 256,
        batch_size: int = 64,
    ) -> None:
        if every < 1:
            raise EvaluationError(f"PeriodicEvaluation needs every >= 1, got {every}")
        self.every, self.judge, self.n, self.batch_size = every, judge, n, batch_size
        is_one = hasattr(datasets, "label_spec")
        self.datasets = [datasets] if is_one else list(datasets)  # type: ignore[list-item]

    def __call__(self, trainer: Any, step: int) -> dict[str, float]:
        if step % self.every:
            return {}
        out: dict[str, float] = {}
        joint = len(self.datasets) > 1
        for k, ds in enumerate(self.datasets):
            metrics = quick_eval(
                trainer.G,
                trainer.layout,
                ds,
                self.judge,
                self.n,
                trainer.device,
                source=k,
                batch_size=self.batch_size,
            )
            tag = f"{k}:" if joint else ""
            out |= {f"eval/{tag}{name}": v for name, v in metrics.items()}
        return out
