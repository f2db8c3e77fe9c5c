"""A local copy of the real CAMUS dataset: the dataset `camus`.

CAMUS needs registration on the challenge site; the suite never downloads it.
The user points at the copy with `root` (the CLI's `--data-root`) or the
environment variable `ECHO_NOISE_BENCH_CAMUS`. Both releases are read, and the
adapter detects which one it is given:

- the current public release, ROOT = `CAMUS_public/`:
  `database_nifti/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}[_gt].nii.gz` and
  `Info_{2CH,4CH}.cfg`, official split in
  `database_split/subgroup_{training,validation,testing}.txt` (400/50/50);
- the older MHD release, ROOT = the folder holding `training/`:
  `training/patientXXXX/patientXXXX_{2CH,4CH}_{ED,ES}[_gt].mhd` (+ `.raw` or
  `.zraw`) and `Info_{2CH,4CH}.cfg`; its 450 labelled patients are split by the
  ten-fold lists `subGroup{k}_{training,validation,testing}.txt`, looked for in
  ROOT, ROOT/listSubGroups, ROOT/database_split, training/ and
  training/listSubGroups. `testing/` (no labels) is not read.

Only the ED and ES frames with expert labels are read (not the half sequences).
Orientation: NIfTI files are read with nibabel, whose array is (width, height),
and transposed; MHD files with SimpleITK, whose array is (height, width). The
voxel order, not the header's affine, defines the picture: row 0 is the side of
the sector apex, as CAMUS stores it. Spacing comes from the header (x = column,
y = row) and is reported as (row, col) mm of the RESIZED grid.
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
import SimpleITK as sitk

from bench import CAMUS_LABELS, BenchError, Data, cached, datasets, image_to_uint8, resize_image, resize_labels

#: Environment variable naming the local CAMUS copy when no root is passed.
ENV_ROOT = "ECHO_NOISE_BENCH_CAMUS"
#: Bump whenever the preprocessing changes the output (it is part of the fingerprint).
ADAPTER_VERSION = "1"

VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")
FOLDS = range(1, 11)
_LIST_NAMES = {"train": "training", "val": "validation", "test": "testing"}
_PATIENT = re.compile(r"patient\d{4}")
_NOT_GIVEN = ("CAMUS root not given: pass --data-root DIR or set ECHO_NOISE_BENCH_CAMUS; "
              "the dataset needs registration at the CAMUS challenge site and is never downloaded")
_REEXTRACT = "extract it again from the CAMUS archive"


def _fail(message: str) -> BenchError:
    return BenchError(f"CAMUS: {message}")


def _why(exc: BaseException, path: Path) -> str:
    """A short reason from a reader's exception: its ERROR line if it has one (ITK), else its first line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    pick = next((line for line in lines if "ERROR" in line), lines[0] if lines else "")
    pick = re.sub(r"^.*?ERROR:\s*(\w+\(0x[0-9a-fA-F]+\):\s*)?", "", pick).replace(str(path), path.name)
    return f"{type(exc).__name__}: {pick[:100]}" if pick else type(exc).__name__


# ---------------------------------------------------------------------------- layout and splits


@dataclass(frozen=True)
class _Layout:
    release: str  # "nifti" or "mhd"
    root: Path
    patients: Path  # the folder of patientXXXX folders

    @property
    def ext(self) -> str:
        return ".nii.gz" if self.release == "nifti" else ".mhd"

    def fold_dirs(self) -> list[Path]:
        return [self.root, self.root / "listSubGroups", self.root / "database_split", self.patients, self.patients / "listSubGroups"]


def _resolve_root(root: Path | None) -> Path:
    if root is None:
        env = os.environ.get(ENV_ROOT, "").strip()
        if not env:
            raise BenchError(_NOT_GIVEN)
        root = Path(env)
    root = Path(root).expanduser()
    if not root.exists():
        raise _fail(f"root {root} does not exist; pass the folder that holds database_nifti/ (public release) or training/ (MHD release)")
    if not root.is_dir():
        raise _fail(f"root {root} is not a folder; pass the folder that holds database_nifti/ (public release) or training/ (MHD release)")
    return root


