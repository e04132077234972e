import dataclasses

import pytest

from stargan.config import (
    SPEED_PROFILES,
    ConfigError,
    DataConfig,
    OptimConfig,
    SpeedConfig,
    TrainConfig,
)
from stargan.presets import get_preset, preset_names


def test_round_trip_through_json():
    cfg = get_preset("both-128")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("name", list(preset_names()))
def test_every_preset_is_valid(name):
    assert isinstance(get_preset(name), TrainConfig)


def test_paper_presets_are_faithful():
    cfg = get_preset("celeba-128")
    o, loss = cfg.optim, cfg.loss
    assert (o.g_lr, o.d_lr, o.beta1, o.beta2, o.n_critic, o.batch_size) == (
        1e-4,
        1e-4,
        0.5,
        0.999,
        5,
        16,
    )
    assert (o.num_iters, o.num_iters_decay, o.lr_decay) == (200_000, 100_000, "linear")
    assert (loss.adversarial, loss.lambda_cls, loss.lambda_rec, loss.lambda_gp) == (
        "wgan-gp",
        1,
        10,
        10,
    )
    assert cfg.data[0].selected_attrs == ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    assert (cfg.data[0].crop_size, cfg.model.g_conv_dim, cfg.model.g_repeat_num) == (178, 64, 6)
    # How the nets are computed is no part of a preset: every one has the default speed
    # settings (the exact CPU kernels alone, fp32), the paper's arithmetic to rounding.
    assert all(get_preset(name).speed == SpeedConfig() for name in preset_names())
    assert SpeedConfig().precision == "fp32" and SpeedConfig().cpu_kernels


def test_speed_profiles():
    """`--speed NAME`: 'plain' computes as the official code (torch's own kernels), 'default'
    is a preset's, and 'cpu-128' adds what is faster on a CPU at 128 px: NHWC memory order
    and exact recomputation (neither changes the recipe: same arithmetic, lower memory peak)."""
    assert SPEED_PROFILES["plain"] == SpeedConfig(cpu_kernels=False)
    assert SPEED_PROFILES["default"] == SpeedConfig()
    assert SPEED_PROFILES["cpu-128"] == SpeedConfig(
        channels_last=True, g_recompute="norms", winograd=True
    )
    cfg = dataclasses.replace(get_preset("celeba-128"), speed=SPEED_PROFILES["cpu-128"])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_wrong_types_and_fields_name_the_problem():
    d = TrainConfig().to_dict()
    d["optim"]["batch_size"] = "16"
    with pytest.raises(ConfigError, match=r"config\.optim\.batch_size: expected int"):
        TrainConfig.from_dict(d)
    d = TrainConfig().to_dict()
    d["optim"]["learning_rate"] = 1
    with pytest.raises(ConfigError, match="unknown field.*learning_rate"):
        TrainConfig.from_dict(d)
    with pytest.raises(ConfigError, match="n_critic must be >= 1, got 0"):
        OptimConfig(n_critic=0)
    with pytest.raises(ConfigError, match="must equal model.image_size"):
        TrainConfig(data=(DataConfig(image_size=64),))
    with pytest.raises(ConfigError, match=r"speed.precision must be one of \('fp32', 'bf16'\)"):
        SpeedConfig(precision="fp16")
    with pytest.raises(ConfigError, match="speed.g_recompute must be one of .*got 'some'"):
        SpeedConfig(g_recompute="some")
    with pytest.raises(ConfigError, match=r"speed.winograd computes fp32.*--no-winograd"):
        SpeedConfig(winograd=True, precision="bf16")
    d = TrainConfig().to_dict()
    d["speed"]["compile"] = True
    with pytest.raises(ConfigError, match="unknown field.*compile"):
        TrainConfig.from_dict(d)


def test_unknown_preset_lists_valid_names():
    with pytest.raises(KeyError, match="celeba-128"):
        get_preset("celeba-129")


def test_absurd_model_sizes_are_refused_before_allocation():
    from stargan.config import ModelConfig

    with pytest.raises(ConfigError, match="image_size must be <= 2048, got 1099511627776"):
        ModelConfig(image_size=2**40)


