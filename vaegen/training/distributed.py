"""The device and the torchrun job a training process runs in.

Without torchrun (WORLD_SIZE unset or 1) every helper here is a no-op for
process 0 of 1, so the loop has one code path. Under torchrun the processes
join a process group (gloo on CPU, nccl on CUDA), each takes its share of an
epoch's images, and at the end they check that their parameters agree.
Imports torch only.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vaegen.errors import TrainingError


@dataclass(frozen=True)
class Distributed:
    """Where this process sits in a torchrun job (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def cuda_chosen(name: str) -> bool:
    """Whether --device NAME trains on CUDA (auto: when torch sees a GPU)."""
    return name == "cuda" or (name == "auto" and torch.cuda.is_available())


def is_main_process() -> bool:
    """Whether this process writes the run's files: rank 0 of a torchrun job, or a process on its own."""
    return int(os.environ.get("RANK", "0")) == 0


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda was asked for, but torch sees no CUDA GPU; use --device cpu.")
    return torch.device("cuda" if cuda_chosen(name) else "cpu")


def init_distributed(device_name: str) -> tuple[Distributed, torch.device]:
    """Join the torchrun job when WORLD_SIZE > 1: gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world <= 1:
        return Distributed(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world, local_rank), device


@contextmanager
def main_first(ddp: Distributed) -> Iterator[None]:
    """Run the body on rank 0 before the others (it downloads the data they then read)."""
    if not ddp.is_main:
        dist.barrier()
    yield
    if ddp.is_main and ddp.world > 1:
        dist.barrier()


def wrap_model(model: torch.nn.Module, ddp: Distributed, device: torch.device) -> torch.nn.Module:
    """The module the forward pass goes through: DistributedDataParallel under torchrun, else `model`."""
    if ddp.world == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def shard_order(ddp: Distributed, n: int, seed: int, epoch: int) -> torch.Tensor:
    """This rank's share of an epoch's shuffled image indices."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=ddp.world, rank=ddp.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler))


def mean_over_ranks(ddp: Distributed, sums: torch.Tensor) -> torch.Tensor:
    """The mean of each rank's `sums`, in place (float64: gloo and nccl both reduce it on their device)."""
    if ddp.world > 1:
        dist.all_reduce(sums)
        sums /= ddp.world
    return sums


def gather_states(ddp: Distributed, state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's `state` (a generator state), in rank order; [state] on one process."""
    if ddp.world == 1:
        return [state]
    states = [None] * ddp.world
    dist.all_gather_object(states, state.cpu())
    return states


def check_ranks_agree(model: torch.nn.Module, ddp: Distributed) -> str:
    """DDP keeps replicas identical; verify it rather than trust it. Returns the parameters' sha256."""
    flat = torch.cat([p.detach().float().reshape(-1).cpu() for p in model.parameters()])
    digest = hashlib.sha256(flat.numpy().tobytes()).hexdigest()
    digests = [None] * ddp.world
    dist.all_gather_object(digests, digest)
    if len(set(digests)) != 1:
        raise TrainingError(f"The {ddp.world} processes ended with different parameters; the run is not trustworthy.")
    return digest
