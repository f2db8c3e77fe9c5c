"""A 2-D segmentation dataset in the nnU-Net v2 raw layout: the dataset `nnunet`, and a writer of proposed labels.

Layout read (nnU-Net v2, documentation/dataset_format.md), ROOT = the dataset
folder (e.g. `nnUNet_raw/Dataset042_Echo`, the CLI's `--data-root`):

- `ROOT/dataset.json` with `channel_names` (exactly one channel, key "0": more
  channels are refused for now), `labels` (name -> integer value: 0 is the
  background and required, values consecutive 0..K, K <= 255; nnU-Net's region
  lists and its `ignore` label are refused for now), `numTraining` (must equal
  the cases found) and `file_ending`. Other keys (`overwrite_image_reader_writer`,
  ...) are ignored: the reader follows from the ending.
- `ROOT/imagesTr/<case>_0000<ending>` and `ROOT/labelsTr/<case><ending>`: every
  case found in either folder must have both. Hidden files and files with
  other endings are skipped; `imagesTs/` (no labels) is not read.

Files: `.png` (Pillow; images 8/16-bit gray, labels gray or palette indices),
`.nii.gz` / `.nii` (nibabel) and `.nrrd` / `.mha` (SimpleITK). A case is 2-D:
NIfTI and SimpleITK files may carry singleton extra axes (X x Y x 1); a 3-D
volume is refused with how to slice it. Orientation as in `datasets/camus.py`:
the voxel order, not the affine, defines the picture; nibabel's array is
(x = column, y = row) and is transposed, SimpleITK's is (row, column).

Spacing: NIfTI pixdim (nibabel `get_zooms`), SimpleITK `GetSpacing` (x =
column, y = row); PNG files carry none that nnU-Net reads, so 1 mm x 1 mm is
assumed unless `png_spacing` says otherwise; the choice is stated in
`Data.options["spacing"]`, the `spacing_from` info column and the build's
stderr line. `Data.spacing` is (row, col) mm of the RESIZED grid.

Resizing to the working size (as `camus`): images bilinear with half-pixel
centres (torch `bilinear`, align_corners=False, no antialias), after uint8
conversion (uint8 kept; integers within 0..255 cast; else per-image min-max to
0..255); labels nearest with half-pixel centres (torch `nearest-exact`).

Info: `id` (the case), `patient` (the grouping key: the case id unless the
`patient` regex says otherwise), `view` and `phase` empty (unknown in this
layout), `split` "train" for every case (an audit cross-fits over patients;
nnU-Net's own folds live outside the raw folder), the original height, width
and spacing, `spacing_from` and the case's files relative to ROOT.

Checks: a label must match its image's shape and (header formats) spacing,
and hold only declared values; colour PNGs and vector pixels are refused.

Option defaults: `patient` None (each case its own patient); `png_spacing`
None = `DEFAULT_PNG_SPACING`, 1 mm (nnU-Net's NaturalImage2DIO reads PNGs with
in-plane spacing 1); `cache_dir` None = `bench.default_cache_dir()`.

`write_label(root, case, label, out)` writes a proposed label map back in the
case's own format and geometry, atomically (see its docstring).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image

from bench import BenchError, Data, LabelSet, Structure, atomic_writer, cached, datasets, image_to_uint8, resize_image, resize_labels

#: Bump whenever the preprocessing changes the output (it is part of the fingerprint).
ADAPTER_VERSION = "1"
PNG_ENDINGS = (".png",)
NIBABEL_ENDINGS = (".nii.gz", ".nii")
SITK_ENDINGS = (".nrrd", ".mha")
ENDINGS = PNG_ENDINGS + NIBABEL_ENDINGS + SITK_ENDINGS
#: (row, col) mm assumed for PNG files, which carry no spacing nnU-Net reads (nnU-Net itself uses 1 in-plane)
DEFAULT_PNG_SPACING = (1.0, 1.0)
REQUIRED_KEYS = ("channel_names", "labels", "numTraining", "file_ending")
#: Pillow modes read: gray images; gray, bilevel or palette-index labels
_IMAGE_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F")
_LABEL_MODES = (*_IMAGE_MODES, "1", "P")
_CHANNEL = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
_NEED = "an nnU-Net v2 dataset needs dataset.json with channel_names, labels, numTraining and file_ending"


def _fail(message: str) -> BenchError:
    return BenchError(f"nnU-Net: {message}")


@dataclass(frozen=True)
class Case:
    """One training case: its id and its image and label files."""

    id: str
    image: Path
    label: Path


@dataclass(frozen=True)
class Layout:
    """A checked nnU-Net raw dataset folder: its ending, label set and cases (sorted by id); no pixels read yet."""

    root: Path
    ending: str
    label_set: LabelSet
    cases: tuple[Case, ...]

    @property
    def values(self) -> tuple[int, ...]:
        """The declared label values, background included: 0..K."""
        return (0, *self.label_set.values)

    @cached_property
    def _by_id(self) -> dict[str, Case]:
        return {c.id: c for c in self.cases}

    def case(self, case_id: str) -> Case:
        """The case `case_id`; an unknown id is a BenchError listing a few known ones."""
        if case_id in self._by_id:
            return self._by_id[case_id]
        shown = ", ".join(c.id for c in self.cases[:5]) + (", ..." if len(self.cases) > 5 else "")
        raise _fail(f"case {case_id!r} is not a training case of {self.root} (its cases: {shown}); pass one of them")


# ---------------------------------------------------------------------------- dataset.json


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise ValueError(f"key {twice!r} appears twice")
    return dict(pairs)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)
    except OSError as exc:
        raise _fail(f"{path} cannot be read ({exc.strerror or exc}); check the file and its permissions") from None
    except json.JSONDecodeError as exc:
        raise _fail(f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix it, {_NEED}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _fail(f"{path} is not valid JSON ({exc}); fix it, {_NEED}") from None
    if not isinstance(raw, dict):
        raise _fail(f"{path} holds a JSON {type(raw).__name__}, not an object; {_NEED}")
    return raw


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _label_set(raw: Any, path: Path, name: str) -> LabelSet:
    """The LabelSet of dataset.json's `labels` (name -> value): background 0, structures 1..K by value."""
    fix = 'declare "labels" as name -> value, e.g. {"background": 0, "lv": 1}, values 0, 1, ..., K'
    if not isinstance(raw, dict) or not raw:
        raise _fail(f"{path}: labels must be a non-empty object; {fix}")
    by_value: dict[int, str] = {}
    for label, value in raw.items():
        if isinstance(value, (list, tuple)):
            raise _fail(
                f"{path}: label {label!r} is a region {value} (nnU-Net region-based training), which this adapter "
                "does not read yet; declare each label with one integer value"
            )
        if label == "ignore":
            raise _fail(
                f"{path}: the 'ignore' label (sparse annotation) is not supported yet; give dense labels and remove 'ignore' from labels"
            )
        if not _is_int(value) or not 0 <= value <= 255:
            raise _fail(f"{path}: label {label!r} has value {value!r}, not an integer 0..255; {fix}")
        if value in by_value:
            raise _fail(f"{path}: labels {by_value[value]!r} and {label!r} share the value {value}; give each its own value")
        if label == "mean":
            raise _fail(f"{path}: the label name 'mean' is reserved for the mean over structures; rename that label")
        by_value[value] = label
    if 0 not in by_value:
        raise _fail(f'{path}: no label has the value 0; nnU-Net needs the background at 0, e.g. "background": 0')
    values = sorted(by_value)
    if values != list(range(len(values))):
        raise _fail(f"{path}: label values {values} are not consecutive; nnU-Net needs 0, 1, ..., K (renumber them)")
    structures = tuple(Structure(v, by_value[v], by_value[v]) for v in values[1:])
    return LabelSet(name=name, structures=structures)


