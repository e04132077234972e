"""Sample grids (issue #28): the images spread over the labels, not the first class in sorted
order, and column titles above the grids drawn for people."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import RAFD_SPEC, TensorFaces, tiny_config
from stargan.config import DataConfig, ModelConfig
from stargan.data.grid import make_grid, sample_grid, spread_indices, title_strip
from stargan.data.labels import LabelLayout
from stargan.data.registry import build_dataset
from stargan.models import Generator
from stargan.training.trainer import Trainer


def _sorted_classes(n_per_class=6):
    """A categorical dataset stored class by class, as a folder dataset is."""
    ds = TensorFaces(RAFD_SPEC, n=3 * n_per_class)
    ds.labels = torch.eye(3).repeat_interleave(n_per_class, dim=0)
    return ds


def test_spread_indices_take_every_class_in_turn():
    ds = _sorted_classes()
    picked = spread_indices(ds, 7)
    assert picked == [0, 6, 12, 1, 7, 13, 2]
    assert sorted(spread_indices(ds, 100)) == list(range(18))  # every image once, when asked
    assert spread_indices(ds, 7) == picked  # deterministic


def test_spread_indices_read_items_when_no_labels_are_stored():
    ds = _sorted_classes()

    class Plain:
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            return ds[i]

    assert spread_indices(Plain(), 3) == [0, 6, 12]


def test_a_folder_dataset_grid_shows_every_class(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.new("RGB", (16, 16), (10 * i, 0, 0)).save(tmp_path / name / f"{i}.png")
    cfg = DataConfig(name="folder", root=str(tmp_path), image_size=16, test_size=3)
    ds = build_dataset(cfg, "train")
    classes = {int(ds[i][1].argmax()) for i in spread_indices(ds, 3)}
    assert classes == {0, 1, 2}


def test_training_samples_spread_over_the_classes(tmp_path):
    ds = _sorted_classes()
    trainer = Trainer(tiny_config(tmp_path / "run"), datasets=[ds])
    ((_, labels),) = trainer.fixed_batches(n=6)
    assert labels.argmax(dim=1).tolist() == [0, 1, 2, 0, 1, 2]


def test_titles_sit_in_a_strip_above_the_grid():
    images = torch.zeros(2, 3, 3, 32, 32)
    bare = make_grid(images)
    titled = make_grid(images, titles=["input", "happy", "angry"])
    assert bare.shape == (2 * 34 + 2, 3 * 34 + 2, 3)
    strip = titled.shape[0] - bare.shape[0]
    assert strip > 8 and titled.shape[1] == bare.shape[1]
    assert np.array_equal(titled[strip:], bare)
    assert (titled[:strip] < 128).any()  # some ink
    with pytest.raises(ValueError, match="2 titles for 3 columns"):
        make_grid(images, titles=["input", "happy"])


def test_row_titles_sit_in_a_strip_left_of_the_grid():
    images = torch.zeros(2, 3, 3, 32, 32)
    bare = make_grid(images)
    both = make_grid(images, titles=["input", "happy", "angry"], row_titles=["truth", "DIAT"])
    top = both.shape[0] - bare.shape[0]
    left = both.shape[1] - bare.shape[1]
    assert left > 8 and top > 8
    assert np.array_equal(both[top:, left:], bare)
    assert (both[top:, :left] < 128).any()  # the row names
    assert (both[:top, :left] == 255).all()  # the corner stays blank
    with pytest.raises(ValueError, match="1 row titles for 2 rows"):
        make_grid(images, row_titles=["truth"])


def test_long_titles_over_small_images_are_written_upwards():
    strip = title_strip(["input", "Black_Hair"], width=16)
    assert strip.shape[1] == 2 * 18 + 2
    assert strip.shape[0] > 40  # tall enough for the longest title on its side
    ink = (strip < 128).any(axis=(0, 2))
    assert not ink[16:20].any()  # nothing spills into the gap between the columns


def test_sample_grid_titles_name_every_column():
    layout = LabelLayout((RAFD_SPEC,))
    g = Generator(
        ModelConfig(
            image_size=16, c_dim=3, n_classes=3, g_conv_dim=8, g_repeat_num=1, d_repeat_num=3
        )
    ).eval()
    x, lab = torch.zeros(2, 3, 16, 16), torch.eye(3)[:2]
    bare = sample_grid(g, [x], [lab], layout)
    titled = sample_grid(g, [x], [lab], layout, titled=True)
    assert titled.shape[1] == bare.shape[1] == 4 * 18 + 2
    assert titled.shape[0] > bare.shape[0]
