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
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Literal, TextIO

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import structx
from structx._cli._app import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    app,
    configure_logging,
    directory_problem,
    fail,
)
from structx._cli._settings import parse_headers

__all__ = ["extract"]

_EMBEDDED_NOTICE = (
    "Using the embedded {model} model through llama.cpp (--local-model chooses another): "
    "a small model for offline runs, which misses records a larger one finds. For better results point "
    "structx at a capable endpoint: --base-url URL (vLLM, Ollama, llama.cpp server) or OPENAI_API_KEY for OpenAI."
)


@app.command()
def extract(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Article files or directories of them.", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write JSON lines here ('-' or none: standard output).")
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
    extraction_format: Annotated[
        structx.ExtractionFormat,
        typer.Option(
            help="What the model is shown and writes: 'excerpts' (one call, evidence copied word for word), "
            "'cited' (numbered sentences cited by number, one call per record type; for small models), "
            "'auto' (cited for llama.cpp servers, else excerpts)."
        ),
    ] = structx.ExtractionFormat.AUTO,
    local_model: Annotated[
        structx.LocalModelChoice,
        typer.Option(help="The embedded server's model, used when no endpoint is configured."),
    ] = structx.DEFAULT_LOCAL_MODEL,
    concurrency: Annotated[
        int,
        typer.Option(help="Articles extracted at the same time (with the embedded server: at most its slots).", min=1),
    ] = 4,
    max_reasks: Annotated[int, typer.Option(help="Validation re-asks after the first answer.", min=0)] = 2,
    grounding: Annotated[
        structx.GroundingPolicy,
        typer.Option(help="Records still ungrounded after the re-asks: keep them flagged, drop them, or fail."),
    ] = structx.GroundingPolicy.KEEP,
    chunk_chars: Annotated[
        int,
        typer.Option(help="Split longer articles into overlapping chunks of this many characters (0: never).", min=0),
    ] = 12_000,
    max_article_bytes: Annotated[
        int,
        typer.Option(help="Refuse larger articles (a file's size, else its UTF-8 text) before any request.", min=1),
    ] = 2_000_000,
    max_tokens: Annotated[int, typer.Option(help="Completion token budget per model call.", min=1)] = 2048,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of every model call.", min=0.0)] = 0.0,
    timeout: Annotated[
        float,
        typer.Option(help="Seconds one HTTP request may take (the embedded server: at least 900).", min=0.1),
    ] = 180.0,
    max_retries: Annotated[
        int, typer.Option(help="Transport retries of a failed HTTP request (timeouts, 408, 409, 429, 5xx).", min=0)
    ] = 4,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="API key (default: OPENAI_API_KEY). Other users can see it in the process list: prefer --api-key-env.",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", metavar="NAME", help="Read the API key from this environment variable."),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            metavar="NAME=VALUE",
            help="An HTTP header sent with every request; repeat for more.",
            show_default=False,  # one pinned in structx.toml may hold a secret
        ),
    ] = None,
    log_requests: Annotated[
        Path | None,
        typer.Option(
            "--log-requests",
            metavar="FILE",
            help="Append every HTTP request and response body to FILE as JSON lines (API key and "
            "authorization headers replaced by ***).",
        ),
    ] = None,
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
    if out is not None and str(out) == "-":
        out = None
    if api_key is not None and api_key_env is not None:
        fail(console, "give --api-key or --api-key-env, not both")
    try:
        target = structx.load_schema(schema)
        config = structx.Config.from_env(
            api_key_env=api_key_env,
            api_key=api_key,
            base_url=base_url,
            model=model,
            structured_output=structured_output,
            local_model=local_model,
            max_reasks=max_reasks,
            grounding=grounding,
            extraction_format=extraction_format,
            chunk_chars=chunk_chars,  # 0 is "never"; None would mean "not given" and bring back the default
            chunk_overlap=structx.Config.overlap_for(chunk_chars),
            max_article_bytes=max_article_bytes,
            max_tokens=max_tokens,
            temperature=temperature,
            timeout=timeout,
            max_retries=max_retries,
            headers=parse_headers(header or []),
        )
        files = list(structx.iter_article_files(paths))
    except structx.UsageError as exc:
        fail(console, str(exc))
    if not files:
        fail(console, "no article files found in " + ", ".join(str(p) for p in paths))

    # The paths as given, not the files they expand to: a file's id is its path inside the directory given.
    # Each article once, under the id the run gives it, so that --limit and --dry-run count what the run does.
    articles = itertools.islice(structx.iter_batch_articles(paths, max_bytes=config.max_article_bytes), limit)
    if dry_run:
        _dry_run(articles, target, config)
        raise typer.Exit(EXIT_OK)
    try:
        price_table = structx.load_prices(prices) if prices is not None else None
    except structx.UsageError as exc:
        fail(console, str(exc))
    if log_requests is not None:
        ctx.call_on_close(_log_requests_to(console, log_requests))
    store = _open_store(console, out, force=force)
    if store is not None:
        ctx.call_on_close(store.close)  # however the command ends, the run database's lock is released
    if config.uses_embedded_model and not quiet:
        name = structx.EmbeddedServer(local_model=config.local_model).model_name
        console.print(_EMBEDDED_NOTICE.format(model=name), style="yellow", markup=False)

    summary = structx.BatchSummary()
    started = time.perf_counter()
    cache = None if no_cache else store
    redo: Literal["failed", "all"] | None = "all" if force else "failed" if retry_failed else None
    with structx.Client(config, cache=cache) as client:
        try:
            endpoint = client.endpoint
        except KeyboardInterrupt:
            # Before the first article (GET /models, the embedded server starting): nothing to keep.
            console.print("Ctrl-C: stopped before any article was sent; nothing was written", style="yellow")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except structx.UsageError as exc:
            fail(console, str(exc))
        except structx.ExtractionError as exc:
            # Nothing can be extracted: one line says why, and every article
            # still gets its error line.
            console.print(f"structx: error: {exc}", style="red", markup=False)
            with _output(out) as sink:
                for item in articles:
                    sink.write(structx.ArticleOutcome.failed(item, exc).to_json_line() + "\n")
            raise typer.Exit(EXIT_SOME_FAILED) from None
        logging.getLogger("structx").info(
            "endpoint %s (%s), model %s, structured output %s (%s)",
            endpoint.display_url,
            endpoint.server,
            endpoint.model,
            endpoint.mode.value,
            endpoint.reason,
        )
        with _output(out) as sink, _progress(console, enabled=not quiet and not verbose) as bar:
            # JSONL lines are counted first; standard input leaves the total unknown.
            known = structx.count_articles(files) if bar else None
            total = min(known, limit) if known is not None and limit is not None else known
            task = bar.add_task("extracting", total=total) if bar else None

            progress = _Progress(bar, task, summary, started)

            def batch(stop: asyncio.Event, cancel: asyncio.Event) -> AsyncIterator[structx.ArticleOutcome]:
                return structx.aextract_many(
                    articles, client, target, concurrency=concurrency, store=store, redo=redo, stop=stop, cancel=cancel
                )

            stopped_by, not_attempted = asyncio.run(
                _write_outcomes(batch, client, sink, console, progress, timeout=timeout, verbose=verbose)
            )
    if not_attempted is not None:
        first, not_sent = not_attempted, summary.errors_by_type[structx.NotAttempted.__name__]
        console.print(
            f"structx: error: stopped after {type(first.stopped_by).__name__} on {first.stopped_at}, "
            f"which every article would meet ({first.stopped_by}); {not_sent} article(s) were not sent "
            "and have a NotAttempted error line",
            style="red",
            markup=False,
        )
    if store is not None:
        store.close()  # the lock is released before the summary is printed
    if stopped_by is not None:
        cut = summary.errors_by_type.get("Interrupted", 0)
        finished = summary.ok + summary.failed - cut
        console.print(
            f"interrupted: {finished} articles finished"
            + (" and were kept" if store is not None else "")
            + (f", {cut} interrupted" if cut else "")
            + ("; run the same command again to resume" if store is not None else ""),
            style="yellow",
            markup=False,
        )

    if not quiet:
        _print_summary(console, summary, time.perf_counter() - started, out, model=endpoint.model, prices=price_table)
    if stopped_by is not None:
        # 130 after Ctrl-C, 143 after SIGTERM: the shell's code for a process ended by that signal.
        raise typer.Exit(EXIT_INTERRUPTED if stopped_by == signal.SIGINT else 128 + stopped_by)
    raise typer.Exit(EXIT_OK if summary.failed == 0 else EXIT_SOME_FAILED)


