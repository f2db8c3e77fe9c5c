"""The board's figures, drawn by matplotlib (Agg, no display) as SVG text to inline into the HTML page.

Each function takes one protocol group of a board (`bench.leaderboard.board`) and returns an
SVG string, or None when the board has nothing to draw. The figures say what the tables
cannot: how a method's difference to `baseline` moves with the noise level (on the scale of
the differences, not a 0-1 Dice axis where every method is one line), how detection compares
with its chance level, what refurbishment does to the labels it touches, and what it costs.

Output is deterministic, so that a committed board regenerates byte for byte: a fixed
`svg.hashsalt` (the element ids), text kept as text in one named font (`svg.fonttype: none`,
DejaVu Sans, which matplotlib ships), no date or creator in the metadata, and every element
id prefixed with the figure's own name, so that several figures share one page without
clashing ids.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: never a display, never a GUI toolkit

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench import board_stats

#: matplotlib settings of every figure (the determinism ones, then the look)
RC: dict[str, Any] = {
    "svg.hashsalt": "echo-noise-bench",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e4e4",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.4,
    "lines.markersize": 4,
}
#: width of a full-width figure, inches (at 96 px per inch in a browser: about 1250 px)
WIDTH = 13.0
#: x axis label of the level plots
LEVEL = "noise level (fraction of training samples corrupted; 0 = clean)"
#: colours of the methods in sorted-name order (matplotlib's tab10, then tab20's light halves)
COLOURS = [*plt.get_cmap("tab10").colors, *plt.get_cmap("tab20").colors[1::2]]
#: markers, one per round of the colours: methods 21 and on repeat a colour with another marker
MARKERS = ("o", "s", "^", "D", "v")


@contextmanager
def _style() -> Iterator[None]:
    with plt.rc_context(RC):
        yield


@dataclass(frozen=True)
class Look:
    """How one method is drawn in every figure of a board."""

    colour: Any
    marker: str


def looks(methods: list[str]) -> dict[str, Look]:
    """A look per method name, by the order of the sorted names: no two methods of a board look alike (while there are fewer
    than len(COLOURS) x len(MARKERS)), and one method looks the same in every figure."""
    n = len(COLOURS)
    return {m: Look(COLOURS[i % n], MARKERS[(i // n) % len(MARKERS)]) for i, m in enumerate(sorted(methods))}


def families(g: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(title, rows) per noise family (noise type and its non-level parameters), each with the clean rows (`none`) as level 0."""
    clean = g[g["noise_type"] == "none"]
    out = []
    for (kind, params), family in g[g["noise_type"] != "none"].groupby(["noise_type", "noise_params"], sort=True):
        out.append((kind + (f" ({params})" if params else ""), pd.concat([clean, family])))
    return out


def to_svg(fig: Figure, name: str) -> str:
    """`fig` as inline SVG text (no XML prolog), ids prefixed with `name`, then closed; deterministic (module docstring)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    ids = set(re.findall(r'id="([^"]+)"', text))

    def prefix(m: re.Match[str]) -> str:
        return m.group(1) + (f"{name}-{m.group(2)}" if m.group(2) in ids else m.group(2))

    text = re.sub(r'(id="|href="#|url\(#)([^")]+)', prefix, text)
    return text.replace("<svg ", f'<svg class="plot" role="img" aria-label="{name}" ', 1).strip() + "\n"


def _legend(fig: Figure, methods: list[str], look: dict[str, Look], references: set[str]) -> None:
    handles = [
        plt.Line2D(
            [],
            [],
            color=look[m].colour,
            marker=look[m].marker,
            linestyle="--" if m in references else "-",
            label=m + (" (ref.)" if m in references else ""),
        )
        for m in methods
    ]
    fig.legend(handles=handles, loc="outside right upper", frameon=False)


def _whiskers(y: np.ndarray, half: np.ndarray, bounds: tuple[float, float] | None) -> np.ndarray:
    """Asymmetric whisker lengths (2 x n) of y ± half, cut at the metric's `bounds` (a Dice or AUROC interval never leaves [0, 1])."""
    half = np.nan_to_num(half)
    lo, hi = y - half, y + half
    if bounds is not None:
        lo, hi = np.clip(lo, *bounds), np.clip(hi, *bounds)
    return np.vstack([y - lo, hi - y])


