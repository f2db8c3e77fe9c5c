"""The leaderboard: result records in, one aggregated board out, rendered as a table, Markdown, CSV, LaTeX or HTML.

Records are the unit of truth and the board is derived from them, never edited. Records of
different protocol versions or hashes never share a row: a row is one (protocol name,
version, hash, method, noise spec). Only `status: ok` records feed the numbers; failed ones
are counted. Every number is a mean over seeds with a 95% t-interval (n - 1 degrees of
freedom), and a method's gain over `baseline` in mean Dice comes with a paired t-test over
the seeds both ran, so a reader sees how much of a difference is noise.
"""

from __future__ import annotations

import html
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
#: the console splits a board into three tables (the first: Dice), so that each fits a 160-column terminal
_CONSOLE_PARTS = {
    "detection and refurbishment": ["det_precision", "det_recall", "det_f1", "det_ap", "det_auroc", "refurb_gain"],
    "distance, clinical, cost": ["hd95", "ef_error", "cost_rel"],
}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


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
    """The board's metric columns and their display labels: Dice per structure, Dice mean, then `METRICS`."""
    return {**{f"dice_{s}": f"Dice {s.upper()}" for s in structures}, "dice_mean": "Dice mean", **METRICS}


def _board_metrics(frame: pd.DataFrame) -> dict[str, str]:
    """`metric_columns` of a board: its structures are the `dice_<name>` columns that have an interval column."""
    structures = [c.removeprefix("dice_") for c in frame.columns if c.startswith("dice_") and f"{c}_ci" in frame and c != "dice_mean"]
    return metric_columns(structures)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _values(record: Record) -> dict[str, float]:
    """One ok record's numbers for the board (NaN where the record has none, e.g. no detector)."""
    m = record.metrics
    dice = m.get("dice") or {}
    det = m.get("detection") or {}
    corrupted = (m.get("refurbishment") or {}).get("corrupted") or {}
    gain = math.nan
    if corrupted.get("n"):
        gain = _num(corrupted.get("label_dice_after")) - _num(corrupted.get("label_dice_before"))
    cost = record.cost
    wall = _num(cost.get("wall_s"))
    return {
        "dice_mean": math.nan,  # unless the record has one
        **{f"dice_{k}": _num(v) for k, v in dice.items()},
        "hd95": _num((m.get("hd95") or {}).get("mean")),
        **{f"det_{k}": _num(det.get(k)) for k in ("precision", "recall", "f1", "ap", "auroc")},
        "refurb_gain": gain,
        "ef_error": _num((m.get("clinical") or {}).get("ef_abs_error_mean")),
        "cost_s": wall if not math.isnan(wall) else _num(cost.get("train_s")),
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


def paired_difference(method: dict[int, float], baseline: dict[int, float]) -> tuple[float, float, float, int]:
    """Mean per-seed difference method - baseline over the seeds both have, its 95% half-width, paired t-test p, n."""
    seeds = sorted(s for s in method if s in baseline and np.isfinite(method[s]) and np.isfinite(baseline[s]))
    a = np.array([method[s] for s in seeds], dtype=float)
    b = np.array([baseline[s] for s in seeds], dtype=float)
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
                "noise": noise["spec"],
                "noise_type": noise["type"],
                "noise_params": params,
                "noise_level": _num(noise["level"]),
                "seed": r.seed,
                "ok": r.ok,
                **(_values(r) if r.ok else {}),
            }
        )
    frame = pd.DataFrame(rows)
    for col in [*metrics, "cost_s"]:
        if col not in frame.columns:
            frame[col] = math.nan
    return frame


