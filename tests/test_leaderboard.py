"""The leaderboard: numbers against hand-computed truth, no pooling across protocol hashes, every format, errors.

Records are synthetic: one real record from a tiny trial is the template (so every record is
valid by construction), and the metric values are overwritten with hand-chosen numbers whose
means, t-intervals and paired p-values are worked out here with direct formulas.
"""

import copy
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

import bench
from bench import leaderboard
from bench.cli import main
from bench.files import write_text_atomic
from bench.leaderboard import load_records, metric_columns, render
from bench.record import Cell, Record

T_975_DOF2 = 4.302652729911275  # Student t, 97.5% quantile, 2 degrees of freedom (tables)
T_975_DOF1 = 12.706204736174707  # ... 1 degree of freedom


@pytest.fixture(scope="session")
def template():
    record = bench.run_trial("tiny", "loss-refurb", "systematic:0.5", seed=0).to_dict()
    record["per_sample"] = None
    return record


def board(records: list[dict]):
    """The board of records given as JSON data (as the hand-made records below are)."""
    return leaderboard.board([Record.from_dict(r) for r in records])


def write_json(path, record: dict) -> None:
    write_text_atomic(path, json.dumps(record, indent=2))


def record_path(root, record: dict):
    p = record["protocol"]
    return Cell(p["name"], p["version"], record["method"]["name"], record["noise"]["spec"], record["seed"]).path(root)


def make(
    template,
    method,
    noise="systematic:0.5",
    seed=0,
    dice=0.5,
    *,
    wall=10.0,
    cpu=None,
    ap=None,
    gain=None,
    ef=5.0,
    hd95=20.0,
    proto_hash=None,
):
    """A valid record with hand-chosen numbers: Dice LV/MYO/LA = dice + 0.1 / dice / dice - 0.1, mean = dice; without
    `cpu`, no `cost.cpu_s` (as in the records made before it was recorded)."""
    r = copy.deepcopy(template)
    kind, _, rest = noise.partition(":")
    r["method"]["name"] = method
    if method in bench.methods:  # a registered method's record holds its definition (`bench validate` checks it)
        r["method"].update(recipe=bench.methods.get(method).describe(), reference=bench.methods.get(method).reference)
    level = float(rest.split(",")[0]) if rest else 0.0
    r["noise"].update(spec=noise, type=kind, level=level, n_corrupted=round(level * r["dataset"]["n_train"]))
    r["seed"] = seed
    if proto_hash is not None:
        r["protocol"]["hash"] = proto_hash
    m = r["metrics"]
    m["dice"] = {"lv": dice + 0.1, "myo": dice, "la": dice - 0.1, "mean": dice}
    m["hd95"] = {"lv": hd95, "myo": hd95, "la": hd95, "mean": hd95}
    m["hd"] = {k: 2 * v for k, v in m["hd95"].items()}  # HD >= HD95 >= ... and HD >= MSD, as in any real record
    m["msd"] = {k: v / 2 for k, v in m["hd95"].items()}
    m["clinical"] = {**(m["clinical"] or {}), "ef_abs_error_mean": ef, "ef_abs_error_p95": ef, "ef_bias": 0.0}
    if ap is None:
        m["detection"] = None
        m["refurbishment"] = None
    else:
        m["detection"] = {"precision": ap - 0.1, "recall": ap - 0.2, "f1": ap - 0.15, "ap": ap, "auroc": ap + 0.05, "n_flagged": 4}
        m["refurbishment"] = {
            "n_refurbished": 4,
            "corrupted": {"n": 3, "label_dice_before": 0.8, "label_dice_after": 0.8 + gain},
            "clean": {"n": 1, "label_dice_before": 1.0, "label_dice_after": 0.9},
        }
    r["cost"]["wall_s"] = wall
    r["cost"].pop("cpu_s", None)
    if cpu is not None:
        r["cost"]["cpu_s"] = cpu
    assert Record.problems(r) == []
    return r


def failed(template, method, noise="systematic:0.5", seed=0):
    r = make(template, method, noise, seed)
    r.update(status="failed", error="RuntimeError: boom", metrics={}, cost={})
    assert Record.problems(r) == []
    return r


def t_interval(values, t_quantile):
    v = np.asarray(values, dtype=float)
    return v.mean(), t_quantile * v.std(ddof=1) / math.sqrt(len(v))


