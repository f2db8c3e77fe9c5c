"""The nnU-Net v2 raw-layout adapter (`datasets/nnunet.py`) and its label writer, on fixture trees written here.

Truth is independent of the adapter: the known (height, width) pictures the
trees are written from (with Pillow, nibabel and SimpleITK directly), torch's
`interpolate` for resizing, pixels and spacings computed by hand, and the
written files read back with the libraries themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from PIL import Image

import bench
from bench import BenchError
from bench.plugins import plugin_module

SIZE = 16
ENDINGS = (".png", ".nii.gz", ".nii", ".nrrd", ".mha")
LABELS = {"background": 0, "lv": 1, "myo": 2}
# case -> (height, width), (row, col) mm: non-square, none a multiple of SIZE but the first; spacings exact in float32
CASES = {
    "patient01_a": ((40, 24), (0.25, 0.375)),
    "patient01_b": ((30, 50), (0.5, 0.3125)),
    "patient02_a": ((21, 37), (0.4375, 0.4375)),
}


def picture(case: str) -> tuple[np.ndarray, np.ndarray]:
    """A (height, width) uint8 image, linear in row and column (10 + 2 r + 3 c, + 1 per case), and a label 0..2."""
    (h, w), _ = CASES[case]
    r, c = np.mgrid[0:h, 0:w]
    k = list(CASES).index(case)
    img = np.clip(10 + 2 * r + 3 * c + k, 0, 255).astype(np.uint8)
    lab = ((r // 10 + c // 8) % 3).astype(np.uint8)
    return img, lab


# ---------------------------------------------------------------------------- writers (independent of the adapter)


def affine_of(spacing_rc: tuple[float, float]) -> np.ndarray:
    """NIfTI affine: x = column, y = row, with an offset origin so that geometry is not the default."""
    affine = np.diag([spacing_rc[1], spacing_rc[0], 1.0, 1.0])
    affine[:3, 3] = (-12.5, 30.0, 4.0)
    return affine


def write_file(path: Path, arr_hw: np.ndarray, spacing_rc: tuple[float, float], ending: str, *, single_slice: bool = False) -> None:
    """`arr_hw` in the given format; NIfTI as (x, y) or (x, y, 1), SimpleITK with origin and direction set."""
    if ending == ".png":
        Image.fromarray(arr_hw).save(path)
    elif ending in (".nii.gz", ".nii"):
        data = np.ascontiguousarray(arr_hw.T)
        img = nib.Nifti1Image(data[:, :, None] if single_slice else data, affine_of(spacing_rc))
        img.header["descrip"] = b"fixture"
        nib.save(img, str(path))
    else:
        img = sitk.GetImageFromArray(arr_hw[None] if single_slice else arr_hw)
        if single_slice:
            img.SetSpacing((spacing_rc[1], spacing_rc[0], 1.0))
        else:
            img.SetSpacing((spacing_rc[1], spacing_rc[0]))
            img.SetOrigin((-12.5, 30.0))
            img.SetDirection((1.0, 0.0, 0.0, -1.0))
        sitk.WriteImage(img, str(path), True)


def write_json(root: Path, **overrides) -> Path:
    raw = {"channel_names": {"0": "US"}, "labels": LABELS, "numTraining": len(CASES), "file_ending": ".png"}
    raw.update(overrides)
    path = root / "dataset.json"
    path.write_text(json.dumps(raw, indent=2))
    return path


def make_tree(root: Path, ending: str) -> Path:
    """An nnU-Net raw dataset folder with CASES; odd cases single-slice (x, y, 1) where the format allows it."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    (root / "imagesTs").mkdir()
    for k, (case, (_, spacing)) in enumerate(CASES.items()):
        img, lab = picture(case)
        one = k % 2 == 1 and ending != ".png"
        write_file(root / "imagesTr" / f"{case}_0000{ending}", img, spacing, ending, single_slice=one)
        write_file(root / "labelsTr" / f"{case}{ending}", lab, spacing, ending, single_slice=one)
    (root / "imagesTr" / ".DS_Store").write_bytes(b"skipped")
    (root / "labelsTr" / "README.txt").write_text("another ending: skipped")
    (root / "imagesTs" / "unlabelled_0000.png").write_bytes(b"never read")
    write_json(root, file_ending=ending)
    return root


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("nnunet")
    return {e: make_tree(base / f"Dataset04{i}_Echo{e.replace('.', '_')}", e) for i, e in enumerate(ENDINGS)}


