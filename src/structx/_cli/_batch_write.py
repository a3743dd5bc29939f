"""``structx batch write``: request files for ``vllm run-batch``; nothing is sent.

A run on one's own GPU needs no server: ``vllm run-batch`` reads the same
files the Batch API takes and writes the same result lines, which
``structx batch collect --from`` reads.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

import structx
from structx._cli._app import configure_logging, fail
from structx._cli._batch import (
    VLLM_BASE_URL,
    ArticleBytesOption,
    ChunkOption,
    FileBytesOption,
    FormatOption,
    GroundingOption,
    MaxReasksOption,
    MaxTokensOption,
    PathsArgument,
    RequestsPerFileOption,
    RunOption,
    SchemaOption,
    StructuredOutputOption,
    TemperatureOption,
    batch_app,
    build_files,
)

__all__ = ["write"]


@batch_app.command("write")
def write(
    paths: PathsArgument,
    run: RunOption,
    model: Annotated[str, typer.Option(help="The model vllm run-batch serves (its --model).")],
    schema: SchemaOption = structx.DEFAULT_SCHEMA_REF,
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            help="The server that re-asks go to online (collect --resubmit online); nothing is sent by write.",
        ),
    ] = VLLM_BASE_URL,
    structured_output: StructuredOutputOption = structx.StructuredOutput.JSON_SCHEMA,
    extraction_format: FormatOption = structx.ExtractionFormat.EXCERPTS,
    max_reasks: MaxReasksOption = 2,
    grounding: GroundingOption = structx.GroundingPolicy.KEEP,
    chunk_chars: ChunkOption = 12_000,
    max_article_bytes: ArticleBytesOption = 2_000_000,
    max_tokens: MaxTokensOption = 2048,
    temperature: TemperatureOption = 0.0,
    max_requests_per_file: RequestsPerFileOption = structx.MAX_REQUESTS_PER_FILE,
    max_file_bytes: FileBytesOption = structx.MAX_FILE_BYTES,
) -> None:
    """Write each article's requests to request files for `vllm run-batch`; nothing is sent.

    Run `vllm run-batch -i RUN/requests-0001.jsonl -o RUN/results-0001.jsonl --model MODEL`,
    then `structx batch collect --run RUN --from RUN/results-0001.jsonl`.
    """
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    configure_logging(False)
    try:
        config = structx.Config(
            base_url=base_url, model=model, structured_output=structured_output, max_reasks=max_reasks,
            grounding=grounding, extraction_format=extraction_format, chunk_chars=chunk_chars,
            chunk_overlap=structx.Config.overlap_for(chunk_chars), max_article_bytes=max_article_bytes,
            max_tokens=max_tokens, temperature=temperature,
        )  # fmt: skip
        structx.load_schema(schema)
    except structx.UsageError as exc:
        fail(console, str(exc))
    if config.extraction_format is structx.ExtractionFormat.AUTO:
        fail(console, "--extraction-format auto needs to ask the server what it is; give excerpts or cited")
    build_files(console, paths, run, config, schema, upload=False, limits=(max_requests_per_file, max_file_bytes))
