"""Model files and official checkpoints from strangers: sizes are judged before anything large
is allocated, and weights that are not finite are refused.

The hostile files are small and crafted here: a pickle whose storages claim gigabytes, a model
config whose networks would need terabytes. Commands that could allocate run in a subprocess
under a 4 GiB address-space limit (RLIMIT_AS), which reports their time and peak memory.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import pickle
import subprocess
import sys
import zipfile

import pytest
import torch
from test_official import ATTRS, OfficialD, OfficialG

from conftest import CELEBA_SPEC, TensorFaces, tiny_config
from stargan import accel
from stargan import checkpoint as ckpt
from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import MAX_PARAMETERS, ConfigError, ModelConfig
from stargan.data.labels import LabelLayout
from stargan.evaluation.classifier import Judge, JudgeConfig, load_judge, save_judge
from stargan.export import compact_model_file
from stargan.inference import load
from stargan.models import build_discriminator, build_generator, count_parameters
from stargan.official import import_official
from stargan.presets import get_preset, preset_names
from stargan.training.trainer import Trainer

LAYOUT = LabelLayout((CELEBA_SPEC,))
# The subprocess reads its peak virtual size from /proc and limits it with RLIMIT_AS.
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc, RLIMIT_AS")


# Sizes in closed form, checked against the networks themselves.


def _activations(net: torch.nn.Module, *inputs: torch.Tensor) -> int:
    """Elements of every leaf layer's output for one image, on the meta device."""
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        total += sum(t[0].numel() for t in (output if isinstance(output, tuple) else (output,)))

    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    with torch.no_grad():
        net(*inputs)
    for h in hooks:
        h.remove()
    return total


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(),
        ModelConfig(image_size=256, c_dim=15, n_classes=13),
        ModelConfig(image_size=256, d_repeat_num=7),
        ModelConfig(image_size=64, g_conv_dim=32, d_conv_dim=32, g_repeat_num=3),
        ModelConfig(image_size=32, g_conv_dim=8, d_conv_dim=8, g_repeat_num=0, d_repeat_num=1),
        ModelConfig(image_size=16, g_conv_dim=8, d_conv_dim=4, d_repeat_num=3, g_output="mask"),
        ModelConfig(
            image_size=48, g_conv_dim=6, g_repeat_num=2, d_repeat_num=4, g_output="residual"
        ),
    ],
    ids=lambda c: (
        f"{c.image_size}px-g{c.g_conv_dim}x{c.g_repeat_num}-d{c.d_repeat_num}-{c.g_output}"
    ),
)
def test_network_sizes_match_the_built_networks(cfg):
    with torch.device("meta"):
        g, d = build_generator(cfg), build_discriminator(cfg)
        x = torch.zeros(1, 3, cfg.image_size, cfg.image_size)
        measured = {
            "G": (count_parameters(g), _activations(g, x, torch.zeros(1, cfg.c_dim))),
            "D": (count_parameters(d), _activations(d, x)),
        }
    assert cfg.network_sizes() == measured


def test_the_limits_keep_every_preset_and_the_papers_nets():
    for name in preset_names():
        get_preset(name)  # builds its TrainConfig, and so its ModelConfig, without error
    sizes = ModelConfig().network_sizes()
    assert sizes["G"][0] == 8_430_528 and sizes["D"][0] == 44_762_048  # REFERENCE.md
    ModelConfig(image_size=256, d_repeat_num=7)  # D 179M
    ModelConfig(image_size=512)  # G 291M activations per image


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        # Each field inside its own documented bound, the networks far beyond any machine.
        ({"g_conv_dim": 4096, "g_repeat_num": 64}, "G 314,612,838,400 parameters"),
        ({"d_conv_dim": 4096, "d_repeat_num": 7}, "D 732,833,181,696 parameters"),
        ({"image_size": 2048, "d_repeat_num": 6}, "layer-output elements per image"),
        ({"image_size": 1024}, "G 1,163,919,360 layer-output elements per image"),
        ({"g_conv_dim": 64.0}, "model.g_conv_dim must be an integer, got 64.0"),
        ({"g_repeat_num": True}, "model.g_repeat_num must be an integer, got True"),
    ],
)
def test_oversized_or_mistyped_configs_are_refused(fields, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**fields)


# Running a command under a memory limit.

