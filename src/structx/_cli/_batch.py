"""``structx batch``: the group of commands for the Batch API route, and what they share.

Each command has its own module (``_batch_submit``, ``_batch_write``,
``_batch_status``, ``_batch_collect``); this one holds the group, the options
the commands have in common and the opening of a run folder. The key and
headers are given to every command again, since a run keeps no secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

import structx
from structx._cli._app import app, directory_problem, fail
from structx._cli._settings import parse_headers

__all__ = [
    "EXIT_WAITING",
    "VLLM_BASE_URL",
    "ApiKeyEnvOption",
    "ApiKeyOption",
    "ArticleBytesOption",
    "ChunkOption",
    "FileBytesOption",
    "FormatOption",
    "GroundingOption",
    "HeaderOption",
    "MaxReasksOption",
    "MaxRetriesOption",
    "MaxTokensOption",
    "PathsArgument",
    "RequestsPerFileOption",
    "RunOption",
    "SchemaOption",
    "StructuredOutputOption",
    "TemperatureOption",
    "TimeoutOption",
    "VerboseOption",
    "batch_app",
    "build_files",
    "client_for",
    "open_run",
    "stop_on",
]

#: Exit code of ``collect`` while batches are still running: nothing was written yet.
EXIT_WAITING = 3

batch_app = typer.Typer(
    name="batch",
    help="Run an extraction through a provider's Batch API, or through request files for vllm run-batch.",
    no_args_is_help=True,
)
app.add_typer(batch_app)

RunOption = Annotated[
    Path,
    typer.Option(
        "--run",
        help="The run's folder: its run database (the one structx extract --out RUN/results.jsonl uses), "
        "request files and downloaded results.",
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        help="API key (default: OPENAI_API_KEY). Other users can see it in the process list: prefer --api-key-env.",
        show_default=False,
    ),
]
ApiKeyEnvOption = Annotated[
    str | None, typer.Option("--api-key-env", metavar="NAME", help="Read the API key from this environment variable.")
]
HeaderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--header", metavar="NAME=VALUE", help="An HTTP header sent with every request; repeat for more.",
        show_default=False,
    ),
]  # fmt: skip
TimeoutOption = Annotated[float, typer.Option(help="Seconds one HTTP request may take.", min=0.1)]
MaxRetriesOption = Annotated[
    int, typer.Option(help="Transport retries of a failed HTTP request (timeouts, 408, 409, 429, 5xx).", min=0)
]


#: The endpoint a written run names in its lines and cache keys when none is given: vLLM's default address.
VLLM_BASE_URL = "http://localhost:8000/v1"

PathsArgument = Annotated[list[Path], typer.Argument(help="Article files or directories of them.", show_default=False)]
SchemaOption = Annotated[str, typer.Option(help="Target model: 'package.module:Class' or 'path/to/file.py:Class'.")]
StructuredOutputOption = Annotated[
    structx.StructuredOutput, typer.Option(help="How the schema is sent; 'auto' chooses from the endpoint.")
]
FormatOption = Annotated[
    structx.ExtractionFormat,
    typer.Option(help="What the model is shown and writes: 'excerpts', 'cited' or 'auto' (see structx extract)."),
]
MaxReasksOption = Annotated[int, typer.Option(help="Validation re-asks after the first answer.", min=0)]
GroundingOption = Annotated[
    structx.GroundingPolicy,
    typer.Option(help="Records still ungrounded after the re-asks: keep them flagged, drop them, or fail."),
]
ChunkOption = Annotated[
    int, typer.Option(help="Split longer articles into overlapping chunks of this many characters (0: never).", min=0)
]
ArticleBytesOption = Annotated[int, typer.Option(help="Refuse larger articles before any request.", min=1)]
MaxTokensOption = Annotated[int, typer.Option(help="Completion token budget per model call.", min=1)]
TemperatureOption = Annotated[float, typer.Option(help="Sampling temperature of every model call.", min=0.0)]
RequestsPerFileOption = Annotated[
    int, typer.Option(help="Requests in one request file at most (the Batch API's limit: 50,000).", min=1)
]
FileBytesOption = Annotated[
    int, typer.Option(help="Bytes in one request file at most (the Batch API's limit: 200 MB).", min=1024)
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Log each file as it is uploaded.")]


def open_run(console: Console, folder: Path, *, create: bool) -> structx.BatchRun:
    """The run in ``folder``; a usage error when it cannot be opened, or (unless ``create``) holds no run."""
    if folder.exists() and not folder.is_dir():
        fail(console, f"--run {folder} is not a directory; give a folder for the run")
    if not create and not (folder / "results.jsonl.structx.sqlite").exists():
        fail(console, f"--run {folder} holds no batch run: start one with structx batch submit or structx batch write")
    parent = folder if folder.is_dir() else folder.parent
    problem = directory_problem(parent)
    if problem is not None:
        fail(console, f"--run {folder}: {problem}")
    try:
        return structx.BatchRun(folder)
    except structx.RunInUse as exc:
        holder = f" (pid {exc.pid})" if exc.pid is not None else ""
        fail(console, f"--run {folder} is in use by another structx process{holder}; wait for it to finish")
    except structx.UsageError as exc:
        fail(console, str(exc))


def client_for(
    console: Console,
    run: structx.BatchRun,
    *,
    api_key: str | None,
    api_key_env: str | None,
    header: list[str] | None,
    timeout: float,
    max_retries: int,
) -> structx.Client:
    """A client with the run's configuration and this command's key, headers and transport settings."""
    if api_key is not None and api_key_env is not None:
        fail(console, "give --api-key or --api-key-env, not both")
    try:
        key = structx.Config.from_env(api_key_env=api_key_env, api_key=api_key).api_key
        config = run.config(api_key=key, headers=parse_headers(header or []), timeout=timeout, max_retries=max_retries)
    except structx.UsageError as exc:
        fail(console, str(exc))
    # Nothing is asked of GET /models: the run keeps the model and mode its submit resolved.
    return structx.Client(config, cache=run.store, probe=False)


def stop_on(console: Console, exc: structx.StructxError) -> NoReturn:
    """A usage error exits 2; an endpoint's failure (a rejected key, an unreachable API) exits 1."""
    if isinstance(exc, structx.UsageError):
        fail(console, str(exc))
    console.print(f"structx: error: {exc}", style="red", markup=False)
    raise typer.Exit(1)


