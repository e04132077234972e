"""Evaluation: metrics with known answers, the judge classifier, the report and the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from conftest import tiny_config
from stargan.checkpoint import CheckpointError
from stargan.config import DataConfig
from stargan.data.labels import LabelLayout, LabelSpec
from stargan.data.registry import dataset_names, register_dataset
from stargan.evaluation import (
    EvaluationError,
    Judge,
    JudgeConfig,
    JudgeTrainConfig,
    PeriodicEvaluation,
    PixelStats,
    decisions,
    eval_targets,
    evaluate_generator,
    evaluate_model,
    judge_error,
    judge_fid,
    judge_kid,
    load_judge,
    psnr_from_mse,
    quick_eval,
    save_judge,
    shipped_judge,
    target_hits,
    train_classifier,
    translation_grid,
    unchanged_mask,
    write_report,
)
from stargan.evaluation.cli import add_evaluate_parser
from stargan.evaluation.headline import headline
from stargan.inference import StarGAN

SIZE = 16
BINARY = LabelSpec(("Black_Hair", "Blond_Hair", "Eyeglasses"), "binary")
CATEGORICAL = LabelSpec(("angry", "happy", "sad"), "categorical")
COLOURS = torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The test machine's cores are shared: one thread avoids oversubscription stalls.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _region(j: int) -> tuple[slice, slice]:
    return slice(3, 8), slice(1 + 5 * j, 5 + 5 * j)


def render_squares(background: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """background [N, 3], label [N, 3] -> [N, 3, 16, 16]: square j painted when label j is 1."""
    out = background[:, :, None, None].expand(-1, -1, SIZE, SIZE).clone()
    for j in range(label.shape[1]):
        rows, cols = _region(j)
        on = label[:, j] > 0.5
        out[on, :, rows, cols] = COLOURS[j][:, None, None]
    return out


class Squares(torch.utils.data.Dataset):
    """Coloured squares on a dim background: the image is an exact function of (background,
    label), so the counterfactual of any target is known."""

    def __init__(self, spec: LabelSpec, n: int = 24, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label_spec = spec
        self.background = torch.rand(n, 3, generator=g) * 0.8 - 0.6
        if spec.kind == "binary":
            labels = (torch.rand(n, 3, generator=g) < 0.5).float()
            labels[:, 1] *= 1 - labels[:, 0]  # hair colours are exclusive
        else:
            labels = nn.functional.one_hot(torch.randint(3, (n,), generator=g), 3).float()
        self.labels = labels
        self.images = render_squares(self.background, labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    def counterfactual(self, i: int, label: torch.Tensor) -> torch.Tensor:
        return render_squares(self.background[i : i + 1], label[None].float())[0]


class PerfectSquares(nn.Module):
    """Re-paints the squares for the target label over the background read from a corner."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(()))  # StarGAN.device reads a parameter

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return render_squares(x[:, :, -1, -1], c[:, :3])


class Copy(nn.Module):
    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return x.clone()


class OracleJudge(Judge):
    """Reads each square's colour: a perfect judge for Squares."""

    def __init__(self, layout: LabelLayout) -> None:
        super().__init__(JudgeConfig(image_size=SIZE, width=2, blocks=(1,)), layout)

    def logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        means = torch.stack([x[:, :, _region(j)[0], _region(j)[1]].mean((2, 3)) for j in range(3)])
        match = torch.stack([(means[j] - COLOURS[j]).abs().amax(1) < 0.05 for j in range(3)], 1)
        logits = torch.where(match, 10.0, -10.0).repeat(1, self.layout.n_datasets)
        return logits, torch.cat([means.permute(1, 0, 2).flatten(1), x.mean((2, 3))], 1)


def _layout(*specs: LabelSpec) -> LabelLayout:
    return LabelLayout(specs)


# Pure functions with known answers.


