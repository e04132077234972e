"""Dataset formats on fixtures written here in their exact on-disk formats.

Every fixture image is a solid colour that encodes its index, so a test can read an item's
image back and check that it came with the label its line in the label file gives it.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import stargan.data.cache as cache_module
from stargan.config import DataConfig
from stargan.data import build_dataset, dataset_names
from stargan.data.cache import ImageListDataset, Preprocessing, seeded_split
from stargan.data.check import check_dataset, format_report, require_label_count
from stargan.data.labels import LabelError, LabelSpec
from stargan.data.registry import DatasetError

CELEBA_40 = [
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
]
DEFAULT_ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]
W, H = 18, 22  # CelebA's 178 x 218 aspect, scaled down


def colour(i: int) -> tuple[int, int, int]:
    return ((i % 50) * 5, (i // 50 % 50) * 5, 200)


def index_of(image: torch.Tensor) -> int:
    """Inverse of colour() for a decoded item in [-1, 1]."""
    r, g = ((image[:2, 2, 2] + 1) * 127.5).round().tolist()
    return round(r / 5) + 50 * round(g / 5)


def write_image(path: Path, i: int, size=(W, H), fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour(i))
    img.save(path, format=fmt or ("JPEG" if path.suffix == ".jpg" else "PNG"), quality=95)


def celeba_values(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice([-1, 1], size=(n, 40))


def write_celeba(
    root: Path,
    n: int,
    *,
    image_dir: str = "images",
    attr_dir: str = "",
    newline: str = "\n",
    images: bool = True,
) -> np.ndarray:
    """The official layout: count line, names line (with its trailing space), then each value
    right-aligned in two characters after a space, which gives ' 1' double spaces."""
    values = celeba_values(n)
    lines = [str(n), " ".join(CELEBA_40) + " "]
    for i in range(n):
        lines.append(f"{i + 1:06d}.jpg" + "".join(f" {v:2d}" for v in values[i]))
    (root / attr_dir).mkdir(parents=True, exist_ok=True)
    (root / attr_dir / "list_attr_celeba.txt").write_bytes((newline.join(lines) + newline).encode())
    if images:
        for i in range(n):
            write_image(root / image_dir / f"{i + 1:06d}.jpg", i)
    return values


def celeba_cfg(root: Path, **kw) -> DataConfig:
    base = dict(name="celeba", root=str(root), image_size=8, crop_size=16, test_size=3)
    return DataConfig(**{**base, **kw})


def check_pairing(ds, expected_labels: np.ndarray) -> None:
    """Each item's label is the label of the line its image came from."""
    for k in range(len(ds)):
        image, label = ds[k]
        assert image.shape == (3, 8, 8) and image.dtype == torch.float32
        assert image.min() >= -1 and image.max() <= 1
        np.testing.assert_array_equal(label.numpy(), expected_labels[index_of(image)])


# CelebA.


def test_celeba_official_format_labels_and_split(tmp_path):
    values = write_celeba(tmp_path, 12)
    attr_text = (tmp_path / "list_attr_celeba.txt").read_text()
    assert "  1" in attr_text  # the double-space padding of the real file
    columns = [CELEBA_40.index(a) for a in DEFAULT_ATTRS]
    expected = (values[:, columns] == 1).astype(np.float32)
    train = build_dataset(celeba_cfg(tmp_path), "train")
    test = build_dataset(celeba_cfg(tmp_path), "test")
    assert train.label_spec == LabelSpec(tuple(DEFAULT_ATTRS), "binary")
    assert (len(train), len(test)) == (9, 3)
    assert set(train.files).isdisjoint(test.files)
    assert len(set(train.files) | set(test.files)) == 12
    check_pairing(train, expected)
    check_pairing(test, expected)


