"""SynthFaces: determinism, exact ground truth, locality of every label, exports, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stargan.data.labels import LabelError
from stargan.data.synthfaces import (
    ATTRIBUTE_PARTS,
    CELEBA_ATTRIBUTES,
    DEFAULT_SELECTED_ATTRS,
    EXPRESSION_PARTS,
    EXPRESSIONS,
    HAIR_COLOURS,
    PARTS,
    FaceState,
    Identity,
    SynthFaces,
    export_celeba,
    export_rafd,
    load_ground_truth,
    part_mask,
    render,
    sample_identity,
    sample_state,
)

SIZE = 32


def _face(seed: int, style: str = "celeba") -> tuple[Identity, FaceState]:
    rng = np.random.default_rng(seed)
    return sample_identity(rng, style), sample_state(rng, style)


def _uint8(x: torch.Tensor) -> np.ndarray:
    """[3, S, S] in [-1, 1] -> uint8 [S, S, 3] (exact for images that came from uint8)."""
    return ((x + 1) * 127.5).round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


# Determinism and ground truth


def test_same_seed_gives_byte_identical_images():
    a, b = SynthFaces("celeba", SIZE, 8, seed=3), SynthFaces("celeba", SIZE, 8, seed=3)
    for i in range(8):
        assert a.image_uint8(i).tobytes() == b.image_uint8(i).tobytes()
    other = SynthFaces("celeba", SIZE, 8, seed=4)
    assert a.image_uint8(0).tobytes() != other.image_uint8(0).tobytes()


def test_item_depends_only_on_seed_index_and_style():
    """Order, dataset length and the cache do not change an item."""
    a = SynthFaces("celeba", SIZE, 10, seed=1)
    b = SynthFaces("celeba", SIZE, 500, seed=1, cache_mb=0)
    for i in reversed(range(10)):
        assert np.array_equal(a.image_uint8(i), b.image_uint8(i))
    assert torch.equal(a[5][0], a[5][0])  # second read comes from the cache
    assert a.identity(2) == b.identity(2) and a.state(2) == b.state(2)


def test_render_is_pure():
    idt, state = _face(0)
    assert render(idt, state, SIZE).tobytes() == render(idt, state, SIZE).tobytes()


@pytest.mark.parametrize("style", ["celeba", "rafd"])
def test_own_identity_and_labels_reproduce_the_image(style):
    ds = SynthFaces(style, SIZE, 16, seed=2, correlated=True)
    for i in range(16):
        x, c = ds[i]
        assert np.array_equal(_uint8(x), render(ds.identity(i), ds.state(i), SIZE))
        assert torch.equal(ds.counterfactual(i, c), x)


def test_counterfactual_equals_render_of_target_state():
    ds = SynthFaces("celeba", SIZE, 4, seed=0)
    x, c = ds[0]
    target = c.clone()
    target[ds.label_spec.index("Male")] = 1 - target[ds.label_spec.index("Male")]
    y = ds.counterfactual(0, target)
    assert not torch.equal(y, x)
    want = render(ds.identity(0), ds.state_for_label(0, target), SIZE)
    assert np.array_equal(_uint8(y), want)
    assert torch.equal(ds.encode(ds.state_for_label(0, target)), target)


@pytest.mark.parametrize("size", [16, 33, 64, 256])
def test_any_size_in_range(size):
    img = render(*_face(1), size)
    assert img.shape == (size, size, 3) and img.dtype == np.uint8
    assert img.std() > 10  # a face, not a flat canvas


@pytest.mark.parametrize("size", [15, 257, 0, 32.0])
def test_size_out_of_range_names_the_value(size):
    with pytest.raises(ValueError, match=re.escape(repr(size))):
        render(*_face(0), size)
    with pytest.raises(ValueError, match=re.escape(repr(size))):
        SynthFaces("celeba", size=size, n=2)


# Every label touches its own region only


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1)  # [S, S]


def _check_local(idt, s0, s1, parts, size=SIZE, min_changed=3):
    a, b = render(idt, s0, size), render(idt, s1, size)
    allowed = part_mask(idt, s0, size, parts) | part_mask(idt, s1, size, parts)
    diff = _changed(a, b)
    assert diff[~allowed].max(initial=0) == 0, f"{s0} -> {s1} changed pixels outside {parts}"
    assert (diff > 24).sum() >= min_changed, f"{s0} -> {s1} is barely visible"
    # Background and clothes are identity: pixels showing only them never change.
    others = [p for p in PARTS if p not in ("background", "clothes")]
    pure = ~part_mask(idt, s0, size, others) & ~part_mask(idt, s1, size, others)
    assert pure.sum() > size * size // 8 and diff[pure].max() == 0


@pytest.mark.parametrize("attr", CELEBA_ATTRIBUTES)
def test_attribute_changes_only_its_own_parts(attr):
    for seed in range(8):
        idt, state = _face(seed)
        if attr in HAIR_COLOURS:  # from a different colour (or none) to this one
            s0 = (
                state.with_attribute(
                    HAIR_COLOURS[(HAIR_COLOURS.index(attr) + 1 + seed % 3) % 4], True
                )
                if seed % 4
                else state.with_attribute(attr, False)
            )
        else:
            s0 = state.with_attribute(attr, False)
        _check_local(idt, s0, s0.with_attribute(attr, True), ATTRIBUTE_PARTS[attr])


@pytest.mark.parametrize("style", ["celeba", "rafd"])
def test_expression_changes_only_brows_eyes_mouth(style):
    idt, state = _face(7, style)
    base = state.with_expression("neutral")
    for expression in EXPRESSIONS:
        if expression != "neutral":
            _check_local(idt, base, base.with_expression(expression), EXPRESSION_PARTS)


def test_expressions_are_all_different():
    idt, state = _face(5, "rafd")
    imgs = [render(idt, state.with_expression(e), SIZE) for e in EXPRESSIONS]
    for i in range(len(imgs)):
        for j in range(i):
            assert (_changed(imgs[i], imgs[j]) > 24).sum() >= 3, (EXPRESSIONS[i], EXPRESSIONS[j])


def test_male_and_young_change_shape_not_only_colour():
    """Male moves the hair and jaw silhouette; age adds lines (new edges), not a tint."""
    for seed in range(4):
        idt, state = _face(seed)
        f, m = state.with_attribute("Male", False), state.with_attribute("Male", True)
        hair_f = part_mask(idt, f, 64, ["hair"])
        hair_m = part_mask(idt, m, 64, ["hair"])
        assert (hair_f & ~hair_m).sum() > 100  # long hair below the jaw disappears
        y, o = state.with_attribute("Young", True), state.with_attribute("Young", False)
        assert part_mask(idt, o, 64, ["wrinkles"]).sum() > 40
        assert not part_mask(idt, y, 64, ["wrinkles"]).any()


def test_identities_differ_even_with_identical_labels():
    """Plain rafd conditions, one state: every pair of 100 identities differs visibly at 64 px."""
    state = FaceState({"Brown_Hair", "Young"})
    rng = np.random.default_rng(0)
    imgs = np.stack([render(sample_identity(rng, "rafd"), state, 64) for _ in range(100)])
    flat = imgs.reshape(100, -1).astype(np.float64)
    sq = (flat**2).sum(1)
    rms = np.sqrt(np.maximum(sq[:, None] + sq[None] - 2 * flat @ flat.T, 0) / flat.shape[1])
    assert (rms + np.eye(100) * 255).min() > 8.0  # RMS difference in 8-bit levels


def test_rafd_style_is_frontal_centred_on_plain_light_background():
    for seed in range(4):
        idt, _ = _face(seed, "rafd")
        assert (idt.rotation, idt.dx, idt.dy, idt.light_strength) == (0.0, 0.0, 0.0, 0.0)
        img = render(idt, FaceState(), SIZE)
        corners = img[[0, 0, -1, -1], [0, -1, 0, -1]]  # [4, 3]
        top = corners[:2]
        assert (top == top[0]).all() and top.min() > 230  # the bottom shows the black shirt


# States and labels


def test_sampled_hair_colours_are_exclusive_and_sometimes_absent():
    rng = np.random.default_rng(0)
    counts = [len(sample_state(rng, "celeba").attributes & set(HAIR_COLOURS)) for _ in range(300)]
    assert max(counts) == 1 and 30 < counts.count(0) < 100


def test_correlated_sampling_follows_celeba_co_occurrence():
    rng = np.random.default_rng(0)
    states = [sample_state(rng, "celeba", correlated=True) for _ in range(2000)]
    old = [s for s in states if "Young" not in s.attributes]
    young = [s for s in states if "Young" in s.attributes]
    gray = lambda ss: np.mean(["Gray_Hair" in s.attributes for s in ss])  # noqa: E731
    assert gray(old) > 5 * gray(young)
    men = [s for s in states if "Male" in s.attributes]
    assert np.mean(["Wearing_Lipstick" in s.attributes for s in men]) < 0.05


def test_smiling_is_the_happy_expression():
    assert FaceState({"Smiling"}).expression == "happy"
    assert "Smiling" in FaceState(expression="happy").attributes
    assert FaceState({"Male": True, "Bangs": False}).attributes == {"Male"}
    with pytest.raises(LabelError, match="Smiling"):
        FaceState({"Smiling"}, "angry")
    s = FaceState({"Smiling"})
    assert s.with_expression("sad").attributes == frozenset()
    assert s.with_attribute("Smiling", False).expression == "neutral"
    assert FaceState(expression="sad").with_attribute("Smiling", True).expression == "happy"


def test_faces_state_errors_teach():
    with pytest.raises(LabelError, match="Black_Hair.*Blond_Hair|Blond_Hair.*Black_Hair"):
        FaceState({"Black_Hair", "Blond_Hair"})
    with pytest.raises(LabelError, match="Wavy_Hair.*Bangs"):
        FaceState({"Wavy_Hair"})
    with pytest.raises(LabelError, match="joyful.*angry"):
        FaceState(expression="joyful")
    with pytest.raises(LabelError, match="string"):
        FaceState("Male")


def test_label_encodings():
    ds = SynthFaces("celeba", SIZE, 20, seed=0)
    assert ds.label_spec.names == DEFAULT_SELECTED_ATTRS and ds.label_spec.kind == "binary"
    for i in range(20):
        c = ds.label(i)
        assert c.dtype == torch.float32 and c.shape == (5,)
        assert c.tolist() == [float(a in ds.state(i).attributes) for a in DEFAULT_SELECTED_ATTRS]
        assert c[:3].sum() <= 1
    r = SynthFaces("rafd", SIZE, 16, seed=0)
    assert r.label_spec.names == EXPRESSIONS and r.label_spec.kind == "categorical"
    for i in range(16):
        c = r.label(i)
        assert c.sum() == 1 and EXPRESSIONS[int(c.argmax())] == r.state(i).expression
        assert r.state(i).expression == EXPRESSIONS[i % 8]
    assert r.identity(0) == r.identity(7) != r.identity(8)  # one subject, all 8 expressions
    assert r.state(0).attributes - {"Smiling"} == r.state(7).attributes - {"Smiling"}


def test_state_for_label_hair_colours_and_unselected_attributes():
    ds = SynthFaces("celeba", SIZE, 50, seed=0, selected_attrs=("Black_Hair", "Blond_Hair", "Male"))
    i = next(i for i in range(50) if "Gray_Hair" in ds.state(i).attributes)
    before = ds.state(i)
    # All selected colours off: an unselected colour (Gray) stays.
    assert ds.state_for_label(i, torch.tensor([0.0, 0.0, 1.0])).attributes == (
        before.attributes | {"Male"}
    )
    # Setting a colour clears every other colour, selected or not.
    after = ds.state_for_label(i, torch.tensor([0.0, 1.0, 0.0]))
    assert after.attributes & set(HAIR_COLOURS) == {"Blond_Hair"}
    assert after.attributes - set(HAIR_COLOURS) == before.attributes - set(HAIR_COLOURS) - {"Male"}
    with pytest.raises(LabelError, match="several hair colours"):
        ds.state_for_label(i, torch.tensor([1.0, 1.0, 0.0]))
    with pytest.raises(LabelError, match="3"):
        ds.state_for_label(i, torch.tensor([1.0, 0.0]))
    with pytest.raises(LabelError, match="0/1"):
        ds.state_for_label(i, torch.tensor([0.5, 0.0, 0.0]))


def test_state_for_label_rafd_changes_only_the_expression():
    ds = SynthFaces("rafd", SIZE, 8, seed=0)
    target = torch.zeros(8)
    target[EXPRESSIONS.index("surprised")] = 1
    s = ds.state_for_label(5, target)
    assert s.expression == "surprised"
    assert s.attributes - {"Smiling"} == ds.state(5).attributes - {"Smiling"}
    with pytest.raises(LabelError, match="one-hot"):
        ds.state_for_label(5, torch.ones(8))


def test_dataset_errors_teach():
    with pytest.raises(LabelError, match="Wavy_Hair.*Young"):
        SynthFaces("celeba", SIZE, 2, selected_attrs=("Wavy_Hair",))
    with pytest.raises(ValueError, match="'faces'.*celeba"):
        SynthFaces("faces", SIZE, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="selected_attrs"):
        SynthFaces("rafd", SIZE, 2, selected_attrs=("Male",))
    with pytest.raises(IndexError, match="5"):
        SynthFaces("celeba", SIZE, 5)[5]
    with pytest.raises(ValueError, match="unknown face parts.*hat"):
        part_mask(*_face(0), SIZE, ["hat"])


def test_getitem_contract():
    ds = SynthFaces("celeba", SIZE, 3, seed=0)
    x, c = ds[-1]
    assert x.shape == (3, SIZE, SIZE) and x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0 and c.dtype == torch.float32
    loader = torch.utils.data.DataLoader(ds, batch_size=3)
    xb, cb = next(iter(loader))
    assert xb.shape == (3, 3, SIZE, SIZE) and cb.shape == (3, 5)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), style=st.sampled_from(["celeba", "rafd"]))
def test_identity_and_state_survive_json(seed, style):
    idt, state = _face(seed, style)
    assert Identity.from_dict(json.loads(json.dumps(idt.to_dict()))) == idt
    assert FaceState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_identity_from_dict_names_bad_keys():
    d = _face(0)[0].to_dict()
    d.pop("skin")
    d["hat"] = 1
    with pytest.raises(ValueError, match=r"missing keys \['skin'\].*unknown keys \['hat'\]"):
        Identity.from_dict(d)
    d = _face(0)[0].to_dict() | {"background": "plaid"}
    with pytest.raises(ValueError, match="background.*solid.*'plaid'"):
        Identity.from_dict(d)


# Exports


def test_export_celeba_official_format_and_ground_truth(tmp_path):
    root = export_celeba(tmp_path / "celeba", n=12, size=SIZE, seed=0)
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "12" and lines[1].split() == list(CELEBA_ATTRIBUTES)
    assert len(lines) == 14
    ds = SynthFaces("celeba", SIZE, 12, seed=0, selected_attrs=CELEBA_ATTRIBUTES)
    gt = load_ground_truth(root)
    for i, line in enumerate(lines[2:]):
        name, *values = line.split()
        assert name == f"{i + 1:06d}.png"
        assert len(values) == len(CELEBA_ATTRIBUTES)
        assert [int(v) for v in values] == [int(2 * v - 1) for v in ds.label(i).tolist()]
        img = np.asarray(Image.open(root / "images" / name))
        assert np.array_equal(img, ds.image_uint8(i))
        identity, state, style = gt[name]
        assert style == "celeba" and np.array_equal(render(identity, state, SIZE), img)


def test_export_celeba_line_layout_matches_official_file(tmp_path):
    root = export_celeba(tmp_path, n=1, size=16, seed=0)
    line = (root / "list_attr_celeba.txt").read_text().splitlines()[2]
    # Official lines read "000001.jpg -1  1  1 -1 ...": each value right-aligned in 2 chars.
    assert re.fullmatch(r"000001\.png(?: -1|  1)+", line)


def test_export_rafd_folders_and_ground_truth(tmp_path):
    root = export_rafd(tmp_path / "rafd", n=16, size=SIZE, seed=0)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == list(EXPRESSIONS)
    ds = SynthFaces("rafd", SIZE, 16, seed=0)
    gt = load_ground_truth(root)
    assert len(gt) == 16
    for name, (identity, state, style) in gt.items():
        assert name.split("/")[0] == state.expression and style == "rafd"
        img = np.asarray(Image.open(root / name))
        assert np.array_equal(render(identity, state, SIZE), img)
    assert np.array_equal(np.asarray(Image.open(root / "angry/00001_angry.png")), ds.image_uint8(8))


def test_load_ground_truth_names_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="identities.json"):
        load_ground_truth(tmp_path)
