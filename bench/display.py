"""What the user sees: a live table of running trials and the summary table at the end."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from ray import tune
from rich.console import Console
from rich.live import Live
from rich.table import Table

from bench.leaderboard import metric_columns, record_structures, work_macs
from bench.record import Record


class TrialDisplay(tune.Callback):
    """A Tune callback (runs in the driver) keeping one row per trial up to date."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.rows: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.live: Live | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its run config (callbacks included) to be able to resume; consoles do not pickle.
        return {**self.__dict__, "console": None, "live": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.console = Console()

    def __enter__(self) -> TrialDisplay:
        if self.console.is_terminal:
            self.live = Live(self._table(), console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._table())
            self.live.__exit__(*exc)

    def _key(self, trial: Any) -> str:
        return trial.config["trial"]["method"] + " | " + trial.config["trial"]["noise"] + f" | seed {trial.config['trial']['seed']}"

    def _update(self, trial: Any, **fields: Any) -> None:
        key = self._key(trial)
        row = self.rows.setdefault(key, {"status": "pending", "epoch": 0, "epochs": None, "loss": None, "dice": None})
        row.update(fields)
        if self.live is not None:
            self.live.update(self._table())
        elif fields.get("status") in ("ok", "failed") or "epoch" in fields:
            self.console.print(self._line(key, row), highlight=False)

    def _line(self, key: str, row: dict[str, Any]) -> str:
        elapsed = time.perf_counter() - self.started
        text = f"[{elapsed:6.0f}s] {key}: {row['status']}"
        if row["epochs"]:
            text += f", epoch {row['epoch']}/{row['epochs']}"
        if row["loss"] is not None:
            text += f", train loss {row['loss']:.3f}"
        if row["dice"] is not None:
            text += f", test Dice {row['dice']:.3f}"
        return text

    def _table(self) -> Table:
        table = Table(title=f"trials ({time.perf_counter() - self.started:.0f} s)", expand=False)
        for col in ("trial", "status", "epoch", "train loss", "test Dice"):
            table.add_column(col)
        for key, row in sorted(self.rows.items()):
            epoch = f"{row['epoch']}/{row['epochs']}" if row["epochs"] else "-"
            loss = f"{row['loss']:.3f}" if row["loss"] is not None else "-"
            dice = f"{row['dice']:.3f}" if row["dice"] is not None else "-"
            table.add_row(key, row["status"], epoch, loss, dice)
        return table

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, status="running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("done"):
            status = result.get("status", "?")
            self._update(trial, status=status, epoch=result["epoch"], epochs=result["epochs"], dice=result.get("dice_mean"))
        else:
            self._update(trial, status="running", epoch=result["epoch"], epochs=result["epochs"], loss=result["train_loss"])

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._update(trial, status="error")


def _fmt(values: pd.Series) -> str:
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return "-"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def records_frame(records: list[Record], structures: list[str]) -> pd.DataFrame:
    """One row per record with the columns the summary shows (Dice of each of `structures` and the mean)."""
    rows = []
    for r in records:
        det = r.metrics.get("detection") or {}
        dice = r.metrics.get("dice") or {}
        rows.append(
            {
                "method": r.method["name"],
                "noise": r.noise["spec"],
                "seed": r.seed,
                "status": r.status,
                **{f"dice_{k}": dice.get(k, np.nan) for k in (*structures, "mean")},
                "auroc": det.get("auroc", np.nan),
                "flagged": det.get("n_flagged", np.nan),
                "corrupted": r.noise.get("n_corrupted", np.nan),
                "wall_s": r.cost.get("wall_s", np.nan),
                "gmac": work_macs(r.cost) / 1e9,
            }
        )
    return pd.DataFrame(rows)


def summary_table(records: list[Record]) -> Table:
    """Per method and noise spec: Dice per structure, detection AUROC, flags, time and work in GMAC (mean ± sd over seeds)."""
    structures = record_structures(records)
    frame = records_frame(records, structures)
    table = Table(title="results: mean ± sd over seeds, Dice on the clean test labels")
    dice = [label for column, label in metric_columns(structures).items() if column.startswith("dice_")]  # per structure, mean
    columns = ["method", "noise", "seeds", *dice, "det. AUROC", "flagged / corrupted", "wall s", "GMAC"]
    for col in columns:
        table.add_column(col, justify="left" if col in ("method", "noise") else "right")
    if frame.empty:
        return table
    for (method, noise), g in frame.groupby(["method", "noise"], sort=False):
        ok = g[g["status"] == "ok"]
        failed = len(g) - len(ok)
        seeds = f"{len(ok)}" + (f" (+{failed} failed)" if failed else "")
        flagged = "-" if ok["flagged"].isna().all() else f"{ok['flagged'].mean():.1f} / {ok['corrupted'].mean():.1f}"
        table.add_row(
            method,
            noise,
            seeds,
            *(_fmt(ok[f"dice_{k}"]) for k in (*structures, "mean")),
            _fmt(ok["auroc"]),
            flagged,
            f"{ok['wall_s'].mean():.0f}" if len(ok) else "-",
            f"{ok['gmac'].mean():.0f}" if ok["gmac"].notna().any() else "-",
        )
    return table
