"""Study: the numbers behind a board's findings, from its records (issue 16, item 4).

Reads the records of one protocol version (checked as `bench leaderboard` checks them) and
prints markdown tables, each number with its 95% t-interval and its paired seeds:

0. the study's claims, each judged by a rule fixed here before the board was complete (BARELY,
   HURTS_FROM, FLAGS_WELL, Holm's correction): random errors barely hurt `baseline`; systematic
   errors hurt it from about 50%; VOG (the board's late-stage score) flags erroneous labels well;
   detection plus refurbishment beats `baseline` at the highest error level. A verdict reads
   "supported", "not supported" (the data say otherwise) or "not shown" (the intervals cannot
   tell), and names what a partial board still lacks. Then the best detector per error type, its
   AUROC and AP beside their chance levels at each level, the methods that beat `baseline`
   after Holm's correction (with `--reruns`, which of those verdicts change in table 11), and
   where the board meets its power target (MDD at most 0.01);
1. what each noise spec costs `baseline`: its mean Dice minus that of its clean run of the
   same seed (the same initial weights, data order and augmentation), paired t-test p;
2. detection per error type: each detector's AUROC (chance 0.5) and AP minus its chance
   level (the prevalence), averaged over the type's levels, and the best per type;
3. the methods whose paired difference to `baseline` survives Holm's correction over the
   spec's methods (the board's `delta_p_holm`), better or worse, beside the spec's MDD and a
   steady MDD: the same from the paired spread of the seeds in which neither training lost a
   structure (at omission:0.75 the recipes that lose one in some seeds make the pooled spread);
4. each refurbishing recipe's difference to `baseline` by spec, and the label Dice of the
   truly corrupted samples it refurbished, before and after;
5. trainings that lost a structure: per method and spec, the board's `lost` seeds (some
   structure's test Dice below `bench.board_stats.LOST_BELOW`). Strong noise makes a
   training fail now and then rather than degrade evenly, and a mean with its interval hides
   that; the count shows which methods avoid it;
6. what the noise costs each method beyond what it costs `baseline`: (method at the spec -
   method clean) - (baseline at the spec - baseline clean), per seed (all four runs share the
   seed's initial weights, data order and augmentation). A method that is simply better than
   `baseline` everywhere (a better loss for this data) gains at a noisy spec without being any
   more robust to the noise; this difference in differences separates the two;
7. what the flag rules did: per detecting method and spec, in how many seeds the rule flagged
   anything, and how many samples against how many truly corrupted ones (on the v3 board the
   rule flagged nothing where its detectors ranked perfectly, which only this table shows);
8. whom the flag rules flagged, by the training image's quality (the dataset's `quality`
   column): the flagged share of clean samples at `none`, of clean samples at the noisy specs
   and of corrupted ones. A score that tracks how hard an image is rather than whether its
   label is wrong flags poor images on clean data (on the v4 board at `none` seed 1 the loss
   rule flagged 16 of 24 poor, 32 of 128 medium and 3 of 88 good images). The noise models
   pick the samples they corrupt by a hash of (seed, id), whatever their quality, so a
   difference between qualities in the corrupted column is the detector's alone;
9. why the population rule flagged or not: the rule rerun on the stored scores of each record
   whose recipe uses it, with Ashman's D of its two components and the test each seed ended at
   (on the v4 board at systematic:0.75 no detector's rule flagged anything: this says whether
   the scores held no second population or one the rule's tests refused).

10. cost within blocks: each method's CPU seconds over those of the `baseline` trial that ran in
   the same block (one machine kind, spec and seed, `baseline` made between the block's first
   and last other record), beside the board's `cost / baseline`, which divides by `baseline`'s
   mean at the spec on that kind whenever it was made. CPU seconds grow with whatever else
   shares the machine: the v4 `baseline` records were made first, in grid order, and cost
   124-166 CPU s (median per spec) on AuthenticAMD-23-1 where recipes that train as it does
   (`gce`, `sce`, `bootstrap-*`, `oracle-restore`) cost 109-125 in the blocks made later, so
   the board's v4 ratios read about a fifth low.
11. pairs across machine kinds, read again (only with `--reruns DIR`, `baseline` records rerun on
   another CPU kind by `studies/rerun_records.py --save DIR`): records reproduce bit for bit
   within a CPU kind only, so a method paired with a `baseline` record of another kind carries
   the kinds' arithmetic difference in its paired spread. Each rerun replaces the board's
   `baseline` record of its spec and seed, and every method at those specs is compared again:
   its difference to `baseline`, Holm-adjusted p and pairs across kinds, on the board and with
   the reruns, and whether a Holm verdict changes.

    python studies/board_findings.py leaderboard --protocol phantom-quick@v4 --reruns studies/reruns/GenuineIntel-6-167

A partial board gives partial tables: every cell says how many seeds it has.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from bench import board_stats, protocols
from bench.data import fingerprint
from bench.errors import BenchError
from bench.flagging import Flagging, population_rule
from bench.leaderboard import BASELINE, board, load_records, machine_kind, mean_interval
from bench.noise import parse_noise
from bench.record import Record
from bench.trial import protocol_data


def _ci(mean: float, half: float, digits: int = 3, signed: bool = False) -> str:
    if math.isnan(mean):
        return "-"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"


def _table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _specs(frame: pd.DataFrame) -> list[str]:
    """The frame's noise specs in the board's order (`board` sorts them: `none` first, then type and level)."""
    return list(dict.fromkeys(frame["noise"]))


def _trainings(records: list[Record]) -> dict[str, dict[str, dict[int, tuple[float, bool]]]]:
    """{method: {noise spec: {seed: (mean Dice, lost a structure)}}} of the ok records."""
    out: dict[str, dict[str, dict[int, tuple[float, bool]]]] = {}
    for r in records:
        if r.status == "ok":
            dice = r.metrics["dice"]
            out.setdefault(r.method["name"], {}).setdefault(r.noise["spec"], {})[r.seed] = (
                float(dice["mean"]),
                board_stats.lost_structure(dice),
            )
    return out


def _mean_dice(records: list[Record]) -> dict[str, dict[str, dict[int, float]]]:
    """{method: {noise spec: {seed: mean Dice}}} of the ok records: what the paired tables pair."""
    return {
        m: {spec: {seed: d for seed, (d, _) in runs.items()} for spec, runs in specs.items()} for m, specs in _trainings(records).items()
    }


def _baseline_losses(records: list[Record]) -> dict[str, tuple[list[float], list[float], float]]:
    """{noisy spec: (baseline's mean Dice at the spec, minus its clean run's, paired t-test p)} per paired seed."""
    dice = _mean_dice(records).get(BASELINE, {})
    clean = dice.get("none", {})
    out = {}
    for spec, runs in dice.items():
        seeds = sorted(set(runs) & set(clean))
        if spec == "none" or not seeds:
            continue
        diffs = [runs[s] - clean[s] for s in seeds]
        p = (
            stats.ttest_rel([runs[s] for s in seeds], [clean[s] for s in seeds]).pvalue
            if len(seeds) >= 2 and len(set(diffs)) > 1
            else math.nan
        )
        out[spec] = ([runs[s] for s in seeds], diffs, float(p))
    return out


def noise_cost(records: list[Record], specs: Iterable[str]) -> str:
    """Table 1: baseline's mean Dice at each spec (of `specs`, in their order) minus its clean run's, paired by seed."""
    clean = _mean_dice(records).get(BASELINE, {}).get("none", {})
    losses = _baseline_losses(records)
    rows = []
    for spec in specs:
        if spec == "none" and clean:
            mean, half, n = mean_interval(list(clean.values()))
            rows.append([spec, str(n), _ci(mean, half), "-", "-"])
        elif spec in losses:
            noisy, diffs, p = losses[spec]
            mean, half, n = mean_interval(diffs)
            means = mean_interval(noisy)
            rows.append([spec, str(n), _ci(means[0], means[1]), _ci(mean, half, signed=True), "-" if math.isnan(p) else f"{p:.3f}"])
    return _table(["noise", "paired seeds", "baseline mean Dice", "minus clean (paired)", "p"], rows)


#: "Barely hurts" in the claims: a loss smaller than the board is designed to detect (its MDD target), with 95% confidence.
BARELY = board_stats.MDD_TARGET
#: The AUROC at which a detector "flags well": acceptable discrimination (Hosmer, Lemeshow & Sturdivant, Applied Logistic
#: Regression, 3rd ed., 2013, ch. 5: 0.7-0.8 acceptable, 0.8-0.9 excellent), with its 95% interval above chance.
FLAGS_WELL = 0.7
#: The error level from which the study found systematic errors to hurt ("about 50%").
HURTS_FROM = 0.5


def _refurbishes(recipe: dict) -> bool:
    """Whether a recipe detects and then repairs the labels it flags (not one that discards them, nor a robust loss)."""
    return bool(recipe.get("detector")) and (recipe.get("refurbisher") not in (None, "discard") or bool(recipe.get("corrector")))


def _by_type(specs: Iterable[tuple[str, float, str]]) -> dict[str, list[tuple[float, str]]]:
    """{noise type: [(level, spec)] in increasing level} of (type, level, spec) triples, `none` left out."""
    out: dict[str, list[tuple[float, str]]] = {}
    for kind, level, spec in specs:
        if kind != "none":
            out.setdefault(kind, []).append((float(level), spec))
    return {kind: sorted(levels) for kind, levels in sorted(out.items())}


def _levels(frame: pd.DataFrame) -> dict[str, list[tuple[float, str]]]:
    """{noise type: [(level, spec)] in increasing level} of the frame's noisy specs."""
    return _by_type((r.noise_type, r.noise_level, r.noise) for r in frame.drop_duplicates("noise").itertuples())


