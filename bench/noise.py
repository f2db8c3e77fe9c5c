"""Label-noise generators: corrupt a fraction of training labels and keep the truth.

Spec: `TYPE:LEVEL[,key=value...]` (for example `systematic:0.5`,
`random:0.25,max_mm=6`, `omission:0.5,structure=la`), LEVEL the fraction of
samples corrupted; `none` is the clean reference. Which samples are corrupted
depends only on (seed, sample id), and the set at a lower level is a subset of
the set at a higher level, so curves over levels compare like with like. Sizes
are in mm, converted with each image's spacing. Test labels are never passed here.

A generator sees one clean label at a time plus a `NoiseContext` (all clean
labels of the split, their spacing, ids and metadata), so error models that need
another frame (`temporal`) fit the same interface. Every corrupted label is
then made valid by one shared step (`bench.labelmaps.make_valid`): values 0..3,
each structure one 8-connected component and no hole in the heart (label > 0),
wherever the clean label satisfied the same. The generators name CAMUS's
structures and their anatomical neighbours, so they take CAMUS labels only.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from bench.errors import BenchError
from bench.labelmaps import boundary, bounding_box, holes, label_dice, make_valid, touching
from bench.labelset import CAMUS_LABELS, LabelSet
from bench.registry import Registry

_STRUCTURE_VALUE = {s.name: s.value for s in CAMUS_LABELS.structures}
#: the label a structure grows into (dilation) and gives back (erosion)
_NEIGHBOUR = {1: 2, 2: 0, 3: 0}
_PHASE_PARTNER = {"ED": "ES", "ES": "ED"}


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
            raise BenchError(f"noise spec '{spec}': {key}={text} is not a {self.kind()}; {self.allowed()}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError(f"noise spec '{spec}': {key}={text} is not finite; {self.allowed()}")
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise BenchError(f"noise spec '{spec}': {key}={text} is out of range; {self.allowed()}")
        return value

    def kind(self) -> str:
        """'number' or 'whole number'."""
        return "whole number" if isinstance(self.default, int) else "number"

    def allowed(self) -> str:
        """The allowed values, in words."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        return f"a {type(self.default).__name__} in [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True, eq=False)
class NoiseContext:
    """Everything a generator may look at besides the label it corrupts (all clean).

    labels: uint8 (N, H, W) clean labels of the split; spacing: (N, 2) mm per
    (row, col); ids: sample ids; info: one row per sample with at least id,
    patient, view, phase (None when the caller has no metadata).
    """

    labels: np.ndarray
    spacing: np.ndarray
    ids: list[str]
    info: pd.DataFrame | None = None

    def partner(self, index: int) -> int:
        """Index of the other frame (ED <-> ES) of sample `index`'s patient and view; BenchError when absent."""
        j = int(self.partners()[index])
        if j < 0:
            raise BenchError(f"sample '{self.ids[index]}' has no other frame (ED <-> ES) of the same patient and view in the labels given")
        return j

    def partners(self) -> np.ndarray:
        """Per sample, the index of its other frame (ED <-> ES), or -1 where it is absent (cached)."""
        cached = self.__dict__.get("_partners")
        if cached is not None:
            return cached
        if self.info is None or not {"patient", "view", "phase"} <= set(self.info.columns):
            raise BenchError("temporal noise needs the samples' metadata (patient, view, phase); pass info= to apply_noise")
        key = list(zip(self.info["patient"], self.info["view"], self.info["phase"], strict=True))
        where = {k: i for i, k in enumerate(key)}
        out = np.array([where.get((p, v, _PHASE_PARTNER.get(str(ph), "?")), -1) for p, v, ph in key], dtype=np.int64)
        object.__setattr__(self, "_partners", out)
        return out


