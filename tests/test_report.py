"""``structx report`` without a browser: the pages' HTML, their counts, escaping, and the span nesting rules.

The browser tests (tests/test_report_browser.py) check what a person sees
when the script runs; these check what every page holds without it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx._knowledge._dataset import TABLES
from structx._report._dataset import read_dataset
from structx._report._spans import Fragment, Span, nest, render, split_drawable
from tests import html_tree
from tests.cassettes import GOLD, SEEDS
from tests.report_run import (
    DROPPED_STEM,
    FABRICATED_EXCERPT,
    HOSTILE_ID,
    HOSTILE_TEXT,
    NO_TEXT_ID,
    STEMS,
    UNGROUNDED_STEM,
    located_spans,
    read_run,
    write_run,
)

# Span nesting ---------------------------------------------------------------------------------------------------


def _spans(*ranges: tuple[int, int]) -> list[Span]:
    return [Span(f"s{i}", start, end) for i, (start, end) in enumerate(ranges)]


def _pieces(nodes: list[Fragment | str], offset: int = 0) -> tuple[dict[str, list[tuple[int, int, bool]]], str, int]:
    """Each span key's fragments as (start, end, first), the text, and the end offset, read from the tree."""
    pieces: dict[str, list[tuple[int, int, bool]]] = {}
    text = ""
    for node in nodes:
        if isinstance(node, str):
            text += node
            offset += len(node)
            continue
        inner, inner_text, end = _pieces(node.children, offset)
        for key, items in inner.items():
            pieces.setdefault(key, []).extend(items)
        pieces.setdefault(node.span.key, []).append((offset, end, node.first))
        text += inner_text
        offset = end
    return pieces, text, offset


def _parents(nodes: list[Fragment | str], parent: str | None = None) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for node in nodes:
        if isinstance(node, Fragment):
            found.setdefault(node.span.key, []).append(parent)
            for key, parents in _parents(node.children, node.span.key).items():
                found.setdefault(key, []).extend(parents)
    return found


TEXT = "alpha beta gamma delta epsilon zeta eta theta"


def test_a_span_inside_another_is_its_child_and_is_not_cut() -> None:
    nodes = nest(TEXT, _spans((6, 22), (11, 16)))  # "beta gamma delta" holds "gamma"
    assert _parents(nodes) == {"s0": [None], "s1": ["s0"]}
    pieces, _, _ = _pieces(nodes)
    assert pieces == {"s0": [(6, 22, True)], "s1": [(11, 16, True)]}


def test_spans_starting_together_open_longest_first_whatever_the_order_given() -> None:
    nodes = nest(TEXT, _spans((0, 5), (0, 16)))
    assert _parents(nodes) == {"s1": [None], "s0": ["s1"]}
    assert _pieces(nodes)[0] == {"s1": [(0, 16, True)], "s0": [(0, 5, True)]}


def test_identical_spans_nest_in_the_order_given_and_each_is_drawn() -> None:
    nodes = nest(TEXT, _spans((6, 16), (6, 16), (6, 16)))
    assert _parents(nodes) == {"s0": [None], "s1": ["s0"], "s2": ["s1"]}
    assert [n.height for n in nodes if isinstance(n, Fragment)] == [3]


def test_crossing_spans_cut_the_later_one_where_the_earlier_ends() -> None:
    nodes = nest(TEXT, _spans((0, 16), (11, 22)))  # "alpha beta gamma" x "gamma delta"
    pieces, text, _ = _pieces(nodes)
    assert text == TEXT
    assert pieces == {"s0": [(0, 16, True)], "s1": [(11, 16, True), (16, 22, False)]}
    assert _parents(nodes) == {"s0": [None], "s1": ["s0", None]}
    html = render(nodes)
    assert html.count('id="s1"') == 1 and html.count('data-span="s1"') == 2


def test_a_chain_of_crossings_cuts_each_span_once_per_span_it_crosses() -> None:
    # a [0,16) crosses b [11,28); b crosses c [23,37); c holds d [29,34) whole.
    nodes = nest(TEXT, _spans((0, 16), (11, 28), (23, 37), (29, 34)))
    pieces, text, _ = _pieces(nodes)
    assert text == TEXT
    assert pieces["s0"] == [(0, 16, True)]
    assert pieces["s1"] == [(11, 16, True), (16, 28, False)]
    assert pieces["s2"] == [(23, 28, True), (28, 37, False)]
    assert pieces["s3"] == [(29, 34, True)]


