"""Forgetting events (Toneva et al., ICLR 2019), adapted to segmentation.

A sample is "learned" at an epoch when its per-sample Dice (mean over the three
structures of the training-pass argmax against the label trained on then, from
`trial.history.overlaps` via `bench.overlap_dice`) is at least `threshold`. A
forgetting event is a transition learned -> not learned between consecutive
epochs. Score: the number of forgetting events over the epochs up to detection;
samples never learned in that window get `epochs seen` (one more than any
possible count, since E epochs allow at most E // 2 events), the paper's
"never learned = maximum" rule made population-independent. Flags: by default
every sample with a score of at least `min_events` (1: forgotten at least once
or never learned); `flag_rule="mixture"` or `"populations"` applies that shared rule
(`Detector.flag`) instead. All flag nothing when every sample has the same score (typically: on a short
schedule no sample reached the threshold, so the counts carry no information
and flagging everyone would refurbish the whole set with an untrained model).

Caveat: "learned" is an absolute Dice; on the small test protocols (64 px, 80
images, <= 16 epochs) the training-pass Dice stays below 0.5 up to the
detection epoch, nothing is ever learned and the detector is uninformative.
"""

from __future__ import annotations

import numpy as np

from bench import Detector, Recipe, Scores, Trial, detectors, overlap_dice, refurb_revisions, register_recipe


def dice_history(overlaps: tuple[np.ndarray, ...]) -> np.ndarray:
    """(E, N) per-sample Dice (mean over structures) of each finished epoch's training pass, from `History.overlaps`."""
    return np.stack([overlap_dice(counts).mean(axis=-1) for counts in overlaps])


def count_events(dice: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Forgetting events (N,) int and ever-learned (N,) bool from an (E, N) Dice history.

    Learned at epoch e: Dice >= threshold. An event: learned at e, not learned at e + 1.
    """
    learned = np.asarray(dice, dtype=np.float64) >= threshold
    if learned.ndim != 2:
        raise ValueError("dice history must be (epochs, samples)")
    events = (learned[:-1] & ~learned[1:]).sum(axis=0)
    return events.astype(np.int64), learned.any(axis=0)


def forgetting_scores(dice: np.ndarray, threshold: float) -> np.ndarray:
    """Event counts as floats; never-learned samples get the number of epochs (more than any count)."""
    events, ever = count_events(dice, threshold)
    return np.where(ever, events, len(dice)).astype(np.float64)


@detectors.register("forgetting")
class ForgettingDetector(Detector):
    """Score = forgetting events (Dice >= threshold, then below) up to detection; never learned = epochs seen.

    Flag rule: score >= `min_events` (default 1: forgotten at least once, or never learned),
    or a shared rule (`flag_rule="mixture"` / `"populations"`); nothing when all scores tie.
    """

    own_flag_rules = ("events",)

    def __init__(self, threshold: float = 0.8, flag_rule: str = "events", min_events: int = 1) -> None:
        super().__init__(threshold=threshold, flag_rule=flag_rule, min_events=min_events)
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be a Dice in (0, 1]")
        if min_events < 1:
            raise ValueError("min_events must be at least 1")
        self.threshold = threshold
        self.flag_rule = flag_rule
        self.min_events = min_events

    def score(self, trial: Trial) -> Scores:
        return Scores(forgetting_scores(dice_history(trial.history.overlaps), self.threshold))

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.size == 0 or np.ptp(scores) == 0:
            return np.zeros(scores.shape, dtype=bool)
        if self.flag_rule != "events":
            return super().flag(scores, trial)
        return scores >= self.min_events


register_recipe(
    Recipe(
        name="forgetting-refurb",
        description="Forgetting events (Dice >= 0.8 learned, learned -> not learned between epochs) counted up to half of "
        "training; samples forgotten at least once or never learned (none when all tie) are replaced by the model's pseudo-labels; "
        "training goes on.",
        detector="forgetting",
        refurbisher="pseudo-label",
        detect_at=0.5,
        detector_params={"threshold": 0.8},
        revisions=refurb_revisions(
            "Forgetting events (Dice >= 0.8 learned, learned -> not learned between epochs) counted up to {when}; "
            "{rule} on the counts; flagged samples {what}; training goes on.",
            detector_params={"flag_rule": "populations"},
        ),
    )
)
