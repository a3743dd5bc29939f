"""Time ``structx.write_report`` on a large run: N articles, with and without a dataset.

    python benchmarks/bench_report.py [--articles 2000]

The run is the five seeds' gold answers, grounded on their articles with
``structx.ground`` and repeated under new ids until there are N result lines
(every copy's ``source`` is its seed file). The dataset is built once with
``structx.build_dataset`` (its time is printed apart) and the report written
twice into a temporary folder: the run alone, then with the dataset. Prints
the seconds each took and the files written.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.cassettes import SEEDS, seed_answer, seed_article, seed_paths  # noqa: E402

import structx  # noqa: E402


def build_run(folder: Path, articles: int) -> Path:
    stems = [path.stem for path in seed_paths()]
    lines = []
    for stem in stems:
        answer = seed_answer(stem)
        lines.append({"source": str(SEEDS / f"{stem}.txt"), "status": "ok", "records": answer.model_dump(mode="json"),
                      "grounding": structx.ground(answer, seed_article(stem).text).to_dict(),
                      "usage": {"prompt_tokens": 4000, "completion_tokens": 900, "total_tokens": 4900},
                      "model": "gpt-4o-mini"})  # fmt: skip
    results = folder / "results.jsonl"
    with results.open("w", encoding="utf-8") as out:
        for number in range(articles):
            line = {"id": f"a{number:05d}_{stems[number % len(stems)]}", **lines[number % len(lines)]}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = build_run(folder, args.articles)
        start = time.perf_counter()
        dataset = structx.build_dataset([results])
        print(f"build_dataset: {time.perf_counter() - start:.1f} s ({len(dataset.entities)} entities)")
        for name, data in (("run alone", None), ("with the dataset", dataset)):
            start = time.perf_counter()
            site = structx.write_report([results], folder / name.replace(" ", "-"), dataset=data)
            elapsed = time.perf_counter() - start
            print(f"write_report, {name}: {elapsed:.1f} s, {len(site.files)} files ({site.summary()})")


if __name__ == "__main__":
    main()
