import json
import pickle
import tracemalloc
from pathlib import Path

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


def _mixed_tensors():
    """float32 / bfloat16 / int64 / uint8 / bool, a scalar, an empty one and non-contiguous
    ones (a transpose, a strided slice, channels_last), as checkpoints hold them."""
    g = torch.Generator().manual_seed(0)
    big = torch.randn(40, 30, generator=g)
    return {
        "w.float32": torch.randn(7, 5, 3, generator=g),
        "w.bfloat16": torch.randn(9, 4, generator=g).to(torch.bfloat16),
        "n.int64": torch.arange(-5, 6),
        "rng": torch.randint(0, 255, (33,), dtype=torch.uint8, generator=g),
        "mask": torch.rand(6, generator=g) > 0.5,
        "step": torch.tensor(12.0),
        "empty": torch.zeros(0, 4),
        "t.transposed": big.t(),
        "t.strided": big[::3, 1::2],
        "conv.channels_last": torch.randn(4, 3, 5, 5, generator=g).to(
            memory_format=torch.channels_last
        ),
    }


@pytest.mark.parametrize("chunk", [None, 8, 100])
def test_streamed_file_is_the_one_safetensors_writes(tmp_path, monkeypatch, chunk):
    from safetensors.torch import save_file

    if chunk is not None:  # tiny pieces: every tensor is split, rows and all
        monkeypatch.setattr(ckpt, "CHUNK_BYTES", chunk)
    tensors = _mixed_tensors()
    contiguous = {k: v.contiguous() for k, v in tensors.items()}
    for meta in (None, {"format": "x/1"}):
        ckpt.write_safetensors(tmp_path / "ours.safetensors", tensors, meta)
        save_file(contiguous, tmp_path / "theirs.safetensors", metadata=meta)
        ours = (tmp_path / "ours.safetensors").read_bytes()
        assert ours == (tmp_path / "theirs.safetensors").read_bytes()
    # With several metadata keys safetensors orders them as a hash map does (run to run);
    # ours are sorted. Same length, same header once parsed, same data.
    meta = {"zeta": "1", "alpha": 'é"\\\n\x01', "mid": "[1, 2]"}
    ckpt.write_safetensors(tmp_path / "ours.safetensors", tensors, meta)
    save_file(contiguous, tmp_path / "theirs.safetensors", metadata=meta)
    ours, theirs = ((tmp_path / n).read_bytes() for n in ("ours.safetensors", "theirs.safetensors"))
    n = int.from_bytes(ours[:8], "little")
    assert len(ours) == len(theirs) and ours[:8] == theirs[:8] and ours[8 + n :] == theirs[8 + n :]
    assert json.loads(ours[8 : 8 + n]) == json.loads(theirs[8 : 8 + n])
    assert list(json.loads(ours[8 : 8 + n])["__metadata__"]) == sorted(meta)
    assert not list(tmp_path.glob(".*.tmp"))


def test_streamed_checkpoint_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(ckpt, "CHUNK_BYTES", 64)
    tensors = _mixed_tensors()
    ckpt.save_tensors(tmp_path / "s.safetensors", tensors, {"format": "f/1", "step": 3})
    loaded, meta = ckpt.load_tensors(tmp_path / "s.safetensors", "f/1")
    assert meta == {"format": "f/1", "step": "3"}
    assert loaded.keys() == tensors.keys()
    for key, t in tensors.items():
        assert loaded[key].dtype == t.dtype and torch.equal(loaded[key], t), key
    # The checksum is the one the loader computes on contiguous tensors, in one piece or many.
    monkeypatch.setattr(ckpt, "CHUNK_BYTES", 1 << 30)
    assert ckpt._digest(tensors, {}) == ckpt._digest(loaded, {})


def test_unsupported_dtype_is_refused_before_any_file_is_made(tmp_path):
    with pytest.raises(ValueError, match="complex128"):
        ckpt.write_safetensors(
            tmp_path / "c.safetensors", {"z": torch.zeros(2, dtype=torch.complex128)}
        )
    assert not list(tmp_path.iterdir())


def _vm_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_saving_holds_no_second_copy_of_the_tensors(tmp_path, monkeypatch):
    """A 64 MiB state (a quarter non-contiguous) saves in pieces: no write, no Python object
    and (Linux) no growth of the resident set anywhere near the state's size."""
    chunk = 1 << 20
    monkeypatch.setattr(ckpt, "CHUNK_BYTES", chunk)
    tensors = {f"w{i}": torch.randn(1024, 2048) for i in range(6)}  # 48 MiB, contiguous
    tensors |= {f"t{i}": torch.randn(2048, 1024).t() for i in range(2)}  # 16 MiB, transposed
    writes = []
    real_fdopen = atomic.os.fdopen

    class Spy:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            writes.append(memoryview(data).nbytes)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda *a, **k: Spy(real_fdopen(*a, **k)))
    hwm = Path("/proc/self/clear_refs")
    try:
        hwm.write_text("5")  # restart VmHWM from the current resident set
        rss_before = _vm_kib("VmRSS")
    except OSError:
        rss_before = None
    tracemalloc.start()
    try:
        ckpt.save_tensors(tmp_path / "big.safetensors", tensors, {"format": "f/1"})
        _, py_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max(writes) <= chunk and sum(writes) > 64 << 20
    assert py_peak < 4 * chunk
    if rss_before is not None:
        assert (_vm_kib("VmHWM") - rss_before) * 1024 < 16 << 20
    loaded, _ = ckpt.load_tensors(tmp_path / "big.safetensors", "f/1")
    assert all(torch.equal(loaded[k], v) for k, v in tensors.items())
