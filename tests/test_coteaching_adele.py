"""Co-teaching and ADELE: selection, schedules, curve fit, start rule and correction rule against hand truth; small trials.

Detection numbers measured on the small protocol below (80 training images at 64 px,
8 epochs, seed 0) are in the notes of `test_small_protocol_*`.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
from hand_trials import batch_of, random_block_trial

import bench
from bench.plugins import plugin_module

SMALL = bench.protocols.get("small")  # 80 training images at 64 px, 8 epochs


COTEACHING = plugin_module("methods", "coteaching")
ADELE = plugin_module("methods", "adele")


make_trial = random_block_trial  # data drawn from generator seed 123


# ---------------------------------------------------------------- co-teaching


def brute_force_pick(losses: list[float], weights: list[float], forget_rate: float) -> set[int]:
    eligible = [i for i in range(len(losses)) if weights[i] > 0]
    keep = math.floor((1 - forget_rate) * len(eligible) + 1e-9)
    keep = min(len(eligible), max(keep, 1 if eligible else 0))
    return set(sorted(eligible, key=lambda i: (losses[i], i))[:keep])


def test_select_small_loss_matches_brute_force_sort():
    select = COTEACHING.select_small_loss
    rng = np.random.default_rng(0)
    for trial in range(200):
        b = int(rng.integers(1, 17))
        losses = rng.gamma(2.0, size=b).round(1)  # rounding makes ties
        weights = (rng.random(b) > 0.25).astype(np.float32) * rng.uniform(0.5, 2, size=b).astype(np.float32)
        rate = float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.8]))
        mask = select(torch.tensor(losses), torch.tensor(weights), rate)
        assert set(np.flatnonzero(mask.numpy())) == brute_force_pick(list(losses), list(weights), rate), trial


def test_a_huge_loss_is_never_selected_and_zero_weight_never():
    select = COTEACHING.select_small_loss
    losses = torch.tensor([0.3, 1e6, 0.2, 0.5, 0.1, 0.4, 0.05, 0.6])
    weights = torch.tensor([1, 1, 1, 1, 1, 1, 0, 1], dtype=torch.float32)
    for rate in (0.15, 0.3, 0.5):
        mask = select(losses, weights, rate)
        assert not mask[1] and not mask[6]
    assert select(losses, weights, 0.0).tolist() == [True, True, True, True, True, True, False, True]
    # 7 eligible, forget 0.3 -> keep floor(4.9) = 4 smallest eligible: 0.1, 0.2, 0.3, 0.4
    assert np.flatnonzero(select(losses, weights, 0.3).numpy()).tolist() == [0, 2, 4, 5]


def test_forget_rate_schedule_hand_computed():
    cls = bench.trainers.get("coteaching")
    t = cls(tau=0.3)  # 8 epochs -> ramp min(10, 4) = 4: linspace(0, 0.3, 4) then 0.3
    assert [round(t.forget_rate(e, 8), 10) for e in range(8)] == [0.0, 0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3]
    t30 = cls(tau=0.45)  # 30 epochs -> ramp 10: tau * e / 9
    assert t30.forget_rate(0, 30) == 0.0
    assert t30.forget_rate(3, 30) == pytest.approx(0.15)
    assert t30.forget_rate(9, 30) == pytest.approx(0.45)
    assert t30.forget_rate(20, 30) == pytest.approx(0.45)
    assert cls(tau=0.2, ramp_epochs=0).forget_rate(0, 8) == 0.2
    assert cls(tau=0.2, ramp_epochs=3).forget_rate(1, 100) == pytest.approx(0.1)


def test_two_net_initialisation_is_deterministic_and_leaves_the_rng_alone():
    cls = bench.trainers.get("coteaching")

    def setup(trainer_cls):
        trial = make_trial()
        torch.manual_seed(7)
        trainer = trainer_cls()
        model = trainer.setup(trial)
        return trainer, model, torch.rand(3)

    (t1, m1, after1), (t2, m2, after2) = setup(cls), setup(cls)
    _, m_std, after_std = setup(bench.trainers.get("standard"))
    for a, b in zip(t1.peer.state_dict().values(), t2.peer.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    for a, b, c in zip(m1.state_dict().values(), m2.state_dict().values(), m_std.state_dict().values(), strict=True):
        assert torch.equal(a, b) and torch.equal(a, c)  # network 1 = the standard trainer's model
    w1 = next(m1.parameters())
    assert not torch.equal(w1, next(t1.peer.parameters()))  # the two networks differ
    assert torch.equal(after1, after2) and torch.equal(after1, after_std)  # the trial's RNG stream is unchanged


def test_each_network_is_updated_on_its_peers_picks():
    """With lr = 0 the gradients stay in .grad: each net's gradient is that of its loss over the PEER's brute-force picks."""
    protocol = dataclasses.replace(bench.protocols.get("tiny"), lr=0.0, weight_decay=0.0)
    trial = make_trial(n=8, protocol=protocol)
    torch.manual_seed(3)
    trainer = bench.trainers.get("coteaching")(tau=0.5, ramp_epochs=0)
    model = trainer.setup(trial)
    w = torch.ones(8)
    batch = batch_of(trial, w)
    x, y = batch.x, batch.y
    step = trainer.step(trial, batch)
    nets = (model, trainer.peer)
    losses = [bench.per_sample_loss(net(x), y, protocol.dice_weight).detach() for net in nets]
    picks = [brute_force_pick(loss.tolist(), w.tolist(), 0.5) for loss in losses]
    assert len(picks[0]) == len(picks[1]) == 4 and picks[0] != picks[1]  # the check can tell own from peer
    for k, net in enumerate(nets):
        got = [p.grad.clone() for p in net.parameters()]
        for own_or_peer, expect_equal in ((picks[1 - k], True), (picks[k], False)):
            net.zero_grad()
            sel = torch.tensor(sorted(own_or_peer))
            bench.per_sample_loss(net(x), y, protocol.dice_weight)[sel].mean().backward()
            same = all(torch.allclose(g, p.grad, rtol=1e-4, atol=1e-7) for g, p in zip(got, net.parameters(), strict=True))
            assert same == expect_equal, (k, expect_equal)
    expected = np.zeros(8)
    for p in picks:
        expected[sorted(p)] += 0.5  # the share of the two networks that picked each sample
    assert step.selected.tolist() == expected.tolist()


def test_a_zero_weight_sample_is_not_presented_for_selection():
    trial = make_trial(n=4)
    trainer = bench.trainers.get("coteaching")(tau=0.5, ramp_epochs=0)
    trainer.setup(trial)
    step = trainer.step(trial, batch_of(trial, torch.tensor([1.0, 0.0, 1.0, 1.0])))
    assert math.isnan(step.selected[1]) and not torch.isnan(step.selected[[0, 2, 3]]).any()
    trainer = bench.trainers.get("coteaching")(tau=0.3)  # epoch 0: forget rate 0, everything picked, nothing reported
    trainer.setup(trial)
    assert trainer.step(trial, batch_of(trial)).selected is None


def test_coteaching_detector_score_and_flags_from_the_selection_history():
    """Sample 0 picked by both nets in 4 presentations, 1 in 3 of 8 picks, 2 never presented, 3 in 1 of 4."""
    det = bench.detectors.get("coteaching")()
    trial = make_trial(n=4)
    nan = float("nan")
    epochs = [[1.0, 0.5, nan, 0.5], [1.0, 0.5, nan, 0.0], [1.0, 0.5, nan, nan], [1.0, 0.0, nan, nan]]
    for selected in epochs:
        trial.history.append(np.zeros(4), np.zeros((4, 3, 3), dtype=np.int64), np.array(selected))
    scores = det.score(trial).values
    np.testing.assert_allclose(scores, [0.0, 1 - 3 / 8, 0.0, 0.75])
    assert det.flag(scores, trial).tolist() == [False, True, False, True]


# ---------------------------------------------------------------- ADELE


def test_curve_fit_recovers_known_parameters():
    det = ADELE
    t = np.arange(1, 21, dtype=np.float64)
    for a, b, c in ((0.85, 0.6, 2.0), (0.7, 1.0, 4.0), (0.95, 0.35, 0.8)):
        iou = a * (1 - np.exp(-(t**b) / c))
        got = det.fit_curve(t, iou)
        assert got is not None
        np.testing.assert_allclose(got, (a, b, c), rtol=2e-3)
    assert det.fit_curve(t, np.zeros_like(t)) is None  # nothing learned: no curve
    assert det.fit_curve(t[:1], t[:1]) is None
    assert det.fit_curve(t, np.full_like(t, np.nan)) is None


def test_closed_form_slope_matches_finite_differences():
    det = ADELE
    t = np.linspace(1, 10, 19)
    h = 1e-6
    for params in ((0.9, 0.5, 1.0), (0.6, 1.0, 3.0)):
        numeric = (det.curve(t + h, *params) - det.curve(t - h, *params)) / (2 * h)
        np.testing.assert_allclose(det.curve_slope(t, *params), numeric, rtol=1e-5)


def test_start_rule_hand_computed():
    start = ADELE.start_epoch
    # b = 1: f'(t) / f'(1) = exp(-(t - 1) / c); change > 0.9 <=> t > 1 + c ln 10
    assert 1 + 2 * math.log(10) == pytest.approx(5.605, abs=1e-3)
    assert start(0.9, 1.0, 2.0, horizon=20) == 6
    assert start(0.9, 1.0, 4.0, horizon=20) == 11  # 1 + 4 ln 10 = 10.21
    assert start(0.9, 1.0, 4.0, horizon=10) is None  # beyond the horizon
    # b = 0.5, c = 1: ratio = t^-0.5 exp(-(sqrt(t) - 1)): t=5 -> 0.1299 (change 0.870), t=6 -> 0.0958 (0.904)
    assert start(0.5, 0.5, 1.0, horizon=20) == 6
    assert start(0.5, 0.5, 1.0, horizon=20, r=0.85) == 5
    assert start(0.0, 0.5, 1.0, horizon=20) is None  # a flat curve never starts


def test_corrector_starts_each_structure_at_the_hand_computed_epoch():
    """Feed exact IoU curves through the history's overlaps; structures start at max(T*, min_history)."""
    protocol = dataclasses.replace(bench.protocols.get("tiny"), epochs=12)
    trial = make_trial(n=4, protocol=protocol)
    trial._model = bench.build_model(protocol)  # what the loop installs from the trainer's setup
    corrector = bench.correctors.get("adele")(min_history=3)
    curves = {1: (0.9, 1.0, 2.0), 2: (0.7, 1.0, 4.0), 3: (0.8, 1.0, 0.3)}  # T* = 6, 11, 2 (1 + c ln 10)
    expected = {1: 6, 2: 11, 3: 3}  # structure 3 waits for min_history = 3 epochs
    started = {}
    for epoch in range(1, 13):
        counts = np.zeros((4, 3, 3))
        for k, (a, b, c) in curves.items():
            v = a * (1 - math.exp(-(epoch**b) / c))
            total = 4000.0  # pred = label = 1000 per sample; IoU = x / (2000 - x) -> x = 2000 v / (1 + v)
            counts[:, k - 1] = [2 * total * v / (1 + v) / 4, total / 4, total / 4]
        trial.history.append(np.zeros(4), counts, np.full(4, np.nan))
        corrector.correct(trial)
        for k in corrector.start:
            started.setdefault(k, epoch)
    assert started == expected


