"""``structx report``: a static HTML site showing every article of a run with its evidence, and the dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import structx
from structx._cli._app import app, fail

__all__ = ["report"]


@app.command("report")
def report(
    results: Annotated[
        list[Path],
        typer.Argument(
            help="JSONL files written by structx extract, or folders of answers in the gold format (<id>.json).",
            show_default=False,
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for the site: index.html, articles/, entities/.")],
    dataset: Annotated[
        Path | None,
        typer.Option(
            help="A dataset folder written by structx merge: adds entities, timeline, meetings, stances, sources.",
            show_default=False,
        ),
    ] = None,
    articles: Annotated[
        Path | None,
        typer.Option(
            help="Folder of article texts (<id>.txt) for lines whose source cannot be read.", show_default=False
        ),
    ] = None,
    prices: Annotated[
        Path | None,
        typer.Option(help="TOML of model = [prompt, completion] dollars per million tokens.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace the report in a folder that is not empty.")] = False,
) -> None:
    """Write a static report (opens from disk): the run at a glance and each article with its evidence highlighted."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if out.exists() and not out.is_dir():
        fail(console, f"--out {out} exists and is not a directory; give a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not force:
        fail(console, f"--out {out} exists and is not empty; pass --force to replace the report in it")
    if articles is not None and not articles.is_dir():
        fail(console, f"--articles {articles}: no such directory")
    if dataset is not None and not dataset.is_dir():
        fail(console, f"--dataset {dataset}: no such directory (write one with structx merge)")
    try:
        table = structx.load_prices(prices) if prices is not None else None
        site = structx.write_report(results, out, dataset=dataset, articles=articles, prices=table, force=force)
    except structx.UsageError as exc:
        fail(console, str(exc))
    Console(highlight=False, soft_wrap=True).print(site.summary(), markup=False)
    console.print(f"wrote {len(site.files)} files to {out}; open {site.index}", markup=False)
