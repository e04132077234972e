"""Translation API: source-label inference with D's classifier, targets by name, strips, files."""

import numpy as np
import pytest
import torch
from PIL import Image

from stargan import inference
from stargan.cli import EXIT_USER_ERROR, main
from stargan.config import ConfigError
from stargan.data.grid import title_strip
from stargan.data.labels import LabelError
from stargan.inference import Strip, load, parse_target, translate_files
from tiny_models import tiny_model_file


@pytest.fixture
def model_file(tmp_path):
    return tiny_model_file(tmp_path / "m.safetensors")


@pytest.fixture
def faces(tmp_path):
    folder = tmp_path / "faces"
    folder.mkdir()
    g = torch.Generator().manual_seed(1)
    for i in range(2):
        pixels = (torch.rand(24, 20, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"face{i}.png")
    return folder


def test_model_file_keeps_d_and_infers_labels_with_its_classifier(model_file):
    model = load(model_file)
    assert model.has_classifier and not model.discriminator.training
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        logits = model.discriminator(x)[1]
    (labels,) = model.infer_labels(x)
    assert torch.equal(labels, (logits.sigmoid() > 0.5).float())
    described = model.describe([labels])
    assert list(described[0]) == model.label_names and len(described) == 3


def test_categorical_labels_are_inferred_by_argmax(tmp_path):
    model = load(tiny_model_file(tmp_path / "j.safetensors", joint=True))
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    binary, expression = model.infer_labels(x)
    probs = model.classify(x)[1]
    assert binary.shape == (2, 5) and expression.shape == (2, 3)
    assert torch.equal(expression.argmax(1), probs.argmax(1))
    assert torch.equal(expression.sum(1), torch.ones(2))


def test_translate_starts_from_inferred_labels_when_none_are_given(model_file):
    model = load(model_file)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    (inferred,) = model.infer_labels(x)
    expected = inferred.clone()
    expected[:, 1] = 1  # Blond_Hair on clears the other hair colours
    expected[:, [0, 2]] = 0
    with torch.no_grad():
        want = model.generator(x, expected)
    assert torch.equal(model.translate(x, {"Blond_Hair": 1}), want)


def test_given_source_labels_override_the_inferred_ones(model_file):
    model = load(model_file)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    (start,) = model.source_labels(x, {"Male": 0.0, "Young": 1.0})
    (inferred,) = model.infer_labels(x)
    assert torch.equal(start[:, :3], inferred[:, :3])
    assert start[:, 3].tolist() == [0, 0] and start[:, 4].tolist() == [1, 1]


def test_files_without_d_still_load_and_translate_from_zeros(tmp_path):
    model = load(tiny_model_file(tmp_path / "g.safetensors", with_d=False))
    assert not model.has_classifier and model.source_labels(torch.zeros(1, 3, 16, 16)) is None
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        want = model.generator(x, torch.tensor([[0.0, 0, 0, 1, 0]]))
    assert torch.equal(model.translate(x, {"Male": 1}), want)
    with pytest.raises(LabelError, match=r"g\.safetensors keeps no discriminator"):
        model.infer_labels(x)


def test_interpolation_strip_runs_from_the_source_to_the_target(model_file):
    model = load(model_file)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    source = {"Black_Hair": 1.0, "Male": 1.0}
    strip = model.interpolate(x, {"Blond_Hair": 1}, [0.0, 0.5, 1.0, 1.5], source)
    assert strip.shape == (2, 4, 3, 16, 16)
    c_src, c_tgt = torch.tensor([[1.0, 0, 0, 1, 0]]), torch.tensor([[0.0, 1, 0, 1, 0]])
    with torch.no_grad():
        for i, v in enumerate([0.0, 0.5, 1.0, 1.5]):
            want = model.generator(x, (c_src + v * (c_tgt - c_src)).expand(2, -1))
            assert torch.allclose(strip[:, i], want, atol=1e-6)
    # From inferred labels, the last step is the plain translation.
    inferred = model.interpolate(x, {"Male": 0}, [0.0, 1.0])
    assert torch.allclose(inferred[:, 1], model.translate(x, {"Male": 0}), atol=1e-6)


def test_channels_last_model_translates_alike(model_file, faces, tmp_path, capsys):
    """load(..., channels_last=True): G and D in NHWC order, the same translations and
    inferred labels to float rounding; `translate --channels-last` writes the same files."""
    plain, nhwc = load(model_file), load(model_file, channels_last=True)
    nets = (nhwc.generator, nhwc.discriminator)
    weights = [p for net in nets for p in net.parameters() if p.dim() == 4]
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    x = torch.rand(3, 3, 16, 16) * 2 - 1
    want = plain.translate(x, {"Male": 1})
    got = nhwc.translate(x, {"Male": 1})
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(nhwc.infer_labels(x)[0], plain.infer_labels(x)[0])
    outs = []
    for flags in ([], ["--channels-last"]):
        out = tmp_path / f"out{len(flags)}"
        argv = ["translate", "--model", str(model_file), "--input", str(faces / "face0.png")]
        assert main([*argv, "--out", str(out), "--target", "Young", *flags]) == 0
        with Image.open(out / "face0-Young.png") as im:
            outs.append(np.array(im, dtype=np.int16))
    assert np.abs(outs[0] - outs[1]).max() <= 1  # 8-bit rounding of near-equal floats
    capsys.readouterr()


def test_channels_last_is_refused_for_onnx_runtime(tmp_path):
    onnx_file = tmp_path / "G.onnx"
    onnx_file.write_bytes(b"not read: refused before")
    with pytest.raises(ConfigError, match="channels_last is a memory order for the torch backend"):
        load(onnx_file, channels_last=True)


def test_parse_target_reads_names_intensities_and_class_names(tmp_path):
    layout = load(tiny_model_file(tmp_path / "j.safetensors", joint=True)).layout
    assert parse_target(["Blond_Hair=1", "Male=0"], layout) == {"Blond_Hair": 1.0, "Male": 0.0}
    assert parse_target(["Young,Male=0.25"], layout) == {"Young": 1.0, "Male": 0.25}
    assert parse_target(["expression=happy"], layout) == {"happy": 1.0}
    with pytest.raises(LabelError, match="valid labels: Black_Hair"):
        parse_target(["Blonde_Hair=1"], layout)
    with pytest.raises(LabelError, match=r"'joyful' is neither a number nor a class name \(angry"):
        parse_target(["expression=joyful"], layout)
    with pytest.raises(LabelError, match="finite"):
        parse_target(["Male=nan"], layout)


def test_translate_files_writes_targets_strips_grid_in_format_and_size(model_file, faces, tmp_path):
    out = tmp_path / "out"
    report = translate_files(
        model_file,
        faces,
        out,
        [{"Blond_Hair": 1.0}, {"Male": 0.0, "Young": 0.5}],
        grid=True,
        strip=Strip.linear({"Blond_Hair": 1.0}, steps=3),
        fmt="jpg",
        size=24,
    )
    names = sorted(p.name for p in report.written)
    assert names == [
        "face0-Blond_Hair.jpg", "face0-Male=0+Young=0.5.jpg", "face0-strip-Blond_Hair.jpg",
        "face1-Blond_Hair.jpg", "face1-Male=0+Young=0.5.jpg", "face1-strip-Blond_Hair.jpg",
        "grid.jpg",
    ]  # fmt: skip
    with Image.open(out / "face0-Blond_Hair.jpg") as im:
        assert im.size == (24, 24) and im.format == "JPEG"
    with Image.open(out / "face0-strip-Blond_Hair.jpg") as im:
        titles = title_strip(["input", "0", "0.5", "1"], 24).shape[0]
        assert im.size == (4 * 26 + 2, titles + 28)  # input + 3 steps, 2 px gaps, titled
    with Image.open(out / "grid.jpg") as im:
        titles = title_strip(["input", "Blond_Hair", "Male=0+Young=0.5"], 24).shape[0]
        assert titles > 0 and im.size == (3 * 26 + 2, titles + 2 * 26 + 2)
    assert report.inferred and set(report.sources) == {
        str(faces / "face0.png"),
        str(faces / "face1.png"),
    }


def test_translate_files_without_targets_makes_one_column_per_label(model_file, faces, tmp_path):
    report = translate_files(load(model_file), faces / "face0.png", tmp_path / "o", grid=True)
    assert len(report.written) == 5 + 1


def test_missing_packaged_model_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(inference, "PACKAGED_MODEL", tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="no --model given.*pass --model FILE"):
        load()


def test_cli_translate_with_set_strip_and_inferred_report(model_file, faces, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([
        "translate", "--model", str(model_file), "--input", str(faces / "face1.png"),
        "--out", str(out), "--set", "Blond_Hair=1", "Male=0", "--target", "Young",
        "--strip", "Male", "--steps", "4", "--range", "0", "1.5", "--size", "32",
    ])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "face1.png: source labels (inferred by the model's classifier):" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "face1-Blond_Hair+Male=0.png", "face1-Young.png", "face1-strip-Male.png",
    ]  # fmt: skip
    with Image.open(out / "face1-strip-Male.png") as im:
        titles = title_strip(["input", "0", "0.5", "1", "1.5"], 32).shape[0]
        assert im.size == (5 * 34 + 2, titles + 36)


@pytest.mark.parametrize(("argv", "message"), [
    (["--set", "Blonde=1"], "unknown label 'Blonde'"),
    (["--set", "Male=yes"], "'yes' is neither a number nor a class name"),
    (["--strip", "Male", "--steps", "1"], "--steps >= 2"),
    (["--size", "0"], "--size must be a positive"),
])  # fmt: skip
def test_cli_translate_errors_are_explained(model_file, faces, tmp_path, capsys, argv, message):
    code = main(["translate", "--model", str(model_file), "--input", str(faces),
                 "--out", str(tmp_path / "o"), *argv])  # fmt: skip
    assert code == EXIT_USER_ERROR
    assert message in capsys.readouterr().err


def _many_faces(folder, n):
    folder.mkdir()
    g = torch.Generator().manual_seed(2)
    for i in range(n):
        pixels = (torch.rand(20, 20, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"p{i:02d}.png")
    return folder


def test_many_images_make_grids_of_at_most_16_rows(model_file, tmp_path):
    faces = _many_faces(tmp_path / "many", 20)
    report = translate_files(model_file, faces, tmp_path / "o", [{"Male": 1.0}], grid=True)
    grids = sorted(p.name for p in report.written if p.name.startswith("grid"))
    assert grids == ["grid-1.png", "grid-2.png"]
    with (
        Image.open(tmp_path / "o" / "grid-1.png") as a,
        Image.open(tmp_path / "o" / "grid-2.png") as b,
    ):
        # The 16 px model's outputs are written at MIN_OUTPUT_SIZE (128 px) by default.
        titles = title_strip(["input", "Male"], 128).shape[0]
        assert a.size == (2 * 130 + 2, titles + 16 * 130 + 2)
        assert b.size == (2 * 130 + 2, titles + 4 * 130 + 2)


def test_quiet_batch_prints_one_summary_and_names_what_was_left_out(model_file, tmp_path, capsys):
    faces = _many_faces(tmp_path / "many", 3)
    Image.new("L", (20, 20), 90).save(faces / "orl.pgm")  # ORL/AT&T faces ship as PGM
    (faces / "notes.txt").write_text("not an image")
    argv = ["translate", "--model", str(model_file), "--input", str(faces), "--target", "Male"]
    assert main([*argv, "--out", str(tmp_path / "o"), "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not any(": source labels" in line for line in lines)
    assert lines[0].startswith("source labels (inferred by the model's classifier) of 4 image(s)")
    assert "skipped 1 file(s) that are not images by their extension (notes.txt" in lines[1]
    assert (tmp_path / "o" / "orl-Male.png").is_file()
    assert main([*argv, "--out", str(tmp_path / "o2")]) == 0
    assert sum(": source labels" in line for line in capsys.readouterr().out.splitlines()) == 4


def test_face_crop_on_a_folder_leaves_out_photos_without_one_face(
    model_file, tmp_path, capsys, monkeypatch
):
    from stargan import facecrop

    def crop(img, name="<image>", **_wording):
        if "p01" in name or "p03" in name:
            raise facecrop.FaceCropError(f"{name}: no face found for --face-crop")
        return img

    monkeypatch.setattr(facecrop, "crop_face", crop)
    faces = _many_faces(tmp_path / "many", 4)
    argv = ["translate", "--model", str(model_file), "--target", "Male", "--face-crop"]
    assert main([*argv, "--input", str(faces), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "skipped 2 photo(s) without exactly one face" in out and "p01.png" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["p00-Male.png", "p02-Male.png"]
    # One photo given alone is still refused, and so is a folder where no photo has a face.
    code = main([*argv, "--input", str(faces / "p01.png"), "--out", str(tmp_path / "o3")])
    assert code == EXIT_USER_ERROR and "p01.png: no face found" in capsys.readouterr().err
    monkeypatch.setattr(facecrop, "crop_face", lambda img, name, **_wording: crop(img, "p01"))
    code = main([*argv, "--input", str(faces), "--out", str(tmp_path / "o4")])
    assert code == EXIT_USER_ERROR and "none of the 4 photos" in capsys.readouterr().err


def test_translation_runs_g_and_d_a_batch_at_a_time(model_file, monkeypatch):
    """Folders of any size: G and D see at most StarGAN.batch_size images per call, with the
    same results as one call over everything."""
    model = load(model_file)
    x = torch.rand(5, 3, 16, 16) * 2 - 1
    whole = model.translate(x, {"Male": 1.0})
    seen = []
    forward = model.generator.forward
    monkeypatch.setattr(
        model.generator, "forward", lambda x, c: seen.append(len(x)) or forward(x, c)
    )
    monkeypatch.setattr(type(model), "batch_size", 2)
    assert torch.allclose(model.translate(x, {"Male": 1.0}), whole, atol=1e-5)
    assert seen == [2, 2, 1]


def test_a_failed_write_is_raised_not_lost(model_file, faces, tmp_path, monkeypatch):
    from stargan.data import io

    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(io, "save_image", refuse)
    with pytest.raises(OSError, match="No space left"):
        translate_files(model_file, faces, tmp_path / "o", [{"Male": 1.0}])


def test_models_of_128_px_run_in_nhwc_on_the_cpu_unless_told_otherwise(tmp_path):
    """load(channels_last=None) follows training's CPU recipe (config.auto_speed)."""
    small, large = (tiny_model_file(tmp_path / f"m{s}.safetensors", size=s) for s in (32, 128))

    def nhwc(model):
        convs = [p for p in model.generator.parameters() if p.dim() == 4]
        return all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)

    assert not nhwc(load(small)) and nhwc(load(large))
    assert not nhwc(load(large, channels_last=False)) and nhwc(load(small, channels_last=True))
