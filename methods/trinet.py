"""TriNet (Zhang et al., "Robust medical image segmentation from non-expert annotations with tri-network",
MICCAI 2020): three networks, each trained on the pixels that the other two both find small-loss.

Reference code: PyMIC (HiLab-git/PyMIC), `pymic/net_run_nll/nll_trinet.py` (the rule) with
`pymic/util/ramps.py` (`get_rampup_ratio`, linear) and the JSRT example
`seg_noisy_label/JSRT/config/unet_trinet.cfg` of HiLab-git/PyMIC_examples (the defaults). Here:

Selection, per PIXEL, as PyMIC's `get_loss_and_confident_mask`. In each batch, network k's
pixel loss is -log(0.999 p + 5e-4) with p its softmax probability of the pixel's label
(PyMIC's smoothed cross-entropy); its small-loss pixels are those whose loss is strictly
below the `remember`-quantile of that loss over ALL pixels of the batch pooled (`torch.quantile`,
linear interpolation, as PyMIC; torch allows at most 2**24 pixels a batch). Network 1 is
trained on the pixels small-loss for both 2 and 3 (mask2 AND mask3), network 2 on mask1 AND
mask3, network 3 on mask1 AND mask2 (the masks are constants: no gradient flows through them).

Ramp (PyMIC: `remb_ratio = 1 - (1 - select_ratio) x rampup`, rampup linear from iteration
`rampup_start` to `rampup_end`, clipped to [0, 1]): at the start of 0-based epoch e of E,
progress = e / E and rampup = clip((progress - rampup_start) / (rampup_end - rampup_start), 0, 1)
(1 from rampup_end on, so rampup_start = rampup_end is a step). PyMIC evaluates its ramp at
`glob_it`, which it advances once per round of `iter_valid` iterations, so its ratio is constant
over a round as ours is over an epoch.

Defaults and their source: select_ratio = 0.9 (`trinet_select_ratio`), rampup_start = 0.1 and
rampup_end = 0.8 of training (`rampup_start = 1000`, `rampup_end = 8000` of `iter_max = 10000`),
all from PyMIC's JSRT TriNet config. Evaluated model: the mean of the three networks' logits,
as PyMIC's `TriNet.forward` in eval mode (`infer_mode = 1`, "taking average of the three
networks for inference").

Deviations from the reference, each on purpose:
- Loss (`loss`, default "protocol"): each network is updated on the protocol's loss over its
  selected pixels: the sample-weighted mean of the plain cross-entropy over all selected pixels
  of the batch pooled (PyMIC's `sum(loss x mask) / sum(mask)`, with sample weights) + dice_weight
  x the sample-weighted mean of (1 - soft Dice over the sample's selected pixels, foreground
  classes, smoothing 1 as `bench.per_sample_loss`). PyMIC trains on its smoothed cross-entropy
  only; loss="ce" drops the Dice term (the smoothing only ranks pixels, never trains). With every
  pixel selected this objective is the standard trainer's, so TriNet differs from three
  independent standard networks by its selection alone.
- Each network has its own Adam (protocol lr and weight decay) on its own objective; PyMIC runs
  one Adam on the mean of the three objectives, which differs only through Adam's epsilon and the
  weight decay being added to a third of the gradient.
- At remember ratio 1 every pixel is selected: PyMIC's `loss < quantile(loss, 1)` drops the
  batch's largest-loss pixel(s) even before its ramp starts.
- Sample weights: pixels of weight-0 samples are never selected and never enter the quantile (so
  such a sample changes no network's update, as `bench.weighted_update`); a network with no
  selected pixel of positive weight is not stepped (PyMIC would divide by zero).

Initialisation: network 1 draws from the trial's torch RNG (it is the standard trainer's model);
networks 2 and 3 each draw inside a forked RNG, seeded by 62-bit draws of a torch.Generator of
the trial seed: the rest of the trial draws the same random numbers as with the standard trainer,
and neighbouring trial seeds share no network (as seeds seed + 1, seed + 2 would).

What the loop records (`Step`): losses and logits of the evaluated ensemble (the mean logits of
the three networks' training-mode forward passes), so loss-based detectors read TriNet as they
read any trainer; `selected`: per sample, the fraction of its pixels in each network's training
mask, averaged over the three networks (NaN for weight-0 samples; None while the remember ratio
is 1, when everything is selected and selection says nothing). Cost: the record's train_s and
eval_s cover the three networks (three forward and backward passes per batch, three at inference).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bench import Batch, Recipe, Step, Trainer, Trial, build_model, per_sample_loss, register_recipe, trainers

#: mixed into the trial seed for the generator that seeds networks 2 and 3 (any fixed constant)
INIT_SALT = 0x7121_2020
LOSSES = ("protocol", "ce")


class MeanLogits(torch.nn.Module):
    """An ensemble that returns the mean of its networks' logits (PyMIC's TriNet at inference)."""

    def __init__(self, nets: list[torch.nn.Module]) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(net(x) for net in self.nets) / len(self.nets)


def selection_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PyMIC's pixel loss for ranking (B, H, W): -log(0.999 p + 5e-4), p = softmax probability of the label."""
    p = torch.softmax(logits, 1).gather(1, y.unsqueeze(1)).squeeze(1)
    return -torch.log(p * 0.999 + 5e-4)


def small_loss_pixels(losses: torch.Tensor, eligible: torch.Tensor, remember: float) -> torch.Tensor:
    """Bool (B, H, W): pixels of eligible samples whose loss is below the `remember`-quantile of the eligible pixels' losses.

    remember = 1 selects every eligible pixel; no eligible sample selects nothing.
    """
    eligible = eligible.view(-1, 1, 1).expand_as(losses)
    if remember >= 1.0 or not eligible.any():
        return eligible.clone()
    return (losses < torch.quantile(losses[eligible], remember)) & eligible  # torch's limit: 2**24 pixels a batch


