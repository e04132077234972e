"""The paper's baselines: networks at StarGAN's scale, parameter counts against Table 3,
training, resuming from checkpoints, translation, model files and the command line (tiny
16 px, 8-channel nets)."""

import itertools
import json
import pickle

import pytest
import torch

from stargan import checkpoint as ckpt
from stargan.baselines import (
    BASELINE_FORMAT,
    METHODS,
    PAPER_TABLE3,
    BaselineConfig,
    BaselineError,
    BaselineTrainer,
    IdentityFeatures,
    RunFolderError,
    build_baseline,
    format_parameters,
    load_baseline,
    paper_scale_parameters,
    save_baseline,
    train,
    train_identity_classifier,
)
from stargan.baselines.identity import SubjectLabels
from stargan.baselines.networks import PatchDiscriminator, PlainGenerator
from stargan.cli import main as cli_main
from stargan.config import ConfigError, ModelConfig
from stargan.data.synthfaces import SynthFaces
from stargan.models import build_discriminator, build_generator
from tiny_models import tiny_model_file


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def faces() -> SynthFaces:
    return SynthFaces("rafd", size=16, n=16, seed=0)  # 2 subjects x 8 expressions


def tiny(method: str, **kw) -> BaselineConfig:
    base = dict(
        conv_dim=8,
        g_repeat_num=1,
        d_repeat_num=3,
        z_dim=8,
        batch_size=4,
        iters=2,
        log_every=1,
        identity_width=4,
        identity_epochs=1,
    )
    return BaselineConfig.synth(method, 16, **(base | kw))


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_pairwise_nets_are_stargans_without_labels():
    widths = {"g_conv_dim": 8, "d_conv_dim": 8}
    cfg = ModelConfig(image_size=32, c_dim=1, n_classes=1, g_repeat_num=2, d_repeat_num=4, **widths)
    g, d = _shapes(build_generator(cfg)), _shapes(build_discriminator(cfg))
    g_plain = _shapes(PlainGenerator(32, 8, 2))
    d_plain = _shapes(PatchDiscriminator(32, 8, 4))
    assert g.pop("main.0.weight") == (8, 4, 7, 7)  # 3 image + 1 label channel
    assert g_plain.pop("main.0.weight") == (8, 3, 7, 7)
    assert g_plain == g
    assert d.pop("cls.weight") == (1, 64, 2, 2)  # 8, 16, 32, 64 channels; 2x2 map
    assert d_plain == d


def _stargan_g(dim=64, blocks=6, labels=0):
    """Hand count of StarGAN's G at 128 px (REFERENCE.md): bias-free convs, IN affine."""
    convs = (3 + labels) * dim * 49 + dim * 2 * dim * 16 + 2 * dim * 4 * dim * 16
    convs += blocks * 2 * (4 * dim) ** 2 * 9
    convs += 4 * dim * 2 * dim * 16 + 2 * dim * dim * 16 + dim * 3 * 49
    norms = 2 * (dim + 2 * dim + 4 * dim + blocks * 2 * 4 * dim + 2 * dim + dim)
    return convs + norms


def _stargan_d(dim=64, layers=6, classes=0, size=128):
    widths = [3] + [dim * 2**i for i in range(layers)]
    trunk = sum(a * b * 16 + b for a, b in itertools.pairwise(widths))  # 4x4 convs with bias
    final = size // 2**layers
    return trunk + widths[-1] * 9 + widths[-1] * classes * final * final


