"""``structx extract``: one JSON line per article, with a run database for resuming."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import structx
from structx._cli._app import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, app, configure_logging, fail

__all__ = ["extract"]

_EMBEDDED_NOTICE = (
    "Using the embedded {model} model through llama.cpp: a tiny model for offline runs, "
    "whose answers are of low quality. For real results point structx at a capable endpoint: "
    "--base-url URL (vLLM, Ollama, llama.cpp server) or OPENAI_API_KEY for OpenAI."
)


@app.command()
def extract(
    paths: Annotated[list[Path], typer.Argument(help="Article files or directories of them.", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write JSON lines here (default: standard output).")
    ] = None,
    schema: Annotated[
        str,
        typer.Option(help="Target model: 'package.module:Class' or 'path/to/file.py:Class'."),
    ] = structx.DEFAULT_SCHEMA_REF,
    model: Annotated[str | None, typer.Option(help="Model name (default: STRUCTX_MODEL).")] = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL).", show_default=False),
    ] = None,
    structured_output: Annotated[
        structx.StructuredOutput,
        typer.Option(help="How the schema is sent; 'auto' chooses from the endpoint."),
    ] = structx.StructuredOutput.AUTO,
    concurrency: Annotated[int, typer.Option(help="Articles extracted at the same time.", min=1)] = 4,
    max_reasks: Annotated[int, typer.Option(help="Validation re-asks after the first answer.", min=0)] = 2,
    grounding: Annotated[
        structx.GroundingPolicy,
        typer.Option(help="Records still ungrounded after the re-asks: keep them flagged, drop them, or fail."),
    ] = structx.GroundingPolicy.KEEP,
    chunk_chars: Annotated[
        int,
        typer.Option(help="Split longer articles into overlapping chunks of this many characters (0: never).", min=0),
    ] = 12_000,
    max_tokens: Annotated[int, typer.Option(help="Completion token budget per model call.", min=1)] = 2048,
    timeout: Annotated[float, typer.Option(help="Seconds one HTTP request may take.", min=0.1)] = 180.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log the endpoint and each article.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    limit: Annotated[int | None, typer.Option(help="Stop after this many articles.", min=1)] = None,
    force: Annotated[bool, typer.Option(help="Redo every article and overwrite --out.")] = False,
    retry_failed: Annotated[bool, typer.Option(help="Redo the articles that failed in an earlier run.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Send every request, even one answered before.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent, without calling the endpoint.")] = False,
    prices: Annotated[
        Path | None,
        typer.Option(help="TOML of model = [prompt, completion] dollars per million tokens, for the cost estimate."),
    ] = None,
) -> None:
    """Extract records from each article: one JSON line per article.

    With --out, a run database beside it (OUT.structx.sqlite) records each
    article as it finishes: running the same command again resumes, skipping
    finished articles and answering repeated requests from its cache.
    """
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    configure_logging(verbose)
    try:
        target = structx.load_schema(schema)
        config = structx.Config.from_env(
            base_url=base_url,
            model=model,
            structured_output=structured_output,
            max_reasks=max_reasks,
            grounding=grounding,
            chunk_chars=chunk_chars or None,
            chunk_overlap=min(1_000, chunk_chars // 4),
            max_tokens=max_tokens,
            timeout=timeout,
        )
        files = list(structx.iter_article_files(paths))
    except structx.UsageError as exc:
        fail(console, str(exc))
    if not files:
        fail(console, "no article files found in " + ", ".join(str(p) for p in paths))

    articles = itertools.islice(structx.iter_articles(files), limit)
    if dry_run:
        _dry_run(articles, target, config)
        raise typer.Exit(EXIT_OK)
    try:
        price_table = structx.load_prices(prices) if prices is not None else None
    except structx.UsageError as exc:
        fail(console, str(exc))
    store = _open_store(console, out, force=force)
    if config.uses_embedded_model and not quiet:
        console.print(_EMBEDDED_NOTICE.format(model=structx.EMBEDDED_MODEL_NAME), style="yellow")

    summary = structx.BatchSummary()
    started = time.perf_counter()
    cache = None if no_cache else store
    redo: Literal["failed", "all"] | None = "all" if force else "failed" if retry_failed else None
    interrupted = False
    with structx.Client(config, cache=cache) as client:
        try:
            endpoint = client.endpoint
        except structx.UsageError as exc:
            _close(store)  # and release its lock: the process may go on (a test, a caller of main())
            fail(console, str(exc))
        except structx.ExtractionError as exc:
            # Nothing can be extracted: one line says why, and every article
            # still gets its error line.
            console.print(f"structx: error: {exc}", style="red", markup=False)
            with _output(out) as sink:
                for item in articles:
                    sink.write(structx.ArticleOutcome.failed(item, exc).to_json_line() + "\n")
            _close(store)
            raise typer.Exit(EXIT_SOME_FAILED) from None
        logging.getLogger("structx").info(
            "endpoint %s (%s), model %s, structured output %s (%s)",
            endpoint.display_url,
            endpoint.server,
            endpoint.model,
            endpoint.mode.value,
            endpoint.reason,
        )
        # JSONL files and standard input hold an unknown number of articles.
        known = None if any(f.suffix.lower() == ".jsonl" or str(f) == "-" for f in files) else len(files)
        with _output(out) as sink, _progress(console, enabled=not quiet and not verbose) as bar:
            task = bar.add_task("extracting", total=known) if bar else None

            stopped: list[structx.NotAttempted] = []  # the first article an error fatal for the batch left unsent

            async def run() -> bool:
                # Ctrl-C stops new work; what is in flight finishes, and is kept.
                stop = asyncio.Event()
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
                batch = structx.aextract_many(
                    articles, client, target, concurrency=concurrency, store=store, redo=redo, stop=stop
                )
                async for outcome in batch:
                    sink.write(outcome.to_json_line() + "\n")
                    summary.add(outcome)
                    if isinstance(outcome.error, structx.NotAttempted):
                        if not stopped:  # reported once for all of them, below
                            stopped.append(outcome.error)
                    else:
                        _report(console, outcome, verbose)
                    if bar is not None and task is not None:
                        done, elapsed = summary.ok + summary.failed, time.perf_counter() - started
                        rate = done / elapsed * 60 if elapsed else 0.0
                        tally = f"{summary.failed} failed, {summary.usage.total_tokens:,} tokens, {rate:.1f}/min"
                        bar.update(task, advance=1, description=f"extracting ({tally})")
                await client.aclose_connections()
                return stop.is_set()

            interrupted = asyncio.run(run())
    if stopped:
        first, not_sent = stopped[0], summary.errors_by_type[structx.NotAttempted.__name__]
        console.print(
            f"structx: error: stopped after {type(first.stopped_by).__name__} on {first.stopped_at}, "
            f"which every article would meet ({first.stopped_by}); {not_sent} article(s) were not sent "
            "and have a NotAttempted error line",
            style="red",
            markup=False,
        )
    _close(store)
    if interrupted:
        console.print(
            f"interrupted: {summary.ok + summary.failed} articles finished and were kept; "
            "run the same command again to resume",
            style="yellow",
        )

    if not quiet:
        _print_summary(console, summary, time.perf_counter() - started, out, model=endpoint.model, prices=price_table)
    if interrupted:
        raise typer.Exit(EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_OK if summary.failed == 0 else EXIT_SOME_FAILED)


def _open_store(console: Console, out: Path | None, *, force: bool) -> structx.RunStore | None:
    """The run database beside ``out``; refuses to overwrite an output that no run of ours wrote."""
    if out is None:
        return None
    if out.is_dir():
        fail(console, f"--out {out} is a directory; give a file name")
    database = out.with_name(out.name + ".structx.sqlite")
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = database.with_name(database.name + suffix)
        if path.is_symlink():  # SQLite would write wherever it points
            fail(console, f"{path} is a symbolic link; structx does not write through links")
    if out.exists() and not database.exists() and not force:
        fail(console, f"{out} exists and was not written by a structx run; pass --force to overwrite it")
    try:
        store = structx.RunStore(database)
    except structx.RunInUse as exc:
        holder = f" (pid {exc.pid})" if exc.pid is not None else ""
        fail(console, f"{out} is in use by another structx process{holder}; wait for it to finish")
    except structx.InputError as exc:
        fail(console, str(exc))
    return store


def _close(store: structx.RunStore | None) -> None:
    if store is not None:
        store.close()


def _dry_run(
    articles: Iterable[structx.Article | structx.InputError], target: type[Any], config: structx.Config
) -> None:
    out = Console(highlight=False, soft_wrap=True)
    first: structx.Article | None = None
    # About four characters a token for English text; the schema goes with every request.
    schema_tokens = len(json.dumps(target.model_json_schema())) // 4
    count = 0
    for item in articles:
        count += 1
        if isinstance(item, structx.InputError):
            out.print(f"{item.article_id}: would fail: {item.reason}", markup=False)
            continue
        first = first or item
        estimate = len(item.text) // 4 + schema_tokens
        out.print(f"{item.id}: {len(item.text):,} characters, about {estimate:,} prompt tokens", markup=False)
    out.print(f"{count} articles; nothing was sent.", markup=False)
    if first is not None:
        mode = config.structured_output
        request = {
            "model": config.model or "(resolved when the run starts)",
            "structured_output": mode.value,
            "messages": structx.build_messages(
                first, target, include_schema=mode is not structx.StructuredOutput.TOOLS
            ),
        }
        out.print(f"The request for {first.id}:", markup=False)
        out.print_json(json.dumps(request, ensure_ascii=False))


@contextlib.contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``out`` written whole or not at all (a temporary file, then a rename)."""
    if out is None:
        yield sys.stdout
        return
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.unlink(missing_ok=True)  # a stale one, or a symlink planted there, is not followed
        handle = partial.open("x", encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out}: {exc.strerror}", param_hint="--out") from None
    try:
        with handle:
            yield handle
    except BaseException:
        partial.unlink(missing_ok=True)  # the run database still holds every finished article
        raise
    partial.replace(out)


