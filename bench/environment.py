"""The locked environment: the exact package versions of `requirements.lock` and how records differ from them.

The lock is the repo root's `requirements.lock` (written by `make lock`, installed by `make install`).
A checkout reads it next to the package (`<root>/requirements.lock` beside `<root>/bench/`); an installed
wheel carries the same file as package data, `bench/_lock/requirements.lock` (pyproject.toml maps the
package `bench._lock` to the repo root), so no copy is kept in the tree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

LOCK_NAME = "requirements.lock"

#: a pinned requirement line of a pip-compile lock: `name==version` (then ` \`, a marker or a comment)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;\\#]+)")


def normalize(name: str) -> str:
    """A distribution name in its PEP 503 normal form (`Segmentation_Models.PyTorch` -> `segmentation-models-pytorch`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_path() -> Path | None:
    """The lock this code runs with: the checkout's `requirements.lock`, else the wheel's packaged copy; None without either."""
    package = Path(__file__).resolve().parent
    root = package.parent
    for candidate in (root / LOCK_NAME if (root / "pyproject.toml").is_file() else None, package / "_lock" / LOCK_NAME):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def parse_lock(text: str) -> dict[str, str]:
    """{normalized name: version} of every `name==version` pin in a lock's text (hashes, comments and options skipped)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = _PIN.match(line)
        if match:
            pins[normalize(match.group(1))] = match.group(2)
    return pins


def locked_versions(path: Path | None = None) -> dict[str, str]:
    """{normalized name: version} pinned by the lock at `path` (default: `lock_path()`); empty when there is no lock."""
    path = path or lock_path()
    if path is None:
        return {}
    return parse_lock(path.read_text())


def version_notes(recorded: Iterable[object], locked: Mapping[str, str] | None = None) -> list[str]:
    """Notes on records made with other package versions than the lock's: one per (package, version), with its count.

    `recorded` holds each record's `provenance.packages`; `locked` defaults to `locked_versions()`.
    Packages the lock does not pin (the project itself) are not compared; a recorded None means not installed.
    """
    recorded = list(recorded)
    locked = locked_versions() if locked is None else locked
    if not locked:
        return [f"package versions not compared: no {LOCK_NAME} found (see bench/environment.py)"] if recorded else []
    counts: Counter[tuple[str, str | None]] = Counter()
    for packages in recorded:
        for name, version in (packages if isinstance(packages, Mapping) else {}).items():
            key = normalize(name)
            if key in locked and version != locked[key]:
                counts[(key, version)] += 1
    notes = []
    for (name, version), n in sorted(counts.items(), key=lambda item: (item[0][0], str(item[0][1]))):
        made = f"with {name} {version}" if version is not None else f"without {name} installed"
        notes.append(f"{n} record{'s' if n != 1 else ''} made {made}; the lock has {locked[name]}")
    return notes
