"""The model factory: a U-Net with as many outputs as the label set has classes."""

import torch

import bench


def test_build_model_has_one_output_per_class():
    tiny = bench.protocols.get("tiny")
    x = torch.zeros(1, 1, tiny.image_size, tiny.image_size)
    assert bench.build_model(tiny)(x).shape[1] == bench.NUM_CLASSES == 4
    assert bench.build_model(tiny, num_classes=6)(x).shape == (1, 6, tiny.image_size, tiny.image_size)
