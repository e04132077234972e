"""StarGAN: unified multi-domain image-to-image translation (Choi et al., CVPR 2018).

Example:
    >>> import stargan
    >>> model = stargan.load("runs/synth-demo/model.safetensors")    # doctest: +SKIP
    >>> y = model.translate(x, {"Blond_Hair": 1})                   # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stargan.config import TrainConfig

if TYPE_CHECKING:
    from stargan.inference import StarGAN, load

__all__ = ["StarGAN", "TrainConfig", "__version__", "load"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # `load` and `StarGAN` bring in torch (over a second): imported on first use, so that
    # `stargan --help`, `stargan data check` and a refused file answer without it.
    if name in ("StarGAN", "load"):
        from stargan import inference

        return getattr(inference, name)
    raise AttributeError(f"module 'stargan' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
