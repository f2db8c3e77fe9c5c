"""The method interface: detectors, refurbishers, trainers and the recipes that combine them.

A recipe is the named unit on the leaderboard: a trainer (the update rule), an
optional detector (scores every training sample, higher = more suspicious, and
flags a subset by its own rule), an optional refurbisher (replaces or drops the
flagged labels) and a schedule (after which epoch detection and refurbishment
happen). Plugins in `methods/` subclass these and register them by name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from bench.registry import Registry

if TYPE_CHECKING:
    from bench.training import TrialState


class Trainer:
    """The update rule. `setup` builds models and optimisers; `step` trains on one batch."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def setup(self, state: TrialState) -> None:
        """Create `state.model` (the model evaluated at the end) on `state.device` (`build_model(p, state.device)`)
        and whatever else the rule needs."""
        raise NotImplementedError

    def step(
        self, state: TrialState, index: torch.Tensor, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One update on a batch; return its detached per-sample losses (B,) and the logits (B, C, H, W) they came from.

        The loop records both for every sample every epoch (losses, and overlaps of the
        argmax with the training label), so detectors never need an extra pass for them.
        `x`, `y`, `w` are on `state.device`; `index` (positions in the state) is on the CPU.
        """
        raise NotImplementedError


class Detector:
    """Watches training through hooks and scores every training sample (higher = more suspicious)."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def on_epoch_end(self, state: TrialState) -> None:
        """Called after every epoch; `state.losses[-1]` holds that epoch's per-sample losses."""

    def score(self, state: TrialState) -> np.ndarray:
        """One float per training sample, higher = more likely mislabelled."""
        raise NotImplementedError

    def flag(self, scores: np.ndarray, state: TrialState) -> np.ndarray:
        """Boolean mask of flagged samples, by the detector's own documented rule."""
        raise NotImplementedError


class Refurbisher:
    """Acts on flagged samples: replaces their labels or drops them from the loss."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def apply(self, state: TrialState, flags: np.ndarray) -> None:
        """Change `state.labels` and/or `state.weights` for the flagged samples and set `state.refurbished`."""
        raise NotImplementedError


@dataclass(frozen=True)
class Recipe:
    """A named method: trainer + detector + refurbisher + schedule, with their parameters."""

    name: str
    description: str
    trainer: str = "standard"
    detector: str | None = None
    refurbisher: str | None = None
    #: detection and refurbishment happen after round(detect_at x epochs) epochs (1.0: after training,
    #: for methods that act during training and score at the end)
    detect_at: float = 0.5
    trainer_params: dict[str, Any] = field(default_factory=dict)
    detector_params: dict[str, Any] = field(default_factory=dict)
    refurbisher_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 < self.detect_at <= 1.0:
            raise ValueError(f"recipe {self.name}: detect_at must be in (0, 1]")
        if self.refurbisher is not None and self.detect_at == 1.0:
            raise ValueError(f"recipe {self.name}: refurbishing after the last epoch changes nothing; detect_at < 1")
        if self.refurbisher is not None and self.detector is None:
            raise ValueError(f"recipe {self.name}: a refurbisher needs a detector")

    def detect_epoch(self, epochs: int) -> int:
        """The epoch count after which detection and refurbishment happen (1 .. epochs - 1 where possible; epochs for 1.0)."""
        if self.detect_at == 1.0:
            return epochs
        return min(max(1, round(self.detect_at * epochs)), max(1, epochs - 1))

    def describe(self) -> dict[str, Any]:
        """The recipe as plain data, for records and `bench list methods`."""
        return {
            "trainer": self.trainer,
            "detector": self.detector,
            "refurbisher": self.refurbisher,
            "detect_at": self.detect_at,
            "trainer_params": dict(self.trainer_params),
            "detector_params": dict(self.detector_params),
            "refurbisher_params": dict(self.refurbisher_params),
        }


trainers: Registry[type[Trainer]] = Registry("trainer")
detectors: Registry[type[Detector]] = Registry("detector")
refurbishers: Registry[type[Refurbisher]] = Registry("refurbisher")
methods: Registry[Recipe] = Registry("method")


def register_recipe(recipe: Recipe) -> Recipe:
    """Register a recipe under its own name (the one way plugins add methods)."""
    caller = sys._getframe(1).f_globals.get("__name__", "")
    methods.register(recipe.name, recipe, origin=caller)
    return recipe


#: The two standard actions on flagged samples: (name suffix, refurbisher, what happens to a flagged sample).
REFURB_AND_DISCARD = (
    ("refurb", "pseudo-label", "replaced by the model's pseudo-labels"),
    ("discard", "discard", "dropped from the loss"),
)


def register_refurb_and_discard(prefix: str, description: str, **recipe: Any) -> tuple[Recipe, Recipe]:
    """Register `<prefix>-refurb` and `<prefix>-discard`: one detector, flagged samples either
    pseudo-labelled or dropped. `description` has a `{what}` slot for what happens to them."""
    caller = sys._getframe(1).f_globals.get("__name__", "")
    made = []
    for suffix, refurbisher, what in REFURB_AND_DISCARD:
        r = Recipe(name=f"{prefix}-{suffix}", description=description.format(what=what), refurbisher=refurbisher, **recipe)
        methods.register(r.name, r, origin=caller)
        made.append(r)
    return made[0], made[1]