def _grid_levels(records: list[Record]) -> dict[str, list[tuple[float, str]]]:
    """{noise type: [(level, spec)] in increasing level} of the records' protocol's whole noise grid: a claim about a type
    waits for every level of it, where `_levels` holds only the levels a partial board already has."""
    protocol = records[0].protocol
    grid = (parse_noise(spec) for spec in protocols.get(f"{protocol['name']}@v{protocol['version']}").noise_grid)
    return _by_type((noise.type, noise.level, noise.text) for noise in grid)


def _measured(losses: dict[str, tuple[list[float], list[float], float]], levels: list[tuple[float, str]]) -> bool:
    """Whether `baseline`'s loss to clean has at least two paired seeds at every one of the levels."""
    return bool(levels) and all(spec in losses and len(losses[spec][1]) >= 2 for _, spec in levels)


def _hurts_from(losses: dict[str, tuple[list[float], list[float], float]], levels: list[tuple[float, str]]) -> float | None:
    """The lowest level from which baseline's loss to clean is significant at every level up (Holm over the type's levels);
    None where it is not at the highest level (or a level has no p yet)."""
    specs = [spec for _, spec in levels if spec in losses]
    if len(specs) < len(levels):
        return None
    _, reject = board_stats.holm([losses[spec][2] for spec in specs])
    onset = None
    for (level, _), hit in zip(reversed(levels), reversed(reject), strict=True):
        if not hit:
            break
        onset = level
    return onset


def _loss_text(losses: dict[str, tuple[list[float], list[float], float]], spec: str) -> str:
    """`spec` with baseline's paired loss to clean, its 95% interval and its seeds."""
    mean, half, n = mean_interval(losses[spec][1]) if spec in losses else (math.nan, math.nan, 0)
    return f"{spec} {_ci(mean, half, signed=True)} (n {n})"


def _claim_random(levels: dict[str, list[tuple[float, str]]], losses: dict[str, tuple[list[float], list[float], float]]) -> str:
    """Random errors barely hurt: every random level's loss to clean above -BARELY with 95% confidence."""
    rand = levels.get("random", [])
    measured = [_loss_text(losses, spec) for _, spec in rand if spec in losses]
    if not _measured(losses, rand):
        verdict = "not yet decided (a random level without two paired seeds)"
    else:
        decided = [mean_interval(losses[spec][1]) for _, spec in rand]
        above = [mean - half > -BARELY for mean, half, _ in decided]
        verdict = "supported" if all(above) else "not shown at " + ", ".join(s for (_, s), ok in zip(rand, above, strict=True) if not ok)
    return (f"- **Random errors barely hurt** (rule: at every random level `baseline`'s paired loss to its clean run is "
            f"smaller than {BARELY:g} with 95% confidence): {'; '.join(measured) or 'no random level yet'}. **{verdict}.**")  # fmt: skip


