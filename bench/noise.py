"""Label-noise generators: corrupt a fraction of training labels and keep the truth.

Spec: `TYPE:LEVEL[,key=value...]` (for example `systematic:0.5`,
`random:0.25,max_mm=6`), LEVEL the fraction of samples corrupted; `none` is the
clean reference. Which samples are corrupted depends only on (seed, sample id),
and the set at a lower level is a subset of the set at a higher level, so
curves over levels compare like with like. Sizes are in mm, converted with each
image's spacing. Test labels are never passed here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from bench.data import STRUCTURES
from bench.errors import BenchError
from bench.registry import Registry

_STRUCTURE_VALUE = {name: value for value, name in STRUCTURES.items()}
#: the label a structure grows into (dilation) and gives back (erosion)
_NEIGHBOUR = {1: 2, 2: 0, 3: 0}


@dataclass(frozen=True)
class Param:
    """One generator parameter: default, type and allowed values."""

    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, key: str, text: str, spec: str) -> Any:
        """Convert `text` to this parameter's type, or a BenchError naming the allowed values."""
        if self.choices is not None:
            if text not in self.choices:
                raise BenchError(f"noise spec '{spec}': {key}={text} is not allowed; use one of {', '.join(self.choices)}")
            return text
        try:
            value = type(self.default)(text)
        except ValueError:
            raise BenchError(f"noise spec '{spec}': {key}={text} is not a number; {self.allowed()}") from None
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise BenchError(f"noise spec '{spec}': {key}={text} is out of range; {self.allowed()}")
        return value

    def allowed(self) -> str:
        """The allowed values, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        return f"a {type(self.default).__name__} in [{self.low}, {self.high}]"


class NoiseGenerator:
    """Base of every generator: `corrupt` one label map given its spacing and a private RNG."""

    name: str = ""
    params: dict[str, Param] = {}

    def corrupt(self, label: np.ndarray, spacing: np.ndarray, rng: np.random.Generator, **params: Any) -> np.ndarray:
        """Return a corrupted copy of `label` (uint8 H x W); `spacing` is mm per (row, col)."""
        raise NotImplementedError


noises: Registry[type[NoiseGenerator]] = Registry("noise type", "noise")


@dataclass(frozen=True)
class NoiseSpec:
    """A parsed `TYPE:LEVEL[,key=value...]` with every parameter filled in."""

    type: str
    level: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The canonical spec string (defaults left out)."""
        if self.type == "none":
            return "none"
        gen = noises.get(self.type)
        extra = [f"{k}={v}" for k, v in sorted(self.params.items()) if v != gen.params[k].default]
        return ",".join([f"{self.type}:{self.level:g}", *extra])


def parse_noise(spec: str) -> NoiseSpec:
    """Parse a noise spec, or raise BenchError naming the problem and the allowed values."""
    spec = spec.strip()
    if spec == "none":
        return NoiseSpec("none", 0.0, {})
    head, *pairs = spec.split(",")
    if ":" not in head:
        raise BenchError(f"malformed noise spec '{spec}'; use TYPE:LEVEL[,key=value...], e.g. systematic:0.5, or none")
    type_name, level_text = head.split(":", 1)
    gen = noises.get(type_name)
    try:
        level = float(level_text)
    except ValueError:
        raise BenchError(f"noise spec '{spec}': level '{level_text}' is not a number; use a fraction in [0, 1]") from None
    if not 0.0 <= level <= 1.0:
        raise BenchError(f"noise spec '{spec}': level {level_text} is outside [0, 1]; it is the fraction of samples corrupted")
    params = {k: p.default for k, p in gen.params.items()}
    for pair in pairs:
        if "=" not in pair:
            raise BenchError(f"malformed noise spec '{spec}': '{pair}' is not key=value")
        key, value = (s.strip() for s in pair.split("=", 1))
        if key not in gen.params:
            keys = ", ".join(sorted(gen.params)) or "none"
            raise BenchError(f"noise spec '{spec}': unknown key '{key}' for {type_name}; allowed keys: {keys}")
        params[key] = gen.params[key].parse(key, value, spec)
    return NoiseSpec(type_name, level, params)


@dataclass(frozen=True, eq=False)
class NoiseResult:
    """Noisy labels and the truth of what was done to them."""

    spec: NoiseSpec
    labels: np.ndarray  # uint8 (N, H, W)
    corrupted: np.ndarray  # bool (N,)
    changed: np.ndarray  # bool (N, H, W), pixels whose label differs from the clean one
    label_dice: np.ndarray  # float (N,), mean structure Dice between clean and noisy label

    @property
    def mean_label_dice(self) -> float:
        """Mean clean-vs-noisy label Dice over the corrupted samples (1.0 when none are)."""
        return float(self.label_dice[self.corrupted].mean()) if self.corrupted.any() else 1.0