def peer_masks(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Network k's training mask: the AND of the other two networks' small-loss masks (PyMIC: mask23, mask13, mask12)."""
    return [masks[1] & masks[2], masks[0] & masks[2], masks[0] & masks[1]]


def masked_objective(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor, mask: torch.Tensor, dice_weight: float) -> torch.Tensor | None:
    """Weighted CE over the selected pixels pooled + dice_weight x weighted mean (1 - soft Dice over each sample's selected pixels).

    None when no selected pixel has positive weight. With every pixel selected it equals the
    `w`-weighted mean of `bench.per_sample_loss`.
    """
    wm = w.view(-1, 1, 1) * mask.to(w.dtype)
    total = wm.sum()
    if not total > 0:
        return None
    objective = (F.cross_entropy(logits, y, reduction="none") * wm).sum() / total
    if dice_weight == 0:
        return objective
    m = mask.unsqueeze(1).to(logits.dtype)
    prob = torch.softmax(logits, 1)[:, 1:] * m
    onehot = F.one_hot(y, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].to(prob.dtype) * m
    inter = (prob * onehot).flatten(2).sum(2)
    denom = (prob + onehot).flatten(2).sum(2)
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return objective + dice_weight * ((1 - dice.mean(1)) * w).sum() / w.sum()


@trainers.register("trinet")
class TriNetTrainer(Trainer):
    """Three U-Nets, each updated on the pixels the other two both find small-loss; the mean of their logits is evaluated."""

    def __init__(self, select_ratio: float = 0.9, rampup_start: float = 0.1, rampup_end: float = 0.8, loss: str = "protocol") -> None:
        super().__init__(select_ratio=select_ratio, rampup_start=rampup_start, rampup_end=rampup_end, loss=loss)
        if not 0.0 < select_ratio <= 1.0:
            raise ValueError("select_ratio must be in (0, 1]")
        if not 0.0 <= rampup_start <= rampup_end <= 1.0:
            raise ValueError("need 0 <= rampup_start <= rampup_end <= 1 (fractions of training)")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}")
        self.select_ratio, self.rampup_start, self.rampup_end, self.loss = select_ratio, rampup_start, rampup_end, loss

    def rampup(self, epoch: int, epochs: int) -> float:
        """PyMIC's linear ramp at the start of 0-based `epoch` of `epochs`: clip((e/E - start) / (end - start), 0, 1)."""
        progress = epoch / epochs
        if progress >= self.rampup_end:
            return 1.0
        if progress <= self.rampup_start:
            return 0.0
        return (progress - self.rampup_start) / (self.rampup_end - self.rampup_start)

    def remember_ratio(self, epoch: int, epochs: int) -> float:
        """The fraction of pixels each network keeps: 1 - (1 - select_ratio) x rampup."""
        return 1.0 - (1.0 - self.select_ratio) * self.rampup(epoch, epochs)

    def setup(self, trial: Trial) -> torch.nn.Module:
        p = trial.protocol
        classes = trial.inputs.num_classes
        nets = [build_model(p, trial.device, classes)]  # from the trial's RNG: the standard trainer's model
        seeds = torch.randint(1 << 62, (2,), generator=torch.Generator().manual_seed(trial.seed ^ INIT_SALT)).tolist()
        for seed in seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                nets.append(build_model(p, trial.device, classes))
        self.nets = nets
        self.optimizers = [torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.weight_decay) for net in nets]
        self.ensemble = MeanLogits(nets)
        return self.ensemble

    def step(self, trial: Trial, batch: Batch) -> Step:
        remember = self.remember_ratio(trial.epoch, trial.protocol.epochs)
        x, y, w = batch.x, batch.y, batch.w
        self.ensemble.train()
        logits = [net(x) for net in self.nets]
        eligible = w > 0
        with torch.no_grad():
            own = [small_loss_pixels(selection_loss(out, y), eligible, remember) for out in logits]
        masks = peer_masks(own)
        dice_weight = trial.protocol.dice_weight if self.loss == "protocol" else 0.0
        for out, mask, optimizer in zip(logits, masks, self.optimizers, strict=True):
            objective = masked_objective(out, y, w, mask, dice_weight)
            if objective is not None:
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                optimizer.step()
        with torch.no_grad():
            mean = sum(out.detach() for out in logits) / len(logits)
            losses = per_sample_loss(mean, y, trial.protocol.dice_weight)
            selected = None
            if remember < 1.0:
                share = torch.stack(masks).flatten(2).double().mean(2).mean(0)
                selected = torch.where(eligible, share, torch.full_like(share, float("nan")))
        return Step(losses, mean, selected)


register_recipe(
    Recipe(
        name="trinet",
        description="TriNet (Zhang et al. 2020, PyMIC's rule): three U-Nets, each trained on the pixels both others find "
        "small-loss (per batch, below the remember-quantile of each network's pixel loss); remember ratio ramps linearly "
        "1 -> select_ratio 0.9 from 10% to 80% of training (PyMIC's JSRT config); protocol loss over the selected pixels; "
        "the mean of the three networks' logits is evaluated (3x the compute of one network). No detector, no refurbishment.",
        trainer="trinet",
        detect_at=1.0,
        trainer_params={"select_ratio": 0.9, "rampup_start": 0.1, "rampup_end": 0.8, "loss": "protocol"},
    )
)
