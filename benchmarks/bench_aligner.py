"""Time the grounding aligner on a 50,000-character article with 100 excerpts.

    python benchmarks/bench_aligner.py [--runs 30]

The article is built from the seed articles, repeated in a fixed order to
50,000 characters. The 100 excerpts mix what real answers contain: 70
sentences copied exactly, 20 with harmless differences (curly quotes turned
straight, doubled spaces, changed case), 10 altered or invented (a changed
name, a changed number, a sentence from nowhere). Each run aligns all 100
excerpts with a fresh Aligner and cold caches (so normalizing the article
and the excerpts is inside the timing). Prints the median, the 95th percentile and the
statuses found.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import statistics
import time
from collections import Counter
from pathlib import Path

from structx import Aligner, _grounding, _text

ROOT = Path(__file__).resolve().parent.parent
ARTICLE_CHARS = 50_000


def build_article() -> str:
    texts = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "seeds").glob("*.txt"))]
    article, i = "", 0
    while len(article) < ARTICLE_CHARS:
        article += texts[i % len(texts)] + "\n\n"
        i += 1
    return article[:ARTICLE_CHARS]


def build_excerpts(article: str, rng: random.Random) -> list[str]:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", article) if 40 <= len(s.strip()) <= 300]
    picked = rng.sample(sentences, 100)
    excerpts = picked[:70]
    for sentence in picked[70:90]:
        variant = rng.choice(["quotes", "spaces", "case"])
        if variant == "quotes":
            excerpts.append(sentence.replace("’", "'").replace("“", '"').replace("”", '"') + "")
        elif variant == "spaces":
            excerpts.append(sentence.replace(" ", "  "))
        else:
            excerpts.append(sentence.upper())
    for n, sentence in enumerate(picked[90:]):
        if n % 3 == 0:
            excerpts.append(re.sub(r"\bQaani\b|\bIraq\b|\bIran\b", "Venezuela", sentence) + " indeed")
        elif n % 3 == 1:
            excerpts.append(re.sub(r"\d", "7", sentence) + " in 1999")
        else:
            excerpts.append("The delegation then flew to Oslo for talks that nobody had announced in advance.")
    return excerpts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    article = build_article()
    excerpts = build_excerpts(article, random.Random(7))
    timings, statuses = [], Counter[str]()
    for _ in range(args.runs):
        # Cold caches: every run normalizes the article and each excerpt anew.
        _grounding._normalized_article.cache_clear()
        _grounding._article_name_tokens.cache_clear()
        _text.normalize.cache_clear()
        started = time.perf_counter()
        aligner = Aligner(article)
        spans = [aligner.align(excerpt) for excerpt in excerpts]
        timings.append((time.perf_counter() - started) * 1000)
        statuses = Counter(span.status.value for span in spans)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    print(f"article: {len(article):,} characters; excerpts: {len(excerpts)}; runs: {args.runs}")
    print(f"statuses: {dict(statuses)}")
    print(f"median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, min {timings[0]:.1f} ms")
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")


if __name__ == "__main__":
    main()
