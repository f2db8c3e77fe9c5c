"""The result record of one trial: the one type that builds, writes, reads, finds and validates records.

A record is the unit of truth; every table is derived from records. Records are
JSON, schema-versioned, and written atomically (a temporary file in the same
folder, then a rename), so a crash never leaves half a record on disk. `Record`
holds one; `Record.problems` is the one validation (shape, then values no trial
can produce); `find_records` the one way to find record files under folders;
`duplicate_cells` the one duplicate check; `Cell` names a grid cell and its path.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.files import write_text_atomic

SCHEMA = "echo-noise-bench/record"
SCHEMA_VERSION = 1
PACKAGES = ("torch", "segmentation-models-pytorch", "timm", "numpy", "scipy", "ray", "echo-noise-bench")

#: top-level keys and their types; nested sections are checked by `_shape_problems`
_TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "schema": str,
    "schema_version": int,
    "status": str,
    "protocol": dict,
    "dataset": dict,
    "method": dict,
    "noise": dict,
    "seed": int,
    "metrics": dict,
    "cost": dict,
    "provenance": dict,
}
_SECTIONS: dict[str, tuple[str, ...]] = {
    "protocol": ("name", "version", "hash"),
    "dataset": ("name", "fingerprint", "n_train", "n_test"),
    "method": ("name", "recipe"),
    "noise": ("spec", "type", "level", "params", "n_corrupted", "mean_label_dice"),
    "metrics": ("dice", "hd95", "hd", "msd", "missed", "clinical", "detection", "refurbishment"),
    "cost": ("wall_s", "train_s", "detect_s", "epochs"),
    "provenance": ("bench_version", "git_commit", "packages", "device", "command", "created"),
}


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that move numbers."""
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root: Path | None = None) -> str | None:
    """The commit of the source tree `bench` runs from (or `root`), or None outside git.

    Suffix `+dirty` when tracked files differ from it, except under `leaderboard/`:
    records are data that runs write, not the code that made them.
    """
    root = root or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)leaderboard"]
        dirty = subprocess.run(status, cwd=root, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- where records live


@dataclass(frozen=True)
class Cell:
    """One cell of a board: (protocol, version, method, noise spec, seed); at most one record each."""

    protocol: str
    version: int
    method: str
    noise: str
    seed: int

    @property
    def label(self) -> str:
        """A short human-readable name."""
        return f"{self.protocol} v{self.version} | {self.method} | {self.noise} | seed {self.seed}"

    def path(self, root: Path) -> Path:
        """Where its record lives: `<root>/<protocol>/v<version>/<method>/<noise>/seed<k>.json`."""
        noise = self.noise.replace(":", "-").replace(",", "_").replace("=", "-")
        return root / self.protocol / f"v{self.version}" / self.method / noise / f"seed{self.seed}.json"


def find_records(paths: Iterable[str | Path]) -> list[Path]:
    """Every `*.json` under `paths`, once, in order (a file is taken as given; names and folders starting with
    `_` or `.`, like Tune's `_tune/`, are skipped). BenchError for a path that does not exist."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise BenchError(f"no such file or folder: {path}; give folders or files of records")
        if path.is_file():
            found[path] = None
            continue
        for file in sorted(path.rglob("*.json")):
            if file.is_file() and not any(part.startswith(("_", ".")) for part in file.relative_to(path).parts):
                found[file] = None
    return list(found)


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class Record:
    """One trial's result, as written to disk (`to_dict` / `to_json`) and read back (`from_dict` / `read`).

    Sections are plain JSON data; `status` is "ok" (metrics, per-sample scores, cost) or
    "failed" (with `error` and the last lines of its `traceback`, no metrics or cost).
    """

    status: str
    protocol: dict[str, Any]
    dataset: dict[str, Any]
    method: dict[str, Any]
    noise: dict[str, Any]
    seed: int
    metrics: dict[str, Any]
    cost: dict[str, Any]
    provenance: dict[str, Any]
    per_sample: dict[str, Any] | None = None
    error: str | None = None
    traceback: list[str] | None = None
    schema: str = SCHEMA
    schema_version: int = SCHEMA_VERSION

    @property
    def ok(self) -> bool:
        """Whether the trial finished (its numbers may go on a board)."""
        return self.status == "ok"

    @property
    def cell(self) -> Cell:
        """The board cell this record fills."""
        return Cell(self.protocol["name"], self.protocol["version"], self.method["name"], self.noise["spec"], self.seed)

    def path(self, root: Path) -> Path:
        """Where this record lives under `root` (`Cell.path`)."""
        return self.cell.path(root)

    def to_dict(self) -> dict[str, Any]:
        """A copy of the record as JSON data, keys in the on-disk order (failed: error and traceback, no per-sample section)."""
        head: dict[str, Any] = {"schema": self.schema, "schema_version": self.schema_version, "status": self.status}
        if not self.ok:
            head.update(error=self.error, traceback=self.traceback)
        body = {"protocol": self.protocol, "dataset": self.dataset, "method": self.method, "noise": self.noise, "seed": self.seed}
        body["metrics"] = self.metrics
        if self.ok:
            body["per_sample"] = self.per_sample
        return copy.deepcopy({**head, **body, "cost": self.cost, "provenance": self.provenance})

    def to_json(self) -> str:
        """The record as the indented JSON text of its file."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def write(self, root: Path) -> Path:
        """Write the record atomically to its path under `root`; return the path.

        Refused when the existing part of its folder resolves outside `root` (a symbolic link
        planted in the output folder): records are only ever written inside it. The file
        itself is replaced by a rename, which never follows a link at its name.
        """
        path = self.path(root)
        existing = next(p for p in (path.parent, *path.parent.parents) if p.exists() or p == Path(root))
        if not existing.resolve().is_relative_to(Path(root).resolve()):
            raise BenchError(f"{existing} leads outside {root} (a symbolic link?); records are only written inside the output folder")
        write_text_atomic(path, self.to_json())
        return path

    @staticmethod
    def problems(data: Any) -> list[str]:
        """Everything wrong with `data` as a record: its shape, then values no trial can produce (empty list = valid)."""
        shape = _shape_problems(data)
        return shape or _value_problems(data)

    @classmethod
    def from_dict(cls, data: Any, source: str = "record") -> Record:
        """The record in `data` (copied), checked by `problems`; BenchError naming `source` and the first problems otherwise."""
        problems = cls.problems(data)
        if problems:
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            raise BenchError(f"{source} is not a valid record: {'; '.join(problems[:3])}{more}")
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: copy.deepcopy(v) for k, v in data.items() if k in fields})

    @classmethod
    def read(cls, path: Path) -> Record:
        """The record in file `path`; BenchError naming the file when it is unreadable, not JSON or not a valid record."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise BenchError(f"{path} is not a readable JSON record: {error}") from None
        return cls.from_dict(data, str(path))


def protocol_section(protocol: Any) -> dict[str, Any]:
    """The record's `protocol` section of a `bench.Protocol`; `trusted_patients` only when it has a trusted subset
    (the hash covers it; the count is shown so a reader sees it, and `bench validate` checks it against the registry)."""
    out = {"name": protocol.name, "version": protocol.version, "hash": protocol.hash}
    if getattr(protocol, "trusted_patients", 0):
        out["trusted_patients"] = protocol.trusted_patients
    return out


def method_section(recipe: Any) -> dict[str, Any]:
    """The record's `method` section of a `bench.Recipe`; `reference`: a ceiling that read the noise truth, not a method."""
    return {"name": recipe.name, "recipe": recipe.describe(), "reference": recipe.reference}