def brute_force_correction(labels, prob, correcting, fg, bg, class_constraint=True):
    n, h, w = labels.shape
    out = labels.copy()
    for i in range(n):
        present = set(np.unique(labels[i]).tolist()) | {0} if class_constraint else set(range(prob.shape[1]))
        for r in range(h):
            for c in range(w):
                p = prob[i, :, r, c]
                new, old = int(np.argmax(p)), int(labels[i, r, c])
                confident = p[new] > (bg if new == 0 else fg)
                ok_old = old == 0 or correcting[old]
                ok_new = new == 0 or correcting[new]
                if confident and ok_old and ok_new and new in present:
                    out[i, r, c] = new
    return out


def test_correction_rule_matches_a_brute_force_loop():
    correct = ADELE.correct_labels
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(3, 6, 7))
    labels[1][labels[1] == 3] = 1  # sample 1 has no left atrium: LA may not appear there
    logits = rng.normal(size=(3, 4, 6, 7)) * 3
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for correcting in ([False, True, False, True], [False, False, False, False], [True, True, True, True]):
        for fg, bg in ((0.7, 0.7), (0.6, 0.9)):
            got = correct(torch.from_numpy(labels), torch.from_numpy(prob), np.array(correcting), fg, bg).numpy()
            want = brute_force_correction(labels, prob, correcting, fg, bg)
            np.testing.assert_array_equal(got, want)
    changed = correct(torch.from_numpy(labels), torch.from_numpy(prob), np.array([False, True, False, True]), 0.7, 0.7).numpy() != labels
    assert changed.any() and not changed.all()  # the hand-made case is not trivial
    assert not (correct(torch.from_numpy(labels), torch.from_numpy(prob), np.array([False, True, True, True])).numpy()[1] == 3).any()


