"""The training settings protocols gained after v1: versions side by side, the poly schedule, seeded augmentation, channels-last."""

import dataclasses
import math

import numpy as np
import pytest
import torch

import bench
from bench import augment
from bench.errors import BenchError
from bench.model import ChannelsLast, build_model
from bench.protocols import ProtocolRegistry
from bench.training import lr_factor, lr_schedulers

TINY = bench.protocols.get("tiny")


def test_every_version_of_a_protocol_stays_registered():
    reg = ProtocolRegistry()
    one, two = TINY, dataclasses.replace(TINY, version=2, epochs=3)
    reg.register("tiny", two)
    reg.register("tiny", one)  # an older version registered later is kept, not promoted
    assert reg.get("tiny") is two and reg.get("tiny@v1") is one and reg.get("tiny@1") is one and reg.get("tiny@v2") is two
    assert [p.version for p in reg.versions("tiny")] == [1, 2] and reg.names() == ["tiny"]
    with pytest.raises(BenchError, match=r"protocol tiny has no version 3 \(registered: v1, v2"):
        reg.get("tiny@v3")
    with pytest.raises(BenchError, match="write a version as tiny@v<number>"):
        reg.get("tiny@latest")
    with pytest.raises(ValueError, match="tiny v2 is already registered"):
        reg.register("tiny", dataclasses.replace(two, epochs=9))


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
def test_poly_schedule_is_nnunets_formula_and_the_loop_applies_it_to_every_optimiser():
    assert lr_factor("constant", 7, 10) == 1.0
    assert [lr_factor("poly", e, 4) for e in range(4)] == [1.0, 0.75**0.9, 0.5**0.9, 0.25**0.9]
    with pytest.raises(ValueError, match="lr_schedule"):
        lr_factor("cosine", 0, 4)
    protocol = dataclasses.replace(TINY, epochs=4, lr_schedule="poly", lr=0.01)
    trainer = bench.trainers.get("coteaching")()  # it holds its two optimisers in a tuple
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    trainer.optimizers = (torch.optim.Adam(a.parameters(), lr=0.01), torch.optim.Adam(b.parameters(), lr=0.02))
    schedulers = lr_schedulers(trainer, protocol)
    assert len(schedulers) == 2 and trainer.scheduled_optimizers() == list(trainer.optimizers)
    seen = []
    for _ in range(4):
        seen.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])
        for s in schedulers:
            s.step()
    for e, (a, b) in enumerate(seen):
        assert math.isclose(a, 0.01 * (1 - e / 4) ** 0.9) and math.isclose(b, 0.02 * (1 - e / 4) ** 0.9)
    assert lr_schedulers(trainer, TINY) == []  # constant: no scheduler, nothing changes (the v1 protocols)


def test_augmentation_parameters_depend_only_on_seed_and_epoch():
    a, b = augment.draw("light", 3, 5, 40), augment.draw("light", 3, 5, 40)
    assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("rotation", "log_scale", "shift_x", "shift_y", "log_gamma"))
    c = augment.draw("light", 3, 6, 40)
    assert not torch.equal(a.rotation, c.rotation)
    assert a.rotation.abs().max() <= math.radians(10) and a.log_gamma.abs().max() <= 0.2
    assert augment.draw("none", 3, 5, 40) is None
    with pytest.raises(ValueError, match="augment must be"):
        augment.draw("heavy", 0, 0, 1)


def _params(n, rotation=0.0, scale=1.0, dx=0.0, dy=0.0, gamma=1.0):
    full = lambda v: torch.full((n,), float(v), dtype=torch.float64)  # noqa: E731
    return augment.Augmentation(full(rotation), full(math.log(scale)), full(dx), full(dy), full(math.log(gamma)))


def test_the_identity_and_a_gamma_change_by_hand():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((2, 1, 8, 6))).float()
    labels = torch.from_numpy(rng.integers(0, 4, (2, 8, 6)))
    x, y = augment.apply(images, labels, _params(2))
    assert torch.allclose(x, images, atol=1e-6) and torch.equal(y, labels)
    x, _ = augment.apply(images, labels, _params(2, gamma=2.0))
    assert torch.allclose(x, images**2, atol=1e-6)


def test_a_quarter_turn_and_a_whole_pixel_shift_move_image_and_label_together():
    rng = np.random.default_rng(1)
    labels = torch.from_numpy(rng.integers(0, 4, (1, 6, 6)))
    images = labels.unsqueeze(1).float() / 3
    x, y = augment.apply(images, labels, _params(1, rotation=math.pi / 2))
    assert torch.equal(y, torch.rot90(labels, 1, (1, 2))) or torch.equal(y, torch.rot90(labels, -1, (1, 2)))
    assert torch.allclose(x.squeeze(1) * 3, y.float(), atol=1e-5)  # the image pixel under each label pixel moved with it
    # output point p samples input point p + t: a shift of 2 pixels (t = 2 x 2 / W) moves the content 2 pixels left
    _, y = augment.apply(images, labels, _params(1, dx=2 * 2 / 6))
    assert torch.equal(y[0, :, :4], labels[0, :, 2:]) and (y[0, :, 4:] == 0).all()


def test_a_sample_is_augmented_the_same_in_any_batch():
    rng = np.random.default_rng(2)
    images = torch.from_numpy(rng.random((6, 1, 16, 16))).float()
    labels = torch.from_numpy(rng.integers(0, 4, (6, 16, 16)))
    params = augment.draw("light", 0, 0, 6)
    whole = augment.apply(images, labels, params)
    index = torch.tensor([4, 1])
    part = augment.apply(images[index], labels[index], params[index])
    assert torch.equal(part[0], whole[0][index]) and torch.equal(part[1], whole[1][index])
    assert set(torch.unique(whole[1]).tolist()) <= set(torch.unique(labels).tolist())  # nearest: no new label value


def test_channels_last_computes_the_same_function():
    torch.manual_seed(0)
    net = build_model(TINY)
    torch.manual_seed(0)
    wrapped = build_model(dataclasses.replace(TINY, channels_last=True))
    assert isinstance(wrapped, ChannelsLast)
    x = torch.rand(2, 1, 64, 64)
    net.eval(), wrapped.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), wrapped(x), atol=1e-4)


def test_a_v2_training_trial_is_deterministic_and_different_from_v1():
    v2 = dataclasses.replace(TINY, lr_schedule="poly", augment="light", channels_last=True)
    first, second = (bench.run_trial(v2, "baseline", "systematic:0.5", seed=0) for _ in range(2))
    assert first.metrics == second.metrics
    assert first.metrics != bench.run_trial(TINY, "baseline", "systematic:0.5", seed=0).metrics