def _claim_systematic(levels: dict[str, list[tuple[float, str]]], losses: dict[str, tuple[list[float], list[float], float]]) -> str:
    """Systematic errors hurt from about HURTS_FROM: the loss to clean significant (Holm over the levels) from there up only."""
    decided = {kind: _measured(losses, kind_levels) for kind, kind_levels in levels.items()}
    onsets = {kind: _hurts_from(losses, kind_levels) for kind, kind_levels in levels.items()}
    systematic = [(level, s) for level, s in levels.get("systematic", []) if s in losses]
    holm_p, _ = board_stats.holm([losses[s][2] for _, s in systematic])
    numbers = "; ".join(f"{_loss_text(losses, s)}, Holm p {p:.3f}" for (_, s), p in zip(systematic, holm_p, strict=True))
    onset = onsets.get("systematic")
    verdict = ("not yet decided (a systematic level without two paired seeds)" if not decided.get("systematic") else
               "supported" if onset == HURTS_FROM else
               f"not supported: systematic errors hurt from {onset:g}" if onset is not None else
               "not shown: no significant loss at the highest systematic level")  # fmt: skip
    others = ", ".join(f"{kind} not yet decided" if not decided[kind] else f"{kind} from {'no level' if o is None else f'{o:g}'}"
                       for kind, o in onsets.items() if kind != "systematic")  # fmt: skip
    return (f"- **Systematic errors hurt from about {HURTS_FROM:.0%}** (rule: `baseline`'s paired loss to clean is "
            f"significant, Holm over the type's levels, from {HURTS_FROM:g} up and not below): {numbers or 'no level yet'}"
            f"{f' (by the same rule {others})' if others else ''}. **{verdict}.**")  # fmt: skip


def _claim_vog(frame: pd.DataFrame, levels: dict[str, list[tuple[float, str]]], blocks: dict[str, dict]) -> str:
    """VOG flags erroneous labels well: the board's (late-stage) VOG AUROC at least FLAGS_WELL, interval above chance."""
    recipes = {name: block.get("recipe", {}) for name, block in blocks.items()}
    vog = sorted(m for m, recipe in recipes.items() if recipe.get("detector") == "vog" and not board_stats.is_reference(blocks[m]))
    if not vog:
        return ""
    rows = frame[(frame["method"] == vog[0]) & (frame["noise"] != "none")]
    at = recipes[vog[0]].get("detect_at")
    parts, verdicts = [], []
    for kind, kind_levels in levels.items():
        cells = [rows[rows["noise"] == s] for _, s in kind_levels]
        cells = [c.iloc[0] for c in cells if len(c) and not math.isnan(c.iloc[0]["det_auroc"])]
        parts += [f"{c['noise']} {_ci(c['det_auroc'], c['det_auroc_ci'], 2)} (n {c['n']})" for c in cells]
        well = [c["det_auroc"] >= FLAGS_WELL and c["det_auroc"] - c["det_auroc_ci"] > 0.5 for c in cells]
        reversed_ = [c["noise"] for c in cells if c["det_auroc"] + c["det_auroc_ci"] < 0.5]
        undecided = not cells or any(math.isnan(c["det_auroc_ci"]) for c in cells)  # a level with one seed: no interval
        text = "not decided" if undecided else "well" if all(well) else "not well"
        verdicts.append(f"{kind}: {text}" + (f" (below chance at {', '.join(reversed_)})" if reversed_ else ""))
    return (f"- **VOG flags erroneous labels well** (rule: AUROC at least {FLAGS_WELL:g} with its 95% interval above "
            f"0.5 at every level of a type; `{vog[0]}`, scored after {at:g} of training with the paper's late-stage "
            f"sign; VOG by stage is `studies/vog_stage.py`'s, not the board's): {'; '.join(parts)}. "
            f"**{'; '.join(verdicts)}.**")  # fmt: skip


def _claim_refurbishment(frame: pd.DataFrame, levels: dict[str, list[tuple[float, str]]], blocks: dict[str, dict]) -> str:
    """Detection plus refurbishment helps at high error: a refurbishing recipe beats baseline after Holm at the top level."""
    recipes = {name: block.get("recipe", {}) for name, block in blocks.items()}
    refurbishers = sorted(m for m, recipe in recipes.items() if _refurbishes(recipe) and not board_stats.is_reference(blocks[m]))
    noisy = frame[(frame["noise"] != "none") & frame["method"].isin(refurbishers)]
    ceiling = frame[frame["method"] == "oracle-restore"].set_index("noise")
    helped, best = [], []
    for spec in _specs(noisy):
        g = noisy[(noisy["noise"] == spec) & noisy["delta_dice"].notna()]
        wins = g[g["delta_holm_reject"] & (g["delta_dice"] > 0)]
        helped += [(spec, m) for m in wins["method"]]
        acted = g[g["refurb_after"].notna()]  # refurbished some corrupted label in some seed: not training as baseline did
        if acted.empty:
            text = "none refurbished"
        else:
            top = acted.loc[acted["delta_dice"].idxmax()]
            text = f"best `{top['method']}` {_ci(top['delta_dice'], top['delta_dice_ci'], signed=True)}"
        if spec in ceiling.index:
            text += f", ceiling `oracle-restore` {_ci(ceiling.loc[spec, 'delta_dice'], ceiling.loc[spec, 'delta_dice_ci'], signed=True)}"
        best.append(f"{spec}: {text} (n {int(g['delta_n'].min()) if len(g) else 0})")
    high = max((lv for kind_levels in levels.values() for lv, _ in kind_levels), default=math.nan)
    high_specs = {s for kind_levels in levels.values() for lv, s in kind_levels if lv == high}
    verdict = ("not yet measured" if not best else
               "supported" if any(s in high_specs for s, _ in helped) else
               f"not shown at the {len(best)} noisy specs measured: no refurbishing recipe beats `baseline` after Holm "
               f"at {high:g}" + (f" (one does at {', '.join(sorted({s for s, _ in helped}))})" if helped else ""))  # fmt: skip
    return (f"- **Detection plus refurbishment helps, above all at high error** (rule: some refurbishing recipe, "
            f"{', '.join(f'`{m}`' for m in refurbishers)}, beats `baseline` after Holm at the highest level, {high:g}; "
            f"by spec the best of those that refurbished anything, and the ceiling): "
            f"{'; '.join(best) or 'none yet'}. **{verdict}.**")  # fmt: skip


