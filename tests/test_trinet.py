"""TriNet: the pixel selection rule, the ramp, the masked objective and the trainer against hand-made and brute-force truth."""

import copy
import dataclasses
import math

import pytest
import torch
from hand_trials import batch_of, random_block_trial

import bench
from bench.plugins import plugin_module

TRINET = plugin_module("methods", "trinet")


def make_trial(n: int = 6, size: int = 32, seed: int = 0, protocol: bench.Protocol | None = None) -> bench.Trial:
    """A random blocky trial of its own data (generator seed 321)."""
    return random_block_trial(n, size, seed, protocol, data_seed=321)


def no_lr(**changes) -> bench.Protocol:
    """tiny at 32 px with lr 0 and no weight decay: a step leaves the weights and keeps each network's gradient in .grad."""
    return dataclasses.replace(bench.protocols.get("tiny"), image_size=32, lr=0.0, weight_decay=0.0, **changes)


def grads(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in net.parameters()]


# ---------------------------------------------------------------- the selection rule


def test_pixel_masks_hand_computed():
    """One sample of 2 x 3 pixels, remember 0.5: rank 0.5 x 5 = 2.5, so each network keeps its 3 smallest losses."""
    l1 = torch.tensor([[[0.1, 0.5, 0.9], [0.3, 0.7, 0.2]]])  # threshold (0.3 + 0.5) / 2 = 0.4
    l2 = torch.tensor([[[0.6, 0.1, 0.2], [0.9, 0.8, 0.15]]])  # threshold (0.2 + 0.6) / 2 = 0.4
    l3 = torch.tensor([[[0.2, 0.4, 0.1], [0.5, 0.9, 0.3]]])  # threshold (0.3 + 0.4) / 2 = 0.35
    own = [TRINET.small_loss_pixels(loss, torch.tensor([True]), 0.5) for loss in (l1, l2, l3)]
    assert own[0].int().tolist() == [[[1, 0, 0], [1, 0, 1]]]
    assert own[1].int().tolist() == [[[0, 1, 1], [0, 0, 1]]]
    assert own[2].int().tolist() == [[[1, 0, 1], [0, 0, 1]]]
    train = TRINET.peer_masks(own)
    assert train[0].int().tolist() == [[[0, 0, 1], [0, 0, 1]]]  # net 1: small-loss for both 2 and 3
    assert train[1].int().tolist() == [[[1, 0, 0], [0, 0, 1]]]  # net 2: for 1 and 3
    assert train[2].int().tolist() == [[[0, 0, 0], [0, 0, 1]]]  # net 3: for 1 and 2


def test_quantile_threshold_is_strict_and_ratio_one_keeps_everything():
    """1 x 5 losses 0.5 0.1 0.4 0.2 0.3 (sorted 0.1 .. 0.5): rank q x 4; an integer rank's own value is NOT kept."""
    loss = torch.tensor([[[0.5, 0.1, 0.4, 0.2, 0.3]]], dtype=torch.float64)
    keep = lambda q: TRINET.small_loss_pixels(loss, torch.tensor([True]), q)[0, 0].int().tolist()  # noqa: E731
    assert keep(0.75) == [0, 1, 0, 1, 1]  # rank 3: threshold 0.4 itself, strictly below: 3 pixels
    assert keep(0.5) == [0, 1, 0, 1, 0]  # rank 2: threshold 0.3: 2 pixels
    assert keep(0.6) == [0, 1, 0, 1, 1]  # rank 2.4: threshold 0.34: 3 pixels
    assert keep(1.0) == [1, 1, 1, 1, 1]  # the deviation: PyMIC's `loss < max` would drop 0.5


def test_zero_weight_pixels_never_selected_nor_in_the_quantile():
    """With B's zeros in the pool (6 pixels, rank 2.5) the threshold would be 0.05; over A alone (rank 1) it is 0.5."""
    loss = torch.tensor([[[0.1, 0.5, 0.9]], [[0.0, 0.0, 0.0]]])
    mask = TRINET.small_loss_pixels(loss, torch.tensor([True, False]), 0.5)
    assert mask.int().tolist() == [[[1, 0, 0]], [[0, 0, 0]]]
    assert not TRINET.small_loss_pixels(loss, torch.tensor([False, False]), 0.5).any()


