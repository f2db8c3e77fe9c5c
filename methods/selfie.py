"""SELFIE for segmentation: a flagged label changes only at pixels whose recent prediction history is consistent.

Song, Kim & Lee, "SELFIE: Refurbishing Unclean Samples for Robust Deep Learning", ICML 2019;
reference code kaist-dmlab/SELFIE (`SELFIE/method/self_correcter.py`, defaults in `SELFIE/main.py`).
There, every sample keeps the classes predicted for it in its last q presentations; with p the
label distribution of that history, its uncertainty is the entropy -sum_c p_c log p_c divided by
log C (C classes), and a sample is refurbishable when the uncertainty is <= epsilon; its
refurbished label is the history's most frequent class.

Here the same rule runs per PIXEL (refurbisher "selfie"): after every epoch the model (eval mode)
predicts the training images and each pixel's argmax class goes into a ring buffer of the last q
epochs (uint8, N x q x H x W bytes: 33 MB on phantom-quick, 1.6 GB on the 1,600 images of
phantom-v1 at q = 15). A pixel of a flagged sample takes its history's majority class where the
normalised entropy of its history is <= epsilon and keeps its current label elsewhere; the map is
then made valid against the label it replaces (`bench.make_valid`: one component per structure, no
hole in the heart where that label had none), as the gated refurbisher does. Unflagged samples
never change.

Defaults and where they come from:
- q = 15, epsilon = 0.05: the paper's and `main.py`'s (`queue_size`, `threshold`), from its grid
  search. At C = 4 classes one dissenting vote among q already gives an uncertainty of
  H(1/q) / log 4 (0.18 at q = 15, 0.33 at q = 6), above 0.05 for every q below 78: at the
  paper's epsilon a pixel is refurbished only when ALL its recorded predictions agree.
- The history used is the last min(q, epochs recorded) predictions: the benchmark's schedules are
  shorter than q (phantom-quick trains 12 epochs, small 8, tiny 2). Recording starts at epoch
  max(1, detect_epoch - q + 1), i.e. at the first epoch here, so the history at detection holds
  min(q, detect_epoch) predictions (6 on phantom-quick, 4 on small, 1 on tiny, where the rule
  reduces to the current model's prediction) and grows by one every epoch after it.

Recipe `selfie`: the loss detector (mean loss over its 3-epoch window, population flags, `bench.high_population_flags`) at half of
training (detect_at 0.5: the reference warms up for 25 of 100 epochs with a history of 15, so its
history is full at the first refurbishment; here half of training gives a history of 6
predictions on phantom-quick and 4 on small at the first refurbishment, and is where the other
detector recipes detect, so their numbers compare), then refurbished again every epoch on the
same flags (refurbish_every 1), because SELFIE refurbishes during training, every mini-batch, not
once. Cost: one prediction pass over the training set per recorded epoch (every epoch here).

Deviations from the reference, each forced by the segmentation setting or the benchmark's roles:
- per pixel, not per image (the brief of issue 15); the majority of a tied history is the lowest
  class index (torch.argmax), which only matters for epsilon >= 0.5;
- the history is the eval-mode prediction after each epoch, not the train-mode prediction of each
  mini-batch (the refurbisher sees the trial between epochs; the loop keeps no prediction maps);
- the distribution p divides by the number of recorded predictions; the reference divides by q
  with unfilled slots counted as class 0, which is the same once the history is full (always so
  after its 25-epoch warm-up);
- only the detector's flagged samples are refurbished (the reference refurbishes any sample of
  the mini-batch whose history is certain, and the small-loss ones rarely change), and flagged
  pixels that are not refurbishable stay in training with their current label (the reference
  drops unclean, unrefurbishable samples from the update: a sample-level choice that does not
  carry over to a map where most pixels are fine);
- a pixel once refurbished keeps its new label until its history agrees on another class, which
  is the reference's reuse of a sample's last corrected label.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from bench import Recipe, Refurbisher, Refurbishment, Trial, make_valid, refurbishers, register_recipe


def history_vote(history: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel of a class history (K, L, H, W), L predictions each: the majority class and the normalised entropy.

    Uncertainty = -sum_c p_c log p_c / log C with p the history's label distribution (0: all L agree,
    1: uniform over the C classes); majority ties go to the lowest class.
    """
    counts = torch.stack([(history == c).sum(1) for c in range(num_classes)], 1)  # (K, C, H, W)
    p = counts.double() / history.shape[1]
    uncertainty = -torch.special.xlogy(p, p).sum(1) / math.log(num_classes)
    return counts.argmax(1), uncertainty


