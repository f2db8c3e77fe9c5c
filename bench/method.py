"""The method interface: what a trial gives a method, the four roles a method can play, and recipes.

A method sees one `Trial`: its frozen inputs (`TrialInputs`: protocol, seed, images, the
labels as given, ids, metadata, device), the `History` of the training pass (per-epoch
losses and overlaps, written by the loop only), the labels and weights trained on now
(read-only arrays) and the current model. Each role answers through return values, and
the loop (`bench.training.fit`) is the only writer of the trial:

- a **trainer** (`Trainer`) is the update rule: `setup` returns the model that is
  evaluated, `step` trains on one `Batch` and returns a `Step` (per-sample losses and the
  logits, optionally which samples it selected);
- a **detector** (`Detector`) watches training (`on_epoch_end`) and, at the recipe's
  detection epoch, returns `Scores` (one float per training sample, higher = more
  suspicious, optionally pixel maps); `flag` turns scores into flags by its documented rule;
- a **refurbisher** (`Refurbisher`) answers the flags with a `Refurbishment` (new labels
  and / or weights for some samples), which the loop applies once;
- a **corrector** (`Corrector`) rewrites labels after every epoch (ADELE-style); the loop
  applies each correction and keeps the union of corrected pixels in the history.

A recipe (`Recipe`) names one combination of these with a schedule: the unit on the
board. Plugins in `methods/` subclass the roles and register them by name.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bench.registry import Registry

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from bench.labelset import LabelSet
    from bench.protocols import Protocol


def read_only(array: np.ndarray) -> np.ndarray:
    """A view of `array` that cannot be written through (the arrays methods read but must not change)."""
    view = array.view()
    view.flags.writeable = False
    return view


# --------------------------------------------------------------------------- what a trial gives a method


@dataclass(frozen=True, eq=False)
class TrialInputs:
    """Everything a trial starts from; frozen, and no method changes it."""

    protocol: Protocol
    seed: int
    images: torch.Tensor  # float32 (N, 1, H, W) in [0, 1], on the CPU
    given: np.ndarray  # uint8 (N, H, W), read-only: the (noisy) training labels as given
    ids: tuple[str, ...]
    info: pd.DataFrame | None  # one metadata row per training sample (id, patient, view, phase, ...)
    label_set: LabelSet  # what the label values mean (the dataset's structures)
    device: torch.device  # where the model runs; state stays on the CPU and batches move (bench.device)
    #: float64 (N, 2), read-only: mm per pixel along (row, col) of each training image (None: not known)
    spacing: np.ndarray | None = None
    #: the noise truth (bool (N,): which samples are corrupted) and the clean labels (uint8 (N, H, W)); None unless
    #: the recipe is a reference (its detector or refurbisher declares `reference`), the only roles allowed to read them
    truth_corrupted: np.ndarray | None = None
    truth_labels: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of training samples."""
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        """Background + the dataset's structures: the model's output channels."""
        return self.label_set.num_classes


class History:
    """What the loop recorded of every finished epoch's training pass; methods read it, only the loop appends."""

    def __init__(self, n: int, shape: tuple[int, int]) -> None:
        self._n = n
        self._losses: list[np.ndarray] = []
        self._overlaps: list[np.ndarray] = []
        self._selected: list[np.ndarray] = []
        self._shape = (n, *shape)
        self._corrected: np.ndarray | None = None  # made by the first correction: most recipes have no corrector

    @property
    def epoch(self) -> int:
        """Number of finished epochs."""
        return len(self._losses)

    @property
    def losses(self) -> tuple[np.ndarray, ...]:
        """Per finished epoch, float64 (N,): each sample's training loss, from the batched pass it trained on."""
        return tuple(self._losses)

    @property
    def overlaps(self) -> tuple[np.ndarray, ...]:
        """Per finished epoch, int (N, S, 3): per sample and structure, pixels of (prediction AND label, prediction, label).

        Prediction = the training pass's argmax; label = the label trained on at that step.
        """
        return tuple(self._overlaps)

    @property
    def selected(self) -> tuple[np.ndarray, ...]:
        """Per finished epoch, float64 (N,): the share of the trainer's networks that selected the sample for
        its update (`Step.selected`); NaN where the trainer reported no selection (all-NaN for a plain trainer)."""
        return tuple(self._selected)

    @property
    def corrected(self) -> np.ndarray:
        """bool (N, H, W), read-only: pixels whose label a corrector has changed so far."""
        return read_only(np.zeros(self._shape, dtype=bool) if self._corrected is None else self._corrected)

    def append(self, losses: np.ndarray, overlaps: np.ndarray, selected: np.ndarray) -> None:
        """Record one finished epoch (the training loop's call)."""
        for name, a in (("losses", losses), ("selected", selected)):
            if a.shape != (self._n,):
                raise ValueError(f"{name} must be one value per training sample")
        self._losses.append(read_only(np.asarray(losses, dtype=np.float64)))
        self._overlaps.append(read_only(np.asarray(overlaps)))
        self._selected.append(read_only(np.asarray(selected, dtype=np.float64)))

    def add_corrected(self, changed: np.ndarray) -> None:
        """Add the pixels one correction changed (the training loop's call)."""
        if self._corrected is None:
            self._corrected = np.zeros(self._shape, dtype=bool)
        self._corrected |= changed