@pytest.fixture(scope="module")
def loaded(trees, tmp_path_factory) -> dict[str, bench.Data]:
    cache = tmp_path_factory.mktemp("cache")
    return {e: bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=cache) for e, root in trees.items()}


def resized(img: np.ndarray, lab: np.ndarray, shape: tuple[int, int] = (SIZE, SIZE)) -> tuple[np.ndarray, np.ndarray]:
    """torch's resize: bilinear (half-pixel, no antialias) image, nearest-exact labels."""
    ti = F.interpolate(torch.from_numpy(img.astype(np.float64))[None, None], size=shape, mode="bilinear", align_corners=False)
    return np.clip(np.rint(ti[0, 0].numpy()), 0, 255).astype(np.uint8), nearest(lab, shape)


def nearest(lab: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    t = F.interpolate(torch.from_numpy(lab.astype(np.float64))[None, None], size=shape, mode="nearest-exact")
    return t[0, 0].numpy().astype(np.uint8)


def npz_in(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.npz")) if folder.exists() else []


# ---------------------------------------------------------------------------- reading


@pytest.mark.parametrize("ending", ENDINGS)
def test_values_shapes_and_spacing(loaded, ending):
    d = loaded[ending]
    assert d.name == "nnunet" and d.ids == sorted(CASES) and len(d) == 3
    assert d.images.shape == d.labels.shape == (3, SIZE, SIZE) and d.images.dtype == d.labels.dtype == np.uint8
    for i, case in enumerate(d.ids):
        (h, w), spacing = CASES[case]
        img, lab = picture(case)
        want_img, want_lab = resized(img, lab)
        assert np.array_equal(d.images[i], want_img), case
        assert np.array_equal(d.labels[i], want_lab), case
        sp = spacing if ending != ".png" else (1.0, 1.0)
        assert d.spacing[i] == pytest.approx((sp[0] * h / SIZE, sp[1] * w / SIZE), rel=1e-12)
        row = d.info.iloc[i]
        assert (row["orig_height"], row["orig_width"]) == (h, w)
        assert row["label_file"] == f"labelsTr/{case}{ending}" and row["image_file"] == f"imagesTr/{case}_0000{ending}"
        assert row["spacing_from"] == ("assumed" if ending == ".png" else "header")
    assert (d.info["split"] == "train").all() and list(d.info["patient"]) == d.ids
    assert len(d.split("train")) == 3 and len(d.split("val")) == len(d.split("test")) == 0
    assert d.options["file_ending"] == ending


def test_known_pixel_by_hand(loaded):
    """Case patient01_a (40 x 24) at 16 px, output pixel (5, 7), worked out without any resize code.

    Bilinear, half-pixel: source row (5 + 0.5) * 40/16 - 0.5 = 13.25, column (7 + 0.5) * 24/16 - 0.5 = 10.75;
    the image is linear, 10 + 2 r + 3 c, so the value is 10 + 26.5 + 32.25 = 68.75 -> 69.
    Nearest-exact: source row floor(5.5 * 2.5) = 13, column floor(7.5 * 1.5) = 11; label (13 // 10 + 11 // 8) % 3 = 2.
    Spacing of the resized grid: 0.25 * 40/16 = 0.625 mm per row, 0.375 * 24/16 = 0.5625 mm per column.
    """
    for ending, d in loaded.items():
        i = d.ids.index("patient01_a")
        assert d.images[i, 5, 7] == 69 and d.labels[i, 5, 7] == 2, ending
        if ending != ".png":
            assert tuple(d.spacing[i]) == (0.625, 0.5625)


def test_orientation_rows_are_y(loaded):
    """Row 0 is the image's first row for every reader: the image grows down the rows (2 per row) and right (3 per column)."""
    for ending, d in loaded.items():
        img = d.images[d.ids.index("patient01_b")].astype(int)  # 30 x 50: rows shrink 30/16, columns 50/16
        assert (np.diff(img[1:-1, 8]) > 0).all() and (np.diff(img[8, 1:-1]) > 0).all(), ending
        assert img[8, 14] - img[8, 1] > img[14, 8] - img[1, 8], ending  # the column step (3 x 50/16) beats the row step (2 x 30/16)


def test_label_set_from_dataset_json(loaded, trees):
    ls = loaded[".nii.gz"].label_set
    assert ls.name == trees[".nii.gz"].name and ls.names == ("lv", "myo") and ls.values == (1, 2) and ls.num_classes == 3
    assert ls.titles == {0: "background", 1: "lv", 2: "myo"} and ls.cavity is None and ls.derived == ()


def test_label_set_order_and_names(tmp_path):
    """Values, not the order of the keys, define the structures; any background name is kept as value 0."""
    root = make_tree(tmp_path / "D", ".png")
    write_json(root, labels={"myo": 2, "bg": 0, "lv": 1})
    d = bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=tmp_path / "cache")
    assert d.label_set.by_value == {1: "lv", 2: "myo"}


def test_png_spacing_and_patient_grouping(trees, tmp_path):
    d = bench.load_dataset("nnunet", size=SIZE, root=trees[".png"], png_spacing="0.5,0.25", patient=r"(patient\d+)_", cache_dir=tmp_path)
    for i, case in enumerate(d.ids):
        (h, w), _ = CASES[case]
        assert tuple(d.spacing[i]) == (0.5 * h / SIZE, 0.25 * w / SIZE)
    assert list(d.info["patient"]) == ["patient01", "patient01", "patient02"]
    assert (d.info["spacing_from"] == "png_spacing").all() and "0.5 x 0.25 mm" in d.options["spacing"]
    one = bench.load_dataset("nnunet", size=SIZE, root=trees[".png"], png_spacing=0.5, patient="patient..", cache_dir=tmp_path)
    assert list(one.info["patient"]) == ["patient01", "patient01", "patient02"]
    assert tuple(one.spacing[0]) == (0.5 * 40 / SIZE, 0.5 * 24 / SIZE)


def test_default_png_spacing_is_stated(loaded, trees, tmp_path, capsys):
    assert loaded[".png"].options["spacing"].startswith("PNG: 1 x 1 mm") and "png_spacing" in loaded[".png"].options["spacing"]
    bench.load_dataset("nnunet", size=SIZE, root=trees[".png"], cache_dir=tmp_path / "c")
    err = capsys.readouterr().err
    assert "preprocessing 3 cases" in err and "1 x 1 mm" in err and "assumed" in err
    bench.load_dataset("nnunet", size=SIZE, root=trees[".png"], cache_dir=tmp_path / "c")
    assert "preprocessing" not in capsys.readouterr().err  # a cache hit


def test_non_uint8_image_and_float_label(tmp_path):
    """A 16-bit PNG within 0..255 is cast losslessly; a float32 NIfTI label with integer values is read as those integers."""
    root = make_tree(tmp_path / "P", ".png")
    img, _ = picture("patient02_a")
    Image.fromarray(img.astype(np.uint16)).save(root / "imagesTr" / "patient02_a_0000.png")
    assert Image.open(root / "imagesTr" / "patient02_a_0000.png").mode.startswith("I")
    _, lab = picture("patient01_a")  # a palette label: its indices are the values
    pal = Image.frombytes("P", (lab.shape[1], lab.shape[0]), lab.tobytes())
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.save(root / "labelsTr" / "patient01_a.png")
    assert Image.open(root / "labelsTr" / "patient01_a.png").mode == "P"
    d = bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=tmp_path / "c")
    assert np.array_equal(d.images[2], resized(img, img)[0]) and np.array_equal(d.labels[0], nearest(lab, (SIZE, SIZE)))
    root = make_tree(tmp_path / "N", ".nii.gz")
    _, lab = picture("patient01_b")
    write_file(root / "labelsTr" / "patient01_b.nii.gz", lab.astype(np.float32), CASES["patient01_b"][1], ".nii.gz")
    d = bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=tmp_path / "c")
    assert np.array_equal(d.labels[1], nearest(lab, (SIZE, SIZE)))


