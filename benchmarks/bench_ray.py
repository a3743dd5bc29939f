"""The Ray route against the local runner at the same concurrency, on one machine.

    python benchmarks/bench_ray.py --runs 3                 # 500 articles, 200 ms a request, 16 in flight
    python benchmarks/bench_ray.py --latency 0 --runs 3     # no added latency: the CPU work per article

The fake endpoint is bench_batch.py's (benchmarks/_fake_server.py in a
process of its own: every request answered with the gold answer of seed 000
after --latency seconds). The local runner is structx.aextract_many with
concurrency 16; the Ray route is structx.ray.extract_dataset on a local Ray
instance (ray.init(num_cpus=2)) with 2 workers of 8 requests in flight each,
so both keep 16 requests in flight. Ray's start (ray.init) is timed on its
own and not counted in the runs; each Ray run includes starting its two
workers, as every job does. Figures are medians of --runs runs, after one
warm-up run of each.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import ray
from bench_batch import FakeServer, _articles, _config

import structx
import structx.ray
from structx_schemas import ArticleExtraction

ARTICLES = 500
WORKERS, PER_WORKER = 2, 8


def local_run(server: FakeServer, articles: list[structx.Article]) -> float:
    async def run() -> int:
        async with structx.Client(_config(server)) as client:
            outcomes = structx.aextract_many(articles, client, ArticleExtraction, concurrency=WORKERS * PER_WORKER)
            return sum([outcome.status == "ok" async for outcome in outcomes])

    started = time.perf_counter()
    assert asyncio.run(run()) == len(articles)
    return time.perf_counter() - started


def ray_run(server: FakeServer, articles: list[structx.Article]) -> float:
    dataset = ray.data.from_items([{"id": a.id, "text": a.text} for a in articles])
    started = time.perf_counter()
    tables = structx.ray.extract_dataset(
        dataset, config=_config(server), workers=WORKERS, concurrency=PER_WORKER, batch_size=4 * PER_WORKER
    )
    statuses = [status for table in tables for status in table.column("status").to_pylist()]
    elapsed = time.perf_counter() - started
    assert statuses == ["ok"] * len(articles), statuses
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds a request")
    args = parser.parse_args()
    articles = _articles(ARTICLES)
    started = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - started
    try:
        with FakeServer(delay=args.latency) as server:
            local_run(server, articles[:32])
            ray_run(server, articles[:32])
            local = [local_run(server, articles) for _ in range(args.runs)]
            distributed = [ray_run(server, articles) for _ in range(args.runs)]
    finally:
        ray.shutdown()
    ideal = ARTICLES / (WORKERS * PER_WORKER) * args.latency
    lo, ra = statistics.median(local), statistics.median(distributed)
    print(f"{ARTICLES} articles, {args.latency * 1000:.0f} ms a request, {WORKERS * PER_WORKER} in flight:")
    print(f"  local runner {lo:.2f} s, Ray route {ra:.2f} s: Ray / local {ra / lo:.2f}")
    if ideal:
        print(f"  ideal {ideal:.3f} s; local / ideal {lo / ideal:.2f}; Ray / ideal {ra / ideal:.2f}")
    print(f"  runs: local {[round(x, 2) for x in local]}, Ray {[round(x, 2) for x in distributed]}")
    print(f"  ray.init(num_cpus=2): {startup:.1f} s (not in the runs)")


if __name__ == "__main__":
    main()
