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

A checkpoint may come from a stranger, and ``torch.load`` allocates each storage at the size
the pickle claims before reading it. So the file is read once (a regular file of at most
``MAX_CHECKPOINT_BYTES``), its tensors are first read as shapes only (meta tensors, no memory)
and their storages' claimed sizes checked against the bytes the file holds; the model config
they imply is checked against the size limits (:class:`~stargan.config.ModelConfig`), the
networks are built on the meta device and every name and shape compared; only then are the
weights loaded and copied in, and NaN or infinite weights are refused.

Example:
    >>> import_official("200000-G.ckpt", "celeba-128.safetensors",
    ...                 attrs=["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"],
    ...                 discriminator="200000-D.ckpt")                  # doctest: +SKIP
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stargan.checkpoint import CheckpointError, load_module_weights, save_model_file
from stargan.config import MAX_IMAGE_SIZE, MAX_PARAMETERS, ConfigError, ModelConfig
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.files import UnsafeFileError, read_regular

# torch is imported where tensors are read, after the file's checks: a refused file is
# reported without loading torch (over a second).
if TYPE_CHECKING:
    import torch

UNUSED_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
"""Instance-norm buffers of the release that carry nothing (it never switches to eval)."""
D_RENAMES = {"conv1.": "src.", "conv2.": "cls."}
"""The release's discriminator head names -> ours."""
MAX_CHECKPOINT_BYTES = 4 * MAX_PARAMETERS + 2**26
"""Largest official checkpoint read (1.06 GiB): the largest network we accept, in float32, plus
64 MiB for the pickle and the unused buffers. The release's 128 px G is 34 MB, its D 179 MB."""
MAX_PICKLE_BYTES = 2**22
"""Largest pickle part of a legacy-format checkpoint (4 MiB): it holds only names and shapes,
a few KB for StarGAN's nets; the weights follow it."""
LOAD_ERRORS = (
    pickle.UnpicklingError, AssertionError, AttributeError, EOFError, IndexError, KeyError,
    RuntimeError, TypeError, ValueError,
)  # fmt: skip
"""What torch's restricted unpickler raises on bytes that are not a plain checkpoint."""


class _Claims:
    """``persistent_load`` for a legacy pickle: each storage its persistent id ``('storage',
    type, key, location, numel, view)`` claims becomes a meta storage (its size known, nothing
    allocated), refused when it claims more than the whole file holds."""

    def __init__(self, file_bytes: int, path: Path) -> None:
        self.file_bytes, self.path = file_bytes, path
        self.storages: dict[object, torch.storage.TypedStorage] = {}
        self.total = 0
        """Bytes claimed by all storages."""

    def __call__(self, pid: tuple) -> torch.storage.TypedStorage:
        import torch

        _, storage_type, key, _location, numel, view = pid
        if key in self.storages:
            return self.storages[key]
        dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
        if not isinstance(numel, int) or numel < 0:
            raise CheckpointError(f"{self.path}: storage {key!r} has size {numel!r}, not a count")
        if numel * dtype.itemsize > self.file_bytes:
            raise CheckpointError(
                f"{self.path}: storage {key!r} claims {numel * dtype.itemsize:,} bytes ({numel:,} "
                f"x {dtype}), more than the {self.file_bytes:,} bytes of the whole file: a forged "
                f"or damaged checkpoint"
            )
        if view is not None:
            raise CheckpointError(
                f"{self.path}: storage {key!r} is a view of another; state dicts have none"
            )
        self.total += numel * dtype.itemsize
        self.storages[key] = torch.storage.TypedStorage(
            wrap_storage=torch.UntypedStorage(numel * dtype.itemsize, device="meta"),
            dtype=dtype,
            _internal=True,  # as torch.load builds them (no deprecation warning)
        )
        return self.storages[key]