def board(records: list[Record]) -> pd.DataFrame:
    """One row per (protocol, version, hash, method, noise spec): means and 95% intervals over seeds, rank, gain over baseline.

    Columns: the key, `noise_type`, `noise_level`, `noise_params` (for plots), `n` (ok seeds),
    `failed`, for every metric of `metric_columns` (Dice of each structure the records report,
    Dice mean, then METRICS) its mean and `<metric>_ci` (half-width of the 95%
    t-interval; NaN with one seed), `rank` (1 = highest mean Dice within a protocol group and
    noise spec), and against `baseline` at the same noise spec: `delta_dice` (mean per-seed
    difference in mean Dice), `delta_dice_ci`, `delta_p` (paired t-test), `delta_n` (paired
    seeds). `cost_rel` is each seed's wall time (training time when absent) over baseline's
    mean at the same noise spec. Rows are sorted by protocol, noise (none first) and rank.
    """
    if not records:
        raise BenchError("no records to put on a board")
    metrics = metric_columns(record_structures(records))
    frame = _frame(records, metrics)
    ok = frame[frame["ok"]]
    base = ok[ok["method"] == BASELINE]
    base_cost = base.groupby([*GROUP, "noise"])["cost_s"].mean()
    baseline_dice = {k: dict(zip(b["seed"], b["dice_mean"], strict=True)) for k, b in base.groupby([*GROUP, "noise"])}
    rows = []
    for key, g in frame.groupby(KEY, sort=False):
        good = g[g["ok"]]
        first = g.iloc[0]
        row: dict[str, Any] = dict(zip(KEY, key, strict=True))
        row.update(noise_type=first["noise_type"], noise_level=first["noise_level"], noise_params=first["noise_params"])
        row.update(n=len(good), failed=int((~g["ok"]).sum()))
        cost = base_cost.get((*key[:3], key[4]), math.nan)
        for col in metrics:
            values = good["cost_s"] / cost if col == "cost_rel" else good[col]
            row[col], row[f"{col}_ci"], _ = mean_interval(values)
        base_dice = baseline_dice.get((*key[:3], key[4]))
        if key[3] != BASELINE and base_dice:
            diff = paired_difference(dict(zip(good["seed"], good["dice_mean"], strict=True)), base_dice)
        else:
            diff = (math.nan, math.nan, math.nan, 0)
        row["delta_dice"], row["delta_dice_ci"], row["delta_p"], row["delta_n"] = diff
        rows.append(row)
    out = pd.DataFrame(rows)
    out["rank"] = out.groupby([*GROUP, "noise"])["dice_mean"].rank(ascending=False, method="min").astype("Int64")
    clean = out["noise_type"] == "none"
    out = out.assign(_clean=~clean).sort_values(
        [*GROUP, "_clean", "noise_type", "noise_params", "noise_level", "rank", "method"], na_position="last", kind="stable"
    )
    first = [*KEY, "noise_type", "noise_level", "noise_params", "n", "failed", "rank"]
    columns = [c for m in metrics for c in (m, f"{m}_ci")]
    return out[[*first, *columns, "delta_dice", "delta_dice_ci", "delta_p", "delta_n"]].reset_index(drop=True)


# ---------------------------------------------------------------- rendering


def _cell(mean: float, half: float, digits: int = 3, pm: str = " ± ") -> str:
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{mean:.{digits}f}"
    return text if half is None or pd.isna(half) else f"{text}{pm}{half:.{digits}f}"


def _delta(row: pd.Series, pm: str = " ± ") -> str:
    if pd.isna(row["delta_dice"]):
        return "-"
    sign = "+" if row["delta_dice"] >= 0 else ""
    return sign + _cell(row["delta_dice"], row["delta_dice_ci"], pm=pm)


