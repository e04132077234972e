import dataclasses

import pytest

from stargan.config import ConfigError, DataConfig, OptimConfig, RunConfig, TrainConfig
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
    # Exact recomputation, not a change of recipe: it only lowers the memory peak.
    assert cfg.run.g_recompute == "norms"
    # A memory order, not arithmetic: paper presets at 128 px and up, where it is faster.
    assert cfg.run.channels_last and not get_preset("synth-demo").run.channels_last
    assert all(get_preset(name).run.precision == "fp32" for name in preset_names())


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
    with pytest.raises(ConfigError, match=r"run.precision must be one of \('fp32', 'bf16'\)"):
        RunConfig(precision="fp16")
    with pytest.raises(ConfigError, match="run.g_recompute must be one of .*got 'some'"):
        RunConfig(g_recompute="some")


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


@pytest.mark.parametrize(("flag", "mode"), [(True, "all"), (False, "none")])
def test_configs_of_earlier_versions_still_load(flag, mode):
    """Run folders and model files written before run.g_recompute say run.checkpoint_g."""
    d = TrainConfig().to_dict()
    del d["run"]["g_recompute"]
    d["run"]["checkpoint_g"] = flag
    assert TrainConfig.from_dict(d).run.g_recompute == mode
    d["run"]["g_recompute"] = "norms"
    with pytest.raises(ConfigError, match="checkpoint_g .* and g_recompute both given"):
        TrainConfig.from_dict(d)
    d["run"] = {"checkpoint_g": "yes"}
    with pytest.raises(ConfigError, match="checkpoint_g: expected true or false, got 'yes'"):
        TrainConfig.from_dict(d)
