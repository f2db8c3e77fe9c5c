"""Runs a grid of trials (methods x noise specs x seeds) as Ray Tune trials.

Every name and spec is checked before Ray starts, so a typo costs nothing.
Each Tune trial runs `bench.trial.run_trial` with torch threads set from its CPU
share, writes its record atomically, and reports progress per epoch to the
driver, which shows a live table and a summary at the end.
"""

from __future__ import annotations

import json
import logging
import os
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.method import methods
from bench.noise import parse_noise
from bench.protocols import Protocol
from bench.record import SCHEMA, SCHEMA_VERSION, git_commit, now, package_versions, record_path, write_json_atomic

# Tune's own console output would fight the suite's display.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@dataclass(frozen=True)
class TrialSpec:
    """One cell of the grid: everything a trial is a function of."""

    protocol: str
    method: str
    noise: str
    seed: int

    @property
    def label(self) -> str:
        """A short human-readable name."""
        return f"{self.method} | {self.noise} | seed {self.seed}"


def plan_grid(protocol: Protocol, method_names: list[str], noise_specs: list[str], seeds: list[int]) -> list[TrialSpec]:
    """The grid in a fixed order, after checking every name and spec (BenchError on the first bad one)."""
    if not method_names or not noise_specs or not seeds:
        raise BenchError("the grid is empty: give at least one method, one noise spec and one seed")
    for name in method_names:
        methods.get(name)
    canonical = [parse_noise(s).text for s in noise_specs]
    if any(s < 0 for s in seeds):
        raise BenchError(f"seeds must be non-negative integers, got {seeds}")
    unique_methods, unique_noise, unique_seeds = dict.fromkeys(method_names), dict.fromkeys(canonical), dict.fromkeys(seeds)
    return [TrialSpec(protocol.name, m, n, s) for m in unique_methods for n in unique_noise for s in unique_seeds]


def failed_record(spec: TrialSpec, protocol: Protocol, error: BaseException) -> dict[str, Any]:
    """A record saying the trial failed and why (kept beside the good ones)."""
    noise = parse_noise(spec.noise)
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": "failed",
        "error": f"{type(error).__name__}: {error}",
        "traceback": traceback.format_exception(error)[-3:],
        "protocol": {"name": protocol.name, "version": protocol.version, "hash": protocol.hash},
        "dataset": {"name": protocol.dataset, "fingerprint": None, "n_train": None, "n_test": None},
        "method": {"name": spec.method, "recipe": methods.get(spec.method).describe()},
        "noise": {
            "spec": noise.text,
            "type": noise.type,
            "level": noise.level,
            "params": noise.params,
            "n_corrupted": None,
            "mean_label_dice": None,
        },
        "seed": spec.seed,
        "metrics": {},
        "cost": {},
        "provenance": {
            "bench_version": None,
            "git_commit": git_commit(),
            "packages": package_versions(),
            "device": None,
            "command": None,
            "created": now(),
        },
    }


def _trainable(config: dict[str, Any]) -> None:
    """The Tune trainable: one trial, its record written atomically, progress reported per epoch."""
    import torch
    from ray import tune

    from bench.plugins import load_plugins
    from bench.protocols import protocols
    from bench.trial import run_trial

    torch.set_num_threads(max(1, int(config["threads"])))
    load_plugins()
    spec = TrialSpec(**config["trial"])
    protocol = protocols.get(spec.protocol)
    out = Path(config["out"])

    def on_epoch(epoch: int, loss: float) -> None:
        tune.report({"epoch": epoch, "epochs": protocol.epochs, "train_loss": loss, "done": False})

    try:
        record = run_trial(protocol, spec.method, spec.noise, spec.seed, on_epoch=on_epoch, data_root=config["data_root"])
    except Exception as error:  # a failed trial is recorded and does not stop the others
        record = failed_record(spec, protocol, error)
    path = record_path(out, record)
    write_json_atomic(path, record)
    dice = record["metrics"].get("dice", {})
    final = {"epoch": protocol.epochs, "epochs": protocol.epochs, "done": True, "status": record["status"], "record": str(path)}
    tune.report({**final, **{f"dice_{k}": v for k, v in dice.items()}})


def init_ray(num_cpus: int | None = None) -> None:
    """Start a quiet local Ray (no dashboard, worker logs kept off the console) unless one is running."""
    import ray

    if ray.is_initialized():
        return
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ray.init(
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
        configure_logging=True,
        object_store_memory=256 * 1024 * 1024,
    )


def run_grid(
    grid: list[TrialSpec],
    out: Path,
    cpus_per_trial: int = 1,
    max_concurrent: int | None = None,
    display: Any = None,
    data_root: Path | None = None,
) -> list[dict[str, Any]]:
    """Run `grid` as Tune trials; return the records written (in grid order)."""
    from ray import tune

    init_ray()
    out = out.resolve()
    storage = out / "_tune"
    trainable = tune.with_resources(_trainable, {"cpu": cpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space={
            "trial": tune.grid_search([asdict(t) for t in grid]),
            "out": str(out),
            "threads": cpus_per_trial,
            "data_root": str(data_root.resolve()) if data_root is not None else None,
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent or 0, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            name=f"run-{now().replace(':', '')}",
            verbose=0,
            callbacks=[display] if display is not None else [],
            log_to_file=False,
        ),
    )
    results = tuner.fit()
    records = []
    by_trial = {}
    for result in results:
        metrics = result.metrics or {}
        trial = TrialSpec(**result.config["trial"])
        if metrics.get("record"):
            by_trial[trial] = json.loads(Path(metrics["record"]).read_text())
    for trial in grid:
        if trial in by_trial:
            records.append(by_trial[trial])
    return records