def test_a_span_that_ends_where_another_starts_is_beside_it_not_around_it() -> None:
    nodes = nest(TEXT, _spans((0, 5), (5, 10), (0, 10)))
    assert _parents(nodes) == {"s2": [None], "s0": ["s2"], "s1": ["s2"]}


def test_a_long_span_holding_crossing_ones_stays_whole_around_their_pieces() -> None:
    nodes = nest(TEXT, _spans((0, 45), (6, 22), (17, 35)))
    pieces, _, _ = _pieces(nodes)
    assert pieces["s0"] == [(0, 45, True)]
    assert pieces["s2"] == [(17, 22, True), (22, 35, False)]
    assert set(_parents(nodes)["s2"]) == {"s1", "s0"}


def test_spans_outside_the_text_or_empty_are_set_apart_not_drawn() -> None:
    spans = _spans((0, 5), (40, 99), (7, 7), (-1, 3))
    drawable, apart = split_drawable(TEXT, spans)
    assert [s.key for s in drawable] == ["s0"] and [s.key for s in apart] == ["s1", "s2", "s3"]
    assert set(_pieces(nest(TEXT, spans))[0]) == {"s0"}


def test_rendering_escapes_the_text_and_attribute_values() -> None:
    text = '<script>alert(1)</script> & "quotes" <img src=x onerror=alert(2)>'
    span = Span("e1", 0, 25, classes=("hl",), data=(("label", '"><script>alert(3)</script>'),), title="<b>")
    html = render(nest(text, [span]))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    tree = html_tree.parse(html)
    (mark,) = tree.find_all("mark")
    assert mark.attrs["data-label"] == '"><script>alert(3)</script>' and mark.attrs["title"] == "<b>"
    assert tree.text() == text


def test_a_sentence_cited_by_thousands_of_records_renders_without_recursion_limits() -> None:
    nodes = nest(TEXT, _spans(*[(6, 16)] * 3000))
    html = render(nodes)
    assert html.count("<mark") == 3000 and 'class="h6"' in html


@st.composite
def _cases(draw: st.DrawFn) -> tuple[str, list[Span]]:
    text = draw(st.text(alphabet="ab <&>\"'", min_size=1, max_size=40))
    bounds = st.integers(min_value=0, max_value=len(text))
    ranges = draw(st.lists(st.tuples(bounds, bounds), max_size=8))
    return text, _spans(*[(min(a, b), max(a, b)) for a, b in ranges])


@given(_cases())
@settings(max_examples=300, deadline=None)
def test_nesting_keeps_the_text_and_covers_every_span_exactly(case: tuple[str, list[Span]]) -> None:
    text, spans = case
    nodes = nest(text, spans)
    pieces, seen_text, _ = _pieces(nodes)
    assert seen_text == text
    drawable, _ = split_drawable(text, spans)
    for span in drawable:
        items = sorted(pieces[span.key])
        assert items[0][:2][0] == span.start and items[-1][1] == span.end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(items)), "fragments leave a gap"
        assert [first for *_, first in items] == [True] + [False] * (len(items) - 1)
        crosses = any(o.start < span.start < o.end < span.end or span.start < o.start < span.end < o.end
                      for o in drawable)  # fmt: skip
        if not crosses:
            assert len(items) == 1, f"{span} crosses nothing but was cut"
    tree = html_tree.parse(render(nodes))  # well nested, or parse raises
    assert tree.text() == text


# The report on a run --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("run")
    results = write_run(folder)
    dataset = structx.build_dataset([results])
    site = structx.write_report([results], folder / "report", dataset=dataset)
    return {"results": results, "lines": read_run(results), "site": site, "out": folder / "report", "dataset": dataset}


def _page(run: dict[str, Any], article_id: str) -> html_tree.Node:
    return html_tree.read(run["out"] / "articles" / f"{article_id}.html")


def _counts(tree: html_tree.Node) -> dict[str, str]:
    nodes = tree.find_all(test=lambda n: "data-count" in n.attrs)
    return {node.attrs["data-count"]: node.text().strip() for node in nodes}