def _legacy_shapes(data: bytes, path: Path) -> object:
    """The object a legacy-format (PyTorch < 1.6) checkpoint holds, its tensors on the meta
    device. The format is four pickles (magic number, protocol, system info, the object), the
    list of storage keys, then each storage's bytes. The pickle is read by torch.load's own
    restricted unpickler (what weights_only=True runs), with storages that exist only as
    claims: torch has no public way to read shapes alone from this format."""
    import torch
    import torch._weights_only_unpickler as weights_only_unpickler

    buf = io.BytesIO(data[:MAX_PICKLE_BYTES])
    claims = _Claims(len(data), path)
    try:
        magic = weights_only_unpickler.load(buf, encoding="utf-8")
        if magic != torch.serialization.MAGIC_NUMBER:
            raise CheckpointError(
                f"{path} is not a checkpoint written by torch.save: neither a zip archive nor "
                f"the legacy format (its magic number is missing)"
            )
        weights_only_unpickler.load(buf, encoding="utf-8")  # protocol version
        weights_only_unpickler.load(buf, encoding="utf-8")  # system info
        unpickler = weights_only_unpickler.Unpickler(buf, encoding="utf-8")
        unpickler.persistent_load = claims
        state = unpickler.load()
    except EOFError:
        raise CheckpointError(
            f"{path} ends inside its pickle, or its pickle is longer than the "
            f"{MAX_PICKLE_BYTES:,} bytes that a checkpoint's names and shapes need"
        ) from None
    # torch.load allocates every storage the pickle names before it reads any, so together
    # they must fit in the bytes after the pickle.
    if claims.total > len(data) - buf.tell():
        raise CheckpointError(
            f"{path}: its tensors claim {claims.total:,} bytes, more than the "
            f"{len(data) - buf.tell():,} bytes after its pickle: a forged or damaged checkpoint"
        )
    return state


def _state_dict(state: object, path: Path) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()
    ):
        raise CheckpointError(
            f"{path} is not a state dict of tensors (got {type(state).__name__}); expected "
            f"the release's G.ckpt or D.ckpt"
        )
    # A model saved from nn.DataParallel prefixes every name with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


class OfficialCheckpoint:
    """A release checkpoint read once: its bytes, and :attr:`shapes`, its tensors as meta
    tensors (names, shapes, dtypes; no memory), checked against the bytes the file holds.

    Example:
        >>> ckpt = OfficialCheckpoint("200000-G.ckpt")                  # doctest: +SKIP
        >>> ckpt.shapes["main.0.weight"].shape                           # doctest: +SKIP
        torch.Size([64, 8, 7, 7])
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path = Path(path)
        try:
            self._data = read_regular(path, MAX_CHECKPOINT_BYTES, "official checkpoint")
        except FileNotFoundError:
            raise CheckpointError(f"official checkpoint {path} does not exist") from None
        except UnsafeFileError as e:
            raise CheckpointError(str(e)) from None
        self.shapes = self._load(meta=True)
        # For the zip format torch checks each record's size before allocating its storage;
        # this makes sure of it: the storages cannot claim more than the file holds (counted
        # per tensor: the tensors of a state dict share no storage).
        claimed = sum(t.untyped_storage().nbytes() for t in self.shapes.values())
        if claimed > len(self._data):
            raise CheckpointError(
                f"{path}: its tensors claim {claimed:,} bytes, more than the "
                f"{len(self._data):,} bytes of the file: a forged or damaged checkpoint"
            )

    def tensors(self) -> dict[str, torch.Tensor]:
        """The weights, loaded from the bytes :attr:`shapes` were checked on."""
        return self._load(meta=False)

    def _load(self, meta: bool) -> dict[str, torch.Tensor]:
        # Zip (PyTorch >= 1.6): torch reads shapes alone with map_location="meta", and checks
        # each record's size before allocating its storage. Legacy: see _legacy_shapes.
        import torch

        is_zip = self._data[:4] == b"PK\x03\x04"
        try:
            if meta and not is_zip:
                state = _legacy_shapes(self._data, self.path)
            else:
                state = torch.load(
                    io.BytesIO(self._data),
                    map_location="meta" if meta else "cpu",
                    weights_only=True,
                )
        except CheckpointError:
            raise
        except LOAD_ERRORS as e:
            raise CheckpointError(
                f"{self.path} cannot be loaded as plain tensors (weights_only=True): {e}. "
                f"Official checkpoints are plain state dicts; a file that needs code to load "
                f"is refused"
            ) from None
        return _state_dict(state, self.path)


def load_official_state(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from the release, loaded without running code (``weights_only=True``) and
    only after its claimed sizes were checked (:class:`OfficialCheckpoint`).

    Example:
        >>> sorted(load_official_state("200000-G.ckpt"))[:1]             # doctest: +SKIP
        ['main.0.weight']
    """
    return OfficialCheckpoint(path).tensors()


