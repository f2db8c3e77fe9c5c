"""Runs a grid of trials (methods x noise specs x seeds) as Ray Tune trials.

Every name and spec is checked before Ray starts, so a typo costs nothing.
Each Tune trial runs `bench.trial.run_trial` with torch threads set from its CPU
share and reports progress per epoch; its last report carries the whole record,
which the driver writes atomically (the driver is the only writer, so `--out`
needs no shared file system on a cluster). A trial that raises, whose training
loss stops being finite (checked every epoch by the training loop), or whose
record fails `Record.problems`, becomes a failed record
and the others go on.

Runs are resumable by their records: `check_existing` finds the grid cells that
already have an `ok` record of the same protocol hash under `--out`, and only
the rest run. Ctrl-C stops the driver at once (KeyboardInterrupt, exit 130 in
the CLI); finished records stay, running trials are lost and rerun by --resume.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray import tune

from bench.errors import BenchError
from bench.grid import TrialSpec
from bench.grid import plan_grid as plan_grid  # re-exported: the grid is planned (every name checked) before Ray loads
from bench.method import recipe_for
from bench.noise import parse_noise
from bench.protocols import Protocol
from bench.record import Cell, Record, method_section, noise_section, now, protocol_section, provenance_section

# Tune's own console output would fight the suite's display.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# Ctrl-C: a KeyboardInterrupt in the driver instead of Tune's "save and return as if finished".
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")


def cell_path(out: Path, spec: TrialSpec, protocol: Protocol) -> Path:
    """Where the record of grid cell `spec` lives under `out` (see `bench.record.Cell.path`)."""
    return Cell(protocol.name, protocol.version, spec.method, spec.noise, spec.seed).path(out)


@dataclass
class ExistingRecords:
    """What `check_existing` found: the cells still to run and the finished records, by cell."""

    todo: list[TrialSpec]
    done: dict[TrialSpec, Record] = field(default_factory=dict)
    #: cells that had a record which is rerun (failed or unreadable), with the reason
    redo: list[tuple[TrialSpec, str]] = field(default_factory=list)


def check_existing(grid: list[TrialSpec], out: Path, protocols: Mapping[str, Protocol], resume: bool) -> ExistingRecords:
    """Compare the grid with the records already under `out`, before anything runs.

    Without `resume` any existing record of a cell is a BenchError (nothing is
    overwritten). With `resume` a cell whose record is `ok` with the same
    protocol hash is skipped; a failed or unreadable record is rerun (and
    replaced); an `ok` record of another hash (a protocol changed without a
    version bump) is a BenchError.
    """
    found = ExistingRecords(todo=[])
    for spec in grid:
        protocol = protocols[spec.protocol]
        path = cell_path(out, spec, protocol)
        if not path.exists():
            found.todo.append(spec)
            continue
        if not resume:
            raise BenchError(f"a record for {spec.label} already exists: {path}; add --resume to finish that run, or use another --out")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            found.todo.append(spec)
            found.redo.append((spec, f"unreadable ({type(error).__name__})"))
            continue
        if Record.problems(data):
            found.todo.append(spec)
            found.redo.append((spec, "not a valid record"))
            continue
        record = Record.from_dict(data, str(path))
        if not record.ok:
            found.todo.append(spec)
            found.redo.append((spec, "failed before"))
        elif record.protocol.get("hash") != protocol.hash:
            raise BenchError(
                f"{path} has protocol hash {record.protocol.get('hash')}, but {protocol.name} v{protocol.version} is now "
                f"{protocol.hash} (changed without a version bump?); use another --out"
            )
        else:
            found.done[spec] = record
    return found


def _error_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[-1] if text else ""


def failed_record(spec: TrialSpec, protocol: Protocol, error: BaseException) -> Record:
    """A record saying the trial failed and why (kept beside the good ones)."""
    return Record(
        status="failed",
        error=f"{type(error).__name__}: {_error_line(error)}",
        traceback=traceback.format_exception(error)[-3:],
        protocol=protocol_section(protocol),
        dataset={"name": protocol.dataset, "fingerprint": None, "n_train": None, "n_test": None},
        method=method_section(recipe_for(spec.method, protocol)),
        noise=noise_section(parse_noise(spec.noise)),
        seed=spec.seed,
        metrics={},
        cost={},
        provenance=provenance_section(),
    )


def check_worker_protocol(sent: Protocol) -> None:
    """Refuse to run when this process registers the protocol's name and version with other settings (other code on a node)."""
    from bench.protocols import protocols

    if sent.name in protocols.names():
        mine = next((p for p in protocols.versions(sent.name) if p.version == sent.version), sent)
        if mine.hash != sent.hash:
            raise BenchError(
                f"protocol {sent.name} v{sent.version} hashes to {mine.hash} here but {sent.hash} in the driver; "
                "install the same echo-noise-bench on every node"
            )