def test_psnr_and_pixel_stats_known_values():
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(0.0) == math.inf
    assert math.isnan(psnr_from_mse(math.nan))
    x = torch.zeros(2, 3, SIZE, SIZE)
    keep = torch.zeros(2, 1, SIZE, SIZE, dtype=torch.bool)
    keep[:, :, :8] = True
    stats = PixelStats(SIZE)
    stats.update(x + 0.2, x, keep)  # 0.1 on the [0, 1] scale everywhere
    r = stats.compute()
    assert r["l1"] == pytest.approx(0.2)
    assert r["psnr"] == pytest.approx(20.0, abs=1e-4)
    assert r["identity_psnr"] == pytest.approx(20.0, abs=1e-4)
    assert r["edit_l1"] == pytest.approx(0.2)
    same = PixelStats(SIZE)
    same.update(x, x, keep)
    assert same.compute()["psnr"] == math.inf
    assert same.compute()["ssim"] == pytest.approx(1.0, abs=1e-4)


def test_unchanged_mask_and_target_hits():
    x = torch.zeros(1, 3, 4, 4)
    truth = x.clone()
    truth[0, 1, 0, 0] = 0.5
    truth[0, 0, 1, 1] = 1 / 255  # within one 8-bit level on [0, 1]: unchanged
    mask = unchanged_mask(truth, x)
    assert mask.shape == (1, 1, 4, 4) and not mask[0, 0, 0, 0] and mask[0, 0, 1, 1]
    assert int(mask.sum()) == 15
    pred = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    hit, every = target_hits(pred, target, CATEGORICAL, "happy")
    assert hit.tolist() == [True, False] and every.tolist() == [True, False]
    hit, every = target_hits(pred, torch.tensor([[1.0, 1, 0], [1, 1, 1]]), BINARY, "Blond_Hair")
    assert hit.tolist() == [True, False] and every.tolist() == [False, False]
    with pytest.raises(EvaluationError, match=r"\[N, 3\]"):
        target_hits(pred[:, :2], target, BINARY, "Eyeglasses")


def test_eval_targets_match_sample_grid_rules():
    layout = _layout(BINARY, CATEGORICAL)
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    own = dict(eval_targets(layout, 0, 0, labels))
    assert own["Blond_Hair"].tolist() == [[0.0, 1.0, 1.0]]  # set, other hair cleared
    assert own["Eyeglasses"].tolist() == [[1.0, 0.0, 0.0]]  # flipped
    other = dict(eval_targets(layout, 0, 1, labels))
    assert list(other) == ["angry", "happy", "sad"] and other["sad"].tolist() == [[0, 0, 1]]


def test_decisions_per_spec():
    layout = _layout(BINARY, CATEGORICAL)
    out = decisions(torch.tensor([[0.5, -2.0, 3.0, 0.1, 0.9, -1.0]]), layout)
    assert out.tolist() == [[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]]


def test_judge_fid_and_kid():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 8, generator=g)
    assert judge_fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert judge_fid(a, a + 1) == pytest.approx(8.0, rel=1e-4)  # squared mean shift
    far, near = judge_kid(a, a + 1, subset_size=50)["mean"], judge_kid(a, a, subset_size=50)
    assert abs(near["mean"]) < 0.05 * far and near == judge_kid(a, a, subset_size=50)
    assert math.isnan(judge_fid(a[:1], a))


# The protocol on hand-made translators.


@pytest.mark.parametrize("spec", [BINARY, CATEGORICAL])
def test_perfect_translator_scores_perfectly(spec):
    layout, data = _layout(spec), Squares(spec, n=20)
    r = evaluate_generator(PerfectSquares(), layout, data, OracleJudge(layout), batch_size=8)
    assert r["ground_truth"] and r["source"]["n_images"] == 20
    assert list(r["targets"]) == list(spec.names)
    assert r["real"]["mean_error"] == 0.0
    s = r["summary"]["overall"]
    assert s["accuracy"] == 100.0 and s["all_correct"] == 100.0 and s["gt_judge_accuracy"] == 100
    assert s["rec_l1"] == 0.0 and s["gt_l1"] == 0.0 and s["gt_edit_l1"] == 0.0
    assert s["gt_psnr"] == math.inf and s["gt_identity_psnr"] == math.inf
    assert s["gt_ssim"] == pytest.approx(1.0, abs=1e-4)
    assert s["do_nothing_gt_psnr"] < 30 and s["do_nothing_accuracy"] < 100
    assert s["judge_fid"] >= 0 and "mean" in s["judge_kid"] and "judge_fid" in r["summary"]["0"]
    if spec.kind == "binary":  # a flip never holds in the input itself
        assert r["targets"]["Eyeglasses"]["do_nothing"]["accuracy"] == 0.0


