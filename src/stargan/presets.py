"""Named configurations: the paper's settings and small CPU settings for the embedded data.

Paper presets reproduce the paper exactly (REFERENCE.md, 'Training'); CPU presets are our own
recipes for SynthFaces, documented in docs/results.md with their measured effect.

Example:
    >>> get_preset("celeba-128").optim.num_iters
    200000
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from stargan.config import (
    SHIPPED_JUDGE,
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    TrainConfig,
)

_PRESETS: dict[str, Callable[[], TrainConfig]] = {}
_DESCRIPTIONS: dict[str, str] = {}

CELEBA_ATTRS = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")


def register_preset(
    name: str, description: str
) -> Callable[[Callable[[], TrainConfig]], Callable[[], TrainConfig]]:
    def add(fn: Callable[[], TrainConfig]) -> Callable[[], TrainConfig]:
        if name in _PRESETS:
            raise ValueError(f"preset {name!r} is already registered")
        _PRESETS[name], _DESCRIPTIONS[name] = fn, description
        return fn

    return add


def preset_names() -> dict[str, str]:
    """Preset name -> one-line description."""
    return dict(sorted(_DESCRIPTIONS.items()))


def get_preset(name: str) -> TrainConfig:
    if name not in _PRESETS:
        raise KeyError(f"unknown preset {name!r}; available: {', '.join(sorted(_PRESETS))}")
    return _PRESETS[name]()


def _paper(size: int, data: tuple[DataConfig, ...], out: str) -> TrainConfig:
    # The official release saves every 10k iterations and samples every 1k. No speed
    # settings: `--speed cpu-128` is the CPU recipe for these (stargan.accel.PROFILES).
    return TrainConfig(
        model=ModelConfig(image_size=size),
        loss=LossConfig(),
        optim=OptimConfig(num_iters=200_000, num_iters_decay=100_000),
        data=data,
        run=RunConfig(
            out_dir=out,
            sample_every=1000,
            save_every=10_000,
            log_every=10,
        ),
    )


def _celeba(size: int) -> DataConfig:
    return DataConfig(
        name="celeba",
        root="data/celeba",
        image_size=size,
        crop_size=178,
        selected_attrs=CELEBA_ATTRS,
    )


def _rafd(size: int) -> DataConfig:
    return DataConfig(
        name="rafd", root="data/RaFD/train", image_size=size, crop_size=256, test_size=0
    )


@register_preset("celeba-128", "paper: CelebA, 5 attributes, 128 px, 200k iterations")
def _celeba_128() -> TrainConfig:
    return _paper(128, (_celeba(128),), "runs/celeba-128")


@register_preset("celeba-256", "paper: CelebA, 5 attributes, 256 px (high-resolution results)")
def _celeba_256() -> TrainConfig:
    return _paper(256, (_celeba(256),), "runs/celeba-256")


@register_preset("rafd-128", "paper: RaFD, 8 expressions, 128 px, 200k iterations")
def _rafd_128() -> TrainConfig:
    return _paper(128, (_rafd(128),), "runs/rafd-128")


@register_preset("both-128", "paper: joint CelebA + RaFD with the mask vector, 128 px")
def _both_128() -> TrainConfig:
    return _paper(128, (_celeba(128), _rafd(128)), "runs/both-128")


@register_preset("both-256", "paper: joint CelebA + RaFD with the mask vector, 256 px")
def _both_256() -> TrainConfig:
    return _paper(256, (_celeba(256), _rafd(256)), "runs/both-256")


# Our CPU recipe for SynthFaces (docs/results.md has the search and each choice's measured
# effect): G blends its drawing into the input through an attention mask (the paper's G redraws
# the whole image, drifting colours where nothing should change), G is updated after every D
# update (the paper: every 5th, which on a CPU budget leaves G a few hundred updates), and the
# learning rates are raised, D's twice G's (two time-scale rule) so its classifier leads.
RECIPE_MODEL = {"g_output": "mask"}
RECIPE_OPTIM = {"n_critic": 1, "g_lr": 2e-4, "d_lr": 4e-4}


def _synth(
    size: int,
    iters: int,
    out: str,
    *,
    width: int = 32,
    blocks: int = 3,
    d_layers: int = 5,
    n: int = 4000,
    name: str = "synthfaces-celeba",
    sample_every: int = 500,
    save_every: int = 500,
    recipe: bool = True,
    eval_every: int = 0,
    d_cls_warmup: int = 0,
) -> TrainConfig:
    """A SynthFaces config: the paper's nets shrunk (widths, blocks), with our CPU recipe
    unless ``recipe`` is False (then the paper's losses, rates and schedule exactly)."""
    model = ModelConfig(
        image_size=size,
        g_conv_dim=width,
        d_conv_dim=width,
        g_repeat_num=blocks,
        d_repeat_num=d_layers,
        **(RECIPE_MODEL if recipe else {}),
    )
    optim = OptimConfig(
        num_iters=iters,
        num_iters_decay=iters // 2,
        d_cls_warmup=d_cls_warmup,
        **(RECIPE_OPTIM if recipe else {}),
    )
    evaluation = {"eval_every": eval_every, "eval_judge": SHIPPED_JUDGE} if eval_every else {}
    return TrainConfig(
        model=model,
        optim=optim,
        data=(DataConfig(name=name, image_size=size, num_images=n, test_size=500),),
        run=RunConfig(
            out_dir=out,
            sample_every=sample_every,
            save_every=save_every,
            log_every=10,
            **evaluation,
        ),
    )


@register_preset("synth-tiny", "CPU smoke test: SynthFaces 16 px, 8-channel nets, 20 iterations")
def _synth_tiny() -> TrainConfig:
    return _synth(
        16,
        20,
        "runs/synth-tiny",
        width=8,
        blocks=1,
        d_layers=4,
        n=64,
        sample_every=10,
        save_every=10,
        recipe=False,  # the paper's alternation (a G update every 5th), exercised end to end
    )


@register_preset("synth-demo", "quick-start demo: SynthFaces 32 px, our CPU recipe, < 10 min")
def _synth_demo() -> TrainConfig:
    # D's classifier first learns the attributes on real images for 200 iterations (seconds):
    # without it, one seed in three left D's classifier at chance for the whole run and G never
    # learned the attributes (docs/results.md, 'Seed stability').
    return _synth(32, 2500, "runs/synth-demo", eval_every=500, d_cls_warmup=200)


@register_preset("synth-long", "SynthFaces 32 px, our CPU recipe, about 50 min on one core")
def _synth_long() -> TrainConfig:
    return _synth(32, 9000, "runs/synth-long", eval_every=500, sample_every=1000, d_cls_warmup=200)


@register_preset("synth-paper-32", "SynthFaces 32 px, widths 32, 3 blocks, the paper's recipe")
def _synth_paper_32() -> TrainConfig:
    return _synth(32, 2000, "runs/synth-paper-32", recipe=False, eval_every=250)


@register_preset("synth-64", "SynthFaces 64 px, widths 32, 3 blocks (the paper recipe, small)")
def _synth_64() -> TrainConfig:
    return _synth(
        64, 20_000, "runs/synth-64", d_layers=6, sample_every=1000, save_every=1000, recipe=False
    )


@register_preset("synth-rafd", "SynthFaces RaFD-like expressions only, 32 px (the paper's SNG)")
def _synth_rafd() -> TrainConfig:
    return _synth(32, 1500, "runs/synth-rafd", name="synthfaces-rafd", n=4000)


@register_preset("synth-joint", "SynthFaces CelebA-like + RaFD-like with the mask vector, 32 px")
def _synth_joint() -> TrainConfig:
    cfg = _synth(32, 1500, "runs/synth-joint")
    rafd = DataConfig(name="synthfaces-rafd", image_size=32, num_images=4000, test_size=500)
    return TrainConfig(model=cfg.model, loss=cfg.loss, optim=cfg.optim,
                       data=(cfg.data[0], rafd), run=cfg.run)  # fmt: skip


# Presets for the user's own data: our CPU recipe with a warm-up, no SynthFaces judge (the
# run is evaluated only with --eval-judge FILE), and a schedule scaled to any --num-iters.
CUSTOM_SIZES = (32, 64, 128)
CUSTOM_TEST_MAX = 2000
"""Most images a custom preset holds out for testing (a tenth of the data up to this)."""


def _custom(size: int, iters: int) -> TrainConfig:
    cfg = _synth(size, iters, f"runs/custom-{size}", d_layers=5 if size == 32 else 6)
    schedule = custom_schedule(iters)
    return dataclasses.replace(
        cfg,
        optim=dataclasses.replace(cfg.optim, **schedule["optim"]),
        data=(DataConfig(name="folder", image_size=size, test_size=CUSTOM_TEST_MAX),),
        run=dataclasses.replace(cfg.run, **schedule["run"]),
    )


for _size, _iters in zip(CUSTOM_SIZES, (2500, 5000, 10_000), strict=True):
    register_preset(
        f"custom-{_size}",
        f"your own data (--dataset, --root): {_size} px, our CPU recipe, {_iters} iterations",
    )(lambda size=_size, iters=_iters: _custom(size, iters))


def is_custom(name: str) -> bool:
    """Whether ``name`` is one of the presets for the user's own data."""
    return name in {f"custom-{s}" for s in CUSTOM_SIZES}


def custom_preset_for(image_size: int | None) -> str:
    """The custom preset chosen for ``--image-size`` (64 px when not given or not listed)."""
    return f"custom-{image_size if image_size in CUSTOM_SIZES else 64}"


def custom_schedule(num_iters: int, judge: bool = False) -> dict[str, dict[str, int]]:
    """The custom presets' schedule for a run of ``num_iters``: the learning rates decay over
    the second half, D's classifier warms up for a tenth (at most 200, as synth-demo), and
    samples, checkpoints and (with a judge) evaluations come ten, five and five times a run.

    Example:
        >>> custom_schedule(500)["optim"]
        {'num_iters_decay': 250, 'd_cls_warmup': 50}
    """
    run = {"sample_every": max(1, num_iters // 10), "save_every": max(1, num_iters // 5)}
    return {
        "optim": {"num_iters_decay": num_iters // 2, "d_cls_warmup": min(200, num_iters // 10)},
        "run": {**run, "eval_every": max(1, num_iters // 5) if judge else 0},
    }


def custom_test_size(images: int) -> int:
    """Images a custom preset holds out of ``images``: a tenth, at least 1, at most 2,000."""
    return max(1, min(CUSTOM_TEST_MAX, images // 10))


def fit_test_split(cfg: TrainConfig, fixed: bool = False) -> TrainConfig:
    """``cfg`` with each on-disk dataset's test split sized by :func:`sized_test_split`
    (unless ``fixed``: the user chose it)."""
    if fixed:
        return cfg
    return dataclasses.replace(cfg, data=tuple(sized_test_split(d) for d in cfg.data))


def sized_test_split(data: DataConfig) -> DataConfig:
    """``data`` with test_size from :func:`custom_test_size` of its images when it is on disk
    (SynthFaces renders its own). Builds the dataset once, uncached, so a missing or empty
    folder is reported here."""
    from stargan.data.registry import build_dataset

    if data.root is None:
        return data
    everything = dataclasses.replace(data, test_size=0, cache="none")
    return dataclasses.replace(
        data, test_size=custom_test_size(len(build_dataset(everything, "train")))
    )