_LIMITED = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
import torch  # the CLI imports it lazily; its import time is not the refusal's
from stargan.cli import main
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: ru_maxrss survives fork + exec and would report pytest's own size.
status = {l.split(":")[0]: int(l.split()[1]) for l in open("/proc/self/status") if "kB" in l}
peak, rss = status["VmPeak"], status["VmHWM"]
print(json.dumps({"code": code, "seconds": seconds, "rss_mib": rss / 1024, "vm_mib": peak / 1024}))
"""


def run_limited(argv: list[str], cwd) -> tuple[dict, str]:
    """(code, seconds inside main, peak RSS and peak virtual size in MiB), stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", _LIMITED, *argv], capture_output=True, text=True, cwd=cwd,
        timeout=300,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def assert_refused_quickly(result: dict, stderr: str, name: str, message: str) -> None:
    lines = stderr.strip().splitlines()
    assert result["code"] == EXIT_USER_ERROR and result["seconds"] < 2, (result, stderr)
    assert len(lines) == 1 and lines[0].startswith("stargan: error: "), stderr
    assert name in lines[0] and message in lines[0], stderr


# Official checkpoints whose tensors claim what the file does not hold.


class _Claim:
    """A storage that exists only as its persistent id: ``numel`` float32 elements."""

    def __init__(self, key: str, numel: int) -> None:
        self.key, self.numel = key, numel


class _ClaimedTensor:
    def __init__(self, claim: _Claim, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.claim, self.shape, self.stride = claim, shape, stride

    def __reduce__(self):
        rebuild = torch._utils._rebuild_tensor_v2
        return rebuild, (self.claim, 0, self.shape, self.stride, False, collections.OrderedDict())


def _pickle_state(state: dict, legacy: bool) -> bytes:
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)

    def persistent_id(obj):
        if not isinstance(obj, _Claim):
            return None
        pid = ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return (*pid, None) if legacy else pid

    pickler.persistent_id = persistent_id
    pickler.dump(state)
    return buf.getvalue()


def forge_checkpoint(
    shape: tuple[int, ...], stride: tuple[int, ...], numel: int, legacy: bool
) -> bytes:
    """torch.save's layout (zip, or the legacy format of the 2018 release) for one tensor
    ``main.0.weight`` whose storage claims ``numel`` floats and holds 4 bytes."""
    claim = _Claim("0", numel)
    state = _pickle_state({"main.0.weight": _ClaimedTensor(claim, shape, stride)}, legacy)
    if legacy:
        info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}
        header = [torch.serialization.MAGIC_NUMBER, torch.serialization.PROTOCOL_VERSION, info]
        raw = numel.to_bytes(8, "little") + bytes(4)
        return (
            b"".join(pickle.dumps(x, protocol=2) for x in header)
            + state
            + (pickle.dumps(["0"], protocol=2) + raw)
        )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", state)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data/0", bytes(4))
    return buf.getvalue()


def _import_argv(path, tmp_path) -> list[str]:
    return ["import-official", str(path), "--out", str(tmp_path / "m.safetensors"), "--attrs",
            *ATTRS]  # fmt: skip


@linux_only
@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
def test_a_checkpoint_claiming_8_gib_is_refused_before_allocating(tmp_path, legacy):
    # 4096 x 8 x 7 x 7 as the issue reported, over a storage claiming 2**31 floats (8 GiB).
    data = forge_checkpoint((4096, 8, 7, 7), (392, 49, 7, 1), 2**31, legacy)
    path = tmp_path / "forged-G.ckpt"
    path.write_bytes(data)
    assert len(data) < 2000
    result, stderr = run_limited(_import_argv(path, tmp_path), tmp_path)
    assert_refused_quickly(result, stderr, str(path), "a forged or damaged checkpoint")
    assert "8,589,934,592" in stderr or "2147483648" in stderr
    assert result["rss_mib"] < 600 and result["vm_mib"] < 4096
    assert not (tmp_path / "m.safetensors").exists()


@linux_only
def test_a_checkpoint_whose_shapes_imply_a_huge_network_is_refused(tmp_path):
    # One stored float, viewed with stride 0 as G's first conv at width 4096: a valid tensor, so
    # torch.load accepts it; the network it implies would need 21 GB.
    path = tmp_path / "wide-G.ckpt"
    path.write_bytes(forge_checkpoint((4096, 8, 7, 7), (0, 0, 0, 0), 1, legacy=True))
    result, stderr = run_limited(_import_argv(path, tmp_path), tmp_path)
    assert_refused_quickly(result, stderr, str(path), "parameters, over the limit")
    assert result["rss_mib"] < 600


def _truncated_checkpoint() -> bytes:
    buf = io.BytesIO()
    torch.save(OfficialG().state_dict(), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()[:300]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        # Each storage fits in the file; together they claim more than follows the pickle.
        (lambda: forge_checkpoint((50,), (1,), 50, legacy=True), "claim 200 bytes, more than"),
        (lambda: forge_checkpoint((50,), (1,), 10**4, legacy=False), "claim 40,000 bytes, more"),
        (lambda: pickle.dumps({"a": 1.0}, protocol=2), "neither a zip archive nor the legacy"),
        (_truncated_checkpoint, "ends inside its pickle"),
    ],
    ids=["legacy-total", "zip-total", "plain-pickle", "truncated"],
)
def test_malformed_checkpoints_are_explained(tmp_path, make, message):
    (tmp_path / "bad.ckpt").write_bytes(make())
    with pytest.raises(ckpt.CheckpointError, match=message):
        import_official(tmp_path / "bad.ckpt", tmp_path / "m.safetensors", attrs=ATTRS)