class Trial:
    """What every hook receives: the inputs, the history, the labels and weights trained on now, the model.

    Everything here is read-only for methods: the loop writes the history, applies
    refurbishments and corrections, and installs the model the trainer's `setup` returns.
    """

    def __init__(self, inputs: TrialInputs, labels: torch.Tensor, weights: torch.Tensor, generator: torch.Generator) -> None:
        self.inputs = inputs
        self.history = History(inputs.n, tuple(inputs.given.shape[1:]))
        self.detect_epoch: int | None = None  # after which epoch the recipe detects (None: no detector)
        self._labels = labels  # int64 (N, H, W), CPU
        self._weights = weights  # float32 (N,), CPU
        self._generator = generator
        self._model: torch.nn.Module | None = None

    # -- the inputs, by name ------------------------------------------------------------------

    @property
    def protocol(self) -> Protocol:
        """The protocol the trial runs."""
        return self.inputs.protocol

    @property
    def seed(self) -> int:
        """The trial's seed."""
        return self.inputs.seed

    @property
    def images(self) -> torch.Tensor:
        """float32 (N, 1, H, W) training images in [0, 1], on the CPU."""
        return self.inputs.images

    @property
    def given(self) -> np.ndarray:
        """uint8 (N, H, W), read-only: the training labels as given (noisy)."""
        return self.inputs.given

    @property
    def ids(self) -> tuple[str, ...]:
        """Training sample ids, in the order of every per-sample array."""
        return self.inputs.ids

    @property
    def info(self) -> pd.DataFrame | None:
        """One metadata row per training sample (id, patient, view, phase, ...)."""
        return self.inputs.info

    @property
    def device(self) -> torch.device:
        """Where the model runs (batches move there; everything else stays on the CPU)."""
        return self.inputs.device

    @property
    def n(self) -> int:
        """Number of training samples."""
        return self.inputs.n

    @property
    def epoch(self) -> int:
        """Number of finished epochs (during an epoch: its 0-based index)."""
        return self.history.epoch

    # -- what training changes ---------------------------------------------------------------

    @property
    def labels(self) -> np.ndarray:
        """int64 (N, H, W), read-only: the labels trained on now (refurbishers and correctors change them via the loop)."""
        return read_only(self._labels.numpy())

    @property
    def weights(self) -> np.ndarray:
        """float32 (N,), read-only: the per-sample loss weights trained with now (discarding sets 0)."""
        return read_only(self._weights.numpy())

    @property
    def model(self) -> torch.nn.Module:
        """The model that is evaluated at the end (the one the trainer's `setup` returned)."""
        if self._model is None:
            raise RuntimeError("the trainer has not set up a model yet")
        return self._model

    def label_tensor(self, index: np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """A copy of the current labels (all, or the samples at `index`) as an int64 tensor, for torch code."""
        import torch

        return (self._labels if index is None else self._labels[torch.as_tensor(index)]).clone()

    def batches(self, shuffle: bool) -> list[torch.Tensor]:
        """Sample indices in batches of the protocol's size (a seeded shuffle when training)."""
        import torch

        order = torch.randperm(self.n, generator=self._generator) if shuffle else torch.arange(self.n)
        return list(order.split(self.protocol.batch_size))

    def predict(self, images: torch.Tensor | None = None, model: torch.nn.Module | None = None) -> torch.Tensor:
        """Softmax probabilities (N, C, H, W) on the CPU of `model` (default: the trial's) on `images` (default: training images).

        Eval mode, no gradients, in batches of the protocol's size; the model's mode is restored.
        """
        import torch

        model = model or self.model
        images = self.images if images is None else images
        was_training = model.training
        model.eval()
        size = self.protocol.batch_size
        with torch.no_grad():
            out = [torch.softmax(model(images[i : i + size].to(self.device)), 1).cpu() for i in range(0, len(images), size)]
        model.train(was_training)
        return torch.cat(out)


# --------------------------------------------------------------------------- what methods return


@dataclass(frozen=True, eq=False)
class Batch:
    """One training batch: positions in the trial (CPU), images, labels and weights (on the trial's device)."""

    index: torch.Tensor  # int64 (B,)
    x: torch.Tensor  # float32 (B, 1, H, W)
    y: torch.Tensor  # int64 (B, H, W)
    w: torch.Tensor  # float32 (B,)


@dataclass(frozen=True, eq=False)
class Step:
    """What a trainer's step returns: detached per-sample losses (B,) and the logits (B, C, H, W) they came from.

    `selected`: for trainers that pick samples for their update (co-teaching), the share of
    their networks that picked each sample, in [0, 1], NaN where a sample could not be
    picked; None when the step made no selection. The loop records it in `History.selected`.
    """

    losses: torch.Tensor
    logits: torch.Tensor
    selected: torch.Tensor | None = None


@dataclass(frozen=True, eq=False)
class Scores:
    """A detector's answer: one float per training sample (higher = more suspicious), optionally pixel maps."""

    values: np.ndarray  # float (N,)
    pixel_flags: np.ndarray | None = None  # bool (N, H, W): pixels the detector marks as mislabelled


@dataclass(frozen=True, eq=False)
class Refurbishment:
    """A refurbisher's answer: the samples it acts on, and their new labels and / or loss weights."""

    index: np.ndarray  # int (K,): positions of the samples acted on
    labels: torch.Tensor | None = None  # int64 (K, H, W) new labels, or None: labels unchanged
    weights: torch.Tensor | None = None  # float32 (K,) new loss weights, or None: weights unchanged


# --------------------------------------------------------------------------- the roles


class Trainer:
    """The update rule. `setup` builds models and optimisers and returns the evaluated model; `step` trains on a batch."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def setup(self, trial: Trial) -> torch.nn.Module:
        """Build the model that is evaluated at the end (`bench.build_model(trial.protocol, trial.device,
        trial.inputs.num_classes)`) and whatever else the rule needs; return that model."""
        raise NotImplementedError

    def step(self, trial: Trial, batch: Batch) -> Step:
        """One update on `batch`; return its detached per-sample losses and the logits they came from.

        The loop records both for every sample every epoch (losses, and overlaps of the argmax
        with the batch's labels), so detectors never need an extra pass for them.
        """
        raise NotImplementedError


class Detector:
    """Watches training through `on_epoch_end` and scores every training sample at the detection epoch."""

    #: a reference (the oracle) reads the noise truth (`trial.inputs.truth_corrupted`); no method may
    reference: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    def on_epoch_end(self, trial: Trial) -> None:
        """Called after every epoch; `trial.history.losses[-1]` holds that epoch's per-sample losses."""

    def score(self, trial: Trial) -> Scores:
        """At the detection epoch: one float per training sample, higher = more likely mislabelled."""
        raise NotImplementedError

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        """Boolean mask of flagged samples, by the detector's own documented rule (default: `bench.mixture_flags`)."""
        from bench.flagging import mixture_flags

        return mixture_flags(scores)


class Refurbisher:
    """Acts once on the flagged samples: replaces their labels or changes their loss weights."""

    #: a reference (restoring the clean labels) reads the noise truth (`trial.inputs.truth_labels`); no method may
    reference: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = params

    def on_epoch_end(self, trial: Trial) -> None:
        """Called after every epoch, before detection (a refurbisher with a temporal teacher keeps its history here)."""

    def refurbish(self, trial: Trial, flags: np.ndarray) -> Refurbishment:
        """What to do with the flagged samples (bool (N,)); the loop applies it and records them as refurbished."""
        raise NotImplementedError


class Corrector:
    """Rewrites labels after every epoch, for methods that correct while they train (ADELE)."""

    def __init__(self, **params: Any) -> None:
        self.params = params

    def correct(self, trial: Trial) -> torch.Tensor | None:
        """After each epoch: new int64 (N, H, W) labels for the whole training set, or None for no change."""
        raise NotImplementedError


# --------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe:
    """A named method: trainer + detector + refurbisher (or corrector) + schedule, with their parameters."""

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
    #: a corrector rewrites labels after every epoch; its flagged samples count as refurbished
    corrector: str | None = None
    corrector_params: dict[str, Any] = field(default_factory=dict)
    #: refurbish the flagged samples again every this many epochs after detection (None: once)
    refurbish_every: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.detect_at <= 1.0:
            raise ValueError(f"recipe {self.name}: detect_at must be in (0, 1]")
        if self.refurbisher is not None and self.detect_at == 1.0:
            raise ValueError(f"recipe {self.name}: refurbishing after the last epoch changes nothing; detect_at < 1")
        if self.refurbisher is not None and self.detector is None:
            raise ValueError(f"recipe {self.name}: a refurbisher needs a detector")
        if self.refurbisher is not None and self.corrector is not None:
            raise ValueError(f"recipe {self.name}: a recipe has a refurbisher or a corrector, not both")
        if self.refurbish_every is not None and (self.refurbisher is None or self.refurbish_every < 1):
            raise ValueError(f"recipe {self.name}: refurbish_every needs a refurbisher and at least 1 epoch")

    def detect_epoch(self, epochs: int) -> int:
        """The epoch count after which detection and refurbishment happen (1 .. epochs - 1 where possible; epochs for 1.0)."""
        if self.detect_at == 1.0:
            return epochs
        return min(max(1, round(self.detect_at * epochs)), max(1, epochs - 1))

    @property
    def reference(self) -> bool:
        """Whether the recipe is a reference (a ceiling that reads the noise truth), not a method: never ranked."""
        roles = ((detectors, self.detector), (refurbishers, self.refurbisher))
        return any(name is not None and registry.get(name).reference for registry, name in roles)

    def describe(self) -> dict[str, Any]:
        """The recipe as plain data, for records and `bench list methods`."""
        out: dict[str, Any] = {
            "trainer": self.trainer,
            "detector": self.detector,
            "refurbisher": self.refurbisher,
            "detect_at": self.detect_at,
            "trainer_params": dict(self.trainer_params),
            "detector_params": dict(self.detector_params),
            "refurbisher_params": dict(self.refurbisher_params),
        }
        if self.corrector is not None:
            out.update(corrector=self.corrector, corrector_params=dict(self.corrector_params))
        if self.refurbish_every is not None:
            out["refurbish_every"] = self.refurbish_every
        return out


trainers: Registry[type[Trainer]] = Registry("trainer")
detectors: Registry[type[Detector]] = Registry("detector")
refurbishers: Registry[type[Refurbisher]] = Registry("refurbisher")
correctors: Registry[type[Corrector]] = Registry("corrector")
methods: Registry[Recipe] = Registry("method")


def _caller() -> str:
    return sys._getframe(2).f_globals.get("__name__", "")


def register_recipe(recipe: Recipe) -> Recipe:
    """Register a recipe under its own name (the one way plugins add methods)."""
    methods.register(recipe.name, recipe, origin=_caller())
    return recipe


#: The two standard actions on flagged samples: (name suffix, refurbisher, what happens to a flagged sample).
REFURB_AND_DISCARD = (
    ("refurb", "pseudo-label", "replaced by the model's pseudo-labels"),
    ("discard", "discard", "dropped from the loss"),
)


def register_refurb_and_discard(prefix: str, description: str, **recipe: Any) -> tuple[Recipe, Recipe]:
    """Register `<prefix>-refurb` and `<prefix>-discard`: one detector, flagged samples either
    pseudo-labelled or dropped. `description` has a `{what}` slot for what happens to them."""
    origin = _caller()
    made = []
    for suffix, refurbisher, what in REFURB_AND_DISCARD:
        r = Recipe(name=f"{prefix}-{suffix}", description=description.format(what=what), refurbisher=refurbisher, **recipe)
        methods.register(r.name, r, origin=origin)
        made.append(r)
    return made[0], made[1]
