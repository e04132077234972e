"""A torchrun worker for test_distributed.py: trains a few iterations on data that differs
per rank and saves, for each optimizer step, this rank's gradients and, after each
iteration, its weights.

    python -m torch.distributed.run --nproc-per-node=2 ... ddp_probe.py OUT MODE

MODE "ddp" trains as ``stargan train`` does under torchrun; "ddp-norms" the same with
speed.g_recompute 'norms' (selective checkpointing inside DDP's backward); MODE "unsynced" swaps
the DDP wrappers for the bare nets (no gradient averaging), the negative control showing that
the ranks' data differs enough for a missing synchronisation to be seen.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from stargan.config import (
    DataConfig,
    LossConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    SpeedConfig,
    TrainConfig,
)
from stargan.data.labels import LabelSpec
from stargan.training import distributed
from stargan.training.trainer import Trainer

SPECS = (
    LabelSpec(("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"), "binary"),
    LabelSpec(("angry", "happy", "neutral"), "categorical"),
)


class RankFaces(torch.utils.data.Dataset):
    """Seeded random images and labels, a different set on every rank."""

    def __init__(self, spec: LabelSpec, seed: int, n: int = 16, size: int = 16) -> None:
        g = torch.Generator().manual_seed(seed)
        self.label_spec = spec
        self.images = torch.rand(n, 3, size, size, generator=g) * 2 - 1
        if spec.kind == "binary":
            self.labels = (torch.rand(n, spec.n_labels, generator=g) < 0.5).float()
        else:
            idx = torch.randint(spec.n_labels, (n,), generator=g)
            self.labels = torch.nn.functional.one_hot(idx, spec.n_labels).float()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def main(out: Path, mode: str, iters: int = 4) -> None:
    ctx = distributed.init_from_env("gloo")
    # Joint training (binary + categorical: D's classifier is sliced per dataset), an identity
    # loss (three G forwards before G's backward), a G update every iteration.
    cfg = TrainConfig(
        model=ModelConfig(
            image_size=16, g_conv_dim=8, d_conv_dim=8, g_repeat_num=1, d_repeat_num=3
        ),
        optim=OptimConfig(batch_size=4, num_iters=iters, num_iters_decay=iters // 2, n_critic=1),
        loss=LossConfig(lambda_id=1.0),
        data=(DataConfig(image_size=16, flip=True), DataConfig(image_size=16)),
        run=RunConfig(
            out_dir=str(out / "run"),
            device="cpu",
            num_threads=1,
            sample_every=0,
        ),
        speed=SpeedConfig(g_recompute="norms" if mode == "ddp-norms" else "none"),
    )
    datasets = [RankFaces(spec, seed=100 * ctx.rank + k) for k, spec in enumerate(SPECS)]
    trainer = Trainer(cfg, datasets=datasets, overwrite=True)
    if mode == "unsynced":
        trainer.G_train, trainer.D_train = trainer.G, trainer.D
    grads: list[dict[str, torch.Tensor]] = []
    for who, opt, net in (("G", trainer.opt_g, trainer.G), ("D", trainer.opt_d, trainer.D)):

        def record(_opt, _args, _kwargs, who=who, net=net) -> None:
            grads.append({f"{who}.{k}": p.grad.clone() for k, p in net.named_parameters()})

        opt.register_step_pre_hook(record)
    weights = []
    for _ in range(iters):
        trainer.train_iteration()
        trainer.step += 1
        weights.append(
            {
                f"{who}.{k}": p.detach().clone()
                for who, net in (("G", trainer.G), ("D", trainer.D))
                for k, p in net.named_parameters()
            }
        )
    torch.save({"grads": grads, "weights": weights}, out / f"rank{ctx.rank}.pt")
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
