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

import dataclasses
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
    #: bool (N,), read-only: the samples of the protocol's trusted patients (`Protocol.trusted_patients`), whose labels
    #: in `given` are the verified clean ones; every method may read it (None, as all False: no trusted samples)
    trusted: np.ndarray | None = None

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

    def scheduled_optimizers(self) -> list[torch.optim.Optimizer]:
        """The optimisers whose learning rate the loop schedules (`Protocol.lr_schedule`, every parameter group
        scaled from its initial rate): by default every optimiser the trainer holds as an attribute, or in a list."""
        import torch

        found: list[torch.optim.Optimizer] = []
        for value in vars(self).values():
            for item in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(item, torch.optim.Optimizer) and all(item is not f for f in found):
                    found.append(item)
        return found

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

    #: flag rules of the detector's own besides the shared ones; its `flag` applies them and leaves the rest to `Detector.flag`
    own_flag_rules: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **params: Any) -> None:
        if "flag_rule" in params:
            from bench.flagging import check_flag_rule

            check_flag_rule(params["flag_rule"], self.own_flag_rules)
        self.params = params

    def on_epoch_end(self, trial: Trial) -> None:
        """Called after every epoch; `trial.history.losses[-1]` holds that epoch's per-sample losses."""

    def score(self, trial: Trial) -> Scores:
        """At the detection epoch: one float per training sample, higher = more likely mislabelled."""
        raise NotImplementedError

    def flag(self, scores: np.ndarray, trial: Trial) -> np.ndarray:
        """Boolean mask of flagged samples by the shared rule the `flag_rule` parameter names (`bench.flag_by_rule`):
        "mixture" (the default, the v1 recipes' rule) or "populations" (`bench.high_population_flags`)."""
        from bench.flagging import flag_by_rule

        return flag_by_rule(self.params.get("flag_rule", "mixture"), scores)


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
    #: later generations of the definition, ascending: (generation, changes); see `at`
    revisions: tuple[tuple[int, dict[str, Any]], ...] = ()
    #: the generation this definition belongs to (set by `at`; 1 for a recipe as registered)
    generation: int = 1

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
        generations = [g for g, _ in self.revisions]
        if generations != sorted(set(generations)) or any(g < 2 for g in generations):
            raise ValueError(f"recipe {self.name}: revisions need distinct generations >= 2, ascending")
        for _, changes in self.revisions:
            fixed = set(changes) & {"name", "revisions", "generation"}
            unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
            if fixed or unknown:
                raise ValueError(f"recipe {self.name}: a revision cannot change {sorted(fixed | unknown)}")
        for g in generations:
            self.at(g)  # every generation must be a valid recipe, found at registration rather than in a trial

    def at(self, generation: int) -> Recipe:
        """The definition a protocol of recipe generation `generation` runs (`Protocol.recipes`).

        Definitions change only by a new generation, so a record stays reproducible from its
        protocol: each revision up to `generation` is applied in order; a revision's `*_params`
        update the earlier parameters (a key set to None is dropped), every other field replaces.
        """
        out = dataclasses.replace(self, revisions=(), generation=1)
        own = dict(self.revisions)
        for g in sorted({*own, *RULE_REVISIONS}):
            if g > generation:
                break
            merged: dict[str, Any] = {}
            for key, value in own.get(g, {}).items():
                if key.endswith("_params"):
                    value = {k: v for k, v in {**getattr(out, key), **value}.items() if v is not None}
                merged[key] = value
            if merged:
                out = dataclasses.replace(out, **merged, generation=g)
            if g in RULE_REVISIONS:
                out = _revise_rule(out, g, *RULE_REVISIONS[g])
        return out

    def detect_epoch(self, epochs: int) -> int:
        """The epoch count after which detection and refurbishment happen (1 .. epochs - 1 where possible; epochs for 1.0)."""
        if self.detect_at == 1.0:
            return epochs
        return min(max(1, round(self.detect_at * epochs)), max(1, epochs - 1))

    @property
    def needs_trusted(self) -> bool:
        """Whether one of the recipe's roles declares `needs_trusted`: it reads the trusted samples and cannot work without."""
        roles = ((detectors, self.detector), (refurbishers, self.refurbisher), (correctors, self.corrector))
        return any(name is not None and getattr(registry.get(name), "needs_trusted", False) for registry, name in roles)

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
        if self.generation > 1:
            out["generation"] = self.generation
        return out


trainers: Registry[type[Trainer]] = Registry("trainer")
detectors: Registry[type[Detector]] = Registry("detector")
refurbishers: Registry[type[Refurbisher]] = Registry("refurbisher")
correctors: Registry[type[Corrector]] = Registry("corrector")
methods: Registry[Recipe] = Registry("method")


def _caller() -> str:
    return sys._getframe(2).f_globals.get("__name__", "")


def check_trusted(recipe: Recipe, protocol: Any) -> None:
    """BenchError, before any work, when the recipe needs trusted samples and the protocol has none."""
    from bench.errors import BenchError
    from bench.protocols import protocols

    if protocol.trusted_patients == 0 and recipe.needs_trusted:
        with_trusted = sorted(n for n in protocols.names() if protocols.get(n).trusted_patients > 0)
        raise BenchError(
            f"method {recipe.name} needs trusted (verified clean) training patients, and protocol {protocol.name} has "
            f"trusted_patients = 0: run it on a protocol that sets trusted_patients, e.g. --protocol "
            f"{' or '.join(with_trusted)} (bench list protocols)"
        )