def _indices(state: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    return sorted({int(m.group(1)) for k in state if (m := re.fullmatch(pattern, k))})


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(
            f"{path} has no parameter {key!r}; is it an official StarGAN checkpoint of the "
            f"right network? Its first names: {sorted(state)[:6]}"
        )
    return state[key]


def _check_fit(
    module: torch.nn.Module, given: Mapping[str, torch.Tensor], path: Path, what: str
) -> None:
    """Compare every name and shape of ``given`` with ``module`` (built on the meta device)."""
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


def _generator_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in UNUSED_BUFFERS}


def _discriminator_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    renamed = {}
    for k, v in state.items():
        for old, new in D_RENAMES.items():
            k = new + k[len(old) :] if k.startswith(old) else k
        renamed[k] = v
    return renamed


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
    if not (
        isinstance(image_size, int) and 4 <= image_size <= MAX_IMAGE_SIZE and image_size % 4 == 0
    ):
        raise ConfigError(
            f"image size (--image-size) must be a multiple of 4 (G down-samples twice) from 4 to "
            f"{MAX_IMAGE_SIZE}, got {image_size!r}: give the size the checkpoint was trained at "
            f"(128 for the released models)"
        )
    layout = _layout(attrs, classes)
    g_file = OfficialCheckpoint(generator)
    g_shapes = _generator_state(g_file.shapes)
    first = _need(g_shapes, "main.0.weight", g_file.path)  # [conv_dim, 3 + c_dim, 7, 7]
    if first.dim() != 4 or first.shape[1] <= 3:
        raise CheckpointError(
            f"{g_file.path}: main.0.weight has shape {list(first.shape)}, expected "
            f"[conv_dim, 3 + c_dim, 7, 7]"
        )
    c_dim = first.shape[1] - 3
    if c_dim != layout.c_dim:
        joint = " plus a 2-slot mask" if layout.n_datasets > 1 else ""
        raise CheckpointError(
            f"{g_file.path} was trained with c_dim={c_dim} label channels, but the names given "
            f"make {layout.c_dim} ({layout.n_classes} names{joint}): give exactly the labels it "
            f"was trained on, in order"
        )
    d_file = OfficialCheckpoint(discriminator) if discriminator is not None else None
    d_conv_dim, d_repeat_num = 64, max(r for r in range(1, 7) if image_size % 2**r == 0)
    if d_file is not None:
        d_shapes = _discriminator_state(d_file.shapes)
        d_conv_dim = _need(d_shapes, "main.0.weight", d_file.path).shape[0]
        d_repeat_num = len(_indices(d_shapes, r"main\.(\d+)\.weight"))
    try:
        cfg = ModelConfig(
            image_size=image_size,
            c_dim=c_dim,
            n_classes=layout.n_classes,
            g_conv_dim=first.shape[0],
            d_conv_dim=d_conv_dim,
            g_repeat_num=len(_indices(g_shapes, r"main\.(\d+)\.main\.0\.weight")),
            d_repeat_num=d_repeat_num,
        )
    except ValueError as e:
        raise CheckpointError(f"{g_file.path}: no model of ours matches: {e}") from None
    import torch

    from stargan.models import build_discriminator, build_generator

    # Names and shapes are compared on meta-device nets before any weight is read.
    with torch.device("meta"):
        g = build_generator(cfg)
        d = build_discriminator(cfg) if d_file is not None else None
    _check_fit(g, g_shapes, g_file.path, "generator")
    if d_file is not None:
        _check_fit(d, d_shapes, d_file.path, "discriminator")
    load_module_weights(g, _generator_state(g_file.tensors()), "", g_file.path)
    if d_file is not None:
        load_module_weights(d, _discriminator_state(d_file.tensors()), "", d_file.path)
    out = Path(out)
    save_model_file(out, g, cfg, layout, discriminator=d)
    return out