def _line(
    ax: Any,
    rows: pd.DataFrame,
    col: str,
    ci: str | None,
    look: Look,
    reference: bool,
    dx: float,
    bounds: tuple[float, float] | None = None,
) -> None:
    """One method's line through (level, mean), whiskers of the 95% interval (cut at `bounds`), a reference dashed and hollow."""
    rows = rows[rows[col].notna()].sort_values("noise_level")
    if rows.empty:
        return
    x = rows["noise_level"].to_numpy(float) + dx
    y = rows[col].to_numpy(float)
    err = None if ci is None else _whiskers(y, rows[ci].to_numpy(float), bounds)
    ax.errorbar(
        x, y, yerr=err, color=look.colour, marker=look.marker, capsize=2, elinewidth=0.9,
        linestyle="--" if reference else "-", markerfacecolor="white" if reference else look.colour,
    )  # fmt: skip


def _methods(shown: pd.DataFrame, g: pd.DataFrame) -> tuple[list[str], dict[str, Look], set[str]]:
    """The methods a figure draws (`shown`'s), the looks of all of group `g`'s (one look per method on a page), the references."""
    return sorted(shown["method"].unique()), looks(list(g["method"].unique())), set(g.loc[g["reference"], "method"])


def delta_figure(g: pd.DataFrame, name: str = "delta") -> str | None:
    """Difference in mean Dice to baseline (paired, mean ± 95% interval) against noise level, one panel per noise family.

    The grey band is ± the spec's minimum detectable difference (80% power): a difference
    inside it could not have been told from none with these seeds. The y axis spans the
    means (not the whiskers, which with few seeds dwarf them); whiskers running off it are cut.
    """
    fams = families(g)
    shown = g[(g["method"] != "baseline") & g["delta_dice"].notna()]
    if not fams or shown.empty:
        return None
    methods, look, refs = _methods(shown, g)
    with _style():
        fig, axes = plt.subplots(1, len(fams), figsize=(WIDTH, 3.1), layout="constrained", squeeze=False)
        for ax, (title, rows) in zip(axes[0], fams, strict=True):
            step = 0.012 * max(rows["noise_level"].max(), 0.1)
            for i, m in enumerate(methods):
                _line(ax, rows[rows["method"] == m], "delta_dice", "delta_dice_ci", look[m], m in refs, (i - (len(methods) - 1) / 2) * step)
            ax.axhline(0, color="black", linewidth=0.8)
            means = rows.loc[rows["method"] != "baseline", "delta_dice"].abs()
            top = max(float(means.max()) * 1.4 if means.notna().any() else 0.0, 2 * board_stats.MDD_TARGET)
            spec = rows.drop_duplicates("noise").sort_values("noise_level")
            if spec["spec_mdd"].notna().any():
                mdd = spec["spec_mdd"].to_numpy(float)
                ax.fill_between(spec["noise_level"], -mdd, mdd, color="#999999", alpha=0.18, linewidth=0, zorder=0)
            ax.set_ylim(-top, top)
            ax.set_title(title)
            ax.set_xlabel("noise level")
        axes[0][0].set_ylabel("Δ mean Dice vs baseline")
        _legend(fig, methods, look, refs)
        return to_svg(fig, name)


#: how a chance level is drawn: a dotted black line through a short bar at each noise level
CHANCE = {"color": "black", "linestyle": ":", "linewidth": 1.1, "marker": "_", "markersize": 14, "markeredgewidth": 1.1}


