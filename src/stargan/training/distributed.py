"""Data-parallel training over processes started by ``torchrun`` (one process per device).

The design keeps an N-rank run numerically equal to a 1-rank run with the same global batch:

* ``optim.batch_size`` is the *global* batch; each rank loads a contiguous 1/N slice of it.
* Every random draw of a step (flips, target permutation, GP alphas) is made for the whole
  global batch from the same seeded generator on every rank, and each rank takes its slice.
  The target permutation needs the global batch's labels: they are all-gathered (a few bytes).
* G and D are wrapped in ``DistributedDataParallel`` (:func:`wrap`) for the forwards whose
  backward updates them; DDP averages the gradients over the ranks during the backward.
  Every loss term is a mean over the batch (the binary classification loss is a sum divided
  by the batch size), so the mean of the per-rank gradients over equal shards is the
  gradient of the global-batch loss.

StarGAN's step runs D twice before D's backward (real+fake, then the interpolates of the
gradient penalty, whose ``autograd.grad(create_graph=True)`` is a double backward) and G two
or three times before G's. Plain DDP handles this exactly (see :func:`wrap`): the
``autograd.grad`` call asks for the gradient of the interpolates only, so it fires no
parameter hook, and the one ``backward`` of the loss fires each hook once, carrying the
penalty's second-order term. G's update runs through the bare D (its weights frozen).
Checked by tests/integration/test_distributed.py: the ranks' gradients are bit-identical at
every optimizer step even when every rank reads different data.

Example (what ``stargan train`` does under torchrun):
    >>> ctx = init_from_env("auto")            # doctest: +SKIP
    >>> ctx.rank, ctx.world_size, ctx.device   # doctest: +SKIP
    (0, 2, device(type='cpu'))
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

BACKENDS = ("auto", "gloo", "nccl")


class DistributedError(RuntimeError):
    """The ranks disagree (resume step, parameters) or the launch environment is incomplete."""


@dataclass(frozen=True)
class Context:
    """This process's place in the job; ``world_size == 1`` means no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This rank's contiguous slice of a global batch of ``n`` (divisible by the world)."""
        per = n // self.world_size
        return slice(self.rank * per, (self.rank + 1) * per)


def launched_by_torchrun() -> bool:
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def choose_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if backend == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return backend


def init_from_env(backend: str = "auto") -> Context:
    """Join the process group described by torchrun's variables (RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR, MASTER_PORT); a no-op single-process context without them."""
    if not launched_by_torchrun():
        return Context()
    if dist.is_initialized():
        return current()
    ctx = Context(
        int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    )
    chosen = choose_backend(backend)
    if chosen == "nccl":
        torch.cuda.set_device(ctx.local_rank)
    # torchrun keeps one key-value store across restarts of the workers: without a prefix per
    # restart, restarted workers would read the dead workers' addresses and fail to connect.
    store, _, _ = next(dist.rendezvous("env://", ctx.rank, ctx.world_size))
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    store = dist.PrefixStore(f"stargan/restart-{restart}/", store)
    dist.init_process_group(chosen, store=store, rank=ctx.rank, world_size=ctx.world_size)
    return ctx


def current() -> Context:
    """The context of the initialised process group, or the single-process one."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return Context(dist.get_rank(), dist.get_world_size(), local)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def device_for(name: str, ctx: Context) -> torch.device:
    """``run.device`` for this rank: 'auto' and 'cuda' mean this rank's GPU, cuda:LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and ctx.world_size > 1:
        return torch.device("cuda", ctx.local_rank)
    return torch.device(name)


def _comm_device(ctx: Context, like: torch.device) -> torch.device:
    # NCCL moves only CUDA tensors; gloo takes CPU tensors.
    return like if dist.get_backend() != "nccl" else torch.device("cuda", ctx.local_rank)


def wrap(ctx: Context, module: torch.nn.Module) -> torch.nn.Module:
    """``module`` inside ``DistributedDataParallel`` under torchrun (DDP averages its gradients
    over the ranks during each backward); ``module`` itself in one process.

    Plain DDP, without ``find_unused_parameters`` or ``static_graph``, is exact for StarGAN's
    step although nets run several forwards before one backward: each backward reaches every
    parameter of the wrapped net, and autograd sums a leaf's contributions before the single
    accumulation that fires its DDP hook. A backward that left some parameter without a
    gradient would stop the run at the next forward (DDP's "Expected to have finished
    reduction in the prior iteration" error), not desynchronise it.
    """
    if not ctx.active:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device = next(module.parameters()).device
    # The constructor checks that every rank holds the same parameter shapes and copies rank
    # 0's values to the others. G and D have no buffers, so no forward communicates.
    return DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )


def average_scalars(ctx: Context, values: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar loss terms averaged over ranks (what the global batch would give), as floats."""
    if not values:
        return {}
    stacked = torch.stack([v.detach().float() for v in values.values()])
    if ctx.active:
        stacked = stacked.to(_comm_device(ctx, stacked.device))
        dist.all_reduce(stacked)
        stacked /= ctx.world_size
    return dict(zip(values, stacked.tolist(), strict=True))


def all_gather_rows(ctx: Context, t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``t`` (same shape on all ranks) along dim 0, in rank order."""
    if not ctx.active:
        return t
    moved = t.to(_comm_device(ctx, t.device)).contiguous()
    parts = [torch.empty_like(moved) for _ in range(ctx.world_size)]
    dist.all_gather(parts, moved)
    return torch.cat(parts).to(t.device)


def any_rank(ctx: Context, flag: bool) -> bool:
    """True on every rank if it is true on any (a stop request seen by one rank stops all)."""
    if not ctx.active:
        return flag
    t = torch.tensor([float(flag)], device=_comm_device(ctx, torch.device("cpu")))
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()


def check_same_on_all_ranks(ctx: Context, what: str, tensors: dict[str, torch.Tensor]) -> None:
    """Raise if ``tensors`` differ between ranks (compares exact float64 digests)."""
    if not ctx.active:
        return
    parts = []
    for v in tensors.values():
        x = v.detach().double().reshape(-1)
        weights = torch.arange(1, x.numel() + 1, dtype=torch.float64, device=x.device)
        parts.append(torch.stack([x.sum(), (x * weights).sum()]))
    digest = torch.stack(parts).reshape(-1)
    gathered = all_gather_rows(ctx, digest[None])
    if not (gathered == gathered[0]).all():
        raise DistributedError(
            f"{what} differ between ranks (digests {gathered[:, :4].tolist()}...): the ranks "
            f"have desynchronised; resume from the last checkpoint"
        )


def check_same_value(ctx: Context, what: str, value: int) -> None:
    """Raise if an integer (the resumed step) differs between ranks."""
    if not ctx.active:
        return
    gathered = all_gather_rows(ctx, torch.tensor([[value]], dtype=torch.int64))
    if not (gathered == value).all():
        raise DistributedError(
            f"the ranks disagree on {what}: {gathered.reshape(-1).tolist()} (rank order); "
            f"every rank must see the same run folder (a shared filesystem on multi-node)"
        )