def _unit(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")


def select_corrupted(ids: list[str], level: float, seed: int) -> np.ndarray:
    """Exactly round(level x N) samples, ranked by a hash of (seed, id): nested across levels."""
    n_bad = int(round(level * len(ids)))
    priority = np.array([_unit(seed, f"select:{i}") for i in ids], dtype=np.uint64)
    order = np.argsort(priority, kind="stable")
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[:n_bad]] = True
    return mask


def label_dice(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-sample mean over structures of Dice(a == s, b == s); a structure absent from both counts 1."""
    scores = []
    for value in STRUCTURES:
        x, y = a == value, b == value
        inter = (x & y).sum(axis=(1, 2))
        total = x.sum(axis=(1, 2)) + y.sum(axis=(1, 2))
        scores.append(np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0))
    return np.mean(scores, axis=0)


def apply_noise(spec: NoiseSpec | str, labels: np.ndarray, spacing: np.ndarray, ids: list[str], seed: int) -> NoiseResult:
    """Corrupt `labels` (N, H, W) by `spec`; deterministic in (spec, seed, ids)."""
    if isinstance(spec, str):
        spec = parse_noise(spec)
    noisy = labels.copy()
    if spec.type == "none":
        corrupted = np.zeros(len(ids), dtype=bool)
    else:
        gen = noises.get(spec.type)()
        corrupted = select_corrupted(ids, spec.level, seed)
        for i in np.flatnonzero(corrupted):
            rng = np.random.default_rng([_unit(seed, f"{spec.type}:{ids[i]}")])
            noisy[i] = gen.corrupt(labels[i], spacing[i], rng, **spec.params)
    return NoiseResult(spec, noisy, corrupted, noisy != labels, label_dice(labels, noisy))


def grow(label: np.ndarray, value: int, mm: float, spacing: np.ndarray) -> np.ndarray:
    """Dilate structure `value` by `mm` into its neighbour label only (LV into myocardium, others into background)."""
    inside = label == value
    if mm <= 0 or not inside.any():
        return label
    dist = ndimage.distance_transform_edt(~inside, sampling=spacing)
    out = label.copy()
    out[(label == _NEIGHBOUR[value]) & (dist <= mm)] = value
    return out


def shrink(label: np.ndarray, value: int, mm: float, spacing: np.ndarray) -> np.ndarray:
    """Erode structure `value` by `mm` from its border with its neighbour label, giving the pixels to it."""
    neighbour = label == _NEIGHBOUR[value]
    if mm <= 0 or not neighbour.any():
        return label
    dist = ndimage.distance_transform_edt(~neighbour, sampling=spacing)
    out = label.copy()
    out[(label == value) & (dist <= mm)] = _NEIGHBOUR[value]
    return out


@noises.register("systematic")
class Systematic(NoiseGenerator):
    """The same bias on every corrupted sample, like an annotator with another convention.

    structure (lv): the structure drawn wrongly; direction (dilate): drawn too
    large (into its neighbour: LV into myocardium, others into background) or too
    small; mm (3.0): by how much, about a third of a normal myocardial wall.
    """

    name = "systematic"
    params = {
        "structure": Param("lv", "structure drawn wrongly", choices=tuple(_STRUCTURE_VALUE)),
        "direction": Param("dilate", "too large (dilate) or too small (erode)", choices=("dilate", "erode")),
        "mm": Param(3.0, "size of the bias in mm", low=0.0, high=30.0),
    }

    def corrupt(self, label: np.ndarray, spacing: np.ndarray, rng: np.random.Generator, **p: Any) -> np.ndarray:
        value = _STRUCTURE_VALUE[p["structure"]]
        op = grow if p["direction"] == "dilate" else shrink
        return op(label, value, p["mm"], spacing)


@noises.register("random")
class RandomBoundary(NoiseGenerator):
    """Unbiased boundary errors: each structure eroded or dilated at random.

    Per corrupted sample and structure (in the order LV, myocardium, atrium): a
    fair coin picks erosion or dilation, the radius is uniform in [min_mm, max_mm],
    so the expected area change is about zero.
    """

    name = "random"
    params = {
        "min_mm": Param(1.0, "smallest radius in mm", low=0.0, high=30.0),
        "max_mm": Param(4.0, "largest radius in mm", low=0.0, high=30.0),
    }

    def corrupt(self, label: np.ndarray, spacing: np.ndarray, rng: np.random.Generator, **p: Any) -> np.ndarray:
        lo, hi = sorted((p["min_mm"], p["max_mm"]))
        out = label
        for value in STRUCTURES:
            mm = rng.uniform(lo, hi)
            out = grow(out, value, mm, spacing) if rng.random() < 0.5 else shrink(out, value, mm, spacing)
        return out