def test_correction_without_the_class_constraint_can_bring_an_omitted_structure_back():
    correct = ADELE.correct_labels
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, size=(3, 6, 7))
    labels[1][labels[1] == 3] = 1  # the left atrium omitted in sample 1
    logits = rng.normal(size=(3, 4, 6, 7)) * 3
    prob = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for correcting in ([False, True, False, True], [True, True, True, True]):
        got = correct(torch.from_numpy(labels), torch.from_numpy(prob), np.array(correcting), 0.7, 0.7, class_constraint=False).numpy()
        np.testing.assert_array_equal(got, brute_force_correction(labels, prob, correcting, 0.7, 0.7, class_constraint=False))
    free = correct(torch.from_numpy(labels), torch.from_numpy(prob), np.array([True] * 4), class_constraint=False).numpy()
    assert (free[1] == 3).any()  # the omitted class returns where the model is confident in it


def test_adele_consistency_weight_zero_is_the_standard_trainer():
    states = []
    for name, params in (("adele", {"consistency_weight": 0.0}), ("standard", {})):
        trial = make_trial(n=4)
        torch.manual_seed(5)
        trainer = bench.trainers.get(name)(**params)
        model = trainer.setup(trial)
        trainer.step(trial, batch_of(trial))
        states.append(model.state_dict())
    for a, b in zip(states[0].values(), states[1].values(), strict=True):
        assert torch.equal(a, b)