def _expected_counts(lines: list[dict[str, Any]]) -> dict[str, str]:
    ok = [line for line in lines if line["status"] == "ok"]
    kept = [r for line in ok for r in line["grounding"]["records"] if not r["dropped"]]
    by_type = Counter(kind for line in ok for kind, records in line["records"].items() if isinstance(records, list)
                      for record in records if isinstance(record, dict))  # fmt: skip
    errors = Counter(line["error"]["type"] for line in lines if line["status"] != "ok")
    statuses = Counter(span["status"] for record in kept for span in record["evidence"])
    usage = [line["usage"] for line in lines if "usage" in line]
    prompt, completion = sum(u["prompt_tokens"] for u in usage), sum(u["completion_tokens"] for u in usage)
    priced = [line for line in lines if line.get("model") == "gpt-4o-mini"]
    cost = sum(structx.estimate_cost("gpt-4o-mini", structx.Usage(line["usage"]["prompt_tokens"],
                                                                   line["usage"]["completion_tokens"]))
               or 0.0 for line in priced)  # fmt: skip
    expected = {
        "articles": str(len(lines)),
        "ok": str(len(ok)),
        "failed": str(len(lines) - len(ok)),
        "records": str(len(kept)),
        "grounded": str(sum(r["grounded"] for r in kept)),
        "ungrounded": str(sum(not r["grounded"] for r in kept)),
        "dropped": str(sum(r["dropped"] for line in ok for r in line["grounding"]["records"])),
        "excerpts": str(sum(statuses.values())),
        "prompt-tokens": f"{prompt:,}",
        "completion-tokens": f"{completion:,}",
        "total-tokens": f"{prompt + completion:,}",
        "cost": f"${cost:.4f}",
    }
    expected |= {f"error:{kind}": str(n) for kind, n in errors.items()}
    expected |= {f"type:{kind}": str(n) for kind, n in by_type.items()}
    expected |= {f"status:{status}": str(statuses[status]) for status in ("exact", "normalized", "fuzzy", "not_found")}
    return expected


def test_the_index_counts_are_the_results_files_counts(run: dict[str, Any]) -> None:
    counts = _counts(html_tree.read(run["out"] / "index.html"))
    expected = _expected_counts(run["lines"])
    assert {key: counts.get(key) for key in expected} == expected
    assert counts["highlights"] == str(run["site"].highlights)
    assert counts["without-text"] == "2"  # the gone article, and the failed one whose source is not on disk


def test_the_index_lists_every_article_with_its_counts_and_problems(run: dict[str, Any]) -> None:
    tree = html_tree.read(run["out"] / "index.html")
    rows = tree.by_id("articles").find_all("tr", test=lambda n: "data-id" in n.attrs)
    assert [row.attrs["data-id"] for row in rows] == [line["id"] for line in run["lines"]]
    problems = {row.attrs["data-id"] for row in rows if row.attrs["data-problems"] == "yes"}
    assert problems == {UNGROUNDED_STEM, DROPPED_STEM, HOSTILE_ID, "truncated", "refused"}
    by_id = {line["id"]: line for line in run["lines"]}
    for row in rows:
        line = by_id[row.attrs["data-id"]]
        with_records = {kind for kind, records in (line.get("records") or {}).items() if isinstance(records, list)
                        and any(isinstance(r, dict) for r in records)}  # fmt: skip
        assert set(row.attrs["data-types"].split()) == with_records
        (link,) = row.find_all("a")
        assert (run["out"] / link.attrs["href"]).is_file()
    # Without a script the filters would do nothing, so they are hidden until it runs.
    assert "hidden" in tree.by_id("filters").attrs


def test_each_article_page_highlights_every_located_evidence_span_once(run: dict[str, Any]) -> None:
    for line in run["lines"]:
        tree = _page(run, line["id"])
        marks = tree.find_all("mark", test=lambda n: "hl" in n.classes())
        text = tree.by_id("article-text")
        if line["id"] in (NO_TEXT_ID, "truncated"):
            assert text is None and marks == []
            continue
        assert len({m.attrs["data-span"] for m in marks}) == located_spans(line), line["id"]
        assert sum("id" in m.attrs for m in marks) == located_spans(line)
        if line["status"] == "ok":
            assert tree.by_id("highlight-count").attrs["data-count"] == str(located_spans(line))
        # The page's text is the article's text, every character once.
        source = Path(line["source"])
        assert text is not None and text.text() == source.read_text(encoding="utf-8")