def _detect(root: Path, release: str | None) -> _Layout:
    if release not in (None, "nifti", "mhd"):
        raise _fail(f"release={release!r} is unknown; use 'nifti' (public release), 'mhd' (older release) or leave it out")
    found = {"nifti": root / "database_nifti", "mhd": root / "training"}
    present = [r for r, d in found.items() if d.is_dir()]
    if release is not None:
        if release not in present:
            raise _fail(f"{found[release]} does not exist; release={release!r} needs it")
        return _Layout(release, root, found[release])
    if not present:
        raise _fail(f"{root} holds neither database_nifti/ (public NIfTI release) nor training/ (older MHD release); "
                    "pass the folder that contains one of them")
    return _Layout(present[0], root, found[present[0]])  # both present: the public release wins


def _read_list(path: Path, layout: _Layout) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _fail(f"{path} cannot be read ({exc.strerror or exc})") from None
    names = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.strip()
        if not name:
            continue
        if not _PATIENT.fullmatch(name):
            raise _fail(f"{path} line {number}: {name[:40]!r} is not a patient name like patient0001")
        if not (layout.patients / name).is_dir():
            raise _fail(f"{path} names {name}, but {layout.patients / name} does not exist; the copy is incomplete "
                        "or the list belongs to another release")
        names.append(name)
    if not names:
        raise _fail(f"{path} lists no patients")
    return names


def _split_files(layout: _Layout, fold: int | None) -> tuple[dict[str, Path], int | None]:
    """The three list files to use, and the fold they belong to (None: official split)."""
    if fold is None and layout.release == "nifti":
        folder = layout.root / "database_split"
        files = {s: folder / f"subgroup_{n}.txt" for s, n in _LIST_NAMES.items()}
        for path in files.values():
            if not path.is_file():
                raise _fail(f"{path} is missing; the official split ships with the public release in database_split/")
        return files, None
    k = 1 if fold is None else fold
    if isinstance(k, str) and k.strip().isdigit():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k not in FOLDS:
        raise _fail(f"fold={fold!r} is invalid; use a fold number 1..10")
    k = int(k)
    names = {s: f"subGroup{k}_{n}.txt" for s, n in _LIST_NAMES.items()}
    for folder in layout.fold_dirs():
        if (folder / names["train"]).is_file():
            files = {s: folder / n for s, n in names.items()}
            for path in files.values():
                if not path.is_file():
                    raise _fail(f"{path} is missing; fold {k} needs subGroup{k}_{{training,validation,testing}}.txt")
            return files, k
    hint = "; leave fold out to use the official split" if layout.release == "nifti" else ""
    raise _fail(f"fold {k}: no ten-fold list {names['train']} in {layout.root}, its listSubGroups/ or database_split/, "
                f"or in {layout.patients}{hint}")


def _assign_splits(files: dict[str, Path], layout: _Layout) -> dict[str, str]:
    where: dict[str, Path] = {}
    split_of: dict[str, str] = {}
    for split, path in files.items():
        for name in _read_list(path, layout):
            if name in split_of:
                if where[name] == path:
                    raise _fail(f"{path} lists {name} twice")
                raise _fail(f"{name} is in both {where[name]} and {path}; a patient belongs to one split")
            split_of[name], where[name] = split, path
    return split_of


# ---------------------------------------------------------------------------- per-patient files


def _mhd_header(path: Path) -> dict[str, str]:
    """The `key = value` lines of a MetaImage header."""
    try:
        text = path.read_bytes()[:65536].decode("latin-1")
    except OSError as exc:
        raise _fail(f"{path} cannot be read ({exc.strerror or exc})") from None
    header = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
        if key.strip() == "ElementDataFile":
            break  # binary data may follow (LOCAL)
    return header