def test_selection_equals_the_quantile_definition_on_random_batches():
    """Mask = loss < v[lo] + (r - lo)(v[lo + 1] - v[lo]), v the batch's pixel losses sorted, r = q (P - 1), lo = floor(r)."""
    g = torch.Generator().manual_seed(0)
    for trial in range(100):
        b, h = int(torch.randint(1, 5, (1,), generator=g)), int(torch.randint(1, 7, (1,), generator=g))
        loss = (torch.rand(b, h, h + 1, generator=g) * 4).round(decimals=1)  # rounding makes ties
        q = float(torch.rand(1, generator=g)) * 0.999
        v = sorted(loss.flatten().double().tolist())
        r = q * (len(v) - 1)
        lo = math.floor(r)
        threshold = v[lo] + (r - lo) * (v[min(lo + 1, len(v) - 1)] - v[lo])
        got = TRINET.small_loss_pixels(loss, torch.ones(b, dtype=torch.bool), q)
        assert got.tolist() == (loss.double() < threshold).tolist(), trial


def test_selection_loss_is_pymic_smoothed_cross_entropy():
    logits = torch.tensor([[[[2.0]], [[0.0]], [[-1.0]], [[0.5]]]])  # one pixel, four classes
    p = torch.softmax(logits[0, :, 0, 0], 0)
    for label in range(4):
        got = TRINET.selection_loss(logits, torch.tensor([[[label]]]))
        assert got.item() == pytest.approx(-math.log(0.999 * p[label].item() + 5e-4), rel=1e-6)


# ---------------------------------------------------------------- the ramp


def test_remember_ratio_follows_pymic_linear_ramp():
    """Defaults 0.9, 0.1, 0.8: remember = 1 - 0.1 x clip((e / E - 0.1) / 0.7, 0, 1)."""
    t = bench.trainers.get("trinet")()
    assert [t.remember_ratio(e, 50) for e in (0, 3, 5)] == [1.0, 1.0, 1.0]  # before 10% of training
    assert t.remember_ratio(12, 50) == pytest.approx(1 - 0.1 * (0.24 - 0.1) / 0.7)  # 0.98
    assert t.remember_ratio(26, 50) == pytest.approx(0.94)  # progress 0.52: rampup 0.6
    assert [t.remember_ratio(e, 50) for e in (40, 49)] == [pytest.approx(0.9)] * 2  # from 80% on
    assert t.remember_ratio(1, 2) == pytest.approx(1 - 0.1 * 0.4 / 0.7)  # tiny's second epoch
    step = bench.trainers.get("trinet")(select_ratio=0.7, rampup_start=0.0, rampup_end=0.0)
    assert step.remember_ratio(0, 8) == pytest.approx(0.7)  # start = end: the full ratio at once
    with pytest.raises(ValueError):
        bench.trainers.get("trinet")(rampup_start=0.5, rampup_end=0.2)


# ---------------------------------------------------------------- the masked objective


def brute_objective(logits, y, w, mask, dice_weight):
    """The definition, loop by loop, in float64: pooled weighted CE over selected pixels + dice_weight x weighted (1 - Dice)."""
    b, c, h, wd = logits.shape
    num = den = 0.0
    dice_losses = []
    for i in range(b):
        inter, sums = [0.0] * c, [0.0] * c
        for r in range(h):
            for s in range(wd):
                if not mask[i, r, s]:
                    continue
                z = logits[i, :, r, s].tolist()
                m = max(z)
                lse = m + math.log(sum(math.exp(v - m) for v in z))
                num += w[i] * (lse - z[y[i, r, s]])
                den += w[i]
                for k in range(1, c):
                    p = math.exp(z[k] - lse)
                    t = 1.0 if y[i, r, s] == k else 0.0
                    inter[k] += p * t
                    sums[k] += p + t
        dice_losses.append(1 - sum((2 * inter[k] + 1) / (sums[k] + 1) for k in range(1, c)) / (c - 1))
    return num / den + dice_weight * sum(w[i] * dice_losses[i] for i in range(b)) / sum(w)


