"""StarGAN: unified multi-domain image-to-image translation (Choi et al., CVPR 2018).

Example:
    >>> import stargan
    >>> model = stargan.load("runs/synth-demo/model.safetensors")    # doctest: +SKIP
    >>> y = model.translate(x, {"Blond_Hair": 1})                   # doctest: +SKIP
"""

from stargan.config import TrainConfig
from stargan.inference import StarGAN, load

__all__ = ["StarGAN", "TrainConfig", "__version__", "load"]
__version__ = "0.1.0"