def _claim_best_detector(frame: pd.DataFrame, blocks: dict[str, dict]) -> str:
    """The best detector per error type (table 2's), with its AUROC and AP beside chance at each level."""
    det, _, best_detector = _detection_means(frame)
    parts = []
    for kind, method in best_detector.items():
        cells = det[(det["method"] == method) & (det["noise_type"] == kind)].sort_values("noise_level")
        levels_text = "; ".join(
            f"{r.noise_level:g}: AUROC {_ci(r.det_auroc, r.det_auroc_ci, 2)}, AP {_ci(r.det_ap, r.det_ap_ci, 2)} "
            f"(chance {r.det_ap_chance:.2f}, n {r.n})"
            for r in cells.itertuples()
        )
        parts.append(f"\n  - {kind}: `{method}`, detector `{blocks[method].get('recipe', {}).get('detector')}`: {levels_text}")
    return ("- **The best detector per error type** (the highest AUROC averaged over the type's levels, table 2; "
            f"AUROC's chance is 0.5, AP's the prevalence):{''.join(parts) or ' no detection results yet.'}")  # fmt: skip


def _claim_holm(frame: pd.DataFrame, reread: str = "") -> str:
    """The methods that beat baseline after Holm's correction (table 3's), and how many cells are worse; `reread` says what
    changes where pairs that cross CPU kinds are read with `baseline` rerun on the method's kind (table 11)."""
    tested = frame[(frame["method"] != BASELINE) & ~frame["reference"] & frame["delta_p_holm"].notna()]
    wins = tested[tested["delta_holm_reject"] & (tested["delta_dice"] > 0)]
    losses_ = tested[tested["delta_holm_reject"] & (tested["delta_dice"] < 0)]
    worse = ", ".join(f"`{m}`" for m in sorted(set(losses_["method"])))
    better = "; ".join(f"`{r.method}` at {r.noise} {_ci(r.delta_dice, r.delta_dice_ci, signed=True)}" for r in wins.itertuples())
    return (f"- **Methods that beat `baseline` after Holm's correction** (paired by seed, over the spec's methods; table 3): "
            f"{better or 'none'}, of {len(tested)} method-spec cells tested at {tested['noise'].nunique()} specs; "
            f"worse than `baseline` in {len(losses_)} cells ({worse or 'none'}).{reread}")  # fmt: skip


def _claim_power(frame: pd.DataFrame, records: list[Record]) -> str:
    """The board's power target: the spec MDD (table 3's) at most board_stats.MDD_TARGET at every spec, and the seeds a spec
    that misses it would need at its measured spread."""
    trainings = _trainings(records)
    specs = frame[(frame["method"] != BASELINE) & ~frame["reference"]].drop_duplicates("noise")
    measured = specs[specs["spec_mdd"].notna()]
    met = measured[measured["spec_mdd"] <= board_stats.MDD_TARGET]
    missed = []
    for r in measured[measured["spec_mdd"] > board_stats.MDD_TARGET].itertuples():
        methods = list(frame.loc[(frame["noise"] == r.noise) & (frame["method"] != BASELINE) & ~frame["reference"], "method"])
        steady = _steady_mdd(trainings, r.noise, methods, int(r.spec_n))
        missed.append(
            f"`{r.noise}` {r.spec_mdd:.3f} at {r.spec_n} seeds (steady {steady:.3f}; {r.spec_seeds_for_target:.0f} seeds would reach it)"
        )
    waiting = frame["noise"].nunique() - len(measured)
    return (f"- **Power** (target: the spec MDD, paired, two-sided 95%, 80% power, at most {board_stats.MDD_TARGET:g}; table 3): "
            f"met at {len(met)} of {len(measured)} specs measured ({', '.join(f'`{n}`' for n in met['noise']) or 'at none'})"
            f"{'; missed at ' + '; '.join(missed) if missed else ''}"
            f"{f'; {waiting} specs without a pair of seeds yet' if waiting else ''}.")  # fmt: skip


def claims(frame: pd.DataFrame, records: list[Record], reruns: list[Record] | None = None) -> str:
    """Section 0: the study's claims, each judged by a rule fixed in this module (BARELY, HURTS_FROM, FLAGS_WELL, Holm), with
    the numbers it rests on; on a partial board a verdict says what it is still missing. With `baseline` `reruns` (table
    11), the Holm bullet adds which of its verdicts change when they stand in for the board's `baseline` records."""
    reread = ""
    swap, swapped = _rerun_baselines(records, reruns or [])
    if swap:
        changed, tested = verdict_changes(frame, board(swapped), sorted({spec for spec, _ in swap}))
        reread = (f" With `baseline` rerun on the methods' CPU kind at {len(swap)} spec-seeds (table 11), the verdicts there "
                  f"that change: {len(changed)} of {tested}{' (' + '; '.join(changed) + ')' if changed else ''}.")  # fmt: skip
    levels, losses = _levels(frame), _baseline_losses(records)
    grid = _grid_levels(records)
    blocks = {r.method["name"]: r.method for r in records}
    bullets = [_claim_random(grid, losses), _claim_systematic(grid, losses), _claim_vog(frame, levels, blocks),
               _claim_refurbishment(frame, levels, blocks), _claim_best_detector(frame, blocks), _claim_holm(frame, reread),
               _claim_power(frame, records)]  # fmt: skip
    return "\n".join(b for b in bullets if b)