def detection_figure(g: pd.DataFrame, name: str = "detection") -> str | None:
    """Detection AUROC, AP and precision at the review budget against noise level, with each one's chance level (dotted, black).

    Chance: AUROC 0.5; AP and precision at the budget: the prevalence n_corrupted / n_train
    (a random ranking's expected AP, and a random pick's precision).
    """
    fams = families(g)
    rows_with = g[g["det_auroc"].notna() | g["det_ap"].notna()]
    if not fams or rows_with.empty:
        return None
    methods, look, refs = _methods(rows_with, g)
    panels = (("det_auroc", "detection AUROC"), ("det_ap", "detection AP"), ("det_p_at_budget", "precision at review budget"))
    with _style():
        fig, axes = plt.subplots(len(panels), len(fams), figsize=(WIDTH, 7.2), layout="constrained", squeeze=False, sharex="col")
        for j, (title, rows) in enumerate(fams):
            rows = rows[rows["noise_type"] != "none"]
            levels = np.sort(rows["noise_level"].unique())
            prevalence = rows.groupby("noise_level")["det_ap_chance"].mean().reindex(levels).to_numpy(float)
            for i, (col, label) in enumerate(panels):
                ax = axes[i][j]
                for k, m in enumerate(methods):
                    dx = (k - (len(methods) - 1) / 2) * 0.006
                    _line(ax, rows[rows["method"] == m], col, f"{col}_ci", look[m], m in refs, dx, (0.0, 1.0))
                chance = np.full(len(levels), 0.5) if col == "det_auroc" else prevalence
                # a short black bar at each level, so a chance level stands out where the line has one point (one spec)
                ax.plot(levels, chance, gid=f"chance-{col}-{j}", **CHANCE)
                ax.set_ylim(-0.03, 1.03)
                if i == 0:
                    ax.set_title(title)
                if j == 0:
                    ax.set_ylabel(label)
                if i == len(panels) - 1:
                    ax.set_xlabel("noise level")
        handles = [plt.Line2D([], [], label="chance", **CHANCE)]
        _legend(fig, methods, look, refs)
        fig.legend(handles=handles, loc="outside right lower", frameon=False)
        return to_svg(fig, name)


def refurbishment_figure(g: pd.DataFrame, name: str = "refurbishment") -> str | None:
    """Label Dice of the truly corrupted training samples that a method refurbished, before (hollow) and after (filled), against level.

    One panel per noise family; a thin segment joins a method's before and after at each
    level, so its direction is what refurbishment did (up: labels improved). Whiskers: the
    95% interval of `after` over seeds, cut at [0, 1].
    """
    fams = [(t, r[r["refurb_before"].notna() & r["refurb_after"].notna()]) for t, r in families(g)]
    fams = [(t, r) for t, r in fams if len(r)]
    if not fams:
        return None
    methods, look, refs = _methods(pd.concat([r for _, r in fams]), g)
    with _style():
        fig, axes = plt.subplots(1, len(fams), figsize=(WIDTH, 3.1), layout="constrained", squeeze=False)
        for ax, (title, rows) in zip(axes[0], fams, strict=True):
            for k, m in enumerate(methods):
                mine = rows[rows["method"] == m].sort_values("noise_level")
                if mine.empty:
                    continue
                x = mine["noise_level"].to_numpy(float) + (k - (len(methods) - 1) / 2) * 0.015
                before, after = mine["refurb_before"].to_numpy(float), mine["refurb_after"].to_numpy(float)
                c, marker = look[m].colour, look[m].marker
                ax.vlines(x, before, after, color=c, linewidth=1.0)
                ax.plot(x, before, linestyle="", marker=marker, markerfacecolor="white", color=c)
                ax.errorbar(
                    x, after, yerr=_whiskers(after, mine["refurb_after_ci"].to_numpy(float), (0.0, 1.0)), linestyle="", marker=marker,
                    color=c, capsize=2, elinewidth=0.8, markerfacecolor="white" if m in refs else c,
                )  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel("noise level")
            ax.set_xticks(np.sort(rows["noise_level"].unique()))  # the methods spread around each level: tick only the levels
        axes[0][0].set_ylabel("label Dice of corrupted samples")
        handles = [
            plt.Line2D([], [], color="#555555", marker="o", markerfacecolor="white", linestyle="", label="before"),
            plt.Line2D([], [], color="#555555", marker="o", linestyle="", label="after"),
        ]
        _legend(fig, methods, look, refs)
        fig.legend(handles=handles, loc="outside right lower", frameon=False)
        return to_svg(fig, name)


