import pickle

import pytest
import torch

from conftest import CELEBA_SPEC
from stargan import accel, atomic
from stargan import checkpoint as ckpt
from stargan.config import ModelConfig
from stargan.data.labels import LabelLayout
from stargan.inference import load
from stargan.models import build_generator

CFG = ModelConfig(image_size=16, c_dim=5, n_classes=5, g_conv_dim=8, g_repeat_num=1, d_repeat_num=3)


def _saved_model(path):
    """A saved G, with the CPU kernels that loading gives it (stargan.accel)."""
    torch.manual_seed(0)
    g = build_generator(CFG)
    ckpt.save_model_file(path, g, CFG, LabelLayout((CELEBA_SPEC,)), step=7)
    accel.use_cpu_kernels(g)
    return g


def test_model_file_round_trip_gives_identical_outputs(tmp_path):
    g = _saved_model(tmp_path / "m.safetensors")
    model = load(tmp_path / "m.safetensors")
    x, c = torch.randn(2, 3, 16, 16), torch.rand(2, 5)
    assert torch.equal(g(x, c), model.generator(x, c))
    assert model.step == 7 and model.config == CFG
    assert not list(tmp_path.glob(".*.tmp"))


def test_translate_by_name(tmp_path):
    g = _saved_model(tmp_path / "m.safetensors")
    model = load(tmp_path / "m.safetensors")
    x = torch.randn(1, 3, 16, 16)
    out = model.translate(x, {"Blond_Hair": 1}, source={"Black_Hair": 1, "Male": 1})
    with torch.no_grad():
        assert torch.equal(out, g(x, torch.tensor([[0.0, 1, 0, 1, 0]])))


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_damaged_files_are_refused_with_the_file_name(tmp_path, damage):
    path = tmp_path / "m.safetensors"
    _saved_model(path)
    data = path.read_bytes()
    data = {
        "truncate": data[: len(data) // 2],
        "empty": b"",
        "flip": data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
    }[damage]
    path.write_bytes(data)
    with pytest.raises(ckpt.CheckpointError, match="m.safetensors"):
        load(path)


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_a_pickle_runs_no_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(ckpt.CheckpointError, match="evil.safetensors"):
        load(tmp_path / "evil.safetensors")
    assert not (tmp_path / "PWNED").exists()


def test_other_architecture_is_named(tmp_path):
    _saved_model(tmp_path / "m.safetensors")
    other = build_generator(
        ModelConfig(
            image_size=16, c_dim=5, n_classes=5, g_conv_dim=16, g_repeat_num=1, d_repeat_num=3
        )
    )
    tensors, _ = ckpt.load_tensors(tmp_path / "m.safetensors", ckpt.MODEL_FORMAT)
    with pytest.raises(ckpt.CheckpointError, match="shape mismatch"):
        ckpt.load_module_weights(other, tensors, "G.", tmp_path / "m.safetensors")


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    atomic.atomic_write_bytes(path, b"old")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic.atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]