def test_celeba_selected_attrs_pick_columns_by_name_in_the_order_given(tmp_path):
    values = write_celeba(tmp_path, 6)
    cfg = celeba_cfg(tmp_path, selected_attrs=("Young", "5_o_Clock_Shadow"), test_size=1)
    ds = build_dataset(cfg, "train")
    assert ds.label_spec.names == ("Young", "5_o_Clock_Shadow")
    expected = (values[:, [39, 0]] == 1).astype(np.float32)
    check_pairing(ds, expected)


@pytest.mark.parametrize(
    "image_dir,attr_dir", [("images", ""), ("img_align_celeba", ""), ("", ""), ("images", "Anno")]
)
def test_celeba_image_and_attribute_locations(tmp_path, image_dir, attr_dir):
    write_celeba(tmp_path, 5, image_dir=image_dir, attr_dir=attr_dir)
    ds = build_dataset(celeba_cfg(tmp_path, test_size=1), "train")
    assert len(ds) == 4
    assert all(Path(f).parent == tmp_path / image_dir for f in ds.files)


def test_celeba_crlf_and_trailing_blank_lines(tmp_path):
    write_celeba(tmp_path, 5, newline="\r\n")
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(path.read_bytes() + b"\r\n\r\n")
    assert len(build_dataset(celeba_cfg(tmp_path, test_size=1), "train")) == 4


def test_celeba_official_split_reproduces_the_release_exactly(tmp_path):
    n = 2100
    write_celeba(tmp_path, n, images=False)
    one = io.BytesIO()
    Image.new("RGB", (W, H)).save(one, "PNG")
    (tmp_path / "images").mkdir()
    for i in range(n):
        (tmp_path / "images" / f"{i + 1:06d}.jpg").write_bytes(one.getvalue())

    # The official data loader, restated: shuffle the data lines with Python's seeded global
    # random, then `if (i+1) < 2000: test else train`.
    lines = (tmp_path / "list_attr_celeba.txt").read_text().splitlines()[2:]
    state = random.getstate()
    random.seed(1234)
    random.shuffle(lines)
    random.setstate(state)
    names = [line.split()[0] for line in lines]
    official_test = [f for i, f in enumerate(names) if (i + 1) < 2000]
    official_train = [f for i, f in enumerate(names) if (i + 1) >= 2000]

    cfg = celeba_cfg(tmp_path, test_size=2000, official_split=True)
    test = build_dataset(cfg, "test")
    train = build_dataset(cfg, "train")
    assert len(test) == 1999 and len(train) == 101
    assert [Path(f).name for f in test.files] == official_test
    assert [Path(f).name for f in train.files] == official_train
    ours = build_dataset(dataclasses.replace(cfg, official_split=False), "test")
    assert len(ours) == 2000


def test_seeded_split_is_deterministic_and_exact():
    a = seeded_split(50, 7, seed=3)
    assert a == seeded_split(50, 7, seed=3)
    assert a != seeded_split(50, 7, seed=4)
    train, test = a
    assert len(test) == 7 and sorted(train + test) == list(range(50))
    assert train == sorted(train) and test == sorted(test)


def test_celeba_unknown_attribute_lists_the_available_ones(tmp_path):
    write_celeba(tmp_path, 4)
    with pytest.raises(
        DatasetError,
        match=r"unknown attribute\(s\) Blue_Hair; available: "
        r"5_o_Clock_Shadow, Arched_Eyebrows",
    ):
        build_dataset(celeba_cfg(tmp_path, selected_attrs=("Male", "Blue_Hair")), "train")


def _edit_attr_line(root: Path, lineno: int, new: str) -> None:
    path = root / "list_attr_celeba.txt"
    lines = path.read_text().splitlines()
    lines[lineno - 1] = new
    path.write_text("\n".join(lines) + "\n")


