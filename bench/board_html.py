"""The board as one HTML page that fits a laptop screen and opens from disk, and the index page of every board.

Per protocol group the page shows, top to bottom: a heatmap of each method's difference in
mean Dice to `baseline` at every noise spec (Holm-significant cells marked, references below
the methods, the spec's minimum detectable difference under it), the full numbers in tabs, one
tab per metric group and one table per noise family in each (sortable by a click on a column
header), then the figures (`bench.board_plots`, matplotlib SVG inlined). Wide tables scroll
inside their own box, never the page. Everything is in the file: the CSS, the SVG, and a
few lines of inline JavaScript for sorting (the tabs are CSS only, so the page reads without
scripts too); nothing is fetched.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

from bench import board_plots, board_stats
from bench.leaderboard import (
    BASELINE,
    DELTA_LABELS,
    POWER_NOTE,
    TABLE_NOTE,
    board_metrics,
    display_frame,
    format_cell,
    on_board,
    power_table,
    protocol_groups,
)

#: the tabs of a group's numbers: name -> metric columns (Dice adds the delta columns; the names of `board_metrics`)
TABS: dict[str, list[str]] = {
    "Dice": [],  # filled per board: the Dice columns of its structures
    "Detection": ["det_precision", "det_recall", "det_f1", "det_ap", "det_ap_chance", "det_auroc", "det_p_at_budget"],
    "Refurbishment": ["refurb_before", "refurb_after", "refurb_gain"],
    "Distance, clinical, cost": ["hd95", "ef_error", "cost_rel", "work_rel"],
}
#: heatmap colours: negative (worse than baseline) to positive (better)
_NEGATIVE, _POSITIVE = (178, 24, 43), (33, 102, 172)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px 24px;color:#222;max-width:1340px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 4px;border-bottom:1px solid #ccc}h3{font-size:15px;margin:18px 0 4px}
h4{font-size:13px;margin:12px 0 2px}p.note{color:#555;font-size:12px;margin:4px 0;max-width:1100px}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;font-size:12px;margin:4px 0 10px}
th,td{padding:2px 7px;border-bottom:1px solid #e2e2e2;text-align:right;white-space:nowrap}
th{border-bottom:2px solid #555;background:#fafafa}td.l,th.l{text-align:left}
table.sortable th{cursor:pointer}table.sortable th:hover{background:#eef}
th.asc::after{content:" \\25B2";font-size:9px}th.desc::after{content:" \\25BC";font-size:9px}
tr.ref td{color:#666;font-style:italic}tr.ref td.l:first-child::after{content:" (reference)"}
table.heat td,table.heat th{min-width:52px;text-align:center}table.heat td.l,table.heat th.l{text-align:left}
table.heat td.sig{font-weight:bold}
table.heat tfoot td{background:#f6f6f6;color:#444}
.tabs{margin-top:6px}.tabs>input{display:none}
.tabs>label{display:inline-block;padding:5px 12px;border:1px solid #bbb;border-bottom:none;border-radius:4px 4px 0 0;
margin-right:2px;cursor:pointer;font-size:13px;background:#f0f0f0}
.tabs>input:checked+label{background:#fff;font-weight:bold}
.tabs>.panel{display:none;border-top:1px solid #bbb;padding-top:4px}
.tabs>input:nth-of-type(1):checked~.panel:nth-of-type(1),.tabs>input:nth-of-type(2):checked~.panel:nth-of-type(2),
.tabs>input:nth-of-type(3):checked~.panel:nth-of-type(3),.tabs>input:nth-of-type(4):checked~.panel:nth-of-type(4),
.tabs>input:nth-of-type(5):checked~.panel:nth-of-type(5){display:block}
figure{margin:10px 0 18px}figcaption{font-size:12px;color:#555;max-width:1100px}
svg.plot{max-width:100%;height:auto;display:block}
.figrow{display:flex;flex-wrap:wrap;gap:8px}.figrow figure{flex:1 1 600px;min-width:0}
"""

#: sort a table by a click on its header: numbers by the cell's data-v (empty = no value, always last), text otherwise
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var desc = !th.classList.contains("desc");
      table.querySelectorAll("thead th").forEach(function (o) { o.classList.remove("asc", "desc"); });
      th.classList.add(desc ? "desc" : "asc");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        if (x === null || y === null) {
          var s = a.cells[col].textContent.localeCompare(b.cells[col].textContent);
          return desc ? -s : s;
        }
        if (x === "") return y === "" ? 0 : 1;
        if (y === "") return -1;
        return desc ? y - x : x - y;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""

esc = html.escape


def _value(v: object) -> str:
    """A cell's data-v: the raw number as text (repr-exact), empty for a missing one."""
    try:
        number = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else repr(number)


def _mix(delta: float, scale: float) -> str:
    """The heatmap colour of `delta`: white at 0, full `_POSITIVE` / `_NEGATIVE` at ±scale, linear between."""
    if pd.isna(delta):
        return "#ffffff"
    f = min(abs(delta) / scale, 1.0) * 0.75
    target = _POSITIVE if delta > 0 else _NEGATIVE
    r, g, b = (round(255 + (t - 255) * f) for t in target)
    return f"#{r:02x}{g:02x}{b:02x}"


def _spec_columns(g: pd.DataFrame) -> list[tuple[str, list[pd.Series]]]:
    """The noise specs of a group in board order, grouped by family: (family title, one row per spec)."""
    specs = g.drop_duplicates("noise")
    out: dict[str, list[pd.Series]] = {}
    for _, s in specs.iterrows():
        family = "none" if s["noise_type"] == "none" else s["noise_type"] + (f" ({s['noise_params']})" if s["noise_params"] else "")
        out.setdefault(family, []).append(s)
    return list(out.items())


def heatmap(g: pd.DataFrame) -> str:
    """Methods (rows) x noise specs (columns): difference in mean Dice to baseline, coloured, bold and * where Holm-significant.

    Methods are ordered by their mean difference over the specs (best first), references
    after them; a cell's tooltip says in how many seeds the method and baseline lost a
    structure; the footer holds baseline's own mean Dice and lost seeds, and each spec's MDD
    and the seeds its MDD would need to reach the target.
    """
    families = _spec_columns(g)
    specs = [s for _, group in families for s in group]
    cells = {(r["method"], r["noise"]): r for _, r in g.iterrows()}
    rows = g[g["method"] != BASELINE]
    order = (
        rows.groupby("method")
        .agg(ref=("reference", "any"), mean=("delta_dice", "mean"))
        .sort_values(["ref", "mean"], ascending=[True, False])
    )
    scale = max(float(rows["delta_dice"].abs().max()) if rows["delta_dice"].notna().any() else 0.0, board_stats.MDD_TARGET)
    head1 = '<th class="l" rowspan="2">method</th>' + "".join(
        f'<th colspan="{len(group)}">{esc(family)}</th>' if family != "none" else '<th rowspan="2">none</th>' for family, group in families
    )
    head2 = "".join(f"<th>{s['noise_level']:g}</th>" for family, group in families if family != "none" for s in group)
    body = []
    for method, info in order.iterrows():
        tds = []
        for s in specs:
            r = cells.get((method, s["noise"]))
            if r is None or pd.isna(r["delta_dice"]):
                tds.append("<td>-</td>")
                continue
            sig = bool(r["delta_holm_reject"])
            interval = "" if pd.isna(r["delta_dice_ci"]) else f" ± {r['delta_dice_ci']:.3f}"
            base = cells.get((BASELINE, s["noise"]))
            tip = (
                f"{method} at {s['noise']}: ΔDice {r['delta_dice']:+.3f}{interval}, paired seeds {r['delta_n']}, "
                f"p {_fmt_p(r['delta_p'])}, p Holm {_fmt_p(r['delta_p_holm'])}; lost a structure in {r['lost']} of {r['n']} seeds"
                + ("" if base is None else f" (baseline: {base['lost']} of {base['n']})")
            )
            text = f"{r['delta_dice']:+.3f}" + ("*" if sig else "")
            cls = ' class="sig"' if sig else ""
            tds.append(f'<td{cls} style="background:{_mix(r["delta_dice"], scale)}" title="{esc(tip)}">{esc(text)}</td>')
        cls = ' class="ref"' if info["ref"] else ""
        body.append(f'<tr{cls}><td class="l">{esc(str(method))}</td>' + "".join(tds) + "</tr>")
    base = [cells.get((BASELINE, s["noise"])) for s in specs]
    seeds = ["-" if pd.isna(s["spec_seeds_for_target"]) else str(int(s["spec_seeds_for_target"])) for s in specs]
    foot = {
        "baseline's mean Dice": ["-" if b is None else format_cell(b["dice_mean"], math.nan) for b in base],
        "baseline's seeds that lost a structure": ["-" if b is None else f"{b['lost']} of {b['n']}" for b in base],
        f"MDD ({board_stats.POWER:.0%} power)": [format_cell(s["spec_mdd"], math.nan) for s in specs],
        f"seeds for MDD ≤ {board_stats.MDD_TARGET:g}": seeds,
    }
    foot_rows = [
        f'<tr><td class="l">{esc(name)}</td>' + "".join(f"<td>{v}</td>" for v in values) + "</tr>" for name, values in foot.items()
    ]
    return (
        '<div class="scroll"><table class="heat">\n'
        f"<thead><tr>{head1}</tr>\n<tr>{head2}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n"
        "<tfoot>\n" + "\n".join(foot_rows) + "\n</tfoot>\n</table></div>"
    )


def _fmt_p(value: float) -> str:
    if pd.isna(value):
        return "-"
    return f"{value:.3f}" if value >= 0.001 else f"{value:.1e}"


def _table(g: pd.DataFrame, columns: list[str], caption: str = "") -> str:
    """One sortable table: rank, method, level, seeds and `columns` (mean ± half-width), each number cell carrying its raw value."""
    shown = display_frame(g, columns)
    labels = {**board_metrics(g), "det_ap_chance": "AP chance"}
    raw = {labels[c]: c for c in columns}
    raw.update(zip(DELTA_LABELS, ("delta_dice", "delta_p", "delta_p_holm", "delta_mdd"), strict=True))
    left = {"method", "noise"}
    head = "".join(f'<th class="l">{esc(c)}</th>' if c in left else f"<th>{esc(c)}</th>" for c in shown.columns)
    rows = []
    for (_, r), values in zip(g.iterrows(), shown.itertuples(index=False), strict=True):
        tds = []
        for c, v in zip(shown.columns, values, strict=True):
            if c in left:
                tds.append(f'<td class="l">{esc(v)}</td>')
            elif c == "rank":
                tds.append(f'<td data-v="{_value(r["rank"]) if not r["reference"] else ""}">{esc(v)}</td>')
            elif c == "seeds":
                tds.append(f'<td data-v="{r["n"]}">{esc(v)}</td>')
            else:
                tds.append(f'<td data-v="{_value(r[raw[c]])}">{esc(v)}</td>')
        cls = ' class="ref"' if r["reference"] else ""
        rows.append(f"<tr{cls}>" + "".join(tds) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="sortable">{cap}\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table></div>"
    )


def _tabs(g: pd.DataFrame, key: str) -> str:
    """The group's numbers in tabs (one per metric group, plus Power), one table per noise family in each."""
    metrics = board_metrics(g)
    tabs = {**TABS, "Dice": [c for c in metrics if c.startswith("dice_")]}
    parts, panels = [], []
    families = [("none", g[g["noise_type"] == "none"])] + [
        (kind + (f" ({params})" if params else ""), f)
        for (kind, params), f in g[g["noise_type"] != "none"].groupby(["noise_type", "noise_params"], sort=False)
    ]
    for i, (name, columns) in enumerate(tabs.items()):
        columns = on_board(g, [c for c in columns if c in metrics or c == "det_ap_chance"])
        tab_id = f"{key}-tab{i}"
        parts.append(
            f'<input type="radio" name="{key}-tabs" id="{tab_id}"{" checked" if i == 0 else ""}><label for="{tab_id}">{esc(name)}</label>'
        )
        tables = [f"<h4>{esc(family)}</h4>\n" + _table(rows, columns) for family, rows in families if len(rows)]
        panels.append('<div class="panel">\n' + "\n".join(tables) + "\n</div>")
    tab_id = f"{key}-tab{len(tabs)}"
    parts.append(f'<input type="radio" name="{key}-tabs" id="{tab_id}"><label for="{tab_id}">Power</label>')
    power = power_table(g)
    head = "".join(f'<th class="l">{esc(c)}</th>' if c == "noise" else f"<th>{esc(c)}</th>" for c in power.columns)
    body = "\n".join(
        "<tr>"
        + "".join(
            f'<td class="l">{esc(v)}</td>' if c == "noise" else f"<td>{esc(v)}</td>" for c, v in zip(power.columns, values, strict=True)
        )
        + "</tr>"
        for values in power.itertuples(index=False)
    )
    panels.append(
        f'<div class="panel">\n<p class="note">{esc(POWER_NOTE)}.</p>\n'
        f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table></div>\n</div>'
    )
    return '<div class="tabs">\n' + "\n".join(parts) + "\n" + "\n".join(panels) + "\n</div>"


def _figures(g: pd.DataFrame, key: str) -> str:
    """The group's figures: the wide ones (per noise family) one under another, the small ones side by side."""
    figures = board_plots.figures(g, key)
    if not figures:
        return ""

    def figure(caption: str, svg: str) -> str:
        return f"<figure>\n{svg}<figcaption>{esc(caption)}</figcaption>\n</figure>"

    wide = [figure(caption, svg) for caption, svg, is_wide in figures if is_wide]
    small = [figure(caption, svg) for caption, svg, is_wide in figures if not is_wide]
    return "<h3>Figures</h3>\n" + "\n".join(wide) + ('\n<div class="figrow">\n' + "\n".join(small) + "\n</div>" if small else "")