def test_copy_translator_scores_exactly_the_do_nothing_baseline():
    layout, data = _layout(BINARY), Squares(BINARY, n=20)
    r = evaluate_generator(Copy(), layout, data, OracleJudge(layout), batch_size=6)
    for rec in r["targets"].values():
        gt = rec["ground_truth"]
        assert gt["translation"] == gt["do_nothing"]
        assert rec["accuracy"] == rec["do_nothing"]["accuracy"]
        assert rec["all_correct"] == rec["do_nothing"]["all_correct"]
        assert rec["rec_l1"] == 0.0
        assert gt["translation"]["identity_l1"] == 0.0
    s = r["summary"]["overall"]
    assert s["gt_psnr"] == s["do_nothing_gt_psnr"] and s["gt_ssim"] == s["do_nothing_gt_ssim"]


class ClassSorted(Squares):
    """Squares listed class by class, as a folder dataset lists its images; records reads."""

    def __init__(self, n: int) -> None:
        super().__init__(CATEGORICAL, n)
        order = torch.argsort(self.labels.argmax(1), stable=True)
        self.background, self.labels = self.background[order], self.labels[order]
        self.images = self.images[order]
        self.read: set[int] = set()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.read.add(i)
        return super().__getitem__(i)


def test_a_subset_of_a_class_sorted_split_covers_every_class():
    layout, data = _layout(CATEGORICAL), ClassSorted(30)
    r = evaluate_generator(Copy(), layout, data, OracleJudge(layout), num_images=6, fid=False)
    assert len(data.read) == 6  # six images read, not the first six (all one class)
    assert {int(data.labels[i].argmax()) for i in data.read} == {0, 1, 2}
    assert r["source"]["n_images"] == 6


def test_inputs_that_do_not_fit_are_named():
    layout = _layout(BINARY)
    data = Squares(BINARY, n=4)
    with pytest.raises(EvaluationError, match="not dataset 0"):
        evaluate_generator(Copy(), _layout(CATEGORICAL), data, OracleJudge(layout))
    with pytest.raises(EvaluationError, match="train a judge on that dataset"):
        evaluate_generator(Copy(), layout, data, OracleJudge(_layout(CATEGORICAL)))
    big = Judge(JudgeConfig(image_size=32, width=2, blocks=(1,)), layout)
    with pytest.raises(EvaluationError, match="32 px.*16 px"):
        evaluate_generator(Copy(), layout, data, big)
    with pytest.raises(EvaluationError, match="target datasets"):
        evaluate_generator(Copy(), layout, data, OracleJudge(layout), target_datasets=[3])


# SynthFaces: ground truth from the renderer, also across datasets of a joint model.


class SynthOracle(nn.Module):
    """Finds which face an input shows (a test image or an earlier output) and renders its
    true counterfactual."""

    def __init__(self, ds, layout: LabelLayout) -> None:
        super().__init__()
        from stargan.data import synthfaces as synthetic

        self.ds, self.layout, self.synthetic = ds, layout, synthetic
        self.known = [(ds[i][0], i) for i in range(len(ds))]

    def _which(self, img: torch.Tensor) -> int:
        return next(i for known, i in self.known if torch.equal(known, img))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        out = []
        for img, label in zip(x, c, strict=True):
            i = self._which(img)
            k = int(label[self.layout.n_classes :].argmax()) if self.layout.n_datasets > 1 else 0
            part = label[self.layout.slice(k)]
            if k == 0:
                y = self.ds.counterfactual(i, part)
            else:
                name = self.layout.specs[1].names[int(part.argmax())]
                state = self.ds.state(i).with_expression(name)
                y = self.synthetic.render(self.ds.identity(i), state, self.ds.size)
                y = torch.from_numpy(y).permute(2, 0, 1).float() / 127.5 - 1
            self.known.append((y, i))
            out.append(y)
        return torch.stack(out)


