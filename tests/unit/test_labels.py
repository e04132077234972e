import pytest
import torch

from stargan.data.labels import (
    LabelError,
    LabelLayout,
    LabelSpec,
    permute_targets,
    sample_targets,
    set_target,
)

HAIR = LabelSpec(("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"), "binary")
EXPR = LabelSpec(("angry", "happy", "sad"), "categorical")


def test_setting_a_hair_colour_clears_the_other_selected_colours():
    labels = torch.tensor([[1.0, 0, 0, 1, 0]])
    out = set_target(HAIR, labels, "Blond_Hair")
    assert out.tolist() == [[0, 1, 0, 1, 0]]
    assert labels.tolist() == [[1, 0, 0, 1, 0]]  # input untouched


def test_sample_targets_set_hair_and_flip_the_rest():
    labels = torch.tensor([[1.0, 0, 0, 1, 0]])
    cols = dict(sample_targets(HAIR, labels))
    assert list(cols) == list(HAIR.names)
    assert cols["Black_Hair"].tolist() == [[1, 0, 0, 1, 0]]
    assert cols["Brown_Hair"].tolist() == [[0, 0, 1, 1, 0]]
    assert cols["Male"].tolist() == [[1, 0, 0, 0, 0]]  # flipped
    assert cols["Young"].tolist() == [[1, 0, 0, 1, 1]]


def test_categorical_targets_are_one_hot():
    cols = dict(sample_targets(EXPR, torch.tensor([[0.0, 1, 0]])))
    assert cols["sad"].tolist() == [[0, 0, 1]]


def test_single_dataset_layout_has_no_mask():
    lay = LabelLayout((HAIR,))
    assert (lay.c_dim, lay.n_classes) == (5, 5)
    x = torch.rand(2, 5)
    assert lay.embed(0, x) is x


def test_joint_layout_places_slices_and_mask():
    lay = LabelLayout((HAIR, EXPR))
    assert (lay.c_dim, lay.n_classes) == (10, 8)
    full = lay.embed(1, torch.tensor([[0.0, 1, 0]]))
    assert full.tolist() == [[0, 0, 0, 0, 0, 0, 1, 0, 0, 1]]
    full = lay.embed(0, torch.ones(1, 5))
    assert full.tolist() == [[1, 1, 1, 1, 1, 0, 0, 0, 1, 0]]
    assert lay.find("sad") == (1, 2)
    assert LabelLayout.from_dict(lay.to_dict()) == lay


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(LabelError, match="Blond_Hair"):
        HAIR.index("Blonde_Hair")
    with pytest.raises(LabelError, match="angry"):
        LabelLayout((HAIR, EXPR)).find("furious")
    with pytest.raises(LabelError, match=r"\[N, 3\]"):
        LabelLayout((HAIR, EXPR)).embed(1, torch.zeros(2, 5))


def test_targets_are_a_permutation_of_the_batch():
    labels = torch.arange(8.0).view(8, 1)
    out = permute_targets(labels, torch.Generator().manual_seed(0))
    assert sorted(out.view(-1).tolist()) == labels.view(-1).tolist()
