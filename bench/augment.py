"""Seeded training augmentation, identical for every method of a trial seed (`Protocol.augment`).

"light": per sample and epoch, a random affine map (rotation within +-10 degrees, isotropic
scale 0.9-1.1, translation within +-5% of the image side) applied to the image (bilinear)
and to its training label (nearest), outside the image filled with 0 (background, black),
then a gamma change of the intensities (gamma = exp(U(-0.2, 0.2)), about 0.82-1.22). These
are the spatial and intensity transforms of nnU-Net's default 2D pipeline at a fraction of
its ranges (rotation, scaling, gamma), kept light because echo views have a fixed apex-up
geometry and no mirror symmetry (no flips). What makes methods comparable: the parameters
come from a generator seeded by (trial seed, epoch) alone, drawn for every sample of the
training set at once and indexed by the sample's position, so every method sees exactly the
same augmented images in every epoch whatever its batches, losses or selections.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("none", "light")
#: "light" ranges: rotation (radians), log-scale, translation (fraction of the side), log-gamma
_ROTATION = math.radians(10.0)
_LOG_SCALE = math.log(1.1)
_SHIFT = 0.05
_LOG_GAMMA = 0.2


@dataclass(frozen=True)
class Augmentation:
    """Per-sample parameters of one epoch (each (N,)): rotation, log scale, shift x / y (grid units), log gamma."""

    rotation: torch.Tensor
    log_scale: torch.Tensor
    shift_x: torch.Tensor
    shift_y: torch.Tensor
    log_gamma: torch.Tensor

    def __getitem__(self, index: torch.Tensor) -> Augmentation:
        return Augmentation(*(getattr(self, f)[index] for f in ("rotation", "log_scale", "shift_x", "shift_y", "log_gamma")))


def draw(kind: str, seed: int, epoch: int, n: int) -> Augmentation | None:
    """The parameters of epoch `epoch` (0-based) for `n` samples, from a generator seeded by (seed, epoch) only."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, not {kind!r}")
    if kind == "none":
        return None
    generator = torch.Generator().manual_seed((int(seed) * 1_000_003 + 7919 * (int(epoch) + 1)) % (2**63))
    u = torch.rand(5, n, generator=generator, dtype=torch.float64) * 2 - 1  # U(-1, 1)
    return Augmentation(u[0] * _ROTATION, u[1] * _LOG_SCALE, u[2] * 2 * _SHIFT, u[3] * 2 * _SHIFT, u[4] * _LOG_GAMMA)


def apply(images: torch.Tensor, labels: torch.Tensor, params: Augmentation) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented images (B, 1, H, W) in [0, 1] and labels (B, H, W) int64: one affine map per sample, then gamma.

    The affine map sends output grid point p to input point A p + t (normalised coordinates,
    `align_corners=False`), A = rotation x scale, so a label pixel and the image pixel under it
    move together; labels are sampled nearest, so no new label value can appear.
    """
    cos, sin = torch.cos(params.rotation), torch.sin(params.rotation)
    scale = torch.exp(-params.log_scale)  # the map goes output -> input: zooming in by s samples 1 / s of the input
    theta = torch.stack(
        [
            torch.stack([cos * scale, -sin * scale, params.shift_x], 1),
            torch.stack([sin * scale, cos * scale, params.shift_y], 1),
        ],
        1,
    ).to(images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    moved_labels = F.grid_sample(labels.unsqueeze(1).to(images.dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    gamma = torch.exp(params.log_gamma).to(images.dtype).view(-1, 1, 1, 1)
    return moved.clamp(0.0, 1.0).pow(gamma), moved_labels.squeeze(1).round().long()
