"""Co-teaching (Han et al., NeurIPS 2018): two networks teach each other with their small-loss samples.

Trainer "coteaching": two U-Nets of the protocol (network 1 is the model `setup` returns, the one
evaluated; network 2 is initialised from `seed + 1` inside a forked RNG, so the rest
of the trial draws the same random numbers as with the standard trainer). In every
batch each network picks the (1 - forget_rate) fraction of its own smallest-loss
samples (zero-weight samples are never picked) and each network is updated on the
samples its PEER picked (the protocol's per-sample loss, weighted by the sample weights).

forget_rate schedule (the reference code's `rate_schedule`): at 0-based epoch e,
forget_rate = tau x min(1, e / (ramp_epochs - 1)), i.e. linspace(0, tau, ramp_epochs)
over the first ramp_epochs epochs, tau afterwards. The paper uses ramp_epochs = 10 of
200 epochs; here the default is min(10, epochs // 2) so short protocols still train at
the full rate for half of their epochs. tau: the paper sets it to the true noise rate,
which a method cannot know; the default is a fixed tau = 0.3 (a parameter).

Detector "coteaching": reads the selections the trainer reports to the loop
(`Step.selected`, kept in `trial.history.selected`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench import Batch, Detector, Recipe, Scores, Step, Trainer, Trial, build_model, detectors, per_sample_loss, register_recipe, trainers


def select_small_loss(losses: torch.Tensor, weights: torch.Tensor, forget_rate: float) -> torch.Tensor:
    """Bool mask (B,) of the floor((1 - forget_rate) x n) smallest losses among the n samples with weight > 0.

    At least one sample is kept when any has weight > 0 (a small last batch would
    otherwise train on nothing). Ties break by position in the batch (stable sort).
    """
    eligible = weights > 0
    n = int(eligible.sum())
    keep = min(n, max(1 if n else 0, math.floor((1.0 - forget_rate) * n + 1e-9)))
    masked = torch.where(eligible, losses, torch.full_like(losses, math.inf))
    order = torch.sort(masked, stable=True).indices
    mask = torch.zeros(losses.shape, dtype=torch.bool, device=losses.device)
    mask[order[:keep]] = True
    return mask


def _mean_over(losses: torch.Tensor, w: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
    """Weighted mean of `losses` over `mask` (None when nothing is selected)."""
    sw = w * mask.to(w.dtype)
    total = sw.sum()
    return (losses * sw).sum() / total if total > 0 else None


@trainers.register("coteaching")
class CoTeachingTrainer(Trainer):
    """Two U-Nets, each updated on the small-loss samples picked by the other; network 1 is evaluated."""

    def __init__(self, tau: float = 0.3, ramp_epochs: int | None = None) -> None:
        super().__init__(tau=tau, ramp_epochs=ramp_epochs)
        if not 0.0 <= tau < 1.0:
            raise ValueError("tau must be in [0, 1)")
        if ramp_epochs is not None and ramp_epochs < 0:
            raise ValueError("ramp_epochs must be >= 0")
        self.tau = tau
        self.ramp_epochs = ramp_epochs

    def ramp(self, epochs: int) -> int:
        """The number of ramp epochs for a protocol of `epochs` epochs (default min(10, epochs // 2))."""
        return min(10, epochs // 2) if self.ramp_epochs is None else self.ramp_epochs

    def forget_rate(self, epoch: int, epochs: int) -> float:
        """forget_rate at 0-based `epoch`: tau x min(1, epoch / (ramp - 1)); tau throughout when ramp == 0."""
        ramp = self.ramp(epochs)
        if ramp == 0:
            return self.tau
        return self.tau * min(1.0, epoch / max(ramp - 1, 1))

    def setup(self, trial: Trial) -> torch.nn.Module:
        p = trial.protocol
        model = build_model(p, trial.device, trial.inputs.num_classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(trial.seed + 1)
            self.peer = build_model(p, trial.device, trial.inputs.num_classes)
        self.models = (model, self.peer)
        self.optimizers = tuple(torch.optim.Adam(m.parameters(), lr=p.lr, weight_decay=p.weight_decay) for m in self.models)
        return model

    def step(self, trial: Trial, batch: Batch) -> Step:
        rate = self.forget_rate(trial.epoch, trial.protocol.epochs)
        x, y, w = batch.x, batch.y, batch.w
        logits, losses = [], []
        for model in self.models:
            model.train()
            out = model(x)
            logits.append(out)
            losses.append(per_sample_loss(out, y, trial.protocol.dice_weight))
        picks = [select_small_loss(loss.detach(), w, rate) for loss in losses]
        for k, optimizer in enumerate(self.optimizers):
            objective = _mean_over(losses[k], w, picks[1 - k])  # updated on the PEER's picks
            if objective is not None:
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                optimizer.step()
        selected = None
        if rate > 0:  # at forget rate 0 everything is picked: no information
            share = (picks[0].double() + picks[1].double()) / 2
            selected = torch.where(w > 0, share, torch.full_like(share, float("nan")))
        return Step(losses[0].detach(), logits[0].detach(), selected)


@detectors.register("coteaching")
class CoTeachingDetector(Detector):
    """Score: 1 - fraction of selections, over both networks and every presentation with forget_rate > 0.

    A sample presented P times after the ramp began (forget_rate > 0; the first epoch
    has forget_rate 0 and selects everything, so it carries no information) was picked
    S times by the two networks together; score = 1 - S / (2P), 0 when P = 0. Flags
    (`flag_rule`): "threshold", score > `threshold` (default 0.5: dropped in more than half
    of its selections; the v1 rule, whose recall is capped near tau / noise rate since a
    sample is dropped at most at rate tau); or a shared rule ("populations", `Detector.flag`).
    Reads `trial.history.selected`, which the "coteaching" trainer reports; with a trainer
    that reports no selection every score is 0.
    """

    own_flag_rules = ("threshold",)

    def __init__(self, threshold: float = 0.5, flag_rule: str = "threshold") -> None:
        super().__init__(threshold=threshold, flag_rule=flag_rule)
        self.threshold = threshold
        self.flag_rule = flag_rule

    def score(self, trial: Trial) -> Scores:
        history = np.stack(trial.history.selected)  # (E, N), NaN where not presented for selection
        presented = np.isfinite(history).sum(0)
        picked = np.nansum(history, axis=0)
        frac = np.divide(picked, presented, out=np.ones(trial.n), where=presented > 0)
        return Scores(1.0 - frac)

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        if self.flag_rule != "threshold":
            return super().flag(scores, trial)
        return scores > self.threshold


register_recipe(
    Recipe(
        name="coteaching",
        description="Co-teaching: two U-Nets trained on each other's small-loss samples (forget rate ramps 0 -> 0.3 over "
        "min(10, epochs // 2) epochs); after training, samples dropped in more than half of their selections are flagged. "
        "No refurbishment.",
        trainer="coteaching",
        detector="coteaching",
        detect_at=1.0,
        trainer_params={"tau": 0.3},
        detector_params={"threshold": 0.5},
        revisions=(
            (
                2,
                {
                    "detector_params": {"threshold": None, "flag_rule": "populations"},
                    "description": "Co-teaching: two U-Nets trained on each other's small-loss samples (forget rate ramps "
                    "0 -> 0.3 over min(10, epochs // 2) epochs; tau = 0.3 fixed, since the true noise rate the reference "
                    "sets it to is unknown to a user); after training, score = 1 - selection frequency, population flags. "
                    "No refurbishment.",
                },
            ),
        ),
    )
)