def _detection_means(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, dict[str, tuple[float, float, int]]], dict[str, str]]:
    """The board's detection cells (non-reference, noisy), {detector: {error type: (mean AUROC, mean AP - chance, fewest
    seeds)}} over the type's levels, and {error type: the detector with the highest mean AUROC}."""
    det = frame[frame["det_auroc"].notna() & ~frame["reference"] & (frame["noise"] != "none")]
    table: dict[str, dict[str, tuple[float, float, int]]] = {}
    for (method, kind), g in det.groupby(["method", "noise_type"]):
        table.setdefault(method, {})[kind] = (g["det_auroc"].mean(), (g["det_ap"] - g["det_ap_chance"]).mean(), int(g["n"].min()))
    best = {k: max((m for m in table if k in table[m]), key=lambda m: table[m][k][0]) for k in sorted(det["noise_type"].unique())}
    return det, table, best


def detection(frame: pd.DataFrame) -> str:
    """Table 2: per detector and error type, mean AUROC and AP - chance over the type's levels; the best per type marked."""
    det, table, best = _detection_means(frame)
    if det.empty:
        return "(no detection results yet)"
    types = list(best)
    rows = []
    for method in sorted(table):
        cells = []
        for kind in types:
            if kind not in table[method]:
                cells.append("-")
                continue
            auroc, ap_gain, n = table[method][kind]
            mark = "**" if best[kind] == method else ""
            cells.append(f"{mark}{auroc:.2f}{mark} / {ap_gain:+.2f} (n {n})")
        rows.append([f"`{method}`", *cells])
    levels = ", ".join(f"{k}: {', '.join(f'{v:g}' for v in sorted(det[det['noise_type'] == k]['noise_level'].unique()))}" for k in types)
    note = f"AUROC (chance 0.50) / AP minus its chance level, means over the levels ({levels}); n = fewest seeds of a cell; "
    note += "bold = best AUROC"
    return note + "\n\n" + _table(["detector", *types], rows)


def corrected(frame: pd.DataFrame, records: list[Record]) -> str:
    """Table 3: per spec, the MDD (the board's and the steady one) and the methods whose Holm-adjusted paired p is <= 0.05."""
    rows = []
    trainings = _trainings(records)
    for spec in _specs(frame):
        g = frame[(frame["noise"] == spec) & (frame["method"] != BASELINE) & ~frame["reference"]]
        tested = g[g["delta_p_holm"].notna()]
        hits = tested[tested["delta_holm_reject"]]
        better = [f"`{r.method}` {_ci(r.delta_dice, r.delta_dice_ci, signed=True)}" for r in hits[hits["delta_dice"] > 0].itertuples()]
        worse = [f"`{r.method}` {_ci(r.delta_dice, r.delta_dice_ci, signed=True)}" for r in hits[hits["delta_dice"] < 0].itertuples()]
        mdd = g["spec_mdd"].iloc[0] if len(g) else math.nan
        steady = _steady_mdd(trainings, spec, list(g["method"]), int(g["spec_n"].iloc[0])) if len(g) else math.nan
        rows.append([spec, str(len(tested)), _ci(mdd, math.nan), _ci(steady, math.nan), "; ".join(better) or "none",
                     "; ".join(worse) or "none"])  # fmt: skip
    note = ("MDD 80%: the board's spec MDD (paired spread pooled over the methods, at the fewest seeds of a pair); steady: the "
            "MDD at the same number of seeds if the paired spread were that of the seeds in which neither the method nor "
            f"`baseline` lost a structure (every structure's test Dice at least {board_stats.LOST_BELOW:g}): what the board "
            "detects between trainings that keep every structure")  # fmt: skip
    header = ["noise", "methods tested", "MDD 80%", "MDD 80%, steady", "better than baseline (Holm)", "worse than baseline (Holm)"]
    return note + "\n\n" + _table(header, rows)


def _steady_mdd(trainings: dict[str, dict[str, dict[int, tuple[float, bool]]]], spec: str, methods: list[str], n: int) -> float:
    """The MDD of `n` paired seeds at the paired spread of steady trainings: the board's pooled sd (pairs of at least 2 seeds
    whose differences vary) over only the paired seeds in which neither the method nor baseline lost a structure."""
    base = trainings.get(BASELINE, {}).get(spec, {})
    sds, ns = [], []
    for method in methods:
        mine = trainings.get(method, {}).get(spec, {})
        diffs = [mine[s][0] - base[s][0] for s in sorted(mine.keys() & base.keys()) if not (mine[s][1] or base[s][1])]
        if len(diffs) >= 2 and np.std(diffs) > 0:
            sds.append(float(np.std(diffs, ddof=1)))
            ns.append(len(diffs))
    sd, _ = board_stats.pooled_sd(sds, ns)
    return board_stats.min_detectable_difference(sd, n)


def refurbishment(frame: pd.DataFrame) -> str:
    """Table 4, one per error type: each refurbishing recipe's paired difference to baseline by level, with label Dice before -> after."""
    refurb = frame[(frame["refurb_after"].notna() | frame["method"].str.endswith("-restore")) & (frame["noise"] != "none")]
    if refurb.empty:
        return "(no refurbishment results yet)"
    parts = ["paired difference in mean Dice to baseline ± 95% interval (n paired seeds); labels: mean label Dice of the truly "
             "corrupted samples a method refurbished, before -> after"]  # fmt: skip
    for kind, t in refurb.groupby("noise_type"):
        specs = _specs(t)
        rows = []
        for method, g in t.groupby("method"):
            cells = []
            for spec in specs:
                row = g[g["noise"] == spec]
                if row.empty:
                    cells.append("-")
                    continue
                r = row.iloc[0]
                labels = "" if math.isnan(r.refurb_after) else f"; labels {r.refurb_before:.2f} -> {r.refurb_after:.2f}"
                cells.append(f"{_ci(r.delta_dice, r.delta_dice_ci, signed=True)} (n {r.delta_n}){labels}")
            rows.append([f"`{method}`", *cells])
        parts.append(f"**{kind}**\n\n" + _table(["method", *specs], rows))
    return "\n\n".join(parts)