# ---------------------------------------------------------------------------- bad input: one line, exit code 2, nothing cached


def expect_error(root: Path | None, tmp_path: Path, *fragments: str, **options) -> str:
    cache = tmp_path / "cache"
    with pytest.raises(BenchError) as info:
        bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=cache, **options)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2 and message.startswith("nnU-Net: ")
    for fragment in fragments:
        assert fragment in message, message
    assert npz_in(cache) == []
    return message


def copy_tree(src: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(src, tmp_path / src.name))


def test_root_not_given_missing_or_empty(tmp_path):
    expect_error(None, tmp_path, "dataset folder not given", "--data-root")
    expect_error(tmp_path / "nowhere", tmp_path, f"{tmp_path / 'nowhere'} does not exist", "dataset.json")
    (tmp_path / "empty").mkdir()
    expect_error(tmp_path / "empty", tmp_path, f"{tmp_path / 'empty'} is empty", "dataset.json", "imagesTr/")


def test_missing_dataset_json(trees, tmp_path):
    root = copy_tree(trees[".png"], tmp_path)
    (root / "dataset.json").unlink()
    expect_error(root, tmp_path, f"{root / 'dataset.json'} is missing", "channel_names, labels, numTraining and file_ending")


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ('{"channel_names": {"0": "US"}, "labels": ', ("is not valid JSON (line 1",)),
        ("[1, 2]", ("holds a JSON list, not an object",)),
        ('{"channel_names": {"0": "US"}, "labels": {"background": 0}, "numTraining": 3}', ("lacks 'file_ending'",)),
        (
            '{"modality": {"0": "US"}, "labels": {"0": "background"}, "numTraining": 3, "file_ending": ".png"}',
            ("nnU-Net v1 format", "nnUNetv2_convert_old_nnUNet_dataset"),
        ),
        (
            '{"channel_names": {"0": "US"}, "labels": {"background": 0, "background": 1}, "numTraining": 3, "file_ending": ".png"}',
            ("key 'background' appears twice",),
        ),
    ],
)
def test_invalid_dataset_json(trees, tmp_path, content, fragments):
    root = copy_tree(trees[".png"], tmp_path)
    (root / "dataset.json").write_text(content)
    expect_error(root, tmp_path, str(root / "dataset.json"), *fragments)


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"labels": {"lv": 1, "myo": 2}}, ("no label has the value 0", "background")),
        ({"labels": {"background": 0, "lv": 1, "myo": 3}}, ("not consecutive", "0, 1, ..., K")),
        ({"labels": {"background": 0, "lv": 1, "both": [1, 2]}}, ("region [1, 2]", "region-based")),
        ({"labels": {"background": 0, "lv": 1, "myo": 2, "ignore": 3}}, ("'ignore' label", "not supported yet")),
        ({"labels": {"background": 0, "lv": 1, "myo": 1}}, ("share the value 1",)),
        ({"labels": {"background": 0, "lv": "1"}}, ("value '1', not an integer",)),
        ({"labels": {"background": 0, "mean": 1}}, ("'mean' is reserved",)),
        ({"channel_names": {"0": "US", "1": "Doppler"}}, ("declares 2 channels", "one gray channel")),
        ({"numTraining": 5}, ("numTraining 5", "holds 3 training cases")),
        ({"numTraining": "3"}, ("numTraining is '3'",)),
        ({"file_ending": ".jpg"}, ("file_ending '.jpg' is not supported", ".nii.gz")),
    ],
)
def test_bad_dataset_json_fields(trees, tmp_path, overrides, fragments):
    root = copy_tree(trees[".png"], tmp_path)
    write_json(root, **{"file_ending": ".png", **overrides})
    expect_error(root, tmp_path, str(root / "dataset.json"), *fragments)


