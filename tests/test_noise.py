"""Noise generators: spec parsing, which samples, what is done to them, and the kept truth."""

import inspect
import itertools

import numpy as np
import pytest
from brute_force import flood_components, heart, hole_pixels, masks
from PIL import Image

import bench
from bench import BenchError, apply_noise, parse_noise
from bench.cli import main
from bench.labelset import LabelSet, Structure
from bench.noise import select_corrupted
from bench.trial import protocol_data


def brute_force_grow(lab: np.ndarray, value: int, into: int, mm: float, spacing) -> np.ndarray:
    """Pixels of label `into` within `mm` (Euclidean, in mm) of some pixel of `value` become `value`."""
    src = np.argwhere(lab == value) * np.asarray(spacing)
    out = lab.copy()
    for r, c in np.argwhere(lab == into):
        d = np.sqrt(((src - np.array([r, c]) * np.asarray(spacing)) ** 2).sum(1)).min()
        if d <= mm:
            out[r, c] = value
    return out


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.5), (0.7, 1.3)])
def test_systematic_grows_the_cavity_into_the_wall_by_mm(spacing):
    lab = heart()[None]
    sp = np.array([spacing])
    res = apply_noise("systematic:1.0,mm=3", lab, sp, ["a"], seed=0)
    np.testing.assert_array_equal(res.labels[0], brute_force_grow(lab[0], 1, 2, 3.0, spacing))
    assert (res.labels[0] == 3).sum() == (lab[0] == 3).sum()  # the atrium is untouched
    assert res.changed[0].sum() == (res.labels[0] != lab[0]).sum() > 0


def test_systematic_erode_gives_cavity_pixels_to_the_wall_only_from_the_wall_side():
    lab = heart()[None]
    res = apply_noise("systematic:1.0,direction=erode,mm=2", lab, np.ones((1, 2)), ["a"], seed=0)
    out = res.labels[0]
    assert ((lab[0] == 1) & (out == 2)).sum() > 0
    # the cavity still touches the atrium: erosion works from the wall, not across the mitral plane
    assert (out[29, 13:27] == 1).any()
    assert set(np.unique(out)) == {0, 1, 2, 3}


def test_exact_count_nested_levels_and_id_dependence():
    ids = [f"patient{i:04d}_2CH_ED" for i in range(200)]
    sets = [select_corrupted(ids, level, seed=3) for level in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)]
    for mask, level in zip(sets, (0.0, 0.1, 0.25, 0.5, 0.75, 1.0), strict=True):
        assert mask.sum() == round(level * 200)
    for lo, hi in itertools.pairwise(sets):
        assert not (lo & ~hi).any()
    # which samples depends on (seed, id) only, not on their order
    perm = np.random.default_rng(0).permutation(200)
    shuffled = select_corrupted([ids[i] for i in perm], 0.25, seed=3)
    np.testing.assert_array_equal(shuffled, sets[2][perm])
    assert not np.array_equal(select_corrupted(ids, 0.25, seed=4), sets[2])


def test_deterministic_and_clean_samples_untouched():
    rng = np.random.default_rng(1)
    labels = np.stack([np.roll(heart(), rng.integers(-3, 4), axis=1) for _ in range(20)])
    spacing = np.full((20, 2), 0.8)
    ids = [f"s{i}" for i in range(20)]
    a = apply_noise("random:0.5", labels, spacing, ids, seed=7)
    b = apply_noise("random:0.5", labels, spacing, ids, seed=7)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.corrupted.sum() == 10
    np.testing.assert_array_equal(a.labels[~a.corrupted], labels[~a.corrupted])
    assert (a.label_dice[~a.corrupted] == 1.0).all()
    assert (a.label_dice[a.corrupted] < 1.0).all()
    assert a.mean_label_dice == pytest.approx(a.label_dice[a.corrupted].mean())
    np.testing.assert_array_equal(a.changed, a.labels != labels)


