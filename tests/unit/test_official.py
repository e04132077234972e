"""Importing checkpoints in the official 2018 release's layout (built here, saved by torch.save)."""

import pickle

import pytest
import torch
from torch import nn

from stargan.checkpoint import CheckpointError
from stargan.cli import EXIT_USER_ERROR, main
from stargan.inference import load
from stargan.official import import_official

ATTRS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


def _norm(channels: int) -> nn.InstanceNorm2d:
    # The release keeps running statistics (never used; they only make its checkpoints load).
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=True)


class OfficialBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim), nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), _norm(dim),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class OfficialG(nn.Module):
    """The release's generator layout: one Sequential `main`, as its model.py builds it."""

    def __init__(self, conv_dim: int = 8, c_dim: int = 5, repeat_num: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False),
            _norm(conv_dim),
            nn.ReLU(True),
        ]
        dim = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False), _norm(dim * 2), nn.ReLU(True)]
            dim *= 2
        layers += [OfficialBlock(dim) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False), _norm(dim // 2),
                nn.ReLU(True),
            ]  # fmt: skip
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        return self.main(torch.cat([x, c], dim=1))


class OfficialD(nn.Module):
    """The release's discriminator layout: `main`, then heads `conv1` (src), `conv2` (cls)."""

    def __init__(self, image_size=16, conv_dim=8, c_dim=5, repeat_num=3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x):
        h = self.main(x)
        return self.conv1(h), self.conv2(h).flatten(1)


@pytest.fixture
def official(tmp_path):
    torch.manual_seed(0)
    g, d = OfficialG(), OfficialD()
    g(torch.randn(2, 3, 16, 16), torch.rand(2, 5))  # fill the running stats, as training does
    # The release saved with PyTorch 0.4: the legacy (non-zip) serialisation.
    torch.save(g.state_dict(), tmp_path / "G.ckpt", _use_new_zipfile_serialization=False)
    torch.save(d.state_dict(), tmp_path / "D.ckpt")
    return g, d, tmp_path


def test_official_g_and_d_import_and_give_identical_outputs(official, tmp_path):
    g, d, folder = official
    out = import_official(
        folder / "G.ckpt", tmp_path / "m.safetensors", attrs=ATTRS, image_size=16,
        discriminator=folder / "D.ckpt",
    )  # fmt: skip
    model = load(out)
    cfg = model.config
    assert (cfg.g_conv_dim, cfg.g_repeat_num, cfg.c_dim, cfg.d_repeat_num) == (8, 2, 5, 3)
    assert model.label_names == ATTRS and model.has_classifier
    x, c = torch.randn(3, 3, 16, 16), torch.rand(3, 5)
    with torch.no_grad():
        assert torch.allclose(model.generator(x, c), g.train()(x, c), atol=1e-6)
        assert torch.allclose(model.discriminator(x)[1], d(x)[1], atol=1e-6)


def test_joint_model_takes_attributes_then_classes(tmp_path):
    g = OfficialG(c_dim=5 + 3 + 2)
    torch.save(g.state_dict(), tmp_path / "G.ckpt")
    model = load(
        import_official(tmp_path / "G.ckpt", tmp_path / "m.safetensors", attrs=ATTRS,
                        classes=["angry", "happy", "neutral"], image_size=16)
    )  # fmt: skip
    assert model.layout.n_datasets == 2 and not model.has_classifier


def test_wrong_label_count_is_explained(official, tmp_path):
    with pytest.raises(CheckpointError, match=r"c_dim=5 label channels.*make 3"):
        import_official(official[2] / "G.ckpt", tmp_path / "m.safetensors", attrs=ATTRS[:3])
    with pytest.raises(CheckpointError, match="holds no label names"):
        import_official(official[2] / "G.ckpt", tmp_path / "m.safetensors")


def test_every_name_and_shape_mismatch_is_listed(official, tmp_path):
    state = official[0].state_dict()
    del state["main.4.weight"]
    state["main.3.weight"] = torch.zeros(16, 8, 3, 3)
    state["main.99.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError) as err:
        import_official(tmp_path / "bad.ckpt", tmp_path / "m.safetensors", attrs=ATTRS)
    message = str(err.value)
    assert "bad.ckpt does not fit our generator (3 problem(s))" in message
    assert "missing in the checkpoint: main.4.weight" in message
    assert "not in our generator: main.99.weight" in message
    assert "shape mismatch main.3.weight: checkpoint [16, 8, 3, 3] vs ours [16, 8, 4, 4]" in message
    assert not (tmp_path / "m.safetensors").exists()


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    with open(tmp_path / "evil.ckpt", "wb") as f:
        pickle.dump({"main.0.weight": Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="weights_only=True"):
        import_official(tmp_path / "evil.ckpt", tmp_path / "m.safetensors", attrs=ATTRS)
    assert "must never run" not in capsys.readouterr().out


def test_cli_import_official_then_translate(official, tmp_path, capsys):
    out = tmp_path / "celeba.safetensors"
    argv = ["import-official", str(official[2] / "G.ckpt"), "--out", str(out), "--image-size",
            "16", "--discriminator", str(official[2] / "D.ckpt"), "--attrs", *ATTRS]  # fmt: skip
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert load(out).has_classifier
    assert main(["import-official", str(tmp_path / "none.ckpt"), "--out", str(out),
                 "--attrs", "Male"]) == EXIT_USER_ERROR  # fmt: skip
    assert "none.ckpt does not exist" in capsys.readouterr().err
