"""The protocol's segmentation model: a U-Net from segmentation-models-pytorch, never pretrained."""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch

from bench.data import STRUCTURES
from bench.protocols import Protocol

NUM_CLASSES = len(STRUCTURES) + 1


def build_model(protocol: Protocol, device: torch.device | str = "cpu") -> torch.nn.Module:
    """A fresh U-Net for `protocol` (1-channel input, background + 3 structures, no weight download) on `device`.

    Weights are drawn on the CPU whatever the device, so a seed gives the same initial network everywhere.
    """
    return smp.Unet(
        encoder_name=protocol.encoder,
        encoder_weights=None,
        encoder_depth=protocol.encoder_depth,
        decoder_channels=protocol.decoder_channels,
        in_channels=1,
        classes=NUM_CLASSES,
    ).to(device)