def test_mask_penalty_needs_the_mask_output():
    cfg = get_preset("celeba-128")
    with pytest.raises(ConfigError, match="lambda_mask"):
        dataclasses.replace(cfg, loss=dataclasses.replace(cfg.loss, lambda_mask=1.0))
    model = dataclasses.replace(cfg.model, g_output="mask")
    ok = dataclasses.replace(cfg, model=model, loss=dataclasses.replace(cfg.loss, lambda_mask=1.0))
    assert ok.loss.lambda_mask == 1.0


def test_d_cls_warmup_must_end_before_the_decay():
    OptimConfig(num_iters=10, num_iters_decay=5, d_cls_warmup=4)
    with pytest.raises(
        ConfigError, match="d_cls_warmup must be in \\[0, num_iters - num_iters_decay = 5\\)"
    ):
        OptimConfig(num_iters=10, num_iters_decay=5, d_cls_warmup=5)
    with pytest.raises(ConfigError, match="d_cls_warmup"):
        OptimConfig(d_cls_warmup=-1)


def _earlier_version() -> dict:
    """A config as versions before the speed section wrote it (no "speed")."""
    d = TrainConfig().to_dict()
    del d["speed"]
    return d


@pytest.mark.parametrize(("flag", "mode"), [(True, "all"), (False, "none")])
def test_configs_of_earlier_versions_still_load(flag, mode):
    """Run folders and model files written before run.g_recompute say run.checkpoint_g; it
    lands in speed.g_recompute."""
    d = _earlier_version()
    d["run"]["checkpoint_g"] = flag
    cfg = TrainConfig.from_dict(d)
    assert cfg.speed == SpeedConfig(g_recompute=mode)
    assert cfg.run == TrainConfig().run
    d["run"]["g_recompute"] = "norms"
    with pytest.raises(ConfigError, match="checkpoint_g .* and g_recompute both given"):
        TrainConfig.from_dict(d)
    d["run"] = {"checkpoint_g": "yes"}
    with pytest.raises(ConfigError, match="checkpoint_g: expected true or false, got 'yes'"):
        TrainConfig.from_dict(d)


def test_speed_settings_under_run_of_earlier_versions_move_to_speed():
    """Configs written before the speed section kept these settings under "run"."""
    d = _earlier_version()
    moved = {
        "channels_last": True,
        "g_recompute": "norms",
        "precision": "bf16",
        "compile_g": True,
        "winograd": False,
    }
    d["run"] |= moved
    cfg = TrainConfig.from_dict(d)
    assert cfg.speed == SpeedConfig(**moved)
    assert cfg.run == TrainConfig().run
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # written back in the new layout
    assert "channels_last" not in cfg.to_dict()["run"]
    d["speed"] = {"cpu_kernels": False}  # a section of its own beside them: both kept
    assert TrainConfig.from_dict(d).speed == SpeedConfig(cpu_kernels=False, **moved)
    d["speed"] = {"channels_last": False}
    with pytest.raises(ConfigError, match=r"\['channels_last'\] given in both run .* and speed"):
        TrainConfig.from_dict(d)
    d["run"] = {"winograd": True, "precision": "bf16"}  # still checked where it lands
    del d["speed"]
    with pytest.raises(ConfigError, match="speed.winograd computes fp32"):
        TrainConfig.from_dict(d)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--preset", "celeba-128"], {"channels_last": True, "g_recompute": "norms"}),
        (["--preset", "rafd-128"], {"winograd": True}),
        (["--preset", "celeba-128", "--no-winograd"], {"channels_last": True, "winograd": False}),
        (["--preset", "celeba-128", "--precision", "bf16"], {"winograd": False}),
        (["--preset", "celeba-128", "--speed", "plain"], {"cpu_kernels": False, "winograd": False}),
        (["--preset", "celeba-128", "--device", "cuda"], {"winograd": False}),
        (["--preset", "synth-demo"], {"channels_last": False, "g_recompute": "none"}),
        (["--preset", "custom-32", "--image-size", "128"], {"winograd": True}),
    ],
)  # fmt: skip
def test_train_picks_the_cpu_recipe_at_128_px_unless_told_otherwise(argv, expected):
    """`stargan train` without --speed: 'cpu-128' for CPU runs at 128 px and larger, 'default'
    elsewhere; flags go on top, and bf16 drops the fp32-only Winograd kernel."""
    from stargan.cli import build_parser, config_from_args

    args = build_parser().parse_args(["train", "--device", "cpu", *argv])
    speed = dataclasses.asdict(config_from_args(args).speed)
    assert {k: speed[k] for k in expected} == expected
