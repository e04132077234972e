"""StarGAN generator G(x, c): an image and a target label vector in, a translated image out."""

from __future__ import annotations

import torch
from torch import nn

from stargan.config import ModelConfig
from stargan.models.blocks import ResidualBlock, check_images, instance_norm


def generator_layers(
    in_channels: int, conv_dim: int, repeat_num: int
) -> tuple[list[nn.Module], int]:
    """G up to its output conv: the encoder (7x7 conv + two strided convs), ``repeat_num``
    residual blocks and the decoder (two transposed convs), each conv bias-free and followed
    by instance norm and ReLU. Returns the layers and the width they end at. The ReLUs are
    not in place (the release's are): an in-place ReLU on a recomputed instance norm's output
    makes selective checkpointing (speed.g_recompute 'norms') keep both, not just the conv's.

    Also builds the label-free G of the pairwise baselines (``stargan.baselines.networks``,
    ``in_channels`` 3), so their nets stay StarGAN's layer for layer.
    """
    dim = conv_dim
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, dim, 7, 1, 3, bias=False),
        instance_norm(dim),
        nn.ReLU(),
    ]
    for _ in range(2):
        layers += [
            nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False),
            instance_norm(dim * 2),
            nn.ReLU(),
        ]
        dim *= 2
    layers += [ResidualBlock(dim) for _ in range(repeat_num)]
    for _ in range(2):
        layers += [
            nn.ConvTranspose2d(dim, dim // 2, 4, 2, 1, bias=False),
            instance_norm(dim // 2),
            nn.ReLU(),
        ]
        dim //= 2
    return layers, dim


class Generator(nn.Module):
    """Encoder (7x7 conv + two strided convs), residual bottleneck, decoder (two transposed
    convs + 7x7 conv, tanh). All convs are bias-free: instance norm follows each of them.

    Example:
        >>> g = Generator(ModelConfig(image_size=32, c_dim=5, n_classes=5, g_conv_dim=8,
        ...                           g_repeat_num=1, d_repeat_num=5))
        >>> g(torch.zeros(2, 3, 32, 32), torch.zeros(2, 5)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.image_size = cfg.image_size
        self.c_dim = cfg.c_dim
        layers, dim = generator_layers(3 + cfg.c_dim, cfg.g_conv_dim, cfg.g_repeat_num)
        self.output = cfg.g_output
        if self.output == "image":
            layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        elif self.output == "residual":
            out = nn.Conv2d(dim, 3, 7, 1, 3, bias=False)
            nn.init.zeros_(out.weight)  # start as the identity: translations = inputs
            layers.append(out)
        else:  # "mask": 3 colour channels + 1 attention channel
            out = nn.Conv2d(dim, 4, 7, 1, 3, bias=True)
            with torch.no_grad():
                out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -4.0]))  # mask ~0.02: nearly closed
            layers.append(out)
        self.main = nn.Sequential(*layers)

    def forward(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        return_attention: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """x: [N, 3, S, S] in [-1, 1]; c: [N, c_dim] -> [N, 3, S, S] (in [-1, 1] unless
        g_output is 'residual', whose sums may overshoot; consumers clamp for display).
        With ``return_attention`` (g_output 'mask' only), also the mask [N, 1, S, S] in (0, 1)."""
        if return_attention and self.output != "mask":
            raise ValueError(f"only g_output 'mask' has an attention mask, not {self.output!r}")
        check_images(x, self.image_size, "Generator")
        if c.dim() != 2 or c.shape != (x.shape[0], self.c_dim):
            raise ValueError(
                f"Generator expects labels shaped [N={x.shape[0]}, c_dim={self.c_dim}], "
                f"got {list(c.shape)}"
            )
        # Tile the label over every pixel so each conv sees the target domain.
        c_map = c.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        out = self.main(torch.cat([x, c_map], dim=1))
        if self.output == "residual":
            return x + out
        if self.output == "mask":
            attention = torch.sigmoid(out[:, 3:])
            image = attention * torch.tanh(out[:, :3]) + (1 - attention) * x
            return (image, attention) if return_attention else image
        return out