class NoiseGenerator:
    """Base of every generator: `corrupt` one clean label map, given its spacing, a private RNG and the context.

    Subclasses set `name`, `params` (key -> Param) and document each parameter
    and its default in the class docstring. `check` runs once before any sample
    is corrupted, to reject input the generator cannot handle with one line.
    """

    name: str = ""
    params: dict[str, Param] = {}

    def check(self, context: NoiseContext, corrupted: np.ndarray, **params: Any) -> None:
        """Raise BenchError if these samples cannot be corrupted by this generator (default: anything goes)."""

    def corrupt(
        self, label: np.ndarray, spacing: np.ndarray, rng: np.random.Generator, context: NoiseContext, index: int, **params: Any
    ) -> np.ndarray:
        """Return a corrupted copy of `label` (uint8 H x W, sample `index` of the context); `spacing` is mm per (row, col)."""
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
        """The canonical spec string (defaults left out); the level exactly as parsed (shortest round-trip form,
        `1.0` as `1`), so two specs that differ never share a name."""
        if self.type == "none":
            return "none"
        gen = noises.get(self.type)
        extra = [f"{k}={v}" for k, v in sorted(self.params.items()) if v != gen.params[k].default]
        level = repr(float(self.level)).removesuffix(".0")
        return ",".join([f"{self.type}:{level}", *extra])


def parse_noise(spec: str) -> NoiseSpec:
    """Parse a noise spec, or raise BenchError naming the problem and the allowed values."""
    spec = spec.strip()
    if spec == "none":
        return NoiseSpec("none", 0.0, {})
    head, *pairs = spec.split(",")
    if ":" not in head:
        raise BenchError(f"malformed noise spec '{spec}'; use TYPE:LEVEL[,key=value...], e.g. systematic:0.5, or none")
    type_name, level_text = (s.strip() for s in head.split(":", 1))
    gen = noises.get(type_name)
    try:
        level = float(level_text)
    except ValueError:
        raise BenchError(f"noise spec '{spec}': level '{level_text}' is not a number; use a fraction in [0, 1]") from None
    if not 0.0 <= level <= 1.0:  # also rejects nan
        raise BenchError(f"noise spec '{spec}': level {level_text} is outside [0, 1]; it is the fraction of samples corrupted")
    params = {k: p.default for k, p in gen.params.items()}
    seen: set[str] = set()
    for pair in pairs:
        if "=" not in pair:
            raise BenchError(f"malformed noise spec '{spec}': '{pair}' is not key=value")
        key, value = (s.strip() for s in pair.split("=", 1))
        if key not in gen.params:
            keys = ", ".join(sorted(gen.params)) or "none"
            raise BenchError(f"noise spec '{spec}': unknown key '{key}' for {type_name}; allowed keys: {keys}")
        if key in seen:
            raise BenchError(f"noise spec '{spec}': key '{key}' is given twice; give each key once")
        seen.add(key)
        params[key] = gen.params[key].parse(key, value, spec)
    for low in (k for k in params if k.startswith("min_") and "max_" + k[4:] in params):
        high = "max_" + low[4:]
        if params[low] > params[high]:  # refused, never silently swapped
            raise BenchError(f"noise spec '{spec}': {low}={params[low]:g} is larger than {high}={params[high]:g}; give {low} <= {high}")
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
    n_bad = round(level * len(ids))
    priority = np.array([_unit(seed, f"select:{i}") for i in ids], dtype=np.uint64)
    order = np.argsort(priority, kind="stable")
    mask = np.zeros(len(ids), dtype=bool)
    mask[order[:n_bad]] = True
    return mask


