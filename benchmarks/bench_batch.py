"""Batch benchmarks against a local OpenAI-compatible fake server on loopback.

    python benchmarks/bench_batch.py overhead     # structx vs a bare openai loop, 500 articles, no latency
    python benchmarks/bench_batch.py concurrency  # 500 articles, 200 ms a request (--latency), concurrency 32
    python benchmarks/bench_batch.py cache        # the same 500-article run twice: requests and time of the second
    python benchmarks/bench_batch.py memory       # peak RSS of `structx extract` over 2,500 and 10,000 JSONL articles

The fake server (benchmarks/_fake_server.py, in its own process) is
structx.testing.ScriptedServer answering every request with the gold answer
for seed 000 (a realistic, fully grounded payload of about 12 KB). Articles
are seed 000 with a numbered line appended, so each has its own content hash.
Each figure is the median of --runs runs, after one small warm-up run of
each client, so that one-time costs (imports, JSON schema generation) are
not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import openai

import structx
from structx_schemas import ArticleExtraction

ROOT = Path(__file__).resolve().parent.parent
SEED = "000_57f720f08a0b9acd"


class FakeServer:
    """The fake endpoint in a process of its own, so that it does not share the benchmark's CPU and GIL."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def __enter__(self) -> FakeServer:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).parent / "_fake_server.py"), str(self.delay)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()

    def completions(self) -> int:
        with urllib.request.urlopen(self.base_url.removesuffix("/v1") + "/count") as response:
            return int(response.read())


def _articles(count: int) -> list[structx.Article]:
    text = (ROOT / "seeds" / f"{SEED}.txt").read_text(encoding="utf-8")
    return [structx.Article(text=f"{text}\nItem {n}.", id=f"a{n}") for n in range(count)]


def _config(server: FakeServer) -> structx.Config:
    return structx.Config(
        base_url=server.base_url, model="m", structured_output=structx.StructuredOutput.JSON_SCHEMA, max_reasks=0
    )


def _structx_run(server: FakeServer, articles: list[structx.Article], concurrency: int,
                 store: structx.RunStore | None = None) -> float:  # fmt: skip
    async def run() -> int:
        async with structx.Client(_config(server), cache=store) as client:
            done = 0
            async for outcome in structx.aextract_many(
                articles, client, ArticleExtraction, concurrency=concurrency, store=store
            ):
                assert outcome.status == "ok", outcome.to_json()
                done += 1
            return done

    started = time.perf_counter()
    assert asyncio.run(run()) == len(articles)
    return time.perf_counter() - started


def _bare_run(server: FakeServer, articles: list[structx.Article], concurrency: int) -> float:
    """The same requests through a bare AsyncOpenAI client, bounded the same way."""
    requests = [
        {"model": "m", "messages": structx.build_messages(a, ArticleExtraction, include_schema=True),
         "response_format": {"type": "json_schema", "json_schema": {"name": "ArticleExtraction",
                                                                  "schema": ArticleExtraction.model_json_schema()}},
         "temperature": 0.0, "max_tokens": 2048}
        for a in articles
    ]  # fmt: skip

    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        gate = asyncio.Semaphore(concurrency)

        async def one(request: dict[str, object]) -> None:
            async with gate:
                response = await client.chat.completions.create(**request)  # type: ignore[call-overload]
                json.loads(response.choices[0].message.content)

        await asyncio.gather(*(one(r) for r in requests))
        await client.close()

    started = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - started


def _warm_up(server: FakeServer, concurrency: int) -> None:
    """One small run of each, so that one-time costs (imports, schema generation) stay out of the figures."""
    articles = _articles(concurrency)
    _bare_run(server, articles, concurrency)
    _structx_run(server, articles, concurrency)


def overhead(runs: int) -> None:
    articles = _articles(500)
    with FakeServer() as server:
        _warm_up(server, 8)
        bare = [_bare_run(server, articles, 8) for _ in range(runs)]
        ours = [_structx_run(server, articles, 8) for _ in range(runs)]
    b, s = statistics.median(bare), statistics.median(ours)
    print(f"500 articles, concurrency 8, no added latency: bare openai {b:.2f} s, structx {s:.2f} s, ratio {s / b:.2f}")
    print(f"  runs: bare {[round(x, 2) for x in bare]}, structx {[round(x, 2) for x in ours]}")


def concurrency(runs: int, latency: float) -> None:
    articles = _articles(500)
    with FakeServer(delay=latency) as server:
        _warm_up(server, 32)
        times = [_structx_run(server, articles, 32) for _ in range(runs)]
        bare = [_bare_run(server, articles, 32) for _ in range(runs)]
    ideal = 500 / 32 * latency
    ours, theirs = statistics.median(times), statistics.median(bare)
    print(
        f"500 articles, {latency * 1000:.0f} ms a request, concurrency 32: "
        f"structx {ours:.2f} s, bare openai {theirs:.2f} s"
    )
    print(f"  ideal {ideal:.3f} s; structx / ideal {ours / ideal:.2f}; bare / ideal {theirs / ideal:.2f}")
    print(f"  runs: structx {[round(x, 2) for x in times]}, bare {[round(x, 2) for x in bare]}")


def cache(runs: int) -> None:
    articles = _articles(500)
    seconds, sent = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
            store = structx.RunStore(Path(tmp) / "run.sqlite")
            _structx_run(server, articles, 8, store)
            before = server.completions()
            seconds.append(_structx_run(server, articles, 8, store))
            sent.append(server.completions() - before)
            store.close()
    print(f"the same 500 articles again: {statistics.median(seconds):.2f} s, HTTP requests {sent}")


def memory(runs: int) -> None:
    text = (ROOT / "seeds" / f"{SEED}.txt").read_text(encoding="utf-8")
    for count in (2_500, 10_000):
        peaks = []
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp, FakeServer() as server:
                batch = Path(tmp) / "batch.jsonl"
                with batch.open("w", encoding="utf-8") as handle:
                    for n in range(count):
                        handle.write(json.dumps({"id": f"a{n}", "text": f"{text}\nItem {n}."}) + "\n")
                command = [sys.executable, str(Path(__file__).parent / "_peak_rss.py"), "extract", str(batch),
                           "--out", str(Path(tmp) / "out.jsonl"), "--base-url", server.base_url, "--model", "m",
                           "--structured-output", "json_schema", "--max-reasks", "0",
                           "--concurrency", "16", "-q"]  # fmt: skip
                env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "STRUCTX_"))}
                started = time.perf_counter()
                done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
                elapsed = time.perf_counter() - started
                assert done.returncode == 0, done.stderr
                peaks.append(int(done.stdout.strip()) / 1024)
                lines = sum(1 for _ in (Path(tmp) / "out.jsonl").open(encoding="utf-8"))
                assert lines == count, lines
        print(
            f"{count:,} articles from JSONL: peak RSS {statistics.median(peaks):.0f} MB "
            f"(runs {[round(p) for p in peaks]}), "
            f"last run {elapsed:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["overhead", "concurrency", "cache", "memory"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds a request, for concurrency")
    args = parser.parse_args()
    if args.which == "concurrency":
        concurrency(args.runs, args.latency)
    else:
        {"overhead": overhead, "cache": cache, "memory": memory}[args.which](args.runs)


if __name__ == "__main__":
    main()
