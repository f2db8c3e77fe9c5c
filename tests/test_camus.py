"""The CAMUS adapter (`datasets/camus.py`) on fixture trees of both releases, written here with nibabel and SimpleITK.

Truth is independent of the adapter: the known (height, width) pictures the
fixtures are written from, torch's `interpolate` for resizing, and the numbers
written into the cfg and split files.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

import bench
from bench import BenchError

SIZE = 32
VIEWS = ("2CH", "4CH")
PHASES = ("ED", "ES")
PATIENTS = [f"patient{i:04d}" for i in range(1, 6)]
# (height, width) of each patient's frames: non-square, different, none a multiple of the output size
SHAPES = {1: (70, 50), 2: (61, 83), 3: (45, 38), 4: (52, 66), 5: (39, 57)}
# (row, col) mm; exactly representable in float32 (NIfTI stores float32 zooms)
SPACING = {1: (0.25, 0.375), 2: (0.3125, 0.5), 3: (0.5, 0.625), 4: (0.1875, 0.25), 5: (0.4375, 0.5)}
OFFICIAL = {"train": PATIENTS[:3], "val": [PATIENTS[3]], "test": [PATIENTS[4]]}
FOLDS = {1: OFFICIAL, 2: {"train": [PATIENTS[i] for i in (1, 2, 4)], "val": [PATIENTS[0]], "test": [PATIENTS[3]]}}
LIST = {"train": "training", "val": "validation", "test": "testing"}


# ---------------------------------------------------------------------------- known pictures


def picture(p: int, v: int, ph: int) -> tuple[np.ndarray, np.ndarray]:
    """A (height, width) image and label of an apical view: the sector apex at row 0, centre column.

    Asymmetric on purpose: a bright marker in the upper LEFT, the image ramps with depth
    and differs per (patient, view, phase); labels: LV cavity (1) left of the axis,
    myocardium (2) right of it, left atrium (3) at the bottom.
    """
    h, w = SHAPES[p]
    r, c = np.mgrid[0:h, 0:w].astype(np.float64)
    centre = (w - 1) / 2
    sector = np.abs(c - centre) <= r * 0.9 + 0.5
    img = np.where(sector, 40 + (150 * r / h) + 7 * p + 3 * v + 5 * ph + (c % 5) * 4, 0)
    img[(r >= h // 6) & (r < h // 6 + 4) & (c >= 2) & (c < 6)] = 255  # marker: upper left
    img = np.clip(img, 0, 255).astype(np.uint8)
    lab = np.zeros((h, w), np.uint8)
    lab[sector & (r > h * 0.2) & (r < h * 0.7) & (c < centre)] = 1
    lab[sector & (r > h * 0.2) & (r < h * 0.7) & (c >= centre)] = 2
    lab[sector & (r >= h * 0.75)] = 3
    return img, lab


def cfg_values(p: int, v: int) -> dict:
    return {
        "ED": 1,
        "ES": 10 + p + v,
        "NbFrame": 12 + p + v,
        "Sex": "MF"[p % 2],
        "Age": 40 + p,
        "ImageQuality": ("Good", "Medium", "Poor")[(p + v) % 3],
        "EF": 30 + 5 * p,
        "FrameRate": 20.0 + p,
    }


# ---------------------------------------------------------------------------- writers (the way CAMUS stores frames)


def write_nifti_nibabel(path: Path, arr_hw: np.ndarray, spacing_rc: tuple[float, float]) -> None:
    """nibabel's array axes are (x = width, y = height): store the transpose."""
    affine = np.diag([spacing_rc[1], spacing_rc[0], 1.0, 1.0])
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr_hw.T), affine), str(path))


def write_sitk(path: Path, arr_hw: np.ndarray, spacing_rc: tuple[float, float], compress: bool = False, as3d: bool = False) -> None:
    """SimpleITK's array axes are (y = height, x = width); spacing is given as (x, y)."""
    img = sitk.GetImageFromArray(arr_hw[None] if as3d else arr_hw)
    img.SetSpacing((spacing_rc[1], spacing_rc[0], 1.0) if as3d else (spacing_rc[1], spacing_rc[0]))
    sitk.WriteImage(img, str(path), compress)