def _mhd_data_file(path: Path) -> Path | None:
    """The pixel-data file an .mhd header names (None when the data is inline); a missing one is an error."""
    value = _mhd_header(path).get("ElementDataFile")
    if value is None:
        raise _fail(f"{path} cannot be read (no ElementDataFile line: not a MetaImage header); "
                    f"the file is truncated or corrupt: {_REEXTRACT}")
    if value.upper() == "LOCAL":
        return None
    if value.upper().startswith("LIST") or "%" in value:
        raise _fail(f"{path} names a multi-file pixel list ({value}); CAMUS frames are single files, {_REEXTRACT}")
    data = path.parent / value
    if not data.is_file():
        raise _fail(f"{path} names its pixel data {value}, which is missing; every .mhd needs its .raw or .zraw beside it")
    return data


#: MetaImage element types whose byte size is fixed across platforms.
_MET_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _check_mhd_payload(path: Path) -> None:
    """Check the .raw size or the .zraw stream against the header before ITK reads it.

    Why: ITK prints "Uncompress failed" for a corrupt .zraw and still returns an
    image, and accepts a .raw longer than the header says.
    """
    header = _mhd_header(path)
    data = _mhd_data_file(path)
    dims, etype = header.get("DimSize", "").split(), header.get("ElementType", "")
    bad = f"{path} cannot be read"
    try:
        expected = int(np.prod([int(d) for d in dims])) * _MET_BYTES[etype] * int(header.get("ElementNumberOfChannels", "1"))
    except (KeyError, ValueError):
        if not dims:
            raise _fail(f"{bad} (its header has no DimSize); the file is truncated or corrupt: {_REEXTRACT}") from None
        return  # an element type of platform-dependent size: leave the check to ITK
    if data is None or header.get("HeaderSize", "0") != "0":
        return
    if header.get("CompressedData", "False").lower() == "true":
        try:
            got = len(zlib.decompress(data.read_bytes()))
        except zlib.error as exc:
            raise _fail(f"{bad}: its pixel data {data.name} is not a valid compressed stream ({exc}); the file is truncated or corrupt: "
                        f"{_REEXTRACT}") from None
    else:
        got = data.stat().st_size
    if got != expected:
        raise _fail(f"{bad}: its pixel data {data.name} holds {got} bytes, the header needs {expected}; the file is truncated or corrupt: "
                    f"{_REEXTRACT}")


def _patient_files(layout: _Layout, patient: str) -> tuple[dict[tuple[str, str], tuple[Path, Path]], dict[str, Path], list[Path]]:
    """(view, phase) -> (image, label) paths, view -> cfg path, and every source file; missing ones are errors."""
    folder = layout.patients / patient
    pairs: dict[tuple[str, str], tuple[Path, Path]] = {}
    cfgs: dict[str, Path] = {}
    sources: list[Path] = []
    need = f"every patient needs {{2CH,4CH}}_{{ED,ES}} images and _gt labels ({layout.ext}) and Info_{{2CH,4CH}}.cfg"
    for view in VIEWS:
        for phase in PHASES:
            image = folder / f"{patient}_{view}_{phase}{layout.ext}"
            label = folder / f"{patient}_{view}_{phase}_gt{layout.ext}"
            for path in (image, label):
                if not path.is_file():
                    raise _fail(f"{path} is missing; {need}")
                sources.append(path)
                if layout.release == "mhd":
                    data = _mhd_data_file(path)
                    if data is not None:
                        sources.append(data)
            pairs[view, phase] = (image, label)
        cfg = folder / f"Info_{view}.cfg"
        if not cfg.is_file():
            raise _fail(f"{cfg} is missing; {need}")
        cfgs[view] = cfg
        sources.append(cfg)
    return pairs, cfgs, sources


# ---------------------------------------------------------------------------- reading