def test_none_is_the_clean_reference():
    lab = heart()[None]
    res = apply_noise("none", lab, np.ones((1, 2)), ["a"], seed=0)
    np.testing.assert_array_equal(res.labels, lab)
    assert res.mean_label_dice == 1.0 and not res.corrupted.any()


def test_canonical_spec_text_leaves_defaults_out():
    assert parse_noise("systematic:0.50").text == "systematic:0.5"
    assert parse_noise("systematic:0.5,mm=3").text == "systematic:0.5"
    assert parse_noise("systematic:0.5,mm=4,structure=la").text == "systematic:0.5,mm=4.0,structure=la"


def partner_id(sample_id: str) -> str:
    """patient0001_2CH_ED <-> patient0001_2CH_ES, by string surgery (independent of the info table)."""
    return sample_id[:-2] + {"ED": "ES", "ES": "ED"}[sample_id[-2:]]


@pytest.fixture(scope="module", params=[64, 128])
def phantom(request):
    return bench.load_dataset("echo-phantom", size=request.param, patients=6, splits=(4, 1, 1))


ALL_TYPES = [
    "random:1",
    "random:1,mode=markov",
    "systematic:1",
    "systematic:1,structure=myo,direction=erode,mm=4",
    "omission:1",
    "omission:1,structure=la",
    "shift:1",
    "coarse:1",
    "coarse:1,vertices=4",
    "temporal:1",
]