def apply_noise(
    spec: NoiseSpec | str,
    labels: np.ndarray,
    spacing: np.ndarray,
    ids: list[str],
    seed: int,
    info: pd.DataFrame | None = None,
    label_set: LabelSet = CAMUS_LABELS,
) -> NoiseResult:
    """Corrupt `labels` (N, H, W) by `spec`; deterministic in (spec, seed, ids, labels).

    `info` (one row per label with patient, view, phase, as `Data.info`) is needed
    only by generators that look at other samples (`temporal`). The generators
    model errors of echo annotators on CAMUS's structures, so labels of another
    `label_set` (`Data.label_set`) get only `none`: anything else is a BenchError.
    """
    if isinstance(spec, str):
        spec = parse_noise(spec)
    if spec.type != "none" and label_set != CAMUS_LABELS:
        raise BenchError(
            f"noise '{spec.text}' models errors on CAMUS's structures ({', '.join(CAMUS_LABELS.names)}); "
            f"labels of label set '{label_set.name}' take only noise none"
        )
    labels = np.asarray(labels)
    if labels.ndim != 3 or len(ids) != len(labels) or np.asarray(spacing).shape != (len(labels), 2):
        raise ValueError(f"labels {labels.shape}, {len(ids)} ids and spacing {np.shape(spacing)} disagree")
    noisy = labels.copy()
    changed = np.zeros(labels.shape, dtype=bool)
    dice = np.ones(len(ids))
    if spec.type == "none":
        return NoiseResult(spec, noisy, np.zeros(len(ids), dtype=bool), changed, dice)
    gen = noises.get(spec.type)()
    corrupted = select_corrupted(ids, spec.level, seed)
    context = NoiseContext(labels, np.asarray(spacing, dtype=float), list(ids), info)
    gen.check(context, corrupted, **spec.params)
    for i in np.flatnonzero(corrupted):
        rng = np.random.default_rng([_unit(seed, f"{spec.type}:{ids[i]}")])
        out = gen.corrupt(labels[i], context.spacing[i], rng, context, int(i), **spec.params)
        box = bounding_box((labels[i] > 0) | (out > 0))
        if box is None:
            continue
        clean_crop = labels[i][box]
        out_crop = make_valid(clean_crop, out[box])
        noisy[i][box] = out_crop
        changed[i][box] = out_crop != clean_crop
        dice[i] = label_dice(clean_crop[None], out_crop[None])[0]
    return NoiseResult(spec, noisy, corrupted, changed, dice)


# --------------------------------------------------------------------------- morphology in mm


def _radius_px(mm: float, spacing: np.ndarray) -> int:
    return math.ceil(mm / float(np.min(spacing))) + 1


def _on_crop(label: np.ndarray, margin: int, fn: Any) -> np.ndarray:
    """Apply `fn` to the bounding box of the heart grown by `margin` pixels (where all changes happen), paste back."""
    box = bounding_box(label > 0, margin)
    if box is None:
        return label
    out = label.copy()
    out[box] = fn(label[box])
    return out


def grow(label: np.ndarray, value: int, mm: float, spacing: np.ndarray) -> np.ndarray:
    """Dilate structure `value` by `mm` into its neighbour label only (LV into myocardium, others into background)."""
    inside = label == value
    if mm <= 0:
        return label
    box = bounding_box(inside, _radius_px(mm, spacing))
    if box is None:
        return label
    dist = ndimage.distance_transform_edt(~inside[box], sampling=spacing)
    out = label.copy()
    crop = out[box]
    crop[(crop == _NEIGHBOUR[value]) & (dist <= mm)] = value
    return out


def shrink(label: np.ndarray, value: int, mm: float, spacing: np.ndarray) -> np.ndarray:
    """Erode structure `value` by `mm` from its border with its neighbour label, giving the pixels to it."""
    if mm <= 0:
        return label
    box = bounding_box(label == value, _radius_px(mm, spacing))
    if box is None:
        return label
    neighbour = label[box] == _NEIGHBOUR[value]
    if not neighbour.any():
        return label
    dist = ndimage.distance_transform_edt(~neighbour, sampling=spacing)
    out = label.copy()
    crop = out[box]
    crop[(crop == value) & (dist <= mm)] = _NEIGHBOUR[value]
    return out


def _boundary_steps(label: np.ndarray, value: int, steps: int, flip: float, prefer: float, rng: np.random.Generator) -> np.ndarray:
    """Markov boundary noise (after Yao et al. 2023) of one structure, on the pixel grid.

    Each of `steps` steps is an expansion with probability `prefer`, else a
    shrinkage; in an expansion every neighbour-label pixel 4-adjacent to the
    structure joins it with probability `flip`, in a shrinkage every structure
    pixel 4-adjacent to the neighbour label leaves it with probability `flip`.
    """
    into = _NEIGHBOUR[value]
    box = bounding_box(label == value, steps + 1)
    if box is None:
        return label
    out = label.copy()
    crop = out[box]  # a view: writes go to out
    expand = rng.random(steps) < prefer
    for grow_step in expand:
        if grow_step:
            front = (crop == into) & touching(crop == value)
            new = value
        else:
            front = (crop == value) & touching(crop == into)
            new = into
        r, c = np.nonzero(front)
        keep = rng.random(r.size) < flip
        crop[r[keep], c[keep]] = new
    return out