@pytest.fixture()
def grid(template):
    """baseline and refurb over 3 seeds at systematic:0.5 (refurb has a 4th, failed seed), a method that only failed."""
    records = []
    for seed, (b, m) in enumerate(zip([0.50, 0.55, 0.70], [0.60, 0.70, 0.80], strict=True)):
        records.append(make(template, "baseline", seed=seed, dice=b, wall=10.0 * (seed + 1), ef=4.0 + seed))
        refurb = make(template, "loss-refurb", seed=seed, dice=m, wall=20.0 * (seed + 1), ap=0.7 + 0.1 * seed, gain=0.1 + 0.05 * seed)
        records.append(refurb)
    records.append(failed(template, "loss-refurb", seed=3))
    records.append(failed(template, "coteaching", seed=0))
    return records


def row(frame, method, noise="systematic:0.5"):
    rows = frame[(frame["method"] == method) & (frame["noise"] == noise)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_means_intervals_ranks_and_paired_test_match_hand_computation(grid):
    frame = board(grid)
    assert len(frame) == 3
    refurb, base, broken = row(frame, "loss-refurb"), row(frame, "baseline"), row(frame, "coteaching")

    assert (refurb["n"], refurb["failed"], base["n"], base["failed"], broken["n"], broken["failed"]) == (3, 1, 3, 0, 0, 1)
    mean, half = t_interval([0.60, 0.70, 0.80], T_975_DOF2)
    assert refurb["dice_mean"] == pytest.approx(0.70) and mean == pytest.approx(0.70)
    assert refurb["dice_mean_ci"] == pytest.approx(half, rel=1e-9)
    assert refurb["dice_mean_ci"] == pytest.approx(T_975_DOF2 * 0.1 / math.sqrt(3), rel=1e-9)
    assert [refurb[f"dice_{s}"] for s in ("lv", "myo", "la")] == pytest.approx([0.80, 0.70, 0.60])
    assert base["dice_mean"] == pytest.approx((0.50 + 0.55 + 0.70) / 3)
    assert refurb["hd95"] == pytest.approx(20.0) and refurb["hd95_ci"] == pytest.approx(0.0)
    assert base["ef_error"] == pytest.approx(5.0) and base["ef_error_ci"] == pytest.approx(T_975_DOF2 * 1.0 / math.sqrt(3))

    # detection and refurbishment gain: only where the method has them
    assert refurb["det_ap"] == pytest.approx(0.8) and refurb["det_ap_ci"] == pytest.approx(T_975_DOF2 * 0.1 / math.sqrt(3))
    assert refurb["det_precision"] == pytest.approx(0.7) and refurb["det_recall"] == pytest.approx(0.6)
    assert refurb["det_f1"] == pytest.approx(0.65) and refurb["det_auroc"] == pytest.approx(0.85)
    assert refurb["refurb_gain"] == pytest.approx(0.15) and refurb["refurb_gain_ci"] == pytest.approx(T_975_DOF2 * 0.05 / math.sqrt(3))
    assert np.isnan(base["det_ap"]) and np.isnan(base["refurb_gain"])

    # cost: each seed's wall time over baseline's mean (20 s) -> 1, 2, 3
    assert refurb["cost_rel"] == pytest.approx(2.0) and refurb["cost_rel_ci"] == pytest.approx(T_975_DOF2 * 1.0 / math.sqrt(3))
    assert base["cost_rel"] == pytest.approx(1.0) and base["cost_rel_ci"] == pytest.approx(T_975_DOF2 * 0.5 / math.sqrt(3))

    # paired t-test on the per-seed differences; with 2 dof the t CDF is 1/2 + t / (2 sqrt(2 + t^2))
    d = np.array([0.60, 0.70, 0.80]) - np.array([0.50, 0.55, 0.70])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(3))
    assert refurb["delta_dice"] == pytest.approx(0.35 / 3)
    assert refurb["delta_dice_ci"] == pytest.approx(T_975_DOF2 * d.std(ddof=1) / math.sqrt(3))
    assert refurb["delta_p"] == pytest.approx(1 - abs(t) / math.sqrt(2 + t * t), rel=1e-9)
    assert refurb["delta_n"] == 3
    assert np.isnan(base["delta_dice"]) and np.isnan(base["delta_p"])

    assert (refurb["rank"], base["rank"]) == (1, 2)
    assert pd.isna(broken["rank"]) and np.isnan(broken["dice_mean"])


def test_cost_of_a_cpu_trial_is_its_cpu_seconds_and_of_a_gpu_trial_its_wall_time(template):
    # CPU seconds 10 / 30 against wall times that a busy machine inflated unevenly (50 / 60): cost 3, not 1.2
    records = [make(template, "baseline", wall=50.0, cpu=10.0), make(template, "loss-refurb", wall=60.0, cpu=30.0)]
    assert row(board(records), "loss-refurb")["cost_rel"] == pytest.approx(3.0)
    for r in records:
        r["provenance"]["device"] = {**r["provenance"]["device"], "kind": "cuda"}  # on a GPU the CPU seconds are not the cost
    assert row(board(records), "loss-refurb")["cost_rel"] == pytest.approx(1.2)


