"""Protocols: frozen, versioned, hashed definitions of an experiment.

A protocol fixes everything that moves numbers: dataset and its subset, image
size, model, optimiser, schedule length, seeds and the noise grid. Its hash is
stored in every record; changing a setting means a new version, and old
records stay on the old board.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from bench.errors import BenchError
from bench.registry import Registry


@dataclass(frozen=True)
class Protocol:
    """One experiment definition; see the module docstring."""

    name: str
    version: int
    description: str
    dataset: str
    image_size: int
    #: how many patients of each split to use (None = all), taken in id order
    train_patients: int | None
    val_patients: int | None
    test_patients: int | None
    encoder: str
    decoder_channels: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seeds: tuple[int, ...]
    noise_grid: tuple[str, ...]
    dataset_options: dict[str, Any] = field(default_factory=dict)
    #: loss = cross-entropy + dice_weight x (1 - mean foreground soft Dice), per sample
    dice_weight: float = 1.0
    #: the generation of method definitions this protocol runs (`bench.Recipe.at`; 1: the recipes of the v1 boards)
    recipes: int = 1
    #: learning rate over the epochs (`bench.training.lr_factor`): "constant" (v1), "poly" (nnU-Net's (1 - e / E)^0.9)
    lr_schedule: str = "constant"
    #: seeded training augmentation, the same for every method (`bench.augment`): "none" (v1) or "light"
    augment: str = "none"
    #: run the U-Net in channels-last memory format (faster convolutions on CPU; other last bits than contiguous)
    channels_last: bool = False
    #: training patients whose labels are verified clean (a trusted subset, as annotation projects keep one): the noise
    #: never touches their images and every method may read which samples they are (`TrialInputs.trusted`), never the
    #: noise truth of the others; which patients: `bench.trial.trusted_mask` (per seed, whole patients)
    trusted_patients: int = 0

    @property
    def encoder_depth(self) -> int:
        """U-Net depth: one encoder stage per decoder stage."""
        return len(self.decoder_channels)

    def settings(self) -> dict[str, Any]:
        """Every field as plain JSON-able data (what the hash covers); a field added after the first protocols is
        left out while it holds its default, so every earlier protocol keeps its hash and its records stay valid."""
        out = json.loads(json.dumps(dataclasses.asdict(self)))
        for name, default in ADDED_LATER.items():
            if out[name] == default:
                del out[name]
        return out

    @property
    def hash(self) -> str:
        """sha256 (16 hex digits) of the canonical JSON of every setting."""
        text = json.dumps(self.settings(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


#: fields added after the v1 protocols were published, with the default that leaves them out of `Protocol.settings`
ADDED_LATER: dict[str, Any] = {"recipes": 1, "lr_schedule": "constant", "augment": "none", "channels_last": False, "trusted_patients": 0}


class ProtocolRegistry(Registry[Protocol]):
    """Protocols by name with every version kept: `get("x")` is the newest version, `get("x@v1")` (or "x@1") an
    older one, so a new version never makes the records of an old one uncheckable. `names()` lists each name once."""

    def __init__(self) -> None:
        super().__init__("protocol")
        self._older: dict[tuple[str, int], Protocol] = {}

    def _add(self, name: str, obj: Protocol, origin: str) -> None:
        current = self._items.get(name)
        if current is None:
            super()._add(name, obj, origin)
            return
        if obj.version == current.version or (name, obj.version) in self._older:
            raise ValueError(f"protocol {name} v{obj.version} is already registered (by {self._origin.get(name) or 'another module'})")
        if obj.version < current.version:
            self._older[name, obj.version] = obj
        else:
            self._older[name, current.version] = current
            self._items[name] = obj
            self._origin[name] = origin

    def get(self, name: str) -> Protocol:
        """The newest version of `name`, or the version `name@vN` names (BenchError listing the versions there are)."""
        base, at, version = name.partition("@")
        newest = super().get(base)
        if not at:
            return newest
        digits = version[1:] if version[:1] in ("v", "V") else version
        if not digits.isdigit():
            raise BenchError(f"protocol '{name}': write a version as {base}@v<number>, e.g. {base}@v{newest.version}")
        wanted = int(digits)
        found = newest if wanted == newest.version else self._older.get((base, wanted))
        if found is None:
            have = ", ".join(f"v{p.version}" for p in self.versions(base))
            raise BenchError(f"protocol {base} has no version {wanted} (registered: {have}; see: bench list protocols)")
        return found

    def versions(self, name: str) -> list[Protocol]:
        """Every registered version of `name`, oldest first."""
        newest = super().get(name)
        return sorted([newest, *(p for (n, _), p in self._older.items() if n == name)], key=lambda p: p.version)


protocols: ProtocolRegistry = ProtocolRegistry()


def _register(p: Protocol) -> Protocol:
    protocols.register(p.name, p, origin=__name__)
    return p


def _grid(levels: tuple[float, ...]) -> tuple[str, ...]:
    """`none` plus the study's three error types at each level."""
    return ("none", *(f"{kind}:{level:g}" for kind in ("random", "systematic", "omission") for level in levels))