def noise_section(spec: Any, n_corrupted: int | None = None, mean_label_dice: float | None = None) -> dict[str, Any]:
    """The record's `noise` section of a `bench.NoiseSpec` and, for a trial that ran, what the noise did."""
    return {
        "spec": spec.text,
        "type": spec.type,
        "level": spec.level,
        "params": spec.params,
        "n_corrupted": n_corrupted,
        "mean_label_dice": mean_label_dice,
    }


def provenance_section(
    device: dict[str, Any] | None = None, command: str | None = None, bench_version: str | None = None
) -> dict[str, Any]:
    """The record's `provenance` section: code version and commit, package versions, device, reproducing command, time."""
    return {
        "bench_version": bench_version,
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": device,
        "command": command,
        "created": now(),
    }


def duplicate_cells(records: Iterable[tuple[Path | str, Record]]) -> list[tuple[Path | str, Path | str]]:
    """(duplicate, first) source pairs of records that fill the same cell (protocol, version, method, noise, seed).

    The one duplicate check: the same cell twice would count a trial twice, whatever the files' names or hashes.
    """
    first: dict[Cell, Path | str] = {}
    found = []
    for source, record in records:
        cell = record.cell
        if cell in first:
            found.append((source, first[cell]))
        else:
            first[cell] = source
    return found