def _read_array(path: Path, release: str) -> tuple[np.ndarray, tuple[float, float]]:
    """Pixels as (height, width) with the apex at row 0, and spacing (row, col) in mm."""
    try:
        if release == "nifti":
            raw = path.read_bytes()
            if path.name.endswith(".gz"):
                raw = gzip.decompress(raw)  # the whole stream: its CRC and length are checked
            img = nib.Nifti1Image.from_bytes(raw)
            arr = np.asanyarray(img.dataobj)  # nibabel: (x = width, y = height[, 1])
            zooms = tuple(float(z) for z in img.header.get_zooms())
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            if arr.ndim != 2:
                raise _fail(f"{path} has shape {arr.shape}; expected one 2-D frame (width, height)")
            arr, spacing = arr.T, (zooms[1], zooms[0])
        else:
            _check_mhd_payload(path)
            img = sitk.ReadImage(str(path))
            arr = sitk.GetArrayFromImage(img)  # SimpleITK: ([1,] y = height, x = width)
            sp = img.GetSpacing()
            if arr.ndim == 3 and arr.shape[0] == 1:
                arr = arr[0]
            if arr.ndim != 2:
                raise _fail(f"{path} has shape {arr.shape}; expected one 2-D frame (height, width)")
            spacing = (float(sp[1]), float(sp[0]))
    except BenchError:
        raise
    except Exception as exc:
        raise _fail(f"{path} cannot be read ({_why(exc, path)}); the file is truncated or corrupt: {_REEXTRACT}") from None
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise _fail(f"{path} has pixel spacing {spacing}; expected positive mm values in its header")
    return np.ascontiguousarray(arr), spacing


def _to_uint8(arr: np.ndarray, path: Path) -> np.ndarray:
    """`bench.image_to_uint8`, with the file named when its values are not finite."""
    try:
        return image_to_uint8(arr)
    except ValueError:
        raise _fail(f"{path} has NaN or infinite pixel values; {_REEXTRACT}") from None


