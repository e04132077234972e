"""Import checkpoints of the official 2018 StarGAN release into our model file.

The release saves ``torch.save(G.state_dict())`` as ``{iters}-G.ckpt`` (and ``-D.ckpt``):
plain tensors, so they load with ``torch.load(..., weights_only=True)``, which refuses any
pickle that would run code. The checkpoint holds no label names; the user supplies them in
the order used for training (``--attrs`` for CelebA attributes, ``--classes`` for RaFD
expressions, both for a joint "Both" model: CelebA's slice comes first, then RaFD's, then the
2-slot mask, as the release builds its label vectors).

Parameter names coincide with ours, because both generators are one ``nn.Sequential`` called
``main`` with the same layer order (conv, IN, ReLU; two down-sampling triples; residual
blocks whose own ``main`` holds conv ``0``, IN ``1``, ReLU, conv ``3``, IN ``4``; two
up-sampling triples; conv, tanh). Only two things differ:

- the release's instance norms keep running statistics (``running_mean``, ``running_var``,
  ``num_batches_tracked``) that it never uses (it never calls ``.eval()``); ours have none,
  so those buffers are dropped;
- the release's discriminator heads are ``conv1`` (real/fake) and ``conv2`` (classes);
  ours are ``src`` and ``cls``.

Every other name and every shape is checked; a mismatch is an error listing each one.

Example:
    >>> import_official("200000-G.ckpt", "celeba-128.safetensors",
    ...                 attrs=["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
    ...                 discriminator="200000-D.ckpt")                  # doctest: +SKIP
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError

from stargan.config import ModelConfig
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.models import build_discriminator, build_generator
from stargan.training.checkpoint import CheckpointError, save_model_file

UNUSED_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
"""Instance-norm buffers of the release that carry nothing (it never switches to eval)."""
D_RENAMES = {"conv1.": "src.", "conv2.": "cls."}
"""The release's discriminator head names -> ours."""


def load_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from the release, loaded without running code (``weights_only=True``).

    Example:
        >>> sorted(load_official_state("200000-G.ckpt"))[:1]             # doctest: +SKIP
        ['main.0.weight']
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # torch.load hands a *.safetensors path to safetensors, with its own error type.
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, SafetensorError) as e:
        raise CheckpointError(
            f"{path} cannot be loaded as plain tensors (weights_only=True): {e}. Official "
            f"checkpoints are plain state dicts; a file that needs code to load is refused"
        ) from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(
            f"{path} is not a state dict of tensors (got {type(state).__name__}); expected "
            f"the release's G.ckpt or D.ckpt"
        )
    # A model saved from nn.DataParallel prefixes every name with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(
            f"{path} has no parameter {key!r}; is it an official StarGAN checkpoint of the "
            f"right network? Its first names: {sorted(state)[:6]}"
        )
    return state[key]


def _fit(module: torch.nn.Module, given: Mapping[str, torch.Tensor], path: Path, what: str) -> None:
    """Load ``given`` into ``module`` after checking every name and shape."""
    own = module.state_dict()
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    wrong = [
        f"{k}: checkpoint {list(given[k].shape)} vs ours {list(own[k].shape)}"
        for k in sorted(set(own) & set(given))
        if given[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        lines = [f"missing in the checkpoint: {k}" for k in missing]
        lines += [f"not in our {what}: {k}" for k in unexpected]
        lines += [f"shape mismatch {w}" for w in wrong]
        raise CheckpointError(
            f"{path} does not fit our {what} ({len(lines)} problem(s)):\n  " + "\n  ".join(lines)
        )
    module.load_state_dict(dict(given))


def _layout(attrs: Sequence[str], classes: Sequence[str]) -> LabelLayout:
    specs = []
    if attrs:
        specs.append(LabelSpec(tuple(attrs), "binary"))
    if classes:
        specs.append(LabelSpec(tuple(classes), "categorical"))
    if not specs:
        raise CheckpointError(
            "the official checkpoint holds no label names: give them in training order with "
            "--attrs (CelebA, e.g. Black_Hair Blond_Hair Brown_Hair Male Young) and/or "
            "--classes (RaFD expressions)"
        )
    return LabelLayout(tuple(specs))


def import_official(
    generator: str | Path,
    out: str | Path,
    *,
    attrs: Sequence[str] = (),
    classes: Sequence[str] = (),
    image_size: int = 128,
    discriminator: str | Path | None = None,
) -> Path:
    """Convert the release's G (and optionally D) checkpoint into a model file at ``out``.

    Widths and block counts are read from the tensors; ``image_size`` is the size the model
    was trained at (128 for the released models), which also fixes D's classifier kernel.
    With ``discriminator``, source labels can be inferred at translation time.
    """
    g_path, layout = Path(generator), _layout(attrs, classes)
    g_state = {
        k: v
        for k, v in load_official_state(g_path).items()
        if k.rsplit(".", 1)[-1] not in UNUSED_BUFFERS
    }
    first = _need(g_state, "main.0.weight", g_path)  # [conv_dim, 3 + c_dim, 7, 7]
    if first.dim() != 4 or first.shape[1] <= 3:
        raise CheckpointError(
            f"{g_path}: main.0.weight has shape {list(first.shape)}, expected "
            f"[conv_dim, 3 + c_dim, 7, 7]"
        )
    c_dim = first.shape[1] - 3
    if c_dim != layout.c_dim:
        joint = " plus a 2-slot mask" if layout.n_datasets > 1 else ""
        raise CheckpointError(
            f"{g_path} was trained with c_dim={c_dim} label channels, but the names given make "
            f"{layout.c_dim} ({layout.n_classes} names{joint}): give exactly the labels it was "
            f"trained on, in order"
        )
    d_state = None
    d_conv_dim, d_repeat_num = 64, max(r for r in range(1, 7) if image_size % 2**r == 0)
    if discriminator is not None:
        d_path = Path(discriminator)
        d_state = {}
        for k, v in load_official_state(d_path).items():
            for old, new in D_RENAMES.items():
                k = new + k[len(old) :] if k.startswith(old) else k
            d_state[k] = v
        d_conv_dim = _need(d_state, "main.0.weight", d_path).shape[0]
        d_repeat_num = len(_indices(d_state, r"main\.(\d+)\.weight"))
    try:
        cfg = ModelConfig(
            image_size=image_size,
            c_dim=c_dim,
            n_classes=layout.n_classes,
            g_conv_dim=first.shape[0],
            d_conv_dim=d_conv_dim,
            g_repeat_num=len(_indices(g_state, r"main\.(\d+)\.main\.0\.weight")),
            d_repeat_num=d_repeat_num,
        )
    except ValueError as e:
        raise CheckpointError(f"{g_path}: no model of ours matches: {e}") from None
    g = build_generator(cfg)
    _fit(g, g_state, g_path, "generator")
    d = None
    if d_state is not None:
        d = build_discriminator(cfg)
        _fit(d, d_state, Path(discriminator), "discriminator")  # type: ignore[arg-type]
    out = Path(out)
    save_model_file(out, g, cfg, layout, discriminator=d)
    return out
