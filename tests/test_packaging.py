"""A wheel built from the repo carries the plugin folders, and an installed wheel loads them."""

import subprocess
import sys
import zipfile


def test_wheel_carries_plugins_and_loads_them(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(root)]
    subprocess.run(build, check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/_builtin/methods/loss.py" in names
    assert "bench/_builtin/datasets/echo_phantom.py" in names
    assert not any(n.startswith(("methods/", "datasets/")) for n in names)
    assert "bench/_lock/requirements.lock" in names  # bench.environment's lock in an installed wheel

    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True, capture_output=True)
    code = "import bench; print(bench.__file__); print(bench.methods.origin('loss-refurb'), 'echo-phantom' in bench.datasets)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True
    )
    file, loaded = out.stdout.strip().splitlines()
    assert file.startswith(str(tmp_path / "site"))
    assert loaded == "bench._plugins.methods.loss True"

    code = "from bench.environment import lock_path, locked_versions; print(lock_path()); print(locked_versions()['torch'])"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")}, capture_output=True, text=True, check=True
    )
    lock, torch = out.stdout.strip().splitlines()
    assert lock == str((tmp_path / "site" / "bench" / "_lock" / "requirements.lock").resolve())
    assert (tmp_path / "site" / "bench" / "_lock" / "requirements.lock").read_text() == (root / "requirements.lock").read_text()
    assert torch == (root / "lock-constraints.txt").read_text().split("torch==")[1].split()[0]
