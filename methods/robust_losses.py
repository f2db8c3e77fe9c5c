"""Robust losses as trainer losses (issue 15, item 1): GCE, SCE, bootstrapping, the noise-robust Dice loss, T-Loss.

Each loss is a pure function of the logits (B, C, H, W) and an int64 label map (B, H, W) that returns one
value per sample (B,), so the per-sample bookkeeping (the loss detector, `History.losses`) works on top of
it as on the standard loss. Trainer "robust-loss" trains like `methods/standard.py` (the protocol's U-Net
from `bench.build_model`, Adam with the protocol's lr and weight decay, `bench.weighted_update` with the
sample weights) with the chosen loss (`loss`, plus that loss's parameters).

The protocol's soft-Dice term, dice_weight x (1 - mean foreground soft Dice) (`bench.per_sample_loss`):
each robust loss replaces the cross-entropy part and the Dice part stays (GCE, SCE, both bootstraps and
T-Loss are pixel losses in the place of CE), except the noise-robust Dice loss, which is itself a Dice
loss and is trained alone, as in its paper and PyMIC (adding CE back would bring back the unbounded,
noise-sensitive term it is there to remove). The trainer's `dice_weight` overrides this choice. The
per-sample loss a step reports (`Step.losses`) is the whole objective it trains on, as for "standard".

The losses, their defaults and where they come from (references read, not copied):

- "gce", generalised cross-entropy (Zhang & Sabuncu, NeurIPS 2018, arXiv 1805.07836; code
  AlanChou/Truncated-Loss; PyMIC pymic/loss/seg/ce.py `GeneralizedCELoss`): per pixel
  (1 - p_y^q) / q, mean over pixels; q = 0.7, the paper's and SpatialCorrection's value (PyMIC defaults
  to 0.5). Computed as -expm1(q log p_y) / q from log_softmax, which is exact as q -> 0 (where GCE -> CE).
- "sce", symmetric cross-entropy (Wang et al., ICCV 2019, arXiv 1908.06112; code
  YisenWang/symmetric_cross_entropy_for_noisy_labels, loss.py): alpha CE + beta RCE, the reverse CE
  -sum_c p_c log y_c with log 0 clamped to log 1e-4, i.e. RCE = -log(1e-4) (1 - p_y) per pixel. alpha = 0.1,
  beta = 1.0: the pair of the reference's active run (CIFAR-10, train_models.py), the reference dataset
  nearest ours in number of classes (10 vs 4; its larger alpha 6.0 is for CIFAR-100's 100 classes, 0.01
  for MNIST); SpatialCorrection uses 0.5 / 1.0 on LIDC, a parameter away. Deviation: the CE part is
  log_softmax, not log of the probability clipped at 1e-7 (they differ only where p_y < 1e-7).
- "bootstrap-soft" / "bootstrap-hard" (Reed et al., ICLR workshop 2015, arXiv 1412.6596; code: the SCE
  repository's `boot_soft` / `boot_hard`): CE against the target beta y + (1 - beta) p (soft, beta = 0.95)
  or beta y + (1 - beta) onehot(argmax p) (hard, beta = 0.8), the paper's values. As in the paper (soft:
  CE plus an entropy term, "minimum entropy regularisation") and the reference (no stop-gradient), the
  gradient flows through p in the soft target. Deviation: log_softmax instead of log of p clipped at 1e-7.
- "nr-dice", the noise-robust Dice loss (Wang et al., IEEE TMI 2020, doi 10.1109/TMI.2020.3000314; code
  HiLab-git/PyMIC pymic/loss/seg/dice.py `NoiseRobustDiceLoss`): per class c,
  sum |p_c - g_c|^gamma / (sum (p_c + g_c) + 1e-5), mean over all C classes, background included, as in
  PyMIC; gamma = 1.5 (the paper's; PyMIC's range is [1, 2]). gamma = 1 is the soft Dice loss
  1 - (2 sum p g + eps) / (sum (p + g) + eps); gamma = 2 an MSE-like loss. We follow PyMIC's denominator
  sum (p + g); squared forms sum p^2 + sum g^2 circulate for the paper, which we did not check. Deviation:
  PyMIC sums over the whole batch's pixels, here over each sample's (one value per sample, for the detectors).
- "t-loss" (Gonzalez-Jimenez et al., MICCAI 2023, arXiv 2306.00753; code Digital-Dermatology/t-loss,
  tloss.py): the negative log-likelihood of a D-dimensional Student-t of the residual delta with
  precision Lambda = exp(lam) I (lam = 1, fixed, as in the reference) and nu degrees of freedom,
  nu = exp(log_nu) + 1e-8, log_nu learnable, initialised to 1.0 (the reference's `nu`, which it also
  uses as exp(nu)), in its own Adam group with lr 1e-3 (the reference's `student.lr`) and no weight decay
  (decay would pull log nu to 0 for no reason; the reference has none). The reference is binary: delta is
  the foreground probability minus the binary mask over the H x W image (D = H W). Our multi-class
  adaptation: delta = softmax - one-hot over the C - 1 foreground channels (D = (C - 1) H W; the background
  residual is minus their sum, so nothing is lost), which is the reference exactly for C = 2. Deviations:
  the NLL is divided by the H W pixels (a per-pixel scale like the other losses; the reference sums over
  the image), the log nu term is log(exp(log_nu) + 1e-8) rather than the reference's log_nu + 1e-8, and
  the 1e-8 it adds to lam is dropped (both change nothing at float precision). The scalar terms (log-gamma
  of numbers of order D) are computed in float64.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench import Batch, Recipe, Step, Trainer, Trial, build_model, register_recipe, trainers, weighted_update

#: SCE's reverse-CE clamp: log 0 is taken as log(1e-4) (the reference's clip of the one-hot label)
RCE_LOG_ZERO = math.log(1e-4)
#: NR-Dice's denominator guard (PyMIC)
NR_DICE_EPS = 1e-5
#: T-Loss's guard on nu (the reference's epsilon)
T_LOSS_EPS = 1e-8


def _log_probs_of_labels(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log_softmax (B, C, H, W) and its value at each pixel's label (B, H, W)."""
    logp = torch.log_softmax(logits, 1)
    return logp, logp.gather(1, target.unsqueeze(1)).squeeze(1)