def test_celeba_label_file_problems_name_the_line_and_are_reported_together(tmp_path):
    write_celeba(tmp_path, 6)
    _edit_attr_line(tmp_path, 4, "000002.jpg" + " 2" + " -1" * 39)  # value 2
    _edit_attr_line(tmp_path, 6, "000001.jpg" + "  1" * 40)  # duplicate
    _edit_attr_line(tmp_path, 7, "000005.jpg  1 -1")  # short
    with pytest.raises(DatasetError) as info:
        build_dataset(celeba_cfg(tmp_path), "train")
    message = str(info.value)
    assert "list_attr_celeba.txt: 3 problems" in message
    assert "line 4: 000002.jpg: non-binary value '2' for 5_o_Clock_Shadow" in message
    assert "line 6: duplicate filename '000001.jpg' (first listed on line 3)" in message
    assert "line 7: 000005.jpg: 2 values for 40 attributes" in message


def test_celeba_count_line_must_match(tmp_path):
    write_celeba(tmp_path, 4)
    _edit_attr_line(tmp_path, 1, "5")
    with pytest.raises(
        DatasetError, match="line 1: the count line says 5 images but the file lists 4"
    ):
        build_dataset(celeba_cfg(tmp_path, test_size=1), "train")


def test_celeba_zero_one_values_are_read(tmp_path):
    write_celeba(tmp_path, 3)
    _edit_attr_line(tmp_path, 3, "000001.jpg" + " 0" * 39 + " 1")
    ds = build_dataset(celeba_cfg(tmp_path, test_size=1, selected_attrs=("Bald", "Young")), "train")
    labels = {Path(f).name: lab.tolist() for f, lab in zip(ds.files, ds.labels, strict=True)}
    assert labels.get("000001.jpg", [0.0, 1.0]) == [0.0, 1.0]


def test_celeba_missing_root_and_attr_file(tmp_path):
    with pytest.raises(DatasetError, match="needs a root"):
        build_dataset(DataConfig(name="celeba"), "train")
    with pytest.raises(DatasetError, match="no CelebA attribute file: looked for"):
        build_dataset(celeba_cfg(tmp_path), "train")


def test_split_sizes_that_leave_nothing_are_explained(tmp_path):
    write_celeba(tmp_path, 4)
    with pytest.raises(DatasetError, match="test_size=2000 but the dataset has only 4 images"):
        build_dataset(celeba_cfg(tmp_path, test_size=2000), "train")
    with pytest.raises(DatasetError, match=r"the test split is empty \(test_size=0"):
        build_dataset(celeba_cfg(tmp_path, test_size=0), "test")


# Bad images and the policy.


def _break_images(root: Path) -> None:
    """000002: missing, 000003: zero bytes, 000004: text, 000005: truncated JPEG."""
    images = root / "images"
    (images / "000002.jpg").unlink()
    (images / "000003.jpg").write_bytes(b"")
    (images / "000004.jpg").write_text("not an image")
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (H, W, 3), np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "JPEG")
    (images / "000005.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_fail_policy_stops_at_the_first_bad_image_naming_file_and_line(tmp_path):
    write_celeba(tmp_path, 8)
    _break_images(tmp_path)
    with pytest.raises(DatasetError) as info:
        build_dataset(celeba_cfg(tmp_path, test_size=0), "train")
    message = str(info.value)
    assert "list_attr_celeba.txt:4: " in message and "000002.jpg: file not found" in message
    assert "--bad-images skip" in message


def test_fail_policy_meets_truncated_data_when_loading(tmp_path):
    write_celeba(tmp_path, 6)
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (H, W, 3), np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "JPEG")
    (tmp_path / "images" / "000005.jpg").write_bytes(buf.getvalue()[:-200])
    ds = build_dataset(celeba_cfg(tmp_path, test_size=0), "train")  # headers are fine
    k = [Path(f).name for f in ds.files].index("000005.jpg")
    with pytest.raises(DatasetError, match=r"list_attr_celeba.txt:7: .*000005.jpg: truncated"):
        ds[k]
    with pytest.raises(DatasetError, match="000005.jpg: truncated"):  # a cache decodes all
        build_dataset(celeba_cfg(tmp_path, test_size=0, cache="memory"), "train")


