"""DIAT's identity feature extractor on SynthFaces: the judge's ResNet trained on identities.

DIAT keeps a translated face the same person by matching features of a network trained for
face recognition. SynthFaces knows who every face is: in its RaFD style, image i shows
subject ``i // 8`` (one subject per row of the 8 expressions, :class:`SynthFaces`). So the
feature extractor here is the judge network of :mod:`stargan.evaluation.classifier`, trained
by :func:`train_identity_classifier` to tell those subjects apart across expressions, and
:class:`IdentityFeatures` reads its feature maps at the end of every stage.

Example:
    >>> judge = train_identity_classifier(faces, width=16, epochs=3)   # doctest: +SKIP
    >>> judge.info["held_out_error"]  # % of held-out images given another subject  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from stargan.baselines.common import BaselineError
from stargan.data.labels import LabelSpec
from stargan.data.synthfaces import EXPRESSIONS, SynthFaces
from stargan.evaluation.classifier import (
    Judge,
    JudgeConfig,
    JudgeTrainConfig,
    holdout_split,
    judge_error,
    train_classifier,
)


class SubjectLabels(Dataset):
    """RaFD-style SynthFaces labelled by subject: (image, one-hot subject [n_subjects])."""

    def __init__(self, faces: object) -> None:
        if not isinstance(faces, SynthFaces) or faces.style != "rafd":
            raise BaselineError(
                "identity labels are known for RaFD-style SynthFaces only (subject = index // 8); "
                "for other data pass a trained identity network (--identity-net FILE)"
            )
        self.faces = faces
        self.n_subjects = -(-len(faces) // len(EXPRESSIONS))
        names = tuple(f"subject-{k:05d}" for k in range(self.n_subjects))
        self.label_spec = LabelSpec(names, "categorical")

    def __len__(self) -> int:
        return len(self.faces)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.faces[i]
        label = torch.zeros(self.n_subjects)
        label[i // len(EXPRESSIONS)] = 1.0
        return x, label


def train_identity_classifier(
    faces: object,
    *,
    width: int = 32,
    epochs: int = 5,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Judge:
    """A judge network trained to recognise SynthFaces subjects across their expressions.

    A seeded 10 % of the (subject, expression) images is held out; the share of them given
    the wrong subject is kept in ``judge.info["held_out_error"]`` (%).
    """
    data = SubjectLabels(faces)
    train, held_out = holdout_split(data, 0.1, seed)  # type: ignore[arg-type]
    size = int(data[0][0].shape[-1])
    judge = train_classifier(
        train,
        JudgeConfig(image_size=size, width=width),
        JudgeTrainConfig(epochs=epochs, batch_size=batch_size, flip=False, seed=seed),
        device=device,
    )
    errors = judge_error(judge, held_out, device=device)[0]
    judge.info = {
        "purpose": "DIAT identity features (SynthFaces subjects)",
        "subjects": data.n_subjects,
        "held_out_error": errors["mean_error"],
        "held_out_images": errors["n_images"],
        "train": judge.info.get("train"),
        "train_loss": judge.info.get("train_loss"),
        "config": dataclasses.asdict(judge.cfg),
    }
    return judge


class IdentityFeatures(nn.Module):
    """A frozen judge's trunk, returning its feature maps at the end of every stage.

    Example:
        >>> from stargan.data.labels import LabelLayout
        >>> judge = Judge(JudgeConfig(image_size=16, width=4, blocks=(1, 1)),
        ...               LabelLayout((LabelSpec(("a", "b"), "categorical"),)))
        >>> [f.shape[1] for f in IdentityFeatures(judge)(torch.zeros(1, 3, 16, 16))]
        [4, 8]
    """

    def __init__(self, judge: Judge) -> None:
        super().__init__()
        self.image_size = judge.cfg.image_size
        self.trunk = judge.trunk
        stem = 3 if judge.cfg.resolved_stem == "small" else 4
        ends, total = [], stem
        for n in judge.cfg.blocks:
            total += n
            ends.append(total - 1)
        self.stage_ends = ends
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> IdentityFeatures:
        return super().train(False)  # always frozen: batch norm keeps its running statistics

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x: [N, 3, S, S] in [-1, 1] -> one feature map [N, C_k, H_k, W_k] per stage."""
        s = self.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise BaselineError(
                f"the identity network expects [N, 3, {s}, {s}], got {list(x.shape)}"
            )
        out = []
        for i, layer in enumerate(self.trunk):
            x = layer(x)
            if i in self.stage_ends:
                out.append(x)
        return out

    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean over stages of the L1 distance between the feature maps of x and y (the
        gradient flows into y only)."""
        with torch.no_grad():
            fx = self(x)
        fy = self(y)
        return torch.stack([F.l1_loss(b, a) for a, b in zip(fx, fy, strict=True)]).mean()
