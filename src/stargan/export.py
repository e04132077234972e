"""Export the generator for other runtimes (ONNX), or a compact model file. This module only
writes; :mod:`stargan.onnx_runtime` runs what it writes.

Example:
    >>> export_model("runs/demo/model.safetensors", "G.onnx")             # doctest: +SKIP
    >>> model = stargan.load("G.onnx")          # G runs in ONNX Runtime    # doctest: +SKIP
    >>> y = model.translate(x, {"Blond_Hair": 1}, source={"Black_Hair": 1})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from stargan import checkpoint as ckpt
from stargan import onnx_runtime
from stargan.atomic import atomic_write_bytes
from stargan.checkpoint import CheckpointError
from stargan.config import EXPORT_DTYPES, EXPORT_FORMATS, ONNX_OPSET, ConfigError
from stargan.extras import require
from stargan.inference import PACKAGED_MODEL, StarGAN, load
from stargan.onnx_runtime import INPUT_NAMES, ONNX_FORMAT, OUTPUT_NAME

EXPORT_TOLERANCE = 1e-3
"""Largest |ONNX Runtime - PyTorch| accepted by the check made after every export."""


def export_model(
    model: StarGAN | str | Path | None,
    out: str | Path,
    fmt: str = "onnx",
    *,
    opset: int = ONNX_OPSET,
    check: bool = True,
    dtype: str = "float32",
    discriminator: bool = True,
) -> Path:
    """Export ``model``'s generator (a model file or a loaded model) to ``out`` in ``fmt``.

    'onnx': with ``check``, ONNX Runtime runs the written file on a random batch and the export
    is refused unless it matches PyTorch within :data:`EXPORT_TOLERANCE`. 'safetensors': a
    model file (``model`` must be a file) with its weights in ``dtype`` and, unless
    ``discriminator`` is False, D kept for inferring source labels (:func:`compact_model_file`).

    Example:
        >>> export_model("runs/demo/model.safetensors", "G.onnx")        # doctest: +SKIP
        PosixPath('G.onnx')
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; valid: {', '.join(EXPORT_FORMATS)}")
    if fmt == "safetensors":
        source = model.path if isinstance(model, StarGAN) else model
        return compact_model_file(source, out, dtype=dtype, discriminator=discriminator)
    if not isinstance(model, StarGAN):
        model = load(model, backend="torch")
    if not isinstance(model.generator, torch.nn.Module):
        raise ConfigError(
            f"{model.path} is already an exported model; export the .safetensors file"
        )
    return export_onnx(model, out, opset=opset, check=check)


def compact_model_file(
    source: str | Path | None,
    out: str | Path,
    *,
    dtype: str = "float16",
    discriminator: bool = True,
) -> Path:
    """A smaller copy of a model file: weights stored in ``dtype`` (loading casts them back to
    float32) and D dropped unless ``discriminator``. Metadata (config, labels, training config)
    is kept, so the copy loads, translates and evaluates like the original.

    Example:
        >>> compact_model_file("runs/long/model.safetensors", "small.safetensors")  # doctest: +SKIP
        PosixPath('small.safetensors')
    """
    if dtype not in EXPORT_DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; valid: {', '.join(EXPORT_DTYPES)}")
    path = Path(source) if source is not None else PACKAGED_MODEL
    tensors, meta = ckpt.load_tensors(path, ckpt.MODEL_FORMAT)
    if not discriminator:
        tensors = {k: v for k, v in tensors.items() if not k.startswith("D.")}
        meta.pop("discriminator", None)
    cast = getattr(torch, dtype)
    tensors = {k: v.to(cast) if v.is_floating_point() else v for k, v in tensors.items()}
    out = Path(out)
    ckpt.save_tensors(out, tensors, meta)
    return out


def export_onnx(
    model: StarGAN, out: str | Path, *, opset: int = ONNX_OPSET, check: bool = True
) -> Path:
    """Write G as ONNX with a dynamic batch axis and the config and labels as metadata."""
    if opset < ONNX_OPSET:
        # Older opsets go through ONNX's version converter, which cannot lower every op of G
        # (and leaves the file at 18 when it fails).
        raise ConfigError(f"ONNX export writes opset {ONNX_OPSET} or newer, got --opset {opset}")
    purpose = "ONNX export (stargan export --format onnx)"
    for module in ("onnx", "onnxscript"):  # torch's exporter builds the graph with them
        require(module, extra="onnx", purpose=purpose)
    out = Path(out)
    g = model.generator.eval()
    device = model.device
    size, c_dim = model.config.image_size, model.config.c_dim
    # Batch 2, not 1: the exporter would treat a size-1 axis as a constant. Own generator:
    # exporting leaves the caller's random state alone.
    rng = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, size, size, generator=rng) * 2 - 1).to(device)
    c = torch.rand(2, c_dim, generator=rng).to(device)
    with _quiet_exporter():
        program = torch.onnx.export(
            g,
            (x, c),
            dynamo=True,
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: "batch"}, "c": {0: "batch"}},
            opset_version=opset,
            verbose=False,
        )
    written = program.model.opset_imports.get("", None)
    if written != opset:
        raise ConfigError(f"the exporter wrote opset {written}, not the {opset} asked for")
    meta = {"format": ONNX_FORMAT, **ckpt.model_metadata(model.config, model.layout, model.step)}
    program.model.metadata_props.update({f"stargan.{k}": v for k, v in meta.items()})
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model.onnx"
        program.save(staged, external_data=False)  # one file, weights included
        data = staged.read_bytes()
    if check:
        _check_export(data, g, x.cpu(), c.cpu(), out)
    atomic_write_bytes(out, data)
    return out


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes that do not concern G (torchvision ops, axis naming)."""
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name")
            warnings.filterwarnings("ignore", category=FutureWarning)
            yield
    finally:
        log.setLevel(level)


def _check_export(
    data: bytes, g: torch.nn.Module, x: torch.Tensor, c: torch.Tensor, out: Path
) -> None:
    session = onnx_runtime.session_for(data, out, "cpu")
    got = session.run(None, {INPUT_NAMES[0]: x.numpy(), INPUT_NAMES[1]: c.numpy()})[0]
    with torch.no_grad():
        want = g(x.to(next(g.parameters()).device), c.to(next(g.parameters()).device)).cpu()
    diff = float(np.abs(got - want.numpy()).max())
    if not diff <= EXPORT_TOLERANCE:
        raise CheckpointError(
            f"the ONNX export of G differs from PyTorch by {diff:.3g} (> {EXPORT_TOLERANCE}); "
            f"{out} was not written. Please report this with your torch and onnx versions."
        )
