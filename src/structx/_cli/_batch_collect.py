"""``structx batch collect``: the answers of finished batches checked as online, and every article's line.

Re-asks, error-file lines and requests a batch never answered (expired,
cancelled) are sent online by default, or queued into a follow-up batch
(``--resubmit batch``): every article ends with exactly one line, nothing is
lost when a batch expires or is cancelled. The output is written (whole,
atomically) once no article waits for a batch; until then the command says
what is still running and exits 3.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

import structx
from structx._cli._app import EXIT_OK, EXIT_SOME_FAILED, configure_logging, directory_problem, fail
from structx._cli._batch import (
    EXIT_WAITING,
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

__all__ = ["collect"]


@batch_app.command("collect")
def collect(
    run: RunOption,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the JSON lines here (default: RUN/results.jsonl).")
    ] = None,
    resubmit: Annotated[
        str | None,
        typer.Option(
            help="Where re-asks, error lines and unanswered requests go: 'online' (the default for submitted "
            "runs) or 'batch' (a follow-up batch; the next request file for written runs, their default).",
            show_default=False,
        ),
    ] = None,
    results: Annotated[
        list[Path] | None,
        typer.Option(
            "--from", metavar="FILE", help="A results file of vllm run-batch (repeat for more).", show_default=False
        ),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Articles re-asked online at the same time.", min=1)] = 4,
    wait: Annotated[bool, typer.Option(help="Wait for running batches instead of exiting 3.")] = False,
    poll_seconds: Annotated[float, typer.Option(help="Seconds between status checks with --wait.", min=0.0)] = 60.0,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --out outside the run folder.")] = False,
    api_key: ApiKeyOption = None,
    api_key_env: ApiKeyEnvOption = None,
    header: HeaderOption = None,
    timeout: TimeoutOption = 180.0,
    max_retries: MaxRetriesOption = 4,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log each file downloaded.")] = False,
) -> None:
    """Download the results of finished batches, check every answer, and write one line per article.

    Exit 0 when every article succeeded, 1 when any failed, 3 while batches are still running.
    """
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    configure_logging(verbose)
    if resubmit not in (None, "online", "batch"):
        fail(console, f"--resubmit must be online or batch, not {resubmit!r}")
    target = out if out is not None else run / "results.jsonl"
    problem = directory_problem(target.parent) if not target.is_dir() else f"--out {target} is a directory"
    if problem is not None:
        fail(console, problem if problem.startswith("--out") else f"--out {target}: {problem}")
    if target.exists() and target.parent.resolve() != run.resolve() and not force:
        fail(console, f"{target} exists and is outside the run folder; pass --force to overwrite it")
    for path in results or []:
        if not path.is_file():
            fail(console, f"--from {path}: no such file")
    with open_run(console, run, create=False) as batch_run:
        kind = batch_run.kind
        if results and kind == "api":
            fail(console, "--from reads vllm run-batch results; this run was submitted to a Batch API")
        mode: Literal["online", "batch"] = (
            "online" if resubmit == "online" or (resubmit is None and kind == "api") else "batch"
        )
        with client_for(
            console,
            batch_run,
            api_key=api_key,
            api_key_env=api_key_env,
            header=header,
            timeout=timeout,
            max_retries=max_retries,
        ) as client:
            try:
                report = batch_run.collect(client, resubmit=mode, results=results or [], concurrency=concurrency)
                # A follow-up batch (--resubmit batch) is waited for too.
                while wait and (report.running or report.files) and kind == "api":
                    _say_running(console, report)
                    time.sleep(poll_seconds)
                    report = batch_run.collect(client, resubmit=mode, concurrency=concurrency)
                _say_collected(console, report, mode)
                if report.running or report.waiting:
                    _say_running(console, report)
                    if report.files:
                        console.print(
                            f"{report.queued:,} request(s) queued into "
                            + ", ".join(row.batch_id or str(run / row.name) for row in report.files)
                            + ("; answer them with vllm run-batch, then collect --from" if kind == "files" else ""),
                            markup=False,
                        )
                    raise typer.Exit(EXIT_WAITING)
                lines = list(batch_run.lines(client, report.unsettled))
            except structx.StructxError as exc:
                stop_on(console, exc)
    _write_lines(target, lines)
    failed = sum(line.get("status") != "ok" for line in lines)
    console.print(f"{len(lines)} articles: {len(lines) - failed} ok, {failed} failed; wrote {target}", markup=False)
    raise typer.Exit(EXIT_OK if failed == 0 else EXIT_SOME_FAILED)


def _say_collected(console: Console, report: structx.BatchCollectReport, mode: str) -> None:
    parts = [f"{len(report.collected)} file(s) collected", f"{report.answers:,} answers"]
    if report.errors:
        parts.append(f"{report.errors:,} error line(s)")
    if report.not_answered:
        parts.append(f"{report.not_answered:,} request(s) the batch never answered")
    if report.unknown_ids:
        parts.append(f"{report.unknown_ids:,} line(s) for ids this run never sent, ignored")
    parts.append(f"{report.settled:,} article(s) settled (re-asks {mode})")
    console.print("; ".join(parts), markup=False)


def _say_running(console: Console, report: structx.BatchCollectReport) -> None:
    running = ", ".join(f"{row.batch_id or row.name} ({row.status})" for row in report.running)
    console.print(
        f"{report.waiting:,} article(s) wait for answers" + (f" from {running}" if running else "")
        + "; nothing written yet: collect again when structx batch status shows them finished (or pass --wait)",
        markup=False,
    )  # fmt: skip


def _write_lines(target: Path, lines: list[dict[str, Any]]) -> None:
    """The lines replace ``target`` whole, through a temporary file beside it."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as sink:
            for line in lines:
                sink.write(json.dumps(line, ensure_ascii=False) + "\n")
        Path(temporary).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(temporary).unlink()
        raise