# --------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("systematic", "use TYPE:LEVEL"),
        ("blur:0.5", "unknown noise type 'blur'"),
        ("shift:-0.1", "outside [0, 1]"),
        ("shift:nan", "outside [0, 1]"),
        ("coarse:0.5,vertices=2", "vertices=2 is out of range; a int in [3, 64]"),
        ("coarse:0.5,vertices=7.5", "vertices=7.5 is not a whole number"),
        ("omission:0.5,structure=lv", "structure=lv is not allowed; use one of myo-or-la, myo, la"),
        ("temporal:0.5,mm=3", "unknown key 'mm' for temporal; allowed keys: none"),
        ("random:0.5,mode=gauss", "use one of morph, markov"),
        ("random:0.5,flip=1.5", "flip=1.5 is out of range"),
        ("shift:0.5,max_mm=inf", "max_mm=inf is not finite"),
        ("shift:0.5,min_mm=1,min_mm=2", "key 'min_mm' is given twice"),
        ("shift:0.5,3", "'3' is not key=value"),
    ],
)
def test_bad_specs_name_the_problem_and_the_allowed_values(spec, words):
    with pytest.raises(BenchError) as err:
        parse_noise(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_every_generator_documents_each_parameter_and_default():
    for name in bench.noises.names():
        gen = bench.noises.get(name)
        doc = inspect.getdoc(gen) or ""
        for key, param in gen.params.items():
            assert key in doc, (name, key)
            if param.choices is None:
                assert f"{param.default:g}" in doc or str(param.default) in doc, (name, key)
    assert {"random", "systematic", "omission", "shift", "coarse", "temporal"} <= set(bench.noises.names())


# --------------------------------------------------------------------------- properties on the phantom, every type


@pytest.mark.parametrize("spec", ALL_TYPES)
def test_noisy_labels_are_valid_label_maps(phantom, spec):
    res = apply_noise(spec, phantom.labels, phantom.spacing, phantom.ids, seed=5, info=phantom.info)
    assert res.labels.dtype == np.uint8 and res.labels.shape == phantom.labels.shape
    assert res.labels.max() <= 3
    omission = spec.startswith("omission")
    for clean, noisy in zip(phantom.labels, res.labels, strict=True):
        if not hole_pixels(clean > 0).any():
            assert not hole_pixels(noisy > 0).any(), spec  # no hole in the heart
        for key, (mc, mn) in zip(masks(clean), zip(masks(clean).values(), masks(noisy).values(), strict=True), strict=True):
            if key != "heart" and len(flood_components(mc)) <= 1:
                assert len(flood_components(mn)) <= 1, (spec, key)
                if not omission:
                    assert mn.any() or not mc.any(), (spec, key)  # no structure vanishes but by omission


@pytest.mark.parametrize("spec", ALL_TYPES)
def test_truth_is_kept_and_runs_are_bit_identical(phantom, spec):
    args = (phantom.labels, phantom.spacing, phantom.ids)
    a = apply_noise(spec, *args, seed=2, info=phantom.info)
    b = apply_noise(spec, *args, seed=2, info=phantom.info)
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.corrupted.all()  # level 1
    np.testing.assert_array_equal(a.changed, a.labels != phantom.labels)
    # per-sample Dice from the brute-force definition
    for clean, noisy, d in zip(phantom.labels, a.labels, a.label_dice, strict=True):
        per = []
        for s in (1, 2, 3):
            x, y = clean == s, noisy == s
            per.append(1.0 if x.sum() + y.sum() == 0 else 2 * (x & y).sum() / (x.sum() + y.sum()))
        assert d == pytest.approx(np.mean(per))
    assert a.mean_label_dice == pytest.approx(a.label_dice.mean()) and a.mean_label_dice < 1.0
    assert a.changed.any(axis=(1, 2)).sum() >= len(phantom) // 2  # a 1-mm change can be under a pixel at 64 px


@pytest.mark.parametrize("kind", ["random", "systematic", "omission", "shift", "coarse", "temporal"])
def test_levels_are_nested_and_corrupted_samples_agree_across_levels(phantom, kind):
    args = (phantom.labels, phantom.spacing, phantom.ids)
    results = [apply_noise(f"{kind}:{level}", *args, seed=9, info=phantom.info) for level in (0.0, 0.25, 0.5, 1.0)]
    n = len(phantom)
    for res, level in zip(results, (0.0, 0.25, 0.5, 1.0), strict=True):
        assert res.corrupted.sum() == round(level * n)
        np.testing.assert_array_equal(res.labels[~res.corrupted], phantom.labels[~res.corrupted])  # clean samples untouched
        assert (res.label_dice[~res.corrupted] == 1.0).all() and not res.changed[~res.corrupted].any()
    for lo, hi in itertools.pairwise(results):
        assert not (lo.corrupted & ~hi.corrupted).any()
        # a sample corrupted at both levels gets the same noisy label: curves compare like with like
        both = lo.corrupted & hi.corrupted
        np.testing.assert_array_equal(lo.labels[both], hi.labels[both])


def test_other_seed_other_samples_and_other_noise(phantom):
    args = (phantom.labels, phantom.spacing, phantom.ids)
    a = apply_noise("random:0.5", *args, seed=1)
    b = apply_noise("random:0.5", *args, seed=2)
    assert not np.array_equal(a.corrupted, b.corrupted) or not np.array_equal(a.labels, b.labels)


# --------------------------------------------------------------------------- each type against its definition


def test_omission_removes_exactly_one_structure(phantom):
    res = apply_noise("omission:1", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    chosen = []
    for clean, noisy in zip(phantom.labels, res.labels, strict=True):
        gone = [s for s in (2, 3) if (clean == s).any() and not (noisy == s).any()]
        assert len(gone) == 1 and not (noisy == 1).sum() == 0
        np.testing.assert_array_equal(noisy, np.where(clean == gone[0], 0, clean))
        chosen.append(gone[0])
    assert set(chosen) == {2, 3}  # both drawn (24 fair coins)
    la = apply_noise("omission:1,structure=la", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    np.testing.assert_array_equal(la.labels, np.where(phantom.labels == 3, 0, phantom.labels))


def test_shift_is_a_translation_of_the_allowed_length():
    lab = np.pad(heart(), 12)
    labels = np.stack([lab] * 30)
    spacing = np.tile([0.5, 0.8], (30, 1))
    res = apply_noise("shift:1,min_mm=2,max_mm=4", labels, spacing, [f"s{i}" for i in range(30)], seed=0)
    lengths = []
    for noisy in res.labels:
        found = [(dr, dc) for dr in range(-10, 11) for dc in range(-10, 11) if np.array_equal(np.roll(lab, (dr, dc), axis=(0, 1)), noisy)]
        assert len(found) == 1  # the heart is far from the border: a roll is the translation
        dr, dc = found[0]
        lengths.append(np.hypot(dr * 0.5, dc * 0.8))
    # rounding to whole pixels moves the length by at most half a pixel diagonal
    slack = 0.5 * np.hypot(0.5, 0.8)
    assert 2 - slack <= min(lengths) and max(lengths) <= 4 + slack
    assert len({round(x, 3) for x in lengths}) > 5


def test_temporal_gives_the_other_frames_label(phantom):
    res = apply_noise("temporal:1", phantom.labels, phantom.spacing, phantom.ids, seed=0, info=phantom.info)
    where = {sid: i for i, sid in enumerate(phantom.ids)}
    for i, sid in enumerate(phantom.ids):
        np.testing.assert_array_equal(res.labels[i], phantom.labels[where[partner_id(sid)]])


def test_temporal_without_partner_or_metadata_is_one_clear_error(phantom):
    keep = np.array([not sid.endswith("_4CH_ES") or sid.startswith("patient0001") for sid in phantom.ids])
    part = phantom.select(keep)
    with pytest.raises(BenchError, match=r"lack their other frame \(ED <-> ES\).*keep both frames"):
        apply_noise("temporal:0.5", part.labels, part.spacing, part.ids, seed=0, info=part.info)
    with pytest.raises(BenchError, match="needs the samples' metadata"):
        apply_noise("temporal:0.5", phantom.labels, phantom.spacing, phantom.ids, seed=0)


def disk_label(n: int = 96, radius: float = 30.0) -> np.ndarray:
    rr, cc = np.mgrid[:n, :n]
    return ((rr - n / 2 + 0.5) ** 2 + (cc - n / 2 + 0.5) ** 2 <= radius**2).astype(np.uint8)


@pytest.mark.parametrize("k", [4, 6, 10])
def test_coarse_polygon_of_a_disk_has_the_inscribed_polygon_area(k):
    lab = disk_label()[None]
    res = apply_noise(f"coarse:1,vertices={k}", lab, np.ones((1, 2)), ["d"], seed=0)
    noisy = res.labels[0] == 1
    assert set(np.unique(res.labels)) <= {0, 1}
    inscribed = k / (2 * np.pi) * np.sin(2 * np.pi / k)  # regular k-gon area / circle area
    ratio = noisy.sum() / lab[0].sum()
    # vertices sit on boundary pixels, evenly spaced only up to the pixel grid: allow a few percent
    assert ratio == pytest.approx(inscribed, abs=0.05)
    assert (noisy & (lab[0] == 0)).sum() <= 0.01 * noisy.sum() + 2 * 30  # inside the disk but for the outline


def test_coarse_with_many_vertices_is_close_to_the_clean_label(phantom):
    few = apply_noise("coarse:1,vertices=6", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    many = apply_noise("coarse:1,vertices=48", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    assert many.mean_label_dice > few.mean_label_dice
    assert many.mean_label_dice > 0.85


def area_change(res: bench.NoiseResult, clean: np.ndarray, value: int) -> np.ndarray:
    return (res.labels == value).sum(axis=(1, 2)).astype(float) - (clean == value).sum(axis=(1, 2))


@pytest.fixture(scope="module")
def phantom256():
    return bench.load_dataset("echo-phantom", size=256, patients=6, splits=(4, 1, 1))


@pytest.mark.parametrize("spec", ["random:1", "random:1,mode=markov"])
def test_random_is_unbiased_and_systematic_is_not(phantom, phantom256, spec):
    if "markov" in spec:
        phantom = phantom256  # markov is defined on the 256 x 256 grid (a 2-px wall breaks and biases it)
    ids = [f"{sid}#{k}" for k in range(8) for sid in phantom.ids]  # 8 draws per label
    labels = np.concatenate([phantom.labels] * 8)
    spacing = np.concatenate([phantom.spacing] * 8)
    rnd = apply_noise(spec, labels, spacing, ids, seed=0)
    sysm = apply_noise("systematic:1", labels, spacing, ids, seed=0)
    lv = area_change(rnd, labels, 1)
    assert (lv > 0).any() and (lv < 0).any()
    # the mean change is small against the typical change (unbiased), for every structure
    for value in (1, 2, 3):
        d = area_change(rnd, labels, value)
        assert abs(d.mean()) < 0.35 * np.abs(d).mean(), value
    assert (area_change(sysm, labels, 1) > 0).all()  # the cavity always drawn too large


def test_markov_preference_biases_the_boundary(phantom):
    grow = apply_noise("random:1,mode=markov,prefer=1", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    shrink = apply_noise("random:1,mode=markov,prefer=0", phantom.labels, phantom.spacing, phantom.ids, seed=0)
    assert (area_change(grow, phantom.labels, 3) > 0).all()
    assert (area_change(shrink, phantom.labels, 3) < 0).all()


# --------------------------------------------------------------------------- label sets and the trial's data


def test_labels_of_another_label_set_take_only_noise_none():
    other = LabelSet("two", (Structure(1, "a", "A"), Structure(2, "b", "B")))
    lab = heart()[None].clip(0, 2)
    with pytest.raises(BenchError) as err:
        apply_noise("systematic:1", lab, np.ones((1, 2)), ["a"], seed=0, label_set=other)
    assert "label set 'two'" in str(err.value) and "noise none" in str(err.value) and "\n" not in str(err.value)
    np.testing.assert_array_equal(apply_noise("none", lab, np.ones((1, 2)), ["a"], seed=0, label_set=other).labels, lab)


def test_trial_data_with_info_supports_every_type():
    parts = protocol_data(bench.protocols.get("tiny"))
    train = parts["train"]
    for spec in ("temporal:0.5", "coarse:0.5", "shift:0.5", "omission:0.5"):
        res = apply_noise(spec, train.labels, train.spacing, train.ids, seed=0, info=train.info)
        assert res.corrupted.sum() == round(0.5 * len(train)) and 0 < res.mean_label_dice < 1


# --------------------------------------------------------------------------- bench noise show


def test_noise_show_writes_a_png_of_the_documented_size(tmp_path, capsys):
    out = tmp_path / "sys.png"
    assert main(["noise", "show", "systematic:0.5", "--size", "64", "--seed", "1", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        img.verify()
    with Image.open(out) as img:
        # 4 rows of two 256-px panels: width 8 + 256 + 8 + 256 + 8, height 36 caption + 4 x (256 + 8)
        assert img.size == (536, 1092) and img.mode == "RGB"
        pixels = np.asarray(img)
    # the structure colours are drawn
    for colour in ((255, 64, 64), (64, 224, 64), (64, 160, 255)):
        assert (pixels == colour).all(axis=2).any()
    said = capsys.readouterr().out
    assert "systematic:0.5" in said and "mean label Dice" in said
    assert [p.name for p in tmp_path.iterdir()] == ["sys.png"]  # no temporary file left beside it


@pytest.mark.parametrize("spec", ["systematic:1.5", "blur:0.5", "coarse:0.5,vertices=2", "omission:0.5,size=3"])
def test_noise_show_bad_spec_is_one_line_exit_2_and_no_file(tmp_path, capsys, spec):
    out = tmp_path / "bad.png"
    assert main(["noise", "show", spec, "--size", "64", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bench: error:") and "\n" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []
