"""Scale-out under ``torchrun`` with DistributedDataParallel (REQ-X03).

Studio does not launch processes: ``torchrun --nproc_per_node N -m studio train ...`` starts N
copies of the command, each with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set, and
:func:`init_distributed` joins them into one process group (gloo on CPU, NCCL on CUDA, each rank
on ``cuda:LOCAL_RANK``). From then on :func:`current` returns the :class:`DistContext`, and the
:class:`~studio.backend.pytorch.trainer.Trainer` uses it:

- the model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` for the optimisation
  steps (gradients are averaged across ranks, so every rank keeps identical weights);
- each epoch's seeded order (``epoch_order(seed, epoch, n)``, the order of a single-process run) is
  padded by wrap-around to a multiple of the world size and dealt out rank by rank, as
  :class:`torch.utils.data.DistributedSampler` does (:func:`shard_indices`);
- the epoch's training means are all-reduced (weighted by samples) before they enter the history,
  and a cancel on any rank stops every rank at the same step;
- only rank 0 writes checkpoints, logs and progress (the command line's job: :attr:`DistContext.is_writer`).

:meth:`DistContext.close` destroys the process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from studio.backend.core.errors import DeviceUnavailableError, RuntimeConfigError
from studio.backend.core.requests import RuntimeConfig

__all__ = ["DistContext", "init_distributed", "current", "shard_indices", "launched_by_torchrun", "ENV_KEYS"]

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")

_current: DistContext | None = None


def launched_by_torchrun() -> bool:
    """True when ``torchrun`` (or another launcher that sets its variables) started this process."""
    return all(k in os.environ for k in ENV_KEYS)


def current() -> DistContext | None:
    """The context :func:`init_distributed` set up, or None in a single-process run."""
    return _current


def shard_indices(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of ``order``: padded by wrap-around to a multiple of ``world_size``,
    then every ``world_size``-th index from position ``rank`` (as ``DistributedSampler``).

    The shards have equal length ``ceil(n / world_size)``, together cover ``order``, and overlap only
    in the padding; at each position the ranks hold consecutive entries of ``order``, so step k of
    all ranks together sees the same samples as ``world_size`` consecutive batches of one process.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    n = len(order)
    total = -(-n // world_size) * world_size
    if total > n:
        repeats = -(-(total - n) // n)
        order = torch.cat([order, order.repeat(repeats)[: total - n]])
    return order[rank:total:world_size]


@dataclass
class DistContext:
    """This process's place in the group and the few collective operations the trainer needs."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes checkpoints, logs and progress."""
        return self.rank == 0

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def shard_size(self, n: int) -> int:
        return -(-n // self.world_size)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        return shard_indices(order, self.rank, self.world_size)

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in DistributedDataParallel (which also makes every rank start from rank 0's weights)."""
        if not any(p.requires_grad for p in model.parameters()):
            return model
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)

    def reduce_means(self, means: dict[str, float], count: int) -> dict[str, float]:
        """Means over all ranks' samples, from each rank's means over its ``count`` samples."""
        keys = list(means)  # the same order on every rank: the trainer fills it the same way
        values = [float(means[k]) * count for k in keys] + [float(count)]
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        total = float(t[-1].item())
        if total <= 0:
            return dict(means)
        return {k: float(t[i].item()) / total for i, k in enumerate(keys)}

    def agree(self, go_on: bool) -> bool:
        """True only when every rank wants to go on (a cancel on one rank stops all at the same step)."""
        t = torch.tensor([0 if go_on else 1], dtype=torch.int32, device=self._comm_device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item()) == 0

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def close(self) -> None:
        """Leave the group (every rank calls it once at the end)."""
        global _current
        if dist.is_initialized():
            dist.destroy_process_group()
        if _current is self:
            _current = None


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise RuntimeConfigError(f"The environment variable {name}={value!r} set by torchrun is not a number.",
                                 code="runtime.invalid", field=name, value=value) from None


def init_distributed(runtime: RuntimeConfig | None = None) -> DistContext | None:
    """Join the process group torchrun prepared; None outside torchrun or with a single process.

    The device follows ``runtime.device``: ``cpu`` trains on CPU with gloo; ``auto`` or ``cuda``
    trains on ``cuda:LOCAL_RANK`` with NCCL when CUDA is available (else on CPU with gloo).
    """
    global _current
    if _current is not None:
        return _current
    if not launched_by_torchrun():
        return None
    rank, world, local_rank = (_env_int(k) for k in ENV_KEYS)
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise RuntimeConfigError(f"RANK={rank} is outside WORLD_SIZE={world}.", field="RANK", value=rank)
    requested = (runtime.device if runtime is not None else "auto").strip().lower()
    if requested == "mps" or requested.startswith("mps:"):
        raise DeviceUnavailableError("DistributedDataParallel does not run on Apple's MPS device.", field="device",
                                     value=requested, hint="Use --device cpu under torchrun on a Mac.")
    wants_cuda = requested == "auto" or requested.startswith("cuda")
    if wants_cuda and torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}.",
                field="device", value=requested, hint="Start at most one process per GPU (--nproc_per_node).")
        device, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(device)
    elif requested.startswith("cuda"):
        raise DeviceUnavailableError(f"The device {requested!r} is not available on this machine.", field="device",
                                     value=requested, hint="Use --device cpu (gloo) or run on a machine with GPUs.")
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    _current = DistContext(rank=rank, world_size=world, local_rank=local_rank, backend=backend, device=device)
    return _current