@dataclass
class _Progress:
    """The progress bar's task and the totals it shows."""

    bar: Progress | None
    task: TaskID | None
    summary: structx.BatchSummary
    started: float

    def advance(self) -> None:
        if self.bar is None or self.task is None:
            return
        summary = self.summary
        done, elapsed = summary.ok + summary.failed, time.perf_counter() - self.started
        rate = done / elapsed * 60 if elapsed else 0.0
        tally = f"{summary.failed} failed, {summary.usage.total_tokens:,} tokens, {rate:.1f}/min"
        self.bar.update(self.task, advance=1, description=f"extracting ({tally})")


async def _write_outcomes(
    batch: Callable[[asyncio.Event, asyncio.Event], AsyncIterator[structx.ArticleOutcome]],
    client: structx.Client,
    sink: TextIO,
    console: Console,
    progress: _Progress,
    *,
    timeout: float,
    verbose: bool,
) -> tuple[int | None, structx.NotAttempted | None]:
    """Run the batch, writing each outcome's line as it finishes.

    Returns the signal that stopped the run, if one did, and the first
    article an error fatal for the batch left unsent, if any. First Ctrl-C or
    SIGTERM: no new article or request; the requests in flight finish within
    ``timeout``. A second: they are cancelled. Either way every article
    started gets its line.
    """
    stop, cancel = asyncio.Event(), asyncio.Event()
    signals: list[int] = []
    not_attempted: structx.NotAttempted | None = None

    def on_signal(signum: int) -> None:
        signals.append(signum)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        if len(signals) == 1:
            stop.set()
            console.print(
                f"{name}: stopping; no new articles or requests, those in flight may take up to "
                f"{timeout:g} s (--timeout); {name} again cancels them",
                style="yellow",
                markup=False,
            )
        elif not cancel.is_set():
            cancel.set()
            console.print(f"{name}: cancelling the requests in flight", style="yellow", markup=False)

    with _signals_call(asyncio.get_running_loop(), on_signal):
        async for outcome in batch(stop, cancel):
            sink.write(outcome.to_json_line() + "\n")
            sink.flush()  # each line is visible as soon as its article is done
            progress.summary.add(outcome)
            if isinstance(outcome.error, structx.NotAttempted):
                not_attempted = not_attempted or outcome.error  # reported once for all of them
            else:
                _report(console, outcome, verbose)
            progress.advance()
        await client.aclose_connections()
    return (signals[0] if signals else None), not_attempted