def wall_thickness(wall: np.ndarray, spacing: np.ndarray) -> float:
    """Mean thickness of a band in mm, 2 x area / perimeter (perimeter from its 4-connected border pixels)."""
    area = int(wall.sum())
    if area == 0:
        return 0.0
    pixel = math.sqrt(float(spacing[0] * spacing[1]))
    return 2.0 * area * pixel * pixel / (int(boundary(wall).sum()) * pixel)


def smooth_labels(label: np.ndarray, sigma_px: float) -> np.ndarray:
    """Each pixel takes the label (0..3) whose indicator has the largest Gaussian-smoothed value (ties: lower label)."""
    classes = range(CAMUS_LABELS.num_classes)
    shares = np.stack([ndimage.gaussian_filter((label == v).astype(np.float32), sigma_px, mode="nearest") for v in classes])
    return shares.argmax(axis=0).astype(np.uint8)


# --------------------------------------------------------------------------- generators


@noises.register("systematic")
class Systematic(NoiseGenerator):
    """The same bias on every corrupted sample, like an annotator with another convention.

    structure (lv): the structure drawn wrongly; direction (dilate): drawn too
    large (into its neighbour: LV into myocardium, others into background) or too
    small (erode: pixels given back to that neighbour); mm (3.0): by how much,
    about a third of a normal myocardial wall (6-11 mm).
    """

    name = "systematic"
    params = {
        "structure": Param("lv", "structure drawn wrongly", choices=tuple(_STRUCTURE_VALUE)),
        "direction": Param("dilate", "too large (dilate) or too small (erode)", choices=("dilate", "erode")),
        "mm": Param(3.0, "size of the bias in mm", low=0.0, high=30.0),
    }

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        value = _STRUCTURE_VALUE[p["structure"]]
        op = grow if p["direction"] == "dilate" else shrink
        return _on_crop(label, _radius_px(p["mm"], spacing), lambda crop: op(crop, value, p["mm"], spacing))


