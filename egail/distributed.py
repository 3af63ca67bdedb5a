"""Keeping the discriminator identical on every process: the collectives GAILTrainer needs beside accelerate's.

accelerate wraps the policy (DDP, DeepSpeed, FSDP); the discriminator is trained outside it, so its gradients are
averaged, its start broadcast and its skip decisions agreed here. Every function is a no-op on one process.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from torch import nn


def finite_on_every_rank(accelerator: Accelerator, loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on *every* process: all take a step, or none does (a lone skip would hang)."""
    finite = torch.tensor([float(torch.isfinite(loss).all())], device=accelerator.device)
    if accelerator.num_processes > 1:
        torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
    return bool(finite.item())


def average_gradients(accelerator: Accelerator, module: nn.Module) -> None:
    """Average ``module``'s gradients over processes (one flat all-reduce), so every copy takes the same step."""
    if accelerator.num_processes == 1:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
    flat /= accelerator.num_processes
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(accelerator: Accelerator, module: nn.Module) -> None:
    """Give every process process 0's weights of ``module``."""
    if accelerator.num_processes > 1:
        for tensor in module.state_dict().values():
            torch.distributed.broadcast(tensor, src=0)


def mean_over_ranks(accelerator: Accelerator, value: float) -> float:
    """The mean of a per-process number over processes (NaN-aware), for logging."""
    tensor = torch.tensor([value], dtype=torch.float32, device=accelerator.device)
    return accelerator.gather(tensor).nanmean().item()
