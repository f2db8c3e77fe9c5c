"""Mean teacher against hand computations: the EMA step and its bias-corrected start (the plain average of the iterates),
the consistency ramp at given epochs, the consistency loss, the label override only at confident disagreeing pixels;
inside the trainer, one step moves the teacher exactly as the EMA says and a zero-weight batch moves nothing; with
consistency 0 and no override the student is the standard trainer's model bit for bit; two runs give the same numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hand_trials import FixedLogits, hand_trial

import bench
from bench.plugins import plugin_module

MT = plugin_module("methods", "mean_teacher")


def linear(weights: list[float], bias: float) -> torch.nn.Linear:
    module = torch.nn.Linear(len(weights), 1)
    with torch.no_grad():
        module.weight.copy_(torch.tensor([weights]))
        module.bias.fill_(bias)
    return module


def test_ema_update_by_hand():
    teacher, student = linear([1.0, 2.0], 0.5), linear([3.0, 5.0], -1.5)
    a = MT.ema_update(teacher, student, decay=0.99, step=1)  # a = min(1 - 1/2, 0.99) = 0.5
    assert a == 0.5
    torch.testing.assert_close(teacher.weight, torch.tensor([[2.0, 3.5]]))
    torch.testing.assert_close(teacher.bias, torch.tensor([-0.5]))
    a = MT.ema_update(teacher, student, decay=0.99, step=1000)  # a = min(1 - 1/1001, 0.99) = 0.99
    assert a == 0.99
    torch.testing.assert_close(teacher.weight, torch.tensor([[0.99 * 2.0 + 0.01 * 3.0, 0.99 * 3.5 + 0.01 * 5.0]]))
    torch.testing.assert_close(teacher.bias, torch.tensor([0.99 * -0.5 + 0.01 * -1.5]))
    torch.testing.assert_close(student.weight, torch.tensor([[3.0, 5.0]]))  # the student is never touched


def test_while_the_ramp_governs_the_teacher_is_the_plain_average_of_the_iterates():
    rng = np.random.default_rng(0)
    iterates = [rng.normal(size=3).tolist() for _ in range(6)]
    teacher, student = linear(iterates[0], 0.0), linear(iterates[0], 0.0)  # the teacher starts as a copy
    for step, w in enumerate(iterates[1:], start=1):
        with torch.no_grad():
            student.weight.copy_(torch.tensor([w]))
        MT.ema_update(teacher, student, decay=0.99, step=step)  # 1 - 1/(step + 1) < 0.99 for step < 99
    np.testing.assert_allclose(teacher.weight.detach().numpy()[0], np.mean(iterates, axis=0), rtol=1e-6)


def test_consistency_ramp_values():
    assert MT.sigmoid_rampup(0, 4) == pytest.approx(math.exp(-5.0))  # 0.0067
    assert MT.sigmoid_rampup(1, 4) == pytest.approx(math.exp(-5.0 * 0.75**2))  # 0.0601
    assert MT.sigmoid_rampup(2, 4) == pytest.approx(0.2865048, abs=1e-7)  # exp(-1.25)
    assert MT.sigmoid_rampup(3, 4) == pytest.approx(0.7316156, abs=1e-7)  # exp(-0.3125)
    assert MT.sigmoid_rampup(4, 4) == 1.0 and MT.sigmoid_rampup(11, 4) == 1.0
    assert MT.sigmoid_rampup(0, 0) == 1.0
    trainer = bench.trainers.get("mean-teacher")(consistency=2.0)
    assert [trainer.rampup(e) for e in (2, 8, 12, 50)] == [1, 3, 4, 17]  # max(1, round(epochs / 3))
    assert trainer.consistency_weight(2, 12) == pytest.approx(2.0 * math.exp(-1.25))
    assert [trainer.overrides_at(e, 12) for e in range(6)] == [False] * 4 + [True] * 2  # from the ramp-up's end
    assert not bench.trainers.get("mean-teacher")(override=False).overrides_at(11, 12)
    assert bench.trainers.get("mean-teacher")(override_from=0).overrides_at(0, 12)


def test_consistency_loss_by_hand():
    student = torch.zeros(1, 4, 1, 2)  # softmax 1/4 everywhere
    teacher = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 4, 1, 1).expand(1, 4, 1, 2).clone()
    teacher[0, :, 0, 1] = 0.25  # the second pixel agrees
    # first pixel: (0.75^2 + 3 x 0.25^2) / 4 = 0.1875, second 0: mean over the 2 pixels 0.09375
    torch.testing.assert_close(MT.consistency_loss(student, teacher), torch.tensor([0.09375]))


def test_label_override_only_at_confident_disagreeing_pixels():
    labels = torch.tensor([[[0, 1], [2, 3]]])
    probs = torch.zeros(1, 4, 2, 2)
    probs[0, :, 0, 0] = torch.tensor([0.02, 0.95, 0.02, 0.01])  # label 0, teacher sure of 1: becomes 1
    probs[0, :, 0, 1] = torch.tensor([0.02, 0.95, 0.02, 0.01])  # label 1, teacher agrees: stays 1
    probs[0, :, 1, 0] = torch.tensor([0.85, 0.05, 0.05, 0.05])  # label 2, teacher says 0 at 0.85 < 0.9: stays 2
    probs[0, :, 1, 1] = torch.tensor([0.90, 0.04, 0.03, 0.03])  # label 3, teacher says 0 at exactly 0.9: becomes 0
    assert MT.override_targets(labels, probs, 0.9).tolist() == [[[1, 1], [2, 0]]]
    assert MT.override_targets(labels, probs, 0.96).tolist() == [[[0, 1], [2, 3]]]
    assert labels.tolist() == [[[0, 1], [2, 3]]]  # the labels themselves are not rewritten


def small_trial(n: int = 4) -> bench.Trial:
    rng = np.random.default_rng(0)
    labels = np.zeros((n, 64, 64), np.uint8)
    labels[:, 20:44, 20:44] = 1
    trial = hand_trial(FixedLogits(torch.zeros(4, 64, 64)), labels)
    trial.inputs.images.copy_(torch.from_numpy(rng.random((n, 1, 64, 64))).float())
    return trial


def batch_of(trial: bench.Trial, w: torch.Tensor) -> bench.Batch:
    index = torch.arange(trial.n)
    return bench.Batch(index, trial.images, trial.label_tensor(), w)


def test_one_trainer_step_moves_the_teacher_by_the_ema_and_a_zero_weight_batch_moves_nothing():
    torch.manual_seed(0)
    trial = small_trial()
    trainer = bench.trainers.get("mean-teacher")()
    model = trainer.setup(trial)
    assert model is trainer.student and all(not p.requires_grad for p in trainer.teacher.parameters())
    before = [p.detach().clone() for p in trainer.student.parameters()]
    trainer.step(trial, batch_of(trial, torch.zeros(trial.n)))
    assert trainer.steps == 0
    for b, s, t in zip(before, trainer.student.parameters(), trainer.teacher.parameters(), strict=True):
        assert torch.equal(b, s) and torch.equal(b, t)
    step = trainer.step(trial, batch_of(trial, torch.ones(trial.n)))
    assert trainer.steps == 1 and step.losses.shape == (trial.n,) and step.logits.shape == (trial.n, 4, 64, 64)
    moved = False
    for b, s, t in zip(before, trainer.student.parameters(), trainer.teacher.parameters(), strict=True):
        torch.testing.assert_close(t, 0.5 * b + 0.5 * s)  # a = min(1 - 1/2, 0.99) after the first step
        moved |= not torch.equal(b, s)
    assert moved
    other = bench.trainers.get("mean-teacher")(evaluate="teacher")
    assert other.setup(trial) is other.teacher


def fit_tiny(recipe: bench.Recipe):
    from bench.noise import apply_noise
    from bench.training import fit
    from bench.trial import initial_trial, protocol_data, seed_everything

    protocol = bench.protocols.get("tiny")
    train = protocol_data(protocol)["train"]
    noisy = apply_noise("systematic:0.5,mm=5", train.labels, train.spacing, train.ids, 0, info=train.info)
    seed_everything(0)
    return fit(initial_trial(protocol, 0, train, noisy, recipe), recipe)


def test_without_consistency_and_override_the_student_is_the_standard_trainers_model():
    """The limit: consistency 0, no override -> the same updates as the standard trainer, bit for bit (the teacher draws
    no global random numbers)."""
    standard = fit_tiny(bench.Recipe(name="t-standard", description="test only", detect_at=1.0))
    params = {"consistency": 0.0, "override": False, "evaluate": "student"}
    student = fit_tiny(bench.Recipe(name="t-mt", description="test only", trainer="mean-teacher", detect_at=1.0, trainer_params=params))
    for a, b in zip(standard.trial.model.state_dict().values(), student.trial.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(np.stack(standard.trial.history.losses), np.stack(student.trial.history.losses))


def test_two_runs_give_the_same_numbers():
    recipe = bench.methods.get("mean-teacher")
    first, second = fit_tiny(recipe), fit_tiny(recipe)
    for a, b in zip(first.trial.model.state_dict().values(), second.trial.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(np.stack(first.trial.history.losses), np.stack(second.trial.history.losses))
    assert recipe.trainer_params == {"ema_decay": 0.99, "consistency": 1.0, "evaluate": "student"}
    assert recipe.detector is None and recipe.detect_at == 1.0


def test_parameters_are_checked():
    for bad in ({"ema_decay": 1.0}, {"consistency": -1.0}, {"confidence": 0.4}, {"evaluate": "both"}, {"rampup_epochs": -1}):
        with pytest.raises(ValueError):
            bench.trainers.get("mean-teacher")(**bad)