PAPER_LEVELS = (0.1, 0.25, 0.5, 0.75, 0.9)

_CAMUS_V1 = Protocol(
    name="camus-v1",
    version=1,
    description="The paper-scale board: CAMUS official split (400/50/50 patients), ED and ES, 2CH and 4CH, 256 px, "
    "U-Net with a resnet34 encoder (no pretraining), 50 epochs of Adam, seeds 0-2. For GPUs or a cluster; needs --data-root.",
    dataset="camus",
    image_size=256,
    train_patients=None,
    val_patients=None,
    test_patients=None,
    encoder="resnet34",
    decoder_channels=(256, 128, 64, 32, 16),
    epochs=50,
    batch_size=16,
    lr=1e-3,
    weight_decay=1e-4,
    seeds=(0, 1, 2),
    noise_grid=_grid(PAPER_LEVELS),
)
_register(_CAMUS_V1)

_CAMUS_CPU_V1 = _register(
    Protocol(
        name="camus-cpu-v1",
        version=1,
        description="CAMUS official split at 128 px with a light U-Net (mobilenet_v2 encoder, small decoder), 10 epochs, "
        "seeds 0-2: one trial in about half an hour on one CPU core, so a method's row takes hours. Needs --data-root.",
        dataset="camus",
        image_size=128,
        train_patients=None,
        val_patients=None,
        test_patients=None,
        encoder="mobilenet_v2",
        decoder_channels=(128, 64, 32, 16, 16),
        epochs=10,
        batch_size=16,
        lr=1e-3,
        weight_decay=1e-4,
        seeds=(0, 1, 2),
        noise_grid=_grid(PAPER_LEVELS),
    )
)

_PHANTOM_V1 = _register(
    dataclasses.replace(  # the same settings as camus-v1 by construction; only the data differ
        _CAMUS_V1,
        name="phantom-v1",
        description="camus-v1 on the synthetic echo phantom (500 patients, 400/50/50): 256 px, resnet34 U-Net, 50 epochs, "
        "seeds 0-2. For GPUs or a cluster; runs anywhere without data.",
        dataset="echo-phantom",
    )
)

_PHANTOM_V2 = _register(
    dataclasses.replace(
        _CAMUS_V1,
        name="phantom-v2",
        version=2,
        description="camus-v1 on echo-phantom generator 3, whose labels carry an expert's tracing uncertainty as CAMUS's do "
        "(phantom-v1's generator 2 is too easy at 256 px: Dice 0.97 on LV and atrium). 256 px, resnet34 U-Net, 50 epochs, "
        "seeds 0-2. For GPUs or a cluster; runs anywhere without data.",
        dataset="echo-phantom",
        dataset_options={"generator": 3},
    )
)

_PHANTOM_QUICK = _register(
    Protocol(
        name="phantom-quick",
        version=1,
        description="Echo phantom, 96 px, 60 training patients (240 images), light U-Net, 12 epochs, seeds 0-1: "
        "one trial in about two minutes on one CPU core. The default of `bench run`.",
        dataset="echo-phantom",
        image_size=96,
        train_patients=60,
        val_patients=10,
        test_patients=50,
        encoder="mobilenet_v2",
        decoder_channels=(128, 64, 32, 16, 16),
        epochs=12,
        batch_size=16,
        lr=1e-3,
        weight_decay=1e-4,
        seeds=(0, 1),
        noise_grid=_grid((0.25, 0.5, 0.75)),
    )
)

_register(
    Protocol(
        name="small",
        version=1,
        description="For detector tests and benchmarks: 20 training patients (80 images) at 64 px, 8 epochs. Numbers are indicative only.",
        dataset="echo-phantom",
        image_size=64,
        train_patients=20,
        val_patients=2,
        test_patients=4,
        encoder="mobilenet_v2",
        decoder_channels=(32, 16, 8, 8, 8),
        epochs=8,
        batch_size=8,
        lr=1e-3,
        weight_decay=0.0,
        seeds=(0,),
        noise_grid=("none", "systematic:0.5"),
        dataset_options={"patients": 30, "splits": (24, 3, 3)},
    )
)