def _check_json(raw: dict[str, Any], path: Path) -> tuple[str, LabelSet, int]:
    """(file ending, label set, numTraining) of a parsed dataset.json."""
    if "channel_names" not in raw and "modality" in raw:
        raise _fail(
            f"{path} is in the nnU-Net v1 format (modality, int -> name labels); convert it with "
            "nnUNetv2_convert_old_nnUNet_dataset or write the v2 keys channel_names and labels (name -> value)"
        )
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise _fail(f"{path} lacks {', '.join(repr(k) for k in missing)}; {_NEED}")
    channels = raw["channel_names"]
    if not isinstance(channels, dict) or not channels:
        raise _fail(f'{path}: channel_names must be an object such as {{"0": "US"}}; {_NEED}')
    if len(channels) > 1:
        raise _fail(
            f"{path} declares {len(channels)} channels ({', '.join(map(str, channels.values()))}); this adapter reads "
            'one gray channel for now: keep one channel (key "0") and its _0000 files'
        )
    if "0" not in channels:
        raise _fail(f'{path}: channel_names has key {next(iter(channels))!r}; the single channel must be "0" (files <case>_0000)')
    count = raw["numTraining"]
    if not _is_int(count) or count < 0:
        raise _fail(f"{path}: numTraining is {count!r}, not a whole number; set it to the number of training cases")
    ending = raw["file_ending"]
    if not isinstance(ending, str) or ending.lower() not in ENDINGS:
        raise _fail(f"{path}: file_ending {ending!r} is not supported; use one of {', '.join(ENDINGS)}")
    return ending, _label_set(raw["labels"], path, path.parent.name), count