def on(record: dict, cpu: str | None = None, gpu: str | None = None) -> dict:
    """The record as if it ran on CPU kind `cpu` (None: a record from before CPU kinds were recorded) or on GPU `gpu`."""
    device = {k: v for k, v in record["provenance"]["device"].items() if k not in ("cpu", "cpu_name")}
    if cpu is not None:
        device.update(cpu=cpu, cpu_name="some CPU")
    if gpu is not None:
        device.update(kind="cuda", gpu=gpu)
    record["provenance"]["device"] = device
    return record


def test_cost_compares_within_a_machine_kind_and_pairs_across_kinds_are_counted(template):
    # baseline's CPU seconds: 10 and 12 on kind A (mean 11), 30 on kind B; each method seed costs twice its kind's baseline
    base = [on(make(template, "baseline", seed=s, cpu=c), k) for s, (c, k) in enumerate([(10.0, "A"), (12.0, "A"), (30.0, "B")])]
    refurb = [on(make(template, "loss-refurb", seed=s, cpu=c), k) for s, (c, k) in enumerate([(22.0, "A"), (60.0, "B"), (60.0, "B")])]
    elsewhere = [on(make(template, "gce", seed=s, cpu=5.0), "C") for s in range(3)]  # a kind baseline never ran on
    frame = board(base + refurb + elsewhere)
    r = row(frame, "loss-refurb")
    assert r["cost_rel"] == pytest.approx(2.0) and r["cost_rel_ci"] == pytest.approx(0.0, abs=1e-12)  # pooled: 22/17.3, 60/17.3
    assert (r["delta_across_machines"], r["machines"]) == (1, "A,B")  # seed 1: A against B
    g = row(frame, "gce")
    assert np.isnan(g["cost_rel"]) and (g["delta_across_machines"], g["machines"]) == (3, "C")
    power = leaderboard.power_table(frame)
    assert power.iloc[0]["pairs across machine kinds"] == "4 of 6"
    # on a GPU the kind is the GPU's name; records that name no kind are one kind, and the power table leaves the column out
    gpu = [on(make(template, m, seed=s), gpu="H200") for m in ("baseline", "loss-refurb") for s in range(2)]
    assert set(board(gpu)["machines"]) == {"H200"}
    old = [on(make(template, m, seed=s, cpu=c)) for m, c in (("baseline", 10.0), ("loss-refurb", 30.0)) for s in range(2)]
    frame = board(old)
    assert row(frame, "loss-refurb")["cost_rel"] == pytest.approx(3.0) and set(frame["machines"]) == {""}
    assert "pairs across machine kinds" not in leaderboard.power_table(frame).columns


def _work(record: dict, forward: int, backward: int) -> dict:
    record["cost"].update(forward_macs=forward, backward_macs=backward)
    return record


def test_work_is_macs_over_baselines_mean_on_any_machine_and_only_shown_where_records_count_it(template):
    # baseline: 100 + 200 and 150 + 250 MACs (mean 350) on two CPU kinds; loss-refurb 300 + 400, 330 + 720: 2.0 and 3.0
    base = [on(_work(make(template, "baseline", seed=s), f, b), k) for s, (f, b, k) in enumerate([(100, 200, "A"), (150, 250, "B")])]
    refurb = [on(_work(make(template, "loss-refurb", seed=s), f, b), k) for s, (f, b, k) in enumerate([(300, 400, "B"), (330, 720, "C")])]
    frame = board(base + refurb)
    r = row(frame, "loss-refurb")
    assert r["work_rel"] == pytest.approx(2.5) and r["work_rel_ci"] == pytest.approx(T_975_DOF1 * np.std([2.0, 3.0], ddof=1) / math.sqrt(2))
    assert row(frame, "baseline")["work_rel"] == pytest.approx(1.0)
    assert list(frame.columns[-2:]) == ["work_rel", "work_rel_ci"]  # added after v4: at the very end, older readers keep theirs
    assert "work / baseline" in leaderboard.render(frame, "md") and "2.50 ± " in leaderboard.render(frame, "md")
    old = [make(template, m, seed=s) for m in ("baseline", "loss-refurb") for s in range(2)]
    for r in old:  # as made before MACs were counted
        del r["cost"]["forward_macs"], r["cost"]["backward_macs"]
    old = board(old)
    assert "work_rel" not in old.columns and "work / baseline" not in leaderboard.render(old, "md")
    assert "work / baseline" not in leaderboard.render(old, "html") and "work / baseline" in leaderboard.render(frame, "html")


