"""The ``structx`` Typer application, its exit codes and what every command shares."""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

import structx
from structx._cli._settings import project_settings

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SOME_FAILED",
    "EXIT_USAGE",
    "app",
    "configure_logging",
    "directory_problem",
    "fail",
]

app = typer.Typer(
    name="structx",
    help="Turn news articles into validated, evidence-grounded structured records.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


@app.callback()
def _root(ctx: typer.Context) -> None:
    """structx: structured, evidence-grounded records from news articles.

    Settings for `structx extract` can be pinned in structx.toml or under
    [tool.structx] in pyproject.toml (e.g. model = "...", concurrency = 8),
    found from the current folder upward to the project root; options on the
    command line win.
    """
    if ctx.invoked_subcommand != "extract":
        return  # the settings are extract's: a broken file does not stop eval or export
    extract = next(c.callback for c in app.registered_commands if c.callback and c.callback.__name__ == "extract")
    try:
        settings = project_settings(Path.cwd(), extract)
    except structx.UsageError as exc:
        fail(Console(stderr=True, highlight=False, soft_wrap=True), str(exc))
    if settings:
        ctx.default_map = {"extract": settings}


def fail(console: Console, message: str) -> NoReturn:
    """Print ``message`` as one error line, as written (no rich markup), and exit with EXIT_USAGE."""
    console.print(f"structx: error: {message}", style="red", markup=False)
    raise typer.Exit(EXIT_USAGE)


def directory_problem(directory: Path) -> str | None:
    """Why no file can be created in ``directory``, or None when one can."""
    if not directory.is_dir():
        return f"the directory {directory} does not exist"
    try:
        # Trying is the only sure test: permission bits do not bind root, and
        # some file systems refuse new files whatever the bits say.
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return f"the directory {directory} is not writable ({exc.strerror})"
    return None


def configure_logging(verbose: bool) -> None:
    # structx reports every outcome itself; instructor's per-attempt lines would repeat it.
    logging.getLogger("instructor").setLevel(logging.CRITICAL)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("structx: %(message)s"))
    logger = logging.getLogger("structx")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.propagate = False