_TINY = _register(
    Protocol(
        name="tiny",
        version=1,
        description="For tests only: 4 training patients at 64 px, 2 epochs. Numbers mean nothing.",
        dataset="echo-phantom",
        image_size=64,
        train_patients=4,
        val_patients=1,
        test_patients=2,
        encoder="mobilenet_v2",
        decoder_channels=(32, 16, 8, 8, 8),
        epochs=2,
        batch_size=8,
        lr=1e-3,
        weight_decay=0.0,
        seeds=(0,),
        noise_grid=("none", "systematic:0.5"),
        dataset_options={"patients": 10, "splits": (6, 2, 2)},
    )
)

# Version 2 of the CPU board (issue 16): trained as CAMUS U-Nets are trained (nnU-Net's poly learning rate, light seeded
# augmentation, the same for every method), recipe generation 2, five seeds, and a U-Net small enough that one trial
# takes about a minute on one core. Each choice and its measurement: README, "Protocol versions".

#: the training of the v2 boards (phantom-quick v2), offered as new versions of the paper-scale protocols (same data,
#: model and length)
V2_TRAINING: dict[str, Any] = {"recipes": 2, "lr_schedule": "poly", "augment": "light", "channels_last": True, "seeds": (0, 1, 2, 3, 4)}
_PHANTOM_QUICK_V2 = _register(
    dataclasses.replace(
        _PHANTOM_QUICK,
        version=2,
        description="Echo phantom (generator 2), 80 px, 60 training patients (240 images), light U-Net, 12 epochs with "
        "a poly learning rate and light seeded augmentation, recipe generation 2, seeds 0-4: one trial in about a "
        "minute on one CPU core. The default of `bench run`; v1 stays with its records.",
        image_size=80,
        decoder_channels=(64, 32, 16, 16, 8),
        **V2_TRAINING,
    )
)

_register(
    dataclasses.replace(  # phantom-quick v2's settings by construction; only the data differ
        _PHANTOM_QUICK_V2,
        name="camus-quick",
        description="phantom-quick v2 on CAMUS: the first 60 / 10 / 50 patients (id order) of the official "
        "train / val / test split at 80 px, the same U-Net, schedule, augmentation, recipes, seeds and noise grid, "
        "so a user with CAMUS runs exactly the CPU board's protocol. Needs --data-root.",
        dataset="camus",
    )
)


# Version 3 of the CPU board: v2 trained to where its minute allows. v2's 12-epoch curve flattened only because the poly
# schedule decays the learning rate to 0: trained longer (each budget a full schedule) the same baseline gained 0.03 in
# validation mean Dice from 12 to 24 epochs, and strong noise made some of its under-trained runs lose a structure.
# Adam's learning rate 1e-2 instead of 1e-3 reaches in the same 12 epochs about what 1e-3 reaches in 36, measured on
# the validation patients only (leaderboard/phantom-quick/v2/training_budget.md). Everything else is v2's.
_PHANTOM_QUICK_V3 = _register(
    dataclasses.replace(
        _PHANTOM_QUICK_V2,
        version=3,
        description="phantom-quick v2 with Adam's learning rate 1e-2 instead of 1e-3, so that its 12 epochs train the U-Net "
        "to where a minute on one CPU core allows (v2's stopped 0.04 below it in validation mean Dice). The default of "
        "`bench run`; v1 and v2 stay with their records.",
        lr=1e-2,
    )
)

_register(
    dataclasses.replace(  # phantom-quick v3's settings by construction; only the data differ
        _PHANTOM_QUICK_V3,
        name="camus-quick",  # version 3, like the protocol it twins (its v2 twins phantom-quick v2)
        description="phantom-quick v3 on CAMUS: the first 60 / 10 / 50 patients (id order) of the official "
        "train / val / test split at 80 px, the same U-Net, schedule, learning rate, augmentation, recipes, seeds and "
        "noise grid, so a user with CAMUS runs exactly the CPU board's protocol. Needs --data-root.",
        dataset="camus",
    )
)

