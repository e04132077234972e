"""Safe, atomic files: model files for translation and training-state checkpoints.

Everything is safetensors (plain tensors, no pickle: loading a file can never run code) with
JSON metadata. Every file carries a SHA-256 over its tensors and metadata, so truncation or
bit rot is caught on load rather than surfacing as garbage outputs. Writes go to a temporary
file in the same folder, are fsynced and then renamed over the target: a crash at any moment
leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, safe_open

from stargan.atomic import atomic_write_bytes, atomic_writer  # noqa: F401 (ckpt.atomic_write_bytes)
from stargan.config import ModelConfig, TrainConfig
from stargan.data.labels import LabelLayout
from stargan.files import UnsafeFileError, check_regular, describe_error, parse_json

# Reading a file's header and metadata needs no torch: a command refuses a bad file before
# it imports torch (over a second). torch is imported where tensors are made or read.
if TYPE_CHECKING:
    import torch

MODEL_FORMAT = "stargan-model/1"
STATE_FORMAT = "stargan-train-state/1"
MAX_FILE_BYTES = 1 << 30
"""Largest model or checkpoint file read (1 GiB): the paper's 256 px joint training state,
G + D with both optimisers' moments, is about 0.75 GiB."""


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file and why."""


CHUNK_BYTES = 16 << 20
"""Most bytes of a tensor copied at once while hashing or writing it: a tensor already
contiguous in CPU memory is read in place, any other is copied (to the CPU, in C order) in
pieces of at most this size, so a save never holds a second copy of the tensors."""

_ST_DTYPES = {
    "torch.uint64": "U64",
    "torch.int64": "I64",
    "torch.float64": "F64",
    "torch.complex64": "C64",
    "torch.float32": "F32",
    "torch.uint32": "U32",
    "torch.int32": "I32",
    "torch.bfloat16": "BF16",
    "torch.float16": "F16",
    "torch.uint16": "U16",
    "torch.int16": "I16",
    "torch.float8_e4m3fn": "F8_E4M3",
    "torch.float8_e5m2": "F8_E5M2",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}
"""safetensors' name of each dtype, in the order its writer lays tensors out (this dtype rank,
then name): a file written here is the one safetensors.torch.save writes."""
_ST_RANK = {dtype: rank for rank, dtype in enumerate(_ST_DTYPES)}


def _memory(t: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor, in place. as_strided, not view(-1): a tensor with
    one element is contiguous whatever its stride, and uint8 views need a stride of 1."""
    import torch

    return memoryview(t.as_strided((t.numel(),), (1,)).view(torch.uint8).numpy())


def _pieces(t: torch.Tensor) -> Iterator[memoryview]:
    """The bytes of ``t`` in C order (what safetensors stores), at most :data:`CHUNK_BYTES`
    at a time: views of its memory when it is a contiguous CPU tensor, else bounded copies."""
    t = t.detach()
    if t.numel() == 0:
        return
    if t.device.type == "cpu" and t.is_contiguous():
        data = _memory(t)
        for start in range(0, len(data), CHUNK_BYTES):
            yield data[start : start + CHUNK_BYTES]
        return
    t = t.reshape(1) if t.dim() == 0 else t
    row = t[0].numel() * t.element_size()
    if row > CHUNK_BYTES:
        for sub in t:
            yield from _pieces(sub)
        return
    rows = CHUNK_BYTES // row
    for start in range(0, t.shape[0], rows):
        piece = t[start : start + rows].contiguous().cpu()  # on its device first, then moved
        yield _memory(piece)