_OPTIONAL_TOP = {"per_sample": (dict, type(None)), "error": (str, type(None)), "traceback": (list, type(None))}
_SURFACE = ("hd95", "hd", "msd")


def _shape_problems(record: Any) -> list[str]:
    """Problems with a record's shape: keys (none unknown), types, schema, status, per-structure sections (empty list = valid)."""
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    problems = []
    for key, kind in _TOP_LEVEL.items():
        if key not in record:
            problems.append(f"missing '{key}'")
        elif not isinstance(record[key], kind) or isinstance(record[key], bool):
            problems.append(f"'{key}' has type {type(record[key]).__name__}")
    for key, kinds in _OPTIONAL_TOP.items():
        if key in record and not isinstance(record[key], kinds):
            problems.append(f"'{key}' has type {type(record[key]).__name__}")
    problems += [f"unknown key '{k}'" for k in record if k not in _TOP_LEVEL and k not in _OPTIONAL_TOP]
    if problems:
        return problems
    if record["schema"] != SCHEMA or record["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema is {record['schema']} v{record['schema_version']}, expected {SCHEMA} v{SCHEMA_VERSION}")
    if record["status"] not in ("ok", "failed"):
        problems.append(f"status '{record['status']}' is neither ok nor failed")
    if record["seed"] < 0:
        problems.append(f"seed {record['seed']} is negative; seeds are non-negative integers")
    for section, keys in _SECTIONS.items():
        if record["status"] == "failed" and section in ("metrics", "cost"):
            continue
        problems += [f"missing '{section}.{k}'" for k in keys if k not in record[section]]
    if record["status"] == "failed":
        if not isinstance(record.get("error"), str) or not record["error"].strip():
            problems.append("a failed record must say why in 'error'")
        if record["metrics"] or record["cost"]:
            problems.append("a failed record has no metrics or cost")
    elif record["status"] == "ok":
        if "error" in record or "traceback" in record:
            problems.append("an ok record has no 'error' or 'traceback'")
        problems += _region_problems(record["metrics"], "metrics")
    return problems


def _region_problems(section: dict[str, Any], where: str) -> list[str]:
    """Dice in [0, 1], finite non-negative distances with HD95 <= HD and MSD <= HD, per structure, in `section`.

    `metrics` holds {metric: {structure: value}} with a `mean` over the structures; a derived
    region (`epi`) holds {metric: value} for itself.
    """
    problems: list[str] = []
    per_structure = where == "metrics"
    tables = {m: section.get(m) for m in ("dice", *_SURFACE)}
    if per_structure:
        for metric, table in tables.items():
            if not isinstance(table, dict) or not table:
                return [f"{where}.{metric} = {table!r} is not a table of numbers per structure"]
        names = set(tables["dice"])
        if "mean" not in names or len(names) < 2:
            return [f"{where}.dice has no mean or no structure: {sorted(names)}"]
        problems += [f"{where}.{m} names {sorted(t)}, not dice's {sorted(names)}" for m, t in tables.items() if set(t) != names]
        if problems:
            return problems
        rows = {name: {m: tables[m][name] for m in tables} for name in sorted(names)}
    else:
        rows = {"": tables}
    for name, row in rows.items():
        at = f".{name}" if name else ""
        dice = row["dice"]
        if not _number(dice) or not 0.0 <= dice <= 1.0:
            problems.append(f"{where}.dice{at} = {dice!r} is not in [0, 1]")
        distances = {m: row[m] for m in _SURFACE}
        bad = [m for m, v in distances.items() if not (_number(v) and 0.0 <= v < float("inf"))]
        problems += [f"{where}.{m}{at} = {distances[m]!r} is not a finite distance" for m in bad]
        if not bad and not distances["hd95"] <= distances["hd"] + 1e-9:
            problems.append(f"{where}.hd{at} = {distances['hd']!r} is smaller than hd95 = {distances['hd95']!r}")
        if not bad and not distances["msd"] <= distances["hd"] + 1e-9:
            problems.append(f"{where}.hd{at} = {distances['hd']!r} is smaller than msd = {distances['msd']!r}")
    if per_structure and not problems:
        parts = [v for k, v in tables["dice"].items() if k != "mean"]
        mean = tables["dice"]["mean"]
        if abs(sum(parts) / len(parts) - mean) > 1e-9:
            problems.append(f"{where}.dice.mean = {mean!r} is not the mean of its structures ({sum(parts) / len(parts)!r})")
    return problems


