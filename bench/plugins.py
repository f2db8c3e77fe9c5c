"""Loads the plugin folders `methods/` and `datasets/` and entry-point plugins.

The folders are not importable packages (a top-level `datasets` would shadow
Hugging Face's): each file is loaded by path under a private module name,
`bench._plugins.<folder>.<stem>`. Third-party packages add plugins through the
entry-point group `echo_noise_bench.plugins` (each entry point names a module
that registers its components on import). Built-ins load first, so a plugin can
never shadow a built-in name: the registry refuses a taken name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "echo_noise_bench.plugins"
PLUGIN_FOLDERS = ("datasets", "methods")

_lock = threading.RLock()
_state = {"loaded": False, "loading": False}


def plugin_dirs() -> dict[str, Path]:
    """Where the built-in plugin folders are: beside `bench/` in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    found = {}
    for folder in PLUGIN_FOLDERS:
        for candidate in (here.parent / folder, here / "_builtin" / folder):
            if candidate.is_dir():
                found[folder] = candidate
                break
    return found


def _load_file(folder: str, path: Path) -> None:
    name = f"bench._plugins.{folder}.{path.stem}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise


def load_plugins() -> None:
    """Load every built-in and entry-point plugin once per process (re-entrant, thread-safe)."""
    if _state["loaded"] or _state["loading"]:
        return
    with _lock:
        if _state["loaded"] or _state["loading"]:
            return
        _state["loading"] = True
        try:
            for module in ("bench.noise", "bench.protocols"):  # built-in noise generators and protocols
                importlib.import_module(module)

            for folder, directory in sorted(plugin_dirs().items()):
                for path in sorted(directory.glob("*.py")):
                    if not path.name.startswith("_"):
                        _load_file(folder, path)
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                ep.load()
            _state["loaded"] = True
        finally:
            _state["loading"] = False
