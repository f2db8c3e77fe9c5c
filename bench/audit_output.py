"""What `bench audit` writes in `--out`: the case table (audit.csv), proposed labels (proposed/) and fold files.

Every file is written atomically (`bench.files.atomic_writer`); `proposed/` is filled in a hidden staging folder
and swapped in whole, so an interrupted audit leaves the old set or the new one, never a mix.

Proposed labels, per flagged case (the top N by the audit's rank): the given label where the held-out model is
not sure, and the model's class where it gives another class than the label a probability above 0.9
(`methods/gated.py`'s `gate`), then made a valid label map against the given one (`bench.make_valid`). A flagged
case whose label the gate leaves unchanged gets no file (its `proposed` cell says so). Formats:

- `nnunet`: the case's own format and geometry (`datasets/nnunet.py`'s `write_label`: same ending, header and
  spacing), at its ORIGINAL size: the original label file's pixels wherever the working-size proposal keeps the
  label, the proposal (nearest, half-pixel centres) where it changes it; so a reviewer's diff shows only the
  proposed change, not a resampling of the whole label. (With --inject the base is the corrupted copy instead.)
- `echo-phantom`, `camus` and other adapters (no user file to match): NIfTI `<id>.nii.gz` at the working size,
  x = column, y = row, the working grid's spacing (mm) in the header's pixdim and affine.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.data import Data
from bench.errors import BenchError
from bench.files import atomic_writer
from bench.labelmaps import make_valid

PROPOSED = "proposed"
FOLDS = "folds"


def propose_labels(given: np.ndarray, probs: torch.Tensor, label_set: Any, threshold: float) -> np.ndarray:
    """Gated corrections (K, H, W) uint8 of the labels `given` (K, H, W) from held-out probabilities (K, C, H, W).

    Batched gate (`methods/gated.py`), then `make_valid` per label (one small repair per flagged case).
    """
    from bench.plugins import plugin_module

    gate = plugin_module("methods", "gated").gate
    if len(given) == 0:
        return np.zeros_like(given)
    gated = gate(torch.from_numpy(given.astype(np.int64)), probs, threshold).numpy().astype(np.uint8)
    return np.stack([make_valid(g, p, label_set) for g, p in zip(given, gated, strict=True)])


def nearest_exact(label: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest resize with half-pixel centres in integer arithmetic (torch `nearest-exact`; the nnunet adapter's rule)."""
    (h, w), (oh, ow) = label.shape, shape
    rows = np.minimum(((2 * np.arange(oh) + 1) * h) // (2 * oh), h - 1)
    cols = np.minimum(((2 * np.arange(ow) + 1) * w) // (2 * ow), w - 1)
    return label[np.ix_(rows, cols)]


def nifti_bytes(label: np.ndarray, spacing: np.ndarray) -> bytes:
    """A gzipped NIfTI-1 of `label` (H, W) uint8: x = column, y = row, pixdim and affine from `spacing` (row, col) mm."""
    import nibabel as nib

    affine = np.diag([float(spacing[1]), float(spacing[0]), 1.0, 1.0])
    img = nib.Nifti1Image(np.ascontiguousarray(label.astype(np.uint8).T), affine)
    img.header.set_xyzt_units("mm")
    img.header["descrip"] = b"bench audit proposed label"
    return gzip.compress(img.to_bytes(), mtime=0)


def write_proposals(
    data: Data, index: np.ndarray, given: np.ndarray, proposals: np.ndarray, folder: Path, injected: bool
) -> dict[int, str]:
    """Write the proposed label of each case `index[j]` whose proposal differs from its given label into `folder`;
    returns case position -> file name. See the module docstring for the formats."""
    written: dict[int, str] = {}
    nnunet = data.name == "nnunet" and "label_file" in data.info.columns
    if nnunet:
        from bench.plugins import plugin_module

        module = plugin_module("datasets", "nnunet")
        layout = module.scan(data.options["root"])
    for j, i in enumerate(index):
        if np.array_equal(proposals[j], given[i]):
            continue
        case = data.ids[i]
        if nnunet:
            original = module.read_label(layout, case)  # as stored, read as the adapter reads it
            changed = nearest_exact(proposals[j] != given[i], original.shape)
            base = nearest_exact(given[i], original.shape) if injected else original
            label = np.where(changed, nearest_exact(proposals[j], original.shape), base)
            path = module.write_label(layout, case, label, folder)
        else:
            path = folder / f"{case}.nii.gz"
            with atomic_writer(path) as f:
                f.write(nifti_bytes(proposals[j], data.spacing[i]))
        written[int(i)] = path.name
    return written


def swap_in(staging: Path, final: Path) -> None:
    """Replace the folder `final` by `staging` (renames on one file system; the old one removed after the swap)."""
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    if final.exists():
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def staged(out: Path, name: str) -> Path:
    """A fresh hidden staging folder for `out/name`."""
    path = out / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def save_fold(path: Path, probs: torch.Tensor, held: np.ndarray, key: str, train_s: float, seen_ids: list[str]) -> None:
    """A finished fold, atomically: held-out softmax (float16), positions, the key it was made under, its cost."""
    with atomic_writer(path) as f:
        np.savez(
            f,
            probs=probs.numpy().astype(np.float16),
            held=held.astype(np.int64),
            key=np.array(key),
            train_s=np.array(train_s),
            seen=np.array(seen_ids, dtype=str),
        )


def load_fold(path: Path, key: str, held: np.ndarray) -> tuple[torch.Tensor, float] | None:
    """The held-out softmax and training seconds of a fold file made under `key` for the cases `held`; None when the
    file is missing; a BenchError when it is unreadable or was made by an audit with other settings or data."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            same = str(z["key"]) == key and np.array_equal(z["held"], held)
            probs, train_s = z["probs"], float(z["train_s"])
    except (OSError, ValueError, KeyError) as exc:
        raise BenchError(f"--resume: {path} cannot be read ({type(exc).__name__}); delete it to train that fold again") from None
    if not same:
        raise BenchError(
            f"--resume: {path} was made by an audit with other settings, labels or data; rerun without --resume into "
            f"another --out, or delete {path.parent} to start over"
        )
    return torch.from_numpy(probs.astype(np.float32)), train_s