def test_the_run_summary_shows_each_cells_work_in_gmac(template):
    from bench.display import summary_table

    counted = [_work(make(template, "baseline", seed=s), f, 2 * f) for s, f in enumerate([1_000_000_000, 3_000_000_000])]
    old = make(template, "loss-refurb")
    del old["cost"]["forward_macs"], old["cost"]["backward_macs"]
    shown = Console(file=io.StringIO(), width=240)
    shown.print(summary_table([Record.from_dict(r) for r in [*counted, old]]))
    lines = shown.file.getvalue().splitlines()
    assert "GMAC" in next(line for line in lines if "method" in line)
    assert next(line for line in lines if "baseline" in line).rstrip(" │").endswith(" 6")  # (3 + 9) / 2 GMAC
    assert next(line for line in lines if "loss-refurb" in line).rstrip(" │").endswith(" -")


def test_one_seed_has_no_interval_and_two_seeds_pair_with_one_dof(template):
    records = [
        make(template, "baseline", dice=0.5, seed=0),
        make(template, "baseline", dice=0.6, seed=1),
        make(template, "loss-refurb", dice=0.7, seed=0),
        make(template, "loss-refurb", dice=0.75, seed=1),
        make(template, "vog-refurb", dice=0.9, seed=1),
        make(template, "confident-refurb", dice=0.9, seed=7),
    ]
    frame = board(records)
    solo, refurb, other = row(frame, "vog-refurb"), row(frame, "loss-refurb"), row(frame, "confident-refurb")
    assert solo["dice_mean"] == pytest.approx(0.9) and np.isnan(solo["dice_mean_ci"])
    assert solo["delta_dice"] == pytest.approx(0.3) and solo["delta_n"] == 1 and np.isnan(solo["delta_p"])
    assert other["delta_n"] == 0 and np.isnan(other["delta_dice"])  # no baseline run with seed 7: nothing to pair
    # 1 dof: the t CDF is 1/2 + arctan(t) / pi
    d = np.array([0.2, 0.15])
    t = d.mean() / (d.std(ddof=1) / math.sqrt(2))
    assert refurb["delta_p"] == pytest.approx(1 - 2 * math.atan(abs(t)) / math.pi, rel=1e-9)
    assert refurb["dice_mean_ci"] == pytest.approx(T_975_DOF1 * np.std([0.7, 0.75], ddof=1) / math.sqrt(2))
    assert (solo["rank"], other["rank"], refurb["rank"], row(frame, "baseline")["rank"]) == (1, 1, 3, 4)  # ties share the best rank


def test_protocol_hashes_and_noise_specs_are_never_pooled(template):
    records = [
        make(template, "baseline", seed=0, dice=0.5, proto_hash="aaaa"),
        make(template, "loss-refurb", seed=0, dice=0.6, proto_hash="aaaa"),
        make(template, "loss-refurb", seed=1, dice=0.9, proto_hash="bbbb"),
        make(template, "loss-refurb", "random:0.25", seed=0, dice=0.3, proto_hash="aaaa"),
        make(template, "loss-refurb", seed=0, dice=0.2, proto_hash="aaaa"),
    ]
    records[-1]["protocol"]["version"] = 2  # same hash, another version: still its own board
    frame = board(records)
    assert len(frame) == 5
    assert row(frame[frame["version"] == 2], "loss-refurb")["dice_mean"] == pytest.approx(0.2)
    a = row(frame[(frame["hash"] == "aaaa") & (frame["version"] == 1)], "loss-refurb")
    b = frame[frame["hash"] == "bbbb"].iloc[0]
    assert (a["n"], a["dice_mean"], b["n"], b["dice_mean"]) == (1, pytest.approx(0.6), 1, pytest.approx(0.9))
    assert a["delta_dice"] == pytest.approx(0.1)
    assert np.isnan(b["delta_dice"]) and np.isnan(b["cost_rel"])  # the baseline of another hash is not its baseline
    assert b["rank"] == 1 and a["rank"] == 1  # ranks are per protocol hash and noise spec
    assert row(frame, "loss-refurb", "random:0.25")["rank"] == 1
    # one cell under two hashes is one trial recorded twice (one of them ran another protocol): refused
    with pytest.raises(bench.BenchError, match=r"recorded twice: tiny v1 \| loss-refurb \| systematic:0.5 \| seed 1"):
        board([*records, make(template, "loss-refurb", seed=1, dice=0.9, proto_hash="aaaa")])


def test_the_same_trial_twice_is_an_error(template, tmp_path):
    r = make(template, "loss-refurb")
    with pytest.raises(bench.BenchError, match="recorded twice"):
        board([r, copy.deepcopy(r)])
    write_json(tmp_path / "a" / "one.json", r)
    write_json(tmp_path / "b" / "two.json", r)
    with pytest.raises(bench.BenchError, match=r"two\.json: duplicate of .*one\.json"):
        load_records([tmp_path])