def write_lists(folder: Path, split: dict, pattern: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s, names in split.items():
        (folder / pattern.format(LIST[s])).write_text("".join(n + "\n" for n in names))


def make_nifti_tree(root: Path, *, ten_fold: bool = False) -> Path:
    """CAMUS_public: odd patients written with SimpleITK, even ones with nibabel; one 3-D frame, two non-uint8 images."""
    for p, name in enumerate(PATIENTS, 1):
        folder = root / "database_nifti" / name
        folder.mkdir(parents=True)
        for v, view in enumerate(VIEWS):
            for ph, phase in enumerate(PHASES):
                img, lab = picture(p, v, ph)
                stem = folder / f"{name}_{view}_{phase}"
                if (p, v, ph) == (3, 0, 0):
                    img = img.astype(np.float32) / 255.0  # float in [0, 1]: min-max rescaled back to 0..255
                if (p, v, ph) == (4, 1, 1):
                    img = img.astype(np.int16)  # integers within 0..255: cast losslessly
                if p % 2:
                    write_sitk(Path(f"{stem}.nii.gz"), img, SPACING[p])
                    write_sitk(Path(f"{stem}_gt.nii.gz"), lab, SPACING[p], as3d=(p, v, ph) == (5, 1, 0))
                else:
                    write_nifti_nibabel(Path(f"{stem}.nii.gz"), img, SPACING[p])
                    write_nifti_nibabel(Path(f"{stem}_gt.nii.gz"), lab, SPACING[p])
            (folder / f"Info_{view}.cfg").write_text("".join(f"{k}: {x}\n" for k, x in cfg_values(p, v).items()))
            (folder / f"{name}_{view}_half_sequence.nii.gz").write_bytes(b"never read")
    # a patient folder that no split names is ignored, even when incomplete
    (root / "database_nifti" / "patient0006").mkdir()
    write_lists(root / "database_split", OFFICIAL, "subgroup_{}.txt")
    if ten_fold:
        for k, split in FOLDS.items():
            write_lists(root / "database_split", split, f"subGroup{k}_{{}}.txt")
    return root


def make_mhd_tree(root: Path, *, lists_in: str = "listSubGroups") -> Path:
    """The older release: SimpleITK .mhd with .raw (odd patients) or .zraw (even), some 3-D (W, H, 1) like CAMUS."""
    for p, name in enumerate(PATIENTS, 1):
        folder = root / "training" / name
        folder.mkdir(parents=True)
        for v, view in enumerate(VIEWS):
            for ph, phase in enumerate(PHASES):
                img, lab = picture(p, v, ph)
                stem = folder / f"{name}_{view}_{phase}"
                write_sitk(Path(f"{stem}.mhd"), img, SPACING[p], compress=p % 2 == 0, as3d=p <= 2)
                write_sitk(Path(f"{stem}_gt.mhd"), lab, SPACING[p], compress=p % 2 == 0, as3d=p <= 2)
            c = cfg_values(p, v)
            old = {
                "ED": c["ED"],
                "ES": c["ES"],
                "NbFrame": c["NbFrame"],
                "Sex": c["Sex"],
                "Age": c["Age"],
                "ImageQuality": c["ImageQuality"],
                "LVedv": 100.0 + p,
                "LVesv": 50.0 + p,
                "LVef": c["EF"],
            }
            (folder / f"Info_{view}.cfg").write_text("".join(f"{k}: {x}\n" for k, x in old.items()))
    (root / "testing" / "patient0451").mkdir(parents=True)  # unlabelled: not read
    for k, split in FOLDS.items():
        write_lists(root / lists_in if lists_in else root, split, f"subGroup{k}_{{}}.txt")
    return root


@pytest.fixture(scope="module")
def nifti_root(tmp_path_factory) -> Path:
    return make_nifti_tree(tmp_path_factory.mktemp("camus_public"))


@pytest.fixture(scope="module")
def mhd_root(tmp_path_factory) -> Path:
    return make_mhd_tree(tmp_path_factory.mktemp("camus_mhd"))


@pytest.fixture(scope="module")
def nifti_data(nifti_root, tmp_path_factory):
    return bench.load_dataset("camus", size=SIZE, root=nifti_root, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def mhd_data(mhd_root, tmp_path_factory):
    return bench.load_dataset("camus", size=SIZE, root=mhd_root, cache_dir=tmp_path_factory.mktemp("cache"))


def resized(img: np.ndarray, lab: np.ndarray, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's resize by torch: bilinear (half-pixel, no antialias) image, nearest-exact labels."""
    ti = F.interpolate(torch.from_numpy(img.astype(np.float64))[None, None], size=(size, size), mode="bilinear", align_corners=False)
    tl = F.interpolate(torch.from_numpy(lab.astype(np.float64))[None, None], size=(size, size), mode="nearest-exact")
    return np.clip(np.rint(ti[0, 0].numpy()), 0, 255).astype(np.uint8), tl[0, 0].numpy().astype(np.uint8)


def expected_ids() -> list[str]:
    return [f"{n}_{v}_{ph}" for n in PATIENTS for v in VIEWS for ph in PHASES]


def npz_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npz")) if folder.exists() else []


# ---------------------------------------------------------------------------- orientation facts the adapter relies on


def test_library_axis_orders(tmp_path):
    """nibabel gives (width, height), SimpleITK (height, width), for the same NIfTI and either writer; spacing x = col."""
    img, _ = picture(2, 0, 0)  # 61 x 83 (height x width)
    write_sitk(tmp_path / "a.nii.gz", img, SPACING[2])
    write_nifti_nibabel(tmp_path / "b.nii.gz", img, SPACING[2])
    for name in ("a.nii.gz", "b.nii.gz"):
        n = nib.load(str(tmp_path / name))
        assert n.shape == (83, 61) and np.array_equal(np.asanyarray(n.dataobj).T, img)
        assert tuple(float(z) for z in n.header.get_zooms()) == (SPACING[2][1], SPACING[2][0])
        s = sitk.ReadImage(str(tmp_path / name))
        assert np.array_equal(sitk.GetArrayFromImage(s), img) and s.GetSpacing() == (SPACING[2][1], SPACING[2][0])


# ---------------------------------------------------------------------------- the public NIfTI release


def test_nifti_values_orientation_and_spacing(nifti_data):
    d = nifti_data
    assert d.name == "camus" and d.ids == expected_ids() and len(d) == 20
    assert d.images.shape == d.labels.shape == (20, SIZE, SIZE) and d.images.dtype == d.labels.dtype == np.uint8
    assert d.spacing.dtype == np.float64 and set(np.unique(d.labels)) == {0, 1, 2, 3}
    i = 0
    for p in range(1, 6):
        for v in range(2):
            for ph in range(2):
                img, lab = picture(p, v, ph)
                want_img, want_lab = resized(img, lab)
                assert np.array_equal(d.images[i], want_img), d.ids[i]
                assert np.array_equal(d.labels[i], want_lab), d.ids[i]
                h, w = SHAPES[p]
                assert d.spacing[i] == pytest.approx((SPACING[p][0] * h / SIZE, SPACING[p][1] * w / SIZE), rel=1e-12)
                assert (d.info.loc[i, "orig_height"], d.info.loc[i, "orig_width"]) == (h, w)
                i += 1
    # apex at the top: the first rows are dark except near the centre; the marker sits upper left
    top, bottom = d.images[:, :2, :], d.images[:, -3:, :]
    assert (top[:, :, : SIZE // 4] == 0).all() and (top[:, :, -SIZE // 4 :] == 0).all()
    assert (bottom[:, :, SIZE // 4 : -SIZE // 4] > 0).all()
    assert (d.labels[:, :, : SIZE // 2] != 2).all()  # myocardium only right of the axis: no left/right flip


def test_nifti_metadata_and_official_split(nifti_data):
    info = nifti_data.info.set_index("id")
    for p, name in enumerate(PATIENTS, 1):
        for v, view in enumerate(VIEWS):
            c = cfg_values(p, v)
            for phase in PHASES:
                row = info.loc[f"{name}_{view}_{phase}"]
                assert (row["patient"], row["view"], row["phase"]) == (name, view, phase)
                assert row["quality"] == c["ImageQuality"].lower() and row["sex"] == c["Sex"]
                assert row["age"] == c["Age"] and row["ef"] == pytest.approx(c["EF"] / 100)
                assert (row["ed_frame"], row["es_frame"], row["nb_frame"]) == (c["ED"], c["ES"], c["NbFrame"])
                assert row["frame_rate"] == pytest.approx(c["FrameRate"])
    for split, names in OFFICIAL.items():
        assert sorted(set(nifti_data.split(split).info["patient"])) == names
    assert nifti_data.options["split"] == "official" and nifti_data.options["fold"] is None


def test_nifti_cache_hit_and_stale_rebuild(nifti_root, tmp_path, capsys):
    root = Path(shutil.copytree(nifti_root, tmp_path / "copy"))
    cache = tmp_path / "cache"
    a = bench.load_dataset("camus", size=SIZE, root=root, cache_dir=cache)
    assert "preprocessing 20 frames" in capsys.readouterr().err and len(npz_in(cache)) == 1
    b = bench.load_dataset("camus", size=SIZE, root=root, cache_dir=cache)
    assert "preprocessing" not in capsys.readouterr().err  # a hit: nothing read again
    assert a.fingerprint == b.fingerprint and np.array_equal(a.images, b.images)
    # another size is another cache; a changed source byte makes the cache stale and rebuilds it
    c = bench.load_dataset("camus", size=SIZE + 8, root=root, cache_dir=cache)
    assert c.fingerprint != a.fingerprint and len(npz_in(cache)) == 2
    cfg = root / "database_nifti" / "patient0002" / "Info_2CH.cfg"
    cfg.write_text(cfg.read_text().replace("EF: 40", "EF: 41"))
    capsys.readouterr()
    d = bench.load_dataset("camus", size=SIZE, root=root, cache_dir=cache)
    err = capsys.readouterr().err
    assert "stale" in err and "preprocessing" in err and d.fingerprint != a.fingerprint
    assert d.info.set_index("id").loc["patient0002_2CH_ED", "ef"] == pytest.approx(0.41)
    assert len(npz_in(cache)) == 2


def test_root_from_environment(nifti_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ECHO_NOISE_BENCH_CAMUS", str(nifti_root))
    d = bench.datasets.get("camus")(size=SIZE, cache_dir=tmp_path)
    assert d.ids == expected_ids() and d.options["release"] == "nifti"


def test_nifti_ten_fold_when_lists_exist(tmp_path):
    root = make_nifti_tree(tmp_path / "tf", ten_fold=True)
    d = bench.load_dataset("camus", size=SIZE, root=root, fold=2, cache_dir=tmp_path / "cache")
    for split, names in FOLDS[2].items():
        assert sorted(set(d.split(split).info["patient"])) == names
    assert d.options["fold"] == 2


# ---------------------------------------------------------------------------- the older MHD release


def test_mhd_matches_the_same_pictures(mhd_data, nifti_data):
    d = mhd_data
    assert d.ids == expected_ids() and d.options == {**d.options, "release": "mhd", "fold": 1}
    i = 0
    for p in range(1, 6):
        for v in range(2):
            for ph in range(2):
                want_img, want_lab = resized(*picture(p, v, ph))
                assert np.array_equal(d.images[i], want_img) and np.array_equal(d.labels[i], want_lab), d.ids[i]
                i += 1
    # the same frames through both readers: identical arrays and spacing
    assert np.array_equal(d.images, nifti_data.images) and np.array_equal(d.labels, nifti_data.labels)
    assert np.allclose(d.spacing, nifti_data.spacing, rtol=1e-12)
    assert d.fingerprint != nifti_data.fingerprint


def test_mhd_metadata_and_folds(mhd_data, mhd_root, tmp_path):
    info = mhd_data.info.set_index("id")
    row = info.loc["patient0003_4CH_ES"]
    c = cfg_values(3, 1)
    assert row["ef"] == pytest.approx(c["EF"] / 100) and row["edv_ml"] == 103.0 and row["esv_ml"] == 53.0
    assert row["quality"] == c["ImageQuality"].lower() and row["age"] == 43 and row["es_frame"] == c["ES"]
    assert info["frame_rate"].isna().all()  # the older cfg has no FrameRate
    for split, names in FOLDS[1].items():  # no fold given: fold 1
        assert sorted(set(mhd_data.split(split).info["patient"])) == names
    d2 = bench.load_dataset("camus", size=SIZE, root=mhd_root, fold=2, cache_dir=tmp_path)
    for split, names in FOLDS[2].items():
        assert sorted(set(d2.split(split).info["patient"])) == names
    assert d2.fingerprint != mhd_data.fingerprint and np.array_equal(d2.images, mhd_data.images)


def test_mhd_lists_at_root(tmp_path):
    root = make_mhd_tree(tmp_path / "m", lists_in="")
    d = bench.load_dataset("camus", size=SIZE, root=root, fold="2", cache_dir=tmp_path / "cache")  # as a CLI string
    assert sorted(set(d.split("test").info["patient"])) == FOLDS[2]["test"] and d.options["fold"] == 2


# ---------------------------------------------------------------------------- bad input: one line, exit code 2, nothing cached


def copy_tree(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / "root"))


def expect_error(root: Path | None, tmp_path: Path, *fragments: str, **options) -> str:
    cache = tmp_path / "cache"
    with pytest.raises(BenchError) as info:
        bench.load_dataset("camus", size=SIZE, root=root, cache_dir=cache, **options)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in message, message
    assert npz_in(cache) == []
    return message


def test_root_not_given(tmp_path, monkeypatch):
    monkeypatch.delenv("ECHO_NOISE_BENCH_CAMUS", raising=False)
    message = expect_error(None, tmp_path)
    assert message == (
        "CAMUS root not given: pass --data-root DIR or set ECHO_NOISE_BENCH_CAMUS; the dataset needs "
        "registration at the CAMUS challenge site and is never downloaded"
    )


def test_missing_or_unrecognised_root(tmp_path):
    expect_error(tmp_path / "nowhere", tmp_path, str(tmp_path / "nowhere"), "does not exist")
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", tmp_path, str(tmp_path / "empty"), "neither database_nifti/", "training/")


@pytest.mark.parametrize("missing", ["patient0003_4CH_ES_gt.nii.gz", "patient0003_2CH_ED.nii.gz", "Info_4CH.cfg"])
def test_patient_missing_a_file(nifti_root, tmp_path, missing):
    root = copy_tree(nifti_root, tmp_path)
    path = root / "database_nifti" / "patient0003" / missing
    path.unlink()
    expect_error(root, tmp_path, f"CAMUS: {path} is missing", "every patient needs")


def test_mhd_missing_raw(mhd_root, tmp_path):
    root = copy_tree(mhd_root, tmp_path)
    (root / "training" / "patient0001" / "patient0001_2CH_ES.raw").unlink()
    expect_error(root, tmp_path, "patient0001_2CH_ES.mhd", "patient0001_2CH_ES.raw, which is missing")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "bad-gzip-body"])
def test_truncated_or_corrupt_nifti(nifti_root, tmp_path, damage):
    root = copy_tree(nifti_root, tmp_path)
    path = root / "database_nifti" / "patient0002" / "patient0002_4CH_ED.nii.gz"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 50)
    elif damage == "flip":  # one byte of the compressed body: caught by the gzip CRC at the latest
        path.write_bytes(raw[: len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0x55]) + raw[len(raw) // 2 + 1 :])
    else:  # a valid gzip stream holding a truncated NIfTI
        path.write_bytes(gzip.compress(gzip.decompress(raw)[:400]))
    expect_error(root, tmp_path, f"CAMUS: {path} cannot be read", "truncated or corrupt")


@pytest.mark.parametrize("damage", ["raw-truncated", "raw-too-long", "zraw-truncated", "zraw-garbage", "header"])
def test_truncated_or_corrupt_mhd(mhd_root, tmp_path, damage):
    root = copy_tree(mhd_root, tmp_path)
    folder = root / "training"
    if damage.startswith("raw"):
        path = folder / "patient0001" / "patient0001_4CH_ES.raw"
    elif damage.startswith("zraw"):
        path = folder / "patient0002" / "patient0002_2CH_ED_gt.zraw"
    else:
        path = folder / "patient0003" / "patient0003_2CH_ES.mhd"
    raw = path.read_bytes()
    if damage.endswith("truncated"):
        path.write_bytes(raw[: len(raw) // 3])
    elif damage == "raw-too-long":
        path.write_bytes(raw + b"\0" * 7)
    elif damage == "zraw-garbage":  # same length, not a zlib stream: ITK would print a warning and return an image
        path.write_bytes(b"x" * len(raw))
    else:
        path.write_text(path.read_text().replace("DimSize", "DimSizeX"))
    expect_error(root, tmp_path, f"CAMUS: {path.with_suffix('.mhd')} cannot be read", "truncated or corrupt")


def test_label_out_of_range(nifti_root, tmp_path):
    root = copy_tree(nifti_root, tmp_path)
    path = root / "database_nifti" / "patient0002" / "patient0002_2CH_ES_gt.nii.gz"
    _, lab = picture(2, 0, 1)
    lab[5, 5], lab[6, 6] = 4, 255
    write_nifti_nibabel(path, lab, SPACING[2])
    expect_error(root, tmp_path, f"CAMUS: {path} has label values 4, 255 outside 0..3")


def test_label_shape_differs(mhd_root, tmp_path):
    root = copy_tree(mhd_root, tmp_path)
    path = root / "training" / "patient0004" / "patient0004_4CH_ED_gt.mhd"
    _, lab = picture(4, 1, 0)
    write_sitk(path, lab[:-1, :], SPACING[4])
    expect_error(root, tmp_path, f"CAMUS: {path} is 51x66", "patient0004_4CH_ED.mhd is 52x66", "must match its image")


def test_split_names_missing_patient(nifti_root, tmp_path):
    root = copy_tree(nifti_root, tmp_path)
    lst = root / "database_split" / "subgroup_validation.txt"
    lst.write_text("patient0004\npatient0009\n")
    expect_error(root, tmp_path, f"CAMUS: {lst} names patient0009", "does not exist")


def test_split_file_missing_or_overlapping(nifti_root, tmp_path):
    root = copy_tree(nifti_root, tmp_path)
    lst = root / "database_split" / "subgroup_testing.txt"
    lst.write_text("patient0005\npatient0001\n")
    expect_error(root, tmp_path, "patient0001 is in both", "one split")
    lst.unlink()
    expect_error(root, tmp_path, f"CAMUS: {lst} is missing")


def test_fold_errors(nifti_root, mhd_root, tmp_path):
    expect_error(nifti_root, tmp_path, "fold 3", "subGroup3_training.txt", "leave fold out", fold=3)
    expect_error(mhd_root, tmp_path, "fold=11 is invalid", fold=11)
    expect_error(mhd_root, tmp_path, "fold='x' is invalid", fold="x")
    expect_error(mhd_root, tmp_path, "fold 3", "subGroup3_training.txt", fold=3)


def test_bad_cfg(nifti_root, tmp_path):
    root = copy_tree(nifti_root, tmp_path)
    cfg = root / "database_nifti" / "patient0005" / "Info_2CH.cfg"
    cfg.write_text(cfg.read_text().replace("EF: 55", "EF: n/a"))
    expect_error(root, tmp_path, f"CAMUS: {cfg} line 7: EF is 'n/a', not a number")
