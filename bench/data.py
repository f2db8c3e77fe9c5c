"""The data every trial sees, and the dataset adapter interface.

A dataset adapter (a file in `datasets/`) turns a source (the local CAMUS copy,
the procedural echo phantom) into one `Data`: uint8 images, clean label maps,
the `LabelSet` saying what their values mean (default CAMUS's), pixel spacing
in mm and one metadata row per image.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.labelset import CAMUS_LABELS, LabelSet
from bench.registry import Registry

#: CAMUS label values and the short names the records use (`CAMUS_LABELS.by_value`)
STRUCTURES: dict[int, str] = CAMUS_LABELS.by_value
#: CAMUS label values and their names for people, background included (`CAMUS_LABELS.titles`)
LABEL_NAMES: dict[int, str] = CAMUS_LABELS.titles
SPLITS = ("train", "val", "test")
#: image sides `load_dataset` accepts, in pixels (CAMUS is about 600 x 800; 2048 x 2048 already needs 4 MB per image)
MIN_SIZE, MAX_SIZE = 16, 2048
INFO_COLUMNS = ("id", "patient", "view", "phase", "split")


@dataclass(frozen=True, eq=False)
class Data:
    """Images, clean labels, spacing and metadata of one dataset at one size.

    images: uint8 (N, H, W), sector apex at the top; labels: uint8 (N, H, W)
    with the values of `label_set` (CAMUS: 0..3); spacing: float64 (N, 2), mm
    per pixel along (row, col); info: one row per image with at least
    `INFO_COLUMNS`, in the arrays' order.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    spacing: np.ndarray
    info: pd.DataFrame
    fingerprint: str
    options: dict[str, Any] = field(default_factory=dict)
    label_set: LabelSet = CAMUS_LABELS

    def __post_init__(self) -> None:
        n = len(self.info)
        if self.images.shape != self.labels.shape or self.images.ndim != 3 or self.images.shape[0] != n:
            raise ValueError(f"images {self.images.shape}, labels {self.labels.shape} and {n} info rows disagree")
        if self.images.dtype != np.uint8 or self.labels.dtype != np.uint8:
            raise ValueError("images and labels must be uint8")
        if self.spacing.shape != (n, 2):
            raise ValueError(f"spacing must be ({n}, 2), got {self.spacing.shape}")
        missing = [c for c in INFO_COLUMNS if c not in self.info.columns]
        if missing:
            raise ValueError(f"info lacks columns {missing}")

    def __len__(self) -> int:
        return len(self.info)

    @property
    def ids(self) -> list[str]:
        """Sample ids such as `patient0001_2CH_ED`."""
        return list(self.info["id"])

    def select(self, mask: np.ndarray) -> Data:
        """The samples where the boolean `mask` holds, in order."""
        idx = np.flatnonzero(mask)
        return Data(
            name=self.name,
            images=self.images[idx],
            labels=self.labels[idx],
            spacing=self.spacing[idx],
            info=self.info.iloc[idx].reset_index(drop=True),
            fingerprint=self.fingerprint,
            options=self.options,
            label_set=self.label_set,
        )

    def split(self, which: str) -> Data:
        """The samples of one split: 'train', 'val' or 'test'."""
        if which not in SPLITS:
            raise ValueError(f"unknown split {which!r}")
        return self.select((self.info["split"] == which).to_numpy())


class DatasetAdapter(Protocol):
    """What a dataset plugin registers: a callable that builds `Data`.

    `size` is the square side the images are resampled to; `root` the local
    copy of the source, where there is one; other options are adapter-specific.
    Bad input raises `BenchError` with one line naming the file and the fix.
    """

    def __call__(self, *, size: int, root: Path | None = None, **options: Any) -> Data: ...


datasets: Registry[DatasetAdapter] = Registry("dataset")


def load_dataset(name: str, *, size: int = 256, root: str | Path | None = None, **options: Any) -> Data:
    """Build dataset `name` at `size` x `size` (the documented entry point)."""
    adapter = datasets.get(name)
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or not MIN_SIZE <= size <= MAX_SIZE:
        raise BenchError(f"image size {size!r} is out of range; use a whole number of pixels from {MIN_SIZE} to {MAX_SIZE}")
    params = inspect.signature(adapter).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(options) - set(params))
        if unknown:
            known = ", ".join(k for k in params if k not in ("size", "root")) or "none"
            raise BenchError(f"dataset {name!r} has no option {unknown[0]!r}; its options: {known}")
    return adapter(size=size, root=Path(root) if root is not None else None, **options)


def resize_image(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 image resized to `shape`: bilinear with half-pixel centres (torch `bilinear`, align_corners=False, no
    antialias), rounded; what the file-reading adapters (camus, nnunet) train on."""
    out = img.astype(np.float64)
    for axis, size in enumerate(shape):
        n = out.shape[axis]
        src = np.clip((np.arange(size) + 0.5) * (n / size) - 0.5, 0.0, n - 1)
        i0 = np.floor(src).astype(np.intp)
        i1 = np.minimum(i0 + 1, n - 1)
        w = src - i0
        a, b = np.take(out, i0, axis=axis), np.take(out, i1, axis=axis)
        w = w[:, None] if axis == 0 else w[None, :]
        out = a * (1.0 - w) + b * w
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize_labels(lab: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Label map resized to `shape`: nearest with half-pixel centres, in exact integer arithmetic (torch `nearest-exact`)."""
    (h, w), (oh, ow) = lab.shape, shape
    rows = np.minimum(((2 * np.arange(oh) + 1) * h) // (2 * oh), h - 1)
    cols = np.minimum(((2 * np.arange(ow) + 1) * w) // (2 * ow), w - 1)
    return lab[np.ix_(rows, cols)]


def image_to_uint8(arr: np.ndarray) -> np.ndarray:
    """A file's image as uint8: uint8 as is; integer values within 0..255 cast losslessly; anything else min-max
    rescaled to 0..255 (a constant image to 0). ValueError for NaN or infinite values (the adapter names the file)."""
    if arr.dtype == np.uint8:
        return arr
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError("NaN or infinite pixel values")
    if a.size and a.min() >= 0 and a.max() <= 255 and np.array_equal(a, np.round(a)):
        return a.astype(np.uint8)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def fingerprint(*parts: Any) -> str:
    """A short stable hash of arrays, strings and numbers (sha256, 16 hex digits)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.dtype.str, part.shape)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]
