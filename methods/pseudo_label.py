"""Pseudo-label refurbishment: replace flagged labels with the model's own prediction.

The prediction (argmax of the current model in eval mode) is cleaned into a
valid label map (`bench.clean_label_map`): the largest connected component of
each structure, holes filled. With `min_confidence`, pixels where the model's top probability is
below it keep the label trained on until then.
"""

from __future__ import annotations

import numpy as np
import torch

from bench import Refurbisher, Refurbishment, Trial, clean_label_map, refurbishers


@refurbishers.register("pseudo-label")
class PseudoLabel(Refurbisher):
    """Flagged labels := the cleaned prediction of the model at the detection epoch."""

    def __init__(self, min_confidence: float | None = None) -> None:
        super().__init__(min_confidence=min_confidence)
        self.min_confidence = min_confidence

    def refurbish(self, trial: Trial, flags: np.ndarray) -> Refurbishment:
        index = np.flatnonzero(flags)
        if not len(index):
            return Refurbishment(index)
        prob = trial.predict(trial.images[torch.from_numpy(index)])
        top, pred = prob.max(1)
        label_set = trial.inputs.label_set
        new = torch.from_numpy(np.stack([clean_label_map(p, label_set) for p in pred.numpy().astype(np.uint8)]).astype(np.int64))
        if self.min_confidence is not None:
            new = torch.where(top < self.min_confidence, trial.label_tensor(index), new)
        return Refurbishment(index, labels=new)
