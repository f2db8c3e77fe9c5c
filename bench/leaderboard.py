"""The leaderboard: result records in, one aggregated board out, rendered as a table, Markdown, CSV, LaTeX or HTML.

Records are the unit of truth and the board is derived from them, never edited. Records of
different protocol versions or hashes never share a row: a row is one (protocol name,
version, hash, method, noise spec). Only `status: ok` records feed the numbers; failed ones
are counted. Every number is a mean over seeds with a 95% t-interval (n - 1 degrees of
freedom), and a method's gain over `baseline` in mean Dice comes with a paired t-test over
the seeds both ran, so a reader sees how much of a difference is noise. Within a noise spec
those p-values are Holm-corrected for the number of methods, and the spec's minimum detectable
difference (`bench.board_stats`) says how small a difference its seeds could find at all.
References (`oracle-*`, which read the noise truth) are shown beside the methods but never
ranked and never counted in the correction. Records are bit-reproducible within one machine
kind only (CPU kind, or GPU), so costs are compared within a kind and the board counts the
paired seeds whose two records ran on different kinds. The HTML page and its plots live in
`bench.board_html` and `bench.board_plots`.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy import stats

from bench import board_stats
from bench.errors import BenchError
from bench.record import Record, duplicate_cells, find_records

FORMATS = ("table", "md", "csv", "html", "latex")
#: the file suffixes `bench leaderboard --out` reads a format from when `--format` is not given
SUFFIX_FORMATS = {".md": "md", ".csv": "csv", ".html": "html", ".htm": "html", ".tex": "latex", ".txt": "table"}
BASELINE = "baseline"
GROUP = ["protocol", "version", "hash"]
KEY = [*GROUP, "method", "noise"]

#: aggregated metric columns after the Dice ones, and their display labels; each has a `<name>_ci` column (95% half-width)
METRICS: dict[str, str] = {
    "hd95": "HD95 mm",
    "det_precision": "det. P",
    "det_recall": "det. R",
    "det_f1": "det. F1",
    "det_ap": "det. AP",
    "det_auroc": "det. AUROC",
    "refurb_gain": "refurb. gain",
    "ef_error": "EF error pp",
    "cost_rel": "cost / baseline",
}
#: metric columns added after the first board (v1): in the frame after the `delta_*` columns, so older readers of the CSV keep their columns
MORE_METRICS: dict[str, str] = {
    "det_p_at_budget": "det. P@budget",
    "refurb_before": "label Dice before",
    "refurb_after": "label Dice after",
}
#: metric columns added after the v4 board, at the very end of the frame: `work_rel`, a trial's multiply-accumulates
#: (`cost.forward_macs` + `cost.backward_macs`, `bench.work`) over baseline's mean at the same spec: the same on every
#: machine, unlike `cost_rel`. Records made before it existed have none; a board of them has no such column.
LATER_METRICS: dict[str, str] = {"work_rel": "work / baseline"}
#: the order in which tables show the metric columns after Dice (each group of `metric_groups` keeps it)
_SHOWN_AFTER_DICE = [
    "hd95",
    "det_precision",
    "det_recall",
    "det_f1",
    "det_ap",
    "det_auroc",
    "det_p_at_budget",
    "refurb_before",
    "refurb_after",
    "refurb_gain",
    "ef_error",
    "cost_rel",
    "work_rel",
]
#: the console splits a board into three tables (the first: Dice), so that each fits a 160-column terminal; each keeps
#: the order of `_SHOWN_AFTER_DICE`
_DETECTION_PARTS = [c for c in _SHOWN_AFTER_DICE if c.startswith(("det_", "refurb_"))]
_CONSOLE_PARTS = {
    "detection and refurbishment": _DETECTION_PARTS,
    "distance, clinical, cost": [c for c in _SHOWN_AFTER_DICE if c not in _DETECTION_PARTS],
}


# ---------------------------------------------------------------- reading


def _refuse_duplicates(records: list[tuple[Path | str, Record]]) -> None:
    """BenchError naming both sources when two records fill the same cell (they would count one trial twice)."""
    found = duplicate_cells(records)
    if found:
        second, first = found[0]
        where = f": {first}" if first == second else f", in {first} and {second}"
        raise BenchError(f"the same trial is recorded twice{where}; keep one")


def _protocol_filter(protocol: str) -> tuple[str, int | None]:
    name, _, version = protocol.partition("@")
    if not version:
        return name, None
    try:
        return name, int(version.removeprefix("v"))
    except ValueError:
        raise BenchError(f"--protocol '{protocol}': the version after @ must be an integer, e.g. {name}@1") from None


def load_records(
    paths: str | Path | list[str | Path] | tuple[str | Path, ...],
    protocol: str | None = None,
    *,
    skip_invalid: bool = False,
    data_root: Path | None = None,
    skipped: list[tuple[Path, str]] | None = None,
    notes: list[str] | None = None,
) -> list[Record]:
    """Every record under `paths` (files, or folders searched for `*.json`), checked by `bench validate`'s checks.

    `protocol` is a name or `name@version`: files of other protocols are not read further.
    A record that fails any check (its own values, its protocol, its method and noise spec,
    a duplicate, its dataset's fingerprint against the data) is a BenchError naming the
    file and the problem, or with `skip_invalid` is left out and its (file, problem) goes
    to `skipped`. What could not be checked goes to `notes`. BenchError too for a missing
    path and when no record is left, since an empty board is never what was meant.
    """
    from bench.validate import check_records

    if isinstance(paths, (str, Path)):
        paths = [paths]
    wanted = _protocol_filter(protocol) if protocol else None
    files = list(dict.fromkeys(p.resolve() for p in find_records(paths)))
    present: set[str] = set()
    if wanted:
        files = [f for f in files if _belongs(f, wanted, present)]
    checked = check_records(files, data_root)
    if checked.problems and not skip_invalid:
        file, problem = checked.problems[0]
        more = len(checked.problems) - 1
        also = f" (and {more} more problem(s) in {len(checked.invalid) - 1} other file(s))" if more else ""
        raise BenchError(f"{file}: {problem}{also}; check them with `bench validate`, or leave invalid records out with --skip-invalid")
    if skipped is not None:
        skipped += checked.problems
    if notes is not None:
        notes += checked.notes
    records = [r for f, r in checked.records.items() if f not in checked.invalid]
    where = ", ".join(str(p) for p in paths)
    if not records and wanted:
        found = f"; protocols found: {', '.join(sorted(present))}" if present else ""
        raise BenchError(f"no records of protocol '{protocol}' under {where}{found}")
    if not records:
        raise BenchError(f"no records found under {where}; run `bench run --out DIR` first")
    return records


def _belongs(file: Path, wanted: tuple[str, int | None], present: set[str]) -> bool:
    """Whether record file `file` is of protocol `wanted` (name, version or None); unreadable files are kept, to be reported."""
    try:
        p = json.loads(file.read_text())["protocol"]
        name, version = p["name"], p["version"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return True
    present.add(f"{name}@{version}")
    return name == wanted[0] and (wanted[1] is None or version == wanted[1])


# ---------------------------------------------------------------- aggregating


def record_structures(records: list[Record]) -> list[str]:
    """Short names of the structures whose Dice the ok records report, in order of first appearance (CAMUS: lv, myo, la).

    The board's columns come from the records, not from one dataset's label set,
    so a board of any label set renders.
    """
    names: dict[str, None] = {}
    for r in records:
        if r.ok:
            names.update(dict.fromkeys(k for k in r.metrics.get("dice") or {} if k != "mean"))
    return list(names)


def metric_columns(structures: list[str]) -> dict[str, str]:
    """The board's metric columns and their display labels: Dice per structure, Dice mean, then `METRICS`, `MORE_METRICS` and
    `LATER_METRICS`."""
    return {**{f"dice_{s}": f"Dice {s.upper()}" for s in structures}, "dice_mean": "Dice mean", **METRICS, **MORE_METRICS, **LATER_METRICS}


def board_metrics(frame: pd.DataFrame) -> dict[str, str]:
    """`metric_columns` of a board: its structures are the `dice_<name>` columns that have an interval column."""
    structures = [c.removeprefix("dice_") for c in frame.columns if c.startswith("dice_") and f"{c}_ci" in frame and c != "dice_mean"]
    return metric_columns(structures)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def machine_kind(record: Record) -> str:
    """The kind of machine a record ran on: its GPU's name on a GPU, else its CPU kind (`bench.device.cpu_kind`), '' where
    the record does not say (records written before CPU kinds were recorded). Numbers and costs compare within a kind."""
    device = record.provenance.get("device") or {}
    return str(device.get("gpu") if device.get("kind") == "cuda" else device.get("cpu") or "")


def work_macs(cost: dict[str, Any]) -> float:
    """A record's compute work: `cost.forward_macs` + `cost.backward_macs` (`bench.work`), NaN in a record made before them."""
    return _num(cost.get("forward_macs")) + _num(cost.get("backward_macs"))


def _values(record: Record) -> dict[str, float]:
    """One ok record's numbers for the board (NaN where the record has none, e.g. no detector)."""
    m = record.metrics
    dice = m.get("dice") or {}
    det = m.get("detection") or {}
    corrupted = (m.get("refurbishment") or {}).get("corrupted") or {}
    before = after = math.nan
    if corrupted.get("n"):
        before, after = _num(corrupted.get("label_dice_before")), _num(corrupted.get("label_dice_after"))
    cost = record.cost
    seconds = _num(cost.get("wall_s"))
    if record.provenance.get("device", {}).get("kind") == "cpu" and math.isfinite(_num(cost.get("cpu_s"))):
        seconds = _num(cost["cpu_s"])  # a CPU trial's CPU seconds: its wall time also counts whatever else ran beside it
    return {
        "dice_mean": math.nan,  # unless the record has one
        **{f"dice_{k}": _num(v) for k, v in dice.items()},
        "hd95": _num((m.get("hd95") or {}).get("mean")),
        **{f"det_{k}": _num(det.get(k)) for k in ("precision", "recall", "f1", "ap", "auroc")},
        "det_p_at_budget": _num(det.get("precision_at_budget")),
        "refurb_before": before,
        "refurb_after": after,
        "refurb_gain": after - before,
        "ef_error": _num((m.get("clinical") or {}).get("ef_abs_error_mean")),
        "cost_s": seconds if not math.isnan(seconds) else _num(cost.get("train_s")),
        "work": work_macs(cost),
        "lost": float(board_stats.lost_structure(dice)),
    }


def mean_interval(values: Any) -> tuple[float, float, int]:
    """Mean, 95% t-interval half-width (n - 1 dof; NaN for n < 2) and n of the finite values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(v[0]), math.nan, 1
    half = float(stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n))
    return float(v.mean()), half, n


def paired_seeds(method: dict[int, float], baseline: dict[int, float]) -> list[int]:
    """The seeds both have, with a finite value in both, in order: the pairs of a paired comparison."""
    return sorted(s for s in method if s in baseline and np.isfinite(method[s]) and np.isfinite(baseline[s]))


def _paired(method: dict[int, float], baseline: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    """The values of method and baseline on the seeds both have (finite in both), in seed order."""
    seeds = paired_seeds(method, baseline)
    return np.array([method[s] for s in seeds], dtype=float), np.array([baseline[s] for s in seeds], dtype=float)


def paired_sd(method: dict[int, float], baseline: dict[int, float]) -> float:
    """Standard deviation (n - 1) of the per-seed differences method - baseline over the seeds both have; NaN under 2 seeds."""
    a, b = _paired(method, baseline)
    return float(np.std(a - b, ddof=1)) if len(a) >= 2 else math.nan


def paired_difference(method: dict[int, float], baseline: dict[int, float]) -> tuple[float, float, float, int]:
    """Mean per-seed difference method - baseline over the seeds both have, its 95% half-width, paired t-test p, n."""
    a, b = _paired(method, baseline)
    mean, half, n = mean_interval(a - b)
    p = math.nan
    if n >= 2:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # identical differences: zero variance, p undefined
            p = float(stats.ttest_rel(a, b).pvalue)
    return mean, half, p, n


def _frame(records: list[Record], metrics: dict[str, str]) -> pd.DataFrame:
    _refuse_duplicates([(r.cell.label, r) for r in records])
    rows = []
    for r in records:
        p, noise = r.protocol, r.noise
        params = noise["spec"].partition(",")[2]  # the canonical spec names only non-default parameters
        rows.append(
            {
                "protocol": p["name"],
                "version": p["version"],
                "hash": p["hash"],
                "method": r.method["name"],
                "reference": board_stats.is_reference(r.method),
                "noise": noise["spec"],
                "noise_type": noise["type"],
                "noise_params": params,
                "noise_level": _num(noise["level"]),
                "seed": r.seed,
                "ok": r.ok,
                "machine": machine_kind(r),
                "prevalence": _num(noise.get("n_corrupted")) / _num(r.dataset.get("n_train")) if r.dataset.get("n_train") else math.nan,
                **(_values(r) if r.ok else {}),
            }
        )
    frame = pd.DataFrame(rows)
    for col in [*metrics, "cost_s", "work", "lost"]:
        if col not in frame.columns:
            frame[col] = math.nan
    return frame


def board(records: list[Record]) -> pd.DataFrame:
    """One row per (protocol, version, hash, method, noise spec): means and 95% intervals over seeds, rank, gain over baseline.

    Columns: the key, `noise_type`, `noise_level`, `noise_params` (for plots), `n` (ok seeds),
    `failed`, `rank` (1 = highest mean Dice within a protocol group and noise spec, among the
    methods: references are not ranked), for every metric of `metric_columns` (Dice of each
    structure the records report, Dice mean, then METRICS, then MORE_METRICS at the end) its
    mean and `<metric>_ci` (half-width of the 95% t-interval; NaN with one seed), and against
    `baseline` at the same noise spec: `delta_dice` (mean per-seed difference in mean Dice),
    `delta_dice_ci`, `delta_p` (paired t-test), `delta_n` (paired seeds). `cost_rel` is each
    seed's CPU seconds (`cost.cpu_s`, on a CPU trial that has them) or else wall time (training time when absent) over
    baseline's mean at the same noise spec on the same machine kind (`machine_kind`; NaN where baseline has no record there).

    Added after v1, at the end: `reference` (shown, never ranked, not in the correction),
    `det_ap_chance` (AP's chance level: the cell's prevalence n_corrupted / n_train, where
    the method has an AP), `delta_sd` (sd of the paired differences), `delta_mdd` (this pair's
    minimum detectable difference, `bench.board_stats`), `delta_p_holm` (Holm-adjusted p
    within the spec over the methods with a p-value), `delta_holm_reject` (adjusted p <= 0.05),
    and per spec (the same on each of its rows): `spec_sd` (pooled paired sd over the
    methods' pairs), `spec_n` (the fewest paired seeds among them), `spec_mdd` (the MDD of a
    pair with spec_n seeds and spec_sd), `spec_seeds_for_target` (seeds for an MDD of at most
    `board_stats.MDD_TARGET`). Added after v2, at the end: `lost` (the ok seeds in which some
    structure's test Dice is below `board_stats.LOST_BELOW`). Added after v3, at the end: `delta_across_machines` (paired
    seeds whose method and baseline records ran on different machine kinds) and `machines` (the row's machine kinds,
    comma-joined; empty where no record names one). Added after v4, at the end, where some record counts its work: `work_rel`
    and its interval (LATER_METRICS).
    Rows are sorted by protocol, noise (none first), rank, references last.
    """
    if not records:
        raise BenchError("no records to put on a board")
    metrics = metric_columns(record_structures(records))
    frame = _frame(records, metrics)
    ok = frame[frame["ok"]]
    base = ok[ok["method"] == BASELINE]
    base_cost = base.groupby([*GROUP, "noise", "machine"])["cost_s"].mean()
    base_work = base.groupby([*GROUP, "noise"])["work"].mean()  # the same on every machine: no kind to match
    by_spec = dict(list(base.groupby([*GROUP, "noise"])))
    baseline_dice = {k: dict(zip(b["seed"], b["dice_mean"], strict=True)) for k, b in by_spec.items()}
    baseline_machine = {k: dict(zip(b["seed"], b["machine"], strict=True)) for k, b in by_spec.items()}
    rows = []
    for key, g in frame.groupby(KEY, sort=False):
        good = g[g["ok"]]
        first = g.iloc[0]
        row: dict[str, Any] = dict(zip(KEY, key, strict=True))
        row.update(noise_type=first["noise_type"], noise_level=first["noise_level"], noise_params=first["noise_params"])
        row.update(n=len(good), failed=int((~g["ok"]).sum()), reference=bool(g["reference"].any()), lost=int(good["lost"].sum()))
        # a seed's cost over baseline's mean cost at the spec on the same machine kind (NaN where baseline has none there)
        cost = pd.Series([base_cost.get((*key[:3], key[4], m), math.nan) for m in good["machine"]], index=good.index, dtype=float)
        work = base_work.get((*key[:3], key[4]), math.nan)
        for col in metrics:
            values = good["cost_s"] / cost if col == "cost_rel" else good["work"] / work if col == "work_rel" else good[col]
            row[col], row[f"{col}_ci"], _ = mean_interval(values)
        row["det_ap_chance"] = float(good["prevalence"].mean()) if len(good) and np.isfinite(row["det_ap"]) else math.nan
        base_dice = baseline_dice.get((*key[:3], key[4]))
        if key[3] != BASELINE and base_dice:
            mine = dict(zip(good["seed"], good["dice_mean"], strict=True))
            diff, sd = paired_difference(mine, base_dice), paired_sd(mine, base_dice)
            kinds, base_kinds = dict(zip(good["seed"], good["machine"], strict=True)), baseline_machine[(*key[:3], key[4])]
            across = sum(kinds[s] != base_kinds[s] for s in paired_seeds(mine, base_dice))
        else:
            diff, sd, across = (math.nan, math.nan, math.nan, 0), math.nan, 0
        row["delta_dice"], row["delta_dice_ci"], row["delta_p"], row["delta_n"] = diff
        row["delta_sd"], row["delta_mdd"] = sd, board_stats.min_detectable_difference(sd, diff[3])
        row["delta_across_machines"], row["machines"] = across, ",".join(sorted(set(good["machine"]) - {""}))
        rows.append(row)
    out = _per_spec(pd.DataFrame(rows))
    clean = out["noise_type"] == "none"
    out = out.assign(_clean=~clean).sort_values(
        [*GROUP, "_clean", "noise_type", "noise_params", "noise_level", "rank", "reference", "method"], na_position="last", kind="stable"
    )
    first = [*KEY, "noise_type", "noise_level", "noise_params", "n", "failed", "rank"]
    columns = [c for m in metrics if m not in MORE_METRICS and m not in LATER_METRICS for c in (m, f"{m}_ci")]
    delta = ["delta_dice", "delta_dice_ci", "delta_p", "delta_n"]
    more = [c for m in MORE_METRICS for c in (m, f"{m}_ci")]
    power = ["delta_sd", "delta_mdd", "delta_p_holm", "delta_holm_reject", "spec_sd", "spec_n", "spec_mdd", "spec_seeds_for_target"]
    # a later metric only where some record has it: a board of older records keeps its columns, and its CSV its bytes
    later = [c for m in LATER_METRICS if out[m].notna().any() for c in (m, f"{m}_ci")]
    added = ["lost", "delta_across_machines", "machines", *later]
    return out[[*first, *columns, *delta, "reference", "det_ap_chance", *more, *power, *added]].reset_index(drop=True)


def _per_spec(out: pd.DataFrame) -> pd.DataFrame:
    """`rank`, Holm's correction and the spec's power, each computed within one protocol group and noise spec, over the methods.

    The methods of a spec are its rows that are neither `baseline` nor a reference. Holm's
    family is the methods with a paired p-value; the pooled paired sd pools the methods' pairs
    with at least 2 seeds whose differences are not all equal (sd 0: the method trained as
    baseline did), and `spec_n` is the fewest seeds among those pairs, so the spec's MDD is
    not the optimistic one of its best-replicated pair.
    """
    out = out.copy()
    ranked = out["dice_mean"].where(~out["reference"])
    out["rank"] = ranked.groupby([out[c] for c in [*GROUP, "noise"]]).rank(ascending=False, method="min").astype("Int64")
    for col in ("delta_p_holm", "spec_sd", "spec_mdd", "spec_seeds_for_target"):
        out[col] = math.nan
    out["delta_holm_reject"] = False
    out["spec_n"] = 0
    for _, g in out.groupby([*GROUP, "noise"], sort=False):
        methods = g[(g["method"] != BASELINE) & ~g["reference"]]
        family = methods[methods["delta_p"].notna()]
        if len(family):
            adjusted, reject = board_stats.holm(family["delta_p"].tolist())
            out.loc[family.index, "delta_p_holm"] = adjusted
            out.loc[family.index, "delta_holm_reject"] = reject
        # a pair whose differences are all 0 is baseline's training again (a detector that flagged nothing), not a
        # measurement of how two methods' seeds spread: pooled in, it would shrink the MDD towards 0
        pairs = methods[(methods["delta_n"] >= 2) & (methods["delta_sd"] > 0)]
        sd, _ = board_stats.pooled_sd(pairs["delta_sd"].tolist(), pairs["delta_n"].tolist())
        if np.isfinite(sd):
            n = int(pairs["delta_n"].min())
            out.loc[g.index, "spec_sd"] = sd
            out.loc[g.index, "spec_n"] = n
            out.loc[g.index, "spec_mdd"] = board_stats.min_detectable_difference(sd, n)
            out.loc[g.index, "spec_seeds_for_target"] = board_stats.seeds_for_difference(sd)
    return out


# ---------------------------------------------------------------- rendering


def format_cell(mean: float, half: float, digits: int = 3, pm: str = " ± ") -> str:
    """`mean ± half` at `digits` decimals, `mean` alone without an interval, `-` without a value."""
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{mean:.{digits}f}"
    return text if half is None or pd.isna(half) else f"{text}{pm}{half:.{digits}f}"


def _delta(row: pd.Series, pm: str = " ± ") -> str:
    if pd.isna(row["delta_dice"]):
        return "-"
    sign = "+" if row["delta_dice"] >= 0 else ""
    return sign + format_cell(row["delta_dice"], row["delta_dice_ci"], pm=pm)


def _p(value: float) -> str:
    if pd.isna(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def on_board(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    """`columns` less a LATER_METRICS column that `frame` lacks (a board of records made before it existed)."""
    return [c for c in columns if c not in LATER_METRICS or c in frame]


def shown_columns(frame: pd.DataFrame) -> list[str]:
    """The metric columns a full table shows, in order: Dice per structure and mean, then `_SHOWN_AFTER_DICE` (AP's chance after AP)."""
    labels = board_metrics(frame)
    dice = [c for c in labels if c.startswith("dice_")]
    after = on_board(frame, [c for c in _SHOWN_AFTER_DICE if c in labels])
    return [*dice, *(c for m in after for c in ([m, "det_ap_chance"] if m == "det_ap" else [m]))]


#: digits of the numbers that are not fractions
_DIGITS = {"hd95": 1, "ef_error": 1, "cost_rel": 2, "work_rel": 2}
#: the columns `display_frame` adds after the metrics when a table shows Dice mean
DELTA_LABELS = ("ΔDice vs baseline", "p (paired t)", "p Holm", "MDD 80%")


def _rank(row: pd.Series) -> str:
    if row["reference"]:
        return "ref"
    return "-" if pd.isna(row["rank"]) else str(int(row["rank"]))


def seeds_cell(row: pd.Series) -> str:
    """'5', '5 (2 lost)' when 2 of the ok seeds lost a structure, '4 (+1 failed)' with a failed record, or both."""
    lost = f"{row['lost']} lost" if row["lost"] else ""
    failed = f"+{row['failed']} failed" if row["failed"] else ""
    notes = ", ".join(t for t in (lost, failed) if t)
    return str(row["n"]) + (f" ({notes})" if notes else "")


def display_frame(frame: pd.DataFrame, columns: list[str], pm: str = " ± ") -> pd.DataFrame:
    """Strings for people: rank (`ref` for a reference), method, noise, seeds, the chosen metrics as mean ± half-width, gain over baseline.

    `det_ap_chance` among `columns` is AP's chance level (the prevalence), shown where the
    method has an AP; with `dice_mean` among them the DELTA_LABELS columns follow.
    """
    labels = {**board_metrics(frame), "det_ap_chance": "AP chance"}
    rows = []
    for _, r in frame.iterrows():
        row = {
            "rank": _rank(r),
            "method": str(r["method"]),
            "noise": str(r["noise"]),
            "seeds": seeds_cell(r),
        }
        for c in columns:
            half = math.nan if c == "det_ap_chance" else r[f"{c}_ci"]
            row[labels[c]] = format_cell(r[c], half, _DIGITS.get(c, 3), pm)
        if "dice_mean" in columns:
            shown = (_delta(r, pm), _p(r["delta_p"]), _p(r["delta_p_holm"]), format_cell(r["delta_mdd"], math.nan))
            row.update(zip(DELTA_LABELS, shown, strict=True))
        rows.append(row)
    return pd.DataFrame(rows)


def power_table(g: pd.DataFrame) -> pd.DataFrame:
    """Per noise spec of one protocol group: the methods compared, paired seeds, pooled paired sd, MDD, target met, seeds for
    the target, Holm-significant methods and, where the records name their machine kind, the pairs whose two records ran
    on different kinds (their difference carries the kinds' floating-point difference)."""
    rows = []
    for noise, s in g.groupby("noise", sort=False):
        first = s.iloc[0]
        methods = s[(s["method"] != BASELINE) & ~s["reference"]]
        significant = int(methods["delta_holm_reject"].sum())
        mdd = first["spec_mdd"]
        met = "-" if pd.isna(mdd) else ("yes" if mdd <= board_stats.MDD_TARGET else "no")
        seeds = first["spec_seeds_for_target"]
        rows.append(
            {
                "noise": str(noise),
                "methods": str(len(methods)),
                "paired seeds": str(first["spec_n"]) if first["spec_n"] else "-",
                "paired sd": format_cell(first["spec_sd"], math.nan, 4),
                "MDD 80%": format_cell(mdd, math.nan),
                f"MDD <= {board_stats.MDD_TARGET:g}": met,
                f"seeds for {board_stats.MDD_TARGET:g}": "-" if pd.isna(seeds) else str(int(seeds)),
                "Holm-significant": f"{significant} of {int(methods['delta_p_holm'].notna().sum())}",
            }
        )
        if (g["machines"] != "").any():  # records that name their machine kind (boards after v3)
            rows[-1]["pairs across machine kinds"] = f"{int(methods['delta_across_machines'].sum())} of {int(methods['delta_n'].sum())}"
    return pd.DataFrame(rows)


POWER_NOTE = (
    f"MDD: the smallest true difference in mean Dice against baseline that a two-sided paired t-test at {board_stats.ALPHA:g} "
    f"detects with {board_stats.POWER:.0%} power, (t_0.975,n-1 + t_0.80,n-1) * s / sqrt(n), s the paired sd pooled over the spec's "
    "methods, n their fewest paired seeds; p Holm: paired p-values Holm-corrected over the spec's methods; references are not ranked "
    "and not corrected"
)


def protocol_groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per protocol name, version and hash of a board: the groups that are never pooled."""
    if frame.empty:
        raise BenchError("the board is empty: no records")
    return [(f"{name} v{version} (hash {h})", g) for (name, version, h), g in frame.groupby(GROUP, sort=False)]


TABLE_NOTE = (
    "mean ± 95% t-interval over seeds; Dice, HD95 and EF on the clean test labels; "
    "rank by mean Dice per noise spec (references: ref, not ranked); "
    f"seeds (k lost): k of them lost a structure (its test Dice below {board_stats.LOST_BELOW:g})"
)


def _rich_tables(frame: pd.DataFrame) -> list[Table]:
    tables = []
    dice = [c for c in board_metrics(frame) if c.startswith("dice_")]
    for title, g in protocol_groups(frame):
        for part, columns in {"Dice": dice, **_CONSOLE_PARTS}.items():
            shown = display_frame(g, on_board(frame, columns), pm="±")  # compact: fits a 160-column terminal
            table = Table(title=f"{title}: {part}", caption=TABLE_NOTE if part == "Dice" else None, title_justify="left")
            for col in shown.columns:
                table.add_column(col, justify="left" if col in ("method", "noise") else "right", no_wrap=col in ("method", "noise"))
            for values in shown.itertuples(index=False):
                table.add_row(*values)
            tables.append(table)
    return tables


def _markdown(frame: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    def table(shown: pd.DataFrame, left: tuple[str, ...]) -> list[str]:
        out = ["| " + " | ".join(esc(c) for c in shown.columns) + " |"]
        out.append("|" + "|".join("---" if c in left else "---:" for c in shown.columns) + "|")
        return out + ["| " + " | ".join(esc(v) for v in values) + " |" for values in shown.itertuples(index=False)]

    out = [f"<!-- generated by `bench leaderboard`; {TABLE_NOTE} -->", ""]
    for title, g in protocol_groups(frame):
        out += [f"### {esc(title)}", "", *table(display_frame(g, shown_columns(frame)), ("method", "noise")), ""]
        out += [f"Power per noise spec ({esc(POWER_NOTE)}):", "", *table(power_table(g), ("noise",)), ""]
    return "\n".join(out)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """`text` with LaTeX's special characters escaped, for use in a tabular."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _latex(frame: pd.DataFrame) -> str:
    out = [f"% generated by bench leaderboard; {TABLE_NOTE}; needs \\usepackage{{booktabs}}"]
    for title, g in protocol_groups(frame):
        shown = display_frame(g, shown_columns(frame), pm=" \\pm ")
        header = [latex_escape(c).replace("Δ", "$\\Delta$") for c in shown.columns]
        numeric = {*board_metrics(frame).values(), "ΔDice vs baseline"}
        align = "".join("l" if c in ("method", "noise") else "r" for c in shown.columns)
        out += [f"% {latex_escape(title)}", f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + " \\\\", "\\midrule"]
        for values in shown.itertuples(index=False):
            cells = []
            for col, value in zip(shown.columns, values, strict=True):
                cells.append(f"${value}$" if col in numeric and value != "-" else latex_escape(value))
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The board as text in `fmt`: table (rich, plain text), md, csv (every column, raw numbers), html (one file) or latex."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "md":
        return _markdown(frame)
    if fmt == "latex":
        return _latex(frame)
    if fmt == "html":
        from bench.board_html import page

        return page(frame)
    if fmt == "table":
        console = Console(file=io.StringIO(), width=240, color_system=None, force_terminal=False)
        for table in _rich_tables(frame):
            console.print(table)
        return console.file.getvalue()
    raise BenchError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")


def print_tables(frame: pd.DataFrame, console: Console) -> None:
    """Print the board as rich tables on `console` (what `bench leaderboard` shows by default)."""
    for table in _rich_tables(frame):
        console.print(table)