def test_import_official_image_size_must_suit_the_networks(tmp_path, capsys):
    torch.save(OfficialG().state_dict(), tmp_path / "G.ckpt")
    rule = "--image-size) must be a multiple of 4 (G down-samples twice) from 4 to 2048, got"
    for size in ("15", "0", "4096"):
        argv = [*_import_argv(tmp_path / "G.ckpt", tmp_path), "--image-size", size]
        assert main(argv) == EXIT_USER_ERROR
        assert f"{rule} {size}" in capsys.readouterr().err
    # A size that G accepts but D's three strided convs do not.
    torch.save(OfficialD(image_size=16, repeat_num=3).state_dict(), tmp_path / "D.ckpt")
    argv = [*_import_argv(tmp_path / "G.ckpt", tmp_path), "--image-size", "12",
            "--discriminator", str(tmp_path / "D.ckpt")]  # fmt: skip
    assert main(argv) == EXIT_USER_ERROR
    assert "must be divisible by 2**d_repeat_num = 8" in capsys.readouterr().err


def test_a_genuine_checkpoint_in_either_format_still_imports(tmp_path):
    torch.manual_seed(0)
    g = OfficialG()
    for legacy in (True, False):
        path = tmp_path / f"G-{legacy}.ckpt"
        torch.save(g.state_dict(), path, _use_new_zipfile_serialization=not legacy)
        model = load(import_official(path, tmp_path / "m.safetensors", attrs=ATTRS, image_size=16))
        x, c = torch.randn(2, 3, 16, 16), torch.rand(2, 5)
        with torch.no_grad():
            assert torch.allclose(model.generator(x, c), g(x, c), atol=1e-6)


# Model files whose config or tensors do not fit.


def _model_file(path, config: dict, tensors: dict[str, torch.Tensor]) -> None:
    """A model file with a valid checksum and any config, as a stranger could write one."""
    meta = {"format": ckpt.MODEL_FORMAT, "model_config": json.dumps(config),
            "labels": json.dumps(LAYOUT.to_dict())}  # fmt: skip
    ckpt.save_tensors(path, tensors, meta)


def _config(**fields) -> dict:
    return {**dataclasses.asdict(ModelConfig()), **fields}


@linux_only
def test_a_model_file_whose_config_needs_terabytes_is_refused(tmp_path):
    path = tmp_path / "huge.safetensors"
    _model_file(path, _config(g_conv_dim=4096, g_repeat_num=64), {"G.x": torch.zeros(1)})
    argv = ["translate", "--model", str(path), "--input", str(tmp_path), "--out", "o"]
    result, stderr = run_limited(argv, tmp_path)  # first, under the memory limit
    assert_refused_quickly(result, stderr, str(path), f"over the limit of {MAX_PARAMETERS:,}")
    with pytest.raises(ckpt.CheckpointError, match=r"huge.safetensors: .*G 314,612,838,400 para"):
        load(path)


@linux_only
def test_a_model_file_whose_tensors_do_not_fit_allocates_no_network(tmp_path):
    # Within the limits (G 172M parameters, 690 MB), but the file holds none of its tensors:
    # the shapes are compared on the meta device, so the network is never allocated.
    path = tmp_path / "hollow.safetensors"
    cfg = _config(g_conv_dim=256, g_repeat_num=8)
    with torch.device("meta"):
        assert count_parameters(build_generator(ModelConfig(**cfg))) > 170e6
    _model_file(path, cfg, {"G.main.0.weight": torch.zeros(256, 8, 7, 7)})
    argv = ["translate", "--model", str(path), "--input", str(tmp_path), "--out", "o"]
    result, stderr = run_limited(argv, tmp_path)
    assert_refused_quickly(result, stderr, str(path), "do not fit this architecture: missing")
    assert result["rss_mib"] < 600, result  # torch alone is about 250 MiB


