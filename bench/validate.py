"""`bench validate`: check a set of result records before they reach a board.

Per record: `Record.problems` (the schema, then values no trial can produce),
and the protocol hash against the registered protocol of that name and version. Across records: two records of the same cell
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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.environment import version_notes
from bench.errors import BenchError
from bench.record import Record, duplicate_cells, find_records


def _protocol_problems(record: Record) -> list[str]:
    from bench.protocols import protocols

    p = record.protocol
    name, version, digest = p.get("name"), p.get("version"), p.get("hash")
    if name not in protocols.names():
        return [f"unknown protocol '{name}' (see: bench list protocols)"]
    registered = _version(name, version)
    if registered is None:
        have = ", ".join(f"v{p.version}" for p in protocols.versions(name))
        return [f"protocol {name} v{version} is not registered (registered: {have})"]
    if digest != registered.hash:
        return [f"protocol hash {digest} differs from the registered {name} v{version} ({registered.hash})"]
    trusted = p.get("trusted_patients", 0)  # shown for readers; the hash covers the registered value, so check the copy
    if trusted != registered.trusted_patients:
        return [f"protocol.trusted_patients = {trusted} is not {name} v{version}'s {registered.trusted_patients} (the record was edited)"]
    n_trusted = record.dataset.get("n_trusted", 0)
    if record.ok and bool(n_trusted) != bool(registered.trusted_patients):
        return [f"dataset.n_trusted = {n_trusted} does not fit {name} v{version}'s {registered.trusted_patients} trusted patients"]
    return []


def _registered_protocol(record: Record) -> Any:
    """The registered protocol the record names, or None when `_protocol_problems` reports it."""
    return None if _protocol_problems(record) else _version(record.protocol["name"], record.protocol["version"])


def _version(name: Any, version: Any) -> Any:
    """The registered protocol `name` at `version`, or None (unknown name, or no such version)."""
    from bench.protocols import protocols

    if name not in protocols.names() or not isinstance(version, int):
        return None
    return next((p for p in protocols.versions(name) if p.version == version), None)


def _name_problems(record: Record) -> list[str]:
    """The method must be registered here with the definition the record holds, and the noise spec must parse to
    exactly what the record says it is."""
    from bench.method import methods, recipe_for
    from bench.noise import parse_noise

    problems = []
    method = record.method.get("name")
    if method not in methods.names():
        problems.append(f"unknown method '{method}' (not registered here: install its plugin, see: bench list methods)")
    elif (protocol := _registered_protocol(record)) is not None:
        recipe = recipe_for(method, protocol)
        if record.method.get("recipe") != recipe.describe():
            problems.append(
                f"method.recipe is not {method}'s definition at recipe generation {protocol.recipes} ({protocol.name} "
                f"v{protocol.version}): the method changed without a new generation, or the record was edited"
            )
    noise = record.noise
    try:
        spec = parse_noise(str(noise.get("spec")))
    except BenchError as error:
        return [*problems, f"noise spec does not parse: {error}"]
    if spec.text != noise.get("spec"):
        problems.append(f"noise spec '{noise.get('spec')}' is not written canonically ('{spec.text}')")
    recorded = {"type": noise.get("type"), "level": noise.get("level"), "params": noise.get("params")}
    parsed = {"type": spec.type, "level": spec.level, "params": spec.params}
    for key in (k for k in parsed if recorded[k] != parsed[k]):
        problems.append(f"noise.{key} = {recorded[key]!r} does not match its spec '{spec.text}' ({parsed[key]!r})")
    return problems


def _file_problems(file: Path, record: Record) -> list[str]:
    """A file named `seed<k>.json` must hold seed k, and inside a record tree (`.../v<version>/...`) sit at its cell's path."""
    match = re.fullmatch(r"seed(\d+)\.json", file.name)
    if match is None:
        return []
    if int(match.group(1)) != record.seed:
        return [f"the file is named for seed {match.group(1)} but holds seed {record.seed}"]
    expected = record.cell.path(Path()).parts  # (protocol, v<version>, method, noise, seed<k>.json)
    tail = file.parts[-len(expected) :]
    if len(tail) == len(expected) and re.fullmatch(r"v\d+", tail[1]) and tail != expected:
        return [f"the file sits at {'/'.join(tail)} but holds {'/'.join(expected)}; move it there"]
    return []


