"""A trial's compute work in multiply-accumulates (MACs) of its convolutions and linear layers, forward and backward.

CPU seconds, the board's cost so far, grow with whatever else shares the machine (on the v4 board `baseline`
read a fifth dearer than recipes that train exactly as it does, leaderboard/README.md) and differ between
machine kinds. MACs count what a method computes: the same on any machine, bit for bit, and what papers
report as FLOPs (2 FLOPs per MAC). They leave out element-wise layers (normalisation, activations,
resampling: a few percent of a U-Net's arithmetic) and any work outside the network (a detector's
bookkeeping, connected components), which only seconds see.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Work:
    """MACs counted while a `count_work` block was open: forward passes, and backward passes (gradients of inputs and of
    weights, each as many MACs as the layer's forward)."""

    forward_macs: int = 0
    backward_macs: int = 0


_ACTIVE: list[Work] = []
_HANDLE: Any = None


def layer_macs(module: torch.nn.Module, x: torch.Tensor, output: torch.Tensor) -> int:
    """MACs of one forward call of a convolution or linear layer on input `x` (0 for any other module): each output element
    of a convolution sums in_channels / groups x kernel size products; a transposed one spreads each input element over
    out_channels / groups x kernel size outputs; a linear layer's output element sums in_features products."""
    if isinstance(module, torch.nn.modules.conv._ConvTransposeNd):
        return x.numel() * module.out_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        return output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)
    if isinstance(module, torch.nn.Linear):
        return output.numel() * module.in_features
    return 0


def _count(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
    x = args[0] if args else kwargs.get("input")
    if not (isinstance(x, torch.Tensor) and isinstance(output, torch.Tensor)):
        return
    macs = layer_macs(module, x, output)
    if not macs:
        return
    counters = tuple(_ACTIVE)
    for work in counters:
        work.forward_macs += macs
    if output.requires_grad:
        # the backward pass computes the gradient of each input and parameter that needs one, each as costly as the forward
        grads = int(x.requires_grad) + int(any(p.requires_grad for p in module.parameters(recurse=False)))

        def backward(_grad: torch.Tensor) -> None:
            for work in counters:
                work.backward_macs += macs * grads

        output.register_hook(backward)


@contextmanager
def count_work() -> Iterator[Work]:
    """Count the MACs of every convolution and linear layer that runs in this process while the block is open (nested
    blocks each count everything inside them); the values only read shapes, so no number a model computes changes."""
    global _HANDLE
    work = Work()
    if not _ACTIVE:
        _HANDLE = torch.nn.modules.module.register_module_forward_hook(_count, with_kwargs=True)
    _ACTIVE.append(work)
    try:
        yield work
    finally:
        _ACTIVE.remove(work)
        if not _ACTIVE:
            _HANDLE.remove()
            _HANDLE = None