def test_a_highlight_is_the_evidence_excerpt_and_names_its_record(run: dict[str, Any]) -> None:
    line = next(line for line in run["lines"] if line["id"] == STEMS[0])
    tree = _page(run, line["id"])
    article = Path(line["source"]).read_text(encoding="utf-8")
    for record in line["grounding"]["records"]:
        anchor = "rec-" + record["path"].replace("[", "-").replace("]", "").replace("_", "-").replace(".", "-")
        card = tree.by_id(anchor)
        assert card is not None and "card" in card.classes()
        links = card.find_all("a", test=lambda n: n.attrs.get("href", "").startswith("#e"))
        assert len(links) == len(record["evidence"])
        for link, span in zip(links, record["evidence"], strict=True):
            first = tree.by_id(link.attrs["href"][1:])
            assert first is not None and first.attrs["data-record"] == anchor
            pieces = tree.find_all("mark", data_span=first.attrs["data-span"])
            assert "".join(p.text() for p in pieces).startswith(article[span["start"] : span["end"]][:20])


def test_shared_and_nested_evidence_nests_on_a_real_article(run: dict[str, Any]) -> None:
    # Seed 000's visit and meeting cite the same two sentences: their marks sit one inside the other.
    tree = _page(run, STEMS[0])
    nested = [m for m in tree.find_all("mark") if any(c.tag == "mark" for c in m.children if not isinstance(c, str))]
    assert nested, "no highlight holds another"
    assert all(m.classes() & {"h2", "h3", "h4", "h5", "h6"} for m in nested)


def test_ungrounded_records_are_listed_with_their_reasons_and_dropped_ones_too(run: dict[str, Any]) -> None:
    line = next(line for line in run["lines"] if line["id"] == UNGROUNDED_STEM)
    ungrounded = [r for r in line["grounding"]["records"] if not r["grounded"]]
    assert ungrounded
    section = _page(run, UNGROUNDED_STEM).by_id("ungrounded")
    assert section is not None
    items = section.find_all("li", test=lambda n: "data-record" in n.attrs)
    assert [item.find_all("code")[0].text() for item in items] == [r["path"] for r in ungrounded]
    for item, record in zip(items, ungrounded, strict=True):
        assert [li.text() for li in item.find_all("li")[1:]] == record["problems"]
    assert FABRICATED_EXCERPT in section.text()

    dropped_line = next(line for line in run["lines"] if line["id"] == DROPPED_STEM)
    (dropped,) = [r for r in dropped_line["grounding"]["records"] if r["dropped"]]
    section = _page(run, DROPPED_STEM).by_id("ungrounded")
    assert section is not None
    (item,) = section.find_all("li", data_path=dropped["path"])
    assert "--grounding drop" in section.text()
    assert [li.text() for li in item.find_all("ul")[0].find_all("li")] == dropped["problems"]


def test_a_failed_article_shows_its_error_and_the_grounding_that_failed_it(run: dict[str, Any]) -> None:
    error = _page(run, "truncated").by_id("error")
    assert error is not None and "TruncatedOutput" in error.text()
    assert "the answer hit the token limit <b>2048</b>" in error.text()  # the message's HTML is text
    refused = _page(run, "refused")
    assert "GroundingFailed" in refused.by_id("error").text()
    assert "Vladimir Putin landed in Baghdad" in refused.by_id("error").text()
    assert refused.by_id("article-text") is not None  # its text is still there to read


def test_an_article_without_text_says_so_and_still_lists_its_records(run: dict[str, Any]) -> None:
    tree = _page(run, NO_TEXT_ID)
    notice = tree.by_id("no-text")
    assert notice is not None and "gone.txt" in notice.text() and "--articles" in notice.text()
    line = next(line for line in run["lines"] if line["id"] == NO_TEXT_ID)
    cards = tree.find_all("article", test=lambda n: "card" in n.classes())
    assert len(cards) == len(line["grounding"]["records"])
    first_excerpt = line["records"]["visits"][0]["evidence"][0]
    assert first_excerpt in tree.text()