def test_masked_objective_matches_its_definition_and_reduces_to_the_protocol_loss():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 4, 4, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 4, 5), generator=g)
    w = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    mask = torch.rand(3, 4, 5, generator=g) > 0.4
    for dice_weight in (0.0, 1.0, 0.5):
        got = TRINET.masked_objective(logits, y, w, mask, dice_weight).item()
        assert got == pytest.approx(brute_objective(logits, y, w.tolist(), mask, dice_weight), rel=1e-12)
        full = TRINET.masked_objective(logits, y, w, torch.ones_like(mask), dice_weight).item()
        expect = ((bench.per_sample_loss(logits, y, dice_weight) * w).sum() / w.sum()).item()
        assert full == pytest.approx(expect, rel=1e-12)
    assert TRINET.masked_objective(logits, y, w, torch.zeros_like(mask), 1.0) is None
    assert TRINET.masked_objective(logits, y, torch.zeros_like(w), mask, 1.0) is None


# ---------------------------------------------------------------- the trainer


def test_three_networks_differ_are_deterministic_and_leave_the_rng_alone():
    def setup(trainer_cls, seed=0):
        trial = make_trial(seed=seed)
        torch.manual_seed(7)
        trainer = trainer_cls()
        model = trainer.setup(trial)
        return trainer, model, torch.rand(3)

    cls = bench.trainers.get("trinet")
    (t1, m1, after1), (t2, _, after2) = setup(cls), setup(cls)
    _, m_std, after_std = setup(bench.trainers.get("standard"))
    first = [next(net.parameters()) for net in t1.nets]
    assert len(t1.nets) == 3 and isinstance(m1, TRINET.MeanLogits) and list(m1.nets) == t1.nets
    assert not any(torch.equal(first[i], first[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    for a, b in zip(t1.nets, t2.nets, strict=True):
        assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert all(torch.equal(p, q) for p, q in zip(t1.nets[0].state_dict().values(), m_std.state_dict().values(), strict=True))
    assert torch.equal(after1, after2) and torch.equal(after1, after_std)  # the trial's RNG stream is unchanged
    other, _, _ = setup(cls, seed=1)  # a neighbouring seed shares no network
    firsts = [*first, *(next(net.parameters()) for net in other.nets[1:])]
    assert not any(torch.equal(firsts[i], firsts[j]) for i in range(5) for j in range(i + 1, 5))


def test_each_network_is_trained_on_its_peers_pixels():
    """lr 0: each net's gradient is that of the masked objective over the AND of the OTHER two nets' PyMIC masks."""
    protocol = no_lr()
    trial = make_trial(n=4, protocol=protocol)
    torch.manual_seed(3)
    trainer = bench.trainers.get("trinet")(select_ratio=0.7, rampup_start=0.0, rampup_end=0.0)
    model = trainer.setup(trial)
    w = torch.tensor([1.0, 2.0, 0.0, 1.0])
    batch = batch_of(trial, w)
    x, y = batch.x, batch.y
    step = trainer.step(trial, batch)
    got = [grads(net) for net in trainer.nets]
    outs = [net(x) for net in trainer.nets]  # lr 0: the same weights, the same training-mode outputs
    own = []
    for out in outs:
        loss = -torch.log(torch.softmax(out, 1).gather(1, y.unsqueeze(1)).squeeze(1) * 0.999 + 5e-4).detach()
        own.append((loss < torch.quantile(loss[w > 0].flatten(), 0.7)) & (w > 0).view(-1, 1, 1))
    peers = [own[1] & own[2], own[0] & own[2], own[0] & own[1]]
    for k, net in enumerate(trainer.nets):
        for mask, expect_equal in ((peers[k], True), (own[k], False)):
            net.zero_grad()
            TRINET.masked_objective(net(x), y, w, mask, protocol.dice_weight).backward()
            same = all(torch.allclose(a, p.grad, rtol=1e-4, atol=1e-7) for a, p in zip(got[k], net.parameters(), strict=True))
            assert same == expect_equal, (k, expect_equal)
    mean = sum(o.detach() for o in outs) / 3
    assert torch.allclose(step.logits, mean, atol=1e-6)
    assert torch.allclose(step.losses, bench.per_sample_loss(mean, y, protocol.dice_weight), atol=1e-6)
    share = torch.stack(peers).flatten(2).double().mean(2).mean(0)
    assert math.isnan(step.selected[2]) and torch.allclose(step.selected[[0, 1, 3]], share[[0, 1, 3]])
    with torch.no_grad():
        model.eval()
        assert torch.allclose(trial.predict(x, model), torch.softmax(sum(net(x) for net in trainer.nets) / 3, 1), atol=1e-6)


def test_a_zero_weight_sample_changes_no_networks_gradient():
    """Sample 1 has weight 0: whatever its label, every network's gradient is the same (selection active, lr 0)."""
    trial = make_trial(n=4, protocol=no_lr())
    w = torch.tensor([1.0, 0.0, 1.0, 1.0])
    g = torch.Generator().manual_seed(5)
    results = []
    for labels_of_1 in (trial.label_tensor([1]), torch.randint(0, 4, (1, 32, 32), generator=g), torch.zeros(1, 32, 32, dtype=torch.long)):
        y = trial.label_tensor()
        y[1] = labels_of_1[0]
        torch.manual_seed(3)
        trainer = bench.trainers.get("trinet")(select_ratio=0.6, rampup_start=0.0, rampup_end=0.0)
        trainer.setup(trial)
        step = trainer.step(trial, batch_of(trial, w, y))
        assert math.isnan(step.selected[1])
        results.append([grads(net) for net in trainer.nets])
    for other in results[1:]:
        for a_net, b_net in zip(results[0], other, strict=True):
            assert all(torch.equal(a, b) for a, b in zip(a_net, b_net, strict=True))
    assert any(g.abs().sum() > 0 for g in results[0][0])  # the networks did get a gradient


def test_ratio_one_is_three_standard_networks():
    """select_ratio 1: every network follows the standard trainer from its own start, step for step (float64, weights 0/1/2)."""
    protocol = dataclasses.replace(bench.protocols.get("tiny"), image_size=32)
    trial = make_trial(n=5, protocol=protocol)
    torch.manual_seed(3)
    trainer = bench.trainers.get("trinet")(select_ratio=1.0)
    trainer.setup(trial)
    for net in trainer.nets:
        net.double()  # in place: the optimisers hold the same parameters
    start_1 = copy.deepcopy(trainer.nets[0].state_dict())
    standards = []
    for net in trainer.nets:
        std = bench.trainers.get("standard")()
        std.setup(trial)
        std.model.double().load_state_dict(copy.deepcopy(net.state_dict()))
        standards.append(std)
    images = trial.images.double()
    weights = (torch.tensor([1.0, 2.0, 0.0, 1.0, 1.0]), torch.tensor([0.0, 1.0, 1.0, 1.0, 2.0]))
    for w in (*weights, torch.ones(5)):
        batch = bench.Batch(torch.arange(5), images, trial.label_tensor(), w.double())
        step = trainer.step(trial, batch)
        assert step.selected is None  # everything selected: nothing to report
        for std in standards:
            std.step(trial, batch)
    for net, std in zip(trainer.nets, standards, strict=True):
        for a, b in zip(net.state_dict().values(), std.model.state_dict().values(), strict=True):
            assert torch.allclose(a.double(), b.double(), rtol=1e-9, atol=1e-10)  # Adam turns float64 noise in ~0 gradients into ~1e-12
    assert any(not torch.equal(a, b) for a, b in zip(start_1.values(), trainer.nets[0].state_dict().values(), strict=True))


def test_recipe_names_pymic_defaults():
    recipe = bench.methods.get("trinet")
    assert recipe.trainer == "trinet" and recipe.detector is None and recipe.detect_at == 1.0
    assert recipe.trainer_params == {"select_ratio": 0.9, "rampup_start": 0.1, "rampup_end": 0.8, "loss": "protocol"}
