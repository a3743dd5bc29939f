"""``structx batch status``: each request file, its batch's state and counts, and the articles done and waiting."""

from __future__ import annotations

import typer
from rich.console import Console

import structx
from structx._cli._batch import (
    ApiKeyEnvOption,
    ApiKeyOption,
    HeaderOption,
    MaxRetriesOption,
    RunOption,
    TimeoutOption,
    batch_app,
    client_for,
    open_run,
    stop_on,
)

__all__ = ["status"]


@batch_app.command("status")
def status(
    run: RunOption,
    api_key: ApiKeyOption = None,
    api_key_env: ApiKeyEnvOption = None,
    header: HeaderOption = None,
    timeout: TimeoutOption = 180.0,
    max_retries: MaxRetriesOption = 4,
) -> None:
    """Show each batch of the run (asked of the API) and how many articles are done."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    out = Console(highlight=False, soft_wrap=True)
    with open_run(console, run, create=False) as batch_run:
        try:
            if batch_run.kind == "api":
                with client_for(
                    console,
                    batch_run,
                    api_key=api_key,
                    api_key_env=api_key_env,
                    header=header,
                    timeout=timeout,
                    max_retries=max_retries,
                ) as client:
                    shown = batch_run.status(client)
            else:
                shown = batch_run.status(None)
        except structx.StructxError as exc:
            stop_on(console, exc)
        for row, counts in shown:
            if row.batch_id is None:
                state = "answers read" if row.collected else "waiting for vllm run-batch results (collect --from)"
                out.print(f"{row.name}: {row.requests:,} requests; {state}", markup=False)
                continue
            done = f"{counts.get('completed', 0):,} of {counts.get('total', row.requests):,} done" if counts else ""
            failed = f", {counts['failed']:,} failed" if counts.get("failed") else ""
            collected = "; collected" if row.collected else ""
            out.print(f"{row.name}: batch {row.batch_id} {row.status} {done}{failed}{collected}".rstrip(), markup=False)
        done_articles, waiting = batch_run.progress()
    out.print(f"articles: {done_articles} done, {waiting} waiting", markup=False)
    raise typer.Exit(0)