# ---------------------------------------------------------------------------- the folder


def _files(folder: Path, ending: str) -> tuple[dict[str, Path], list[Path]]:
    """Stem -> file of the visible files of `folder` ending in `ending`, and the visible files with other endings."""
    if not folder.is_dir():
        raise _fail(f"{folder} does not exist; {_NEED} and the folders imagesTr/ and labelsTr/")
    found, other = {}, []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.name.lower().endswith(ending.lower()):
            found[path.name[: -len(ending)]] = path
        else:
            other.append(path)
    return found, other


def scan(root: str | Path | None) -> Layout:
    """The checked layout of the dataset folder `root`: dataset.json, the label set and every case's two files.

    Why separate: the adapter and `write_label` both need it, and every
    structural error (a missing file, an undeclared channel) is found here
    before any pixel is read. Bad input is one BenchError line.
    """
    if root is None:
        raise _fail(
            "dataset folder not given: pass --data-root DIR, the folder (e.g. Dataset042_Echo) that holds dataset.json, "
            "imagesTr/ and labelsTr/"
        )
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise _fail(f"{root} {what}; pass the dataset folder (e.g. Dataset042_Echo) that holds dataset.json, imagesTr/ and labelsTr/")
    json_path = root / "dataset.json"
    if not json_path.is_file():
        empty = not any(p for p in root.iterdir() if not p.name.startswith("."))
        where = f"{root} is empty" if empty else f"{json_path} is missing"
        raise _fail(f"{where}; pass the nnU-Net dataset folder (e.g. Dataset042_Echo): {_NEED}, plus imagesTr/ and labelsTr/")
    ending, label_set, count = _check_json(_read_json(json_path), json_path)
    images, other_images = _files(root / "imagesTr", ending)
    labels, _ = _files(root / "labelsTr", ending)
    by_case: dict[str, Path] = {}
    for stem, path in images.items():
        m = _CHANNEL.fullmatch(stem)
        if m is None:
            raise _fail(f"{path} is not named <case>_0000{ending}; rename it (the 4-digit channel follows the case id)")
        if m["channel"] != "0000":
            raise _fail(
                f"{path} is channel {m['channel']}, but dataset.json declares one channel (0000); remove it or "
                "merge the channels into one gray image"
            )
        by_case[m["case"]] = path
    if not by_case and not labels:
        hint = f" (it holds {other_images[0].name}: does file_ending match?)" if other_images else ""
        raise _fail(
            f"{root / 'imagesTr'} holds no {ending} image{hint}; add the training cases as imagesTr/<case>_0000{ending} "
            f"and labelsTr/<case>{ending}, or fix file_ending in {json_path}"
        )
    cases = []
    for case in sorted(set(by_case) | set(labels)):
        if case not in labels:
            raise _fail(f"{root / 'labelsTr' / (case + ending)} is missing; every image in imagesTr/ needs its label")
        if case not in by_case:
            raise _fail(f"{root / 'imagesTr' / (case + '_0000' + ending)} is missing; every label in labelsTr/ needs its image")
        cases.append(Case(case, by_case[case], labels[case]))
    if count != len(cases):
        raise _fail(
            f"{json_path} says numTraining {count}, but {root} holds {len(cases)} training cases; set numTraining "
            f"to {len(cases)} or add the missing cases"
        )
    return Layout(root, ending, label_set, tuple(cases))


