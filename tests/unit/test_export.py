"""ONNX export of G: ONNX Runtime matches PyTorch at any batch size, the file alone is usable
(labels and config in its metadata), and bad input gets a clear error."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import stargan
from conftest import CELEBA_SPEC
from stargan import checkpoint as ckpt
from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import ConfigError, ModelConfig
from stargan.data.labels import LabelLayout
from stargan.export import export_model
from stargan.extras import MissingExtraError
from stargan.models import build_generator
from stargan.onnx_runtime import OnnxGenerator, read_onnx
from tiny_models import tiny_model_file


def model_file(path, g_output="image"):
    layout = LabelLayout((CELEBA_SPEC,))
    cfg = ModelConfig(
        image_size=16,
        c_dim=layout.c_dim,
        n_classes=layout.n_classes,
        g_conv_dim=8,
        g_repeat_num=1,
        d_repeat_num=3,
        g_output=g_output,
    )
    torch.manual_seed(0)
    g = build_generator(cfg)
    if g_output == "residual":  # its last conv starts at zero: make the test see G's body
        torch.nn.init.normal_(g.main[-1].weight, std=0.05)
    ckpt.save_model_file(path, g, cfg, layout, step=7)
    return path


@pytest.mark.parametrize("g_output", ["image", "residual", "mask"])
def test_onnx_runtime_matches_pytorch_at_batch_1_and_3(tmp_path, g_output):
    src = model_file(tmp_path / "m.safetensors", g_output)
    out = export_model(src, tmp_path / "G.onnx")
    torch_model, onnx_model = stargan.load(src), stargan.load(out)
    assert isinstance(onnx_model.generator, OnnxGenerator)
    for n in (1, 3):  # the export used batch 2: the batch axis must be dynamic
        g = torch.Generator().manual_seed(n)
        x = torch.rand(n, 3, 16, 16, generator=g) * 2 - 1
        c = torch.rand(n, 5, generator=g)
        with torch.no_grad():
            want = torch_model.generator(x, c)
        got = onnx_model.generator(x, c)
        assert got.shape == want.shape == (n, 3, 16, 16)
        assert (got - want).abs().max().item() <= 1e-4


def test_onnx_file_carries_labels_and_config_and_translates_like_the_model(tmp_path):
    src = tiny_model_file(tmp_path / "m.safetensors")
    out = export_model(src, tmp_path / "G.onnx")
    torch_model = stargan.load(src)
    g, cfg, layout, step = read_onnx(out, threads=1)
    onnx_model = stargan.StarGAN(g, cfg, layout, out, step)
    assert onnx_model.label_names == torch_model.label_names
    assert onnx_model.config == torch_model.config and onnx_model.step == 5
    assert not onnx_model.has_classifier  # G only: source labels must be given
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    source = {"Black_Hair": 1, "Young": 1}
    want = torch_model.translate(x, {"Blond_Hair": 1}, source)
    got = onnx_model.translate(x, {"Blond_Hair": 1}, source)
    assert (got - want).abs().max().item() <= 1e-4
    strip = onnx_model.interpolate(x, {"Male": 1}, [0, 0.5, 1], source)
    assert strip.shape == (2, 3, 3, 16, 16)


def test_cli_exports_then_translates_with_onnx_runtime(tmp_path, capsys):
    src = tiny_model_file(tmp_path / "m.safetensors")
    onnx_file = tmp_path / "G.onnx"
    assert main(["export", "--model", str(src), "--format", "onnx", "--out", str(onnx_file)]) == 0
    assert onnx_file.is_file() and "wrote" in capsys.readouterr().out
    faces = tmp_path / "faces"
    faces.mkdir()
    pixels = (np.random.default_rng(0).random((20, 20, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(faces / "a.png")
    args = ["translate", "--input", str(faces), "--set", "Blond_Hair=1", "--source", "Male=1"]
    for backend, out in (("torch", "out_t"), ("onnx", "out_o")):
        model = src if backend == "torch" else onnx_file
        code = main(
            [*args, "--model", str(model), "--backend", backend, "--out", str(tmp_path / out)]
        )
        assert code == 0
    with (
        Image.open(tmp_path / "out_t/a-Blond_Hair.png") as a,
        Image.open(tmp_path / "out_o/a-Blond_Hair.png") as b,
    ):
        diff = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))
    assert diff.max() <= 1  # the same picture, up to rounding of the last bit


def test_unknown_export_format_is_refused(tmp_path, capsys):
    src = tiny_model_file(tmp_path / "m.safetensors")
    with pytest.raises(SystemExit) as e:
        main(["export", "--model", str(src), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown export format 'tflite'; valid: onnx"):
        export_model(src, tmp_path / "x", "tflite")
    with pytest.raises(ConfigError, match="opset 18 or newer, got --opset 11"):
        export_model(src, tmp_path / "x", opset=11)


def test_a_file_that_is_not_a_model_gets_a_clear_error(tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("not a model")
    code = main(["export", "--model", str(junk), "--out", str(tmp_path / "G.onnx")])
    assert code == EXIT_USER_ERROR
    assert "is not a readable safetensors file" in capsys.readouterr().err
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"\x00garbage")
    with pytest.raises(ckpt.CheckpointError, match="is not a usable ONNX model"):
        stargan.load(fake)
    assert not (tmp_path / "G.onnx").exists()


def test_onnx_without_our_metadata_and_wrong_backend_are_explained(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("a", "b")]
    graph = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "g", io[:1], io[1:])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), foreign)
    with pytest.raises(ckpt.CheckpointError, match="not one written by `stargan export`"):
        stargan.load(foreign)
    src = tiny_model_file(tmp_path / "m.safetensors")
    with pytest.raises(ConfigError, match="export it first: stargan export"):
        stargan.load(src, backend="onnx")
    with pytest.raises(ConfigError, match="unknown backend 'tf'"):
        stargan.load(src, backend="tf")


def test_missing_onnx_packages_name_the_extra(tmp_path, monkeypatch):
    onnx_file = tmp_path / "G.onnx"
    onnx_file.write_bytes(b"whatever")
    src = tiny_model_file(tmp_path / "m.safetensors")
    for module in ("onnxruntime", "onnxscript"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)  # as if not installed: importing it fails
            with pytest.raises(MissingExtraError, match=r"pip install 'stargan\[onnx\]'"):
                stargan.load(onnx_file) if module == "onnxruntime" else export_model(src, onnx_file)


def test_compact_safetensors_export_keeps_metadata_and_translations(tmp_path):
    src = tiny_model_file(tmp_path / "m.safetensors")
    small, bare = tmp_path / "half.safetensors", tmp_path / "bare.safetensors"
    assert main(["export", "--model", str(src), "--format", "safetensors", "--dtype", "float16",
                 "--out", str(small)]) == 0  # fmt: skip
    assert main(["export", "--model", str(src), "--format", "safetensors", "--no-discriminator",
                 "--out", str(bare)]) == 0  # fmt: skip
    full, half, no_d = stargan.load(src), stargan.load(small), stargan.load(bare)
    assert small.stat().st_size < 0.6 * src.stat().st_size
    assert half.has_classifier and not no_d.has_classifier
    assert (half.layout, half.config, half.step) == (full.layout, full.config, full.step)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    c = torch.rand(2, full.config.c_dim)
    with torch.no_grad():
        ref = full.generator(x, c)
        assert (half.generator(x, c) - ref).abs().max() < 2e-2  # fp16 weight rounding only
        assert torch.equal(no_d.generator(x, c), ref)  # float32 kept: identical
    with pytest.raises(ConfigError, match="dtype"):
        export_model(src, tmp_path / "x.safetensors", "safetensors", dtype="int8")
