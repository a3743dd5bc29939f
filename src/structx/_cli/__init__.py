"""The ``structx`` command: a thin layer over the public library API, one module per command."""

from __future__ import annotations

import signal
from types import FrameType

# Each command module registers its command on the app when imported.
from structx._cli import (  # noqa: F401
    _batch_collect,
    _batch_status,
    _batch_submit,
    _batch_write,
    _eval,
    _export,
    _extract,
    _merge,
    _report,
)
from structx._cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``structx`` script and ``python -m structx``."""
    # SIGTERM unwinds like Ctrl-C does, so the embedded server is stopped on
    # the way out. While articles are being extracted, extract handles both
    # signals itself: it stops the batch and writes the output.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    app(prog_name="structx")


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