def write_records(root, records):
    for r in records:
        write_json(record_path(root, r), r)
    return root


def test_load_records_filters_by_protocol_and_skips_tune_state(grid, template, tmp_path):
    other = copy.deepcopy(make(template, "loss-refurb"))
    other["protocol"].update(name="other", version=3)
    write_records(tmp_path, [*grid, other])
    (tmp_path / "_tune" / "run").mkdir(parents=True)
    (tmp_path / "_tune" / "run" / "state.json").write_bytes(b"\x80\x04 not json")
    assert len(load_records([tmp_path], protocol="tiny")) == len(grid)  # the other protocol's file is not read further
    assert len(load_records([tmp_path], protocol="tiny@1")) == len(grid)
    single = record_path(tmp_path, other)
    # what `bench validate` refuses never reaches a board: refused, or left out and counted with skip_invalid
    for where, protocol in (([tmp_path], None), ([tmp_path], "other@v3")):
        with pytest.raises(bench.BenchError, match=r"other/v3/.*seed0\.json: unknown protocol 'other'.*--skip-invalid"):
            load_records(where, protocol=protocol)
    skipped: list = []
    assert len(load_records([tmp_path], skip_invalid=True, skipped=skipped)) == len(grid)
    assert [(path, problem.split(" (")[0]) for path, problem in skipped] == [(single, "unknown protocol 'other'")]
    first = record_path(tmp_path, grid[0])
    assert load_records([first, first]) == [Record.from_dict(grid[0])]  # a file named twice is read once