def _trainable(config: dict[str, Any]) -> None:
    """The Tune trainable: one trial, progress reported per epoch, the record sent to the driver in the last report."""
    import torch

    from bench.plugins import load_plugins
    from bench.trial import run_trial

    torch.set_num_threads(max(1, int(config["threads"])))
    load_plugins()
    spec = TrialSpec(**config["trial"])
    protocol: Protocol = config["protocols"][spec.protocol]

    def on_epoch(epoch: int, loss: float) -> None:  # the training loop itself stops on a non-finite loss
        tune.report({"epoch": epoch, "epochs": protocol.epochs, "train_loss": loss, "done": False})

    try:
        check_worker_protocol(protocol)
        record = run_trial(
            protocol, spec.method, spec.noise, spec.seed, on_epoch=on_epoch, data_root=config["data_root"], device=config["device"]
        )
        problems = Record.problems(record.to_dict())
        if problems:
            raise RuntimeError(f"the trial produced an invalid record: {'; '.join(problems[:3])}")
    except Exception as error:  # a failed trial is recorded and does not stop the others
        record = failed_record(spec, protocol, error)
    dice = record.metrics.get("dice", {})
    final = {"epoch": protocol.epochs, "epochs": protocol.epochs, "done": True, "status": record.status}
    tune.report({**final, **{f"dice_{k}": v for k, v in dice.items()}, "record_json": record.to_json()})


class RecordWriter(tune.Callback):
    """A Tune callback (runs in the driver) writing each trial's record atomically as soon as it arrives.

    A trial whose process dies without sending its record (killed, out of
    memory, an error outside the trial's own try) gets a failed record here.
    """

    def __init__(self, out: Path, protocols: Mapping[str, Protocol]) -> None:
        self.out = out
        self.protocols = dict(protocols)
        self.records: dict[TrialSpec, Record] = {}
        self.paths: dict[TrialSpec, Path] = {}

    def _write(self, spec: TrialSpec, record: Record) -> None:
        self.records[spec], self.paths[spec] = record, record.write(self.out)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("record_json"):
            spec = TrialSpec(**trial.config["trial"])
            self._write(spec, Record.from_dict(json.loads(result["record_json"]), f"the record of {spec.label}"))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        spec = TrialSpec(**trial.config["trial"])
        if spec in self.records:
            return
        error = trial.get_error()
        where = getattr(trial, "path", None)
        text = _error_line(Exception(error)) if error else f"the trial's process failed (Tune's error file: {where}/error.txt)"
        cause = RuntimeError(text)
        self._write(spec, failed_record(spec, self.protocols[spec.protocol], cause))


def _connect_error(address: str, error: BaseException) -> str:
    chain, e = [], error
    while e is not None and len(chain) < 5:
        chain.append(e)
        e = e.__cause__ or e.__context__
    if any("authentication" in f"{type(e).__name__} {e}".lower() for e in chain):
        return (
            f"cannot connect to Ray at {address}: the cluster wants an auth token; set RAY_AUTH_MODE=token and the "
            "cluster's token (RAY_AUTH_TOKEN or ~/.ray/auth_token)"
        )
    return f"cannot connect to Ray at {address}: {_error_line(error)}"