def cost_figure(g: pd.DataFrame, name: str = "cost") -> str | None:
    """Each method's cost over baseline's beside its difference in mean Dice to baseline, both averaged over the noise specs.
    The cost is its work (`work_rel`, multiply-accumulates) where the board's records count it, else its seconds (`cost_rel`).

    One row per method, cheapest at the top, two panels sharing the rows: a scatter of 20-odd methods piles their labels up
    at (1, 0). Whiskers: the spread (sd) over the specs, not a confidence interval, cut at a panel's edge; a reference is
    hollow. The Dice panel spans the means, so a method that loses structures in some specs does not flatten the others.
    """
    column = "work_rel" if "work_rel" in g and g["work_rel"].notna().any() else "cost_rel"  # work: the same on any machine
    rows = g[g[column].notna()]
    if rows.empty:
        return None
    methods, look, refs = _methods(rows, g)
    points = []  # (method, cost mean, cost sd, delta mean, delta sd)
    for m in methods:
        mine = rows[rows["method"] == m]
        delta = mine["delta_dice"].fillna(0.0) if m == "baseline" else mine["delta_dice"].dropna()
        if not delta.empty:
            cost = mine[column]
            points.append((m, cost.mean(), _sd(cost), delta.mean(), _sd(delta)))
    if not points:
        return None
    points.sort(key=lambda p: (p[1], p[0]))
    with _style():
        fig, (left, right) = plt.subplots(
            1, 2, sharey=True, figsize=(WIDTH / 2, 1.0 + 0.2 * len(points)), layout="constrained", gridspec_kw={"wspace": 0.04}
        )  # fmt: skip
        for i, (m, cost, cost_sd, delta, delta_sd) in enumerate(points):
            style = dict(color=look[m].colour, marker=look[m].marker, markersize=5, elinewidth=0.7, capsize=2, linestyle="none",
                         markerfacecolor="white" if m in refs else look[m].colour)  # fmt: skip
            left.errorbar(cost, i, xerr=cost_sd, **style).lines[0].set_gid(f"{name}-cost-{m}")  # the marker's line, not its caps
            right.errorbar(delta, i, xerr=delta_sd, **style).lines[0].set_gid(f"{name}-dice-{m}")
        left.set_yticks(range(len(points)), [p[0] for p in points])
        left.set_ylim(len(points) - 0.5, -0.5)  # cheapest at the top
        left.axvline(1, color="black", linewidth=0.8)
        right.axvline(0, color="black", linewidth=0.8)
        deltas = [0.0, *(p[3] for p in points)]
        pad = max(0.1 * (max(deltas) - min(deltas)), board_stats.MDD_TARGET / 2)
        right.set_xlim(min(deltas) - pad, max(deltas) + pad)
        unit = "work (multiply-accumulates)" if column == "work_rel" else "cost"
        left.set_xlabel(f"{unit} / baseline's (mean over noise specs)")
        right.set_xlabel("Δ mean Dice vs baseline (mean over specs)")
        left.set_title("cost", loc="left")
        right.set_title("accuracy", loc="left")
        return to_svg(fig, name)


def _sd(values: pd.Series) -> float:
    """The sample sd of `values` (0 for a single value: no spread to draw)."""
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def figures(g: pd.DataFrame, prefix: str) -> list[tuple[str, str, bool]]:
    """Every figure of one protocol group that has data: (caption, SVG, full width?), ids prefixed with `prefix` (unique per group)."""
    out = []
    captions = {
        delta_figure: "Difference in mean Dice to baseline (paired over seeds, mean ± 95% t-interval) against noise level. "
        f"Grey band: ± the spec's minimum detectable difference ({board_stats.POWER:.0%} power); dashed, hollow: references; "
        "whiskers running off a panel are cut at its edge.",
        detection_figure: "Detection against noise level, mean ± 95% t-interval; dotted black, a bar at each level: chance (AUROC 0.5; AP "
        "and precision at the review budget: the prevalence of corrupted samples).",
        refurbishment_figure: "Label Dice of the truly corrupted training samples each method refurbished: before (hollow) and after "
        "(filled, ± 95% t-interval) refurbishment, against noise level; up = labels improved.",
        cost_figure: "Cost against accuracy: cost over baseline's (a CPU trial's CPU seconds where its record has them, else wall "
        "time) and difference in mean Dice to baseline, each averaged over the noise specs, one row per method, cheapest first "
        "(whiskers: sd over specs, cut at a panel's edge; hollow: references).",
    }
    for draw, caption in captions.items():
        svg = draw(g, f"{prefix}-{draw.__name__.removesuffix('_figure')}")
        if svg is not None:
            out.append((caption, svg, draw is not cost_figure))
    return out
