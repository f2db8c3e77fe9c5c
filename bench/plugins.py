"""Loads the plugin folders `methods/` and `datasets/` and entry-point plugins.

The folders are not importable packages (a top-level `datasets` would shadow
Hugging Face's). Each entry of a folder, a `*.py` file or a package (a
subfolder with `__init__.py`, whose modules may import each other relatively),
is imported as `bench._plugins.<folder>.<name>`: `bench._plugins` and
`bench._plugins.<folder>` are packages made here, the latter searching the
folder. Third-party packages add plugins through the entry-point group
`echo_noise_bench.plugins` (each entry point names a module that registers its
components on import). Built-ins load first, so a plugin can never shadow a
built-in name: the registry refuses a taken name.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import threading
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from bench.errors import BenchError
from bench.registry import add_loader, taken_back_on_error

ENTRY_POINT_GROUP = "echo_noise_bench.plugins"
PLUGIN_FOLDERS = ("datasets", "methods")
#: the package under which the folders' plugins are imported
PLUGIN_PACKAGE = "bench._plugins"

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


def _package(name: str, path: list[str]) -> ModuleType:
    """The package `name` searching `path`, made and bound to its parent on first use (it has no file of its own)."""
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = path
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        setattr(sys.modules[parent], child, module)
    elif list(module.__path__) != path:
        raise RuntimeError(f"{name} already loads plugins from {list(module.__path__)}, not {path}")
    return module


def _plugin_names(directory: Path) -> list[str]:
    """The plugins of `directory` in load order: `*.py` files and package folders, `_`-prefixed ones skipped."""
    files = {path.stem for path in directory.glob("*.py")}
    packages = {path.parent.name for path in directory.glob("*/__init__.py")}
    both = sorted(files & packages)
    if both:
        raise BenchError(f"{directory} holds both {both[0]}.py and {both[0]}/, two plugins named {both[0]!r}; keep one")
    return sorted(name for name in files | packages if not name.startswith("_"))


def _import(name: str) -> ModuleType:
    """Import plugin module `name`; if that fails, drop it, every submodule it loaded and every name it registered."""
    try:
        with taken_back_on_error():
            return importlib.import_module(name)
    except BaseException:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        raise


def _load_folder(folder: str, directory: Path) -> list[ModuleType]:
    """Import every plugin of `directory` as `bench._plugins.<folder>.<name>` (already loaded ones are kept)."""
    _package(PLUGIN_PACKAGE, [])
    _package(f"{PLUGIN_PACKAGE}.{folder}", [str(directory)])
    return [_import(f"{PLUGIN_PACKAGE}.{folder}.{name}") for name in _plugin_names(directory)]


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
                _load_folder(folder, directory)
            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                with taken_back_on_error():
                    ep.load()
            _state["loaded"] = True
        finally:
            _state["loading"] = False


def plugin_module(folder: str, name: str) -> ModuleType:
    """The loaded module of plugin `name` of `folder` (dotted for a package plugin's module), for tests and tools."""
    if folder not in PLUGIN_FOLDERS:
        raise BenchError(f"unknown plugin folder {folder!r}; use one of {', '.join(PLUGIN_FOLDERS)}")
    load_plugins()
    prefix = f"{PLUGIN_PACKAGE}.{folder}."
    module = sys.modules.get(prefix + name)
    if module is None:
        known = sorted(m.removeprefix(prefix) for m in sys.modules if m.startswith(prefix))
        raise BenchError(f"unknown plugin {name!r} in {folder}/; loaded there: {', '.join(known) or 'nothing'}")
    return module


add_loader(load_plugins)  # every registry lookup first loads the plugins (bench.registry never imports this module)