def _p(value: float) -> str:
    if pd.isna(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _display(frame: pd.DataFrame, columns: list[str], pm: str = " ± ") -> pd.DataFrame:
    """Strings for people: rank, method, noise, seeds, the chosen metrics as mean ± half-width, gain over baseline."""
    labels = _board_metrics(frame)
    rows = []
    for _, r in frame.iterrows():
        row = {
            "rank": "-" if pd.isna(r["rank"]) else str(int(r["rank"])),
            "method": str(r["method"]),
            "noise": str(r["noise"]),
            "seeds": str(r["n"]) + (f" (+{r['failed']} failed)" if r["failed"] else ""),
        }
        digits = {"hd95": 1, "ef_error": 1, "cost_rel": 2}
        row.update({labels[c]: _cell(r[c], r[f"{c}_ci"], digits.get(c, 3), pm) for c in columns})
        if "dice_mean" in columns:
            row["ΔDice vs baseline"] = _delta(r, pm)
            row["p (paired t)"] = _p(r["delta_p"])
        rows.append(row)
    return pd.DataFrame(rows)


def _groups(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if frame.empty:
        raise BenchError("the board is empty: no records")
    return [(f"{name} v{version} (hash {h})", g) for (name, version, h), g in frame.groupby(GROUP, sort=False)]


_NOTE = "mean ± 95% t-interval over seeds; Dice, HD95 and EF on the clean test labels; rank by mean Dice per noise spec"


def _rich_tables(frame: pd.DataFrame) -> list[Table]:
    tables = []
    dice = [c for c in _board_metrics(frame) if c.startswith("dice_")]
    for title, g in _groups(frame):
        for part, columns in {"Dice": dice, **_CONSOLE_PARTS}.items():
            shown = _display(g, columns, pm="±")  # compact: fits a 160-column terminal
            table = Table(title=f"{title}: {part}", caption=_NOTE if part == "Dice" else None, title_justify="left")
            for col in shown.columns:
                table.add_column(col, justify="left" if col in ("method", "noise") else "right", no_wrap=col in ("method", "noise"))
            for values in shown.itertuples(index=False):
                table.add_row(*values)
            tables.append(table)
    return tables


def _markdown(frame: pd.DataFrame) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"<!-- generated by `bench leaderboard`; {_NOTE} -->", ""]
    for title, g in _groups(frame):
        shown = _display(g, list(_board_metrics(frame)))
        out += [f"### {esc(title)}", ""]
        out.append("| " + " | ".join(esc(c) for c in shown.columns) + " |")
        out.append("|" + "|".join("---" if c in ("method", "noise") else "---:" for c in shown.columns) + "|")
        out += ["| " + " | ".join(esc(v) for v in values) + " |" for values in shown.itertuples(index=False)]
        out.append("")
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
    out = [f"% generated by bench leaderboard; {_NOTE}; needs \\usepackage{{booktabs}}"]
    for title, g in _groups(frame):
        shown = _display(g, list(_board_metrics(frame)), pm=" \\pm ")
        header = [latex_escape(c).replace("Δ", "$\\Delta$") for c in shown.columns]
        numeric = {*_board_metrics(frame).values(), "ΔDice vs baseline"}
        align = "".join("l" if c in ("method", "noise") else "r" for c in shown.columns)
        out += [f"% {latex_escape(title)}", f"\\begin{{tabular}}{{{align}}}", "\\toprule", " & ".join(header) + " \\\\", "\\midrule"]
        for values in shown.itertuples(index=False):
            cells = []
            for col, value in zip(shown.columns, values, strict=True):
                cells.append(f"${value}$" if col in numeric and value != "-" else latex_escape(value))
            out.append(" & ".join(cells) + " \\\\")
        out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if not np.isfinite(lo) or not np.isfinite(hi):
        return [0.0, 1.0]
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    raw = (hi - lo) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t < hi + step * 0.999:
        ticks.append(round(t, 10))
        t += step
    return ticks


def svg_line_plot(
    series: dict[str, list[tuple[float, float, float]]],
    colors: dict[str, str],
    title: str,
    x_label: str,
    y_label: str,
    y_bounds: tuple[float, float] | None = None,
) -> str:
    """A small self-contained SVG line plot: one line per name through (x, mean) points, ± half-width whiskers, a legend.

    Lines at the same x are nudged apart by a few pixels so that equal values stay visible;
    `y_bounds` clips the axis (and whiskers) to a metric's range, e.g. (0, 1) for Dice.
    """
    width, height, left, right, top, bottom = 460, 250, 52, 130, 26, 42
    pw, ph = width - left - right, height - top - bottom
    lo_bound, hi_bound = y_bounds or (-math.inf, math.inf)
    points = [(x, y, 0.0 if pd.isna(h) else h) for pts in series.values() for x, y, h in pts]
    xs = [x for x, _, _ in points] or [0.0, 1.0]
    lows = [max(y - h, lo_bound) for _, y, h in points] or [0.0]
    highs = [min(y + h, hi_bound) for _, y, h in points] or [1.0]
    x_ticks = _nice_ticks(min(0.0, *xs), max(xs) if max(xs) > 0 else 1.0)
    y_ticks = [t for t in _nice_ticks(min(lows), max(highs)) if lo_bound - 1e-9 <= t <= hi_bound + 1e-9]
    if len(y_ticks) < 2:
        y_ticks = _nice_ticks(min(lows), max(highs))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], min(y_ticks[0], *lows), max(y_ticks[-1], *highs)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (min(max(y, y0), y1) - y0) / (y1 - y0) * ph

    esc = html.escape
    parts = [
        f'<svg class="plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{esc(title)}">',
        f'<text x="{left + pw / 2:.1f}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
    ]
    for t in x_ticks:
        parts.append(f'<line x1="{sx(t):.1f}" y1="{top + ph}" x2="{sx(t):.1f}" y2="{top + ph + 4}" stroke="#888"/>')
        parts.append(f'<text x="{sx(t):.1f}" y="{top + ph + 16}" text-anchor="middle" font-size="10">{t:g}</text>')
    for t in y_ticks:
        parts.append(f'<line x1="{left}" y1="{sy(t):.1f}" x2="{left + pw}" y2="{sy(t):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 5}" y="{sy(t) + 3:.1f}" text-anchor="end" font-size="10">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" font-size="11">{esc(x_label)}</text>')
    parts.append(
        f'<text x="14" y="{top + ph / 2:.1f}" text-anchor="middle" font-size="11" transform="rotate(-90 14 {top + ph / 2:.1f})">'
        f"{esc(y_label)}</text>"
    )
    for i, (name, pts) in enumerate(series.items()):
        color = colors[name]
        dx = (i - (len(series) - 1) / 2) * 3.0
        pts = sorted(pts)
        if len(pts) > 1:
            path = " ".join(f"{sx(x) + dx:.1f},{sy(y):.1f}" for x, y, _ in pts)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y, h in pts:
            cx = sx(x) + dx
            if not pd.isna(h):
                parts.append(f'<line x1="{cx:.1f}" y1="{sy(y - h):.1f}" x2="{cx:.1f}" y2="{sy(y + h):.1f}" stroke="{color}"/>')
            tip = f"{esc(name)}: level {x:g}, {y:.3f}" + ("" if pd.isna(h) else f" ± {h:.3f}")
            parts.append(f'<circle cx="{cx:.1f}" cy="{sy(y):.1f}" r="3" fill="{color}"><title>{tip}</title></circle>')
        ly = top + 10 + 16 * i
        parts.append(f'<line x1="{left + pw + 10}" y1="{ly}" x2="{left + pw + 28}" y2="{ly}" stroke="{color}" stroke-width="2"/>')
        parts.append(f'<text x="{left + pw + 32}" y="{ly + 4}" font-size="11">{esc(name)}</text>')
    if not series:
        parts.append(f'<text x="{left + pw / 2:.1f}" y="{top + ph / 2:.1f}" text-anchor="middle" font-size="11">no data</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _plots(g: pd.DataFrame) -> list[str]:
    """Per noise family (type and its non-level parameters): Dice (mean) and detection AP against level; `none` is level 0."""
    methods = list(dict.fromkeys(g.sort_values("method")["method"]))
    colors = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(methods)}
    clean = g[g["noise_type"] == "none"]
    figures = []
    for (kind, params), family in g[g["noise_type"] != "none"].groupby(["noise_type", "noise_params"], sort=True):
        rows = pd.concat([clean, family])
        name = kind + (f" ({params})" if params else "")
        for col, label in (("dice_mean", "Dice (mean)"), ("det_ap", "detection AP")):
            series = {}
            for method in methods:
                m = rows[(rows["method"] == method) & rows[col].notna()]
                if len(m):
                    series[method] = [
                        (float(x), float(y), float(h)) for x, y, h in zip(m["noise_level"], m[col], m[f"{col}_ci"], strict=True)
                    ]
            figures.append(
                svg_line_plot(series, colors, f"{label}: {name}", "noise level (fraction of samples corrupted)", label, (0.0, 1.0))
            )
    return figures


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0 1em}"
    "th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}th{border-bottom:2px solid #444}"
    "td.l,th.l{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:12px}p.note{color:#555;font-size:13px}"
)


