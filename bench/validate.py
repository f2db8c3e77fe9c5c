"""`bench validate`: check a set of result records before they reach a board.

Per record: the schema (`validate_record`), values no trial can produce
(`impossible_values`), and the protocol hash against the registered protocol
of that name and version. Across records: two records of the same cell
(protocol, version, method, noise spec, seed), and records of one protocol
version and dataset that disagree on the dataset's fingerprint (different data
behind the same board). Against the data: each group's fingerprint must be the
one this code gives the protocol's dataset (built or read from the cache), so
a generator changed without a protocol version bump cannot hide; a dataset
that needs files (CAMUS) is checked only with `data_root`, else noted as unchecked.
Package versions other than the lock's are noted, never problems (`bench.environment.version_notes`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.environment import version_notes
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


def _data_problem(key: tuple[Any, ...], recorded: str, data_root: Path | None) -> tuple[str | None, str | None]:
    """(problem, note) for one (protocol, version, dataset) group whose records agree on `recorded`."""
    from bench.data import load_dataset
    from bench.protocols import protocols

    name, version, dataset = key
    if name not in protocols.names() or protocols.get(name).version != version:
        return None, None  # already reported per record
    protocol = protocols.get(name)
    if dataset != protocol.dataset:
        return f"dataset '{dataset}' is not {name} v{version}'s dataset '{protocol.dataset}'", None
    try:
        data = load_dataset(protocol.dataset, size=protocol.image_size, root=data_root, **protocol.dataset_options)
    except BenchError as error:
        return None, f"{name} v{version}: dataset fingerprint not checked against the data ({error})"
    if data.fingerprint != recorded:
        return (
            f"dataset fingerprint {recorded} is not the {data.fingerprint} this code gives {dataset} for {name} v{version}: "
            "the data changed without a protocol version bump, or the records come from other data"
        ), None
    return None, None


def check_records(files: list[Path], data_root: Path | None = None, notes: list[str] | None = None) -> list[tuple[Path, str]]:
    """(file, problem) pairs for `files`, in file order; empty = clean. What could not be checked goes to `notes`."""
    problems: list[tuple[Path, str]] = []
    cells: dict[tuple[Any, ...], Path] = {}
    fingerprints: dict[tuple[Any, ...], tuple[str, Path]] = {}
    packages: list[object] = []  # each record's provenance.packages, compared with the lock in the notes
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
        packages.append(record["provenance"]["packages"])
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
    for key, (fingerprint, file) in fingerprints.items():
        problem, note = _data_problem(key, fingerprint, data_root)
        if problem:
            problems.append((file, problem))
        if note and notes is not None:
            notes.append(note)
    if notes is not None:
        notes += version_notes(packages)
    return problems


def validate_paths(paths: list[Path], data_root: Path | None = None) -> tuple[int, list[tuple[Path, str]], list[str]]:
    """(number of record files checked, problems, notes on what could not be checked) for every record under `paths`.

    BenchError for a missing path. `data_root` is where datasets that read files (CAMUS) find them.
    """
    files = find_records(paths)
    notes: list[str] = []
    problems = check_records(files, data_root, notes)
    return len(files), problems, notes