def lost_structures(frame: pd.DataFrame) -> str:
    """Table 5: per method (rows, by name) and spec (columns, those where some seed lost a structure), the board's `lost` / `n`."""
    shown = [s for s in _specs(frame) if frame.loc[frame["noise"] == s, "lost"].any()]
    if not shown:
        return f"(no seed lost a structure: every structure's test Dice is at least {board_stats.LOST_BELOW:g})"
    cells = {(r.method, r.noise): f"{r.lost}/{r.n}" for r in frame.itertuples()}
    rows = [[f"`{m}`", *(cells.get((m, s), "-") for s in shown)] for m in sorted(frame["method"].unique())]
    quiet = [s for s in _specs(frame) if s not in shown]
    note = f"seeds that lost a structure / seeds: trials in which some structure's test Dice is below {board_stats.LOST_BELOW:g}"
    note += f"; none did at {', '.join(quiet)}" if quiet else ""
    return note + "\n\n" + _table(["method", *shown], rows)


def noise_robustness(records: list[Record], specs: Iterable[str]) -> str:
    """Table 6: per method and noisy spec (of `specs`), the paired difference in differences of mean Dice to baseline and clean."""
    dice = _mean_dice(records)
    base = dice.get(BASELINE, {})
    noisy = [s for s in specs if s != "none" and s in base]
    if "none" not in base or not noisy:
        return "(no baseline with clean and noisy runs yet)"
    rows = []
    for method in sorted(m for m in dice if m != BASELINE and "none" in dice[m]):
        mine, cells = dice[method], []
        for spec in noisy:
            seeds = sorted(set(mine.get(spec, {})) & set(mine["none"]) & set(base[spec]) & set(base["none"]))
            diffs = [(mine[spec][k] - mine["none"][k]) - (base[spec][k] - base["none"][k]) for k in seeds]
            mean, half, n = mean_interval(diffs)
            cells.append("-" if not n else f"{_ci(mean, half, signed=True)} (n {n})")
        rows.append([f"`{method}`", *cells])
    note = (
        "(method at the spec - method clean) - (baseline at the spec - baseline clean), mean Dice, paired by seed, ± 95% "
        "interval (n seeds with all four runs); above 0: the noise costs the method less than it costs baseline"
    )
    return note + "\n\n" + _table(["method", *noisy], rows)


def flag_rule(records: list[Record], specs: Iterable[str]) -> str:
    """Table 7: per detecting method (not a reference) and spec, the seeds whose rule flagged anything and the mean flagged
    and corrupted counts: a detector that ranks well but whose rule flags nothing leaves its method training as baseline."""
    cells: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for r in records:
        found = (r.metrics or {}).get("detection") if r.status == "ok" else None
        if found and not board_stats.is_reference(r.method):
            cells.setdefault(r.method["name"], {}).setdefault(r.noise["spec"], []).append((found["n_flagged"], found["n_corrupted"]))
    if not cells:
        return "(no detecting method yet)"
    shown = [s for s in specs if any(s in by_spec for by_spec in cells.values())]
    rows = []
    for method in sorted(cells):
        row = [f"`{method}`"]
        for spec in shown:
            runs = cells[method].get(spec, [])
            if not runs:
                row.append("-")
                continue
            flagged = sum(f > 0 for f, _ in runs)
            row.append(f"{flagged}/{len(runs)}: {sum(f for f, _ in runs) / len(runs):.0f} of {sum(c for _, c in runs) / len(runs):.0f}")
        rows.append(row)
    note = "seeds whose rule flagged any sample / seeds: mean flagged of mean truly corrupted training samples"
    return note + "\n\n" + _table(["method", *shown], rows)


def flags_by_quality(records: list[Record], info: pd.DataFrame) -> str:
    """Table 8: per detecting method (not a reference), the flagged share of training samples by image quality, pooled
    over seeds: clean samples at `none`, clean samples at the noisy specs, corrupted samples there. `info` is the
    training set's table in training-id order (`id`, `quality`); records of another training set are left out."""
    ids, quality = info["id"].tolist(), info["quality"].astype(str).to_numpy()
    levels = sorted(set(quality))
    expected = fingerprint(*ids)
    counts: dict[str, dict[str, np.ndarray]] = {}  # method -> column -> (levels, [flagged, total])
    for r in records:
        sample = r.per_sample if r.status == "ok" and not board_stats.is_reference(r.method) else None
        if not sample or sample.get("ids_fingerprint") != expected:
            continue
        flags, corrupted = np.asarray(sample["flags"], dtype=bool), np.asarray(sample["corrupted"], dtype=bool)
        clean_data = r.noise["spec"] == "none"
        by_column = counts.setdefault(r.method["name"], {})
        for column, keep in (("none", ~corrupted if clean_data else None), ("clean", None if clean_data else ~corrupted),
                             ("corrupted", None if clean_data else corrupted)):  # fmt: skip
            if keep is None:
                continue
            tally = by_column.setdefault(column, np.zeros((len(levels), 2), dtype=np.int64))
            for i, level in enumerate(levels):
                at = keep & (quality == level)
                tally[i] += (int(flags[at].sum()), int(at.sum()))
    if not counts:
        return "(no detecting method with per-sample flags of this training set yet)"

    def cell(tally: np.ndarray | None) -> str:
        if tally is None or not tally[:, 1].any():
            return "-"
        return " · ".join(f"{100 * f / n:.0f}%" if n else "-" for f, n in tally)

    rows = [[f"`{m}`", *(cell(counts[m].get(c)) for c in ("none", "clean", "corrupted"))] for m in sorted(counts)]
    sizes = ", ".join(f"{level} {int((quality == level).sum())}" for level in levels)
    note = f"flagged share of the training samples of each image quality ({' · '.join(levels)}; training set: {sizes}), "
    note += "pooled over seeds (and, for the noisy columns, over specs)"
    header = ["method", "clean data", "noisy data: clean samples", "noisy data: corrupted samples"]
    return note + "\n\n" + _table(header, rows)


#: table 9's letter for each reason `bench.flagging.high_population_flags` gives, in the order its tests run
REASONS = {
    "too few distinct scores": "n",
    "one population fits better (BIC)": "b",
    "components not separated": "s",
    "two Gaussians do not fit the tails": "t",
    "a component too small to be a population": "w",
    "no score favours the high component": "h",
    "flagged": "f",
}