def _html(frame: pd.DataFrame) -> str:
    esc = html.escape
    body = []
    for title, g in _groups(frame):
        shown = _display(g, list(_board_metrics(frame)))
        body.append(f"<h2>{esc(title)}</h2>")
        left = {"method", "noise"}
        head = "".join(f'<th class="l">{esc(c)}</th>' if c in left else f"<th>{esc(c)}</th>" for c in shown.columns)
        rows = [
            "<tr>"
            + "".join(
                f'<td class="l">{esc(v)}</td>' if c in left else f"<td>{esc(v)}</td>" for c, v in zip(shown.columns, values, strict=True)
            )
            + "</tr>"
            for values in shown.itertuples(index=False)
        ]
        body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")
        plots = _plots(g)
        if plots:
            body.append('<p class="note">Points: mean over seeds; whiskers: 95% t-interval; level 0 is the clean run (noise none).</p>')
            body.append('<div class="plots">\n' + "\n".join(plots) + "\n</div>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>echo-noise-bench leaderboard</title>\n'
        f'<style>{_CSS}</style>\n</head>\n<body>\n<h1>echo-noise-bench leaderboard</h1>\n<p class="note">{esc(_NOTE)}.</p>\n'
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def render(frame: pd.DataFrame, fmt: str) -> str:
    """The board as text in `fmt`: table (rich, plain text), md, csv (every column, raw numbers), html (one file) or latex."""
    if fmt == "csv":
        return frame.to_csv(index=False)
    if fmt == "md":
        return _markdown(frame)
    if fmt == "latex":
        return _latex(frame)
    if fmt == "html":
        return _html(frame)
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