@contextlib.contextmanager
def _signals_call(loop: asyncio.AbstractEventLoop, handler: Callable[[int], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM call ``handler`` on ``loop`` instead of ending the process; restored afterwards."""
    caught = (signal.SIGINT, signal.SIGTERM)

    def forward(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(handler, signum)

    try:
        previous = {signum: signal.signal(signum, forward) for signum in caught}
    except ValueError:  # not the main thread: signals stay as they are
        yield
        return
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def _log_requests_to(console: Console, path: Path) -> Callable[[], None]:
    """Send the backend's request log (one JSON line per request and response) to ``path``; returns the undo."""
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        fail(console, f"--log-requests {path}: cannot write ({exc.strerror})")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("structx.requests")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False  # bodies go to the file only, never to the terminal

    def stop_logging() -> None:
        log.removeHandler(handler)
        log.setLevel(logging.NOTSET)
        handler.close()

    return stop_logging


def _open_store(console: Console, out: Path | None, *, force: bool) -> structx.RunStore | None:
    """The run database beside ``out``; refuses to overwrite an output that no run of ours wrote."""
    if out is None:
        return None
    if out.is_dir():
        fail(console, f"--out {out} is a directory; give a file name")
    problem = directory_problem(out.parent)
    if problem is not None:
        fail(console, f"--out {out}: {problem}")
    database = out.with_name(out.name + ".structx.sqlite")
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = database.with_name(database.name + suffix)
        if path.is_symlink():  # SQLite would write wherever it points
            fail(console, f"{path} is a symbolic link; structx does not write through links")
    for path in (out, _partial(out)):
        if path.exists() and not database.exists() and not force:
            fail(console, f"{path} exists and was not written by a structx run; pass --force to overwrite it")
    try:
        store = structx.RunStore(database)
    except structx.RunInUse as exc:
        holder = f" (pid {exc.pid})" if exc.pid is not None else ""
        fail(console, f"{out} is in use by another structx process{holder}; wait for it to finish")
    except structx.InputError as exc:
        fail(console, str(exc))
    return store


def _dry_run(
    articles: Iterable[structx.Article | structx.InputError], target: type[Any], config: structx.Config
) -> None:
    out = Console(highlight=False, soft_wrap=True)
    first: tuple[str, dict[str, Any]] | None = None
    count = requests = tokens = 0
    with structx.Client(config) as client:
        for item in articles:
            count += 1
            if isinstance(item, structx.InputError):
                out.print(f"{item.article_id}: would fail: {item.reason}", markup=False)
                continue
            # Every chunk's request carries the instructions and the schema again.
            bodies = client.request_bodies(item, target)
            estimate = sum(_prompt_tokens(body) for body in bodies)
            requests, tokens = requests + len(bodies), tokens + estimate
            first = first or (item.id, bodies[0])
            out.print(
                f"{item.id}: {len(item.text):,} characters, {len(bodies)} request(s), about {estimate:,} prompt tokens",
                markup=False,
            )
    out.print(f"{count} articles, {requests} requests, about {tokens:,} prompt tokens; nothing was sent.", markup=False)
    if first is not None:
        article_id, body = first
        if config.base_url is not None and (config.model is None or config.structured_output == "auto"):
            out.print(
                "The run asks GET /models for the model and the structured-output mode left unset; "
                "this body assumes a server that is neither OpenAI nor llama.cpp.",
                markup=False,
            )
        out.print(f"The body of the first request for {article_id}:", markup=False)
        out.print(json.dumps(body, ensure_ascii=False, indent=2), markup=False)


def _prompt_tokens(body: dict[str, Any]) -> int:
    """About four characters a token for English text, over all that is sent: instructions, article, schema."""
    messages = body.get("messages") or []
    rest = {key: value for key, value in body.items() if key != "messages"}
    text = sum(len(str(message.get("content") or "")) for message in messages) + len(json.dumps(rest))
    return text // 4


def _partial(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


@contextlib.contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    """Standard output, or ``out`` replaced whole at the end.

    Lines go to ``OUT.partial`` as articles finish, so a run's progress can be
    read there; when the run ends that file is renamed to ``out``. A run killed
    midway leaves it in place (the run database also holds every finished
    article, and the next run starts it afresh).
    """
    if out is None:
        yield sys.stdout
        return
    partial = _partial(out)
    try:
        partial.unlink(missing_ok=True)  # a stale one, or a symlink planted there, is not followed
        handle = partial.open("x", encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {out}: {exc.strerror}", param_hint="--out") from None
    with handle:
        yield handle
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
        + f"; {summary.records} records, {summary.ungrounded_records} ungrounded, {summary.dropped_records} dropped"
        + f"; {summary.usage.prompt_tokens:,} prompt + {summary.usage.completion_tokens:,} completion tokens"
        + (f" (about ${cost:,.4f} at list prices)" if cost is not None else "")
        + f"; {summary.requests} requests; {summary.cached} answers from the cache"
        + f"; {seconds:.1f} s, {rate:.1f} articles/min"
        + (f"; wrote {out}" if out is not None else ""),
        markup=False,
    )
