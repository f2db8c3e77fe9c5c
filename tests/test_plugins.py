"""The plugin loader: a folder's files and packages load as `bench._plugins.<folder>.<name>`, and nothing half-loaded stays."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

import bench
from bench import BenchError
from bench.plugins import PLUGIN_PACKAGE, _load_folder, plugin_dirs, plugin_module

FOLDER = "probe"
PREFIX = f"{PLUGIN_PACKAGE}.{FOLDER}"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """An empty plugin folder; the `probe` modules loaded from it are dropped afterwards."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a rewritten file is read again, never a stale .pyc
    yield tmp_path
    for name in [m for m in sys.modules if m == PREFIX or m.startswith(PREFIX + ".")]:
        del sys.modules[name]
    delattr(sys.modules[PLUGIN_PACKAGE], FOLDER)


def test_a_package_plugin_loads_with_relative_imports_beside_a_file_plugin(folder):
    write(folder, {
        "single.py": "VALUE = 1\n",
        "pkg/__init__.py": "from . import part\nfrom .part import ANSWER\n",
        "pkg/part.py": "from .consts import BASE\nANSWER = BASE + 2\n",
        "pkg/consts.py": "BASE = 40\n",
        "_private.py": "raise RuntimeError('a _-prefixed file is not a plugin')\n",
        "notes/readme.txt": "a folder without __init__.py is not a plugin\n",
    })  # fmt: skip
    pkg, single = _load_folder(FOLDER, folder)
    assert (pkg.__name__, single.__name__) == (f"{PREFIX}.pkg", f"{PREFIX}.single")
    assert pkg.ANSWER == 42 and single.VALUE == 1
    assert pkg.__file__ == str(folder / "pkg" / "__init__.py") and pkg.__path__ == [str(folder / "pkg")]
    # the parents are real packages: the import system finds the plugin's modules through them
    assert importlib.import_module(f"{PREFIX}.pkg.part") is pkg.part
    assert sys.modules[PLUGIN_PACKAGE].probe is sys.modules[PREFIX] and sys.modules[PREFIX].pkg is pkg
    assert f"{PREFIX}._private" not in sys.modules and f"{PREFIX}.notes" not in sys.modules
    assert _load_folder(FOLDER, folder) == [pkg, single]  # loaded once: the same modules again
    with pytest.raises(RuntimeError, match="already loads plugins from"):
        _load_folder(FOLDER, folder / "pkg")


@pytest.mark.parametrize("broken", ["pkg/__init__.py", "pkg/part.py", "single.py"])
def test_a_failing_plugin_leaves_no_module_behind_and_loads_once_fixed(folder, broken):
    files = {"single.py": "VALUE = 1\n", "pkg/__init__.py": "from .part import ANSWER\n", "pkg/part.py": "ANSWER = 42\n"}
    write(folder, {**files, broken: files[broken] + "raise RuntimeError('broken plugin')\n"})
    with pytest.raises(RuntimeError, match="broken plugin"):
        _load_folder(FOLDER, folder)
    failed = f"{PREFIX}.{Path(broken).parts[0].removesuffix('.py')}"
    assert not [m for m in sys.modules if m == failed or m.startswith(failed + ".")]
    write(folder, {broken: files[broken]})
    pkg, single = _load_folder(FOLDER, folder)
    assert pkg.ANSWER == 42 and single.VALUE == 1


@pytest.mark.parametrize("broken", ["pkg/__init__.py", "pkg/part.py", "single.py"])
def test_a_failing_plugin_takes_back_what_it_registered(folder, broken):
    """Names registered before the error are gone (no lookup finds them), so the fixed plugin registers them again."""
    files = {
        "_probes.py": "from bench.registry import Registry\nPROBES = Registry('probe')\n",
        "single.py": "from ._probes import PROBES\nPROBES.register('single', 1)\n",
        "pkg/__init__.py": "from .._probes import PROBES\nPROBES.register('pkg', 2)\nfrom . import part\n",
        "pkg/part.py": "from .._probes import PROBES\nPROBES.register('part', 3)\n",
    }
    write(folder, {**files, broken: files[broken] + "raise RuntimeError('broken plugin')\n"})
    with pytest.raises(RuntimeError, match="broken plugin"):
        _load_folder(FOLDER, folder)
    probes = sys.modules[f"{PREFIX}._probes"].PROBES
    # plugins load in name order: `pkg` (with its `part`) before `single`; a failure in either takes back only its own
    assert probes.names() == ([] if broken.startswith("pkg/") else ["part", "pkg"])
    write(folder, {broken: files[broken]})
    _load_folder(FOLDER, folder)
    assert probes.names() == ["part", "pkg", "single"]


def test_a_file_and_a_package_of_one_name_are_refused(folder):
    write(folder, {"twin.py": "", "twin/__init__.py": ""})
    with pytest.raises(BenchError, match=r"both twin.py and twin/"):
        _load_folder(FOLDER, folder)


def test_plugin_module_gives_the_modules_the_registry_loaded():
    phantom = plugin_module("datasets", "echo_phantom")
    assert phantom.echo_phantom is bench.datasets.get("echo-phantom")
    assert Path(phantom.__file__) == plugin_dirs()["datasets"] / "echo_phantom" / "__init__.py"
    assert plugin_module("datasets", "echo_phantom.generator3") is phantom.generator3
    assert plugin_module("methods", "loss").__name__ == bench.methods.origin("loss-refurb")


def test_an_unknown_plugin_or_folder_is_a_bench_error():
    with pytest.raises(BenchError, match=r"unknown plugin 'nope' in datasets/; loaded there: camus, echo_phantom, "):
        plugin_module("datasets", "nope")
    with pytest.raises(BenchError, match=r"unknown plugin folder 'widgets'; use one of datasets, methods"):
        plugin_module("widgets", "loss")