def test_parameter_counts_at_128px_against_hand_counts_and_table_3():
    counts = paper_scale_parameters()
    # StarGAN: 8 RaFD labels; REFERENCE.md gives G 8,439,936 and D 44,786,624.
    assert _stargan_g(labels=8) == 8_439_936 and _stargan_d(classes=8) == 44_786_624
    assert counts["stargan"] == (53_226_560, 1)
    # CycleGAN and DIAT: G without the 8 label channels, D without the classifier.
    pairwise = _stargan_g() + _stargan_d()
    assert pairwise == 8_414_848 + 44_721_088 == 53_135_936
    assert counts["cyclegan"] == (pairwise, 14) and counts["diat"] == (pairwise, 7)
    # IcGAN (icgan.py's docstring): DCGAN G and D, encoders at half width with FC heads.
    g = 108 * 1024 * 16 + 1024 * 512 * 16 + 512 * 256 * 16 + 256 * 128 * 16 + 128 * 64 * 16
    g += 64 * 3 * 16 + 2 * (1024 + 512 + 256 + 128 + 64)
    d = 11 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16 + 512 * 1024 * 16
    d += 1024 * 16 + 2 * (128 + 256 + 512 + 1024)
    trunk = 3 * 32 * 16 + 32 * 64 * 16 + 64 * 128 * 16 + 128 * 256 * 16 + 256 * 512 * 16
    trunk += 2 * (64 + 128 + 256 + 512)
    e_z = trunk + 8192 * 4096 + 2 * 4096 + 4096 * 100 + 100
    e_y = trunk + 8192 * 512 + 2 * 512 + 512 * 8 + 8
    assert (g, d, e_z, e_y) == (12_917_632, 11_172_608, 36_761_060, 6_988_168)
    assert counts["icgan"] == (g + d + e_z + e_y, 1) == (67_839_468, 1)
    # Against the paper: StarGAN and IcGAN round to its numbers; CycleGAN and DIAT are 0.5M
    # larger per model (networks.py's docstring says why); the model counts are the paper's.
    for name in ("stargan", "cyclegan", "diat", "icgan"):
        assert counts[name][1] == PAPER_TABLE3[name]["models"]
    assert format_parameters(counts["stargan"]) == "53.2M x 1"
    assert format_parameters(counts["icgan"]) == "67.8M x 1"
    assert format_parameters(counts["cyclegan"]) == "53.1M x 14"
    assert format_parameters(counts["diat"]) == "53.1M x 7"
    assert counts["cyclegan"][0] - PAPER_TABLE3["cyclegan"]["params_m"] * 1e6 == pytest.approx(
        535_936
    )


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_baseline_trains_a_few_steps_and_translates(method, faces):
    logs = []
    model = train(tiny(method), dataset=faces, on_log=lambda *a: logs.append(a))
    stages = {"cyclegan": 7, "diat": 7, "icgan": 3}[method]
    assert len({stage for stage, _, _ in logs}) == stages
    assert all(torch.isfinite(torch.tensor(list(m.values()))).all() for _, _, m in logs)
    assert model.info["steps"] == 2 * stages and model.info["train_seconds"] > 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        untrained = build_baseline(tiny(method), faces.label_spec)
    changed = [
        k for k, v in untrained.state_dict().items() if not torch.equal(v, model.state_dict()[k])
    ]
    assert changed  # the steps moved weights
    x = torch.stack([faces[i][0] for i in (5, 13)])  # the two neutral faces
    for target in model.targets:
        y = model.translate(x, "neutral", target)
        assert y.shape == x.shape and torch.isfinite(y).all() and y.abs().max() <= 1
    per_model, n_models = model.num_parameters()
    assert per_model * n_models == sum(p.numel() for p in model.parameters())


def test_pairwise_models_refuse_directions_they_never_learned(faces):
    x = faces[5][0][None]
    cycle = build_baseline(tiny("cyclegan"), faces.label_spec)
    assert torch.equal(cycle.translate(x, "neutral", "neutral"), x)
    assert cycle.translate(x, "happy", "neutral").shape == x.shape  # F_happy
    with pytest.raises(BaselineError, match="neutral <-> each expression"):
        cycle.translate(x, "sad", "happy")
    diat = build_baseline(tiny("diat"), faces.label_spec)
    with pytest.raises(BaselineError, match="neutral -> each expression only"):
        diat.translate(x, "happy", "sad")
    with pytest.raises(BaselineError, match="one source expression"):
        diat.translate(torch.cat([x, x]), ["neutral", "happy"], "sad")
    icgan = build_baseline(tiny("icgan"), faces.label_spec)
    assert icgan.translate(x, "sad", "happy").shape == x.shape  # any source
    with pytest.raises(ValueError, match="unknown label 'smug'"):
        icgan.translate(x, "neutral", "smug")