def _data_problem(key: tuple[Any, ...], recorded: str, data_root: Path | None) -> tuple[str | None, str | None]:
    """(problem, note) for one (protocol, version, dataset) group whose records agree on `recorded`."""
    from bench.data import load_dataset

    name, version, dataset = key
    protocol = _version(name, version)
    if protocol is None:
        return None, None  # already reported per record
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


@dataclass
class Checked:
    """What `check_records` found: problems (file, text) in file order, then duplicates and data checks; the records
    that parsed; the files that must not reach a board (problems of their own, or of their group's data); notes."""

    problems: list[tuple[Path, str]] = field(default_factory=list)
    records: dict[Path, Record] = field(default_factory=dict)
    invalid: set[Path] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def check_records(files: list[Path], data_root: Path | None = None) -> Checked:
    """Every check of `bench validate` on `files`: each record, duplicates across them, fingerprints against the data.

    The one validation records pass before they count anywhere (`bench leaderboard` loads through it too).
    """
    found = Checked()
    groups: dict[tuple[Any, ...], list[Path]] = {}
    fingerprints: dict[tuple[Any, ...], tuple[str, Path]] = {}
    packages: list[object] = []  # each record's provenance.packages, compared with the lock in the notes
    devices: dict[tuple[Any, Any], tuple[Any, Path]] = {}  # (protocol, version) -> (device kind, first file)
    for file in files:
        try:
            data = json.loads(file.read_text())
        except (OSError, UnicodeDecodeError) as error:
            found.problems.append((file, f"cannot be read: {error}"))
            continue
        except ValueError as error:
            found.problems.append((file, f"is not JSON: {error}"))
            continue
        problems = Record.problems(data)
        if problems:
            found.problems += [(file, p) for p in problems]
            continue
        record = found.records[file] = Record.from_dict(data, str(file))
        packages.append(record.provenance.get("packages"))
        found.problems += [(file, p) for p in _protocol_problems(record) + _name_problems(record) + _file_problems(file, record)]
        kind = (record.provenance.get("device") or {}).get("kind")
        board = (record.protocol.get("name"), record.protocol.get("version"))
        first_kind, first_file = devices.setdefault(board, (kind, file)) if record.ok else (kind, file)  # a failed trial ran nowhere
        if kind != first_kind:  # metrics are reproducible per device kind, and a board pairs its methods by seed
            problem = (
                f"made on {kind}, but {first_file} of the same protocol version on {first_kind}: a board holds records of one "
                "device kind; keep these under another folder"
            )
            found.problems.append((file, problem))
        fingerprint = record.dataset.get("fingerprint")
        if fingerprint is not None:
            p = record.protocol
            key = (p.get("name"), p.get("version"), record.dataset.get("name"))
            groups.setdefault(key, []).append(file)
            first = fingerprints.setdefault(key, (fingerprint, file))
            if first[0] != fingerprint:
                problem = f"dataset fingerprint {fingerprint} differs from {first[0]} in {first[1]} (same protocol version)"
                found.problems.append((file, problem))
    duplicates = duplicate_cells(found.records.items())
    found.problems += [(file, f"duplicate of {first} (same protocol, version, method, noise and seed)") for file, first in duplicates]
    found.invalid = {file for file, _ in found.problems}
    for key, (fingerprint, file) in fingerprints.items():
        problem, note = _data_problem(key, fingerprint, data_root)
        if problem:
            found.problems.append((file, problem))
            found.invalid.update(groups[key])
        if note:
            found.notes.append(note)
    found.notes += version_notes(packages)
    return found


def validate_paths(paths: list[Path], data_root: Path | None = None) -> tuple[int, list[tuple[Path, str]], list[str]]:
    """(number of record files checked, problems, notes on what could not be checked) for every record under `paths`.

    BenchError for a missing path, or paths that hold no record file. `data_root` is where datasets that read files
    (CAMUS) find them.
    """
    files = find_records(paths)
    if not files:
        raise BenchError(f"no record files (*.json) under {', '.join(map(str, paths))}; give the folder `bench run --out` wrote")
    checked = check_records(files, data_root)
    return len(files), checked.problems, checked.notes
