"""Atomic file writing: a reader sees the old file or the whole new one, never half of one.

Records, boards, cache files and figures are all written this way: into a
temporary file in the target's folder (so the final rename stays on one file
system), flushed and fsynced, made world-readable (0644: they are for
publishing; `mkstemp` would leave them private), then moved into place with
`os.replace`. On any failure, interruptions included, the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


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
