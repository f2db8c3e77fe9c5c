"""The protocol's segmentation model: a U-Net from segmentation-models-pytorch, never pretrained."""

from __future__ import annotations

import torch

from bench.labelset import CAMUS_LABELS
from bench.protocols import Protocol

#: CAMUS's classes: background + 3 structures (the default of `build_model`)
NUM_CLASSES = CAMUS_LABELS.num_classes


def build_model(protocol: Protocol, device: torch.device | str = "cpu", num_classes: int = NUM_CLASSES) -> torch.nn.Module:
    """A fresh U-Net for `protocol` (1-channel input, `num_classes` outputs: `Data.label_set.num_classes`, no weight download) on `device`.

    Weights are drawn on the CPU whatever the device, so a seed gives the same initial network everywhere.
    """
    import segmentation_models_pytorch as smp  # here, not at the top: it pulls in timm and torchvision

    net = smp.Unet(
        encoder_name=protocol.encoder,
        encoder_weights=None,
        encoder_depth=protocol.encoder_depth,
        decoder_channels=protocol.decoder_channels,
        in_channels=1,
        classes=num_classes,
    )
    if protocol.channels_last:
        return ChannelsLast(net).to(device)
    return net.to(device)


class ChannelsLast(torch.nn.Module):
    """`net` with its weights and every input in channels-last memory format (`Protocol.channels_last`): the layout
    oneDNN's CPU convolutions run fastest on. Same function as `net`; other last bits than the contiguous layout."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))
