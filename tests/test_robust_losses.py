"""The robust losses (GCE, SCE, bootstrapping, NR-Dice, T-Loss) and the "robust-loss" trainer.

Each loss against values computed by hand on 2 pixels and 3 classes with explicit probabilities, against
cross-entropy (or the soft Dice loss) in the limit where it reduces to it, T-Loss against scipy's Student-t
density; the trainer against the standard trainer where the loss reduces to the standard loss, and T-Loss's
learnable nu against a finite difference. Reached through the registry and `bench.plugins.plugin_module`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hand_trials import FixedLogits, hand_trial
from scipy.stats import multivariate_t

import bench
from bench.plugins import plugin_module

RL = plugin_module("methods", "robust_losses")
TRAINER = bench.trainers.get("robust-loss")
LOG_1E4 = math.log(1e-4)

# One sample (B = 1), 3 classes, 1 x 2 pixels. Pixel 0: p = (0.7, 0.2, 0.1), label 0; pixel 1: p = (0.1, 0.3, 0.6),
# label 1 (the model prefers class 2 there). Logits = log p, so softmax gives p back exactly.
P = torch.tensor([[0.7, 0.1], [0.2, 0.3], [0.1, 0.6]], dtype=torch.float64).view(1, 3, 1, 2)
LOGITS = P.log()
TARGET = torch.tensor([[[0, 1]]])


def random_case(b: int = 3, c: int = 4, h: int = 5, w: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 logits (B, C, H, W) with some confident pixels, and int64 labels (B, H, W)."""
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(b, c, h, w, generator=g, dtype=torch.float64)
    return logits, torch.randint(0, c, (b, h, w), generator=g)


def ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample cross-entropy, mean over pixels."""
    return F.cross_entropy(logits, target, reduction="none").flatten(1).mean(1)


# --------------------------------------------------------------------------- values by hand


def test_gce_by_hand():
    by_hand = ((1 - 0.7**0.7) / 0.7 + (1 - 0.3**0.7) / 0.7) / 2  # p_y = 0.7 and 0.3; = (0.31564 + 0.81355) / 2
    assert RL.generalized_cross_entropy(LOGITS, TARGET, q=0.7).item() == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(0.564595, abs=1e-6)


def test_sce_by_hand():
    # RCE = -sum_c p_c log(max(y_c, 1e-4)): pixel 0 (label 0) -(0.2 + 0.1) log 1e-4, pixel 1 (label 1) -(0.1 + 0.6) log 1e-4
    pixel0 = 0.1 * -math.log(0.7) + 1.0 * -(0.7 * math.log(1) + 0.2 * LOG_1E4 + 0.1 * LOG_1E4)
    pixel1 = 0.1 * -math.log(0.3) + 1.0 * -(0.1 * LOG_1E4 + 0.3 * math.log(1) + 0.6 * LOG_1E4)
    value = RL.symmetric_cross_entropy(LOGITS, TARGET, alpha=0.1, beta=1.0).item()
    assert value == pytest.approx((pixel0 + pixel1) / 2, rel=1e-12)
    assert value == pytest.approx((0.035667 + 2.763102 + 0.120397 + 6.447238) / 2, abs=1e-5)


def test_bootstrap_soft_by_hand():
    # target 0.95 y + 0.05 p: pixel 0 (0.985, 0.01, 0.005), pixel 1 (0.005, 0.965, 0.03)
    pixel0 = -(0.985 * math.log(0.7) + 0.01 * math.log(0.2) + 0.005 * math.log(0.1))
    pixel1 = -(0.005 * math.log(0.1) + 0.965 * math.log(0.3) + 0.03 * math.log(0.6))
    assert RL.bootstrap_soft(LOGITS, TARGET, beta=0.95).item() == pytest.approx((pixel0 + pixel1) / 2, rel=1e-12)


def test_bootstrap_hard_by_hand():
    # pixel 0: argmax 0 = label, target (1, 0, 0); pixel 1: argmax 2, target 0.8 e_1 + 0.2 e_2 = (0, 0.8, 0.2)
    pixel0 = -math.log(0.7)
    pixel1 = -(0.8 * math.log(0.3) + 0.2 * math.log(0.6))
    assert RL.bootstrap_hard(LOGITS, TARGET, beta=0.8).item() == pytest.approx((pixel0 + pixel1) / 2, rel=1e-12)


def test_nr_dice_by_hand():
    # per class c over the 2 pixels: sum |p - g|^1.5 / (sum (p + g) + 1e-5)
    class0 = (0.3**1.5 + 0.1**1.5) / (0.7 + 1 + 0.1 + 0 + 1e-5)  # g = (1, 0), p = (0.7, 0.1)
    class1 = (0.2**1.5 + 0.7**1.5) / (0.2 + 0 + 0.3 + 1 + 1e-5)  # g = (0, 1), p = (0.2, 0.3)
    class2 = (0.1**1.5 + 0.6**1.5) / (0.1 + 0.6 + 1e-5)  # g = (0, 0), p = (0.1, 0.6)
    by_hand = (class0 + class1 + class2) / 3
    assert RL.noise_robust_dice(LOGITS, TARGET, gamma=1.5).item() == pytest.approx(by_hand, rel=1e-12)


def test_t_loss_by_hand():
    # foreground residuals: pixel 0 (0.2 - 0, 0.1 - 0), pixel 1 (0.3 - 1, 0.6 - 0): |delta|^2 = 0.04 + 0.01 + 0.49 + 0.36 = 0.9
    # D = 2 channels x 2 pixels = 4; log nu = 1, nu = e (+ 1e-8); lambda = 1: e^1 x 0.9 / nu = 0.9 (up to the 1e-8)
    nu, d = math.e + 1e-8, 4
    quad = math.e * 0.9 / nu
    nll = -math.lgamma((nu + d) / 2) + math.lgamma(nu / 2) + d / 2 * math.log(nu * math.pi) - d / 2 + (nu + d) / 2 * math.log(1 + quad)
    value = RL.t_loss(LOGITS, TARGET, torch.tensor(1.0, dtype=torch.float64), lam=1.0).item()
    assert value == pytest.approx(nll / 2, rel=1e-9)  # divided by the H W = 2 pixels
    # the same as scipy's multivariate Student-t: shape (covariance scale) e^-1 I, df nu
    delta = np.array([0.2, 0.1, -0.7, 0.6])
    density = multivariate_t(loc=np.zeros(4), shape=np.eye(4) / math.e, df=nu)
    assert value == pytest.approx(-density.logpdf(delta) / 2, rel=1e-9)


def test_t_loss_is_the_binary_reference_for_two_classes():
    """C = 2: the residual is the foreground probability minus the binary mask over the image (D = H W), as in tloss.py."""
    logits, target = random_case(b=2, c=2, h=3, w=4)
    log_nu = 0.3
    values = RL.t_loss(logits, target, torch.tensor(log_nu, dtype=torch.float64), lam=1.0)
    for k in range(2):
        delta = (torch.softmax(logits[k], 0)[1] - target[k]).flatten().numpy()
        density = multivariate_t(loc=np.zeros(12), shape=np.eye(12) / math.e, df=math.exp(log_nu) + 1e-8)
        assert values[k].item() == pytest.approx(-density.logpdf(delta) / 12, rel=1e-9)


def test_t_loss_is_negative_where_the_density_exceeds_one():
    """A negative log-likelihood of a density: near-perfect predictions of a large image give T-Loss below 0 (as on the board)."""
    target = torch.randint(0, 4, (1, 16, 16), generator=torch.Generator().manual_seed(0))
    logits = 8.0 * F.one_hot(target, 4).permute(0, 3, 1, 2).double()  # softmax within 1e-3 of the labels
    log_nu = 3.0
    value = RL.t_loss(logits, target, torch.tensor(log_nu, dtype=torch.float64)).item()
    delta = (torch.softmax(logits, 1)[:, 1:] - F.one_hot(target, 4).permute(0, 3, 1, 2)[:, 1:]).flatten().numpy()
    density = multivariate_t(loc=np.zeros(delta.size), shape=np.eye(delta.size) / math.e, df=math.exp(log_nu) + 1e-8)
    assert density.logpdf(delta) > 0 and value < 0
    assert value == pytest.approx(-density.logpdf(delta) / 256, rel=1e-9)


# --------------------------------------------------------------------------- limits


def test_gce_tends_to_ce_as_q_tends_to_0():
    logits, target = random_case()
    torch.testing.assert_close(RL.generalized_cross_entropy(logits, target, q=1e-6), ce(logits, target), rtol=0, atol=1e-4)
    # and q = 1 is 1 - p_y
    p_y = torch.softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    torch.testing.assert_close(RL.generalized_cross_entropy(logits, target, q=1.0), (1 - p_y).flatten(1).mean(1))


@pytest.mark.parametrize("name", ["bootstrap_soft", "bootstrap_hard"])
def test_bootstrap_with_beta_1_is_ce(name):
    logits, target = random_case()
    torch.testing.assert_close(getattr(RL, name)(logits, target, beta=1.0), ce(logits, target), rtol=0, atol=1e-14)


def test_sce_with_beta_0_is_alpha_ce_and_with_alpha_0_is_scaled_mae():
    logits, target = random_case()
    torch.testing.assert_close(RL.symmetric_cross_entropy(logits, target, alpha=0.3, beta=0.0), 0.3 * ce(logits, target))
    p_y = torch.softmax(logits, 1).gather(1, target.unsqueeze(1)).squeeze(1)
    rce = RL.symmetric_cross_entropy(logits, target, alpha=0.0, beta=1.0)
    torch.testing.assert_close(rce, -LOG_1E4 * (1 - p_y).flatten(1).mean(1))


def test_nr_dice_with_gamma_1_is_the_soft_dice_loss():
    """|p - g| = p + g - 2 p g for one-hot g, so gamma = 1 gives 1 - (2 sum p g + eps) / (sum (p + g) + eps) per class."""
    logits, target = random_case()
    p = torch.softmax(logits, 1)
    g = F.one_hot(target, 4).permute(0, 3, 1, 2).double()
    eps = 1e-5
    dice = (2 * (p * g).sum((2, 3)) + eps) / ((p + g).sum((2, 3)) + eps)  # (B, C), all classes
    torch.testing.assert_close(RL.noise_robust_dice(logits, target, gamma=1.0), (1 - dice).mean(1))


def test_dice_term_is_the_protocol_losses_dice_part():
    logits, target = random_case()
    torch.testing.assert_close(ce(logits, target) + 0.7 * RL.soft_dice_term(logits, target), bench.per_sample_loss(logits, target, 0.7))


# --------------------------------------------------------------------------- per sample


@pytest.mark.parametrize("name", sorted(RL.LOSSES))
def test_losses_are_per_sample(name):
    """A batch of 2 different samples gives the values of each alone (nothing is pooled over the batch)."""
    logits, target = random_case(b=2)
    extra = {"log_nu": torch.tensor(0.5, dtype=torch.float64)} if name == "t-loss" else {}
    fn = RL.LOSSES[name]
    together = fn(logits, target, **extra)
    alone = torch.cat([fn(logits[k : k + 1], target[k : k + 1], **extra) for k in range(2)])
    assert together.shape == (2,) and together[0] != together[1]
    torch.testing.assert_close(together, alone, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------- the trainer

SIZE = 32  # the U-Net needs a multiple of 32


def trial_and_batch(n: int = 3, seed: int = 0) -> tuple[bench.Trial, bench.Batch]:
    """A hand-made trial on `tiny` (4 classes) and one batch of random images and labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n, SIZE, SIZE), generator=g)
    trial = hand_trial(FixedLogits(torch.zeros(4, SIZE, SIZE)), labels.numpy().astype(np.uint8))
    batch = bench.Batch(torch.arange(n), torch.rand(n, 1, SIZE, SIZE, generator=g), labels, torch.tensor([1.0, 0.5, 2.0][:n]))
    return trial, batch