def recipe_for(name: str, protocol: Any) -> Recipe:
    """The recipe `name` as a protocol runs it: its definition at the protocol's recipe generation (`Protocol.recipes`)."""
    return methods.get(name).at(protocol.recipes)


def register_recipe(recipe: Recipe) -> Recipe:
    """Register a recipe under its own name (the one way plugins add methods)."""
    methods.register(recipe.name, recipe, origin=_caller())
    return recipe


#: Generation 2 of every `-refurb` recipe's action (issue 14): the gated refurbisher with a temporal teacher, the one
#: candidate that raised the corrupted samples' label Dice for every error type at 0.5 and 0.75 with the oracle's flags
#: (studies/refurbish_oracle.py, phantom-quick v1, 3 seeds, detection at 9 of 12 epochs).
GATED_REFURB: dict[str, Any] = {"refurbisher": "gated", "refurbisher_params": {"threshold": 0.9, "teacher": "temporal", "window": 3}}

#: What a flagged sample goes through in each generation, for descriptions.
REFURBISHED = {
    1: "replaced by the model's pseudo-labels",
    2: "refurbished pixel by pixel where the softmax of the last 3 epochs' models gives another class > 0.9 (then made valid)",
}

#: The two standard actions on flagged samples: (name suffix, generation-1 refurbisher, what happens, generation-2 change).
REFURB_AND_DISCARD = (
    ("refurb", "pseudo-label", REFURBISHED, GATED_REFURB),
    ("discard", "discard", dict.fromkeys((1, 2), "dropped from the loss"), {}),
)

#: Generation 2's schedule for detect-then-act recipes: detection at three quarters of training (the refurbishment
#: study found every refurbisher harmful to boundary labels at half of training and the gated one helpful at 3/4).
DETECT_LATE: dict[str, Any] = {"detect_at": 0.75}

#: The phrases a description template fills in per generation: when detection happens, and the flag rule.
WHEN = {1: "half of training", 2: "three quarters of training"}
RULE = {1: "mixture flags", 2: "population flags", 3: "population flags (v2)"}


#: Revisions of a shared flag rule, applied to every recipe whose definition names it: generation -> (old rule, new).
#: Generation 3 (phantom-quick v4): "populations" becomes "populations-v2", which skips the Gaussian-tails test for
#: components at least `bench.flagging.SEPARATED` apart (on the v3 board the old rule flagged nothing where the loss
#: detector's scores were two populations 6.6-10.8 apart).
RULE_REVISIONS: dict[int, tuple[str, str]] = {3: ("populations", "populations-v2")}


def _revise_rule(recipe: Recipe, generation: int, old: str, new: str) -> Recipe:
    """`recipe` with flag rule `old` replaced by `new` in each of its roles' parameters, as generation `generation`
    (and its description's rule phrase updated); unchanged, generation kept, when no role names `old`."""
    keys = ("trainer_params", "detector_params", "refurbisher_params", "corrector_params")
    changed = {k: {**getattr(recipe, k), "flag_rule": new} for k in keys if getattr(recipe, k).get("flag_rule") == old}
    if not changed:
        return recipe
    description = recipe.description.replace(RULE[generation - 1], RULE[generation])
    return dataclasses.replace(recipe, **changed, description=description, generation=generation)


def generation_text(template: str, generation: int, **extra: str) -> str:
    """`template` with its {when} and {rule} slots (and `extra`) filled for `generation`."""
    return template.format(when=WHEN[generation], rule=RULE[generation], **extra)


def refurb_revisions(description: str, **changes: Any) -> tuple[tuple[int, dict[str, Any]], ...]:
    """`Recipe.revisions` of a `-refurb` recipe registered on its own: generation 2 as `register_refurb_and_discard`
    makes it (`DETECT_LATE`, `GATED_REFURB`), plus `changes`; `description` is its template ({what}, {when}, {rule})."""
    text = generation_text(description, 2, what=REFURBISHED[2])
    return ((2, {**DETECT_LATE, **GATED_REFURB, **changes, "description": text}),)


def register_refurb_and_discard(
    prefix: str, description: str, revised: dict[str, Any] | None = None, revised_description: str | None = None, **recipe: Any
) -> tuple[Recipe, Recipe]:
    """Register `<prefix>-refurb` and `<prefix>-discard`: one detector, flagged samples either refurbished or dropped.

    `description` (generation 1) and `revised_description` (generation 2, default the same) are templates with
    {what}, {when} and {rule} slots. Generation 2 detects at three quarters of training (`DETECT_LATE`), refurbishes
    with `GATED_REFURB`, and applies the family's own `revised` changes (its flag rule, its detector parameters).
    """
    origin = _caller()
    made = []
    for suffix, refurbisher, what, action in REFURB_AND_DISCARD:
        second = revised_description or description
        changes = {**DETECT_LATE, **action, **(revised or {}), "description": generation_text(second, 2, what=what[2])}
        r = Recipe(
            name=f"{prefix}-{suffix}",
            description=generation_text(description, 1, what=what[1]),
            refurbisher=refurbisher,
            revisions=((2, changes),),
            **recipe,
        )
        methods.register(r.name, r, origin=origin)
        made.append(r)
    return made[0], made[1]
