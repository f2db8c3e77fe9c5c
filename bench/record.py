"""The result record of one trial: schema, provenance, atomic writing and checking.

A record is the unit of truth; every table is derived from records. Records are
JSON, schema-versioned, and written atomically (a temporary file in the same
folder, then a rename), so a crash never leaves half a record on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

SCHEMA = "echo-noise-bench/record"
SCHEMA_VERSION = 1
PACKAGES = ("torch", "segmentation-models-pytorch", "timm", "numpy", "scipy", "ray", "echo-noise-bench")

#: top-level keys and their types; nested sections are checked by `validate_record`
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
    "metrics": ("dice", "hd95", "hd", "msd", "missed", "epi", "clinical", "detection", "refurbishment"),
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


def validate_record(record: Any) -> list[str]:
    """Problems with `record`'s shape (empty list = valid)."""
    if not isinstance(record, dict):
        return ["record is not a JSON object"]
    problems = []
    for key, kind in _TOP_LEVEL.items():
        if key not in record:
            problems.append(f"missing '{key}'")
        elif not isinstance(record[key], kind) or isinstance(record[key], bool):
            problems.append(f"'{key}' has type {type(record[key]).__name__}")
    if problems:
        return problems
    if record["schema"] != SCHEMA or record["schema_version"] != SCHEMA_VERSION:
        problems.append(f"schema is {record['schema']} v{record['schema_version']}, expected {SCHEMA} v{SCHEMA_VERSION}")
    if record["status"] not in ("ok", "failed"):
        problems.append(f"status '{record['status']}' is neither ok nor failed")
    for section, keys in _SECTIONS.items():
        if record["status"] == "failed" and section in ("metrics", "cost"):
            continue
        problems += [f"missing '{section}.{k}'" for k in keys if k not in record[section]]
    if record["status"] == "ok":
        dice = record["metrics"].get("dice", {})
        for name, value in dice.items() if isinstance(dice, dict) else []:
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                problems.append(f"metrics.dice.{name} = {value!r} is not in [0, 1]")
        for metric in ("hd95", "hd", "msd"):  # surface distances in mm: finite and non-negative, never NaN
            values = record["metrics"].get(metric, {})
            for name, value in values.items() if isinstance(values, dict) else []:
                if not isinstance(value, (int, float)) or not 0.0 <= value < float("inf"):
                    problems.append(f"metrics.{metric}.{name} = {value!r} is not a finite distance")
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


def impossible_values(record: dict[str, Any]) -> list[str]:
    """Values no trial can produce (beyond `validate_record`'s shape checks); empty list = plausible.

    Counts within [0, n_train], fractions (detection, label Dice) within [0, 1],
    times non-negative and finite, per-sample lists one entry per training
    sample and agreeing with the counts. Expects a record that passes `validate_record`.
    """
    problems: list[str] = []
    n_train = record["dataset"].get("n_train")
    problems += _count(n_train, "dataset.n_train", None, "")
    problems += _count(record["dataset"].get("n_test"), "dataset.n_test", None, "")
    noise = record["noise"]
    problems += _fraction(noise.get("level"), "noise.level")
    problems += _count(noise.get("n_corrupted"), "noise.n_corrupted", n_train, "dataset.n_train")
    problems += _fraction(noise.get("mean_label_dice"), "noise.mean_label_dice")
    for key, value in record["cost"].items():
        if key.endswith("_s") and not (_number(value) and 0.0 <= value < float("inf")):
            problems.append(f"cost.{key} = {value!r} is not a finite non-negative time")
    metrics = record["metrics"]
    loss = metrics.get("final_train_loss")
    if loss is not None and not (_number(loss) and 0.0 <= loss < float("inf")):
        problems.append(f"metrics.final_train_loss = {loss!r} is not a finite non-negative loss")
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
        for key in ("scores", "flags", "corrupted", "refurbished"):
            values = per_sample.get(key)
            if values is None:
                continue
            if not isinstance(values, list):
                problems.append(f"per_sample.{key} is not a list")
            elif _number(n_train) and len(values) != n_train:
                problems.append(f"per_sample.{key} has {len(values)} entries, not one per training sample ({n_train})")
            elif key != "scores" and any(v not in (0, 1) for v in values):
                problems.append(f"per_sample.{key} holds values other than 0 and 1")
        for key, total in (("flags", (detection or {}).get("n_flagged")), ("corrupted", noise.get("n_corrupted"))):
            values = per_sample.get(key)
            if isinstance(values, list) and _number(total) and all(v in (0, 1) for v in values) and sum(values) != total:
                problems.append(f"per_sample.{key} marks {sum(values)} samples but the record counts {total}")
    return problems


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temporary file in the same folder and a rename (never half-written); mode 0644."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # boards and records are for publishing; mkstemp would leave them private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as indented JSON to `path` with `write_text_atomic` (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def record_path(root: Path, record: dict[str, Any]) -> Path:
    """Where a record lives: `<root>/<protocol>/v<version>/<method>/<noise>/seed<k>.json`."""
    noise = record["noise"]["spec"].replace(":", "-").replace(",", "_").replace("=", "-")
    p = record["protocol"]
    return root / p["name"] / f"v{p['version']}" / record["method"]["name"] / noise / f"seed{record['seed']}.json"
