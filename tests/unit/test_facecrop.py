"""Face crop on a real photo shipped offline by scikit-image, then translation (API and CLI)."""

import sys

import numpy as np
import pytest
from PIL import Image

from stargan import facecrop
from stargan.cli import EXIT_USER_ERROR, main
from stargan.extras import MissingExtraError
from stargan.facecrop import FaceBox, FaceCropError, crop_box, crop_face, detect_faces
from stargan.inference import load, translate_files
from tiny_models import tiny_model_file

pytest.importorskip("cv2", reason="face crop needs opencv-python-headless<5 (stargan[face])")
skimage_data = pytest.importorskip("skimage.data", reason="the real photo comes from scikit-image")


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    """Eileen Collins' NASA portrait (public domain): one frontal face, 512 x 512."""
    return Image.fromarray(skimage_data.astronaut())


def test_the_one_face_of_a_real_photo_is_found_and_framed_like_celeba(astronaut):
    (face,) = detect_faces(astronaut)
    assert 150 < face.x < 200 and 40 < face.y < 90 and 80 < face.w < 110  # her face
    crop = crop_face(astronaut, name="astronaut.png")
    assert crop.size[0] == crop.size[1] == round(facecrop.BOX_SCALE * face.w)
    # The face box sits centred horizontally and a little below the middle, as in CelebA.
    left, top, _, _ = crop_box(face)
    assert face.x - left == pytest.approx(crop.size[0] / 4, abs=1)
    assert top < face.y


def test_crops_leaving_the_photo_are_padded_with_edge_pixels(monkeypatch):
    img = Image.fromarray(np.arange(100 * 100 * 3, dtype=np.uint8).reshape(100, 100, 3))
    left, top, *_ = crop_box(FaceBox(0, 0, 40, 40))
    assert left < 0 and top < 0
    monkeypatch.setattr(facecrop, "detect_faces", lambda _img: [FaceBox(0, 0, 40, 40)])
    out = np.asarray(crop_face(img))
    assert out.shape == (80, 80, 3)
    assert (out[0, 0] == np.asarray(img)[0, 0]).all()


def test_no_face_and_several_faces_are_errors_naming_the_file(astronaut):
    coffee = Image.fromarray(skimage_data.coffee())
    with pytest.raises(FaceCropError, match=r"coffee\.png: no face found"):
        crop_face(coffee, name="coffee.png")
    pair = Image.fromarray(np.concatenate([np.asarray(astronaut)] * 2, axis=1))
    with pytest.raises(FaceCropError, match=r"pair\.png: 2 faces found .*exactly one"):
        crop_face(pair, name="pair.png")


def test_a_missing_opencv_says_how_to_install(monkeypatch):
    facecrop._cascade.cache_clear()
    monkeypatch.setitem(sys.modules, "cv2", None)  # makes `import cv2` fail
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'stargan\[face\]'"):
            detect_faces(Image.new("RGB", (64, 64)))
    finally:
        facecrop._cascade.cache_clear()


def test_real_photo_through_face_crop_and_translation_api(astronaut, tmp_path):
    astronaut.save(tmp_path / "astronaut.png")
    model = load(tiny_model_file(tmp_path / "m.safetensors", size=32))
    report = translate_files(
        model, tmp_path / "astronaut.png", tmp_path / "out", [{"Blond_Hair": 1.0}], face_crop=True
    )
    (written,) = report.written
    with Image.open(written) as im:
        assert im.size == (128, 128)  # a 32 px model's outputs at MIN_OUTPUT_SIZE
    assert report.inferred and str(tmp_path / "astronaut.png") in report.sources


def test_real_photo_through_the_cli_and_its_errors(astronaut, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    astronaut.save(photos / "astronaut.jpg", quality=92)
    model = tiny_model_file(tmp_path / "m.safetensors", size=32)
    out = tmp_path / "out"
    argv = ["translate", "--model", str(model), "--out", str(out), "--face-crop"]
    assert main([*argv, "--input", str(photos), "--set", "Male=0", "--size", "64"]) == 0
    with Image.open(out / "astronaut-Male=0.png") as im:
        assert im.size == (64, 64)
    assert "astronaut.jpg: source labels (inferred" in capsys.readouterr().out
    Image.fromarray(skimage_data.coffee()).save(photos / "coffee.png")
    assert main([*argv, "--input", str(photos / "coffee.png"), "--set", "Male=0"]) == (
        EXIT_USER_ERROR
    )
    assert "coffee.png: no face found" in capsys.readouterr().err