def rule_decisions(records: list[Record], specs: Iterable[str]) -> str:
    """Table 9: why a population flag rule flagged or not. Per detecting method (not a reference) whose recipe names
    "populations" or "populations-v2", and spec: the rule rerun on each record's stored scores (`per_sample.scores`),
    Ashman's D of its two components (median and range over seeds; the rule needs D > 2) and how many seeds ended at
    each of its tests. A seed whose rerun flags differ from the record's is counted, not explained."""
    cells: dict[str, dict[str, list[tuple[Flagging, bool]]]] = {}
    for r in records:
        rule = ((r.method.get("recipe") or {}).get("detector_params") or {}).get("flag_rule")
        sample = r.per_sample if r.status == "ok" and not board_stats.is_reference(r.method) else None
        if rule not in ("populations", "populations-v2") or not sample or sample.get("scores") is None:
            continue
        decided = population_rule(rule, np.asarray(sample["scores"], dtype=np.float64))
        same = bool(np.array_equal(decided.flags, np.asarray(sample["flags"], dtype=bool)))
        cells.setdefault(r.method["name"], {}).setdefault(r.noise["spec"], []).append((decided, same))
    if not cells:
        return "(no method with a population flag rule and stored scores yet)"
    shown = [s for s in specs if any(s in by_spec for by_spec in cells.values())]

    def cell(runs: list[tuple[Flagging, bool]]) -> str:
        if not runs:
            return "-"
        d = np.array([f.separation for f, _ in runs])
        d = d[np.isfinite(d)]
        where = f"D {np.median(d):.1f} ({d.min():.1f}-{d.max():.1f})" if d.size else "D -"
        ended = [REASONS[f.reason] for f, _ in runs]
        tally = " ".join(f"{letter}{ended.count(letter)}" for letter in REASONS.values() if letter in ended)
        differ = sum(not same for _, same in runs)
        return f"{where}: {tally}" + (f"; {differ} not reproduced" if differ else "")

    rows = [[f"`{m}`", *(cell(cells[m].get(spec, [])) for spec in shown)] for m in sorted(cells)]
    legend = ", ".join(f"{letter} {reason}" for reason, letter in REASONS.items())
    note = (
        "the rule rerun on each record's stored scores: Ashman's D of its two components, median (range) over seeds "
        f"(flags need D > 2), then seeds per outcome ({legend})"
    )
    return note + "\n\n" + _table(["method", *shown], rows)


def training_info(protocol: str) -> pd.DataFrame | None:
    """The protocol's training table (`protocol_data`), or None where its dataset is not on this machine (CAMUS)."""
    try:
        return protocol_data(protocols.get(protocol))["train"].info
    except BenchError:
        return None


def made_on(records: list[Record], frame: pd.DataFrame) -> str:
    """Which machine kinds made the records (records are bit-reproducible within a kind only), and how many of the
    board's paired seeds (methods against `baseline`, references left out) compare records of two kinds."""
    counts = pd.Series([machine_kind(r) or "unrecorded" for r in records]).value_counts()
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    methods = frame[(frame["method"] != BASELINE) & ~frame["reference"]]
    across, pairs = int(methods["delta_across_machines"].sum()), int(methods["delta_n"].sum())
    return f"Made on: {kinds}; paired seeds across machine kinds: {across} of {pairs}."


def cost_in_blocks(records: list[Record], frame: pd.DataFrame) -> str:
    """Table 10: per method, CPU seconds over those of the `baseline` trial made in the same block (kind, spec, seed; created
    between the block's first and last other record), mean ± 95% interval over blocks, beside the board's `cost / baseline`."""
    blocks: dict[tuple[str, str, int], dict[str, tuple[datetime, float]]] = {}
    for r in records:
        cpu = r.cost.get("cpu_s") if r.status == "ok" else None
        if cpu and machine_kind(r) and r.provenance.get("created"):
            key = (machine_kind(r), r.noise["spec"], r.seed)
            blocks.setdefault(key, {})[r.method["name"]] = (datetime.fromisoformat(r.provenance["created"]), float(cpu))
    ratios: dict[str, list[float]] = {}
    kept = []
    for key, runs in blocks.items():
        others = [t for m, (t, _) in runs.items() if m != BASELINE]
        if BASELINE not in runs or not others or not min(others) <= runs[BASELINE][0] <= max(others):
            continue
        kept.append(key)
        for method, (_, cpu) in runs.items():
            if method != BASELINE:
                ratios.setdefault(method, []).append(cpu / runs[BASELINE][1])
    if not ratios:
        return "(no block has a `baseline` trial made among its other trials)"
    board_cost = frame.groupby("method")["cost_rel"].mean()
    rows = []
    for method in sorted(ratios, key=lambda m: (np.mean(ratios[m]), m)):
        mean, half, n = mean_interval(ratios[method])
        rows.append([f"`{method}`", f"{_ci(mean, half, 2)} (n {n})", _ci(board_cost.get(method, math.nan), math.nan, 2)])
    where = ", ".join(f"{spec} seed {seed} on {kind}" for kind, spec, seed in sorted(kept))
    note = f"CPU seconds / the same block's `baseline` trial's, mean ± 95% interval over the blocks ({where}); "
    note += "board: its `cost / baseline`, mean over specs"
    return note + "\n\n" + _table(["method", "in the block", "board"], rows)


def _verdict(row: pd.Series) -> str:
    """A method-spec cell's Holm verdict against `baseline`: better, worse or no difference shown."""
    if not row["delta_holm_reject"]:
        return "-"
    return "better" if row["delta_dice"] > 0 else "worse"


def _pair_cells(row: pd.Series) -> list[str]:
    """Table 11's cells of one board row: difference to `baseline` ± interval, Holm p and verdict, pairs across kinds."""
    p = "-" if math.isnan(row["delta_p_holm"]) else f"{row['delta_p_holm']:.3f} {_verdict(row)}"  # no p: every difference equal
    return [_ci(row["delta_dice"], row["delta_dice_ci"], signed=True), p,
            f"{row['delta_across_machines']} of {row['delta_n']}"]  # fmt: skip


def _spec_value(frame: pd.DataFrame, spec: str, column: str) -> float:
    """A per-spec column of the board (the same on each of the spec's rows but `baseline`'s)."""
    return float(frame.loc[(frame["noise"] == spec) & (frame["method"] != BASELINE), column].iloc[0])