_FRACTIONS = ("precision", "recall", "f1", "auroc", "ap", "precision_at_budget", "recall_at_budget")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(value: Any, what: str, limit: Any, limit_name: str) -> list[str]:
    """Problems with a count: a non-negative integer, at most `limit` when that is known."""
    if value is None:
        return []
    if not _number(value) or value != int(value) or value < 0:
        return [f"{what} = {value!r} is not a non-negative count"]
    if _number(limit) and value > limit:
        return [f"{what} = {value} is more than {limit_name} = {limit}"]
    return []


def _fraction(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not _number(value) or not 0.0 <= value <= 1.0:
        return [f"{what} = {value!r} is not in [0, 1]"]
    return []


def _clinical_problems(clinical: Any) -> list[str]:
    """The clinical section: counts, non-negative errors, |bias| <= mean absolute error <= its 95th percentile's bound."""
    if clinical is None:
        return []
    if not isinstance(clinical, dict):
        return [f"metrics.clinical = {clinical!r} is neither a table nor null"]
    problems = _count(clinical.get("n_patients"), "metrics.clinical.n_patients", None, "")
    problems += _count(clinical.get("n_failed"), "metrics.clinical.n_failed", clinical.get("n_patients"), "metrics.clinical.n_patients")
    errors = ("ef_abs_error_mean", "ef_abs_error_p95", "lv_area_abs_error_mean_cm2", "lv_area_abs_error_p95_cm2")
    for key in errors:
        value = clinical.get(key)
        if value is not None and not (_number(value) and 0.0 <= value < float("inf")):
            problems.append(f"metrics.clinical.{key} = {value!r} is not a finite non-negative error")
    bias, mean = clinical.get("ef_bias"), clinical.get("ef_abs_error_mean")
    if bias is not None and not (_number(bias) and math.isfinite(bias)):
        problems.append(f"metrics.clinical.ef_bias = {bias!r} is not a finite number")
    elif _number(bias) and _number(mean) and abs(bias) > mean + 1e-9:
        problems.append(f"metrics.clinical.ef_bias = {bias!r} is larger than the mean absolute error {mean!r}")
    return problems


def _value_problems(record: dict[str, Any]) -> list[str]:
    """Values no trial can produce (beyond the shape checks); empty list = plausible.

    Counts within [0, n_train], fractions (detection, label Dice) within [0, 1],
    times non-negative and finite, per-sample lists one entry per training
    sample and agreeing with the counts. Expects a record whose shape is valid.
    """
    problems: list[str] = []
    n_train = record["dataset"].get("n_train")
    problems += _count(n_train, "dataset.n_train", None, "")
    problems += _count(record["dataset"].get("n_test"), "dataset.n_test", None, "")
    noise = record["noise"]
    problems += _fraction(noise.get("level"), "noise.level")
    problems += _count(noise.get("n_corrupted"), "noise.n_corrupted", n_train, "dataset.n_train")
    n_trusted = record["dataset"].get("n_trusted")  # images of the protocol's trusted patients (absent: none)
    problems += _count(n_trusted, "dataset.n_trusted", n_train, "dataset.n_train")
    trusted = n_trusted if _number(n_trusted) else 0
    if record["status"] == "ok" and _number(n_train) and _number(noise.get("level")) and _number(noise.get("n_corrupted")):
        expected = round(noise["level"] * n_train)  # the generators corrupt exactly round(level x N) samples
        if not trusted and noise["n_corrupted"] != expected:
            problems.append(f"noise.n_corrupted = {noise['n_corrupted']} is not round(level x n_train) = {expected}")
        elif trusted and not max(0, expected - trusted) <= noise["n_corrupted"] <= expected:
            problems.append(  # the trusted samples among the round(level x N) picked are put back clean
                f"noise.n_corrupted = {noise['n_corrupted']} is not between round(level x n_train) - dataset.n_trusted = "
                f"{max(0, expected - trusted)} and round(level x n_train) = {expected}"
            )
    problems += _fraction(noise.get("mean_label_dice"), "noise.mean_label_dice")
    if "seed" in noise:  # only a study (run_trial's noise_seed) draws the noise apart from the training seed
        problems.append(f"noise.seed = {noise['seed']!r}: its noise was drawn apart from its seed, so it is no board cell")
    for key, value in record["cost"].items():
        if key.endswith("_s") and not (_number(value) and 0.0 <= value < float("inf")):
            problems.append(f"cost.{key} = {value!r} is not a finite non-negative time")
        if key.endswith("_macs") and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append(f"cost.{key} = {value!r} is not a non-negative whole number of multiply-accumulates")
    metrics = record["metrics"]
    for key, value in metrics.items():  # derived regions (epi): one region's Dice and distances
        if isinstance(value, dict) and "dice" in value and key != "dice":
            problems += _region_problems(value, f"metrics.{key}")
    missed = metrics.get("missed")
    for name, value in missed.items() if isinstance(missed, dict) else []:
        problems += _count(value, f"metrics.missed.{name}", record["dataset"].get("n_test"), "dataset.n_test")
    problems += _clinical_problems(metrics.get("clinical"))
    loss = metrics.get("final_train_loss")  # finite, of either sign: T-Loss is a negative log-likelihood of a density
    if loss is not None and not (_number(loss) and math.isfinite(loss)):
        problems.append(f"metrics.final_train_loss = {loss!r} is not a finite loss")
    detection = metrics.get("detection")
    if isinstance(detection, dict):
        problems += _count(detection.get("n_flagged"), "metrics.detection.n_flagged", n_train, "dataset.n_train")
        problems += _count(detection.get("n_corrupted"), "metrics.detection.n_corrupted", n_train, "dataset.n_train")
        problems += [p for key in _FRACTIONS for p in _fraction(detection.get(key), f"metrics.detection.{key}")]
        pixel = detection.get("pixel")
        if isinstance(pixel, dict):
            problems += [p for key in ("precision", "recall") for p in _fraction(pixel.get(key), f"metrics.detection.pixel.{key}")]
    refurb = metrics.get("refurbishment")
    if isinstance(refurb, dict):
        problems += _count(refurb.get("n_refurbished"), "metrics.refurbishment.n_refurbished", n_train, "dataset.n_train")
        for group in ("corrupted", "clean"):
            part = refurb.get(group)
            if isinstance(part, dict):
                for key in ("label_dice_before", "label_dice_after"):
                    problems += _fraction(part.get(key), f"metrics.refurbishment.{group}.{key}")
    per_sample = record.get("per_sample")
    if isinstance(per_sample, dict):
        for key in ("scores", "flags", "corrupted", "refurbished", "trusted"):
            values = per_sample.get(key)
            if values is None:
                continue
            if not isinstance(values, list):
                problems.append(f"per_sample.{key} is not a list")
            elif _number(n_train) and len(values) != n_train:
                problems.append(f"per_sample.{key} has {len(values)} entries, not one per training sample ({n_train})")
            elif key != "scores" and any(v not in (0, 1) or isinstance(v, bool) for v in values):
                problems.append(f"per_sample.{key} holds values other than 0 and 1")
            elif key == "scores" and not all(_number(v) and math.isfinite(v) for v in values):
                problems.append("per_sample.scores holds values that are not finite numbers")
        marks = per_sample.get("trusted")
        marks = marks if isinstance(marks, list) and _number(n_train) and len(marks) == n_train else None
        if (marks is not None and sum(v == 1 for v in marks) != trusted) or (marks is None and trusted and "trusted" not in per_sample):
            problems.append(f"per_sample.trusted does not mark the dataset.n_trusted = {trusted} trusted samples")
        for key, total in (("flags", (detection or {}).get("n_flagged")), ("corrupted", noise.get("n_corrupted"))):
            values = per_sample.get(key)
            if not (isinstance(values, list) and _number(total) and all(v in (0, 1) for v in values)):
                continue
            if key == "flags" and marks is not None and len(values) == len(marks):
                values = [v for v, t in zip(values, marks, strict=True) if t != 1]  # detection counts the untrusted only
            if sum(values) != total:
                problems.append(f"per_sample.{key} marks {sum(values)} samples but the record counts {total}")
        corrupted = per_sample.get("corrupted")
        if marks is not None and isinstance(corrupted, list) and any(c == 1 and t == 1 for c, t in zip(corrupted, marks, strict=False)):
            problems.append("per_sample marks a trusted sample as corrupted; trusted labels are clean")
    return problems