# ---------------------------------------------------------------------------- reading one file


def _why(exc: BaseException, path: Path) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    pick = next((line for line in lines if "ERROR" in line), lines[0] if lines else "")
    pick = re.sub(r"^.*?ERROR:\s*(\w+\(0x[0-9a-fA-F]+\):\s*)?", "", pick).replace(str(path), path.name)
    return f"{type(exc).__name__}: {pick[:100]}" if pick else type(exc).__name__


def _volume(path: Path, shape: tuple[int, ...], order: str) -> BenchError:
    case = path.name.split(".")[0]
    return _fail(
        f"{path} is a {len(shape)}-D volume ({' x '.join(map(str, shape))}, {order}); only 2-D cases are read: save "
        f"each slice as its own case in a single-slice file (e.g. {case}_s000), image and label alike, and set numTraining"
    )


def _nifti(path: Path) -> nib.Nifti1Image:
    raw = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        raw = gzip.decompress(raw)  # the whole stream: its CRC and length are checked
    sizeof_hdr = int.from_bytes(raw[:4], "little") if len(raw) >= 4 else 0
    kind = nib.Nifti2Image if sizeof_hdr in (540, 0x1C020000) else nib.Nifti1Image
    return kind.from_bytes(raw)


def _read_png(path: Path, kind: str) -> np.ndarray:
    with Image.open(path) as im:
        im.load()
        mode = im.mode
        arr = np.asarray(im)
    if mode not in (_LABEL_MODES if kind == "label" else _IMAGE_MODES):
        raise _fail(
            f"{path} is a PNG of mode {mode}; the adapter reads one gray channel: save it as 8-bit gray (mode L)"
            + (" or 16-bit gray" if kind == "image" else "")
        )
    return arr


def _read(path: Path, ending: str, kind: str) -> tuple[np.ndarray, tuple[float, float] | None, str]:
    """(H, W) pixels, (row, col) mm from the header (None for PNG), and the reading library."""
    end = ending.lower()
    try:
        if end in PNG_ENDINGS:
            return np.ascontiguousarray(_read_png(path, kind)), None, "pillow"
        if end in NIBABEL_ENDINGS:
            img = _nifti(path)
            arr = np.asanyarray(img.dataobj)  # nibabel: (x = column, y = row[, 1 ...])
            zooms = img.header.get_zooms()
            while arr.ndim > 2 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim != 2:
                raise _volume(path, img.shape, "nibabel x, y, z")
            arr, spacing, lib = arr.T, (float(zooms[1]), float(zooms[0])), "nibabel"
        else:
            img = sitk.ReadImage(str(path))
            if img.GetNumberOfComponentsPerPixel() != 1:
                raise _fail(
                    f"{path} has {img.GetNumberOfComponentsPerPixel()} components per pixel; the adapter reads one "
                    "gray channel: save it as a scalar image"
                )
            arr = sitk.GetArrayFromImage(img)  # SimpleITK: ([1, ...] row, column)
            sp = img.GetSpacing()
            while arr.ndim > 2 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 2:
                raise _volume(path, tuple(img.GetSize()), "SimpleITK x, y, z")
            spacing, lib = (float(sp[1]), float(sp[0])), "simpleitk"
    except BenchError:
        raise
    except Exception as exc:
        raise _fail(f"{path} cannot be read ({_why(exc, path)}); the file is truncated or corrupt: write it again") from None
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise _fail(f"{path} has pixel spacing {spacing}; set positive mm values in its header")
    return np.ascontiguousarray(arr), spacing, lib


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """`bench.image_to_uint8`, with the file named when its values are not finite."""
    try:
        return image_to_uint8(arr)
    except ValueError:
        raise _fail(f"{path} has NaN or infinite pixel values; write the image again with finite values") from None


