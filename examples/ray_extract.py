"""Extract records from a folder of articles on a Ray cluster; write the rows to one Parquet file.

    python examples/ray_extract.py articles/ results.parquet --run run.sqlite \
        --base-url http://vllm-host:8000/v1 --model Qwen/Qwen2.5-7B-Instruct --address auto --workers 8

The folder holds JSONL files (one article a line: ``id``, ``text``, other
keys kept as metadata) or Parquet files with the same columns. ``--address``
is what ``ray.init(address=...)`` takes (``auto`` joins the cluster this
machine belongs to; ``ray://head:10001`` a remote one); without it a local
Ray instance starts. The run database (``--run``) stays on this machine:
rows finished in an earlier run (or by ``structx extract`` or ``structx
batch``) are not sent again. The key comes from ``OPENAI_API_KEY`` here; the
workers get it through the configuration.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import ray

import structx
import structx.ray


def read_articles(folder: Path) -> Any:
    """A Ray dataset of the folder's JSONL files, or of its Parquet files."""
    jsonl = sorted(str(p) for p in folder.iterdir() if p.suffix in (".jsonl", ".json"))
    parquet = sorted(str(p) for p in folder.iterdir() if p.suffix == ".parquet")
    if jsonl and parquet:
        raise SystemExit(f"{folder} holds both JSONL and Parquet files; give a folder of one kind")
    if not jsonl and not parquet:
        raise SystemExit(f"{folder} holds no .jsonl or .parquet files")
    return ray.data.read_json(jsonl) if jsonl else ray.data.read_parquet(parquet)


def run(
    folder: Path,
    out: Path,
    *,
    config: structx.Config,
    run: Path | None = None,
    schema: str = structx.DEFAULT_SCHEMA_REF,
    workers: int = 2,
    concurrency: int = 8,
) -> int:
    """Extract every article of ``folder`` and write the rows to ``out`` (replaced whole); returns the rows."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    store = structx.RunStore(run) if run is not None else None
    rows = 0
    try:
        with pq.ParquetWriter(temporary, structx.ray.OUTPUT_SCHEMA) as writer:
            for table in structx.ray.extract_dataset(
                read_articles(folder), config=config, schema=schema, store=store, workers=workers,
                concurrency=concurrency,
            ):  # fmt: skip
                writer.write_table(table)
                rows += table.num_rows
        Path(temporary).replace(out)
    finally:
        Path(temporary).unlink(missing_ok=True)
        if store is not None:
            store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--run", type=Path, help="the run database (SQLite) for resuming")
    parser.add_argument("--address", help="ray.init(address=...): 'auto', 'ray://head:10001'; none: a local Ray")
    parser.add_argument("--base-url", help="the OpenAI-compatible endpoint (vLLM: http://host:8000/v1)")
    parser.add_argument("--model")
    parser.add_argument("--schema", default=structx.DEFAULT_SCHEMA_REF)
    parser.add_argument("--workers", type=int, default=2, help="Ray actors, each with its own client")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per actor")
    args = parser.parse_args()
    config = structx.Config.from_env(base_url=args.base_url, model=args.model)
    ray.init(address=args.address)
    rows = run(args.folder, args.out, config=config, run=args.run, schema=args.schema, workers=args.workers,
               concurrency=args.concurrency)  # fmt: skip
    print(f"wrote {rows} rows to {args.out}")


if __name__ == "__main__":
    main()