def test_ending_matches_no_file(trees, tmp_path):
    root = copy_tree(trees[".png"], tmp_path)
    write_json(root, file_ending=".nrrd")
    expect_error(root, tmp_path, "holds no .nrrd image", "patient01_a_0000.png: does file_ending match?")


def test_label_value_not_declared(trees, tmp_path):
    root = copy_tree(trees[".nii.gz"], tmp_path)
    path = root / "labelsTr" / "patient01_b.nii.gz"
    _, lab = picture("patient01_b")
    lab[3, 4], lab[5, 6] = 3, 255
    write_file(path, lab, CASES["patient01_b"][1], ".nii.gz")
    expect_error(
        root, tmp_path, f"{path} has label values 3, 255, not declared in dataset.json", "0 background, 1 lv, 2 myo", "declare the value"
    )


@pytest.mark.parametrize("ending", [".png", ".mha"])
def test_image_and_label_of_different_shape(trees, tmp_path, ending):
    root = copy_tree(trees[ending], tmp_path)
    path = root / "labelsTr" / f"patient02_a{ending}"
    _, lab = picture("patient02_a")
    write_file(path, lab[:-1], CASES["patient02_a"][1], ending)
    expect_error(root, tmp_path, f"{path} is 20x37", "patient02_a_0000" + ending + " is 21x37", "must match its image")