def test_synthfaces_ground_truth_within_and_across_datasets():
    synthetic = pytest.importorskip("stargan.data.synthfaces")
    faces = synthetic.SynthFaces("celeba", size=SIZE, n=6, seed=3)
    expressions = synthetic.SynthFaces("rafd", size=SIZE, n=8, seed=3)
    layout = _layout(faces.label_spec, expressions.label_spec)
    judge = Judge(JudgeConfig(image_size=SIZE, width=4, blocks=(1,)), layout)
    oracle = SynthOracle(faces, layout)
    r = evaluate_generator(oracle, layout, faces, judge, batch_size=4, fid=False)
    assert r["target_datasets"] == [0, 1] and r["ground_truth"]
    assert len(r["targets"]) == faces.label_spec.n_labels + 8
    for name, rec in r["targets"].items():
        assert rec["ground_truth"]["translation"]["psnr"] == math.inf, name
        assert rec["ground_truth"]["translation"]["l1"] == 0.0, name
    assert r["targets"]["happy"]["dataset"] == 1
    assert r["summary"]["1"]["gt_psnr"] == math.inf
    assert r["targets"]["Male"]["ground_truth"]["do_nothing"]["psnr"] < 40  # a flip changes
    copy = evaluate_generator(Copy(), layout, faces, judge, target_datasets=[1], fid=False)
    assert list(copy["summary"]) == ["1", "overall"]
    angry = copy["targets"]["angry"]["ground_truth"]
    assert angry["translation"] == angry["do_nothing"]
    assert 0 < angry["unchanged_pixels"] < 100  # expressions change only part of the face


# The judge classifier.


@pytest.fixture(scope="module")
def trained_judge():
    train, val = Squares(BINARY, n=192, seed=1), Squares(BINARY, n=96, seed=2)
    judge = train_classifier(
        train,
        JudgeConfig(image_size=SIZE, width=8, blocks=(1, 1)),
        # No flips: a mirrored square sits where another label's square belongs.
        JudgeTrainConfig(epochs=6, batch_size=16, lr=1e-2, seed=0, flip=False),
        val=val,
    )
    return judge, val


def test_judge_learns_squares_to_over_95_percent(trained_judge):
    judge, _ = trained_judge
    held_out = judge.info["held_out"][0]
    assert held_out["n_images"] == 96 and set(held_out["error"]) == set(BINARY.names)
    assert held_out["mean_error"] < 5.0, held_out
    assert len(judge.info["train_loss"]) == 6
    assert not judge.training


def test_judge_on_categorical_and_joint_data():
    joint = [Squares(BINARY, n=64, seed=4), Squares(CATEGORICAL, n=64, seed=5)]
    judge = train_classifier(
        joint, JudgeConfig(image_size=SIZE, width=4, blocks=(1,)), JudgeTrainConfig(epochs=1)
    )
    assert judge.layout == _layout(BINARY, CATEGORICAL)
    assert judge(joint[0].images[:3]).shape == (3, 6) and judge.num_features == 4
    reports = judge_error(judge, joint)
    assert [r["kind"] for r in reports] == ["binary", "categorical"]


def test_judge_sizes_and_stems():
    layout = _layout(CATEGORICAL)
    for size in (16, 64, 128, 256):
        judge = Judge(JudgeConfig(image_size=size, width=4), layout).eval()
        assert judge(torch.zeros(1, 3, size, size)).shape == (1, 3)
        assert judge.cfg.resolved_stem == ("small" if size <= 64 else "imagenet")
    assert Judge(JudgeConfig(image_size=16), layout).num_features == 512  # ResNet-18 width
    with pytest.raises(EvaluationError, match=r"\[N, 3, 16, 16\]"):
        Judge(JudgeConfig(image_size=16, width=2), layout)(torch.zeros(1, 3, 32, 32))
    with pytest.raises(EvaluationError, match="image_size must be in"):
        JudgeConfig(image_size=8)


