"""experiments/official_parity.py without the official code or a network: the stand-in
torchvision it writes behaves like torchvision on PIL images, the wrapper seeds torch and finds
the stand-in, the summary is the mean and sample standard deviation, and a folder without the
release's files is refused in one line."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path, package: Path | None = None):
    spec = importlib.util.spec_from_file_location(
        name, path, submodule_search_locations=[str(package)] if package else None
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


parity = _load("official_parity", ROOT / "experiments" / "official_parity.py")


@pytest.fixture(scope="module")
def tv(tmp_path_factory):
    """The stand-in package, imported under another name (a real torchvision may exist)."""
    run = tmp_path_factory.mktemp("run")
    parity.write_shim(run)
    pkg = run / "shim" / "torchvision"
    return _load("tv_standin", pkg / "__init__.py", pkg)


def _image(w: int, h: int, seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(a), a


def test_to_tensor_and_normalize_match_our_scaling(tv):
    img, a = _image(8, 6)
    t = tv.transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(tv.transforms.ToTensor()(img))
    assert t.shape == (3, 6, 8) and t.dtype == torch.float32
    ours = torch.from_numpy(a).permute(2, 0, 1).float().div(127.5).sub(1.0)
    assert torch.allclose(t, ours, atol=1e-6)
    assert float(t.min()) >= -1 and float(t.max()) <= 1


def test_center_crop_is_centred_and_pads_black_when_larger(tv):
    img, a = _image(40, 30)
    out = np.asarray(tv.transforms.CenterCrop(20)(img))
    assert np.array_equal(out, a[5:25, 10:30])
    big = np.asarray(tv.transforms.CenterCrop(34)(img))  # 30 high: 2 black rows each side
    assert big.shape == (34, 34, 3)
    assert np.array_equal(big[2:32], a[:, 3:37])
    assert not big[:2].any() and not big[32:].any()
    # The export's case: cropping 32 from 32 changes nothing.
    img32, a32 = _image(32, 32)
    assert np.array_equal(np.asarray(tv.transforms.CenterCrop(32)(img32)), a32)


def test_resize_keeps_aspect_and_skips_same_size(tv):
    img, _ = _image(64, 48)
    out = tv.transforms.Resize(32)(img)
    assert out.size == (42, 32)  # shorter side 32, int(32 * 64 / 48)
    assert np.array_equal(np.asarray(out), np.asarray(img.resize((42, 32), Image.BILINEAR)))
    same, _ = _image(32, 32)
    assert tv.transforms.Resize(32)(same) is same


def test_flip_follows_torch_seed_and_compose_applies_in_order(tv):
    img, a = _image(5, 4)
    assert np.array_equal(np.asarray(tv.transforms.RandomHorizontalFlip(1.0)(img)), a[:, ::-1])
    assert tv.transforms.RandomHorizontalFlip(0.0)(img) is img
    flips = []
    for _ in range(2):
        torch.manual_seed(3)
        flip = tv.transforms.RandomHorizontalFlip()
        flips.append([np.array_equal(np.asarray(flip(img)), a[:, ::-1]) for _ in range(32)])
    assert flips[0] == flips[1] and 0 < sum(flips[0]) < 32
    pipe = tv.transforms.Compose([tv.transforms.CenterCrop(2), tv.transforms.ToTensor()])
    assert pipe(img).shape == (3, 2, 2)


def test_image_folder_and_save_image(tv, tmp_path):
    for cls in ("b", "a"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        _image(4, 4)[0].save(tmp_path / "data" / cls / "x.png")
    ds = tv.datasets.ImageFolder(str(tmp_path / "data"), tv.transforms.ToTensor())
    assert ds.classes == ["a", "b"] and len(ds) == 2 and ds[1][1] == 1
    tv.utils.save_image(torch.rand(3, 3, 4, 5), tmp_path / "g.png", nrow=1, padding=0)
    assert Image.open(tmp_path / "g.png").size == (5, 12)


def test_wrapper_seeds_torch_and_serves_the_standin(tmp_path):
    official = tmp_path / "official"
    official.mkdir()
    (official / "solver.py").write_text("")
    (official / "main.py").write_text(
        "import sys, torch\nfrom torchvision import transforms as T\n"
        "from torchvision.datasets import ImageFolder\nfrom torchvision.utils import save_image\n"
        "print(torch.initial_seed(), torch.get_num_threads(), T.__file__, sys.argv[1:])\n"
    )
    wrapper = parity.write_shim(tmp_path / "run")
    out = subprocess.run(
        [sys.executable, str(wrapper), "7", str(official), "--x", "1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    seed, threads, where, argv = out.stdout.split(" ", 3)
    assert (seed, threads) == ("7", "1")
    assert where.startswith(str(tmp_path / "run" / "shim" / "torchvision"))
    assert argv.strip() == "['--x', '1']"


def test_summary_is_mean_and_sample_std():
    s = parity.stats([1.0, 2.0, 3.0, None, float("nan")])
    assert s == {"n": 3, "mean": 2.0, "std": 1.0}
    assert parity.stats([5.0]) == {"n": 1, "mean": 5.0, "std": None}
    runs = [
        {"code": code, "seed": seed, "target_accuracy": acc, "gt_psnr": psnr, "gt_l1": 0.1,
         "judge_fid": 50.0, "train_minutes": 9.0, "train_clock": "cpu",
         "do_nothing": {"target_accuracy": 12.5, "gt_psnr": 19.48, "gt_l1": 0.081}}
        for code, seed, acc, psnr in
        [("official", 0, 40.0, 13.0), ("ours", 0, 50.0, 10.0), ("official", 1, 50.0, 14.0)]
    ]  # fmt: skip
    summary = parity.summarise(runs)
    assert summary["per_code"]["official"]["gt_psnr"]["mean"] == pytest.approx(13.5)
    assert summary["per_code"]["official"]["gt_psnr"]["std"] == pytest.approx(0.5**0.5)
    assert summary["per_code"]["ours"]["target_accuracy"] == {"n": 1, "mean": 50.0, "std": None}
    table = parity.markdown({"runs": runs, "summary": summary})
    assert "| official | 0 / 1 | 9.0 / 9.0 (9.0 ± 0.0) | 40.0 / 50.0 (45.0 ± 7.1) |" in table
    assert "| 13.00 / 14.00 (13.50 ± 0.71) |" in table
    assert "| ours | 0 | 9.0 | 50.0 | 10.00 | 0.100 | 50.0 |" in table
    assert "| do nothing | | | 12.5 | 19.48 | 0.081 | |" in table
    assert table.endswith("| ours | +5.0 (t n/a) | -3.50 (t n/a) | +0.000 (t n/a) | +0.0 (t n/a) |")
    json.dumps(summary, allow_nan=False)


def test_wall_clock_minutes_stay_out_of_the_means_and_welch_t_compares_codes():
    runs = [
        {"code": code, "seed": seed, "target_accuracy": acc, "gt_psnr": 13.0, "gt_l1": 0.1,
         "judge_fid": 50.0, "train_minutes": minutes, "train_clock": clock,
         "do_nothing": {"target_accuracy": 12.5, "gt_psnr": 19.48, "gt_l1": 0.081}}
        for code, seed, acc, minutes, clock in [
            ("official", 0, 60.0, 65.0, "wall"), ("official", 1, 62.0, 5.0, "cpu"),
            ("official", 2, 64.0, 5.2, "cpu"), ("ours", 0, 40.0, 3.0, "cpu"),
            ("ours", 1, 44.0, 3.4, "cpu"), ("ours", 2, 42.0, 3.2, "cpu"),
        ]
    ]  # fmt: skip
    summary = parity.summarise(runs)
    assert summary["per_code"]["official"]["train_minutes"]["mean"] == pytest.approx(5.1)
    against = summary["against_official"]["ours"]
    assert against["target_accuracy"]["difference"] == pytest.approx(-20.0)
    assert against["target_accuracy"]["welch_t"] == pytest.approx(-20.0 / (8 / 3) ** 0.5)
    assert against["gt_psnr"]["welch_t"] is None  # no spread on either side
    assert "train_minutes" not in against
    table = parity.markdown({"runs": runs, "summary": summary})
    assert "| official | 0 / 1 / 2 | n/a / 5.0 / 5.2 (5.1 ± 0.1) |" in table
    assert "| ours | -20.0 (t -12.2) | +0.00 (t n/a) |" in table


def test_a_folder_without_the_release_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "main.py").write_text("")
    with pytest.raises(SystemExit) as e:
        parity.main(["--official", str(tmp_path), "--report-only"])
    message = str(e.value.code)
    assert "solver.py" in message and "yunjey/stargan" in message and "\n" not in message
    with pytest.raises(SystemExit, match="no main.py or solver.py there"):
        parity.check_official(tmp_path / "nowhere")


def test_recipe_flags_match_the_preset():
    args = parity.official_train_args(Path("E"), Path("R"), [])
    flags = dict(zip(args[::2], args[1::2], strict=False))
    assert flags["--image_size"] == flags["--celeba_crop_size"] == "32"
    assert (flags["--num_iters"], flags["--num_iters_decay"], flags["--n_critic"]) == (
        "1500", "750", "5",
    )  # fmt: skip
    assert flags["--use_tensorboard"] == "False" and flags["--model_save_step"] == "1500"
    ours = parity.ours_train_args(Path("E"), Path("R"), 2, [])
    assert "--official-split" in ours and ours[ours.index("--seed") + 1] == "2"
    assert ours[ours.index("--crop-size") + 1] == "32"


def test_runs_are_read_from_their_evaluation_and_timed_in_cpu(tmp_path):
    wall, cpu = parity._run([sys.executable, "-c", "sum(range(3_000_000))"], tmp_path / "a.log")
    assert wall > 0 and cpu > 0 and (tmp_path / "a.log").read_text().startswith("$ ")
    overall = {
        "accuracy": 48.0,
        "gt_psnr": 10.5,
        "gt_l1": 0.4,
        "rec_l1": 0.3,
        "judge_fid": 68.0,
        "do_nothing_accuracy": 12.5,
        "do_nothing_gt_psnr": 19.48,
        "do_nothing_gt_l1": 0.08,
    }
    for code, record in (("official", {"train_seconds": 900.0, "train_cpu_seconds": 360.0}),
                         ("ours", {"train_seconds": 600.0})):  # fmt: skip
        run = tmp_path / f"{code}-s0"
        (run / "eval").mkdir(parents=True)
        summary = {"evaluations": [{"summary": {"overall": overall}}]}
        (run / "eval" / "results.json").write_text(json.dumps(summary))
        (run / "run.json").write_text(json.dumps(record))
    result = parity.collect(tmp_path, ["official", "ours", "ours-lr-official"], [0, 1], "abc")
    assert [(r["code"], r["train_minutes"], r["train_clock"]) for r in result["runs"]] == [
        ("official", 6.0, "cpu"), ("ours", 10.0, "wall"),
    ]  # fmt: skip
    assert result["runs"][0]["official_commit"] == "abc" and result["runs"][1]["gt_psnr"] == 10.5
    assert result["summary"]["do_nothing"]["gt_psnr"] == 19.48