def test_label_spacing_differs_from_image(trees, tmp_path):
    root = copy_tree(trees[".nrrd"], tmp_path)
    path = root / "labelsTr" / "patient01_a.nrrd"
    write_file(path, picture("patient01_a")[1], (0.3, 0.375), ".nrrd")
    expect_error(root, tmp_path, f"{path} has spacing (0.3, 0.375)", "share its image's geometry")


@pytest.mark.parametrize("which", ["label", "image"])
def test_case_with_a_missing_file(trees, tmp_path, which):
    root = copy_tree(trees[".nii.gz"], tmp_path)
    path = root / ("labelsTr/patient01_b.nii.gz" if which == "label" else "imagesTr/patient01_b_0000.nii.gz")
    path.unlink()
    expect_error(root, tmp_path, f"{path} is missing", f"needs its {'label' if which == 'label' else 'image'}")


def test_bad_image_names(trees, tmp_path):
    root = copy_tree(trees[".png"], tmp_path)
    extra = root / "imagesTr" / "patient01_a_0001.png"
    shutil.copy(root / "imagesTr" / "patient01_a_0000.png", extra)
    expect_error(root, tmp_path, f"{extra} is channel 0001", "declares one channel")
    extra.unlink()
    odd = root / "imagesTr" / "scan.png"
    shutil.copy(root / "imagesTr" / "patient01_a_0000.png", odd)
    expect_error(root, tmp_path, f"{odd} is not named <case>_0000.png")


@pytest.mark.parametrize("ending", [".nii.gz", ".nrrd"])
def test_3d_volume(trees, tmp_path, ending):
    root = copy_tree(trees[ending], tmp_path)
    path = root / "imagesTr" / f"patient01_a_0000{ending}"
    img, _ = picture("patient01_a")
    volume = np.stack([img] * 3)  # (z, y, x)
    if ending == ".nii.gz":
        nib.save(nib.Nifti1Image(np.ascontiguousarray(volume.transpose(2, 1, 0)), affine_of((0.25, 0.375))), str(path))
    else:
        sitk.WriteImage(sitk.GetImageFromArray(volume), str(path), True)
    expect_error(
        root,
        tmp_path,
        f"{path} is a 3-D volume (24 x 40 x 3",
        "only 2-D cases are read",
        "save each slice as its own case in a single-slice file",
    )


def test_colour_png_and_corrupt_files(trees, tmp_path):
    root = copy_tree(trees[".png"], tmp_path)
    path = root / "imagesTr" / "patient01_b_0000.png"
    img, _ = picture("patient01_b")
    Image.fromarray(np.stack([img] * 3, axis=-1)).save(path)
    expect_error(root, tmp_path, f"{path} is a PNG of mode RGB", "save it as 8-bit gray")
    path.write_bytes(b"\x89PNG garbage")
    expect_error(root, tmp_path, f"{path} cannot be read", "truncated or corrupt")
    root = copy_tree(trees[".nii.gz"], tmp_path / "n")
    path = root / "labelsTr" / "patient02_a.nii.gz"
    path.write_bytes(path.read_bytes()[:60])
    expect_error(root, tmp_path, f"{path} cannot be read", "truncated or corrupt")


def test_bad_options(trees, tmp_path):
    expect_error(trees[".nii.gz"], tmp_path, "png_spacing is for PNG files", "leave png_spacing out", png_spacing=0.5)
    expect_error(trees[".png"], tmp_path, "png_spacing='a,b' is not a number", png_spacing="a,b")
    expect_error(trees[".png"], tmp_path, "png_spacing=-1 is invalid", png_spacing=-1)
    expect_error(trees[".png"], tmp_path, "patient='(' is not a regular expression", patient="(")
    expect_error(trees[".png"], tmp_path, "does not match case 'patient01_a'", patient="case")


# ---------------------------------------------------------------------------- writing a proposed label back


def writer():
    return plugin_module("datasets", "nnunet").write_label


def read_back(path: Path, ending: str) -> np.ndarray:
    """(H, W) values of a label file, read with the library itself."""
    if ending == ".png":
        with Image.open(path) as im:
            assert im.mode == "L"
            return np.asarray(im)
    if ending in (".nii.gz", ".nii"):
        arr = np.asanyarray(nib.load(str(path)).dataobj)
        return (arr[:, :, 0] if arr.ndim == 3 else arr).T
    arr = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
    return arr[0] if arr.ndim == 3 else arr


