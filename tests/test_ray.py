"""The Ray Data route on a local Ray instance, against the loopback fake; and the three routes side by side.

One Ray instance (``ray.init(num_cpus=2)``) serves every test of this
module: it takes seconds to start, so the module fixture starts it once and
stops it at the end. Skipped, with the reason, when ray is not installed
(``pip install -e '.[dev]'`` brings it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the Ray route needs ray: pip install -e '.[dev]' (or 'structx[ray]')")

import structx  # noqa: E402
import structx.ray  # noqa: E402
from structx.testing import BatchServer, Reply, ScriptedServer  # noqa: E402
from tests.cassettes import FAULT_ARTICLE, ROOT, scripted_config, seed_answer, seed_article, seed_paths  # noqa: E402
from tests.conftest import Reliability  # noqa: E402
from tests.routes import comparable, completion_requests, gold_by_article, online_lines  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _rows_out(dataset: Any, **options: Any) -> list[dict[str, Any]]:
    tables = structx.ray.extract_dataset(dataset, **options)
    return [row for table in tables for row in table.to_pylist()]


FAULTS = {
    "[fault:500]": Reply.status(500, "upstream down"),
    "[fault:refusal]": Reply.completion(None, refusal="I can't help with that request."),
    "[fault:invalid]": Reply.completion("not json at all"),
    "[fault:truncated]": Reply.completion('{"title": "IRGC', finish_reason="length"),
}


def _fault_rows(count: int) -> list[dict[str, Any]]:
    """``count`` distinct copies of the fault article; every 25th has a fault marker, two have no text."""
    text = seed_article(FAULT_ARTICLE).text
    markers = list(FAULTS)
    rows = []
    for n in range(count):
        marker = markers[(n // 25) % len(markers)] if n % 25 == 7 else ""
        rows.append({"id": f"a{n:03d}", "text": f"{text}\nItem {n}. {marker}", "source_feed": "wire"})
    rows[3]["text"] = ""
    rows[4]["text"] = "   \n"
    return rows


def _respond(body: Any) -> Reply:
    content = json.dumps(body)
    for marker, reply in FAULTS.items():
        if marker in content:
            return reply
    return Reply.answer(seed_answer(FAULT_ARTICLE))


def test_500_rows_in_500_rows_out_with_faults_on_some(reliability: Reliability) -> None:
    rows = _fault_rows(500)
    with ScriptedServer(respond=_respond) as server:
        config = scripted_config(base_url=server.base_url, retry_initial_wait=0.01, retry_max_wait=0.05)
        out = _rows_out(ray.data.from_items(rows), config=config, workers=2, concurrency=8, batch_size=50)
        sent = len(completion_requests(server))
    by_type: dict[str, int] = {}
    for row in out:
        name = row["error_type"] or "ok"
        by_type[name] = by_type.get(name, 0) + 1
    reliability(
        "batch", "Ray route: 500 rows, 20 with scripted faults (500, refusal, invalid JSON, truncation), 2 blank",
        expected="500 rows out, one per row in; each fault its own error row; the rest ok",
        observed=f"{len(out)} rows out: " + ", ".join(f"{n} {name}" for name, n in sorted(by_type.items())),
        requests=sent, tried=500, lost=500 - len({row["id"] for row in out}),
    )  # fmt: skip
    assert sorted(row["id"] for row in out) == sorted(row["id"] for row in rows)
    assert by_type == {"ok": 478, "InputError": 2, "ServerError": 5, "Refusal": 5, "ValidationFailed": 5,
                       "TruncatedOutput": 5}  # fmt: skip
    # 478 answered at once; a 500 three times (max_retries=2); an invalid answer three times (max_reasks=2).
    assert sent == 478 + 5 * 3 + 5 + 5 * 3 + 5
    ok = next(row for row in out if row["status"] == "ok")
    assert json.loads(ok["records"]) == seed_answer(FAULT_ARTICLE).model_dump(mode="json")
    assert ok["usage"] == {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    assert (ok["attempts"], ok["requests"]) == (1, 1) and json.loads(ok["grounding"])["grounded"]
    # The other columns of a row are its metadata, as a JSONL line's keys are.
    assert json.loads(ok["line"])["meta"] == {"source_feed": "wire"}
    blank = next(row for row in out if row["id"] == "a003")
    assert blank["status"] == "error" and "no article text" in blank["error_message"]


def test_the_extractor_is_a_map_batches_stage_with_numpy_batches() -> None:
    text = seed_article(FAULT_ARTICLE).text
    rows = [{"id": f"m{n}", "text": f"{text}\nItem {n}.", "metadata": {"desk": "iraq"}, "page": n} for n in range(20)]
    with ScriptedServer(respond=_respond) as server:
        config = scripted_config(base_url=server.base_url)
        out = (
            ray.data.from_items(rows)
            .map_batches(structx.ray.Extractor, fn_constructor_kwargs={"config": config},
                         compute=ray.data.ActorPoolStrategy(size=1), batch_size=8)  # the default, numpy batches
            .take_all()
        )  # fmt: skip
    assert sorted(row["id"] for row in out) == sorted(row["id"] for row in rows)
    assert {row["status"] for row in out} == {"ok"}
    line = json.loads(next(row for row in out if row["id"] == "m7")["line"])
    assert line["meta"] == {"desk": "iraq", "page": 7}


def test_the_ray_route_resumes_from_the_run_database(tmp_path: Path) -> None:
    rows = _fault_rows(60)[10:]  # no blank rows
    with ScriptedServer(respond=_respond) as server, structx.RunStore(tmp_path / "run.sqlite") as store:
        config = scripted_config(base_url=server.base_url, retry_initial_wait=0.01, retry_max_wait=0.05)
        first = _rows_out(ray.data.from_items(rows[:30]), config=config, store=store, workers=1, batch_size=15)
        sent_first = len(completion_requests(server))
        second = _rows_out(ray.data.from_items(rows), config=config, store=store, workers=1, batch_size=25)
        sent_second = len(completion_requests(server)) - sent_first
    assert len(first) == 30 and len(second) == 50
    resumed = [row for row in second if row["resumed"]]
    assert sorted(row["id"] for row in resumed) == sorted(row["id"] for row in first)
    # Only the 20 new rows were sent (one of them with a fault marker: a ServerError, 3 requests).
    new_faults = sum(1 for row in rows[30:] if "[fault:500]" in row["text"] or "[fault:invalid]" in row["text"])
    assert sent_second == 20 + 2 * new_faults
    # A resumed row is the stored line, in full.
    earlier = {row["id"]: json.loads(row["line"]) for row in first}
    for row in resumed:
        assert comparable(json.loads(row["line"])) == comparable(earlier[row["id"]])


def test_online_batch_and_ray_routes_write_the_same_lines_for_the_seeds(tmp_path: Path) -> None:
    paths = seed_paths()
    with BatchServer(respond=gold_by_article()) as server:
        config = scripted_config(base_url=server.base_url)
        online = online_lines(config, [str(path) for path in paths])
        with structx.BatchRun(tmp_path / "batch") as run:
            run.submit([str(path) for path in paths], config, "structx_schemas:ArticleExtraction")
            with structx.Client(run.config(api_key="sk-test"), cache=run.store, probe=False) as client:
                report = run.collect(client)
                batch = {line["id"]: line for line in run.lines(client, report.unsettled)}
        rows = [{"id": path.stem, "text": structx.read_article(path).text} for path in paths]
        ray_rows = _rows_out(ray.data.from_items(rows), config=config, workers=1, batch_size=5)
    ray_lines = {row["id"]: json.loads(row["line"]) for row in ray_rows}
    assert sorted(online) == sorted(batch) == sorted(ray_lines) == [path.stem for path in paths]
    for stem in online:
        assert online[stem]["status"] == "ok"
        assert comparable(batch[stem]) == comparable(online[stem])
        # A Ray row has no file: its source is its id.
        assert comparable(ray_lines[stem], drop=("source",)) == comparable(online[stem], drop=("source",))


def test_the_example_reads_jsonl_and_writes_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    source = tmp_path / "in"
    source.mkdir()
    text = seed_article(FAULT_ARTICLE).text
    lines = [json.dumps({"id": f"e{n}", "text": f"{text}\nItem {n}."}) for n in range(6)]
    (source / "articles.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "results.parquet"
    example = _load_example()
    with ScriptedServer(respond=_respond) as server:
        config = scripted_config(base_url=server.base_url)
        written = example.run(source, out, config=config, run=tmp_path / "run.sqlite", workers=1)
    table = pq.read_table(out)
    assert written == 6 and table.num_rows == 6
    assert sorted(table.column("id").to_pylist()) == [f"e{n}" for n in range(6)]
    assert set(table.column("status").to_pylist()) == {"ok"}


def _load_example() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("ray_extract", ROOT / "examples" / "ray_extract.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
