"""Atomic file writing: a reader sees the old file or the whole new one, never half of one.

Records, boards, cache files and figures are all written this way: into a
temporary file in the target's folder (so the final rename stays on one file
system), flushed and fsynced, made world-readable (0644: they are for
publishing; `mkstemp` would leave them private), then moved into place with
`os.replace`. On any failure, interruptions included, the temporary file is removed.
Also here: the checks that an output path can be written, made before any work
starts, and the lock a run holds on its output folder.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bench.errors import BenchError


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """A file opened for writing (`mode` "wb" or "w") whose content replaces `path` only when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` with `atomic_writer`: never half-written, mode 0644."""
    with atomic_writer(path, "w", encoding="utf-8") as f:
        f.write(text)


# --------------------------------------------------------------------------- checked before any work


def _nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest existing ancestor."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _probe(folder: Path) -> str | None:
    """Why a file cannot be created in `folder` (None: it can), by creating and removing one (permissions, read-only mounts)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".bench-probe.", dir=folder)
    except OSError as error:
        return error.strerror or type(error).__name__
    os.close(fd)
    os.unlink(tmp)
    return None


def check_output_folder(path: Path, option: str = "--out") -> None:
    """BenchError (one line) unless `path` is, or can be made, a folder this process can write in. Creates nothing."""
    path = Path(path)
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise BenchError(f"{option} {path}: {base} is a file, not a folder; pick another path")
    why = _probe(base)
    if why is not None:
        raise BenchError(f"{option} {path}: cannot write in {base} ({why}); pick a folder you can write to")


def check_output_file(path: Path, option: str = "--out", suffixes: tuple[str, ...] | None = None) -> None:
    """BenchError (one line) unless a file can be written at `path`: not a folder, the right suffix, a writable folder."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{option} {path} is a folder; give a file name, e.g. {path / ('out' + (suffixes or ('.txt',))[0])}")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise BenchError(f"{option} {path} must end in {' or '.join(suffixes)}")
    check_output_folder(path.parent, option)


class RunLock:
    """An exclusive lock on an output folder for the length of a run (`with RunLock(out, "bench run ..."):`).

    The lock is `fcntl.flock` on `<folder>/.bench.lock`, which also records who holds it
    (process, host, start, command). The kernel releases it when the holder exits, killed
    or not, so a stale lock is taken over safely by the next run; a live one is refused
    with one line naming its holder. flock is per host: on a shared network folder two
    hosts' runs must not share an `--out`.
    """

    NAME = ".bench.lock"

    def __init__(self, folder: Path, command: str) -> None:
        self.folder = Path(folder)
        self.command = command
        self._fd: int | None = None

    def refuse_if_held(self) -> None:
        """BenchError naming the holder when a live run holds the folder's lock; creates nothing (a check before any work)."""
        path = self.folder / self.NAME
        if not path.is_file():
            return
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        try:
            self._take(fd)
        finally:
            os.close(fd)  # a free lock taken for the check is released at once

    def _take(self, fd: int) -> None:
        import fcntl

        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another run"
            raise BenchError(f"{self.folder} is in use by {holder}; wait for it to finish or use another --out") from None

    def __enter__(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.folder / self.NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            self._take(fd)
        except BaseException:
            os.close(fd)
            raise
        verb = " ".join(self.command.split()[:2])  # "bench run", "bench audit": who holds it, as the holder was started
        stamp = f"{verb} (pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%dT%H:%M:%S')}): {self.command}"
        os.ftruncate(fd, 0)
        os.pwrite(fd, stamp.encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the flock
            self._fd = None
