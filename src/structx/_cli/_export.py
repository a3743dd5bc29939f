"""``structx export``: result lines to CSV files and a SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import structx
from structx._cli._app import app, fail

__all__ = ["export"]


@app.command("export")
def export(
    results: Annotated[Path, typer.Argument(help="A JSONL file written by structx extract.", show_default=False)],
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Directory for the tables.")],
    format: Annotated[
        list[str] | None,
        typer.Option(
            "--format", help="csv (one file per table) and/or sqlite: --format csv,sqlite or repeated. Default: both."
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace tables that already exist.")] = False,
) -> None:
    """Export results to tables: one per record type, plus one row per article."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    formats = [kind.strip() for value in format or ["csv,sqlite"] for kind in value.split(",") if kind.strip()]
    try:
        lines = structx.load_predictions(results)
        written = structx.export_tables(lines, out_dir, formats=formats, force=force)
    except structx.UsageError as exc:
        fail(console, str(exc))
    for path in written:
        console.print(f"wrote {path}", markup=False)