# ---------------------------------------------------------------- small protocol


@pytest.fixture(scope="module")
def coteaching_record():
    return bench.run_trial(SMALL, "coteaching", "systematic:0.5,mm=5", seed=0)


@pytest.fixture(scope="module")
def adele_record():
    return bench.run_trial(SMALL, "adele", "systematic:0.5,mm=5", seed=0)


def test_small_protocol_coteaching(coteaching_record):
    """Measured (seed 0, 80 images, 64 px, 8 epochs): AUROC 0.64 (1 torch thread) but 0.52 (default threads) at
    systematic:0.5,mm=5; 0.54 at systematic:0.5 and 0.50 at random:0.5 (1 thread). Not reliably above 0.5 at this
    size, so no AUROC threshold is asserted."""
    det = coteaching_record.metrics["detection"]
    assert det is not None and det["n_corrupted"] == 40
    assert coteaching_record.metrics["refurbishment"] is None  # no refurbisher
    assert 0.0 <= det["auroc"] <= 1.0 and det["n_flagged"] > 0


def test_small_protocol_adele_corrects_labels_and_gives_pixel_maps(adele_record):
    """Measured (seed 0, 8 epochs): AUROC 0.43-0.47, pixel precision 0: in 8 epochs the U-Net has not learned the
    myocardium (train IoU peaks at 0.17 and falls), the fitted curve flattens, and correction shrinks it. Not asserted."""
    det = adele_record.metrics["detection"]
    assert det is not None and det["pixel"] is not None and det["pixel"]["n_flagged_px"] > 0
    refurb = adele_record.metrics["refurbishment"]
    assert refurb["n_refurbished"] == det["n_flagged"] > 0
    groups = [refurb[g] for g in ("corrupted", "clean") if refurb[g]["n"]]
    assert any(g["label_dice_after"] != g["label_dice_before"] for g in groups)  # the labels trained on changed
