"""`bench audit` (bench/audit*.py): cross-fitting, detectors, ensemble, --inject, proposed labels, the report, --resume.

Truth is independent of the code under test: folds recomputed from their definition, a fold model retrained by
hand on the other folds' cases, detector scores from per-pixel loops of their published definitions, ranks by
hand, the injected truth from `bench.apply_noise` called directly, written label files read back with nibabel /
SimpleITK / Pillow, and the report parsed with html.parser. Settings are tiny (32 px, 1-2 epochs, 6 patients).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from PIL import Image

import bench
from bench import BenchError
from bench.audit import (
    AuditSettings,
    assign_folds,
    audit_ranks,
    ensemble_score,
    fold_seed,
    normalised_ranks,
    parse_detectors,
    score_cases,
    train_fold,
)
from bench.audit_output import propose_labels, write_proposals
from bench.cli import main

TINY = ["--option", "patients=6", "--size", "32", "--epochs", "1"]
INJECT = "systematic:0.5"


def audit_argv(out: Path, *extra: str) -> list[str]:
    return ["audit", "echo-phantom", *TINY, "--folds", "3", "--top", "5", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def injected(tmp_path_factory) -> Path:
    """One tiny audit with --inject, shared by the tests that read its outputs."""
    out = tmp_path_factory.mktemp("audit") / "out"
    torch.set_num_threads(1)
    assert main(audit_argv(out, "--inject", INJECT, "--detector", "loss,confident,softmin,dice,entropy")) == 0
    return out


def phantom() -> bench.Data:
    return bench.load_dataset("echo-phantom", size=32, patients=6)


# ---------------------------------------------------------------------------- folds and cross-fitting


def test_folds_group_patients_and_balance_cases():
    patients = [f"p{i // 4}" for i in range(40)] + ["solo"] + ["pair"] * 2
    for k in (2, 3, 5):
        folds = assign_folds(patients, k, seed=7)
        frame = pd.DataFrame({"patient": patients, "fold": folds})
        assert (frame.groupby("patient")["fold"].nunique() == 1).all()  # no patient is split
        sizes = np.bincount(folds, minlength=k)
        assert sizes.max() - sizes.min() <= 4 and set(folds) == set(range(k))  # within one patient's cases
        assert np.array_equal(folds, assign_folds(patients, k, seed=7))  # deterministic
    with pytest.raises(BenchError, match="--folds 1 needs 2 to"):
        assign_folds(patients, 1, 0)
    with pytest.raises(BenchError, match="--folds 3 needs 2 to 2 folds here"):
        assign_folds(["a", "b", "a"], 3, 0)


def test_no_case_is_scored_by_a_model_that_saw_it(injected):
    """Every case's fold trained on exactly the other folds' cases; fold 1's model, retrained by hand on them, gives
    the held-out probabilities the audit used for its cases (so the scoring model is the one that did not see them)."""
    table = pd.read_csv(injected / "audit.csv")
    summary = json.loads((injected / "audit.json").read_text())
    data = phantom()
    fold_of = dict(zip(table["case"], table["fold"], strict=True))
    assert sorted(fold_of) == sorted(data.ids)
    for f in summary["folds"]:
        assert all(fold_of[c] == f["fold"] for c in f["cases"])
        with np.load(injected / "folds" / f"fold{f['fold']}.npz") as z:
            seen = set(z["seen"].tolist())
        assert seen == {c for c, k in fold_of.items() if k != f["fold"]} and not seen & set(f["cases"])
    patient_folds = table.groupby("patient")["fold"].nunique()
    assert (patient_folds == 1).all()
    # retrain fold 1 by hand from its definition and compare the held-out probabilities bit for bit
    settings = AuditSettings("echo-phantom", size=32, epochs=1, folds=3, inject=INJECT, options={"patients": 6})
    given = bench.apply_noise(INJECT, data.labels, data.spacing, data.ids, 0, info=data.info).labels
    folds = np.array([fold_of[c] - 1 for c in data.ids])
    seen, held = np.flatnonzero(folds != 0), np.flatnonzero(folds == 0)
    probs, _ = train_fold(data, given, seen, held, settings.protocol(), fold_seed(0, 0))
    with np.load(injected / "folds" / "fold1.npz") as z:
        assert np.array_equal(z["held"], held)
        assert np.array_equal(z["probs"].astype(np.float32), probs.numpy())


# ---------------------------------------------------------------------------- detectors and the ensemble, by hand


def brute_scores(probs: np.ndarray, given: np.ndarray) -> dict[str, np.ndarray]:
    """Each detector by its definition, pixel by pixel (float64 loops)."""
    n, c, h, w = probs.shape
    out = {k: np.zeros(n) for k in ("loss", "confident", "softmin", "dice", "entropy")}
    thresholds = [probs[:, k][given == k].mean() if (given == k).any() else math.inf for k in range(c)]
    for i in range(n):
        p, y = probs[i].astype(np.float64), given[i]
        ce = np.mean([-math.log(max(p[y[r, s], r, s], 1e-12)) for r in range(h) for s in range(w)])
        soft = [(2 * (p[k] * (y == k)).sum() + 1) / (p[k].sum() + (y == k).sum() + 1) for k in range(1, c)]
        out["loss"][i] = ce + (1 - np.mean(soft))
        issues = 0
        for r in range(h):
            for s in range(w):
                above = [k for k in range(c) if p[k, r, s] >= thresholds[k]]
                best = max(above, key=lambda k: p[k, r, s]) if above else None
                issues += bool(above) and best != y[r, s] and int(np.argmax(p[:, r, s])) != y[r, s]
        out["confident"][i] = issues / (h * w)
        sc = np.array([p[y[r, s], r, s] for r in range(h) for s in range(w)])
        weights = np.exp(-sc / 0.1) / np.exp(-sc / 0.1).sum()
        out["softmin"][i] = 1 - (sc * weights).sum()
        pred = p.argmax(0)
        dices = []
        for k in range(1, c):
            a, b = (pred == k).sum(), (y == k).sum()
            dices.append(1.0 if a + b == 0 else 2 * ((pred == k) & (y == k)).sum() / (a + b))
        out["dice"][i] = 1 - np.mean(dices)
        out["entropy"][i] = np.mean(-(p * np.log(np.maximum(p, 1e-12))).sum(0)) / math.log(c)
    return out


def test_detector_scores_match_their_definitions():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.full(4, 0.4), size=(5, 6, 7)).transpose(0, 3, 1, 2).astype(np.float32)  # (5, 4, 6, 7)
    given = rng.integers(0, 4, size=(5, 6, 7)).astype(np.uint8)
    given[0] = probs[0].argmax(0)  # one label the model fully agrees with
    names = ("loss", "confident", "softmin", "dice", "entropy")
    got = score_cases(torch.from_numpy(probs), given, names, 1.0, bench.CAMUS_LABELS)
    want = brute_scores(probs, given)
    for name in names:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert got["confident"][0] == 0 and got["dice"][0] == 0


def test_ranks_and_ensemble_by_hand():
    np.testing.assert_allclose(normalised_ranks(np.array([3.0, 1.0, 2.0, 2.0])), [1.0, 0.0, 0.5, 0.5])
    ens = ensemble_score({"a": np.array([3.0, 1.0, 2.0, 2.0]), "b": np.array([0.0, 9.0, 5.0, 1.0])})
    np.testing.assert_allclose(ens, [0.5, 0.5, 7 / 12, 5 / 12])  # b's ranks 1, 4, 3, 2 -> 0, 1, 2/3, 1/3
    # ties by case id: 'b' before 'c' at the same ensemble score
    assert audit_ranks(np.array([0.2, 0.9, 0.2]), ["c", "a", "b"]).tolist() == [3, 1, 2]


def test_detector_names_say_why_they_cannot_be_used():
    assert parse_detectors("loss,dice") == ("loss", "dice")
    for name in ("vog", "forgetting", "coteaching", "adele"):
        with pytest.raises(BenchError, match=f"detector '{name}' cannot score out of sample: it (reads|counts)"):
            parse_detectors(f"loss,{name}")
    with pytest.raises(BenchError, match="unknown audit detector 'sofmin'; did you mean 'softmin'"):
        parse_detectors("sofmin")


# ---------------------------------------------------------------------------- --inject


def test_injected_truth_is_the_generators_and_detection_is_scored_against_it(injected):
    table = pd.read_csv(injected / "audit.csv", keep_default_na=False)
    data = phantom()
    noisy = bench.apply_noise(INJECT, data.labels, data.spacing, data.ids, 0, info=data.info)
    truth = dict(zip(data.ids, noisy.corrupted, strict=True))
    assert [truth[c] for c in table["case"]] == table["injected"].tolist()
    summary = json.loads((injected / "audit.json").read_text())
    assert summary["inject"]["n_corrupted"] == noisy.corrupted.sum() == round(0.5 * len(data))
    top = 5
    for name, d in summary["inject"]["detection"].items():
        column = "ensemble" if name == "ensemble" else f"score_{name}"
        s, bad = table[column].to_numpy(float), table["injected"].to_numpy(bool)
        order = sorted(range(len(s)), key=lambda i: (-s[i], bad[i]))[:top]  # ties: clean first (pessimistic)
        assert d["precision_at_budget"] == pytest.approx(bad[order].sum() / top)
        assert d["recall_at_budget"] == pytest.approx(bad[order].sum() / bad.sum())
        pairs = [(p, q) for p in s[bad] for q in s[~bad]]
        assert d["auroc"] == pytest.approx(np.mean([1.0 if p > q else 0.5 if p == q else 0.0 for p, q in pairs]), abs=1e-4)
    # the ensemble column is the mean normalised rank of the detectors' columns
    scores = {n: table[f"score_{n}"].to_numpy(float) for n in ("loss", "confident", "softmin", "dice", "entropy")}
    n = len(table)
    by_hand = np.mean([(pd.Series(v).rank(method="average").to_numpy() - 1) / (n - 1) for v in scores.values()], axis=0)
    np.testing.assert_allclose(table["ensemble"], by_hand, rtol=1e-5)
    assert table["rank"].tolist() == list(range(1, n + 1))


# ---------------------------------------------------------------------------- the report


class _Report(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.in_cases = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "cases":
            self.in_cases = True
        if tag == "tr" and self.in_cases and "data-case" in a:
            self.rows.append(a["data-case"])
        if tag == "img":
            self.images.append(a["src"])
        for key in ("href", "src"):
            if key in a and not a[key].startswith("data:"):
                self.links.append(a[key])
        if tag == "script" and "src" in a:
            self.links.append(a["src"])


def test_report_lists_every_case_and_opens_from_disk(injected):
    parser = _Report()
    parser.feed((injected / "report.html").read_text(encoding="utf-8"))
    parser.close()
    assert sorted(parser.rows) == sorted(phantom().ids)  # every case, once
    assert parser.links == []  # nothing outside the file
    assert len(parser.images) == 3 * 5  # three panels for each of the top 5
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as im:
            assert im.format == "PNG" and im.size == (192, 192)


# ---------------------------------------------------------------------------- proposed labels


def test_proposals_change_only_pixels_the_model_is_sure_of():
    given = np.zeros((1, 8, 8), np.uint8)
    given[0, 2:6, 2:6] = 1
    probs = torch.full((1, 4, 8, 8), 0.02)
    probs[0, 0] = 0.94
    probs[0, 1, 2:6, 2:6], probs[0, 0, 2:6, 2:6] = 0.94, 0.02
    probs[0, 1, 2:6, 6], probs[0, 0, 2:6, 6] = 0.95, 0.01  # sure: the cavity grows one column
    probs[0, 1, 1, 2:6], probs[0, 0, 1, 2:6] = 0.85, 0.11  # not sure enough: kept
    want = given.copy()
    want[0, 2:6, 6] = 1
    assert np.array_equal(propose_labels(given, probs, bench.CAMUS_LABELS, 0.9), want)


def make_nnunet(root: Path, ending: str) -> Path:
    """A tiny nnU-Net v2 raw tree: 6 cases of 3 patients, 40 x 36, spacing (0.5, 0.25) mm, labels 0..2."""
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    r, c = np.mgrid[0:40, 0:36]
    for k in range(6):
        case = f"p{k // 2}_{k % 2}"
        img = np.clip(40 + 3 * r + 2 * c + 10 * k, 0, 255).astype(np.uint8)
        lab = np.zeros((40, 36), np.uint8)
        lab[8 + k : 30, 6:28] = 2
        lab[12 + k : 26, 10:24] = 1
        for arr, path in ((img, root / "imagesTr" / f"{case}_0000{ending}"), (lab, root / "labelsTr" / f"{case}{ending}")):
            if ending == ".png":
                Image.fromarray(arr).save(path)
            elif ending == ".nii.gz":
                nifti = nib.Nifti1Image(np.ascontiguousarray(arr.T), np.diag([0.25, 0.5, 1.0, 1.0]))
                nifti.header["descrip"] = b"user header"
                nib.save(nifti, str(path))
            else:
                im = sitk.GetImageFromArray(arr)
                im.SetSpacing((0.25, 0.5))
                im.SetOrigin((3.0, -2.0))
                sitk.WriteImage(im, str(path), True)
    labels = {"background": 0, "cavity": 1, "wall": 2}
    (root / "dataset.json").write_text(
        json.dumps({"channel_names": {"0": "US"}, "labels": labels, "numTraining": 6, "file_ending": ending})
    )
    return root


@pytest.mark.parametrize("ending", [".nii.gz", ".mha", ".png"])
def test_proposed_labels_round_trip_in_the_input_format(tmp_path, ending):
    root = make_nnunet(tmp_path / "Dataset001_Toy", ending)
    data = bench.load_dataset("nnunet", size=24, root=root, patient=r"(p\d)_", cache_dir=tmp_path / "cache")
    assert data.info["patient"].nunique() == 3
    given = data.labels.copy()
    proposals = given[[1, 4]].copy()
    proposals[0][proposals[0] == 1] = 2  # case 1: the cavity becomes wall
    out = tmp_path / "proposed"
    written = write_proposals(data, np.array([1, 4]), given, proposals, out, injected=False)
    assert written == {1: f"p0_1{ending}"}  # case 4's proposal equals its label: no file
    source, path = root / "labelsTr" / f"p0_1{ending}", out / f"p0_1{ending}"
    if ending == ".nii.gz":
        a, b = nib.load(str(source)), nib.load(str(path))
        assert a.header.binaryblock == b.header.binaryblock and np.array_equal(a.affine, b.affine)
        original, back = np.asarray(a.dataobj).T, np.asarray(b.dataobj).T
    elif ending == ".mha":
        a, b = sitk.ReadImage(str(source)), sitk.ReadImage(str(path))
        assert (a.GetSpacing(), a.GetOrigin(), a.GetDirection(), a.GetPixelID()) == (
            b.GetSpacing(),
            b.GetOrigin(),
            b.GetDirection(),
            b.GetPixelID(),
        )
        original, back = sitk.GetArrayFromImage(a), sitk.GetArrayFromImage(b)
    else:
        original, back = np.asarray(Image.open(source)), np.asarray(Image.open(path))

    # at the original size: the file's own pixels, except where the working-size proposal changed the label, which
    # take the proposal resized by torch's nearest-exact (the adapter's rule): cavity pixels became wall, nothing else
    def up(a: np.ndarray) -> np.ndarray:
        return F.interpolate(torch.from_numpy(a.astype(np.float32))[None, None], size=(40, 36), mode="nearest-exact")[0, 0].numpy()

    want = np.where(up(proposals[0] != given[1]) > 0, up(proposals[0]), original)
    assert back.shape == (40, 36) and np.array_equal(back, want)
    changed = back != original
    assert changed.any() and (back[changed] == 2).all() and (original[changed] == 1).all()


def test_phantom_proposals_are_nifti_with_the_working_spacing(tmp_path):
    data = phantom()
    proposal = data.labels[[2]].copy()
    proposal[0][proposal[0] == 3] = 0
    written = write_proposals(data, np.array([2]), data.labels, proposal, tmp_path, injected=False)
    img = nib.load(str(tmp_path / written[2]))
    assert written[2] == f"{data.ids[2]}.nii.gz"
    assert img.header.get_zooms() == pytest.approx((data.spacing[2][1], data.spacing[2][0]))
    assert np.array_equal(np.asarray(img.dataobj).T, proposal[0])


def test_audit_of_an_nnunet_folder_changes_nothing_there(tmp_path):
    root = make_nnunet(tmp_path / "Dataset002_Toy", ".nii.gz")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    argv = ["audit", "nnunet", "--data-root", str(root), "--option", r"patient=(p\d)_", "--size", "32", "--epochs", "1"]
    assert main([*argv, "--top", "6", "--out", str(out)]) == 0
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    table = pd.read_csv(out / "audit.csv", keep_default_na=False)
    assert len(table) == 6 and set(table.columns) >= {"dice_cavity", "dice_wall", "score_loss", "most_in_doubt", "proposed"}
    assert not [p for p in out.rglob("*") if ".tmp" in p.name or ".partial" in p.name]
    assert main([*argv, "--top", "6", "--out", str(root / "audit")]) == 2  # never into the dataset folder


# ---------------------------------------------------------------------------- --resume, Ctrl-C and bad input


def test_resume_keeps_finished_folds_and_ctrl_c_leaves_no_half_output(tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "bench", *audit_argv(out)]
    argv[argv.index("--epochs") + 1] = "12"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(bench.__file__).parent.parent)}
    # as from a terminal: a suite started as a background job (`cmd &`) ignores SIGINT, and children inherit that
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    try:
        first = out / "folds" / "fold1.npz"
        while not first.exists() and child.poll() is None:
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()
        child.send_signal(signal.SIGINT)
        stdout, _ = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130 and "rerun with --resume" in stdout
    assert first.exists() and not (out / "audit.csv").exists() and not (out / "report.html").exists()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp") or ".partial" in p.name]
    kept = first.read_bytes()
    resumed = subprocess.run([*argv, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 finished fold(s) kept (--resume)" in resumed.stdout or "2 finished fold(s) kept" in resumed.stdout
    assert first.read_bytes() == kept and (out / "audit.csv").is_file()


BAD = [
    (["--detector", "loss,vog"], "detector 'vog' cannot score out of sample: it reads the input gradients"),
    (["--detector", "los"], "unknown audit detector 'los'; did you mean 'loss'?"),
    (["--folds", "1"], "--folds must be an integer from 2 to 100, got 1"),
    (["--folds", "9"], "--folds 9 needs 2 to 6 folds here (6 patients)"),
    (["--top", "0"], "--top must be an integer from 1 to"),
    (["--top", "25"], "--top 25 is more than the 24 cases; give at most 24"),
    (["--epochs", "0"], "--epochs must be an integer from 1 to 1000, got 0"),
    (["--size", "8"], "--size must be an integer from 16 to 2048, got 8"),
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295, got -1"),
    (["--inject", "systematc:0.5"], "unknown noise type 'systematc'"),
    (["--inject", "none"], "--inject none corrupts nothing"),
    (["--data-root", "{tmp}/missing"], "--data-root {tmp}/missing is not a folder"),
]


@pytest.mark.parametrize(("extra", "message"), BAD, ids=[b[1][:30] for b in BAD])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    argv = audit_argv(out)
    for i in range(0, len(extra), 2):  # an option given twice: the later wins in argparse; replace to keep argv clear
        if extra[i] in argv:
            del argv[argv.index(extra[i]) : argv.index(extra[i]) + 2]
    assert main([*argv, *(a.format(tmp=tmp_path) for a in extra)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: ") and message.format(tmp=tmp_path) in err[0]
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_audit_is_not_overwritten_without_resume(injected, capsys):
    before = (injected / "audit.csv").read_bytes()
    assert main(audit_argv(injected)) == 2
    assert "holds an earlier audit; pass --resume" in capsys.readouterr().err
    assert (injected / "audit.csv").read_bytes() == before