def test_hostile_text_and_fields_render_as_text_and_no_script_but_ours(run: dict[str, Any]) -> None:
    answer_fields = [
        "<script>window.__pwned = 6</script>Hostile <i>title</i>",
        '<img src=x onerror="window.__pwned = 8">The minister',
        "</textarea><script>window.__pwned = 9</script>",
        '<b onmouseover="window.__pwned = 5">Kataib Test</b>',
        "javascript:window.__pwned = 10",
    ]
    pages = [run["out"] / "articles" / f"{HOSTILE_ID}.html", run["out"] / "index.html",
             *sorted((run["out"] / "entities").glob("*.html")), *sorted(run["out"].glob("*.html"))]  # fmt: skip
    for path in pages:
        tree = html_tree.read(path)
        scripts = tree.find_all("script")
        assert len(scripts) == 1 and "__pwned" not in scripts[0].text(), path
        for node in tree.iter():
            assert not any(name.startswith("on") for name in node.attrs), (path, node.tag, node.attrs)
            assert not node.attrs.get("href", "").strip().lower().startswith("javascript:"), path
            assert node.tag not in ("img", "iframe", "object", "embed", "textarea", "b", "i"), (path, node.tag)
    page = html_tree.read(run["out"] / "articles" / f"{HOSTILE_ID}.html")
    text = page.by_id("article-text")
    assert text is not None and text.text() == HOSTILE_TEXT
    for value in answer_fields:
        assert value in page.text(), value


def test_every_page_carries_a_policy_that_runs_only_its_own_script(run: dict[str, Any]) -> None:
    for path in [run["out"] / "index.html", *sorted((run["out"] / "articles").glob("*.html"))]:
        tree = html_tree.read(path)
        (policy,) = tree.find_all("meta", http_equiv="Content-Security-Policy")
        (script,) = tree.find_all("script")
        digest = base64.b64encode(hashlib.sha256(script.text().encode()).digest()).decode()
        assert f"script-src 'sha256-{digest}'" in policy.attrs["content"]
        assert "default-src 'none'" in policy.attrs["content"]


def test_only_http_links_from_the_input_become_links(tmp_path: Path) -> None:
    lines = [{"id": "a", "status": "ok", "records": {}, "meta": {"url": "https://example.org/a?x=1"}},
             {"id": "b", "status": "ok", "records": {}, "meta": {"url": "javascript:alert(1)"}}]  # fmt: skip
    structx.write_report(lines, tmp_path / "r")
    a = html_tree.read(tmp_path / "r" / "articles" / "a.html")
    assert [n.attrs["href"] for n in a.find_all("a") if n.attrs["href"].startswith("http")] == [
        "https://example.org/a?x=1"
    ]
    b = html_tree.read(tmp_path / "r" / "articles" / "b.html")
    assert not any("javascript" in n.attrs.get("href", "") for n in b.find_all("a"))


def test_article_ids_become_safe_distinct_file_names_inside_the_folder(tmp_path: Path) -> None:
    ids = ["../../escape", "a/b", "A", "a", ".hidden", "x" * 300, "ok_id"]
    structx.write_report([{"id": i, "status": "ok", "records": {}} for i in ids], tmp_path / "r")
    pages = sorted((tmp_path / "r" / "articles").iterdir())
    assert len(pages) == len(ids) and len({p.name.casefold() for p in pages}) == len(ids)
    assert all(p.parent == tmp_path / "r" / "articles" and not p.name.startswith(".") for p in pages)
    assert (tmp_path / "r" / "articles" / "ok_id.html").is_file()
    assert not (tmp_path / "escape.html").exists() and sorted(tmp_path.iterdir()) == [tmp_path / "r"]


def test_a_jsonl_article_source_gives_the_text(tmp_path: Path) -> None:
    articles = tmp_path / "news.jsonl"
    articles.write_text(json.dumps({"id": "x", "text": "Qaani visited Baghdad."}) + "\n", encoding="utf-8")
    line = {"id": "x", "source": f"{articles}:1", "status": "ok",
            "records": {"visits": [{"visitor": "Qaani", "evidence": ["Qaani visited Baghdad."]}]}}  # fmt: skip
    structx.write_report([line], tmp_path / "r")
    tree = html_tree.read(tmp_path / "r" / "articles" / "x.html")
    assert tree.by_id("article-text").text() == "Qaani visited Baghdad."
    assert len(tree.find_all("mark")) == 1 and tree.by_id("located-here") is not None


# Datasets --------------------------------------------------------------------------------------------------------


def test_a_dataset_read_back_from_sqlite_is_the_dataset_written(tmp_path: Path, run: dict[str, Any]) -> None:
    dataset: structx.Dataset = run["dataset"]
    dataset.write(tmp_path / "ds")
    again = read_dataset(tmp_path / "ds")
    for name in TABLES:
        assert getattr(again, name) == getattr(dataset, name), name


def test_a_dataset_folder_without_its_database_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(structx.InputError, match=r"no dataset\.sqlite in the folder"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    sqlite3.connect(tmp_path / "bad" / "dataset.sqlite").execute("CREATE TABLE other (x)").connection.close()
    with pytest.raises(structx.InputError, match="not a structx dataset"):
        read_dataset(tmp_path / "bad")


def test_without_a_dataset_the_dataset_sections_are_absent(tmp_path: Path, run: dict[str, Any]) -> None:
    structx.write_report([run["results"]], tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [".structx-report", "articles", "index.html"]
    index = html_tree.read(tmp_path / "r" / "index.html")
    assert not index.find_all("a", href="entities.html") and index.by_id("dataset-panel") is None


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["report", *args])


def test_on_the_gold_answers_with_their_dataset(tmp_path: Path) -> None:
    """``structx merge eval/gold --articles seeds`` then ``structx report eval/gold --articles seeds --dataset``."""
    merged = CliRunner().invoke(app, ["merge", str(GOLD), "--articles", str(SEEDS), "--out", str(tmp_path / "ds")])
    assert merged.exit_code == 0, merged.output
    result = _cli(str(GOLD), "--articles", str(SEEDS), "--dataset", str(tmp_path / "ds"), "--out", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    out = tmp_path / "r"
    gold = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(GOLD.glob("*.json"))}
    records = [r for answer in gold.values() for kind in ("visits", "meetings", "militia_stances", "quoted_sources")
               for r in answer[kind]]  # fmt: skip
    excerpts = sum(len(r["evidence"]) for r in records)
    db = sqlite3.connect(tmp_path / "ds" / "dataset.sqlite")
    entities = db.execute("SELECT entity_id, canonical_name, aliases FROM entities").fetchall()
    assert result.stdout.splitlines() == [
        f"5 articles (5 ok, 0 failed): {len(records)} records (0 ungrounded, 0 dropped), "
        f"{excerpts} evidence spans highlighted; {len(entities)} entity pages"
    ]
    counts = _counts(html_tree.read(out / "index.html"))
    for kind in ("visits", "meetings", "militia_stances", "quoted_sources"):
        assert counts[f"type:{kind}"] == str(sum(len(answer[kind]) for answer in gold.values()))
    assert counts["status:exact"] == str(excerpts) and "no-usage" in counts

    assert len(list((out / "entities").glob("*.html"))) == len(entities)
    # Qaani's page: his aliases, and each mention a link to its span in the article, where that span is.
    (qaani,) = [e for e in entities if e[1] == "Esmail Qaani"]
    page = html_tree.read(out / "entities" / f"{qaani[0]}.html")
    assert set(json.loads(qaani[2])) <= set(page.by_id("aliases").text().split(", "))
    links = page.by_id("mentions").find_all("a", test=lambda n: "span-link" in n.classes())
    mentions = db.execute(
        "SELECT article_id, start, end, surface FROM mentions WHERE entity_id = ? AND start IS NOT NULL", (qaani[0],)
    ).fetchall()
    assert len(links) == len(mentions) >= 10
    texts = {stem: (SEEDS / f"{stem}.txt").read_text(encoding="utf-8") for stem in gold}
    for link, (article_id, start, end, surface) in zip(links, mentions, strict=True):
        target_page, anchor = link.attrs["href"].split("#")
        assert target_page == f"../articles/{article_id}.html" and anchor == f"at-{start}-{end}"
        span = html_tree.read(out / "articles" / f"{article_id}.html").by_id(anchor)
        assert span is not None and span.text() == texts[article_id][start:end]
        assert span.text().casefold() in surface.casefold()

    timeline = html_tree.read(out / "timeline.html")
    dated = db.execute("SELECT count(*) FROM visits WHERE start IS NOT NULL").fetchone()[0]
    assert len(timeline.by_id("timeline").find_all("rect", test=lambda n: "bar" in n.classes())) == dated
    assert (
        len(timeline.by_id("visits-table").find_all("tr")) - 1
        == db.execute("SELECT count(*) FROM visits").fetchone()[0]
    )
    meetings = html_tree.read(out / "meetings.html")
    participants = db.execute("SELECT count(*) FROM meeting_participants").fetchone()[0]
    assert len(meetings.by_id("meetings-graph").find_all("path")) == participants
    stances = html_tree.read(out / "stances.html")
    entries = stances.by_id("stance-matrix").find_all("a", test=lambda n: "entry" in n.classes())
    assert len(entries) == db.execute("SELECT count(*) FROM stances").fetchone()[0]
    for entry in entries:
        target_page, anchor = entry.attrs["href"].split("#")
        assert html_tree.read(out / target_page).by_id(anchor) is not None
    sources = html_tree.read(out / "sources.html")
    rows = sources.by_id("sources-table").find_all("tr", test=lambda n: "quotes-row" not in n.classes())
    assert len(rows) - 1 == db.execute("SELECT count(*) FROM sources").fetchone()[0]
    db.close()


def test_a_folder_that_is_not_empty_is_refused_unless_forced(tmp_path: Path, run: dict[str, Any]) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    result = _cli(str(run["results"]), "--out", str(out))
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        f"structx: error: --out {out} exists and is not empty; pass --force to replace the report in it"
    ]
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert _cli(str(run["results"]), "--out", str(out), "--force").exit_code == 0
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_forcing_a_new_report_removes_the_pages_of_the_old_one_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "r"
    structx.write_report([{"id": "old", "status": "ok", "records": {}}], out)
    (out / "articles" / "mine.html").write_text("mine", encoding="utf-8")
    structx.write_report([{"id": "new", "status": "ok", "records": {}}], out, force=True)
    assert sorted(p.name for p in (out / "articles").iterdir()) == ["mine.html", "new.html"]