def test_judge_save_load_round_trip(tmp_path, trained_judge):
    judge, val = trained_judge
    path = save_judge(judge, tmp_path / "judge.safetensors")
    again = load_judge(path)
    assert again.cfg == judge.cfg and again.layout == judge.layout and again.info == judge.info
    x = val.images[:8]
    assert torch.equal(again(x), judge(x)) and torch.equal(again.features(x), judge.features(x))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    (tmp_path / "bad.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_judge(tmp_path / "bad.safetensors")


def test_quick_eval_and_periodic_hook(trained_judge):
    judge, val = trained_judge
    layout = _layout(BINARY)
    metrics = quick_eval(PerfectSquares(), layout, val, judge, n=32)
    assert metrics["psnr"] == math.inf and metrics["rec_l1"] == 0.0
    assert metrics["accuracy"] > 90 and metrics["do_nothing_psnr"] < metrics["psnr"]
    hook = PeriodicEvaluation(5, [val], judge, n=16)
    trainer = SimpleNamespace(G=PerfectSquares(), layout=layout, device=torch.device("cpu"))
    assert hook(trainer, 4) == {}
    rng = torch.get_rng_state()
    out = hook(trainer, 10)
    assert torch.equal(rng, torch.get_rng_state())  # exact resume stays exact
    assert {"eval/accuracy", "eval/psnr", "eval/rec_l1"} <= out.keys()
    joint = PeriodicEvaluation(1, [val, val], judge, n=8)
    two = SimpleNamespace(G=Copy(), layout=_layout(BINARY, BINARY), device="cpu")
    assert {"eval/0:accuracy", "eval/1:psnr"} <= joint(two, 1).keys()


# The report.


def _fake_run(tmp_path):
    records = []
    for step in range(1, 31):
        rec = {"step": step, "time": 1000.0 + 3 * step, "D/adv": -1 / step, "D/loss": 2 / step}
        if step % 2 == 0:
            rec |= {"G/adv": 0.5, "G/rec": 0.3 / step, "G/loss": 1.0}
        if step % 10 == 0:
            rec |= {"eval/accuracy": 50.0 + step, "eval/psnr": 15.0 + step / 10}
        records.append(json.dumps(rec))
    (tmp_path / "metrics.jsonl").write_text("\n".join(records) + '\n{"step": 31, "ti')
    return tmp_path


def test_report_renders_tables_grid_and_curves(tmp_path):
    run = _fake_run(tmp_path)
    layout, data = _layout(BINARY), Squares(BINARY, n=8)
    results = evaluate_generator(PerfectSquares(), layout, data, OracleJudge(layout))
    grid = translation_grid(PerfectSquares(), layout, data, n=3)
    assert grid.columns[:3] == ["input", "Black_Hair", "Black_Hair (truth)"]
    assert grid.images.shape == (3, 7, 3, SIZE, SIZE)
    assert torch.equal(grid.images[:, 1], grid.images[:, 2])  # perfect: translation == truth
    path = write_report(run, {"evaluations": [results], "model": {"step": 30}}, grids=[grid])
    page = path.read_text()
    assert path == run / "report.html" and page.count("data:image/png;base64,") >= 3 * 7 + 2
    assert "Blond_Hair (truth)" in page and "∞" in page and "judge-FID" in page
    for name in ("losses.png", "eval_vs_time.png", "grid-0.png"):
        assert (run / "report" / name).stat().st_size > 300, name

    def strict(value):
        raise ValueError(f"non-standard JSON constant {value}")

    saved = json.loads((run / "results.json").read_text(), parse_constant=strict)
    assert saved["evaluations"][0]["summary"]["overall"]["gt_psnr"] == "inf"


def test_report_without_training_log(tmp_path):
    layout, data = _layout(CATEGORICAL), Squares(CATEGORICAL, n=6)
    results = evaluate_generator(Copy(), layout, data, OracleJudge(layout), fid=False)
    page = write_report(tmp_path, results).read_text()
    assert "No training log" in page and (tmp_path / "results.json").is_file()


# The CLI on a tiny real run.


if "eval-test-squares" not in dataset_names():

    @register_dataset("eval-test-squares")
    def _build_squares(cfg: DataConfig, split: str) -> Squares:
        n = cfg.num_images if split == "train" else cfg.test_size
        return Squares(BINARY, n=n, seed=cfg.split_seed + (split == "test"))


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="stargan")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_trains_a_judge_and_evaluates_a_run(tmp_path, capsys):
    from stargan.training.trainer import Trainer

    cfg = tiny_config(tmp_path / "run", size=SIZE, iters=2)
    data = DataConfig(name="eval-test-squares", image_size=SIZE, num_images=32, test_size=12)
    Trainer(dataclasses.replace(cfg, data=(data,))).fit()
    run, judge = tmp_path / "run", tmp_path / "judge.safetensors"
    assert (
        _cli(
            "evaluate",
            "train-classifier",
            "--run",
            str(run),
            "--epochs",
            "1",
            "--width",
            "4",
            "--out",
            str(judge),
        )
        == 0
    )
    assert "held-out error" in capsys.readouterr().out and judge.is_file()
    assert _cli("evaluate", "--run", str(run), "--judge", str(judge), "--num", "8") == 0
    results = json.loads((run / "results.json").read_text())
    (ev,) = results["evaluations"]
    assert ev["source"]["n_images"] == 8 and ev["source"]["name"] == "eval-test-squares"
    assert "gt_psnr" in ev["summary"]["overall"] and (run / "report" / "losses.png").is_file()
    out = capsys.readouterr().out
    assert str(run / "report.html") in out
    assert out.rstrip().endswith(headline(results))  # the figures last, beside doing nothing
    assert "target accuracy" in out and "doing nothing" in out
    # No judge given: one is trained on the train split and cached in the run folder.
    assert _cli("evaluate", "--run", str(run), "--num", "4", "--judge-epochs", "1", "--no-fid") == 0
    assert (run / "judge.safetensors").is_file()
    assert _cli("evaluate") == 2 and "give --run DIR" in capsys.readouterr().err


