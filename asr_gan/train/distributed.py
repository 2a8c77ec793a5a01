"""Multi-process training launched by `torchrun`: process group set-up and gradient averaging.

The GAN alternates updates of different networks and calls the discriminator several times before one
backward pass (fake, real, gradient penalty), which DistributedDataParallel's reducer does not allow. So the
processes keep identical weights the plain way: the same initialisation (rank 0's weights are broadcast
once), then after every backward pass the gradients are averaged with one all-reduce of a flat buffer.
NCCL on GPUs, gloo on CPUs (what the tests use).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistributedContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); a no-op otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_parameters(module: torch.nn.Module, context: DistributedContext) -> None:
    """Give every process rank 0's parameters and buffers."""
    if not context.enabled:
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=0)


def average_gradients(parameters: list[torch.nn.Parameter], context: DistributedContext) -> None:
    """Average the gradients of `parameters` over all processes (one flat all-reduce)."""
    if not context.enabled:
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= context.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()


def shutdown(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