@contextlib.contextmanager
def _progress(console: Console, *, enabled: bool) -> Iterator[Progress | None]:
    if not enabled or not console.is_terminal:
        yield None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        yield bar


def _report(console: Console, outcome: structx.ArticleOutcome, verbose: bool) -> None:
    if outcome.status == "error":
        error = outcome.to_json()["error"]
        console.print(f"{outcome.source}: {error['type']}: {error['message']}", style="red", markup=False)
    elif verbose and outcome.result is not None:
        result = outcome.result
        logging.getLogger("structx").info(
            "%s: ok, %d attempt(s), %d request(s), %d tokens, %.1f s",
            outcome.source,
            result.attempts,
            result.requests,
            result.usage.total_tokens,
            result.latency,
        )


def _print_summary(
    console: Console,
    summary: structx.BatchSummary,
    seconds: float,
    out: Path | None,
    *,
    model: str,
    prices: dict[str, tuple[float, float]] | None,
) -> None:
    failed = ", ".join(f"{n} {name}" for name, n in sorted(summary.errors_by_type.items()))
    total = summary.ok + summary.failed
    cost = structx.estimate_cost(model, summary.usage, prices)
    rate = total / seconds * 60 if seconds else 0.0
    console.print(
        f"{total} articles: {summary.ok} ok, {summary.failed} failed"
        + (f" ({failed})" if failed else "")
        + (f", {summary.resumed} from an earlier run" if summary.resumed else "")
        + f"; {summary.records} records, {summary.ungrounded_records} ungrounded"
        + f"; {summary.usage.prompt_tokens:,} prompt + {summary.usage.completion_tokens:,} completion tokens"
        + (f" (about ${cost:,.4f} at list prices)" if cost is not None else "")
        + f"; {summary.requests} requests; {seconds:.1f} s, {rate:.1f} articles/min"
        + (f"; wrote {out}" if out is not None else ""),
        markup=False,
    )