def _declared(values: tuple[int, ...], label_set: LabelSet) -> str:
    titles = label_set.titles
    return ", ".join(f"{v} {titles[v]}" for v in values)


def _check_values(lab: np.ndarray, values: tuple[int, ...], label_set: LabelSet, what: str, fix: str) -> np.ndarray:
    """`lab` as uint8 when every value is a declared label value, else a BenchError naming `what`."""
    a = lab
    if not np.issubdtype(lab.dtype, np.integer) and lab.dtype != bool:
        a = lab.astype(np.float64)
        if not np.isfinite(a).all() or not np.array_equal(a, np.round(a)):
            raise _fail(f"{what} has non-integer label values; labels are {_declared(values, label_set)}")
    bad = np.setdiff1d(np.unique(a), values)
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise _fail(f"{what} has label values {shown}, not declared in dataset.json (declared: {_declared(values, label_set)}); {fix}")
    return a.astype(np.uint8)


# ---------------------------------------------------------------------------- options


def _png_spacing(value: Any, layout: Layout) -> tuple[float, float] | None:
    """(row, col) mm for PNG cases from `png_spacing` (a number, a pair, or "ROW,COL"); None when not given."""
    if value is None:
        return None
    fix = "give png_spacing as mm per pixel: one positive number, or ROW,COL"
    if layout.ending.lower() not in PNG_ENDINGS:
        raise _fail(
            f"png_spacing is for PNG files; {layout.root} has {layout.ending} files, whose spacing comes from their "
            "headers: leave png_spacing out"
        )
    parts: Sequence[Any] = (
        value.replace("x", ",").split(",") if isinstance(value, str) else (value if isinstance(value, (list, tuple)) else [value])
    )
    try:
        numbers = [float(p) for p in parts if not isinstance(p, bool)]
    except (TypeError, ValueError):
        raise _fail(f"png_spacing={value!r} is not a number; {fix}") from None
    if len(numbers) != len(parts) or len(numbers) not in (1, 2) or not all(math.isfinite(x) and x > 0 for x in numbers):
        raise _fail(f"png_spacing={value!r} is invalid; {fix}")
    return (numbers[0], numbers[-1])


def _patients(pattern: str | None, cases: tuple[Case, ...]) -> list[str]:
    """The grouping key per case: the case id, or `re.match(pattern, id)`'s first group (whole match without groups)."""
    if pattern is None:
        return [c.id for c in cases]
    try:
        rx = re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise _fail(
            f"patient={pattern!r} is not a regular expression ({exc}); give one whose first group is the patient, "
            r"e.g. '(patient\d+)_'"
        ) from None
    out = []
    for c in cases:
        m = rx.match(c.id)
        key = (m.group(1) if rx.groups else m.group(0)) if m else None
        if not key:
            raise _fail(
                f"patient={pattern!r} does not match case {c.id!r} at its start (or its group is empty); give a "
                r"pattern every case id starts with, e.g. '(patient\d+)_'"
            )
        out.append(key)
    return out


# ---------------------------------------------------------------------------- the adapter