def page(frame: pd.DataFrame, title: str = "echo-noise-bench leaderboard", index: str | None = None) -> str:
    """The whole board as one self-contained HTML page (module docstring); `index` is a relative link to the index page, if any."""
    body = []
    for n, (name, g) in enumerate(protocol_groups(frame)):
        key = f"g{n}"
        seeds = int(g["n"].max()) if len(g) else 0
        methods = g["method"].nunique()
        refs = sorted(g.loc[g["reference"], "method"].unique())
        body.append(f"<h2>{esc(name)}</h2>")
        body.append(
            f'<p class="note">{methods} recipes ({len(refs)} reference{"s" if len(refs) != 1 else ""}: {esc(", ".join(refs)) or "none"}), '
            f"{g['noise'].nunique()} noise specs, up to {seeds} seeds each.</p>"
        )
        body.append("<h3>Difference in mean Dice to baseline</h3>")
        body.append(
            '<p class="note">Mean over paired seeds of method minus baseline; blue: better than baseline, red: worse; '
            "<b>bold*</b>: significant after Holm's correction over the spec's methods (paired t, 0.05). Hover a cell for its "
            f"interval, p-values and the seeds that lost a structure (test Dice below {board_stats.LOST_BELOW:g}): a mean hides a "
            "training that failed. References are shown, not ranked.</p>"
        )
        body.append(heatmap(g))
        body.append("<h3>All numbers</h3>")
        body.append('<p class="note">Click a column header to sort. ' + esc(TABLE_NOTE) + ".</p>")
        body.append(_tabs(g, key))
        body.append(_figures(g, key))
    link = f'<p class="note"><a href="{esc(index)}">all boards</a></p>\n' if index else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{esc(title)}</h1>\n{link}"
        + "\n".join(body)
        + f"\n<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------- the index page


def find_boards(root: Path) -> list[Path]:
    """Every board page under `root` at the documented layout `<protocol>/v<version>/board.html`, sorted by protocol then version."""

    def key(p: Path) -> tuple[str, int]:
        version = p.parent.name.removeprefix("v")
        return p.parent.parent.name, int(version) if version.isdigit() else -1

    return sorted((p for p in root.glob("*/v*/board.html") if p.is_file()), key=key)


def index_page(root: Path, out: Path | None = None) -> str:
    """An HTML page listing every board under `root` (`find_boards`), linked relative to `out`'s folder (default: `root`).

    Each line names the protocol and version, links the board's HTML and, where they sit beside
    it, its Markdown and CSV, and from the CSV says how many methods, noise specs and seeds the
    board holds and whether every spec's MDD meets the target.
    """
    here = (out.parent if out is not None else root).resolve()
    rows = []
    for board in find_boards(root):
        folder = board.parent
        protocol, version = folder.parent.name, folder.name
        links = [f'<a href="{esc(_relative(board, here))}">board</a>']
        links += [
            f'<a href="{esc(_relative(folder / f, here))}">{f.rsplit(".", 1)[1]}</a>'
            for f in ("board.md", "board.csv")
            if (folder / f).is_file()
        ]
        summary = "-"
        csv = folder / "board.csv"
        if csv.is_file():
            summary = _summary(pd.read_csv(csv))
        cells = [esc(protocol), esc(version), " · ".join(links), esc(summary)]
        rows.append("<tr>" + "".join(f'<td class="l">{c}</td>' for c in cells) + "</tr>")
    table = (
        "<table>\n<thead><tr>"
        + "".join(f'<th class="l">{c}</th>' for c in ("protocol", "version", "files", "contents"))
        + "</tr></thead>\n"
        "<tbody>\n" + ("\n".join(rows) if rows else '<tr><td class="l" colspan="4">no boards yet</td></tr>') + "\n</tbody>\n</table>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>echo-noise-bench boards</title>\n'
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>echo-noise-bench boards</h1>\n"
        '<p class="note">Every protocol version\'s board, generated from its records by <code>bench leaderboard</code> '
        "(this page: <code>bench leaderboard --index</code>). Numbers on the phantom are not CAMUS numbers.</p>\n"
        f"{table}\n</body>\n</html>\n"
    )


def _relative(path: Path, here: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), here)).as_posix()


def _summary(csv: pd.DataFrame) -> str:
    """'6 recipes (1 reference), 10 noise specs, 2 seeds; MDD <= 0.01 at 0 of 10 specs' from a board's CSV."""
    refs = int(csv.drop_duplicates("method")["reference"].sum()) if "reference" in csv else 0
    text = f"{csv['method'].nunique()} recipes ({refs} reference{'s' if refs != 1 else ''}), "
    text += f"{csv['noise'].nunique()} noise specs, up to {int(csv['n'].max())} seeds"
    if "spec_mdd" in csv:
        specs = csv.drop_duplicates("noise")
        met = int((specs["spec_mdd"] <= board_stats.MDD_TARGET).sum())
        text += f"; MDD ≤ {board_stats.MDD_TARGET:g} at {met} of {len(specs)} specs"
    return text