def _rerun_baselines(records: list[Record], reruns: list[Record]) -> tuple[dict[tuple[str, int], Record], list[Record]]:
    """The ok `baseline` reruns of the board's cells by (spec, seed), and the records with them in place of the board's."""
    board_keys = {(r.noise["spec"], r.seed) for r in records if r.method["name"] == BASELINE}
    swap = {(r.noise["spec"], r.seed): r for r in reruns if r.method["name"] == BASELINE and r.ok}
    swap = {k: r for k, r in swap.items() if k in board_keys}
    return swap, [swap.get((r.noise["spec"], r.seed), r) if r.method["name"] == BASELINE else r for r in records]


def _ranked_pairs(before: pd.DataFrame, after: pd.DataFrame, spec: str) -> Iterator[tuple[pd.Series, pd.Series]]:
    """The rows of each ranked method at `spec` on two boards of the same cells, in `before`'s order."""
    for _, b in before[(before["noise"] == spec) & (before["method"] != BASELINE) & ~before["reference"]].iterrows():
        yield b, after[(after["noise"] == spec) & (after["method"] == b["method"])].iloc[0]


def verdict_changes(before: pd.DataFrame, after: pd.DataFrame, specs: Iterable[str]) -> tuple[list[str], int]:
    """The ranked methods whose Holm verdict against `baseline` differs between two boards of the same cells, at `specs`
    ("`method` at spec: before -> after"), and how many method-spec cells were compared."""
    word = {"-": "not significant"}
    pairs = [(spec, b, a) for spec in specs for b, a in _ranked_pairs(before, after, spec)]
    changed = [f"`{b['method']}` at {spec}: {word.get(_verdict(b), _verdict(b))} -> {word.get(_verdict(a), _verdict(a))}"
               for spec, b, a in pairs if _verdict(a) != _verdict(b)]  # fmt: skip
    return changed, len(pairs)


def same_kind(records: list[Record], reruns: list[Record]) -> str:
    """Table 11: each method at the specs where `baseline` has reruns, against the board's `baseline` and against the
    reruns in its place: difference ± interval, Holm-adjusted p, pairs across kinds; then the verdicts that change."""
    swap, swapped = _rerun_baselines(records, reruns)
    if not swap:
        return "(no `baseline` rerun of a board cell given)"
    before, after = board(records), board(swapped)
    specs = [s for s in _specs(before) if any(k[0] == s for k in swap)]
    changed, tested = verdict_changes(before, after, specs)
    rows = []
    for spec in specs:
        kinds = sorted({machine_kind(r) or "unrecorded" for k, r in swap.items() if k[0] == spec})
        seeds = sorted(k[1] for k in swap if k[0] == spec)
        mdd = [f"spec MDD {_ci(_spec_value(f, spec, 'spec_mdd'), math.nan)}" for f in (before, after)]
        title = f"**{spec}** (`baseline` seeds {', '.join(map(str, seeds))} rerun on {', '.join(kinds)})"
        rows.append([title, mdd[0], "", "", mdd[1], "", ""])
        rows += [[f"`{b['method']}`", *_pair_cells(b), *_pair_cells(a)] for b, a in _ranked_pairs(before, after, spec)]
    shift = [swap[k].metrics["dice"]["mean"] - b.metrics["dice"]["mean"] for b in records if b.method["name"] == BASELINE
             for k in [(b.noise["spec"], b.seed)] if k in swap]  # fmt: skip
    mean, half, _ = mean_interval(pd.Series(shift))
    note = (f"{len(swap)} `baseline` records replaced by their reruns; a rerun's mean Dice minus the record's: "
            f"{_ci(mean, half, digits=4, signed=True)} (sd {np.std(shift, ddof=1) if len(shift) > 1 else math.nan:.4f}, "
            f"n {len(shift)}). Holm verdicts that change: {len(changed)} of {tested}"
            f"{' (' + '; '.join(changed) + ')' if changed else ''}. Columns: difference to `baseline` ± 95% interval, "
            "Holm-adjusted p and verdict, paired seeds across kinds; on the board, then with the reruns; each spec's row gives its "
            "MDD (table 3's, pooled over the spec's methods)")  # fmt: skip
    header = ["method", "board: Δ Dice", "Holm p", "across", "same kind: Δ Dice", "Holm p", "across"]
    return note + "\n\n" + _table(header, rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--protocol", required=True, help="name@version, e.g. phantom-quick@v2")
    parser.add_argument("--reruns", type=Path, help="a folder of `baseline` reruns (studies/rerun_records.py --save): adds table 11")
    args = parser.parse_args(argv)
    records = load_records(args.paths, args.protocol)
    reruns = load_records(args.reruns, args.protocol) if args.reruns else []
    frame = board(records)
    out = [
        f"{len(records)} records of {args.protocol}. " + made_on(records, frame),
        "### 0. The study's claims\n\n" + claims(frame, records, reruns),
        "### 1. What the noise costs `baseline`\n\n" + noise_cost(records, _specs(frame)),
        "### 2. Detection by error type\n\n" + detection(frame),
        "### 3. Methods against `baseline` after Holm's correction\n\n" + corrected(frame, records),
        "### 4. Refurbishment\n\n" + refurbishment(frame),
        "### 5. Trainings that lost a structure\n\n" + lost_structures(frame),
        "### 6. What the noise costs each method beyond what it costs `baseline`\n\n" + noise_robustness(records, _specs(frame)),
        "### 7. What the flag rules did\n\n" + flag_rule(records, _specs(frame)),
    ]
    info = training_info(args.protocol)
    quality = "(the protocol's dataset is not on this machine)" if info is None else flags_by_quality(records, info)
    out.append("### 8. Whom the flag rules flagged, by image quality\n\n" + quality)
    out.append("### 9. Why the population rule flagged or not\n\n" + rule_decisions(records, _specs(frame)))
    out.append("### 10. Cost within blocks\n\n" + cost_in_blocks(records, frame))
    if args.reruns:
        out.append("### 11. Pairs across machine kinds, with `baseline` rerun on the methods' kind\n\n" + same_kind(records, reruns))
    sys.stdout.write("\n\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