@datasets.register("nnunet")
def nnunet(
    *, size: int, root: Path | None = None, patient: str | None = None, png_spacing: Any = None, cache_dir: Path | None = None
) -> Data:
    """Every labelled training case of an nnU-Net v2 raw dataset folder at `size` x `size`, from a fingerprinted cache.

    `root`: the dataset folder (dataset.json, imagesTr/, labelsTr/). `patient`:
    a regex matched at the start of each case id, its first group (or the whole
    match) the patient key that groups cases (default: each case is its own
    patient). `png_spacing`: (row, col) mm per pixel of PNG cases (a number, a
    pair or "ROW,COL"; default 1 mm, stated in the output); refused for other
    endings, whose headers carry spacing. `cache_dir`: see `bench.cached`.
    All cases are in split "train". Bad input raises a one-line BenchError
    naming the file and the fix, and caches nothing.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise _fail(f"size={size!r} is invalid; use an integer of 16 px or more")
    size = int(size)
    layout = scan(root)
    png = layout.ending.lower() in PNG_ENDINGS
    assumed = _png_spacing(png_spacing, layout)
    if png and assumed is None:
        assumed = DEFAULT_PNG_SPACING
    patients = _patients(patient, layout.cases)
    if png:
        said = "given" if png_spacing is not None else "assumed, since PNG files carry none; pass png_spacing=ROW,COL to set it"
        spacing_note = f"PNG: {assumed[0]:g} x {assumed[1]:g} mm (row x col) per pixel {said}"
    else:
        spacing_note = f"{layout.ending}: from each file's header"
    sources = [layout.root / "dataset.json", *(p for c in layout.cases for p in (c.image, c.label))]
    params = {
        "adapter": ADAPTER_VERSION,
        "size": size,
        "ending": layout.ending,
        "png_spacing": assumed,
        "patient": patient,
        "image": "uint8; else lossless cast or min-max; bilinear half-pixel",
        "label": "nearest half-pixel",
    }
    options = {
        "root": str(layout.root),
        "size": size,
        "file_ending": layout.ending,
        "patient": patient,
        "png_spacing": list(assumed) if assumed else None,
        "spacing": spacing_note,
        "split": "all cases in train",
    }

    def build() -> Data:
        n = len(layout.cases)
        print(
            f"echo-noise-bench: nnU-Net: preprocessing {n} cases of {layout.root} at {size} px (cached afterwards); spacing {spacing_note}",
            file=sys.stderr,
            flush=True,
        )
        images = np.empty((n, size, size), np.uint8)
        labels = np.empty((n, size, size), np.uint8)
        spacing = np.empty((n, 2), np.float64)
        rows = []
        for i, case in enumerate(layout.cases):
            img, sp_img, _ = _read(case.image, layout.ending, "image")
            lab, sp_lab, _ = _read(case.label, layout.ending, "label")
            if lab.shape != img.shape:
                raise _fail(
                    f"{case.label} is {lab.shape[0]}x{lab.shape[1]} (height x width) but its image {case.image.name} is "
                    f"{img.shape[0]}x{img.shape[1]}; a label must match its image"
                )
            if sp_img is not None and sp_lab is not None and not np.allclose(sp_img, sp_lab, rtol=1e-4, atol=0):
                raise _fail(
                    f"{case.label} has spacing {sp_lab} mm (row, col) but its image {case.image.name} has {sp_img}; "
                    "a label must share its image's geometry: copy the image's header spacing into the label"
                )
            lab = _check_values(lab, layout.values, layout.label_set, str(case.label), "fix the label or declare the value in labels")
            img = _to_uint8(img, case.image)
            sp = sp_img if sp_img is not None else assumed
            h, w = img.shape
            images[i] = resize_image(img, (size, size))
            labels[i] = resize_labels(lab, (size, size))
            spacing[i] = (sp[0] * h / size, sp[1] * w / size)
            rows.append(
                {
                    "id": case.id,
                    "patient": patients[i],
                    "view": "",
                    "phase": "",
                    "split": "train",
                    "orig_height": h,
                    "orig_width": w,
                    "orig_spacing_row_mm": sp[0],
                    "orig_spacing_col_mm": sp[1],
                    "spacing_from": "header" if sp_img is not None else ("png_spacing" if png_spacing is not None else "assumed"),
                    "image_file": case.image.relative_to(layout.root).as_posix(),
                    "label_file": case.label.relative_to(layout.root).as_posix(),
                }
            )
        return Data(
            name="nnunet",
            images=images,
            labels=labels,
            spacing=spacing,
            info=pd.DataFrame(rows),
            fingerprint="",
            options=options,
            label_set=layout.label_set,
        )

    return cached("nnunet", params, sources, build, cache_dir)


# ---------------------------------------------------------------------------- writing a proposed label back


def _encode(case: Case, ending: str, lab: np.ndarray) -> bytes:
    """The bytes of `lab` ((H, W) at the case's original size) in the format and geometry of the case's label file."""
    end = ending.lower()
    if end in PNG_ENDINGS:
        buffer = io.BytesIO()
        Image.fromarray(lab.astype(np.uint8)).save(buffer, format="PNG")  # 8-bit gray (mode L)
        return buffer.getvalue()
    if end in NIBABEL_ENDINGS:
        src = _nifti(case.label)
        data = lab.T.reshape(src.shape).astype(src.get_data_dtype())
        raw = type(src)(data, None, src.header.copy()).to_bytes()  # affine=None: the header (sform, qform, pixdim) as it was
        return gzip.compress(raw, mtime=0) if end.endswith(".gz") else raw
    src = sitk.ReadImage(str(case.label))
    src_arr = sitk.GetArrayFromImage(src)
    new = sitk.GetImageFromArray(lab.reshape(src_arr.shape).astype(src_arr.dtype))
    new.CopyInformation(src)  # origin, spacing, direction
    for key in src.GetMetaDataKeys():
        if not key.startswith("ITK_"):
            new.SetMetaData(key, src.GetMetaData(key))
    with tempfile.TemporaryDirectory(prefix="enb-label-") as tmp:  # SimpleITK writes only to a named file
        path = Path(tmp) / f"label{ending}"
        sitk.WriteImage(new, str(path), True)  # compressed, as nnU-Net's SimpleITKIO writes segmentations
        return path.read_bytes()


def read_label(root: str | Path | Layout, case: str) -> np.ndarray:
    """Case `case`'s label as stored, (H, W) at its original size, read as the adapter reads it (same values and
    orientation); `root`: the dataset folder or its `scan`. For writing a proposal back beside it (`write_label`)."""
    layout = root if isinstance(root, Layout) else scan(root)
    return _read(layout.case(case).label, layout.ending, "label")[0]


def write_label(root: str | Path | Layout, case: str, label: np.ndarray, out: str | Path) -> Path:
    """Write `label` as case `case`'s label in its own format and geometry at `out/<case><ending>`; returns the path.

    `label`: a 2-D map of declared label values at any size (the working size
    of `nnunet`), resized back to the case's original size by nearest with
    half-pixel centres. NIfTI keeps the source label's header (affine, pixdim,
    data type), SimpleITK files its origin, spacing, direction, pixel type and
    non-ITK metadata (written compressed), PNG is 8-bit gray. Written atomically
    (`bench.atomic_writer`); refused, with nothing written, when `out` is the
    dataset's own labelsTr/ (the given labels are never overwritten). `root`:
    the dataset folder, or its `scan` to write many cases without listing the
    folder again for each.
    """
    layout = root if isinstance(root, Layout) else scan(root)
    c = layout.case(case)
    arr = np.asarray(label)
    if arr.ndim != 2 or 0 in arr.shape:
        raise _fail(f"the label for case {case!r} has shape {arr.shape}; give one 2-D label map (height, width)")
    lab = _check_values(arr, layout.values, layout.label_set, f"the label for case {case!r}", "give a map of declared values")
    original, _, _ = _read(c.label, layout.ending, "label")
    target = Path(out).expanduser() / f"{case}{layout.ending}"
    if target.resolve() == c.label.resolve():
        raise _fail(f"{target} is the dataset's own label; write proposed labels to another folder (--out)")
    data = _encode(c, layout.ending, resize_labels(lab, original.shape))
    try:
        with atomic_writer(target) as f:
            f.write(data)
    except OSError as exc:
        raise _fail(f"cannot write {target} ({exc.strerror or exc}); pick a folder you can write to") from None
    return target