def test_every_format_renders(grid, template):
    odd = make(template, "my_method&co%", seed=0, dice=0.4)
    records = [
        *grid,
        odd,
        *(make(template, m, "random:0.25", seed=s, dice=0.5, ap=0.6, gain=0.1) for m in ("baseline", "loss-refurb") for s in (0, 1)),
    ]
    records += [make(template, m, "none", seed=0, dice=0.8) for m in ("baseline", "loss-refurb")]
    frame = board(records)

    table = render(frame, "table")
    assert "loss-refurb" in table and "Dice mean" in table and "det. AP" in table

    md = render(frame, "md")
    lines = md.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| rank | method | noise |"))
    assert re.fullmatch(r"\|(---:?\|)+", lines[header + 1])
    assert "| 1 | loss-refurb | systematic:0.5 | 3 (+1 failed) | 0.800 ± 0.248 |" in md

    back = pd.read_csv(io.StringIO(render(frame, "csv")))
    assert list(back.columns) == list(frame.columns) and len(back) == len(frame)
    metrics = metric_columns(["lv", "myo", "la"])
    for col in [*metrics, *(f"{m}_ci" for m in metrics), "delta_dice", "delta_p", "n", "failed", "rank", "noise_level"]:
        np.testing.assert_allclose(back[col].to_numpy(dtype=float), frame[col].to_numpy(dtype=float), rtol=1e-12, equal_nan=True)
    assert list(back["method"]) == list(frame["method"]) and list(back["noise"]) == list(frame["noise"])

    latex = render(frame, "latex")
    assert "\\begin{tabular}" in latex and "\\toprule" in latex and "\\bottomrule" in latex and "\\end{tabular}" in latex
    assert r"my\_method\&co\%" in latex and "my_method&co%" not in latex
    body = latex[latex.index("\\midrule") : latex.index("\\bottomrule")]
    # rank, method, noise, seeds, 4 Dice, HD95, 7 detection (AP chance among them), 3 refurbishment, EF, cost, work (the
    # records count MACs), 4 against baseline
    assert all(line.count("&") - line.count(r"\&") == 25 for line in body.splitlines()[1:])

    page = render(frame, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # matplotlib figures: difference to baseline, detection, refurbishment (each a panel per noise type), cost
    assert page.count("<svg") == 4 and page.count("</svg>") == 4
    for label in ("noise level", "Δ mean Dice vs baseline", "detection AP", "precision at review budget", ">loss-refurb</text>"):
        assert label in page
    assert "my_method&amp;co%" in page and "my_method&co" not in page


def test_the_html_page_fetches_nothing(grid):
    page = render(board(grid), "html")
    # the SVG namespace names are identifiers, not addresses: nothing is fetched from them
    page = page.replace('xmlns="http://www.w3.org/2000/svg"', "").replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    for external in ("http://", "https://", "src=", "<link", "@import", "<iframe", "<img"):
        assert external not in page, external
    assert not re.findall(r'href="(?!#)', page) and not re.findall(r"url\((?!#)", page)  # only links inside the page
    assert page.count("<script>") == 1  # the inline sorter, no script file


def test_a_board_of_another_label_set_has_its_structures_columns(template):
    records = []
    for seed, method in enumerate(("baseline", "loss-refurb")):
        r = make(template, method, seed=seed)
        r["metrics"]["dice"] = {"rv": 0.4, "lv": 0.6, "mean": 0.5}
        for metric in ("hd95", "hd", "msd"):
            r["metrics"][metric] = {"rv": 3.0, "lv": 3.0, "mean": 3.0}
        r["metrics"]["missed"] = {"rv": 0, "lv": 0}
        records.append(r)
    records.append(failed(template, "coteaching"))
    frame = board(records)
    dice = [c for c in frame.columns if c.startswith("dice_")]
    assert dice == ["dice_rv", "dice_rv_ci", "dice_lv", "dice_lv_ci", "dice_mean", "dice_mean_ci"]
    assert row(frame, "loss-refurb")["dice_rv"] == pytest.approx(0.4)
    md = render(frame, "md")
    assert "| Dice RV | Dice LV | Dice mean |" in md and "MYO" not in md
    assert "Dice RV" in render(frame, "table") and "Dice RV" in render(frame, "html") and "Dice RV" in render(frame, "latex")

    from bench.display import summary_table

    shown = Console(file=io.StringIO(), width=240)
    shown.print(summary_table([Record.from_dict(r) for r in records]))
    assert "Dice RV" in shown.file.getvalue() and "Dice MYO" not in shown.file.getvalue()


def test_unknown_format_and_empty_board_are_errors(grid):
    with pytest.raises(bench.BenchError, match="unknown format 'pdf'"):
        render(board(grid), "pdf")
    with pytest.raises(bench.BenchError, match="no records"):
        board([])


def test_cli_prints_and_writes_atomically(grid, tmp_path, capsys):
    root = write_records(tmp_path / "records", grid)
    assert main(["leaderboard", str(root), "--format", "csv"]) == 0
    printed = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert sorted(printed["method"]) == ["baseline", "coteaching", "loss-refurb"]

    assert main(["leaderboard", str(root)]) == 0
    assert "loss-refurb" in capsys.readouterr().out

    out = tmp_path / "site" / "board.html"  # the format follows the suffix; missing folders are made
    assert main(["leaderboard", str(root), "--out", str(out)]) == 0
    assert "<svg" in out.read_text() and f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["board.html"]  # no temporary file left

    md = tmp_path / "board.txt"
    assert main(["leaderboard", str(root), "--format", "md", "--out", str(md), "--protocol", "tiny@1"]) == 0
    assert "| rank | method |" in md.read_text()


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "no such file or folder"),
        ("empty", "no records found under"),
        ("broken-json", "broken.json: is not JSON"),
        ("not-a-record", "stray.json: missing 'schema'"),
        ("bad-dice", "seed0.json: metrics.dice.mean = 1.5 is not in [0, 1]"),
        ("unknown-method", "seed0.json: unknown method 'not-installed'"),
        ("protocol", "no records of protocol 'nope' under"),
        ("format", "argument --format: invalid choice: 'pdf'"),
        ("out-folder", "is a folder"),
    ],
)
def test_cli_errors_are_one_line_exit_2_and_write_nothing(case, message, grid, template, tmp_path, capsys):
    root = tmp_path / "records"
    root.mkdir()
    out = tmp_path / "out" / "board.md"
    args = [str(root)]
    if case == "missing":
        args = [str(tmp_path / "nowhere")]
    elif case == "broken-json":
        write_records(root, grid)
        (root / "broken.json").write_text('{"schema": ')
    elif case == "not-a-record":
        write_records(root, grid)
        (root / "stray.json").write_text(json.dumps({"hello": 1}))
    elif case == "bad-dice":
        bad = make(template, "adele")
        bad["metrics"]["dice"]["mean"] = 1.5
        write_records(root, [*grid, bad])
    elif case == "unknown-method":
        write_records(root, [*grid, make(template, "not-installed")])
    elif case == "protocol":
        write_records(root, grid)
        args += ["--protocol", "nope"]
    elif case == "format":
        write_records(root, grid)
        args += ["--format", "pdf"]
    elif case == "out-folder":
        write_records(root, grid)
        out = tmp_path / "out"
        out.mkdir()
    before = sorted(p for p in tmp_path.rglob("*"))
    assert main(["leaderboard", *args, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: "), captured.err
    assert message in lines[0]
    assert captured.out == ""
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written, no temporary file


def test_holm_power_references_and_ap_chance_on_the_board(template):
    """Three methods and a reference against baseline at one spec, over 3 seeds; every number worked out here."""
    dice = {
        "baseline": [0.50, 0.55, 0.70],
        "loss-refurb": [0.60, 0.70, 0.80],  # differences 0.10 0.15 0.10: t = 7
        "vog-refurb": [0.52, 0.56, 0.73],  # 0.02 0.01 0.03: t = 2 sqrt(3)
        "coteaching": [0.40, 0.60, 0.60],  # -0.10 0.05 -0.10: t = -1
        "oracle-refurb": [0.90, 0.90, 0.90],  # a reference: the best Dice, not ranked
    }
    records = []
    for method, values in dice.items():
        for seed, value in enumerate(values):
            ap = None if method == "baseline" else 0.8
            r = make(template, method, seed=seed, dice=value, ap=ap, gain=0.1)
            r["method"].pop("reference", None)  # as in the v1 records: the registry says which recipe is a reference
            records.append(r)
    frame = board(records)
    rows = {m: row(frame, m) for m in dice}

    def p_dof2(t: float) -> float:  # two-sided p of Student t with 2 dof, closed form
        return 1 - abs(t) / math.sqrt(2 + t * t)

    p = {"loss-refurb": p_dof2(7.0), "vog-refurb": p_dof2(2 * math.sqrt(3)), "coteaching": p_dof2(1.0)}
    for method, value in p.items():
        assert rows[method]["delta_p"] == pytest.approx(value, rel=1e-9)
    # Holm, m = 3 (the reference is not counted): loss 0.0198 * 3, vog 0.0742 * 2, coteaching max(previous, 0.4226 * 1)
    assert rows["loss-refurb"]["delta_p_holm"] == pytest.approx(3 * p["loss-refurb"])
    assert rows["vog-refurb"]["delta_p_holm"] == pytest.approx(2 * p["vog-refurb"])
    assert rows["coteaching"]["delta_p_holm"] == pytest.approx(p["coteaching"])
    # 0.0198 < 0.05 alone, but not below 0.05 / 3: nothing survives the correction
    assert p["loss-refurb"] < 0.05 and not frame["delta_holm_reject"].any()
    assert math.isnan(rows["oracle-refurb"]["delta_p_holm"]) and not math.isnan(rows["oracle-refurb"]["delta_p"])

    # ranks among the methods only; the reference is shown with rank "ref"
    assert [rows[m]["rank"] for m in ("loss-refurb", "vog-refurb", "baseline", "coteaching")] == [1, 2, 3, 4]
    assert pd.isna(rows["oracle-refurb"]["rank"]) and rows["oracle-refurb"]["reference"]
    assert list(frame["method"])[-1] == "oracle-refurb"
    assert "| ref | oracle-refurb | systematic:0.5 |" in render(frame, "md")

    # power: pooled paired sd of the three methods (3 seeds each), MDD with t(0.975, 2) + t(0.80, 2) = 4.3027 + sqrt(1.125)
    variances = [np.var(np.subtract(dice[m], dice["baseline"]), ddof=1) for m in p]
    sd = math.sqrt(sum(variances) / 3)
    first = frame.iloc[0]
    assert first["spec_sd"] == pytest.approx(sd) and first["spec_n"] == 3
    assert first["spec_mdd"] == pytest.approx((T_975_DOF2 + math.sqrt(1.125)) * sd / math.sqrt(3))
    own = np.std(np.subtract(dice["vog-refurb"], dice["baseline"]), ddof=1)
    assert rows["vog-refurb"]["delta_mdd"] == pytest.approx((T_975_DOF2 + math.sqrt(1.125)) * own / math.sqrt(3))
    assert (frame["spec_mdd"] == first["spec_mdd"]).all()  # one number per spec, on each of its rows

    # AP's chance level: the cell's prevalence n_corrupted / n_train, where the method has an AP
    n_train = template["dataset"]["n_train"]
    assert rows["loss-refurb"]["det_ap_chance"] == pytest.approx(round(0.5 * n_train) / n_train)
    assert math.isnan(rows["baseline"]["det_ap_chance"])
    assert rows["loss-refurb"]["refurb_before"] == pytest.approx(0.8) and rows["loss-refurb"]["refurb_after"] == pytest.approx(0.9)


def test_a_method_that_trained_as_baseline_did_leaves_the_power_alone(template):
    """A detector that flagged nothing gives baseline's numbers on every seed: its differences are all 0, and pooled in they
    would pull the spec's sd (and MDD) towards 0. With one real method beside it the spec's sd is that method's own."""
    dice = {"baseline": [0.50, 0.55, 0.70], "vog-refurb": [0.52, 0.56, 0.73], "loss-refurb": [0.50, 0.55, 0.70]}
    frame = board([make(template, m, seed=s, dice=v) for m, values in dice.items() for s, v in enumerate(values)])
    own = np.std(np.subtract(dice["vog-refurb"], dice["baseline"]), ddof=1)  # 0.01
    first = frame.iloc[0]
    assert row(frame, "loss-refurb")["delta_dice"] == 0 and first["spec_sd"] == pytest.approx(own) and first["spec_n"] == 3
    only_same = board([make(template, m, seed=s, dice=v) for m in ("baseline", "loss-refurb") for s, v in enumerate(dice[m])])
    assert only_same["spec_mdd"].isna().all()  # nothing measured the spread: no MDD rather than 0


def test_lost_counts_the_ok_seeds_with_a_structure_below_half_overlap(template):
    def with_dice(method, seed, lv, myo, la):
        r = make(template, method, seed=seed)
        r["metrics"]["dice"] = {"lv": lv, "myo": myo, "la": la, "mean": (lv + myo + la) / 3}
        return r

    records = [
        with_dice("baseline", 0, 0.9, 0.8, 0.8),
        with_dice("baseline", 1, 0.9, 0.49, 0.8),  # the myocardium lost: its mean Dice (0.73) alone would not say so
        with_dice("baseline", 2, 0.9, 0.8, 0.0),
        with_dice("loss-refurb", 0, 0.5, 0.5, 0.5),  # exactly half overlap is not lost
        with_dice("loss-refurb", 1, 0.9, 0.8, 0.8),
        failed(template, "loss-refurb", seed=2),
    ]
    frame = board(records)
    base, refurb = row(frame, "baseline"), row(frame, "loss-refurb")
    assert (base["lost"], refurb["lost"]) == (2, 0)
    assert (leaderboard.seeds_cell(base), leaderboard.seeds_cell(refurb)) == ("3 (2 lost)", "2 (+1 failed)")
    records[3] = with_dice("loss-refurb", 0, 0.9, 0.8, 0.3)
    assert leaderboard.seeds_cell(row(board(records), "loss-refurb")) == "2 (1 lost, +1 failed)"
    assert "| 3 (2 lost) |" in leaderboard.render(frame, "md")
    # added after v2 (lost), v3 (machine kinds) and v4 (work, where records count it): at the end, so older readers of the
    # CSV keep their columns
    assert list(frame.columns)[-5:] == ["lost", "delta_across_machines", "machines", "work_rel", "work_rel_ci"]


def test_a_failed_trial_has_no_device_and_still_sits_on_a_board_of_cpu_records(grid, tmp_path):
    """The runner's own failed record (no provenance.device: it made no numbers) is counted on a board of CPU records."""
    from bench.grid import TrialSpec
    from bench.runner import failed_record

    real = failed_record(TrialSpec("tiny", "loss-refurb", "systematic:0.5", 0), bench.protocols.get("tiny"), RuntimeError("boom"))
    assert real.provenance.get("device") is None
    ok = [r for r in grid if r["status"] == "ok" and not (r["method"]["name"] == "loss-refurb" and r["seed"] == 0)]
    write_records(tmp_path, ok)
    real.write(tmp_path)  # at loss-refurb seed 0 (sorted first among the loss-refurb files)
    frame = leaderboard.board(load_records([tmp_path]))
    assert (row(frame, "loss-refurb")["n"], row(frame, "loss-refurb")["failed"]) == (2, 1)


def test_the_board_in_progress_runs_every_registered_recipe():
    """Issue 16: every registered recipe on the board. The v4 script's lists must hold each recipe once: the ones that
    need trusted samples on the trusted protocol (with baseline and loss-refurb to pair them), every other on the grid,
    so a recipe added by pull request without a place on the board fails here."""
    script = (Path(__file__).resolve().parent.parent / "leaderboard" / "phantom-quick" / "v4" / "run.sh").read_text()
    grid, trusted = (set(re.search(rf"^{name}=(\S+)$", script, re.M).group(1).split(",")) for name in ("METHODS", "TRUSTED"))
    names = set(bench.methods.names())
    needs = {n for n in names if bench.methods.get(n).needs_trusted}
    assert grid == names - needs
    assert trusted == needs | {"baseline", "loss-refurb"}
    assert re.search(r"^BOARD_COMMIT=[0-9a-f]{40}$", script, re.M)  # one commit, named in full
    # it runs in blocks of one spec and one seed: together the blocks must be the protocols' whole grid, each once
    specs, seeds = (re.search(rf'^{name}="([^"]+)"$', script, re.M).group(1).split() for name in ("SPECS", "SEEDS"))
    for name in ("phantom-quick", "phantom-quick-trusted6"):
        protocol = bench.protocols.get(f"{name}@v4")
        assert sorted(specs) == sorted(protocol.noise_grid) and len(set(specs)) == len(specs)
        assert [int(s) for s in seeds] == list(protocol.seeds)