def trained(trainer: bench.Trainer, seed: int = 0) -> tuple[torch.nn.Module, bench.Step, bench.Batch]:
    """The model after one step of `trainer` from the seed's initial weights, the step, and the batch."""
    trial, batch = trial_and_batch()
    torch.manual_seed(seed)
    model = trainer.setup(trial)
    return model, trainer.step(trial, batch), batch


def test_trainer_reduces_to_the_standard_trainer_when_the_loss_is_ce():
    """Bootstrapping with beta = 1 plus the protocol's Dice is the standard loss: same losses, same model after a step."""
    standard, s_step, _ = trained(bench.trainers.get("standard")())
    robust, r_step, _ = trained(TRAINER(loss="bootstrap-soft", beta=1.0))
    torch.testing.assert_close(r_step.losses, s_step.losses, rtol=1e-6, atol=1e-7)
    for a, b in zip(robust.state_dict().values(), standard.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(RL.LOSSES))
def test_trainer_reports_its_objective_per_sample(name):
    trainer = TRAINER(loss=name)
    _, step, batch = trained(trainer)
    extra = {"log_nu": torch.tensor(1.0)} if name == "t-loss" else {}  # the value before the step
    params = {k: v for k, v in RL.loss_defaults(name).items() if k not in ("log_nu", "nu_lr")}
    robust = RL.LOSSES[name](step.logits, batch.y, **params, **extra)
    dice = 0.0 if name == "nr-dice" else bench.protocols.get("tiny").dice_weight  # NR-Dice is trained alone
    torch.testing.assert_close(step.losses, robust + dice * RL.soft_dice_term(step.logits, batch.y), rtol=1e-5, atol=1e-6)
    assert step.losses.shape == (3,) and not step.losses.requires_grad


