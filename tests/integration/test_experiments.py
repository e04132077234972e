"""The experiment scripts under experiments/ run end to end on tiny models."""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from stargan.config import ModelConfig
from stargan.data.labels import LabelLayout
from stargan.data.synthetic import SynthFaces
from stargan.evaluation.classifier import Judge, JudgeConfig, save_judge
from stargan.models import build_discriminator, build_generator
from stargan.training import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[2]
FACES = SynthFaces("celeba", size=16, n=1).label_spec
EXPRESSIONS = SynthFaces("rafd", size=16, n=1).label_spec


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(path: Path, layout: LabelLayout) -> Path:
    cfg = ModelConfig(
        image_size=16, c_dim=layout.c_dim, n_classes=layout.n_classes, g_conv_dim=8,
        d_conv_dim=8, g_repeat_num=1, d_repeat_num=3,
    )  # fmt: skip
    torch.manual_seed(0)
    ckpt.save_model_file(
        path, build_generator(cfg), cfg, layout, discriminator=build_discriminator(cfg)
    )
    return path


def _judge(path: Path, layout: LabelLayout) -> Path:
    return save_judge(Judge(JudgeConfig(image_size=16, width=2, blocks=(1,)), layout), path)


def test_label_vectors_put_the_expression_and_the_chosen_mask_bit():
    jvs = _script("joint_vs_single")
    joint = LabelLayout((FACES, EXPRESSIONS))
    right = jvs.label_vectors(joint, EXPRESSIONS, "happy", 2, mask_of=1)
    wrong = jvs.label_vectors(joint, EXPRESSIONS, "happy", 2, mask_of=0)
    n = FACES.n_labels
    assert right[0, :n].sum() == 0 and right[0, n + EXPRESSIONS.index("happy")] == 1
    assert right[0, -2:].tolist() == [0.0, 1.0] and wrong[0, -2:].tolist() == [1.0, 0.0]
    single = jvs.label_vectors(LabelLayout((EXPRESSIONS,)), EXPRESSIONS, "sad", 3, mask_of=0)
    assert (
        single.shape == (3, EXPRESSIONS.n_labels)
        and single[:, EXPRESSIONS.index("sad")].eq(1).all()
    )


@pytest.mark.slow
def test_joint_vs_single_runs_on_tiny_models(tmp_path):
    jvs = _script("joint_vs_single")
    joint = _model(tmp_path / "joint.safetensors", LabelLayout((FACES, EXPRESSIONS)))
    single = _model(tmp_path / "single.safetensors", LabelLayout((EXPRESSIONS,)))
    r = jvs.run(
        joint,
        single,
        _judge(tmp_path / "rafd.safetensors", LabelLayout((EXPRESSIONS,))),
        _judge(tmp_path / "celeba.safetensors", LabelLayout((FACES,))),
        n=3,
    )
    assert r["n_faces"] == 3
    base = r["joint"]["do_nothing_gt_psnr"]
    for key in ("joint", "single", "joint_wrong_mask"):
        rec = r[key]
        assert 0 <= rec["expression_accuracy"] <= 100
        assert set(rec["per_expression_accuracy"]) == set(EXPRESSIONS.names)
        assert math.isfinite(rec["gt_psnr"]) and rec["do_nothing_gt_psnr"] == base
        assert set(rec["celeba_attribute_flips"]) == set(FACES.names)


