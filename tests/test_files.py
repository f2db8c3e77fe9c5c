"""Atomic writing: whole new content or the old file, world-readable, no temporary file left either way."""

import stat

import pytest

from bench.files import atomic_writer, write_text_atomic


def test_text_replaces_the_file_whole_with_mode_0644_and_creates_folders(tmp_path):
    path = tmp_path / "deep" / "er" / "board.md"
    write_text_atomic(path, "first\n")
    write_text_atomic(path, "ΔDice second\n")
    assert path.read_text(encoding="utf-8") == "ΔDice second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["board.md"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "cache.npz"
    with atomic_writer(path) as f:
        f.write(b"old bytes")
    with pytest.raises(RuntimeError, match="half-way"), atomic_writer(path) as f:
        f.write(b"new by")
        raise RuntimeError("half-way")
    assert path.read_bytes() == b"old bytes"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npz"]