@pytest.mark.parametrize("cache", ["none", "memory"])
def test_skip_policy_reports_every_bad_image(tmp_path, cache):
    values = write_celeba(tmp_path, 8)
    _break_images(tmp_path)
    cfg = celeba_cfg(tmp_path, test_size=0, bad_images="skip", cache=cache)
    with pytest.warns(UserWarning, match="skipped 4 of 8 images"):
        ds = build_dataset(cfg, "train")
    assert len(ds) == 4
    reasons = {Path(s.path).name: (s.line, s.reason) for s in ds.skipped}
    assert sorted(reasons) == ["000002.jpg", "000003.jpg", "000004.jpg", "000005.jpg"]
    assert reasons["000002.jpg"][0] == 4 and "file not found" in reasons["000002.jpg"][1]
    assert "empty file" in reasons["000003.jpg"][1]
    assert "not an image" in reasons["000004.jpg"][1]
    assert "truncated" in reasons["000005.jpg"][1]
    columns = [CELEBA_40.index(a) for a in DEFAULT_ATTRS]
    check_pairing(ds, (values[:, columns] == 1).astype(np.float32))


def test_image_smaller_than_the_crop(tmp_path):
    write_celeba(tmp_path, 4)
    write_image(tmp_path / "images" / "000003.jpg", 2, size=(12, 30))
    with pytest.raises(
        DatasetError,
        match=r"list_attr_celeba.txt:5: .*000003.jpg: image is "
        r"12 x 30, smaller than the 16 x 16 centre crop",
    ):
        build_dataset(celeba_cfg(tmp_path, test_size=1), "train")


def test_every_image_bad_is_an_error(tmp_path):
    write_celeba(tmp_path, 3)
    for f in (tmp_path / "images").iterdir():
        f.write_bytes(b"")
    with pytest.raises(DatasetError, match="every one of the 2 images is bad:\n  line 3: "):
        build_dataset(celeba_cfg(tmp_path, test_size=1, bad_images="skip"), "train")


# Folder / RaFD.

EXPRESSIONS = ["angry", "happy", "neutral", "sad"]


def write_folder(root: Path, per_class: int = 3, size=(20, 20), classes=EXPRESSIONS) -> None:
    for k, name in enumerate(classes):
        for j in range(per_class):
            write_image(root / name / f"{j:02d}.png", k, size=size)


def folder_cfg(root: Path, **kw) -> DataConfig:
    base = dict(name="folder", root=str(root), image_size=8, test_size=2)
    return DataConfig(**{**base, **kw})


def test_folder_classes_are_sorted_folder_names_one_hot(tmp_path):
    write_folder(tmp_path, classes=["sad", "angry", "neutral", "happy"])
    (tmp_path / "happy" / "README.txt").write_text("ignored: not an image extension")
    (tmp_path / ".stargan-cache").mkdir()
    write_image(tmp_path / ".stargan-cache" / "x.png", 0)
    write_image(tmp_path / "happy" / "nested" / "deep.png", 3)  # found recursively
    train = build_dataset(folder_cfg(tmp_path), "train")
    test = build_dataset(folder_cfg(tmp_path), "test")
    assert train.label_spec == LabelSpec(tuple(EXPRESSIONS), "categorical")
    assert len(train) + len(test) == 13 and len(test) == 2
    for ds in (train, test):
        for k in range(len(ds)):
            _, label = ds[k]
            folder_name = Path(ds.files[k]).relative_to(tmp_path).parts[0]
            assert label.sum() == 1 and EXPRESSIONS[int(label.argmax())] == folder_name


def test_folder_train_test_subfolders(tmp_path):
    write_folder(tmp_path / "train", per_class=3)
    write_folder(tmp_path / "test", per_class=1, classes=["angry", "sad"])
    train = build_dataset(folder_cfg(tmp_path), "train")
    test = build_dataset(folder_cfg(tmp_path), "test")
    assert (len(train), len(test)) == (12, 2)
    assert test.label_spec == train.label_spec
    assert [EXPRESSIONS[int(y.argmax())] for y in test.labels] == ["angry", "sad"]


