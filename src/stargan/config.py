"""Typed configuration: everything a run needs, as frozen dataclasses.

The CLI maps flags onto these objects and nothing else; a run saves the resolved config
beside its outputs and inside every model file, so any result can be traced to its settings.

Example:
    >>> cfg = TrainConfig()
    >>> cfg.optim.n_critic
    5
    >>> TrainConfig.from_dict(cfg.to_dict()) == cfg
    True
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import json
import math
import os
import textwrap
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

MAX_THREADS = 512
"""Most CPU threads a run may ask for: far above any machine we know of, and far below the
count at which OpenMP aborts the process instead of raising."""
MAX_IMAGE_SIZE = 2048
"""Largest image side: of a model (model.image_size) and of what ``translate --size`` writes."""
MAX_PARAMETERS = 2**28
"""Most learned parameters G or D may have (268,435,456: 1 GiB in float32). The paper's 128 px
G has 8.4M and D 44.8M (REFERENCE.md); a 256 px D with a seventh strided conv has 179M."""
MAX_ACTIVATIONS = 2**30
"""Most elements in the outputs of G's or D's layers for one image (1,073,741,824: 4 GiB in
float32; about what a training step keeps for backward per image). The paper's G has 18.2M at
128 px, 72.7M at 256 px and 291M at 512 px; at 1024 px (1.16G) it needs a smaller g_conv_dim."""

# Choices of `stargan translate` and `stargan export`, kept here (not in inference.py and
# export.py, which import torch) so that the command line lists them without loading torch.
Backend = Literal["auto", "torch", "onnx"]
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")
"""Who computes G: PyTorch (model files) or ONNX Runtime (files from ``stargan export``);
'auto' picks by the file name (``.onnx`` -> ONNX Runtime)."""
ONNX_OPSET = 18
"""The ONNX opset written (torch's exporter targets 18; ONNX Runtime supports it since 1.14)."""
EXPORT_FORMATS = ("onnx", "safetensors")
EXPORT_DTYPES = ("float32", "float16")


def runs_on_onnx(path: str | os.PathLike[str], backend: str) -> bool:
    """Whether ``backend`` has ONNX Runtime compute G for the model file ``path``.

    Example:
        >>> runs_on_onnx("G.onnx", "auto"), runs_on_onnx("model.safetensors", "auto")
        (True, False)
    """
    return backend == "onnx" or (backend == "auto" and Path(path).suffix.lower() == ".onnx")


class ConfigError(ValueError):
    """Configuration values that cannot work; each problem names the field and the value."""

    def __init__(self, *problems: str) -> None:
        super().__init__(_join_errors(list(problems)))
        self.problems = list(problems)


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


class _Checks:
    """A section's checks, all run before one error lists every one that failed (so a user
    fixes a config in one try, not one field per try)."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, cond: bool, message: str) -> None:
        if not cond:
            self.failed.append(message)

    def done(self) -> None:
        if self.failed:
            raise ConfigError(*self.failed)


def _join_errors(messages: list[str]) -> str:
    if len(messages) == 1:
        return messages[0]
    return f"{len(messages)} config problems:\n  " + "\n  ".join(messages)


AdversarialLoss = Literal["wgan-gp", "bce", "lsgan"]
GeneratorOutput = Literal["image", "residual", "mask"]
LrDecay = Literal["linear", "official"]
BadImagePolicy = Literal["fail", "skip"]
CacheMode = Literal["none", "memory", "disk"]
NonFinitePolicy = Literal["stop", "skip"]
DistBackend = Literal["auto", "gloo", "nccl"]
GRecompute = Literal["none", "norms", "all"]
Precision = Literal["fp32", "bf16"]


_MODEL_INTS = ("image_size", "c_dim", "n_classes", "g_conv_dim", "d_conv_dim", "g_repeat_num",
               "d_repeat_num")  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    """Generator and discriminator shapes (REFERENCE.md, 'Generator' and 'Discriminator').

    Every config is checked before a network is built from it, so a model file from a stranger
    cannot make the loader allocate more than the stated limits: G and D may each have at most
    ``MAX_PARAMETERS`` (2**28) parameters and ``MAX_ACTIVATIONS`` (2**30) layer-output elements
    per image, computed exactly by :meth:`network_sizes`; ``image_size`` is at most
    ``MAX_IMAGE_SIZE`` (2048) and divisible by 4 and by 2**d_repeat_num.
    """

    image_size: int = 128
    """Side of the square images G and D work on; a multiple of 4 and of 2**d_repeat_num."""
    c_dim: int = 5
    """Label channels tiled onto G's input (attributes + mask slots in joint training)."""
    n_classes: int = 5
    """Outputs of D's classification head (every label slot, never the mask)."""
    g_conv_dim: int = 64
    """Width of G's first conv; the down-sampling path doubles it twice."""
    d_conv_dim: int = 64
    """Width of D's first conv; each further strided conv doubles it."""
    g_repeat_num: int = 6
    """Residual blocks in G's bottleneck."""
    d_repeat_num: int = 6
    """Strided convs in D (the spatial size shrinks by 2**d_repeat_num)."""
    g_output: GeneratorOutput = "image"
    """How G forms its output. 'image' (paper): a whole new image through tanh. Not in the
    paper, see docs/results.md for their measured effect: 'residual' adds a zero-initialised
    change to the input (G starts as the identity); 'mask' blends a drawn image into the input
    through a learned per-pixel attention mask that starts nearly closed."""

    def __post_init__(self) -> None:
        for name in _MODEL_INTS:
            value = getattr(self, name)
            _check(
                isinstance(value, int) and not isinstance(value, bool),
                f"model.{name} must be an integer, got {value!r}",
            )
        for name in ("image_size", "c_dim", "n_classes", "g_conv_dim", "d_conv_dim"):
            _check(
                getattr(self, name) >= 1, f"model.{name} must be >= 1, got {getattr(self, name)}"
            )
        # Bounds far above any real use, so a hostile or mistyped config fails here and not
        # with an out-of-memory crash deep in torch (the sizes are checked at the end).
        for name, limit in (("image_size", MAX_IMAGE_SIZE), ("c_dim", 4096), ("n_classes", 4096),
                            ("g_conv_dim", 4096), ("d_conv_dim", 4096), ("g_repeat_num", 64),
                            ("d_repeat_num", 11)):  # fmt: skip
            value = getattr(self, name)
            _check(value <= limit, f"model.{name} must be <= {limit}, got {value}")
        _check(
            self.g_output in typing.get_args(GeneratorOutput),
            f"model.g_output must be one of {typing.get_args(GeneratorOutput)}, "
            f"got {self.g_output!r}",
        )
        _check(self.g_repeat_num >= 0, f"model.g_repeat_num must be >= 0, got {self.g_repeat_num}")
        _check(self.d_repeat_num >= 1, f"model.d_repeat_num must be >= 1, got {self.d_repeat_num}")
        _check(
            self.image_size % 4 == 0,
            f"model.image_size must be divisible by 4 (G down-samples twice), "
            f"got {self.image_size}",
        )
        _check(
            self.image_size % (2**self.d_repeat_num) == 0,
            f"model.image_size {self.image_size} must be divisible by 2**d_repeat_num "
            f"= {2**self.d_repeat_num} (D's strided convs); use fewer D layers for small images",
        )
        _check(
            self.c_dim >= self.n_classes,
            f"model.c_dim ({self.c_dim}) must be >= n_classes ({self.n_classes})",
        )
        hints = {"G": "lower g_conv_dim or g_repeat_num", "D": "adjust d_conv_dim or d_repeat_num"}
        for net, (params, activations) in self.network_sizes().items():
            _check(
                params <= MAX_PARAMETERS,
                f"model: this config gives {net} {params:,} parameters, over the limit of "
                f"{MAX_PARAMETERS:,} (1 GiB in float32; the paper's G has 8.4M, its D 44.8M): "
                f"{hints[net]}",
            )
            _check(
                activations <= MAX_ACTIVATIONS,
                f"model: this config gives {net} {activations:,} layer-output elements per "
                f"image, over the limit of {MAX_ACTIVATIONS:,} (4 GiB in float32; the paper's G "
                f"has 18.2M at 128 px): lower image_size or {net.lower()}_conv_dim",
            )

    def network_sizes(self) -> dict[str, tuple[int, int]]:
        """``{"G": (parameters, activations), "D": (...)}``: learned parameters (buffers
        excluded) and the elements of every layer's output for one image, in closed form from
        the layer tables, so that a config is judged before its networks exist
        (tests/unit/test_model_files.py checks both against built networks).

        Example:
            >>> ModelConfig().network_sizes()
            {'G': (8430528, 18186240), 'D': (44762048, 1032201)}
        """
        s, g, r = self.image_size, self.g_conv_dim, self.g_repeat_num
        # G: 7x7 conv + IN (2 parameters a channel); 4x4 convs g -> 2g -> 4g down and back up;
        # r residual blocks of two 3x3 convs + INs at 4g; the output conv.
        if self.g_output == "mask":  # 4 output channels with bias, no tanh layer
            out_params, out_maps = 196 * g + 4, 4
        else:  # 3 channels without bias; 'image' adds a tanh layer
            out_params, out_maps = 147 * g, 6 if self.g_output == "image" else 3
        g_params = 49 * (3 + self.c_dim) * g + 2 * g + 320 * g * g + 18 * g
        g_params += r * (288 * g * g + 16 * g) + out_params
        # Conv, IN and ReLU outputs at each scale (five layers a residual block), then the
        # output layers.
        full, half, quarter = g * s * s, 2 * g * (s // 2) ** 2, 4 * g * (s // 4) ** 2
        g_acts = 6 * full + 6 * half + (3 + 5 * r) * quarter + out_maps * s * s
        # D: strided 4x4 convs with bias, each followed by LeakyReLU; 3x3 src and k x k cls heads.
        d_params = d_acts = 0
        width, side = 3, s
        for i in range(self.d_repeat_num):
            out, side = self.d_conv_dim * 2**i, side // 2
            d_params += 16 * width * out + out
            d_acts += 2 * out * side * side
            width = out
        d_params += 9 * width + self.n_classes * width * side * side
        d_acts += side * side + self.n_classes
        return {"G": (g_params, g_acts), "D": (d_params, d_acts)}


@dataclass(frozen=True)
class LossConfig:
    """Loss choice and weights (REFERENCE.md, 'Losses')."""

    adversarial: AdversarialLoss = "wgan-gp"
    """'wgan-gp' (paper), 'bce' (original log-likelihood GAN) or 'lsgan'."""
    lambda_cls: float = 1.0
    """Weight of the domain classification loss."""
    lambda_rec: float = 10.0
    """Weight of the cycle reconstruction loss."""
    lambda_gp: float = 10.0
    """Weight of the gradient penalty (wgan-gp only)."""
    lambda_id: float = 0.0
    """Not in the paper (0 = off): weight of an identity loss ||G(x, c_org) - x||_1."""
    lambda_mask: float = 0.0
    """Not in the paper (0 = off; needs model.g_output 'mask'): weight of the mean of G's
    attention mask, which keeps the mask shut where the target changes nothing."""

    def __post_init__(self) -> None:
        check = _Checks()
        check(
            self.adversarial in typing.get_args(AdversarialLoss),
            f"loss.adversarial must be one of {typing.get_args(AdversarialLoss)}, "
            f"got {self.adversarial!r}",
        )
        for name in ("lambda_cls", "lambda_rec", "lambda_gp", "lambda_id", "lambda_mask"):
            check(getattr(self, name) >= 0, f"loss.{name} must be >= 0, got {getattr(self, name)}")
        check.done()


@dataclass(frozen=True)
class OptimConfig:
    """Optimisers and schedule (REFERENCE.md, 'Training')."""

    g_lr: float = 1e-4
    """Adam learning rate of G."""
    d_lr: float = 1e-4
    """Adam learning rate of D."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    n_critic: int = 5
    """D updates per G update."""
    batch_size: int = 16
    """Images per D update (per dataset in joint training): the GLOBAL batch, split evenly
    over the ranks of a distributed run (docs/distributed.md); the learning rates are not
    scaled with the number of ranks."""
    num_iters: int = 200_000
    """Training iterations (one D update per dataset each)."""
    num_iters_decay: int = 100_000
    """Final iterations over which the learning rates fall linearly to 0."""
    lr_decay: LrDecay = "linear"
    """'linear' (paper: exactly 0 at the end) or 'official' (the 2018 code's near-constant LR)."""
    lr_update_step: int = 1000
    """Official-mode only: the LR is changed once every this many iterations."""
    d_cls_warmup: int = 0
    """First iterations in which D only learns to classify real images (no G, no adversarial
    loss), so that G gets a classification signal from its first update; counted in
    ``num_iters``. 0 = the paper (not in it; docs/results.md measures it)."""

    def __post_init__(self) -> None:
        check = _Checks()
        for name in ("g_lr", "d_lr"):
            check(getattr(self, name) > 0, f"optim.{name} must be > 0, got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            check(0 <= v < 1, f"optim.{name} must be in [0, 1), got {v}")
        check(self.n_critic >= 1, f"optim.n_critic must be >= 1, got {self.n_critic}")
        check(self.batch_size >= 1, f"optim.batch_size must be >= 1, got {self.batch_size}")
        check(self.num_iters >= 1, f"optim.num_iters must be >= 1, got {self.num_iters}")
        check(
            0 <= self.num_iters_decay <= self.num_iters,
            f"optim.num_iters_decay must be in [0, num_iters={self.num_iters}], "
            f"got {self.num_iters_decay}",
        )
        check(
            self.lr_decay in typing.get_args(LrDecay),
            f"optim.lr_decay must be one of {typing.get_args(LrDecay)}, got {self.lr_decay!r}",
        )
        check(
            self.lr_update_step >= 1,
            f"optim.lr_update_step must be >= 1, got {self.lr_update_step}",
        )
        check(
            0 <= self.d_cls_warmup < self.num_iters - self.num_iters_decay
            or self.d_cls_warmup == 0,
            f"optim.d_cls_warmup must be in [0, num_iters - num_iters_decay = "
            f"{self.num_iters - self.num_iters_decay}) (the warm-up ends before the learning "
            f"rates decay), got {self.d_cls_warmup}",
        )
        check.done()


@dataclass(frozen=True)
class DataConfig:
    """One dataset: its format, location and preprocessing."""

    name: str = "synthfaces-celeba"
    """Dataset format from the registry (`stargan data formats` lists them)."""
    root: str | None = None
    """Folder (or attribute file's folder) on disk; None for the embedded SynthFaces."""
    image_size: int = 128
    """Side of the square images after preprocessing."""
    crop_size: int | None = None
    """Centre crop before resizing (CelebA 178, RaFD 256); None = the format's default."""
    selected_attrs: tuple[str, ...] = ()
    """Attributes/classes to learn, by name; empty = the format's default selection."""
    test_size: int = 2000
    """Images held out for testing (CelebA-style splits, SynthFaces test set)."""
    num_images: int = 4000
    """SynthFaces only: rendered training images."""
    split_seed: int = 1234
    """Seed of the train/test split (and of SynthFaces identities)."""
    official_split: bool = False
    """CelebA only: reproduce the official release's split (its off-by-one keeps 1,999)."""
    flip: bool = True
    """Random horizontal flips during training."""
    correlated: bool = False
    """SynthFaces only: draw attributes with realistic correlations."""
    num_workers: int = 0
    """DataLoader worker processes (0 = load in the training process)."""
    ratio: int = 1
    """Joint training: D updates on this dataset per round."""
    bad_images: BadImagePolicy = "fail"
    """'fail' on the first unreadable image (default) or 'skip' it and report every one."""
    cache: CacheMode = "none"
    """Pre-decoded image cache: 'none', 'memory' or 'disk' (a memory-mapped file)."""
    cache_dir: str | None = None
    """Folder of the disk cache (default: <root>/.stargan-cache)."""

    def __post_init__(self) -> None:
        check = _Checks()
        check(self.image_size >= 4, f"data.image_size must be >= 4, got {self.image_size}")
        check(
            self.crop_size is None or self.crop_size >= 1,
            f"data.crop_size must be >= 1 or None, got {self.crop_size}",
        )
        check(self.test_size >= 0, f"data.test_size must be >= 0, got {self.test_size}")
        check(self.num_images >= 1, f"data.num_images must be >= 1, got {self.num_images}")
        check(self.num_workers >= 0, f"data.num_workers must be >= 0, got {self.num_workers}")
        check(self.ratio >= 1, f"data.ratio must be >= 1, got {self.ratio}")
        check(
            self.bad_images in typing.get_args(BadImagePolicy),
            f"data.bad_images must be 'fail' or 'skip', got {self.bad_images!r}",
        )
        check(
            self.cache in typing.get_args(CacheMode),
            f"data.cache must be one of {typing.get_args(CacheMode)}, got {self.cache!r}",
        )
        check.done()


SHIPPED_JUDGE = "shipped"
"""``run.eval_judge`` value naming the judge shipped with stargan for the run's labels and size."""


@dataclass(frozen=True)
class SpeedConfig:
    """How G and D are computed (stargan.accel): none of it changes what the networks are, and
    the paper presets leave it at its defaults. docs/performance.md measures each field."""

    cpu_kernels: bool = True
    """On the CPU, instance norms by the group-norm kernel and D's tiny-map convs as one matrix
    product each: the same maths, rounded differently by about 1e-6 (off: torch's own
    kernels, as the official code computes; the benchmarks' reference)."""
    channels_last: bool = False
    """Keep G's and D's weights, and so their activations, in channels_last (NHWC) memory
    order: the same arithmetic by oneDNN's NHWC kernels; 8-10 percent faster at 128 px on the
    CPUs measured, 4 percent slower at 32 px."""
    g_recompute: GRecompute = "none"
    """What G's training passes keep for backward, against recomputing it there (the same
    gradients, bit for bit): 'none' keeps every activation; 'norms' keeps the convolutions'
    outputs only and redoes instance norms and ReLUs span by span (about half of G's
    activations); 'all' keeps G's inputs only and redoes each pass's whole forward."""
    precision: Precision = "fp32"
    """Arithmetic of the training passes: 'fp32' (the paper's) or 'bf16': G's and D's passes
    under bfloat16 autocast, while weights, gradients, Adam state and losses stay fp32. Faster
    where the hardware multiplies bf16 (CPUs with AMX, GPUs from Ampere on), slower elsewhere;
    seeded runs differ from fp32 ones."""
    compile_g: bool = False
    """Run G's training passes through torch.compile (needs a C++ compiler on the CPU): the same
    maths with fused kernels; the first iterations pay the compile."""
    winograd: bool = False
    """Compute G's residual-block 3x3 convolutions by Winograd's F(4x4, 3x3) on the CPU in fp32:
    a quarter of the products, rounded differently (about 1e-5 of the output's scale)."""

    def __post_init__(self) -> None:
        check = _Checks()
        check(
            self.g_recompute in typing.get_args(GRecompute),
            f"speed.g_recompute must be one of {typing.get_args(GRecompute)}, "
            f"got {self.g_recompute!r}",
        )
        check(
            self.precision in typing.get_args(Precision),
            f"speed.precision must be one of {typing.get_args(Precision)}, got {self.precision!r}",
        )
        check(
            not (self.winograd and self.precision == "bf16"),
            "speed.winograd computes fp32 convolutions and speed.precision 'bf16' runs G's "
            "convs in bf16, so it would do nothing: pass --no-winograd or --precision fp32",
        )
        check.done()


SPEED_PROFILES: dict[str, SpeedConfig] = {
    "plain": SpeedConfig(cpu_kernels=False),
    "default": SpeedConfig(),
    "cpu-128": SpeedConfig(channels_last=True, g_recompute="norms", winograd=True),
}
"""Named speed settings (``stargan train --speed NAME``). 'plain': torch's own kernels, as the
official code computes (the benchmarks' reference); 'default': the exact CPU kernels only;
'cpu-128': also NHWC order, G's recomputation and Winograd residual convs, the CPU recipe for
128 px and larger (faster and lighter at 128 px, slower at 32 px: docs/performance.md)."""


def auto_speed(image_size: int, device: str) -> str:
    """The profile `stargan train` takes when neither --speed, a --config file nor the preset
    chooses: 'cpu-128' for CPU runs at 128 px and larger, 'default' otherwise.

    Example:
        >>> auto_speed(128, "cpu"), auto_speed(32, "cpu"), auto_speed(128, "cuda")
        ('cpu-128', 'default', 'default')
    """
    return "cpu-128" if device == "cpu" and image_size >= 128 else "default"


@dataclass(frozen=True)
class RunConfig:
    """Where outputs go and how often things happen."""

    out_dir: str = "runs/default"
    """Run folder: config, metrics log, samples, checkpoints and the model file."""
    seed: int = 0
    """Seed of model initialisation and of every random draw in training."""
    device: str = "auto"
    """'auto' (CUDA when available), 'cpu', 'cuda' or 'cuda:N'."""
    log_every: int = 10
    """Iterations between metric lines."""
    sample_every: int = 1000
    """Iterations between sample grids (0 = never)."""
    save_every: int = 1000
    """Iterations between checkpoints (the last iteration is always saved)."""
    keep_checkpoints: int = 2
    """Training-state checkpoints kept on disk (the newest ones)."""
    tensorboard: bool = False
    """Also write TensorBoard event files (needs the `tensorboard` extra)."""
    num_threads: int = 0
    """CPU threads for torch (0 = torch's default); at most MAX_THREADS."""
    eval_every: int = 0
    """Iterations between quick evaluations logged as eval/* (0 = never; needs eval_judge)."""
    eval_judge: str | None = None
    """Judge classifier file (`stargan evaluate train-classifier`) for periodic evaluation, or
    'shipped' for the judge shipped with stargan for the run's labels and size (SynthFaces)."""
    eval_num: int = 256
    """Test images per periodic evaluation."""
    on_nonfinite: NonFinitePolicy = "stop"
    """A NaN/Inf loss or gradient: 'stop' the run (default) or 'skip' that update."""
    dist_backend: DistBackend = "auto"
    """Under torchrun: 'auto' (NCCL when CUDA is available, else gloo), 'gloo' or 'nccl'."""

    def __post_init__(self) -> None:
        check = _Checks()
        check(self.log_every >= 1, f"run.log_every must be >= 1, got {self.log_every}")
        check(self.sample_every >= 0, f"run.sample_every must be >= 0, got {self.sample_every}")
        check(self.save_every >= 1, f"run.save_every must be >= 1, got {self.save_every}")
        check(
            self.keep_checkpoints >= 1,
            f"run.keep_checkpoints must be >= 1, got {self.keep_checkpoints}",
        )
        check(
            0 <= self.num_threads <= MAX_THREADS,
            f"run.num_threads must be in [0, {MAX_THREADS}] (0: torch's default), "
            f"got {self.num_threads}",
        )
        check(self.eval_every >= 0, f"run.eval_every must be >= 0, got {self.eval_every}")
        check(
            not self.eval_every or self.eval_judge is not None,
            "run.eval_every needs run.eval_judge, a judge file from "
            "`stargan evaluate train-classifier`",
        )
        check(self.eval_num >= 1, f"run.eval_num must be >= 1, got {self.eval_num}")
        check(
            self.on_nonfinite in typing.get_args(NonFinitePolicy),
            f"run.on_nonfinite must be 'stop' or 'skip', got {self.on_nonfinite!r}",
        )
        check(
            self.dist_backend in typing.get_args(DistBackend),
            f"run.dist_backend must be 'auto', 'gloo' or 'nccl', got {self.dist_backend!r}",
        )
        check.done()


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: tuple[DataConfig, ...] = (DataConfig(),)
    """One dataset, or several for joint training with the mask vector."""
    run: RunConfig = field(default_factory=RunConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)

    def __post_init__(self) -> None:
        _check(len(self.data) >= 1, "a run needs at least one dataset")
        for d in self.data:
            _check(
                d.image_size == self.model.image_size,
                f"data.image_size ({d.image_size}) must equal model.image_size "
                f"({self.model.image_size})",
            )
        _check(
            not self.loss.lambda_mask or self.model.g_output == "mask",
            f"loss.lambda_mask ({self.loss.lambda_mask}) weighs G's attention mask, which only "
            f"model.g_output 'mask' has (got {self.model.g_output!r})",
        )

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_jsonable(cls, _upgrade(d), "config")

    def changes_from(self, before: TrainConfig) -> list[str]:
        """The recipe settings (loss, optimisation, data) that differ from ``before``, one
        "section.name old -> new" each: what a resumed run changes of its checkpoint's run.

        Example:
            >>> a = TrainConfig()
            >>> b = dataclasses.replace(a, optim=dataclasses.replace(a.optim, num_iters=300000))
            >>> b.changes_from(a)
            ['optim.num_iters 200000 -> 300000']
        """
        old, new = (_flatten({k: d[k] for k in ("loss", "optim", "data")})
                    for d in (before.to_dict(), self.to_dict()))  # fmt: skip
        return [f"{k} {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists -> {"a.b.0": leaf}."""
    if isinstance(tree, dict | list):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {k: v for key, sub in items for k, v in _flatten(sub, f"{prefix}{key}.").items()}
    return {prefix[:-1]: tree}


_SPEED_FIELDS = ("g_recompute", "precision", "channels_last", "compile_g", "winograd")


def _upgrade(d: Any) -> Any:
    """Configs written by earlier versions (run folders, model files): run.checkpoint_g
    (true: G's translation recomputed in backward) became run.g_recompute, and the speed
    settings moved from run to their own section, speed."""
    run = d.get("run") if isinstance(d, dict) else None
    if not isinstance(run, dict):
        return d
    run = dict(run)
    if "checkpoint_g" in run:
        flag = run.pop("checkpoint_g")
        _check(
            isinstance(flag, bool), f"config.run.checkpoint_g: expected true or false, got {flag!r}"
        )
        _check(
            "g_recompute" not in run,
            "config.run: checkpoint_g (earlier versions) and g_recompute both given; keep "
            "g_recompute",
        )
        run["g_recompute"] = "all" if flag else "none"
    moved = {k: run.pop(k) for k in _SPEED_FIELDS if k in run}
    if not moved:
        return {**d, "run": run}
    speed = d.get("speed", {})
    _check(isinstance(speed, dict), f"config.speed: expected an object, got {speed!r}")
    both = sorted(set(moved) & set(speed))
    _check(not both, f"config: {both} given in both run (earlier versions) and speed")
    return {**d, "run": run, "speed": {**speed, **moved}}


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_jsonable(v) for v in obj]
    return obj


def _from_jsonable(tp: Any, value: Any, where: str) -> Any:
    """Rebuild ``tp`` from JSON data, checking every type and naming the offending field."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        _check(isinstance(value, dict), f"{where}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - names)
        _check(not unknown, f"{where}: unknown field(s) {unknown}; valid: {sorted(names)}")
        kwargs, failed = {}, []
        for k, v in value.items():  # every section is checked, and all problems reported
            try:
                kwargs[k] = _from_jsonable(hints[k], v, f"{where}.{k}")
            except ConfigError as e:
                failed += e.problems
        if failed:
            raise ConfigError(*failed)
        return tp(**kwargs)
    if origin is tuple:
        _check(isinstance(value, list | tuple), f"{where}: expected a list, got {value!r}")
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_from_jsonable(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is Literal:
        _check(value in typing.get_args(tp), f"{where}: {value!r} not in {typing.get_args(tp)}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            _check(type(None) in typing.get_args(tp), f"{where}: must not be null")
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _from_jsonable(inner, value, where)
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        _check(ok, f"{where}: expected a number, got {value!r}")
        number = float(value) if abs(value) < 1e308 else math.inf  # 10**400 overflows float()
        _check(math.isfinite(number), f"{where}: expected a finite number, got {value!r}")
        return number
    if tp in (int, bool, str):
        ok = isinstance(value, tp) and (tp is bool or not isinstance(value, bool))
        _check(ok, f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported config type {tp!r}")  # a bug in this module


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a config dataclass (used for --help)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
        ):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())
    return docs
