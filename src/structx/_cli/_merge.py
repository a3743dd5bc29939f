"""``structx merge``: result lines from many runs into one dataset of entities, events, stances and sources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import structx
from structx._cli._app import app, fail

__all__ = ["merge"]


@app.command("merge")
def merge(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="JSONL files written by structx extract, or folders of answers in the gold format (<id>.json).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for dataset.sqlite and one Parquet file per table.")],
    articles: Annotated[
        Path | None,
        typer.Option(
            help="Folder of article texts (<id>.txt) for lines whose source cannot be read.", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace the dataset in a folder that is not empty.")] = False,
) -> None:
    """Resolve entities across articles, merge visits and meetings, and write the dataset tables."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if out.exists() and not out.is_dir():
        fail(console, f"--out {out} exists and is not a directory; give a folder for the dataset")
    if out.is_dir() and any(out.iterdir()) and not force:
        fail(console, f"--out {out} exists and is not empty; pass --force to replace the dataset in it")
    if articles is not None and not articles.is_dir():
        fail(console, f"--articles {articles}: no such directory")
    try:
        dataset = structx.build_dataset(results, articles=articles)
        written = dataset.write(out, force=force)
    except structx.UsageError as exc:
        fail(console, str(exc))
    out_console = Console(highlight=False, soft_wrap=True)
    out_console.print(dataset.summary(), markup=False)
    console.print(f"wrote {len(written)} files to {out}: {', '.join(p.name for p in written)}", markup=False)