_register(
    dataclasses.replace(
        _PHANTOM_QUICK_V3,
        name="phantom-quick-trusted6",
        description="phantom-quick v3 with 6 of its 60 training patients (24 of 240 images, 10%) verified clean: the "
        "noise never touches them and every method knows which they are. For methods that need trusted samples.",
        trusted_patients=6,
    )
)


# Version 4 of the CPU board: v3 with recipe generation 3, whose only change is the shared flag rule (`bench.method.
# RULE_REVISIONS`): on the v3 board "populations" flagged nothing at omission 0.25 and 0.5, where the loss and confident
# detectors' training scores were two populations far apart (AUROC 1.00), so its refurbishers trained exactly as
# baseline did. Training, data and noise are v3's.
_PHANTOM_QUICK_V4 = _register(
    dataclasses.replace(
        _PHANTOM_QUICK_V3,
        version=4,
        description="phantom-quick v3 with recipe generation 3: the shared flag rule no longer asks two far-apart score "
        "populations for Gaussian tails (v3's flagged nothing where its detectors separated the corrupted samples "
        "perfectly). The default of `bench run`; v1-v3 stay with their records.",
        recipes=3,
    )
)

_register(
    dataclasses.replace(  # phantom-quick v4's settings by construction; only the data differ
        _PHANTOM_QUICK_V4,
        name="camus-quick",  # version 4, like the protocol it twins
        description="phantom-quick v4 on CAMUS: the first 60 / 10 / 50 patients (id order) of the official "
        "train / val / test split at 80 px, the same U-Net, schedule, learning rate, augmentation, recipes, seeds and "
        "noise grid, so a user with CAMUS runs exactly the CPU board's protocol. Needs --data-root.",
        dataset="camus",
    )
)

_register(
    dataclasses.replace(
        _PHANTOM_QUICK_V4,
        name="phantom-quick-trusted6",
        description="phantom-quick v4 with 6 of its 60 training patients (24 of 240 images, 10%) verified clean: the "
        "noise never touches them and every method knows which they are. For methods that need trusted samples.",
        trusted_patients=6,
    )
)


def _retrained(protocol: Protocol, description: str) -> Protocol:
    """`protocol`'s next version with the v2 boards' training (`V2_TRAINING`)."""
    return _register(dataclasses.replace(protocol, version=protocol.version + 1, description=description, **V2_TRAINING))


_V2_TEXT = "trained as the v2 boards are: poly learning rate, light seeded augmentation, recipe generation 2, seeds 0-4"
_retrained(_CAMUS_V1, f"camus-v1's data (official split, 256 px), resnet34 U-Net and 50 epochs, {_V2_TEXT}. For GPUs; needs --data-root.")
_retrained(_CAMUS_CPU_V1, f"camus-cpu-v1's data (official split, 128 px), U-Net and 10 epochs, {_V2_TEXT}. Needs --data-root.")
_retrained(_PHANTOM_V1, f"phantom-v1's data (generator 2, 256 px), resnet34 U-Net and 50 epochs, {_V2_TEXT}. For GPUs.")
_retrained(_PHANTOM_V2, f"phantom-v2's data (generator 3, 256 px), resnet34 U-Net and 50 epochs, {_V2_TEXT}. For GPUs.")

# Trusted-subset protocols (issue 15, item 4). A trusted count is a setting like any other, so it lives in a registered
# protocol of its own name: its records get their own paths and board cells, a board shows the count in the name, and
# `bench validate` checks them against the registered hash like every other record.
_register(
    dataclasses.replace(
        _PHANTOM_QUICK,
        name="phantom-quick-trusted6",
        description="phantom-quick with 6 of its 60 training patients (24 of 240 images, 10%) verified clean: the noise never "
        "touches them and every method knows which they are. Recipe generation 2, so that a trusted-calibrated detector "
        "and the loss detector of that generation differ only in their flag rule. For methods that need trusted samples.",
        trusted_patients=6,
        recipes=2,
    )
)

_register(
    dataclasses.replace(
        _PHANTOM_QUICK_V2,
        name="phantom-quick-trusted6",
        description="phantom-quick v2 with 6 of its 60 training patients (24 of 240 images, 10%) verified clean: the "
        "noise never touches them and every method knows which they are. For methods that need trusted samples.",
        trusted_patients=6,
    )
)

_register(
    dataclasses.replace(
        _TINY,
        name="tiny-trusted1",
        description="For tests only: tiny with 1 of its 4 training patients (4 images) verified clean. Numbers mean nothing.",
        trusted_patients=1,
    )
)
