"""The preprocessed-data cache (`bench.cached`): hits, fingerprints, staleness, corruption, failed builds."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

import bench
from bench import BenchError, Data
from bench.cache import CACHE_FORMAT
from bench.labelset import CAMUS_LABELS, LabelSet, Structure

#: a label set that is not CAMUS's, to see it survive the cache
OTHER = LabelSet("other", (Structure(1, "a", "A"), Structure(2, "b", "B")), derived=(("ab", (1, 2)),), cavity="b")


def make_data(seed: int = 0, label_set: LabelSet = CAMUS_LABELS) -> Data:
    g = np.random.default_rng(seed)
    n = 3
    info = pd.DataFrame(
        {
            "id": [f"patient{i:04d}_2CH_ED" for i in range(1, n + 1)],
            "patient": [f"patient{i:04d}" for i in range(1, n + 1)],
            "view": ["2CH"] * n,
            "phase": ["ED"] * n,
            "split": ["train", "val", "test"],
            "ef": [0.5, np.nan, 0.61],
            "age": np.array([40, 50, 60], np.int64),
            "sex": ["M", None, "F"],
            "flag": [True, False, True],
        }
    )
    return Data(
        name="toy",
        images=g.integers(0, 256, (n, 20, 24), dtype=np.uint8),
        labels=g.integers(0, 4, (n, 20, 24), dtype=np.uint8),
        spacing=g.uniform(0.1, 1, (n, 2)),
        info=info,
        fingerprint="ignored",
        options={"size": 20, "splits": (1, 1, 1)},
        label_set=label_set,
    )


class Builder:
    """A build() that counts its calls."""

    def __init__(self, seed: int = 0, fail: bool = False, label_set: LabelSet = CAMUS_LABELS) -> None:
        self.calls, self.seed, self.fail, self.label_set = 0, seed, fail, label_set

    def __call__(self) -> Data:
        self.calls += 1
        if self.fail:
            raise BenchError("toy: the source is broken")
        return make_data(self.seed, self.label_set)


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "src"
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "a.bin", folder / "sub" / "b.bin"]
    paths[0].write_bytes(bytes(range(256)) * 10)
    paths[1].write_bytes(b"hello camus")
    return paths


def npz_files(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def assert_same(a: Data, b: Data) -> None:
    assert a.name == b.name and a.fingerprint == b.fingerprint and a.options == b.options and a.label_set == b.label_set
    for x, y in ((a.images, b.images), (a.labels, b.labels), (a.spacing, b.spacing)):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    pd.testing.assert_frame_equal(a.info, b.info)


def expected_fingerprint(params, paths, base) -> str:
    """Independent recomputation of the documented fingerprint."""
    h = hashlib.sha256()
    h.update(b"echo-noise-bench cache v1\x00")
    h.update(json.dumps({"name": "toy", "params": params}, sort_keys=True, separators=(",", ":")).encode() + b"\x00")
    for p in sorted(paths, key=lambda q: q.relative_to(base).as_posix()):
        raw = p.read_bytes()
        h.update(f"{p.relative_to(base).as_posix()}\x00{len(raw)}\x00".encode() + raw)
    return h.hexdigest()[:16]


def test_hit_returns_identical_data_without_building(tmp_path, sources):
    cache = tmp_path / "cache"
    build = Builder()
    first = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 1 and len(npz_files(cache)) == 1
    second = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 1
    assert_same(first, second)
    # what was built is what is returned, with the cache fingerprint
    original = make_data()
    assert np.array_equal(first.images, original.images) and np.array_equal(first.spacing, original.spacing)
    assert first.info["sex"].iloc[0] == "M" and first.info["age"].dtype == np.int64 and first.info["flag"].dtype == bool
    assert first.fingerprint == expected_fingerprint({"size": 20}, sources, sources[0].parent)
    assert first.fingerprint == bench.cache_fingerprint("toy", {"size": 20}, sources)


def test_label_set_round_trips_and_leaves_the_fingerprint_alone(tmp_path, sources):
    cache = tmp_path / "cache"
    build = Builder(label_set=OTHER)
    first = bench.cached("toy", {"size": 20}, sources, build, cache)
    second = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 1 and first.label_set == second.label_set == OTHER
    assert second.fingerprint == expected_fingerprint({"size": 20}, sources, sources[0].parent)  # what published records carry


def test_a_file_of_another_cache_format_is_stale(tmp_path, sources, capsys):
    cache = tmp_path / "cache"
    build = Builder()
    bench.cached("toy", {"size": 20}, sources, build, cache)
    (name,) = npz_files(cache)
    with np.load(cache / name) as z:
        members = {k: z[k] for k in z.files}
    meta = json.loads(members["meta"].tobytes().decode())
    members["meta"] = np.frombuffer(json.dumps({**meta, "format": CACHE_FORMAT - 1}).encode(), np.uint8)
    with open(cache / name, "wb") as f:
        np.savez(f, **members)
    bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 2 and f"cache format {CACHE_FORMAT - 1}, expected {CACHE_FORMAT}" in capsys.readouterr().err


def test_changed_source_byte_or_param_changes_fingerprint_and_rebuilds(tmp_path, sources, capsys):
    cache = tmp_path / "cache"
    build = Builder()
    first = bench.cached("toy", {"size": 20}, sources, build, cache)
    # same size, same mtime, one byte different: a stat check would miss it, the byte hash does not
    stat = sources[1].stat()
    sources[1].write_bytes(b"hello camuS")
    os.utime(sources[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 2 and second.fingerprint != first.fingerprint
    assert "stale" in capsys.readouterr().err
    assert len(npz_files(cache)) == 1  # the stale file was replaced, not kept beside the new one
    third = bench.cached("toy", {"size": 24}, sources, build, cache)
    assert build.calls == 3 and third.fingerprint not in (first.fingerprint, second.fingerprint)
    bench.cached("toy", {"size": 24}, sources, build, cache)
    assert build.calls == 3


def test_fingerprint_depends_on_bytes_and_names_not_location(tmp_path, sources):
    fp = bench.cache_fingerprint("toy", {"size": 20}, sources)
    moved = tmp_path / "elsewhere"
    shutil.copytree(sources[0].parent, moved)
    assert bench.cache_fingerprint("toy", {"size": 20}, [moved / "a.bin", moved / "sub" / "b.bin"]) == fp
    (moved / "sub" / "b.bin").rename(moved / "sub" / "c.bin")
    assert bench.cache_fingerprint("toy", {"size": 20}, [moved / "a.bin", moved / "sub" / "c.bin"]) != fp
    assert bench.cache_fingerprint("toy", {"size": 20}, None) != bench.cache_fingerprint("toy", {"size": 21}, None)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_corrupt_cache_file_is_rebuilt_with_a_warning(tmp_path, sources, capsys, damage):
    cache = tmp_path / "cache"
    build = Builder()
    first = bench.cached("toy", {"size": 20}, sources, build, cache)
    (name,) = npz_files(cache)
    path = cache / name
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0xFF
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "garbage":
        raw = bytearray(b"not a zip file at all" * 10)
    else:
        raw = bytearray()
    path.write_bytes(bytes(raw))
    capsys.readouterr()
    again = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "rebuilding" in err
    assert_same(first, again)
    bench.cached("toy", {"size": 20}, sources, build, cache)  # the rebuilt file is valid again
    assert build.calls == 2


def test_tampered_array_with_valid_zip_fails_the_checksum(tmp_path, sources, capsys):
    cache = tmp_path / "cache"
    build = Builder()
    first = bench.cached("toy", {"size": 20}, sources, build, cache)
    (name,) = npz_files(cache)
    path = cache / name
    with np.load(path) as z:
        members = {k: z[k] for k in z.files}
    members["labels"] = members["labels"].copy()
    members["labels"][0, 0, 0] ^= 1
    with open(path, "wb") as f:
        np.savez_compressed(f, **members)
    assert zipfile.is_zipfile(path)
    again = bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 2 and "checksum" in capsys.readouterr().err
    assert_same(first, again)


def test_build_error_leaves_no_cache_file(tmp_path, sources):
    cache = tmp_path / "cache"
    build = Builder(fail=True)
    with pytest.raises(BenchError, match="source is broken"):
        bench.cached("toy", {"size": 20}, sources, build, cache)
    assert npz_files(cache) == []
    with pytest.raises(BenchError):
        bench.cached("toy", {"size": 20}, sources, build, cache)
    assert build.calls == 2  # nothing was remembered from the failure


def test_unreadable_source_is_a_bench_error(tmp_path, sources):
    with pytest.raises(BenchError, match=r"b\.bin"):
        bench.cached("toy", {"size": 20}, [sources[0], sources[1].with_name("b.bin.gone") / "x"], Builder(), tmp_path / "c")


def test_generated_data_without_sources_and_default_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(bench.CACHE_ENV, str(tmp_path / "envcache"))
    assert bench.default_cache_dir() == tmp_path / "envcache"
    build = Builder()
    a = bench.cached("toy", {"seed": 1}, None, build)
    b = bench.cached("toy", {"seed": 1}, None, build)
    assert build.calls == 1 and len(npz_files(tmp_path / "envcache")) == 1
    assert_same(a, b)
    monkeypatch.delenv(bench.CACHE_ENV)
    assert bench.default_cache_dir() == __import__("pathlib").Path.home() / ".cache" / "echo-noise-bench"
