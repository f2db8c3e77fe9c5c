"""A wheel built from the repo carries the plugin folders, and an installed wheel loads them."""

import shutil
import subprocess
import sys
import zipfile


def test_wheel_carries_plugins_and_loads_them(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    # built from a copy: setuptools reuses an in-tree build/ folder, whose leftovers could stand in for missing files
    src = tmp_path / "src"
    for part in ("bench", "methods", "datasets"):
        shutil.copytree(root / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md", "requirements.lock"):
        shutil.copy2(root / part, src / part)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # every source file of the plugin folders, package plugins' modules included, ships under bench/_builtin/
    plugin_files = [p for folder in ("methods", "datasets") for p in (root / folder).rglob("*.py")]
    sources = {f"bench/_builtin/{p.relative_to(root).as_posix()}" for p in plugin_files}
    assert {"bench/_builtin/methods/loss.py", "bench/_builtin/datasets/echo_phantom/__init__.py"} <= sources
    assert sources <= names, sorted(sources - names)
    assert not any(n.startswith(("methods/", "datasets/")) for n in names)
    assert "bench/_lock/requirements.lock" in names  # bench.environment's lock in an installed wheel

    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    code = (
        "import bench; from bench.plugins import plugin_module; print(bench.__file__);"
        " print(bench.methods.origin('loss-refurb'), 'echo-phantom' in bench.datasets);"
        " print(plugin_module('datasets', 'echo_phantom.generator3').__file__);"
        f" print(len(bench.load_dataset('echo-phantom', size=32, patients=3, generator=3, cache_dir={str(tmp_path / 'cache')!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True
    )
    file, loaded, renderer, images = out.stdout.strip().splitlines()
    assert file.startswith(str(tmp_path / "site"))
    assert loaded == "bench._plugins.methods.loss True"
    assert renderer == str(tmp_path / "site" / "bench" / "_builtin" / "datasets" / "echo_phantom" / "generator3.py")
    assert images == "12"  # the package plugin renders from the installed wheel: 3 patients x 2 views x 2 phases

    code = "from bench.environment import lock_path, locked_versions; print(lock_path()); print(locked_versions()['torch'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True
    )
    lock, torch = out.stdout.strip().splitlines()
    assert lock == str((tmp_path / "site" / "bench" / "_lock" / "requirements.lock").resolve())
    assert (tmp_path / "site" / "bench" / "_lock" / "requirements.lock").read_text() == (root / "requirements.lock").read_text()
    assert torch == (root / "lock-constraints.txt").read_text().split("torch==")[1].split()[0]