def test_folder_selected_classes_keep_the_given_order(tmp_path):
    write_folder(tmp_path)
    ds = build_dataset(folder_cfg(tmp_path, selected_attrs=("sad", "angry")), "train")
    assert ds.label_spec.names == ("sad", "angry") and len(ds) == 4
    with pytest.raises(
        DatasetError,
        match=r"unknown class\(es\) bored; available: angry, "
        r"happy, neutral, sad",
    ):
        build_dataset(folder_cfg(tmp_path, selected_attrs=("bored",)), "train")


def test_folder_structure_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        build_dataset(folder_cfg(tmp_path / "nope"), "train")
    (tmp_path / "a").mkdir()
    write_folder(tmp_path / "a", classes=["x"])
    (tmp_path / "a" / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: class folder has no images"):
        build_dataset(folder_cfg(tmp_path / "a", test_size=1), "train")
    write_folder(tmp_path / "b" / "train", classes=["x", "y"])
    write_folder(tmp_path / "b" / "test", classes=["x", "z"])
    with pytest.raises(DatasetError, match=r"class folder\(s\) z do not exist"):
        build_dataset(folder_cfg(tmp_path / "b"), "test")


def test_rafd_uses_the_official_crop_of_256(tmp_path):
    write_folder(tmp_path / "ok", per_class=1, size=(260, 300))
    ds = build_dataset(folder_cfg(tmp_path / "ok", name="rafd", test_size=1), "train")
    assert ds.prep.crop_size == 256 and ds[0][0].shape == (3, 8, 8)
    write_folder(tmp_path / "small", per_class=1, size=(200, 300))
    with pytest.raises(DatasetError, match="smaller than the 256 x 256 centre crop"):
        build_dataset(folder_cfg(tmp_path / "small", name="rafd", test_size=1), "train")
    # The generic folder format takes the largest centred square instead.
    assert len(build_dataset(folder_cfg(tmp_path / "small", test_size=1), "train")) == 3


# Attribute tables.


def write_table(
    root: Path, text: str, name: str = "labels.csv", n: int = 6, image_dir: str = ""
) -> Path:
    for i in range(n):
        write_image(root / image_dir / f"img{i}.png", i)
    path = root / name
    path.write_text(text)
    return path


def table_cfg(root: Path, **kw) -> DataConfig:
    base = dict(name="table", root=str(root), image_size=8, test_size=2)
    return DataConfig(**{**base, **kw})


CSV = """filename,smiling,glasses,hat
img0.png,1,0,false
img1.png,0,1,TRUE
img2.png,-1,1,true
img3.png,1,-1,False
img4.png,yes,no,1.0
img5.png,0,0,0
"""
CSV_LABELS = np.array(
    [[1, 0, 0], [0, 1, 1], [0, 1, 1], [1, 0, 0], [1, 0, 1], [0, 0, 0]], dtype=np.float32
)


def test_table_csv_values_and_all_columns_by_default(tmp_path):
    write_table(tmp_path, CSV)
    train = build_dataset(table_cfg(tmp_path), "train")
    test = build_dataset(table_cfg(tmp_path / "labels.csv"), "test")
    assert train.label_spec == LabelSpec(("smiling", "glasses", "hat"), "binary")
    assert (len(train), len(test)) == (4, 2)
    check_pairing(train, CSV_LABELS)
    check_pairing(test, CSV_LABELS)


@pytest.mark.parametrize(
    "sep,name", [("\t", "labels.tsv"), (";", "labels.csv"), ("\t", "labels.txt")]
)
def test_table_tsv_semicolons_bom_and_images_folder(tmp_path, sep, name):
    text = "\ufeff" + CSV.replace(",", sep).replace("filename", "Image")
    path = write_table(tmp_path, text, name=name, image_dir="images")
    ds = build_dataset(table_cfg(path, selected_attrs=("hat", "smiling")), "train")
    assert ds.label_spec.names == ("hat", "smiling")
    check_pairing(ds, CSV_LABELS[:, [2, 0]])


def test_table_split_column(tmp_path):
    text = "path,split,a\nimg0.png,train,1\nimg1.png,test,0\nimg2.png,TRAIN,0\n"
    write_table(tmp_path, text, n=3)
    assert len(build_dataset(table_cfg(tmp_path, test_size=2000), "train")) == 2
    test = build_dataset(table_cfg(tmp_path), "test")
    assert [Path(f).name for f in test.files] == ["img1.png"]


def test_table_problems_name_line_and_column(tmp_path):
    text = (
        "filename,smiling,glasses\nimg0.png,1,0\nimg1.png,maybe,0\nimg0.png,0,0\n"
        "img2.png,1\nimg3.png,1,\n"
    )
    write_table(tmp_path, text)
    with pytest.raises(DatasetError) as info:
        build_dataset(table_cfg(tmp_path), "train")
    message = str(info.value)
    assert "labels.csv: 4 problems" in message
    assert "line 3: img1.png: non-binary value 'maybe' for smiling" in message
    assert "line 4: duplicate filename 'img0.png' (first listed on line 2)" in message
    assert "line 5: 2 cells for 3 columns" in message
    assert "line 6: img3.png: non-binary value an empty cell for glasses" in message


def test_table_unknown_attribute_and_ambiguous_root(tmp_path):
    write_table(tmp_path, CSV)
    with pytest.raises(
        DatasetError,
        match=r"unknown attribute\(s\) beard; available: smiling, "
        r"glasses, hat",
    ):
        build_dataset(table_cfg(tmp_path, selected_attrs=("beard",)), "train")
    (tmp_path / "other.tsv").write_text("f\ta\n")
    with pytest.raises(DatasetError, match="expected exactly one .csv or .tsv"):
        build_dataset(table_cfg(tmp_path), "train")


def test_table_missing_image_names_the_line(tmp_path):
    write_table(tmp_path, CSV)
    (tmp_path / "img3.png").unlink()
    with pytest.raises(DatasetError, match=r"labels.csv:5: .*img3.png: file not found"):
        build_dataset(table_cfg(tmp_path, test_size=1), "train")


# The cache.


def _items(ds) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [ds[k] for k in range(len(ds))]


def _assert_same_items(a, b) -> None:
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(_items(a), _items(b), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_memory_and_disk_caches_give_identical_items(tmp_path):
    write_celeba(tmp_path / "d", 7)
    plain = build_dataset(celeba_cfg(tmp_path / "d"), "train")
    memory = build_dataset(celeba_cfg(tmp_path / "d", cache="memory"), "train")
    disk = build_dataset(celeba_cfg(tmp_path / "d", cache="disk"), "train")
    _assert_same_items(plain, memory)
    _assert_same_items(plain, disk)
    cache_files = sorted(p.suffix for p in (tmp_path / "d" / ".stargan-cache").iterdir())
    assert cache_files == [".json", ".u8"]


def test_disk_cache_is_reused_and_keyed_by_sources_and_settings(tmp_path, monkeypatch):
    write_celeba(tmp_path, 6)
    cache_dir = tmp_path / "cache"
    cfg = celeba_cfg(tmp_path, cache="disk", cache_dir=str(cache_dir))
    first = build_dataset(cfg, "train")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    with monkeypatch.context() as m:
        m.setattr(cache_module, "decode_image", no_decoding)
        _assert_same_items(first, build_dataset(cfg, "train"))
    assert len(list(cache_dir.glob("*.u8"))) == 1
    build_dataset(dataclasses.replace(cfg, crop_size=14), "train")  # new settings: new key
    assert len(list(cache_dir.glob("*.u8"))) == 2
    target = Path(first.files[0])
    write_image(target, 49)  # a changed source file: new key, new pixels
    os.utime(target, ns=(1, 1))
    rebuilt = build_dataset(cfg, "train")
    assert len(list(cache_dir.glob("*.u8"))) == 3
    assert index_of(rebuilt[0][0]) == 49


def test_a_damaged_disk_cache_is_rebuilt_not_trusted(tmp_path):
    write_celeba(tmp_path, 6)
    cfg = celeba_cfg(tmp_path, cache="disk", num_workers=1)  # built by a worker process
    first = build_dataset(cfg, "train")
    (meta,) = (tmp_path / ".stargan-cache").glob("*.json")
    meta.write_text('{"version": 1, "sha')  # half-written
    _assert_same_items(first, build_dataset(cfg, "train"))
    (data,) = (tmp_path / ".stargan-cache").glob("*.u8")
    data.write_bytes(data.read_bytes()[:-1])  # short
    _assert_same_items(first, build_dataset(cfg, "train"))
    assert data.stat().st_size == len(first) * 8 * 8 * 3


def test_disk_cache_pickles_without_its_pixels_and_works_in_workers(tmp_path):
    write_celeba(tmp_path, 10)
    ds = build_dataset(celeba_cfg(tmp_path, cache="disk", test_size=2), "train")
    blob = pickle.dumps(ds)
    assert len(blob) < 20_000  # the memmap is reopened, not copied
    _assert_same_items(ds, pickle.loads(blob))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=1)
    x, _ = next(iter(loader))
    assert torch.equal(x, torch.stack([ds[k][0] for k in range(4)]))


def test_skip_policy_with_a_disk_cache_remembers_bad_files(tmp_path):
    write_celeba(tmp_path, 8)
    _break_images(tmp_path)
    cfg = celeba_cfg(tmp_path, test_size=0, bad_images="skip", cache="disk")
    with pytest.warns(UserWarning):
        first = build_dataset(cfg, "train")
    with pytest.warns(UserWarning):
        again = build_dataset(cfg, "train")
    assert again.skipped == first.skipped and len(again) == 4
    with pytest.raises(DatasetError, match="file not found"):
        build_dataset(dataclasses.replace(cfg, bad_images="fail"), "train")


def test_label_shape_is_checked():
    with pytest.raises(DatasetError, match=r"labels must be \[2, 1\]"):
        ImageListDataset(
            ["a", "b"], torch.zeros(2, 3), LabelSpec(("x",), "binary"), prep=Preprocessing(8)
        )


# data check, label counts, registry, template.


def test_check_reports_counts_sizes_and_every_problem(tmp_path):
    write_celeba(tmp_path, 8)
    _break_images(tmp_path)
    report = check_dataset(celeba_cfg(tmp_path, test_size=1))
    assert not report.ok
    assert sum(s.n_images for s in report.splits.values()) == 4
    # Bad images are either skipped within a split or, when a split has no good image left,
    # listed in that split's error: all four are named either way, with their lines.
    found = [line for s in report.splits.values() for line in s.skipped] + report.problems
    for i in (2, 3, 4, 5):
        assert any(f"line {i + 2}: " in p and f"00000{i}.jpg" in p for p in found), i
    sizes = sum((s.sizes for s in report.splits.values()), Counter())
    assert sizes == {(W, H): 4}
    counts = report.splits["train"].label_counts
    assert list(counts) == DEFAULT_ATTRS and all(0 <= c <= 4 for c in counts.values())
    text = format_report(report)
    assert "Black_Hair" in text and f"{W}x{H} (4)" in text and "problems (" in text
    assert all(f"00000{i}.jpg" in text for i in (2, 3, 4, 5))


def test_check_of_a_clean_dataset_and_of_a_broken_label_file(tmp_path):
    write_folder(tmp_path / "ok")
    report = check_dataset(folder_cfg(tmp_path / "ok"))
    assert report.ok and report.splits["train"].n_images == 10
    assert sum(report.splits["train"].label_counts.values()) == 10
    assert "problems: none" in format_report(report)
    write_celeba(tmp_path / "bad", 4)
    _edit_attr_line(tmp_path / "bad", 4, "000002.jpg" + " x" * 40)
    report = check_dataset(celeba_cfg(tmp_path / "bad", test_size=1))
    assert len(report.problems) == 1 and "line 4" in report.problems[0]
    assert "line 4" in format_report(report)


def test_label_count_mismatch_names_both_numbers():
    spec = LabelSpec(("Male", "Young"), "binary")
    with pytest.raises(
        DatasetError,
        match=r"has 2 labels \(Male, Young\) but the model "
        r"expects 5",
    ):
        require_label_count(spec, 5)
    require_label_count(spec, 2)


def test_registry_knows_every_format():
    assert {"celeba", "folder", "rafd", "table"} <= set(dataset_names())
    with pytest.raises(DatasetError, match="registered formats: .*celeba"):
        build_dataset(DataConfig(name="nope"), "train")


def test_duplicate_selected_names_are_a_label_error(tmp_path):
    write_celeba(tmp_path, 4)
    with pytest.raises(LabelError, match="duplicate label names"):
        build_dataset(celeba_cfg(tmp_path, selected_attrs=("Male", "Male")), "train")


def test_template_format_end_to_end(tmp_path):
    import stargan.data.template  # noqa: F401  registers "template"

    for i in range(5):
        write_image(tmp_path / f"{i}.png", i)
    (tmp_path / "tags.txt").write_text(
        "# filename tags\n0.png smiling glasses\n1.png\n2.png hat\n3.png hat smiling\n"
        "4.png glasses\n"
    )
    cfg = DataConfig(name="template", root=str(tmp_path), image_size=8, test_size=1)
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert train.label_spec.names == ("glasses", "hat", "smiling")
    expected = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [0, 1, 1], [1, 0, 0]], np.float32)
    check_pairing(train, expected)
    check_pairing(test, expected)
    (tmp_path / "tags.txt").write_text("0.png a\n0.png b\n")
    with pytest.raises(DatasetError, match="line 2: duplicate filename '0.png'"):
        build_dataset(cfg, "train")