@pytest.mark.parametrize("method", sorted(METHODS))
def test_save_load_gives_identical_translations(method, faces, tmp_path):
    model = train(tiny(method, iters=1), dataset=faces)  # IcGAN's batch norms now have stats
    path = save_baseline(model, tmp_path / "model.safetensors")
    loaded = load_baseline(path)
    assert loaded.cfg == model.cfg and not loaded.training
    assert loaded.info == json.loads(json.dumps(model.info))
    x = torch.stack([faces[i][0] for i in (5, 13)])
    for target in ("happy", "surprised"):
        assert torch.equal(
            loaded.translate(x, "neutral", target), model.translate(x, "neutral", target)
        )
    assert loaded.num_parameters() == model.num_parameters()


def test_foreign_and_malformed_files_are_named(faces, tmp_path):
    stargan_file = tiny_model_file(tmp_path / "stargan.safetensors")
    with pytest.raises(ckpt.CheckpointError, match="format 'stargan-model/1'.*stargan.load"):
        load_baseline(stargan_file)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(ckpt.CheckpointError, match="not a readable safetensors file"):
        load_baseline(junk)
    with pytest.raises(ckpt.CheckpointError, match="cannot read"):
        load_baseline(tmp_path / "missing.safetensors")
    model = build_baseline(tiny("icgan"), faces.label_spec)
    meta = {"format": BASELINE_FORMAT, "config": model.cfg.to_json(), "labels": "[]"}
    bad = tmp_path / "bad.safetensors"
    ckpt.save_tensors(bad, model.state_dict(), meta | {"method": "pix2pix"})
    with pytest.raises(ckpt.CheckpointError, match="unknown method 'pix2pix'"):
        load_baseline(bad)
    ckpt.save_tensors(bad, model.state_dict(), meta | {"method": "icgan"})
    with pytest.raises(ckpt.CheckpointError, match="malformed baseline metadata"):
        load_baseline(bad)  # labels: no expressions
    wider = build_baseline(tiny("icgan", conv_dim=4), faces.label_spec)
    save_baseline(wider, bad)
    _, meta = ckpt.load_tensors(bad, BASELINE_FORMAT)
    ckpt.save_tensors(bad, model.state_dict(), meta)  # weights of another width
    with pytest.raises(ckpt.CheckpointError, match="do not fit this architecture"):
        load_baseline(bad)


def test_config_round_trip_and_checks():
    cfg = BaselineConfig.synth("diat", 32, lambda_perceptual=3.0)
    assert BaselineConfig.from_dict(json.loads(cfg.to_json())) == cfg
    assert cfg.d_repeat_num == 5 and cfg.conv_dim == 32 and cfg.resolved_adversarial == "bce"
    assert BaselineConfig.synth("cyclegan").resolved_adversarial == "lsgan"
    with pytest.raises(ConfigError, match="method must be one of"):
        BaselineConfig(method="pix2pix")
    with pytest.raises(ConfigError, match="power-of-two image_size"):
        BaselineConfig.synth("icgan", 48)
    with pytest.raises(ConfigError, match="2\\*\\*d_repeat_num"):
        BaselineConfig.synth("cyclegan", 16, d_repeat_num=5)
    with pytest.raises(ConfigError, match="data.image_size"):
        BaselineConfig(image_size=64)
    with pytest.raises(ConfigError, match="unknown field"):
        BaselineConfig.from_dict(cfg.to_dict() | {"lambda_gp": 1})


def test_identity_labels_and_features(faces):
    subjects = SubjectLabels(faces)
    assert subjects.label_spec.n_labels == 2 and subjects[9][1].argmax() == 1
    assert faces.identity(8) == faces.identity(15) != faces.identity(7)  # subject = i // 8
    with pytest.raises(BaselineError, match="RaFD-style SynthFaces only"):
        SubjectLabels(SynthFaces("celeba", size=16, n=4))
    judge = train_identity_classifier(faces, width=4, epochs=1, batch_size=8)
    assert judge.info["subjects"] == 2 and 0 <= judge.info["held_out_error"] <= 100
    features = IdentityFeatures(judge)
    x = torch.stack([faces[i][0] for i in range(4)])
    y = x.flip(3).requires_grad_(True)
    assert features.distance(x, x).item() == 0
    features.distance(x, y).backward()
    assert y.grad is not None and not any(p.requires_grad for p in features.parameters())
    assert not features.train().training  # stays frozen