def probe_address(address: str, timeout: float = 10.0) -> None:
    """BenchError unless something listens at a HOST:PORT address (Ray itself would retry for many minutes); other forms pass."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise BenchError(f"--address {address} is not HOST:PORT (e.g. 10.0.0.5:6379), 'auto' or a ray:// address")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        reason = error.strerror or str(error)
        raise BenchError(f"cannot reach Ray at {address}: {reason}; is the head running (ray status --address {address})?") from None


def init_ray(num_cpus: int | None = None, address: str | None = None) -> None:
    """Start a quiet local Ray (no dashboard, worker logs kept off the console), or connect to `address`; no-op if Ray is up."""
    import ray

    if ray.is_initialized():
        return
    for name in ("ray", "ray.tune", "ray.train", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address:
        probe_address(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise BenchError(_connect_error(address, error)) from None
        return
    ray.init(
        num_cpus=num_cpus or os.cpu_count() or 1,
        include_dashboard=False,
        object_store_memory=256 * 1024 * 1024,
        **quiet,
    )


def check_resources(cpus_per_trial: int, gpus_per_trial: float) -> None:
    """BenchError when no node of the running Ray could ever hold one trial (Tune would wait for ever)."""
    import ray

    total = ray.cluster_resources()
    cpus, gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
    if cpus_per_trial > cpus:
        raise BenchError(f"each trial asks for {cpus_per_trial} CPU(s) but the Ray cluster has {cpus:g}; lower --cpus-per-trial")
    if gpus_per_trial > gpus:
        raise BenchError(f"each trial asks for {gpus_per_trial:g} GPU(s) but the Ray cluster has {gpus:g}; lower --gpus-per-trial")


def run_grid(
    grid: list[TrialSpec],
    out: Path,
    cpus_per_trial: int = 1,
    max_concurrent: int | None = None,
    display: Any = None,
    data_root: Path | None = None,
    *,
    gpus_per_trial: float = 0.0,
    address: str | None = None,
    storage: str | Path | None = None,
    protocols: Mapping[str, Protocol] | None = None,
) -> list[Record]:
    """Run `grid` as Tune trials; return the records written (in grid order).

    `protocols` maps a protocol name to the object the trials run (default: the
    registered one); the driver sends it to the workers. `address` connects to
    an existing Ray cluster; `storage` is Tune's experiment folder or URI (default
    `<out>/_tune`; on a multi-node cluster it must be shared by every node).
    With `gpus_per_trial` > 0 each trial trains on the GPU Ray assigns it (a fraction
    shares one GPU between trials), else on the CPU.
    """
    from bench.protocols import protocols as registry

    by_name = dict(protocols or {})
    for spec in grid:
        if spec.protocol not in by_name:
            by_name[spec.protocol] = registry.get(spec.protocol)
    init_ray(address=address)
    check_resources(cpus_per_trial, gpus_per_trial)
    out = out.resolve()
    storage_path = str(storage) if storage is not None and "://" in str(storage) else str(Path(storage or out / "_tune").resolve())
    resources: dict[str, float] = {"cpu": cpus_per_trial}
    if gpus_per_trial > 0:
        resources["gpu"] = gpus_per_trial
    writer = RecordWriter(out, by_name)
    tuner = tune.Tuner(
        tune.with_resources(_trainable, resources),
        param_space={
            "trial": tune.grid_search([asdict(t) for t in grid]),
            "protocols": by_name,
            "threads": cpus_per_trial,
            "device": "cuda" if gpus_per_trial > 0 else "cpu",
            "data_root": str(data_root.resolve()) if data_root is not None else None,
        },
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent or 0, reuse_actors=True),
        run_config=tune.RunConfig(
            storage_path=storage_path,
            name=f"run-{now().replace(':', '')}-{os.getpid()}-{secrets.token_hex(3)}",  # unique even within a second
            verbose=0,
            callbacks=[writer, display] if display is not None else [writer],
            log_to_file=False,
        ),
    )
    tuner.fit()
    return [writer.records[spec] for spec in grid if spec in writer.records]