@noises.register("random")
class RandomBoundary(NoiseGenerator):
    """Unbiased boundary errors: each structure eroded or dilated at random (mean area change about zero).

    mode (morph): `morph` = per corrupted sample and structure (in the order LV,
    myocardium, atrium) a fair coin picks erosion or dilation (as in
    `systematic`: LV against the myocardium, the others against background)
    with a radius uniform in [min_mm, max_mm] (1.0, 4.0 mm), as in Zhang et al.
    2020 and ADELE; the cavity's and the wall's radii are capped at 30% of the
    mean wall thickness (2 x area / perimeter), in both directions, so the wall
    survives and the mean change stays zero. `markov` = the Markov boundary noise of Yao et al. 2023 per
    structure: `steps` (30) steps, each an expansion with probability `prefer`
    (0.5: unbiased; Yao's theta1) else a shrinkage, moving each boundary pixel
    with probability `flip` (0.15; Yao's theta2), then, as Yao's final blur, each
    pixel takes the label with the largest Gaussian-smoothed (sigma 1 px) share.
    Markov steps act on the pixel grid (one step = at most one pixel): `steps`
    is given at 256 x 256 (pixel about 0.6 mm) and scaled by H / 256 on an
    H-pixel grid, so a biased drift keeps its size in mm. Yao's random interior
    flips (theta3) are left out. Unbiased at 256 x 256; on coarse grids (a wall
    of 2-4 px) broken wall fragments go to the cavity and it grows on average. Slower than morph (about 10x; see benchmarks).
    """

    name = "random"
    params = {
        "mode": Param("morph", "erosion/dilation in mm (morph) or Markov boundary steps (markov)", choices=("morph", "markov")),
        "min_mm": Param(1.0, "morph: smallest radius in mm", low=0.0, high=30.0),
        "max_mm": Param(4.0, "morph: largest radius in mm", low=0.0, high=30.0),
        "steps": Param(30, "markov: number of steps (pixel grid)", low=1, high=500),
        "flip": Param(0.15, "markov: probability a boundary pixel moves in a step", low=0.0, high=1.0),
        "prefer": Param(0.5, "markov: probability a step expands (0.5 = unbiased)", low=0.0, high=1.0),
    }

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        if p["mode"] == "markov":

            def markov(crop: np.ndarray) -> np.ndarray:
                for value in CAMUS_LABELS.values:
                    crop = _boundary_steps(crop, value, p["steps"], p["flip"], p["prefer"], rng)
                return smooth_labels(crop, 1.0)

            steps = max(1, round(p["steps"] * label.shape[0] / 256))
            p = {**p, "steps": steps}
            return _on_crop(label, steps + 1, markov)
        lo, hi = sorted((p["min_mm"], p["max_mm"]))
        draws = {value: (rng.uniform(lo, hi), rng.random() < 0.5) for value in CAMUS_LABELS.values}  # (mm, dilate)
        # the wall can lose the cavity's dilation and its own erosion: cap both radii at 30% of its mean
        # thickness, whatever the direction, so the cap keeps the expected area change at zero
        cap = 0.3 * wall_thickness(label == 2, spacing)
        for value in (1, 2):
            draws[value] = (min(draws[value][0], cap), draws[value][1])

        def morph(crop: np.ndarray) -> np.ndarray:
            for value, (mm, dilate) in draws.items():
                crop = grow(crop, value, mm, spacing) if dilate else shrink(crop, value, mm, spacing)
            return crop

        return _on_crop(label, 3 * _radius_px(hi, spacing), morph)


@noises.register("omission")
class Omission(NoiseGenerator):
    """A structure left unlabelled (its pixels become background) on each corrupted sample.

    structure (myo-or-la): `myo-or-la` draws myocardium or atrium per sample with
    a fair coin; `myo` or `la` always omits that one. The LV cavity is not
    offered: leaving it out would punch a hole into the heart.
    """

    name = "omission"
    params = {"structure": Param("myo-or-la", "structure left unlabelled", choices=("myo-or-la", "myo", "la"))}

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        which = p["structure"]
        if which == "myo-or-la":
            which = "myo" if rng.random() < 0.5 else "la"
        return np.where(label == _STRUCTURE_VALUE[which], 0, label).astype(np.uint8)


@noises.register("shift")
class Shift(NoiseGenerator):
    """The whole label translated relative to the image (a registration-type error).

    The direction is uniform over the circle, the distance uniform in
    [min_mm, max_mm] (2.0, 6.0 mm), rounded to whole pixels (at least one);
    what leaves the image is lost and background comes in.
    """

    name = "shift"
    params = {
        "min_mm": Param(2.0, "smallest shift in mm", low=0.0, high=50.0),
        "max_mm": Param(6.0, "largest shift in mm", low=0.0, high=50.0),
    }

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        lo, hi = sorted((p["min_mm"], p["max_mm"]))
        angle, mm = rng.uniform(0.0, 2 * math.pi), rng.uniform(lo, hi)
        dr, dc = round(mm * math.sin(angle) / spacing[0]), round(mm * math.cos(angle) / spacing[1])
        if dr == 0 and dc == 0 and hi > 0:
            if abs(math.sin(angle)) >= abs(math.cos(angle)):
                dr = 1 if math.sin(angle) >= 0 else -1
            else:
                dc = 1 if math.cos(angle) >= 0 else -1
        return translate(label, dr, dc)


