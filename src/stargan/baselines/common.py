"""What every baseline shares: its config, the interface it implements, the expression data
it trains on, and the registry of methods.

A baseline is an ``nn.Module`` holding all its networks (so ``state_dict()`` is the model
file), that can :meth:`~Baseline.translate` images to an expression and say how many
parameters it has in the paper's Table 3 form (:meth:`~Baseline.num_parameters`). Training is
a list of *stages* (CycleGAN: one per expression pair; DIAT: one per direction; IcGAN: the
cGAN, then E_z, then E_y), each a :class:`Stage` whose step function
:class:`stargan.baselines.training.BaselineTrainer` calls ``iters`` times.
"""

from __future__ import annotations

import dataclasses
import json
import math
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

from stargan.config import ConfigError, DataConfig, _from_jsonable, _to_jsonable
from stargan.data.labels import LabelSpec
from stargan.data.registry import LabelledDataset

Adversarial = Literal["auto", "lsgan", "bce"]
StepFn = Callable[[int], dict[str, float]]
"""A training stage's step: the iteration index within the stage -> named loss values."""


class StageBuffer(Protocol):
    """Training state a stage keeps between steps besides weights and optimizers."""

    def state_tensors(self) -> dict[str, torch.Tensor]: ...

    def load_state_tensors(
        self, tensors: dict[str, torch.Tensor], device: torch.device
    ) -> None: ...


@dataclass
class Stage:
    """One training stage: the trainer sets the learning rates of ``optimizers`` (a pure
    function of the step, :func:`set_lr`) and calls ``step(it)`` for it = 0 .. iters - 1.

    Whatever a step changes lives in the model's weights, the run's random generator,
    ``optimizers`` and ``buffers`` (CycleGAN's image histories): a checkpoint of those resumes
    the stage exactly. Building a stage draws no random numbers.
    """

    name: str
    step: StepFn
    optimizers: dict[str, torch.optim.Optimizer]
    buffers: dict[str, StageBuffer] = field(default_factory=dict)