def test_meta_built_models_load_as_before(tmp_path):
    """Loading through the meta device gives ordinary float32 parameters, from float16 files
    too, with the outputs of a model built and loaded the old way."""
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=16, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=3)
    g, d = build_generator(cfg), build_discriminator(cfg)
    path = tmp_path / "m.safetensors"
    ckpt.save_model_file(path, g, cfg, LAYOUT, discriminator=d)
    compact_model_file(path, tmp_path / "half.safetensors", dtype="float16")
    accel.use_cpu_kernels(g, d)  # what loading adds: the same maths, the CPU's faster kernels
    x, c = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 5)
    for file, atol in ((path, 0), (tmp_path / "half.safetensors", 2e-2)):
        model = load(file)
        tensors = [*model.generator.parameters(), *model.discriminator.parameters()]
        assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
        assert all(t.requires_grad for t in model.generator.parameters())
        with torch.no_grad():
            assert torch.allclose(model.generator(x, c), g(x, c), atol=atol)
            assert torch.allclose(model.discriminator(x)[1], d(x)[1], atol=max(atol, 1e-6))


# Weights that are not finite.


def _poison(module: torch.nn.Module, name: str, value: float) -> None:
    with torch.no_grad():
        dict(module.named_parameters())[name].view(-1)[3] = value


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_every_loader(tmp_path, value):
    cfg = ModelConfig(image_size=16, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=3)
    # A model file (the checksum is valid: it proves integrity, not sanity).
    g, d = build_generator(cfg), build_discriminator(cfg)
    _poison(d, "cls.weight", value)
    ckpt.save_model_file(tmp_path / "m.safetensors", g, cfg, LAYOUT, discriminator=d)
    with pytest.raises(ckpt.CheckpointError, match=r"m.safetensors: D.cls.weight holds NaN or"):
        load(tmp_path / "m.safetensors")
    # A judge.
    judge = Judge(JudgeConfig(image_size=16, width=4, blocks=(1,)), LAYOUT)
    _poison(judge, "trunk.0.weight", value)
    save_judge(judge, tmp_path / "judge.safetensors")
    with pytest.raises(ckpt.CheckpointError, match=r"judge.safetensors: trunk.0.weight holds"):
        load_judge(tmp_path / "judge.safetensors")
    # An official checkpoint.
    official = OfficialG()
    _poison(official, "main.3.weight", value)
    torch.save(official.state_dict(), tmp_path / "G.ckpt")
    with pytest.raises(ckpt.CheckpointError, match=r"G.ckpt: main.3.weight holds NaN or inf"):
        import_official(tmp_path / "G.ckpt", tmp_path / "o.safetensors", attrs=ATTRS, image_size=16)
    assert not (tmp_path / "o.safetensors").exists()


def test_resume_skips_a_checkpoint_with_non_finite_weights(tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_config(out, iters=6), datasets=[TensorFaces(CELEBA_SPEC)]).fit()
    newest = out / "checkpoints" / "state-00000006.safetensors"
    tensors, meta = ckpt.load_tensors(newest, ckpt.STATE_FORMAT)
    tensors["G.main.0.weight"][0, 0, 0, 0] = float("nan")
    ckpt.save_tensors(newest, tensors, meta)
    resumed = Trainer(tiny_config(out, iters=6), datasets=[TensorFaces(CELEBA_SPEC)], resume="auto")
    assert resumed.resumed_from.name == "state-00000003.safetensors"
    assert "G.main.0.weight holds NaN" in resumed.skipped_checkpoints[0]


@pytest.mark.parametrize("blocks", [[65], [1] * 9])
def test_a_judge_config_cannot_ask_for_millions_of_layers(tmp_path, blocks):
    # Just past the bounds: a file asking for [10**7] blocks would be refused the same way
    # (without the bounds, building it takes tens of GB).
    judge = Judge(JudgeConfig(image_size=16, width=4, blocks=(1,)), LAYOUT)
    save_judge(judge, tmp_path / "j.safetensors")
    tensors, meta = ckpt.load_tensors(tmp_path / "j.safetensors", "stargan-judge/1")
    meta["config"] = json.dumps({"image_size": 16, "width": 4, "blocks": blocks, "stem": "auto"})
    ckpt.save_tensors(tmp_path / "j.safetensors", tensors, meta)
    with pytest.raises(ckpt.CheckpointError, match=r"blocks 1-8 counts in \[1, 64\]"):
        load_judge(tmp_path / "j.safetensors")


# Command-line knobs that would only allocate.


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "20000"], "--size must be a positive number of pixels, at most 2048"),
        (["--strip", "Male", "--steps", "100000000"], "--steps must be at most 64"),
        (["--strip", "Male", "--range", "0", "nan"], "--range must be two finite intensities"),
    ],
)
def test_translate_knobs_are_bounded_before_the_model_loads(tmp_path, capsys, argv, message):
    # The model path does not exist: the bounds are checked first, so nothing is loaded.
    code = main(["translate", "--model", str(tmp_path / "none.safetensors"), "--input",
                 str(tmp_path), "--out", str(tmp_path / "o"), *argv])  # fmt: skip
    assert code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
