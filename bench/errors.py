"""The one user-facing error type: a bad name, spec, path or file.

The CLI prints a `BenchError` as one line and exits with code 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class BenchError(Exception):
    """A problem with the user's input, stated in one line with its fix."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