class BaselineError(ValueError):
    """A baseline asked for something it cannot do (a source it never learned, a label it
    does not know, data without a neutral class); the message says what it can do."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


def _rafd_data(image_size: int) -> DataConfig:
    """The data of the ``synth-rafd`` preset (the StarGAN model of Table 3) at ``image_size``."""
    return DataConfig(name="synthfaces-rafd", image_size=image_size, num_images=4000, test_size=500)


@dataclass(frozen=True)
class BaselineConfig:
    """One baseline training run (saved inside its model file).

    Example:
        >>> BaselineConfig.synth("cyclegan", 32).d_repeat_num
        5
        >>> BaselineConfig.from_dict(BaselineConfig().to_dict()) == BaselineConfig()
        True
    """

    method: str = "cyclegan"
    """'cyclegan', 'diat' or 'icgan' (``stargan.baselines.METHODS``)."""
    image_size: int = 128
    """Side of the square images (must equal data.image_size)."""
    conv_dim: int = 64
    """CycleGAN/DIAT: width of G's first conv and D's first conv (StarGAN's g/d_conv_dim).
    IcGAN: width of G's last hidden layer and D's first conv; encoders use half of it."""
    g_repeat_num: int = 6
    """CycleGAN/DIAT: residual blocks in G (StarGAN's g_repeat_num)."""
    d_repeat_num: int = 6
    """CycleGAN/DIAT: strided convs in D (StarGAN's d_repeat_num)."""
    z_dim: int = 100
    """IcGAN: length of the latent vector z (the IcGAN paper's 100)."""
    adversarial: Adversarial = "auto"
    """'lsgan', 'bce' (the original GAN) or 'auto': lsgan for CycleGAN (its paper), bce for
    DIAT and IcGAN (theirs)."""
    lambda_cyc: float = 10.0
    """CycleGAN: weight of the cycle-consistency L1 loss (its paper's 10)."""
    lambda_identity: float = 0.0
    """CycleGAN: weight of the optional identity loss ||G(y) - y||_1 (0 = off)."""
    pool_size: int = 50
    """CycleGAN: history of generated images shown to D (its paper's 50; 0 = off)."""
    lambda_perceptual: float = 10.0
    """DIAT: weight of the identity term, the L1 distance between identity-network features
    of the input and of its translation."""
    identity_width: int = 32
    """DIAT: first-stage width of the identity classifier trained as feature extractor."""
    identity_epochs: int = 5
    """DIAT: epochs of that identity classifier."""
    lr: float = 2e-4
    """Adam learning rate of every network (CycleGAN's and DCGAN's 2e-4)."""
    beta1: float = 0.5
    """Adam beta1."""
    beta2: float = 0.999
    """Adam beta2."""
    batch_size: int = 16
    """Images per update (StarGAN's batch)."""
    iters: int = 3000
    """Update steps of every stage: per expression pair (CycleGAN), per direction (DIAT), and
    for each of IcGAN's cGAN, E_z and E_y."""
    decay: float = 0.5
    """Fraction of each stage's final steps over which the learning rate falls linearly to 0
    (CycleGAN: the second half; 0 = constant)."""
    flip: bool = True
    """Random horizontal flips of training images."""
    neutral: str = "neutral"
    """The source expression of the pairwise models (CycleGAN, DIAT)."""
    seed: int = 0
    """Seed of the initial weights and of every random draw in training."""
    log_every: int = 50
    """Steps between metric records."""
    data: DataConfig = field(default_factory=lambda: _rafd_data(128))
    """The training data (a categorical dataset with a neutral class)."""

    def __post_init__(self) -> None:
        _check(
            self.method in METHODS, f"method must be one of {sorted(METHODS)}, got {self.method!r}"
        )
        for name in (
            "image_size",
            "conv_dim",
            "z_dim",
            "batch_size",
            "iters",
            "log_every",
            "identity_width",
            "identity_epochs",
            "d_repeat_num",
        ):
            _check(getattr(self, name) >= 1, f"{name} must be >= 1, got {getattr(self, name)}")
        _check(self.g_repeat_num >= 0, f"g_repeat_num must be >= 0, got {self.g_repeat_num}")
        _check(self.pool_size >= 0, f"pool_size must be >= 0, got {self.pool_size}")
        for name in ("lambda_cyc", "lambda_identity", "lambda_perceptual"):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
        _check(0 <= self.decay <= 1, f"decay must be in [0, 1], got {self.decay}")
        _check(
            self.adversarial in typing.get_args(Adversarial),
            f"adversarial must be one of {typing.get_args(Adversarial)}, got {self.adversarial!r}",
        )
        _check(
            self.data.image_size == self.image_size,
            f"data.image_size ({self.data.image_size}) must equal image_size ({self.image_size})",
        )
        METHODS[self.method].check_config(self)

    @property
    def resolved_adversarial(self) -> str:
        if self.adversarial != "auto":
            return self.adversarial
        return "lsgan" if self.method == "cyclegan" else "bce"

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaselineConfig:
        return _from_jsonable(cls, d, "baseline config")

    @classmethod
    def paper(cls, method: str, **overrides: Any) -> BaselineConfig:
        """The paper's scale: 128 px, StarGAN's widths (64), 6 residual blocks, 6 D convs."""
        return cls(method=method, **overrides)

    @classmethod
    def synth(cls, method: str, image_size: int = 32, **overrides: Any) -> BaselineConfig:
        """The scale of the ``synth-rafd`` StarGAN preset it is compared with (Table 3): its
        widths (32), residual blocks (3) and D convs (5, fewer when the images are too small
        for 5), its batch size, and as many update steps per stage as StarGAN gets in all."""
        from stargan.presets import get_preset

        star = get_preset("synth-rafd")
        d_layers = min(star.model.d_repeat_num, max(1, int(math.log2(image_size))))
        base: dict[str, Any] = {
            "method": method,
            "image_size": image_size,
            "conv_dim": star.model.g_conv_dim,
            "g_repeat_num": star.model.g_repeat_num,
            "d_repeat_num": d_layers,
            "batch_size": star.optim.batch_size,
            "iters": star.optim.num_iters,
            "data": _rafd_data(image_size),
        }
        return cls(**(base | overrides))

    def replace(self, **changes: Any) -> BaselineConfig:
        return dataclasses.replace(self, **changes)


class ExpressionData:
    """A categorical training set indexed by class, with seeded batch draws.

    Example:
        >>> data = ExpressionData(SynthFaces("rafd", size=16, n=32, seed=0))  # doctest: +SKIP
        >>> data.batch("happy", 4, torch.Generator().manual_seed(0)).shape    # doctest: +SKIP
        torch.Size([4, 3, 16, 16])
    """

    def __init__(self, dataset: LabelledDataset, flip: bool = True) -> None:
        spec = dataset.label_spec
        if spec.kind != "categorical":
            raise BaselineError(
                f"the baselines learn expressions (one class per image); the dataset's labels "
                f"{list(spec.names)} are {spec.kind}"
            )
        self.dataset, self.spec, self.flip = dataset, spec, flip
        labels = self._labels()
        self.by_class = {
            name: torch.nonzero(labels == k).flatten() for k, name in enumerate(spec.names)
        }
        empty = [name for name, idx in self.by_class.items() if len(idx) == 0]
        if empty:
            raise BaselineError(f"the training data has no image of class(es) {empty}")

    def _labels(self) -> torch.Tensor:
        label_of = getattr(self.dataset, "label", None)  # SynthFaces: no rendering needed
        n = len(self.dataset)
        rows = [label_of(i) if label_of else self.dataset[i][1] for i in range(n)]
        return torch.stack(rows).argmax(1)

    def _images(self, idx: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        x = torch.stack([self.dataset[int(i)][0] for i in idx])  # [N, 3, S, S]
        if self.flip:
            flips = torch.rand(len(idx), generator=rng) < 0.5
            x = torch.where(flips[:, None, None, None], x.flip(3), x)
        return x

    def batch(self, name: str, n: int, rng: torch.Generator) -> torch.Tensor:
        """``n`` random images of class ``name`` (drawn with replacement across batches)."""
        pool = self.by_class[name]
        pick = pool[torch.randint(len(pool), (n,), generator=rng)]
        return self._images(pick, rng)

    def labelled_batch(self, n: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random images of any class and their one-hot labels [N, n_classes]."""
        pick = torch.randint(len(self.dataset), (n,), generator=rng)
        labels = torch.stack([self.dataset[int(i)][1] for i in pick]).float()
        return self._images(pick, rng), labels


def set_lr(optimizers: Sequence[torch.optim.Optimizer], cfg: BaselineConfig, it: int) -> None:
    """Constant, then linear to 0 over the final ``decay`` share of a stage's steps."""
    decay_steps = round(cfg.decay * cfg.iters)
    start = cfg.iters - decay_steps
    scale = 1.0 if it < start or not decay_steps else (cfg.iters - it) / decay_steps
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = cfg.lr * scale


def adam(modules: Iterable[nn.Module], cfg: BaselineConfig) -> torch.optim.Adam:
    """One Adam over every parameter of ``modules``."""
    params = [p for m in modules for p in m.parameters()]
    return torch.optim.Adam(params, cfg.lr, (cfg.beta1, cfg.beta2))


def update(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of ``opt`` down the gradient of ``loss`` (old gradients dropped first)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def floats(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    """Loss terms -> the named numbers a step returns."""
    return {k: float(v.detach()) for k, v in terms.items()}


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No gradients for ``modules``' weights inside (a G step through a D)."""
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m in modules:
            m.requires_grad_(True)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside, the previous mode restored after (batch norm then
    uses its running statistics and never updates them)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        module.train(was_training)


def one_source(source: str | Sequence[str], spec: LabelSpec) -> str:
    """The one source expression of a batch (every image must share it)."""
    names = {source} if isinstance(source, str) else set(source)
    if len(names) != 1:
        raise BaselineError(f"translate one source expression at a time, got {sorted(names)}")
    (name,) = names
    spec.index(name)  # an unknown name lists the valid ones
    return name


class Baseline(nn.Module):
    """The interface of every baseline (see the module docstring)."""

    method: ClassVar[str]

    def __init__(self, cfg: BaselineConfig, spec: LabelSpec) -> None:
        super().__init__()
        if cfg.method != self.method:
            raise BaselineError(
                f"{type(self).__name__} needs method {self.method!r}, got {cfg.method!r}"
            )
        if spec.kind != "categorical":
            raise BaselineError(
                f"baselines translate expressions (categorical labels), got "
                f"{spec.kind} labels {list(spec.names)}"
            )
        self.cfg, self.spec = cfg, spec
        self.info: dict[str, Any] = {}

    @classmethod
    def check_config(cls, cfg: BaselineConfig) -> None:
        """Raise ConfigError when ``cfg`` cannot build this method's networks."""

    @property
    def targets(self) -> list[str]:
        """The expressions a neutral input can be translated to (every class but neutral)."""
        return [name for name in self.spec.names if name != self.cfg.neutral]

    def translate(
        self, x: torch.Tensor, source_label: str | Sequence[str], target_name: str
    ) -> torch.Tensor:
        """Images [N, 3, S, S] in [-1, 1] showing ``source_label`` -> the same faces showing
        ``target_name``, [N, 3, S, S] in [-1, 1]."""
        raise NotImplementedError

    def units(self) -> list[nn.Module]:
        """The models as the paper counts them (CycleGAN: each G with its D)."""
        return [self]

    def num_parameters(self) -> tuple[int, int]:
        """(parameters of one model, number of models): Table 3's 'N x count'. Learned
        parameters only, buffers excluded, as REFERENCE.md counts StarGAN's."""
        counts = {sum(p.numel() for p in unit.parameters()) for unit in self.units()}
        if len(counts) != 1:
            raise AssertionError(f"{self.method}'s models differ in size: {sorted(counts)}")
        return counts.pop(), len(self.units())

    def prepare(self, data: ExpressionData, device: torch.device) -> None:
        """Anything training needs before the first stage (DIAT: its identity network)."""

    def stage_names(self) -> list[str]:
        """The training stages in order."""
        raise NotImplementedError

    def build_stage(
        self, k: int, data: ExpressionData, rng: torch.Generator, device: torch.device
    ) -> Stage:
        """Stage ``k`` of :meth:`stage_names`, with fresh optimizers, its networks put in the
        modes it trains them in; built only when it starts (or resumes), so that a stage's
        optimizers exist only while it trains."""
        raise NotImplementedError


METHODS: dict[str, type[Baseline]] = {}
"""Registered baselines by name (filled by :func:`register_baseline`)."""


def register_baseline(cls: type[Baseline]) -> type[Baseline]:
    if cls.method in METHODS:
        raise ValueError(f"baseline {cls.method!r} is already registered")
    METHODS[cls.method] = cls
    return cls


def build_baseline(cfg: BaselineConfig, spec: LabelSpec) -> Baseline:
    """The untrained model of ``cfg.method`` over the expressions ``spec``, with the exact CPU
    kernels StarGAN's nets get by default (stargan.accel), so the comparison is like for like."""
    from stargan import accel

    model = METHODS[cfg.method](cfg, spec)
    accel.use_cpu_kernels(model)
    return model