def build_files(
    console: Console,
    paths: list[Path],
    folder: Path,
    config: structx.Config,
    schema: str,
    *,
    upload: bool,
    limits: tuple[int, int],
) -> None:
    out = Console(highlight=False, soft_wrap=True)
    with open_run(console, folder, create=True) as batch_run:
        try:
            report = batch_run.submit(paths, config, schema, upload=upload, max_requests=limits[0], max_bytes=limits[1])
        except structx.StructxError as exc:
            stop_on(console, exc)
        for row in report.files:
            where = f", batch {row.batch_id} ({row.status})" if row.batch_id else ""
            out.print(f"{folder / row.name}: {row.requests:,} requests, {row.bytes:,} bytes{where}", markup=False)
        done, waiting = batch_run.progress()
    out.print(
        f"{report.articles} articles: {report.requests:,} requests in {len(report.files)} file(s), "
        f"{report.skipped} finished before or already in this run, {report.unreadable} unreadable; "
        f"the run has {done} article(s) done and {waiting} waiting",
        markup=False,
    )
    if report.files and not upload:
        model = config.model
        for row in report.files:
            results = folder / row.name.replace("requests-", "results-")
            out.print(f"vllm run-batch -i {folder / row.name} -o {results} --model {model}", markup=False)
        out.print(f"then: structx batch collect --run {folder} --from {folder}/results-*.jsonl", markup=False)
    elif report.files:
        out.print(f"then: structx batch status --run {folder}; structx batch collect --run {folder}", markup=False)