def _one_hot(target: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot (B, C, H, W) of a label map (B, H, W)."""
    return F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(dtype)


def generalized_cross_entropy(logits: torch.Tensor, target: torch.Tensor, q: float = 0.7) -> torch.Tensor:
    """GCE per sample: mean over pixels of (1 - p_y^q) / q; q -> 0 is CE, q = 1 is 1 - p_y (MAE up to a factor 2)."""
    _, logp_y = _log_probs_of_labels(logits, target)
    return (-torch.expm1(q * logp_y) / q).flatten(1).mean(1)


def symmetric_cross_entropy(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.1, beta: float = 1.0) -> torch.Tensor:
    """SCE per sample: mean over pixels of alpha CE + beta RCE, RCE = -log(1e-4) (1 - p_y) (the clamped reverse CE)."""
    _, logp_y = _log_probs_of_labels(logits, target)
    rce = -RCE_LOG_ZERO * (1 - logp_y.exp())
    return (alpha * -logp_y + beta * rce).flatten(1).mean(1)


def bootstrap_soft(logits: torch.Tensor, target: torch.Tensor, beta: float = 0.95) -> torch.Tensor:
    """Soft bootstrapping per sample: mean over pixels of -sum_c (beta y_c + (1 - beta) p_c) log p_c (gradient through p)."""
    logp, logp_y = _log_probs_of_labels(logits, target)
    entropy = -(logp.exp() * logp).sum(1)
    return (beta * -logp_y + (1 - beta) * entropy).flatten(1).mean(1)


def bootstrap_hard(logits: torch.Tensor, target: torch.Tensor, beta: float = 0.8) -> torch.Tensor:
    """Hard bootstrapping per sample: mean over pixels of -(beta log p_y + (1 - beta) log p_argmax)."""
    logp, logp_y = _log_probs_of_labels(logits, target)
    logp_top = logp.max(1).values  # log p at the argmax: the predicted class's one-hot against log p
    return (beta * -logp_y + (1 - beta) * -logp_top).flatten(1).mean(1)


def noise_robust_dice(logits: torch.Tensor, target: torch.Tensor, gamma: float = 1.5) -> torch.Tensor:
    """NR-Dice per sample: mean over all C classes of sum |p_c - g_c|^gamma / (sum (p_c + g_c) + 1e-5), sums over pixels."""
    probs = torch.softmax(logits, 1)
    onehot = _one_hot(target, logits.shape[1], probs.dtype)
    numerator = (probs - onehot).abs().pow(gamma).flatten(2).sum(2)
    denominator = (probs + onehot).flatten(2).sum(2)
    return (numerator / (denominator + NR_DICE_EPS)).mean(1)


def t_loss(logits: torch.Tensor, target: torch.Tensor, log_nu: torch.Tensor, lam: float = 1.0) -> torch.Tensor:
    """T-Loss per sample: Student-t NLL of delta = softmax - one-hot over the foreground channels, divided by H W.

    NLL = -lgamma((nu + D) / 2) + lgamma(nu / 2) + D / 2 log(nu pi) - D lam / 2 + (nu + D) / 2 log(1 + e^lam |delta|^2 / nu),
    D = (C - 1) H W, nu = exp(log_nu) + 1e-8; `log_nu` is a 0-dim tensor (learnable in the trainer).
    """
    probs = torch.softmax(logits, 1)[:, 1:]
    onehot = _one_hot(target, logits.shape[1], probs.dtype)[:, 1:]
    squared = (probs - onehot).pow(2).flatten(1).sum(1).double()
    dim = float(probs[0].numel())
    pixels = float(target[0].numel())
    nu = log_nu.double().exp() + T_LOSS_EPS
    half = (nu + dim) / 2
    nll = (
        -torch.lgamma(half)
        + torch.lgamma(nu / 2)
        + dim / 2 * torch.log(nu * math.pi)
        - dim * lam / 2
        + half * torch.log1p(math.exp(lam) * squared / nu)
    )
    return (nll / pixels).to(logits.dtype)


#: loss name -> per-sample function (logits, target, **params) -> (B,)
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "gce": generalized_cross_entropy,
    "sce": symmetric_cross_entropy,
    "bootstrap-soft": bootstrap_soft,
    "bootstrap-hard": bootstrap_hard,
    "nr-dice": noise_robust_dice,
    "t-loss": t_loss,
}

#: losses that replace the protocol's whole loss, not only its CE part (default soft-Dice weight 0)
ALONE = ("nr-dice",)

#: the trainer's own parameters of T-Loss (not arguments of `t_loss`): initial log nu and its learning rate
T_LOSS_TRAINER = {"log_nu": 1.0, "nu_lr": 1e-3}


def loss_defaults(name: str) -> dict[str, Any]:
    """The parameters of loss `name` a recipe can set, with their defaults (T-Loss: `lam`, `log_nu`, `nu_lr`)."""
    params = inspect.signature(LOSSES[name]).parameters
    out = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    return {**out, **T_LOSS_TRAINER} if name == "t-loss" else out


def _check(name: str, params: dict[str, Any]) -> None:
    """Reject parameter values outside a loss's meaningful range, at construction rather than in a trial."""
    ranges = {
        "q": (0.0, 1.0, "q must be in (0, 1]"),
        "beta": (0.0, 1.0, "beta must be in [0, 1]") if name.startswith("bootstrap") else None,
        "gamma": (1.0, 2.0, "gamma must be in [1, 2] (PyMIC's range; below 1 the gradient is infinite at p = g)"),
    }
    for key, value in params.items():
        bound = ranges.get(key)
        if bound is None:
            continue
        low, high, message = bound
        if not (low < value <= high if key == "q" else low <= value <= high):
            raise ValueError(f"{name}: {message}")
    if name == "sce" and (params["alpha"] < 0 or params["beta"] < 0 or params["alpha"] + params["beta"] == 0):
        raise ValueError("sce: alpha and beta must be >= 0, not both 0")
    if name == "t-loss" and params["nu_lr"] < 0:
        raise ValueError("t-loss: nu_lr must be >= 0")


def soft_dice_term(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean foreground soft Dice per sample, smoothed by 1: the Dice part of `bench.per_sample_loss`."""
    probs = torch.softmax(logits, 1)[:, 1:].flatten(2)
    onehot = _one_hot(target, logits.shape[1], probs.dtype)[:, 1:].flatten(2)
    dice = (2 * (probs * onehot).sum(2) + 1.0) / (probs.sum(2) + onehot.sum(2) + 1.0)
    return 1 - dice.mean(1)


@trainers.register("robust-loss")
class RobustLossTrainer(Trainer):
    """One U-Net, Adam (protocol lr and weight decay), a robust per-sample loss (+ soft Dice) weighted by the sample weights."""

    def __init__(self, loss: str, dice_weight: float | None = None, **loss_params: Any) -> None:
        if loss not in LOSSES:
            raise ValueError(f"unknown robust loss {loss!r}; one of {sorted(LOSSES)}")
        defaults = loss_defaults(loss)
        unknown = set(loss_params) - set(defaults)
        if unknown:
            raise ValueError(f"{loss}: unknown parameters {sorted(unknown)}; it takes {sorted(defaults)}")
        if dice_weight is not None and dice_weight < 0:
            raise ValueError("dice_weight must be >= 0")
        params = {**defaults, **loss_params}
        _check(loss, params)
        super().__init__(loss=loss, dice_weight=dice_weight, **loss_params)
        self.loss, self.dice_weight = loss, dice_weight
        self.nu_lr = params.pop("nu_lr", None)
        self.log_nu_init = params.pop("log_nu", None)
        self.loss_params = params  # the loss function's own keyword arguments
        self.log_nu: torch.nn.Parameter | None = None

    def setup(self, trial: Trial) -> torch.nn.Module:
        p = trial.protocol
        self.model = build_model(p, trial.device, trial.inputs.num_classes)  # first, so the model draws what "standard" draws
        groups: list[dict[str, Any]] = [{"params": self.model.parameters()}]
        if self.loss == "t-loss":
            self.log_nu = torch.nn.Parameter(torch.tensor(float(self.log_nu_init), device=trial.device))
            groups.append({"params": [self.log_nu], "lr": self.nu_lr, "weight_decay": 0.0})
        self.optimizer = torch.optim.Adam(groups, lr=p.lr, weight_decay=p.weight_decay)
        default = 0.0 if self.loss in ALONE else p.dice_weight
        self.dice = default if self.dice_weight is None else self.dice_weight
        return self.model

    def objective(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The per-sample objective (B,): the robust loss, plus dice x (1 - mean foreground soft Dice) when dice > 0."""
        extra = {"log_nu": self.log_nu} if self.loss == "t-loss" else {}
        losses = LOSSES[self.loss](logits, target, **self.loss_params, **extra)
        return losses + self.dice * soft_dice_term(logits, target) if self.dice > 0 else losses

    def step(self, trial: Trial, batch: Batch) -> Step:
        self.model.train()
        logits = self.model(batch.x)
        losses = self.objective(logits, batch.y)
        weighted_update(self.optimizer, losses, batch.w)
        return Step(losses.detach(), logits.detach())


DICE_STAYS = "plus the protocol's soft-Dice term; no detection, no refurbishment."

#: recipe name (= loss name) -> what its description says the loss is
DESCRIPTIONS = {
    "gce": "generalised cross-entropy (Zhang & Sabuncu 2018), (1 - p_y^q) / q with q = 0.7, in place of CE, " + DICE_STAYS,
    "sce": "symmetric cross-entropy (Wang et al. 2019), 0.1 CE + 1.0 reverse CE (log 0 clamped to log 1e-4), in place of CE, " + DICE_STAYS,
    "bootstrap-soft": "soft bootstrapping (Reed et al. 2015), CE against 0.95 label + 0.05 prediction, in place of CE, " + DICE_STAYS,
    "bootstrap-hard": "hard bootstrapping (Reed et al. 2015), CE against 0.8 label + 0.2 predicted class, in place of CE, " + DICE_STAYS,
    "nr-dice": "the noise-robust Dice loss (Wang et al. 2020, PyMIC), mean over all classes of sum |p - g|^1.5 / sum (p + g), "
    "alone (no CE, no soft Dice); no detection, no refurbishment.",
    "t-loss": "T-Loss (Gonzalez-Jimenez et al. 2023), Student-t NLL of softmax - one-hot over the foreground channels per pixel, "
    "learnable nu = exp(log nu) from log nu = 1 (Adam, lr 1e-3), in place of CE, " + DICE_STAYS,
}

for name, text in DESCRIPTIONS.items():
    register_recipe(
        Recipe(
            name=name,
            description=f"Standard U-Net training with a robust loss: {text}",
            trainer="robust-loss",
            trainer_params={"loss": name, **loss_defaults(name)},
        )
    )