def translate(label: np.ndarray, dr: int, dc: int) -> np.ndarray:
    """`label` moved by (dr, dc) pixels; what leaves the image is lost, background comes in."""
    h, w = label.shape
    out = np.zeros_like(label)
    if abs(dr) >= h or abs(dc) >= w:
        return out
    out[max(dr, 0) : h + min(dr, 0), max(dc, 0) : w + min(dc, 0)] = label[max(-dr, 0) : h + min(-dr, 0), max(-dc, 0) : w + min(-dc, 0)]
    return out


def _polygon_mask(shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The pixels of the polygon through (rows, cols), its outline included (PIL's rasteriser)."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (shape[1], shape[0]), 0)
    ImageDraw.Draw(img).polygon(list(zip(cols.tolist(), rows.tolist(), strict=True)), fill=1, outline=1)
    return np.asarray(img) > 0


def _coarse_outline(mask: np.ndarray, spacing: np.ndarray, vertices: int, offset: float) -> np.ndarray:
    """The polygon through `vertices` points evenly spaced along the boundary of `mask` (by arc length in mm).

    The boundary pixels are ordered by their angle around the centroid (exact
    for the star-shaped cavity, wall outline and atrium); `offset` in [0, 1)
    shifts the first vertex along the contour by that fraction of a spacing.
    """
    r, c = np.nonzero(boundary(mask))
    if r.size < 3:
        return mask
    total = mask.sum()
    r0 = mask.sum(axis=1) @ np.arange(mask.shape[0]) / total
    c0 = mask.sum(axis=0) @ np.arange(mask.shape[1]) / total
    y, x = (r - r0) * spacing[0], (c - c0) * spacing[1]
    order = np.argsort(np.arctan2(y, x), kind="stable")
    y, x, r, c = y[order], x[order], r[order], c[order]
    step = np.hypot(np.diff(y, append=y[:1]), np.diff(x, append=x[:1]))
    arc = np.concatenate([[0.0], np.cumsum(step)[:-1]])
    targets = (offset + np.arange(vertices)) * (arc[-1] + step[-1]) / vertices
    pick = np.searchsorted(arc, targets).clip(0, r.size - 1)
    return _polygon_mask(mask.shape, r[pick], c[pick])


@noises.register("coarse")
class Coarse(NoiseGenerator):
    """Hasty annotation: each contour replaced by a polygon through a few of its points.

    vertices (12): points per contour, evenly spaced along the boundary by arc
    length (the first one at a random place per sample and contour). Drawn
    in order: the epicardial outline (cavity + wall) as myocardium, the atrium,
    then the cavity; what no polygon covers becomes background.
    """

    name = "coarse"
    params = {"vertices": Param(12, "polygon vertices per contour", low=3, high=64)}

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        box = bounding_box(label > 0, 2)
        if box is None:
            return label
        crop = label[box]
        k = p["vertices"]
        out = np.zeros_like(crop)
        heart = (crop == 1) | (crop == 2)
        heart |= holes(heart)
        layers = ((heart if (crop == 2).any() else None, 2), (crop == 3, 3), (crop == 1, 1))
        for mask, value in layers:
            if mask is None or not mask.any():
                continue
            out[_coarse_outline(mask, spacing, k, rng.random())] = value
        full = label.copy()
        full[box] = out
        return full


@noises.register("temporal")
class Temporal(NoiseGenerator):
    """The label of the other frame (ED <-> ES) of the same patient and view, on this frame's image.

    No parameters. Needs the samples' metadata (`info`: patient, view, phase);
    every sample must have its partner frame among the labels given, else a
    BenchError before anything is corrupted (no silent skipping).
    """

    name = "temporal"
    params: dict[str, Param] = {}

    def check(self, context: NoiseContext, corrupted: np.ndarray, **params: Any) -> None:
        partners = context.partners()
        missing = np.flatnonzero(partners < 0)
        if missing.size:
            first = context.ids[int(missing[0])]
            raise BenchError(
                f"temporal noise: {missing.size} sample(s) lack their other frame (ED <-> ES) of the same patient and view, "
                f"e.g. '{first}'; keep both frames in the split or use another noise type"
            )

    def corrupt(self, label, spacing, rng, context, index, **p: Any) -> np.ndarray:
        return context.labels[context.partner(index)].copy()