def _check_label(lab: np.ndarray, path: Path, image_shape: tuple[int, ...], image_path: Path) -> np.ndarray:
    if lab.shape != image_shape:
        raise _fail(f"{path} is {lab.shape[0]}x{lab.shape[1]} (height x width) but its image {image_path.name} is "
                    f"{image_shape[0]}x{image_shape[1]}; a label must match its image")
    a = lab
    if not np.issubdtype(lab.dtype, np.integer):
        a = lab.astype(np.float64)
        if not np.isfinite(a).all() or not np.array_equal(a, np.round(a)):
            raise _fail(f"{path} has non-integer label values; CAMUS labels are 0 background, 1 LV cavity, 2 myocardium, 3 left atrium")
    bad = np.setdiff1d(np.unique(a), [0, 1, 2, 3])
    if bad.size:
        shown = ", ".join(str(int(v)) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise _fail(f"{path} has label values {shown} outside 0..3; CAMUS labels are 0 background, 1 LV cavity, "
                    "2 myocardium, 3 left atrium")
    return a.astype(np.uint8)


def _int(value: str) -> int | None:
    try:
        f = float(value)
    except ValueError:
        return None
    return int(f) if f.is_integer() else None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


#: cfg key -> (info column, parser); EF (public) and LVef (older release) are percentages.
_CFG_KEYS: dict[str, tuple[str, Any]] = {
    "ED": ("ed_frame", _int), "ES": ("es_frame", _int), "NbFrame": ("nb_frame", _int),
    "FrameRate": ("frame_rate", _float), "Age": ("age", _int), "Sex": ("sex", str),
    "ImageQuality": ("quality", lambda v: v.lower()),
    "EF": ("ef", lambda v: None if _float(v) is None else _float(v) / 100.0),
    "LVef": ("ef", lambda v: None if _float(v) is None else _float(v) / 100.0),
    "LVedv": ("edv_ml", _float), "LVesv": ("esv_ml", _float),
}
CFG_COLUMNS = ("quality", "ef", "age", "sex", "ed_frame", "es_frame", "nb_frame", "frame_rate")


def _read_cfg(path: Path) -> dict[str, Any]:
    """The metadata of one Info_{view}.cfg (`key: value` lines), under the info column names."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise _fail(f"{path} cannot be read ({exc.strerror or exc})") from None
    out: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise _fail(f"{path} line {number} is not 'key: value'; {_REEXTRACT}")
        key, value = key.strip(), value.strip()
        if key in _CFG_KEYS:
            column, parse = _CFG_KEYS[key]
            parsed = parse(value)
            if parsed is None:
                raise _fail(f"{path} line {number}: {key} is {value[:30]!r}, not a number")
            out[column] = parsed
    return out


# ---------------------------------------------------------------------------- the adapter


@datasets.register("camus")
def camus(*, size: int, root: Path | None = None, fold: int | None = None, cache_dir: Path | None = None,
          release: str | None = None) -> Data:
    """The CAMUS ED/ES frames of a local copy at `size` x `size`, from a fingerprinted cache.

    `root`: the copy (None: `$ECHO_NOISE_BENCH_CAMUS`). `fold` None: the public
    release's official split (400/50/50); the older MHD release has no official
    split and uses ten-fold fold 1 unless `fold` (1..10) says otherwise. A fold
    on the public release needs ten-fold lists in the copy. `release` forces
    'nifti' or 'mhd' when ROOT holds both. `cache_dir`: see `bench.cached`.
    Images are uint8 as stored (a non-uint8 source is cast when its values are
    integers in 0..255, else min-max rescaled per image), bilinearly resized;
    labels 0..3, nearest resized; spacing in mm (row, col) of the resized grid.
    Bad input raises a one-line BenchError naming the file, and caches nothing.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise _fail(f"size={size!r} is invalid; use an integer of 16 px or more")
    size = int(size)
    layout = _detect(_resolve_root(root), release)
    files, used_fold = _split_files(layout, fold)
    split_of = _assign_splits(files, layout)
    patients = sorted(split_of)
    per_patient = {p: _patient_files(layout, p) for p in patients}
    sources = [*files.values(), *(s for p in patients for s in per_patient[p][2])]
    split_name = "official" if used_fold is None else f"ten-fold {used_fold}"
    params = {
        "adapter": ADAPTER_VERSION, "release": layout.release, "size": size, "split": split_name,
        "image": "uint8; else lossless cast or min-max; bilinear half-pixel", "label": "nearest half-pixel",
    }
    options = {"release": layout.release, "root": str(layout.root), "fold": used_fold, "split": split_name, "size": size}

    def build() -> Data:
        n = len(patients) * len(VIEWS) * len(PHASES)
        print(f"echo-noise-bench: CAMUS: preprocessing {n} frames of {layout.root} at {size} px (cached afterwards)",
              file=sys.stderr, flush=True)
        images = np.empty((n, size, size), np.uint8)
        labels = np.empty((n, size, size), np.uint8)
        spacing = np.empty((n, 2), np.float64)
        rows = []
        i = 0
        for patient in patients:
            pairs, cfgs, _ = per_patient[patient]
            for view in VIEWS:
                meta = _read_cfg(cfgs[view])
                for phase in PHASES:
                    image_path, label_path = pairs[view, phase]
                    img, sp = _read_array(image_path, layout.release)
                    lab, _ = _read_array(label_path, layout.release)
                    lab = _check_label(lab, label_path, img.shape, image_path)
                    img = _to_uint8(img, image_path)
                    h, w = img.shape
                    images[i] = resize_image(img, (size, size))
                    labels[i] = resize_labels(lab, (size, size))
                    spacing[i] = (sp[0] * h / size, sp[1] * w / size)
                    row = {"id": f"{patient}_{view}_{phase}", "patient": patient, "view": view, "phase": phase,
                           "split": split_of[patient]}
                    row.update({c: meta.get(c) for c in CFG_COLUMNS})
                    row.update({c: meta[c] for c in ("edv_ml", "esv_ml") if c in meta})
                    row.update(orig_height=h, orig_width=w, orig_spacing_row_mm=sp[0], orig_spacing_col_mm=sp[1])
                    rows.append(row)
                    i += 1
        info = pd.DataFrame(rows)
        for column in ("age", "ed_frame", "es_frame", "nb_frame"):
            if info[column].notna().all():
                info[column] = info[column].astype(np.int64)
        return Data(
            name="camus", images=images, labels=labels, spacing=spacing, info=info, fingerprint="", options=options, label_set=CAMUS_LABELS
        )

    return cached("camus", params, sources, build, cache_dir)
