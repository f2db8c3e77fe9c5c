"""Golden values pin what must not move: noisy labels, the phantom's pixels and the metrics of trials.

A benchmark's number changing is the bug. `tests/golden_values.json` holds, per path, what
the code produced when the values were pinned (see `tests/golden_values.py` for what each
path means); a refactor must reproduce every one exactly. They are computed in a child
process whose numpy / torch / oneDNN / MKL kernels are capped at AVX2 (`PINNED_ENV`), so
they hold across the machines of one CPU kind; a kind whose values differ has its own file
(`tests/golden_values.py` says how, and what is checked on a kind nobody pinned). A change
that moves a value is a new protocol or generator version, and then the file is rewritten
deliberately (`python tests/golden_values.py --write`), never to make this test pass.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from golden_values import PINNED_ENV, cpu_dependent, cpu_signature, kind_is_pinned, pinned_files, store

pytestmark = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="golden values are pinned for x86-64 kernels capped at AVX2"
)


@pytest.fixture(scope="module")
def current() -> dict:
    # the child imports `bench` from this checkout, not from wherever the environment installed it
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, **PINNED_ENV, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    script = Path(__file__).with_name("golden_values.py")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def pinned() -> dict:
    return json.loads(store().read_text())  # this CPU kind's own file where it has one


@pytest.mark.parametrize("group", ["noise", "phantom", "trial", "trial2"])
def test_golden_values_hold(group, current, pinned):
    wanted = {k: v for k, v in pinned.items() if k.startswith(group + "/")}
    assert wanted, f"no golden values pinned for {group}"
    missing = sorted(k for k in wanted if k not in current)
    moved = sorted(k for k in wanted if k in current and current[k] != wanted[k])
    unpinned = [] if kind_is_pinned() else sorted(set(moved) & cpu_dependent(pinned_files()))
    moved = [k for k in moved if k not in unpinned]  # on a kind nobody pinned, the values that differ between kinds
    report = [f"{k}: pinned {wanted[k]!r}, now {current[k]!r}" for k in moved[:20]]
    assert not missing, f"{len(missing)} pinned values no longer produced, e.g. {missing[:5]}"
    assert not moved, f"{len(moved)} of {len(wanted)} pinned values moved:\n" + "\n".join(report)
    if unpinned:
        pytest.skip(
            f"CPU kind {cpu_signature()} has no golden file of its own: {len(unpinned)} of the {group} values that differ "
            f"between CPU kinds differ here too and were not checked (the other {len(wanted) - len(unpinned)} were); pin them "
            "from an unchanged checkout with `python tests/golden_values.py --write --cpu`"
        )


def test_cpu_dependent_values_are_those_the_pinned_files_disagree_on(tmp_path):
    files = [tmp_path / f"{name}.json" for name in ("default", "kind-a", "kind-b")]
    for f, values in zip(files, ({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 5, "c": 3}, {"a": 1, "b": 2}), strict=True):
        f.write_text(json.dumps(values))
    assert cpu_dependent(files) == {"b", "c"}  # b differs on kind-a; c is missing from kind-b
    assert cpu_dependent(files[:1]) == set()
    # the files in the repository: the noise generators' labels hold on every kind pinned so far
    assert not {k for k in cpu_dependent(pinned_files()) if k.startswith("noise/")}


def test_pinned_values_cover_every_built_in_noise_generator(pinned):
    from bench.noise import noises

    specs = {k.split("/")[1] for k in pinned if k.startswith("noise/")}
    built_in = {name for name in noises.names() if noises.origin(name) == "bench.noise"}
    assert {s.split(":")[0] for s in specs} >= built_in


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_published_v1_board_regenerates_byte_for_byte(fmt):
    """The committed tables of leaderboard/phantom-quick/v1 are exactly what its records give today."""
    from bench.leaderboard import board, load_records, render

    folder = Path(__file__).resolve().parent.parent / "leaderboard" / "phantom-quick" / "v1"
    text = render(board(load_records(folder)), fmt)
    assert text == (folder / f"board.{fmt}").read_text()
