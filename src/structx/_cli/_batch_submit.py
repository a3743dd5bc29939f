"""``structx batch submit``: each article's first requests uploaded through the Files API as batches.

The request files are those ``structx batch write`` builds, each article's
first requests exactly as ``structx extract`` would send them.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

import structx
from structx._cli._app import configure_logging, fail
from structx._cli._batch import (
    ApiKeyEnvOption,
    ApiKeyOption,
    ArticleBytesOption,
    ChunkOption,
    FileBytesOption,
    FormatOption,
    GroundingOption,
    HeaderOption,
    MaxReasksOption,
    MaxRetriesOption,
    MaxTokensOption,
    PathsArgument,
    RequestsPerFileOption,
    RunOption,
    SchemaOption,
    StructuredOutputOption,
    TemperatureOption,
    TimeoutOption,
    VerboseOption,
    batch_app,
    build_files,
)
from structx._cli._settings import parse_headers

__all__ = ["submit"]


@batch_app.command("submit")
def submit(
    paths: PathsArgument,
    run: RunOption,
    schema: SchemaOption = structx.DEFAULT_SCHEMA_REF,
    model: Annotated[str | None, typer.Option(help="Model name (default: STRUCTX_MODEL).")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="The API's base URL (default: OPENAI_BASE_URL, else OpenAI).", show_default=False
        ),
    ] = None,
    structured_output: StructuredOutputOption = structx.StructuredOutput.AUTO,
    extraction_format: FormatOption = structx.ExtractionFormat.AUTO,
    max_reasks: MaxReasksOption = 2,
    grounding: GroundingOption = structx.GroundingPolicy.KEEP,
    chunk_chars: ChunkOption = 12_000,
    max_article_bytes: ArticleBytesOption = 2_000_000,
    max_tokens: MaxTokensOption = 2048,
    temperature: TemperatureOption = 0.0,
    timeout: TimeoutOption = 180.0,
    max_retries: MaxRetriesOption = 4,
    api_key: ApiKeyOption = None,
    api_key_env: ApiKeyEnvOption = None,
    header: HeaderOption = None,
    max_requests_per_file: RequestsPerFileOption = structx.MAX_REQUESTS_PER_FILE,
    max_file_bytes: FileBytesOption = structx.MAX_FILE_BYTES,
    verbose: VerboseOption = False,
) -> None:
    """Upload each article's requests through the Files API and create batches of them (24 h window).

    Articles already finished in the run database (by any route) are not sent.
    Then `structx batch status --run RUN` shows progress and `structx batch
    collect --run RUN` writes the lines.
    """
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    configure_logging(verbose)
    if api_key is not None and api_key_env is not None:
        fail(console, "give --api-key or --api-key-env, not both")
    try:
        config = structx.Config.from_env(
            api_key_env=api_key_env, api_key=api_key, base_url=base_url, model=model,
            structured_output=structured_output, max_reasks=max_reasks, grounding=grounding,
            extraction_format=extraction_format, chunk_chars=chunk_chars,
            chunk_overlap=structx.Config.overlap_for(chunk_chars), max_article_bytes=max_article_bytes,
            max_tokens=max_tokens, temperature=temperature, timeout=timeout, max_retries=max_retries,
            headers=parse_headers(header or []),
        )  # fmt: skip
        structx.load_schema(schema)
    except structx.UsageError as exc:
        fail(console, str(exc))
    if config.uses_embedded_model:
        fail(console, "a batch run needs an API: set OPENAI_API_KEY (or --api-key-env), or give --base-url")
    build_files(console, paths, run, config, schema, upload=True, limits=(max_requests_per_file, max_file_bytes))