@refurbishers.register("selfie")
class SelfieRefurbisher(Refurbisher):
    """Pixels of flagged labels take their history's majority class where the last q predictions are consistent."""

    def __init__(self, q: int = 15, epsilon: float = 0.05) -> None:
        super().__init__(q=q, epsilon=epsilon)
        if q < 1:
            raise ValueError("q (the history length) must be at least 1 epoch")
        if not 0.0 <= epsilon < 1.0:
            raise ValueError("epsilon must be in [0, 1): at 1 every pixel would count as consistent")
        self.q, self.epsilon = q, epsilon
        self.buffer: torch.Tensor | None = None  # uint8 (N, slots, H, W): a ring of the last predicted class maps
        self.recorded = 0  # epochs written into the ring so far

    def first_epoch(self, trial: Trial) -> int:
        """The first epoch (1-based) whose prediction is recorded: enough for q predictions at detection, not more."""
        return max(1, (trial.detect_epoch or 1) - self.q + 1)

    def on_epoch_end(self, trial: Trial) -> None:
        if trial.detect_epoch is None or trial.epoch < self.first_epoch(trial):
            return
        if self.buffer is None:
            self.buffer = torch.zeros((trial.n, self.q, *trial.given.shape[1:]), dtype=torch.uint8)
        slot = self.recorded % self.q
        size = trial.protocol.batch_size
        for start in range(0, trial.n, size):  # batches, so memory stays one batch of probabilities
            self.buffer[start : start + size, slot] = trial.predict(trial.images[start : start + size]).argmax(1).to(torch.uint8)
        self.recorded += 1

    def history(self, index: torch.Tensor) -> torch.Tensor:
        """The recorded predictions (K, L, H, W) of the samples at `index`, L = min(q, epochs recorded), in slot order."""
        if self.buffer is None or self.recorded == 0:
            raise RuntimeError("selfie: no prediction recorded yet (on_epoch_end runs before every refurbishment)")
        return self.buffer[index, : min(self.recorded, self.q)]

    def refurbish(self, trial: Trial, flags: np.ndarray) -> Refurbishment:
        index = np.flatnonzero(flags)
        if not len(index):
            return Refurbishment(index)
        label_set = trial.inputs.label_set
        out = []
        for start in range(0, len(index), trial.protocol.batch_size):  # batches bound the (K, C, H, W) counts
            part = index[start : start + trial.protocol.batch_size]
            current = trial.label_tensor(part)
            majority, uncertainty = history_vote(self.history(torch.from_numpy(part)), label_set.num_classes)
            voted = torch.where(uncertainty <= self.epsilon, majority, current).numpy().astype(np.uint8)
            old = current.numpy().astype(np.uint8)
            out.extend(make_valid(o, v, label_set) for o, v in zip(old, voted, strict=True))
        return Refurbishment(index, labels=torch.from_numpy(np.stack(out).astype(np.int64)))


register_recipe(
    Recipe(
        name="selfie",
        description="SELFIE per pixel: loss detector (mean loss over the 3 epochs before detection, population flags) at half "
        "of training; a flagged label's pixel takes the majority of its last min(15, epochs) predicted classes where they "
        "agree (normalised entropy <= 0.05), made valid; refurbished again every epoch after detection; training goes on.",
        detector="loss",
        refurbisher="selfie",
        detect_at=0.5,
        detector_params={"window": 3, "flag_rule": "populations"},
        refurbisher_params={"q": 15, "epsilon": 0.05},
        refurbish_every=1,
    )
)