def test_a_planted_link_cannot_send_pages_outside_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "r"
    out.mkdir()
    (out / "articles").symlink_to(outside)
    with pytest.raises(structx.UsageError, match="would be written outside"):
        structx.write_report([{"id": "a", "status": "ok", "records": {}}], out, force=True)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "missing.jsonl: no such file"),
        (["{results}", "--dataset", "{tmp}/nope"], "--dataset {tmp}/nope: no such directory"),
        (["{results}", "--dataset", "{tmp}"], "{tmp}: no dataset.sqlite in the folder (write one with structx merge)"),
        (["{results}", "--articles", "{tmp}/nope"], "--articles {tmp}/nope: no such directory"),
        (["{bad}"], "{bad}: line 1 is not JSON"),
    ],
)
def test_bad_input_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, run: dict[str, Any], args: list[str], message: str
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    names = {"results": str(run["results"]), "tmp": str(tmp_path), "bad": str(bad)}
    result = _cli(*[a.format(**names) for a in args], "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"structx: error: {message.format(**names)}")
    assert "Traceback" not in result.output and not (tmp_path / "r").exists()


def test_an_answer_that_is_itself_one_record_gets_its_card_and_highlight(tmp_path: Path) -> None:
    text = "Qaani visited Baghdad on Monday. Nothing else happened."
    span = {"start": 0, "end": 32, "status": "exact", "score": 100.0}
    grounding = {"records": [{"path": "Visit", "grounded": True, "problems": [], "dropped": False, "evidence": [span]}]}
    records = {"visitor": "Qaani", "evidence": ["Qaani visited Baghdad on Monday."]}
    line = {"id": "one", "status": "ok", "source": None, "records": records, "grounding": grounding}
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "one.txt").write_text(text, encoding="utf-8")
    structx.write_report([line], tmp_path / "r", articles=tmp_path / "texts")
    tree = html_tree.read(tmp_path / "r" / "articles" / "one.html")
    card = tree.by_id("rec-Visit")
    assert card is not None and "Qaani" in card.text()
    (mark,) = tree.find_all("mark")
    assert mark.text() == "Qaani visited Baghdad on Monday." and mark.attrs["data-record"] == "rec-Visit"
