"""Variance of Gradients (VOG; Agarwal, D'souza & Hooker, CVPR 2022), adapted to segmentation.

At K checkpoint epochs the detector takes, for every training sample, the gradient
with respect to the input image of the sum over pixels of the pre-softmax logit of
each pixel's GIVEN label (`trial.given`), with the model in eval mode, averaged over
input channels: one (H, W) map per sample and checkpoint. A sample's VOG is the mean
over pixels of the standard deviation of its maps over the checkpoints (population
variance, as in the paper). Samples whose gradients keep changing are the ones the
model cannot settle on: hard or mislabelled.

Why `trial.given` and not `trial.labels`: VOG asks whether the *annotation* is
consistent with what the model learns, so it looks at the labels as delivered.
In this harness the two are identical until the (single) refurbishment, which
happens after the last checkpoint; a trainer that edits labels during training
(ADELE-style) would otherwise move the target between checkpoints and add variance
of its own making.

Region (where the logits are summed): `all` pixels (the v1 recipes); `foreground`;
or `band`, the pixels within `band_mm` (3 mm) of a boundary of the given label
(where two labels meet), because a sum over every pixel is dominated by the many
pixels whose label nobody disputes, and the error models change labels at
boundaries. The band needs the pixel spacing (`trial.inputs.spacing`).

Checkpoints (default 3, `window="spread"`, the v1 recipes): spread evenly over the
epochs up to the detection epoch, epoch ceil(D * k / K) for k = 1..K, D the detection
epoch (D = 4 of 8: epochs 2, 3, 4; D = 6 of 12: 2, 4, 6), D from the recipe's schedule
(`trial.detect_epoch`); if `score` is called at an epoch that is not yet a
checkpoint, that epoch is added as the last one, so the detection epoch is always
included. Explicit epochs can be given as a list instead of a count.

Training stage (`window`): Agarwal et al. (CVPR 2022, section 3.5) find that the
relation between VOG and error reverses over training: in the early stage the
samples with the highest VOG have the LOWEST error (updates hinge on easy
samples), in the late stage the highest VOG marks the hardest and mislabelled
ones; their CIFAR code keeps checkpoints 0-2 and 347-349 of 350. So a window is
K consecutive epochs: `early` = 1..K, `middle` = K epochs centred on D / 2, `late`
= D-K+1..D (exactly these; the detection epoch is not added). The sign of the score
is fixed per window from the paper, before any result was looked at: `early` -1
(high VOG = clean), `late` +1 and `spread` +1; `middle` +1, the paper's late-stage
reading, since it names no reversal before the late stage (uncertain: the paper
reports only early and late).

Memory: Welford's online mean and M2 over checkpoints, O(N x H x W), never K maps.
Cost: one eval-mode forward and one input-only backward per batch at each checkpoint,
0.5-0.7 of a training epoch each on CPU, so ~0.6 x K / E of training time (K = 3:
~20-25% at 8 epochs, ~15% at 12).

Score: VOG normalised within groups of samples that share difficulty (default by
view and phase from `trial.info`): z-score (v - mean_g) / std_g ("group"), its
absolute value ("abs", the reference code's third option), or raw VOG ("none").
Flags (`flag_rule`, `Detector.flag`): the v1 mixture, or "populations".

The recipes: generation 1 (the v1 boards) spreads 3 checkpoints over all pixels up to
detection at half of training. Generation 2 follows the paper before any board result:
the `late` window (the late stage is where the paper finds high VOG marks mislabelled
samples) over the `band` (the error models change labels at boundaries), detection at
three quarters of training, so the window (epochs 7-9 of 12) is late in what has been
trained yet still leaves a quarter of training to learn from the refurbished labels.
Measured before this choice and kept despite it (studies/vog_stage.py, phantom-quick
v1, 3 seeds): late-band AUROC 0.38 (systematic:0.5) and 0.28 (omission:0.5), below
chance, against early-band 0.62 and 0.92; the signs stay as the paper fixes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from bench import Detector, Scores, Trial, detectors, register_refurb_and_discard

NORMALISE = ("group", "none", "abs")
REGIONS = ("all", "foreground", "band")
#: training-stage windows and the sign each gives VOG (fixed from Agarwal et al. 2022, section 3.5; see the docstring)
WINDOW_SIGN = {"spread": 1.0, "early": -1.0, "middle": 1.0, "late": 1.0}


def checkpoint_epochs(count: int, detect_epoch: int) -> list[int]:
    """K epochs spread evenly over 1..detect_epoch, ending at it: ceil(D * k / K), duplicates dropped."""
    return sorted({min(detect_epoch, max(1, math.ceil(detect_epoch * k / count))) for k in range(1, count + 1)})


def window_epochs(window: str, count: int, detect_epoch: int) -> list[int]:
    """The checkpoint epochs of a training-stage window over epochs 1..detect_epoch (see the module docstring)."""
    if window == "spread":
        return checkpoint_epochs(count, detect_epoch)
    k = min(count, detect_epoch)
    start = {"early": 1, "middle": (detect_epoch - k) // 2 + 1, "late": detect_epoch - k + 1}[window]
    return list(range(start, start + k))


def boundary_band(labels: np.ndarray, spacing: np.ndarray, mm: float) -> np.ndarray:
    """bool (N, H, W): pixels within `mm` (each image's spacing) of a pixel whose 4-neighbour has another label."""
    from scipy import ndimage

    labels = np.asarray(labels)
    edge = np.zeros(labels.shape, dtype=bool)
    down, right = labels[:, 1:, :] != labels[:, :-1, :], labels[:, :, 1:] != labels[:, :, :-1]
    edge[:, 1:, :] |= down
    edge[:, :-1, :] |= down
    edge[:, :, 1:] |= right
    edge[:, :, :-1] |= right
    band = np.zeros_like(edge)
    for i in np.flatnonzero(edge.reshape(len(edge), -1).any(1)):  # once per trial, before the first checkpoint
        band[i] = ndimage.distance_transform_edt(~edge[i], sampling=spacing[i]) <= mm
    return band


def group_normalise(scores: np.ndarray, groups: np.ndarray | None, mode: str = "group") -> np.ndarray:
    """Per-group z-scores of `scores` ("group"), their absolute value ("abs"), or the scores unchanged ("none").

    A group of one sample, or with zero spread, gets 0 (no evidence either way).
    `groups` None means one group of all samples.
    """
    x = np.asarray(scores, dtype=np.float64)
    if mode == "none":
        return x.copy()
    if mode not in NORMALISE:
        raise ValueError(f"normalise must be one of {NORMALISE}, not {mode!r}")
    keys = np.zeros(len(x), dtype=np.int64) if groups is None else pd.factorize(pd.Series(list(groups)))[0]
    count = np.bincount(keys)
    mean = np.bincount(keys, weights=x) / count
    var = np.bincount(keys, weights=(x - mean[keys]) ** 2) / count
    std = np.sqrt(var)
    z = np.where(std[keys] > 0, (x - mean[keys]) / np.where(std[keys] > 0, std[keys], 1.0), 0.0)
    return np.abs(z) if mode == "abs" else z


@detectors.register("vog")
class VOGDetector(Detector):
    """Score: VOG over checkpoint input gradients of the given-label logits, normalised per group; flags: 2-component mixture."""

    def __init__(
        self,
        checkpoints: int | Sequence[int] = 3,
        normalise: str = "group",
        group_by: Sequence[str] = ("view", "phase"),
        region: str = "all",
        batch_size: int | None = None,
        window: str = "spread",
        band_mm: float = 3.0,
        flag_rule: str = "mixture",
    ) -> None:
        explicit = not isinstance(checkpoints, int)
        super().__init__(
            checkpoints=list(checkpoints) if explicit else checkpoints,
            normalise=normalise,
            group_by=list(group_by),
            region=region,
            batch_size=batch_size,
            window=window,
            band_mm=band_mm,
            flag_rule=flag_rule,
        )
        if window not in WINDOW_SIGN:
            raise ValueError(f"window must be one of {tuple(WINDOW_SIGN)}, not {window!r}")
        if explicit and window != "spread":
            raise ValueError("give explicit checkpoint epochs or a window, not both")
        if band_mm <= 0:
            raise ValueError("band_mm must be positive")
        self.window = window
        self.band_mm = band_mm
        self._mask: torch.Tensor | None = None
        if explicit:
            epochs = sorted({int(e) for e in checkpoints})
            if not epochs or epochs[0] < 1:
                raise ValueError("checkpoint epochs must be >= 1")
            self.explicit: list[int] | None = epochs
        elif checkpoints < 2:
            raise ValueError("VOG needs at least 2 checkpoints (a variance over one is 0)")
        else:
            self.explicit = None
        if normalise not in NORMALISE:
            raise ValueError(f"normalise must be one of {NORMALISE}, not {normalise!r}")
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, not {region!r}")
        self.count = checkpoints if not explicit else len(self.explicit)
        self.normalise = normalise
        self.group_by = tuple(group_by)
        self.region = region
        if batch_size is not None and batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.reset()

    # -- online aggregation over checkpoints --------------------------------------------------

    def reset(self) -> None:
        """Forget every checkpoint seen so far."""
        self.seen: list[int] = []  # checkpoint epochs taken so far
        self.raw: np.ndarray | None = None  # raw VOG per sample at the last score
        self.k = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def update(self, gradients: torch.Tensor) -> None:
        """Add one checkpoint's (N, H, W) gradient maps to the running mean and M2 (Welford)."""
        g = gradients.detach()
        self.k += 1
        if self.mean is None:
            self.mean = g.clone()
            self.m2 = torch.zeros_like(g)
            return
        delta = g - self.mean
        self.mean += delta / self.k
        self.m2 += delta * (g - self.mean)

    def vog(self) -> np.ndarray:
        """Raw VOG per sample: mean over pixels of sqrt(population variance over the checkpoints so far)."""
        if self.m2 is None:
            raise RuntimeError("VOG has seen no checkpoint yet")
        std = torch.sqrt(torch.clamp(self.m2 / self.k, min=0))
        return std.flatten(1).mean(1).double().numpy()

    # -- gradients -------------------------------------------------------------------------------

    def input_gradients(
        self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, H, W) input gradients of the sum over pixels (those of `mask`, else the region's) of each pixel's label logit,
        eval mode, channel mean.

        One forward and one backward for the whole batch: in eval mode samples do not
        interact, so the gradient of the batch sum w.r.t. sample i's pixels is sample i's own.
        Parameter gradients are switched off meanwhile (not needed, and cheaper), then restored.
        """
        was_training = model.training
        frozen = [p for p in model.parameters() if p.requires_grad]
        model.eval()
        for p in frozen:
            p.requires_grad_(False)
        try:
            with torch.enable_grad():
                device = next(iter(model.parameters()), images).device
                x = images.detach().to(device).clone().requires_grad_(True)
                logits = model(x)
                target = labels.to(device=logits.device, dtype=torch.int64).unsqueeze(1)
                picked = logits.gather(1, target).squeeze(1)
                if mask is not None:
                    picked = picked * mask.to(picked.device)
                elif self.region == "foreground":
                    picked = picked * (target.squeeze(1) > 0)
                (grad,) = torch.autograd.grad(picked.sum(), x)
        finally:
            for p in frozen:
                p.requires_grad_(True)
            model.train(was_training)
        return grad.mean(1)

    def gradient_maps(self, trial: Trial) -> torch.Tensor:
        """(N, H, W) input gradients of the whole training set for the trial's model.

        Batches of `batch_size` (default 2 x the protocol's): the pass keeps no parameter
        gradients, and larger batches amortise per-layer overhead up to a point (CPU, one
        thread, pass over the training set / training epoch: 64 px 0.7 at batch 8, 0.5 at
        16 and 32; 96 px 0.7 at 16 and 32, 0.9 at 64).
        """
        size = self.batch_size or 2 * trial.protocol.batch_size
        given = torch.from_numpy(np.asarray(trial.given, dtype=np.int64))
        mask = self.region_mask(trial)
        parts = [
            self.input_gradients(trial.model, trial.images[i : i + size], given[i : i + size], None if mask is None else mask[i : i + size])
            for i in range(0, trial.n, size)
        ]
        return torch.cat(parts).cpu()

    def region_mask(self, trial: Trial) -> torch.Tensor | None:
        """The `band` region's (N, H, W) pixel mask of the given labels (made once); None for the other regions."""
        if self.region != "band":
            return None
        if self._mask is None:
            if trial.inputs.spacing is None:
                raise RuntimeError("the band region needs the pixel spacing (trial.inputs.spacing)")
            self._mask = torch.from_numpy(boundary_band(trial.given, trial.inputs.spacing, self.band_mm))
        return self._mask

    # -- hooks -----------------------------------------------------------------------------------

    def planned(self, trial: Trial) -> list[int]:
        """The checkpoint epochs for this protocol (see the module docstring)."""
        if self.explicit is not None:
            return self.explicit
        return window_epochs(self.window, self.count, trial.detect_epoch or trial.protocol.epochs)

    def checkpoint(self, trial: Trial) -> None:
        """Take this epoch's gradient maps into the running statistics (once per epoch)."""
        if trial.epoch in self.seen:
            return
        self.update(self.gradient_maps(trial))
        self.seen.append(trial.epoch)

    def on_epoch_end(self, trial: Trial) -> None:
        if trial.epoch in self.planned(trial):
            self.checkpoint(trial)

    def score(self, trial: Trial) -> Scores:
        if self.window == "spread":
            self.checkpoint(trial)  # the detection epoch is always a checkpoint (a no-op when planned)
        self.raw = self.vog()
        groups = None
        if self.normalise != "none" and self.group_by and trial.info is not None:
            columns = [c for c in self.group_by if c in trial.info.columns]
            if columns:
                groups = trial.info[columns].astype(str).agg("/".join, axis=1).to_numpy()
        return Scores(group_normalise(WINDOW_SIGN[self.window] * self.raw, groups, self.normalise))


register_refurb_and_discard(
    "vog",
    "VOG detector (input-gradient variance over 3 checkpoints spread up to the detection epoch, z-scored per view "
    "and phase, {rule}) at {when}; flagged samples {what}; training goes on.",
    revised={"detector_params": {"window": "late", "region": "band", "flag_rule": "populations"}},
    revised_description="VOG detector (input-gradient variance over the 3 epochs up to detection, the late stage of what "
    "has been trained, summed over the 3 mm band around the given label's boundaries, z-scored per view and phase, {rule}) "
    "at {when}; flagged samples {what}; training goes on.",
    detector="vog",
    detect_at=0.5,
    detector_params={"checkpoints": 3},
)