@pytest.mark.parametrize("ending", ENDINGS)
def test_proposed_label_round_trip(trees, loaded, tmp_path, ending):
    root, d = trees[ending], loaded[ending]
    out = tmp_path / "proposed"
    for i, case in enumerate(d.ids):
        (h, w), _ = CASES[case]
        proposal = ((d.labels[i].astype(int) + 1) % 3).astype(np.uint8)  # every pixel changed
        path = writer()(root, case, proposal, out)
        assert path == out / f"{case}{ending}" and path.is_file()
        got = read_back(path, ending)
        assert got.shape == (h, w) and np.array_equal(got, nearest(proposal, (h, w)))
        source = root / "labelsTr" / f"{case}{ending}"
        if ending in (".nii.gz", ".nii"):
            a, b = nib.load(str(source)), nib.load(str(path))
            assert a.shape == b.shape and np.array_equal(a.affine, b.affine) and a.get_data_dtype() == b.get_data_dtype()
            assert a.header.get_zooms() == b.header.get_zooms() and a.header.binaryblock == b.header.binaryblock
        elif ending in (".nrrd", ".mha"):
            a, b = sitk.ReadImage(str(source)), sitk.ReadImage(str(path))
            assert (a.GetSize(), a.GetSpacing(), a.GetOrigin(), a.GetDirection(), a.GetPixelID()) == (
                b.GetSize(),
                b.GetSpacing(),
                b.GetOrigin(),
                b.GetDirection(),
                b.GetPixelID(),
            )
        else:
            assert Image.open(path).size == (w, h)
        # at the original size the writer changes nothing; and the adapter reads the written label as the given one
        _, lab = picture(case)
        exact = writer()(root, case, (lab + 1) % 3, tmp_path / "exact")
        assert np.array_equal(read_back(exact, ending), (lab + 1) % 3)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{c}{ending}" for c in CASES)  # no temporary files left


def test_written_label_reads_back_through_the_adapter(trees, tmp_path):
    root = copy_tree(trees[".nii.gz"], tmp_path)
    _, lab = picture("patient01_b")
    layout = plugin_module("datasets", "nnunet").scan(root)  # a scanned layout serves many writes
    assert [c.id for c in layout.cases] == sorted(CASES) and layout.ending == ".nii.gz" and layout.values == (0, 1, 2)
    path = writer()(layout, "patient01_b", (lab + 1) % 3, tmp_path / "out")
    shutil.copy(path, root / "labelsTr" / "patient01_b.nii.gz")
    d = bench.load_dataset("nnunet", size=SIZE, root=root, cache_dir=tmp_path / "cache")
    assert np.array_equal(d.labels[1], nearest((lab + 1) % 3, (SIZE, SIZE)))


def test_writer_bad_input_writes_nothing(trees, tmp_path):
    root = copy_tree(trees[".mha"], tmp_path)
    out = tmp_path / "out"
    good = np.zeros((SIZE, SIZE), np.uint8)
    cases = [
        (("nobody", good, out), "case 'nobody' is not a training case"),
        (("patient01_a", np.full((SIZE, SIZE), 3, np.uint8), out), "has label values 3, not declared in dataset.json"),
        (("patient01_a", np.zeros((2, SIZE, SIZE), np.uint8), out), "has shape (2, 16, 16); give one 2-D label map"),
        (("patient01_a", np.full((SIZE, SIZE), 0.5), out), "non-integer label values"),
        (("patient01_a", good, root / "labelsTr"), "is the dataset's own label"),
    ]
    before = (root / "labelsTr" / "patient01_a.mha").read_bytes()
    for args, fragment in cases:
        with pytest.raises(BenchError) as info:
            writer()(root, *args)
        assert fragment in str(info.value) and "\n" not in str(info.value)
    assert not out.exists() and (root / "labelsTr" / "patient01_a.mha").read_bytes() == before
    assert sorted(p.name for p in (root / "labelsTr").iterdir()) == sorted([f"{c}.mha" for c in CASES] + ["README.txt"])


@pytest.mark.parametrize("ending", ENDINGS)
def test_read_label_gives_the_stored_label_at_its_own_size(trees, ending):
    module = plugin_module("datasets", "nnunet")
    for case in CASES:  # independent truth: the arrays the fixture writers stored
        assert np.array_equal(module.read_label(trees[ending], case), picture(case)[1])