def _digest(tensors: Mapping[str, torch.Tensor], metadata: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        t = tensors[key]
        h.update(f"{key}|{t.dtype}|{list(t.shape)}|".encode())
        for piece in _pieces(t):
            h.update(piece)
    h.update(json.dumps(metadata, sort_keys=True).encode())
    return h.hexdigest()


def _safetensors_header(
    tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[str]]:
    """(the bytes before the tensors' data, the tensors' names in file order) of the file
    safetensors writes: an 8-byte little-endian length, then a JSON header (metadata under
    ``__metadata__``, then dtype, shape and byte range of each tensor) padded with spaces to
    a multiple of 8 bytes. Metadata keys are sorted (safetensors' own order is a hash map's,
    so this is one of the files it may write, and the same one every time)."""
    unknown = {str(t.dtype) for t in tensors.values() if str(t.dtype) not in _ST_DTYPES}
    if unknown or "__metadata__" in tensors:
        raise ValueError(
            f"cannot store dtypes {sorted(unknown)} or a tensor named '__metadata__' in "
            f"safetensors; storable dtypes: {', '.join(_ST_DTYPES)}"
        )
    order = sorted(tensors, key=lambda k: (_ST_RANK[str(tensors[k].dtype)], k))
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset = 0
    for key in order:
        t = tensors[key]
        end = offset + t.numel() * t.element_size()
        header[key] = {
            "dtype": _ST_DTYPES[str(t.dtype)],
            "shape": list(t.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, order


def write_safetensors(
    path: Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None
) -> None:
    """Atomically write the safetensors file of ``tensors`` (on any device, any strides) and
    ``metadata``, streamed: the header, then each tensor's bytes in pieces of at most
    :data:`CHUNK_BYTES` (see :func:`_pieces`). Nothing may modify the tensors meanwhile."""
    head, order = _safetensors_header(tensors, metadata)
    with atomic_writer(Path(path)) as f:
        f.write(head)
        for key in order:
            for piece in _pieces(tensors[key]):
                f.write(piece)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Atomically write ``tensors`` with JSON-encoded ``metadata`` and a checksum.

    Streamed (:func:`write_safetensors`): the peak memory of a save is one piece of a tensor,
    not a copy of all of them. The checksum, which goes in the header and so before the data,
    is a first pass over the tensors in place; nothing may modify them until this returns.
    """
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    meta["sha256"] = _digest(tensors, meta)
    write_safetensors(path, tensors, meta)


@contextlib.contextmanager
def _opened(
    path: Path, expect_format: str, framework: str = "pt"
) -> Iterator[tuple[Any, dict[str, str]]]:
    """(memory-mapped file, metadata) of a regular safetensors file of at most
    :data:`MAX_FILE_BYTES` in ``expect_format``; every way it can fail is a CheckpointError."""
    try:
        check_regular(path, MAX_FILE_BYTES, "model or checkpoint file")
        with safe_open(str(path), framework) as f:
            meta = dict(f.metadata() or {})
            fmt = meta.get("format")
            if fmt != expect_format:
                raise CheckpointError(f"{path} has format {fmt!r}, expected {expect_format!r}")
            yield f, meta
    except (OSError, UnsafeFileError) as e:
        raise CheckpointError(f"cannot read {path}: {describe_error(e)}") from None
    except (SafetensorError, ValueError, UnicodeDecodeError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated, corrupt or another "
            f"format such as a pickle): {e}"
        ) from None


def load_tensors(path: Path, expect_format: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read and verify a file written by :func:`save_tensors` (no code can run while loading).

    The file must be a regular file of at most :data:`MAX_FILE_BYTES`; it is memory-mapped, so
    the header and metadata are checked before any tensor is copied and the tensors are read
    once (no second copy of the file's bytes).
    """
    path = Path(path)
    with _opened(path, expect_format) as (f, meta):
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (not a dict)
    stored = meta.pop("sha256", None)
    if stored is None or stored != _digest(tensors, meta):
        raise CheckpointError(f"{path} failed its checksum: the file is corrupt or was modified")
    return tensors, meta


def _finite(t: torch.Tensor) -> bool:
    """Whether every element is finite. min and max carry any NaN or infinity, and reduce
    without a mask the size of ``t``: 11x faster than isfinite().all() on D's weights."""
    import torch

    if not t.is_floating_point() or t.numel() == 0:
        return True
    low, high = t.aminmax()
    return bool(torch.isfinite(low) & torch.isfinite(high))


def load_module_weights(
    module: torch.nn.Module, tensors: dict[str, torch.Tensor], prefix: str, path: Path
) -> None:
    """Copy ``prefix``-keyed tensors into ``module``, naming every missing, misshapen, mistyped
    or non-finite one; nothing is copied unless every tensor fits.

    ``module`` may be built on the meta device (``with torch.device("meta"):``), where it holds
    no memory: its names and shapes are checked against the file's, and only then is it
    materialised from the file's tensors (cast to its own dtypes). Loaders that build a network
    from a file's config do this, so a file whose tensors do not fit allocates no network.
    """
    own = module.state_dict()
    given = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    common = sorted(set(own) & set(given))
    wrong = [
        f"{k}: file {list(given[k].shape)} vs model {list(own[k].shape)}"
        for k in common
        if given[k].shape != own[k].shape
    ]
    # Floats load into floats (any precision: compacted files hold float16), integers into
    # integers; anything else is not these weights.
    kinds = [
        f"{k}: file {given[k].dtype} vs model {own[k].dtype}"
        for k in common
        if given[k].is_floating_point() != own[k].is_floating_point()
    ]
    if missing or unexpected or wrong or kinds:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if wrong:
            parts.append("shape mismatch " + "; ".join(wrong[:5]))
        if kinds:
            parts.append("dtype mismatch " + "; ".join(kinds[:5]))
        raise CheckpointError(
            f"{path}: weights under '{prefix}' do not fit this architecture: " + ", ".join(parts)
        )
    # The checksum proves the file is the one written, not that its weights are usable: a run
    # that diverged saves NaNs, and every image translated with them would be NaN.
    bad = [prefix + k for k, v in sorted(given.items()) if not _finite(v)]
    if bad:
        raise CheckpointError(
            f"{path}: {bad[0]} holds NaN or infinite values ({len(bad)} tensor(s) do: "
            f"{', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}); these weights are unusable "
            f"(a run that diverged, or a damaged file)"
        )
    if any(t.is_meta for t in own.values()):
        # copy: the module owns its weights, whoever else holds the file's tensors.
        module.load_state_dict(
            {k: v.to(own[k].dtype, copy=True) for k, v in given.items()}, assign=True
        )
    else:
        module.load_state_dict(given)


def optimizer_tensors(
    opt: torch.optim.Optimizer, prefix: str
) -> tuple[dict[str, torch.Tensor], Any]:
    """Split an optimizer's state into tensors (for safetensors) and JSON (param groups)."""
    import torch

    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for idx, st in sd["state"].items():
        for key, value in st.items():
            if not torch.is_tensor(value):
                value = torch.tensor(value)
            tensors[f"{prefix}{idx}.{key}"] = value
    return tensors, sd["param_groups"]


def load_optimizer(
    opt: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    prefix: str,
    param_groups: Any,
    path: Path,
) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    import torch

    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, name = key[len(prefix) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    try:
        opt.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: optimizer state '{prefix}' does not fit: {e}") from None
    # Files hold contiguous tensors; a channels_last parameter (speed.channels_last) needs its
    # moments in its own memory order: fused Adam walks parameter, gradient and state in
    # memory order without looking at strides, so mismatched ones update the wrong elements.
    for param, param_state in opt.state.items():
        for key, value in param_state.items():
            if (
                torch.is_tensor(value)
                and value.shape == param.shape
                and value.stride() != param.stride()
            ):
                param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def save_model_file(
    path: Path,
    generator: torch.nn.Module,
    model_cfg: Any,
    layout: Any,
    *,
    step: int | None = None,
    train_config: Any = None,
    discriminator: torch.nn.Module | None = None,
) -> None:
    """A self-contained generator file: weights + model config + label names, so that
    translation needs nothing else.

    With ``discriminator``, D's weights are kept too (under ``D.``, flagged by the metadata
    key ``discriminator``) so that translation can infer an image's current labels with D's
    classifier when the user does not give them. Files without D stay valid.
    """
    meta: dict[str, Any] = {"format": MODEL_FORMAT, **model_metadata(model_cfg, layout, step)}
    if train_config is not None:
        meta["train_config"] = train_config.to_json()
    tensors = {f"G.{k}": v for k, v in generator.state_dict().items()}
    if discriminator is not None:
        meta["discriminator"] = "true"
        tensors |= {f"D.{k}": v for k, v in discriminator.state_dict().items()}
    save_tensors(path, tensors, meta)


def model_metadata(config: ModelConfig, layout: LabelLayout, step: int | None) -> dict[str, str]:
    """The metadata that makes a model file (or an ONNX export) self-contained: the model
    config, the label names and the training step."""
    meta = {
        "model_config": json.dumps(dataclasses.asdict(config)),
        "labels": json.dumps(layout.to_dict()),
    }
    if step is not None:
        meta["step"] = str(step)
    return meta


def parse_model_metadata(
    path: Path, meta: Mapping[str, str]
) -> tuple[ModelConfig, LabelLayout, int | None]:
    """(config, labels, step) from a model file's metadata, checked against each other."""
    try:
        config = ModelConfig(**parse_json(meta["model_config"]))
        layout = LabelLayout.from_dict(parse_json(meta["labels"]))
        step = int(meta["step"]) if "step" in meta else None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: missing or malformed model metadata ({e})") from None
    if (layout.c_dim, layout.n_classes) != (config.c_dim, config.n_classes):
        raise CheckpointError(
            f"{path}: its labels need c_dim={layout.c_dim}, n_classes={layout.n_classes} but "
            f"the model config says c_dim={config.c_dim}, n_classes={config.n_classes}"
        )
    return config, layout, step


def read_metadata(path: Path, expect_format: str) -> dict[str, str]:
    """A file's metadata from its header alone (no tensor is read, no checksum verified: for
    what a command needs to know before it loads the model itself)."""
    path = Path(path)
    with _opened(path, expect_format, "np") as (_, meta):  # the same checks, without torch
        return meta


def read_train_config(path: Path, fix: str = "") -> TrainConfig:
    """The training config a model file records (files written by training do; imported
    official models do not); ``fix`` tells the user how to do without it."""
    meta = read_metadata(path, MODEL_FORMAT)
    if "train_config" not in meta:
        raise CheckpointError(
            f"{path} records no training config (models from `stargan import-official` have "
            f"none), and this command needs it to find the model's data"
            + (f"; {fix}" if fix else "")
        )
    try:
        return TrainConfig.from_dict(parse_json(meta["train_config"]))
    except ValueError as e:
        raise CheckpointError(f"{path}: malformed training config ({e})") from None
