"""`bench validate`: check a set of result records before they reach a board.

Per record: the schema (`validate_record`), values no trial can produce
(`impossible_values`), and the protocol hash against the registered protocol
of that name and version. Across records: two records of the same cell
(protocol, version, method, noise spec, seed), and records of one protocol
version and dataset that disagree on the dataset's fingerprint (different data
behind the same board).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.record import impossible_values, validate_record


def find_records(paths: list[Path]) -> list[Path]:
    """Every `*.json` under `paths` (a file is taken as given; folders named `_*` or `.*`, like Tune's `_tune`, are skipped)."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise BenchError(f"no such file or folder: {missing[0]}")
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
            continue
        for file in sorted(path.rglob("*.json")):
            inner = file.relative_to(path).parts
            if not any(part.startswith(("_", ".")) for part in inner):
                found.append(file)
    return list(dict.fromkeys(found))


def _protocol_problems(record: dict[str, Any]) -> list[str]:
    from bench.protocols import protocols

    p = record["protocol"]
    name, version, digest = p.get("name"), p.get("version"), p.get("hash")
    if name not in protocols.names():
        return [f"unknown protocol '{name}' (see: bench list protocols)"]
    registered = protocols.get(name)
    if version != registered.version:
        return [f"protocol {name} v{version} is not registered (registered: v{registered.version})"]
    if digest != registered.hash:
        return [f"protocol hash {digest} differs from the registered {name} v{version} ({registered.hash})"]
    return []


def check_records(files: list[Path]) -> list[tuple[Path, str]]:
    """(file, problem) pairs for `files`, in file order; empty = clean."""
    problems: list[tuple[Path, str]] = []
    cells: dict[tuple[Any, ...], Path] = {}
    fingerprints: dict[tuple[Any, ...], tuple[str, Path]] = {}
    for file in files:
        try:
            record = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError) as error:
            problems.append((file, f"cannot be read: {error}"))
            continue
        except ValueError as error:
            problems.append((file, f"is not JSON: {error}"))
            continue
        shape = validate_record(record)
        if shape:
            problems += [(file, p) for p in shape]
            continue
        problems += [(file, p) for p in impossible_values(record)]
        problems += [(file, p) for p in _protocol_problems(record)]
        p = record["protocol"]
        cell = (p.get("name"), p.get("version"), record["method"].get("name"), record["noise"].get("spec"), record["seed"])
        if cell in cells:
            problems.append((file, f"duplicate of {cells[cell]} (same protocol, version, method, noise and seed)"))
        else:
            cells[cell] = file
        fingerprint = record["dataset"].get("fingerprint")
        if fingerprint is not None:
            key = (p.get("name"), p.get("version"), record["dataset"].get("name"))
            first = fingerprints.setdefault(key, (fingerprint, file))
            if first[0] != fingerprint:
                problems.append((file, f"dataset fingerprint {fingerprint} differs from {first[0]} in {first[1]} (same protocol version)"))
    return problems


def validate_paths(paths: list[Path]) -> tuple[int, list[tuple[Path, str]]]:
    """(number of record files checked, problems) for every record under `paths`; BenchError for a missing path."""
    files = find_records(paths)
    return len(files), check_records(files)