def test_diat_uses_a_given_identity_network(faces):
    judge = train_identity_classifier(faces, width=4, epochs=1, batch_size=8)
    model = train(tiny("diat", iters=1), dataset=faces, identity_net=judge)
    assert model.identity_net is judge and model.info["identity_net"] == judge.info
    with pytest.raises(BaselineError, match="takes no identity network"):
        train(tiny("icgan", iters=1), dataset=faces, identity_net=judge)


def test_cli_params_and_dry_run(capsys):
    assert cli_main(["baselines", "params", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert (
        rows["icgan"]["ours"] == [67_839_468, 1] and rows["cyclegan"]["paper_text"] == "52.6M x 14"
    )
    assert (
        cli_main(
            [
                "baselines",
                "train",
                "--method",
                "diat",
                "--out",
                "x",
                "--iters",
                "7",
                "--set",
                "lambda_perceptual=2.5",
                "--dry-run",
            ]
        )
        == 0
    )
    cfg = BaselineConfig.from_dict(json.loads(capsys.readouterr().out))
    assert (cfg.method, cfg.iters, cfg.lambda_perceptual, cfg.image_size) == ("diat", 7, 2.5, 32)
    assert (
        cli_main(
            [
                "baselines",
                "train",
                "--method",
                "icgan",
                "--out",
                "x",
                "--set",
                "lambda_gp=1",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "--set expects FIELD=VALUE" in capsys.readouterr().err


def test_cli_trains_and_writes_a_run_folder(tmp_path, capsys):
    out = tmp_path / "icgan"
    args = [
        "baselines",
        "train",
        "--method",
        "icgan",
        "--image-size",
        "16",
        "--iters",
        "2",
        "--out",
        str(out),
        "--conv-dim",
        "8",
        "--batch-size",
        "4",
        "--num-images",
        "16",
        "--set",
        "z_dim=8",
        "--set",
        "log_every=1",
    ]
    assert cli_main(args) == 0
    assert "icgan encoder_y 2/2" in capsys.readouterr().out
    model = load_baseline(out / "model.safetensors")
    assert model.method == "icgan" and model.cfg.data.num_images == 16
    assert BaselineConfig.from_dict(json.loads((out / "config.json").read_text())) == model.cfg
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records].count("cgan") == 2
    steps = sorted(p.name for p in (out / "checkpoints").iterdir())  # the start and the end
    assert steps == ["state-00000000.safetensors", "state-00000006.safetensors"]
    assert cli_main(args) == 2  # the folder already holds a run
    err = capsys.readouterr().err
    assert "already holds a run (2 checkpoint(s), a finished model)" in err
    assert "--resume" in err and "--overwrite" in err
    assert cli_main([*args, "--resume"]) == 0  # finished: nothing left to train
    assert "resuming from" in capsys.readouterr().err
    assert torch.equal(
        load_baseline(out / "model.safetensors").G.main[0].weight, model.G.main[0].weight
    )


class Crash(Exception):
    """Stands for a kill: nothing after it runs (no handler writes a checkpoint)."""


def _crash_after(n_steps: int):
    steps = []

    def on_log(stage: str, step: int, metrics: dict[str, float]) -> None:
        steps.append(step)
        if len(steps) == n_steps:
            raise Crash

    return on_log


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert [k for k in sa if not torch.equal(sa[k], sb[k])] == []


def _logged(out) -> list[tuple]:
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [
        (r["stage"], r["step"], {k: r[k] for k in r if k not in ("stage", "step", "time")})
        for r in records
    ]


def test_cyclegan_killed_mid_stage_resumes_to_identical_weights(faces, tmp_path):
    # 7 pairs x 3 steps; pools of 3 so that the histories fill and swap within a stage.
    cfg = tiny("cyclegan", iters=3, batch_size=2, pool_size=3)
    reference_log: list[tuple] = []
    reference = train(cfg, dataset=faces, on_log=lambda *a: reference_log.append(a))
    out = tmp_path / "run"
    with pytest.raises(Crash):  # killed after step 11: checkpoints at steps 4 and 8 survive
        BaselineTrainer(
            cfg, dataset=faces, out_dir=out, save_every=4, on_log=_crash_after(11)
        ).fit()
    with pytest.raises(RunFolderError, match="--resume to continue"):
        BaselineTrainer(cfg, dataset=faces, out_dir=out)
    resumed = BaselineTrainer(cfg, dataset=faces, out_dir=out, resume=True, save_every=4)
    assert resumed.resumed_from == out / "checkpoints" / "state-00000008.safetensors"
    assert (resumed.step, resumed.stage_index) == (8, 2)  # step 3 of neutral<->disgusted
    assert len(resumed.stage.buffers["pool_y"].images) == 3  # the history came back too
    assert resumed.fit() == "finished"
    _assert_same_weights(resumed.model, reference)
    _assert_same_weights(load_baseline(out / "model.safetensors"), reference)
    assert _logged(out) == reference_log  # the lines of the lost steps 9-11 were dropped
    assert resumed.model.info["steps"] == 21 and resumed.model.info["train_seconds"] > 0


def test_icgan_stopped_then_resumed_past_a_corrupt_checkpoint(faces, tmp_path):
    cfg = tiny("icgan", iters=4)  # cGAN, E_z, E_y: 4 steps each
    reference = train(cfg, dataset=faces)
    out = tmp_path / "run"

    def stop_in_encoder_z(stage: str, step: int, metrics: dict[str, float]) -> None:
        if (stage, step) == ("encoder_z", 3):
            trainer.request_stop()  # what SIGINT / SIGTERM do in the CLI

    trainer = BaselineTrainer(
        cfg, dataset=faces, out_dir=out, save_every=3, on_log=stop_in_encoder_z
    )
    assert trainer.fit() == "stopped" and trainer.step == 7
    newest, previous = trainer.checkpoints()
    assert (newest.name, previous.name) == (
        "state-00000007.safetensors",
        "state-00000006.safetensors",
    )
    data = bytearray(newest.read_bytes())
    data[-3] ^= 0xFF  # bit rot in the last tensor
    newest.write_bytes(bytes(data))
    resumed = BaselineTrainer(cfg, dataset=faces, out_dir=out, resume=True)
    assert resumed.resumed_from == previous and resumed.step == 6  # E_z, 2 of 4 steps done
    assert len(resumed.skipped_checkpoints) == 1
    assert "failed its checksum" in resumed.skipped_checkpoints[0]
    assert not resumed.model.G.training  # E_z's stage trains on the finished G in eval mode
    assert resumed.fit() == "finished"
    _assert_same_weights(resumed.model, reference)
    with pytest.raises(ckpt.CheckpointError, match="another config.*'lr': \\(0.0002, 0.001\\)"):
        BaselineTrainer(cfg.replace(lr=1e-3), dataset=faces, out_dir=out, resume=True)


def test_diat_resumes_with_the_identity_network_of_its_run(faces, tmp_path, monkeypatch):
    cfg = tiny("diat", iters=2)  # 7 directions x 2 steps
    reference = train(cfg, dataset=faces)
    out = tmp_path / "run"
    with pytest.raises(Crash):
        BaselineTrainer(cfg, dataset=faces, out_dir=out, save_every=5, on_log=_crash_after(8)).fit()
    import stargan.baselines.diat as diat

    def no_training(*args, **kwargs):
        raise AssertionError("the identity network was trained again")

    monkeypatch.setattr(diat, "train_identity_classifier", no_training)
    resumed = BaselineTrainer(cfg, dataset=faces, out_dir=out, resume=True)
    assert (resumed.step, resumed.stage_index) == (5, 2) and resumed.fit() == "finished"
    _assert_same_weights(resumed.model, reference)
    _assert_same_weights(resumed.model.identity_net, reference.identity_net)
    (out / "identity.safetensors").unlink()
    with pytest.raises(ckpt.CheckpointError, match="identity.safetensors is missing"):
        BaselineTrainer(cfg, dataset=faces, out_dir=out, resume=True)