# SynthFaces exports load through the official-format loaders.


def test_synthfaces_celeba_export_loads_with_its_ground_truth(tmp_path):
    synthetic = pytest.importorskip("stargan.data.synthfaces")
    from stargan.data.io import to_tensor

    root = synthetic.export_celeba(tmp_path / "celeba", n=10, size=32, seed=0)
    truth = synthetic.load_ground_truth(root)
    cfg = DataConfig(name="celeba", root=str(root), image_size=32, crop_size=32, test_size=3)
    for split in ("train", "test"):
        ds = build_dataset(cfg, split)
        assert ds.label_spec.names == tuple(DEFAULT_ATTRS)
        for k in range(len(ds)):
            identity, state, _ = truth[Path(ds.files[k]).name]
            image, label = ds[k]
            assert label.tolist() == [float(a in state.attributes) for a in DEFAULT_ATTRS]
            rendered = to_tensor(np.asarray(synthetic.render(identity, state, 32)))
            assert torch.equal(image, rendered)


def test_synthfaces_rafd_export_loads_with_its_ground_truth(tmp_path):
    synthetic = pytest.importorskip("stargan.data.synthfaces")

    root = synthetic.export_rafd(tmp_path / "rafd", n=16, size=32, seed=0)
    truth = synthetic.load_ground_truth(root)
    cfg = DataConfig(name="rafd", root=str(root), image_size=32, crop_size=32, test_size=4)
    ds = build_dataset(cfg, "train")
    assert ds.label_spec == LabelSpec(tuple(synthetic.EXPRESSIONS), "categorical")
    assert len(ds) == 12
    for f, label in zip(ds.files, ds.labels, strict=True):
        _, state, _ = truth[Path(f).relative_to(root).as_posix()]
        assert synthetic.EXPRESSIONS[int(label.argmax())] == state.expression
