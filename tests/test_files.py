"""Atomic writing: whole new content or the old file, world-readable, no temporary file left either way."""

import os
import stat

import pytest

from bench.files import RunLock, atomic_writer, write_text_atomic


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


def test_a_lock_names_the_command_that_holds_it(tmp_path):
    with RunLock(tmp_path, "bench audit echo-phantom --out x"):
        stamp = (tmp_path / RunLock.NAME).read_text()
    assert stamp.startswith(f"bench audit (pid {os.getpid()} on ") and stamp.endswith("): bench audit echo-phantom --out x")
    assert (tmp_path / RunLock.NAME).read_text() == ""  # released and emptied on exit
