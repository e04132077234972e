"""Translating with a file written by ``stargan export --format onnx``: G's graph runs in ONNX
Runtime behind G's call signature. This module only reads; :mod:`stargan.export` writes.

An exported file is self-contained: G's graph and weights, plus the model config and the label
names as ONNX metadata (``metadata_props``), so ``stargan.load("G.onnx")`` gives the same
:class:`~stargan.inference.StarGAN` object as a ``.safetensors`` model file. It holds G only
(no D), so source labels cannot be inferred from it: give them when they matter.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stargan import checkpoint as ckpt
from stargan.checkpoint import CheckpointError
from stargan.config import ConfigError, ModelConfig
from stargan.data.labels import LabelLayout
from stargan.extras import require
from stargan.files import UnsafeFileError, describe_error, read_regular
from stargan.models.blocks import check_images

ONNX_FORMAT = "stargan-onnx/1"
INPUT_NAMES = ("image", "labels")  # [N, 3, S, S] in [-1, 1]; [N, c_dim]
OUTPUT_NAME = "translated"  # [N, 3, S, S]


class OnnxGenerator:
    """G's call signature over an ONNX Runtime session, so the translation pipeline
    (:class:`~stargan.inference.StarGAN`) runs unchanged: (x [N, 3, S, S], c [N, c_dim]) ->
    [N, 3, S, S] as a CPU float32 tensor."""

    def __init__(self, session: object, image_size: int, c_dim: int) -> None:
        self.session, self.image_size, self.c_dim = session, image_size, c_dim
        self.device = torch.device("cpu")  # inputs are handed over as NumPy arrays

    def __call__(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        check_images(x, self.image_size, "Generator (ONNX)")
        if c.dim() != 2 or c.shape != (x.shape[0], self.c_dim):
            raise ValueError(
                f"Generator (ONNX) expects labels shaped [N={x.shape[0]}, c_dim={self.c_dim}], "
                f"got {list(c.shape)}"
            )
        feed = {
            INPUT_NAMES[0]: x.detach().float().cpu().contiguous().numpy(),
            INPUT_NAMES[1]: c.detach().float().cpu().contiguous().numpy(),
        }
        return torch.from_numpy(self.session.run(None, feed)[0])


def read_onnx(
    path: str | Path, device: str | torch.device = "cpu", *, threads: int | None = None
) -> tuple[OnnxGenerator, ModelConfig, LabelLayout, int | None]:
    """(G, config, labels, step) of a file written by ``stargan export --format onnx``, G
    computed by ONNX Runtime (``stargan.load`` wraps them in a StarGAN).

    ``device`` 'cuda' needs an onnxruntime build with the CUDA provider (onnxruntime-gpu);
    ``threads`` caps ONNX Runtime's intra-op threads (default: its own choice).
    """
    path = Path(path)
    try:
        data = read_regular(path, ckpt.MAX_FILE_BYTES, "ONNX file")
    except (OSError, UnsafeFileError) as e:
        raise CheckpointError(f"cannot read {path}: {describe_error(e)}") from None
    session = session_for(data, path, str(device), threads)
    props = session.get_modelmeta().custom_metadata_map
    meta = {k.removeprefix("stargan."): v for k, v in props.items() if k.startswith("stargan.")}
    if meta.get("format") != ONNX_FORMAT:
        raise CheckpointError(
            f"{path} is an ONNX model but not one written by `stargan export` (its metadata "
            f"has format {meta.get('format')!r}, expected {ONNX_FORMAT!r}), so its labels are "
            f"unknown; export the model file with: stargan export --model MODEL.safetensors "
            f"--format onnx --out {path.name}"
        )
    config, layout, step = ckpt.parse_model_metadata(path, meta)
    inputs = {i.name: i.shape for i in session.get_inputs()}
    expected = {
        INPUT_NAMES[0]: [3, config.image_size, config.image_size],
        INPUT_NAMES[1]: [config.c_dim],
    }
    if {k: v[1:] for k, v in inputs.items()} != expected:
        raise CheckpointError(
            f"{path}: its graph inputs {inputs} do not match its metadata (expected "
            f"image [N, 3, {config.image_size}, {config.image_size}], labels [N, {config.c_dim}])"
        )
    return OnnxGenerator(session, config.image_size, config.c_dim), config, layout, step


def session_for(data: bytes, path: Path, device: str, threads: int | None = None) -> object:
    ort = require("onnxruntime", extra="onnx", purpose=f"running the ONNX model {path}")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ConfigError(
                f"this onnxruntime has no CUDA provider ({ort.get_available_providers()}); "
                f"install onnxruntime-gpu, or use --device cpu"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif device == "cpu":
        providers = ["CPUExecutionProvider"]
    else:
        raise ConfigError(f"ONNX models run on 'cpu' or 'cuda', got device {device!r}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    errors = (
        ort_errors.Fail,
        ort_errors.InvalidProtobuf,
        ort_errors.InvalidGraph,
        ort_errors.InvalidArgument,
        ort_errors.NotImplemented,
        ort_errors.RuntimeException,
    )
    try:
        return ort.InferenceSession(data, options, providers=providers)
    except errors as e:
        raise CheckpointError(f"{path} is not a usable ONNX model: {e}") from None