def test_dice_weight_overrides_the_default():
    _, step, batch = trained(TRAINER(loss="nr-dice", dice_weight=2.0))
    expected = RL.noise_robust_dice(step.logits, batch.y) + 2.0 * RL.soft_dice_term(step.logits, batch.y)
    torch.testing.assert_close(step.losses, expected, rtol=1e-5, atol=1e-6)


def test_t_loss_nu_is_learned_in_its_own_adam_group():
    trainer = TRAINER(loss="t-loss")
    _, step, batch = trained(trainer)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [bench.protocols.get("tiny").lr, 1e-3] and groups[1]["weight_decay"] == 0.0
    assert trainer.log_nu.grad is not None and trainer.log_nu.grad.item() != 0.0
    # the weighted mean objective's derivative in log nu, by a central difference at the step's (pre-update) logits
    logits, y, w = step.logits.double(), batch.y, batch.w.double()

    def objective(log_nu: float) -> float:
        return float((RL.t_loss(logits, y, torch.tensor(log_nu, dtype=torch.float64)) * w).sum() / w.sum())

    slope = (objective(1.0 + 1e-5) - objective(1.0 - 1e-5)) / 2e-5
    assert trainer.log_nu.grad.item() == pytest.approx(slope, rel=1e-3)
    # Adam's first step moves a parameter by lr x sign(gradient)
    assert trainer.log_nu.item() == pytest.approx(1.0 - 1e-3 * math.copysign(1.0, slope), abs=1e-6)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"loss": "focal"}, "unknown robust loss"),
        ({"loss": "gce", "beta": 0.5}, "unknown parameters"),
        ({"loss": "gce", "q": 0.0}, "q must be"),
        ({"loss": "bootstrap-soft", "beta": 1.5}, "beta must be"),
        ({"loss": "nr-dice", "gamma": 0.5}, "gamma must be"),
        ({"loss": "sce", "alpha": 0.0, "beta": 0.0}, "not both 0"),
        ({"loss": "gce", "dice_weight": -1.0}, "dice_weight"),
    ],
)
def test_bad_parameters_fail_at_construction(params, message):
    with pytest.raises(ValueError, match=message):
        TRAINER(**params)


def test_the_six_recipes_use_the_documented_defaults():
    expected = {
        "gce": {"q": 0.7},
        "sce": {"alpha": 0.1, "beta": 1.0},
        "bootstrap-soft": {"beta": 0.95},
        "bootstrap-hard": {"beta": 0.8},
        "nr-dice": {"gamma": 1.5},
        "t-loss": {"lam": 1.0, "log_nu": 1.0, "nu_lr": 1e-3},
    }
    for name, params in expected.items():
        recipe = bench.methods.get(name)
        assert recipe.trainer == "robust-loss" and recipe.detector is None and recipe.refurbisher is None
        assert recipe.trainer_params == {"loss": name, **params}