def _fake_run(folder: Path, accuracy: float, psnr: float) -> Path:
    folder.mkdir()
    overall = {"accuracy": accuracy, "gt_psnr": psnr, "do_nothing_gt_psnr": 19.5, "rec_l1": 0.05}
    summary = {"summary": {"overall": overall}}
    (folder / "results.json").write_text(json.dumps({"evaluations": [summary]}))
    lines = [
        {"step": 10, "time/train_s": 60.0, "eval/accuracy": accuracy / 2, "eval/psnr": 18.0},
        {"step": 20, "time/train_s": 120.0, "eval/accuracy": accuracy, "eval/psnr": psnr},
    ]
    (folder / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return folder


def test_seed_table_reports_mean_and_std_and_plots(tmp_path):
    table = _script("seed_table")
    a = _fake_run(tmp_path / "a", 90.0, 22.0)
    b = _fake_run(tmp_path / "b", 94.0, 24.0)
    out = table.main(["--group", "demo", str(a), str(b), "--plot", str(tmp_path / "c.png")])
    row = out["table"].splitlines()[-1]
    assert row.startswith("| demo | 2 | 2.00 ± 0.00 | 92.00 ± 2.83 | 23.00 ± 1.41 |")
    assert (tmp_path / "c.png").stat().st_size > 1000


def _table3_files(tmp_path: Path):
    """Tiny files for every Table 3 method, all trained (or built) on one 16 px data config."""
    from stargan.baselines import BaselineConfig, build_baseline, save_baseline, train
    from stargan.config import DataConfig, TrainConfig

    data = DataConfig(name="synthfaces-rafd", image_size=16, num_images=16, test_size=8)
    layout = LabelLayout((EXPRESSIONS,))
    sg = tmp_path / "stargan"
    sg.mkdir()
    cfg = ModelConfig(
        image_size=16,
        c_dim=8,
        n_classes=8,
        g_conv_dim=8,
        d_conv_dim=8,
        g_repeat_num=1,
        d_repeat_num=3,
    )
    torch.manual_seed(0)
    ckpt.save_model_file(
        sg / "model.safetensors",
        build_generator(cfg),
        cfg,
        layout,
        train_config=TrainConfig(model=cfg, data=(data,)),
    )
    (sg / "metrics.jsonl").write_text('{"step": 5, "time/train_s": 42.0}\n')
    files = {"stargan": [sg / "model.safetensors"]}
    for method, seeds in (("cyclegan", (0, 1)), ("diat", (0,)), ("icgan", (0,))):
        for seed in seeds:
            bcfg = BaselineConfig.synth(
                method,
                16,
                conv_dim=8,
                g_repeat_num=1,
                d_repeat_num=3,
                z_dim=8,
                iters=1,
                batch_size=4,
                seed=seed,
                data=data,
            )
            if method == "icgan":
                model = train(bcfg)
            else:  # the script only translates: untrained pairwise models will do
                torch.manual_seed(seed)
                model = build_baseline(bcfg, EXPRESSIONS)
                model.info = {"train_seconds": 60.0 * (seed + 1)}
            save_baseline(model, tmp_path / f"{method}-{seed}" / "model.safetensors")
            files.setdefault(method, []).append(tmp_path / f"{method}-{seed}")  # run folders
    return files


def test_table3_runs_every_method_on_tiny_models(tmp_path):
    torch.set_num_threads(1)
    t3 = _script("table3")
    files = _table3_files(tmp_path)
    judge = _judge(tmp_path / "judge.safetensors", LabelLayout((EXPRESSIONS,)))
    r = t3.run(files, judge)
    assert (r["n_test_images"], r["n_neutral_images"], r["image_size"]) == (8, 1, 16)
    assert 0 <= r["real"]["error"] <= 100 and r["real"]["paper_error"] == 0.45
    nothing = r["do_nothing"]["neutral"]
    assert nothing["n_translations"] == 7 and math.isfinite(nothing["gt_psnr"])
    sg = r["methods"]["stargan"]
    assert sg["runs"][0]["train_seconds"] == 42.0 and sg["parameters_128px"] == "53.2M x 1"
    assert sg["runs"][0]["all"]["n_translations"] == 8 * 7  # every face, 7 other expressions
    assert sg["paper"] == {"error": 2.12, "parameters": "53.2M x 1"}
    cg = r["methods"]["cyclegan"]
    assert len(cg["runs"]) == 2 and cg["runs"][0]["all"] is None  # neutral inputs only
    assert cg["summary"]["train_seconds"]["mean"] == 90.0
    assert cg["summary"]["neutral_error"]["std"] is not None
    assert cg["parameters"].endswith("x 14") and cg["parameters_128px"] == "53.1M x 14"
    assert r["methods"]["icgan"]["runs"][0]["all"]["n_translations"] == 56
    assert set(r["methods"]["diat"]["runs"][0]["neutral"]["per_target_error"]) == (
        set(EXPRESSIONS.names) - {"neutral"}
    )
    table = t3.markdown(r)
    assert "| CycleGAN | 2 |" in table and "| real images |" in table and "67.8M x 1" in table
    json.dumps(t3.finite(r), allow_nan=False)  # strict JSON


def test_table3_refuses_files_trained_on_other_data(tmp_path):
    import dataclasses

    from stargan.baselines import BaselineConfig, build_baseline, save_baseline

    t3 = _script("table3")
    files = _table3_files(tmp_path)
    other = BaselineConfig.synth("icgan", 16, conv_dim=8, z_dim=8).data
    cfg = BaselineConfig.synth(
        "icgan", 16, conv_dim=8, z_dim=8, data=dataclasses.replace(other, split_seed=7)
    )
    save_baseline(build_baseline(cfg, EXPRESSIONS), tmp_path / "other.safetensors")
    judge = _judge(tmp_path / "judge.safetensors", LabelLayout((EXPRESSIONS,)))
    with pytest.raises(SystemExit, match="different data"):
        t3.run({"stargan": files["stargan"], "icgan": [tmp_path / "other.safetensors"]}, judge)