def test_train_classifier_no_flip_reaches_the_training(tmp_path, monkeypatch):
    import stargan.evaluation.classifier as classifier

    flips = []

    class Stop(Exception):
        pass

    def record(data, cfg, train, **kwargs):
        flips.append(train.flip)
        raise Stop

    monkeypatch.setattr(classifier, "train_classifier", record)
    argv = ["evaluate", "train-classifier", "--dataset", "eval-test-squares"]
    argv += ["--image-size", str(SIZE), "--out", str(tmp_path / "j.safetensors")]
    for extra in ([], ["--no-flip"]):
        with pytest.raises(Stop):
            _cli(*argv, *extra)
    assert flips == [True, False]


def test_evaluate_model_reads_generator_and_layout_from_the_model(tmp_path):
    layout, data = _layout(CATEGORICAL), Squares(CATEGORICAL, n=4)
    model = StarGAN(PerfectSquares(), None, layout, tmp_path)  # type: ignore[arg-type]
    r = evaluate_model(model, data, OracleJudge(layout), fid=False)
    assert r["summary"]["overall"]["accuracy"] == 100.0


def test_public_api_is_complete_and_lazy():
    import stargan.evaluation as evaluation

    assert sorted(evaluation.__all__) == sorted(evaluation._MODULE_OF)
    for name in evaluation.__all__:
        assert getattr(evaluation, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = evaluation.nope


def test_shipped_judge_is_found_by_labels_and_size(tmp_path):
    joint = _layout(BINARY, CATEGORICAL)
    save_judge(
        Judge(JudgeConfig(image_size=SIZE, width=2, blocks=(1,)), joint),
        tmp_path / "judge-a.safetensors",
    )
    assert shipped_judge(_layout(CATEGORICAL), SIZE, tmp_path) == tmp_path / "judge-a.safetensors"
    assert shipped_judge(joint, SIZE, tmp_path) == tmp_path / "judge-a.safetensors"
    assert shipped_judge(_layout(CATEGORICAL), 2 * SIZE, tmp_path) is None
    other = LabelSpec(("Black_Hair", "Blond_Hair"), "binary")
    assert shipped_judge(_layout(other), SIZE, tmp_path) is None


def test_the_package_ships_judges_for_synthfaces_within_one_percent():
    from stargan.data.synthfaces import SynthFaces

    for mode in ("celeba", "rafd"):
        spec = SynthFaces(mode, size=16, n=1).label_spec
        path = shipped_judge(LabelLayout((spec,)), 32)
        assert path is not None, mode
        (report,) = load_judge(path).info["held_out"]
        assert report["n_images"] >= 1000
        assert max(report["error"].values()) <= 1.0, report
