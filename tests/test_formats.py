"""The model-facing formats: numbered sentences, citations, per-type calls (offline, scripted server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx._formats import resolve_format
from structx._formats._cited import MAX_CITATIONS, MAX_LIST_ITEMS, cited_model, salvage_truncated_json
from structx._formats._sentences import number_sentences
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction, Visit

# An invented article (not one of the seeds).
ARTICLE = (
    "Harbour council weighs seawall plan\n"
    "By Jo Reyes\n"
    "PORTVILLE - Gen. Ana Ferreira of the U.S. Army Corps arrived in Portville on Monday to inspect the seawall.\n"
    'She met Mayor Tom Vasquez at the town hall. "We will not wait for the next storm," Vasquez said.\n'
    "The harbour master, who asked not to be named, said the plan was late.\n"
    "Ferreira said repairs would start in May.\n"
)


def sentence_texts(text: str) -> list[str]:
    return [s.text for s in number_sentences(text)]


# -- numbering ----------------------------------------------------------------------------


def test_sentences_are_numbered_in_order_and_slice_the_article() -> None:
    sentences = number_sentences(ARTICLE)
    assert [s.number for s in sentences] == list(range(1, len(sentences) + 1))
    for sentence in sentences:
        assert ARTICLE[sentence.start : sentence.end] == sentence.text
    assert sentence_texts(ARTICLE) == [
        "Harbour council weighs seawall plan",  # a headline without a full stop is a sentence of its own
        "By Jo Reyes",
        "PORTVILLE - Gen. Ana Ferreira of the U.S. Army Corps arrived in Portville on Monday to inspect the seawall.",
        "She met Mayor Tom Vasquez at the town hall.",
        '"We will not wait for the next storm," Vasquez said.',
        "The harbour master, who asked not to be named, said the plan was late.",
        "Ferreira said repairs would start in May.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"Go home." He left.', ['"Go home."', "He left."]),  # the closing quote stays with its sentence
        ('"Why now?" he asked. Nobody knew.', ['"Why now?" he asked.', "Nobody knew."]),
        (
            "Mr. Smith met Dr. Jones on Jan. 5 in the U.S. capital.",
            ["Mr. Smith met Dr. Jones on Jan. 5 in the U.S. capital."],
        ),
        ("It rose 2.5 percent. Prices fell.", ["It rose 2.5 percent.", "Prices fell."]),
        ("Line one\r\n\r\nLine two.  Next one!", ["Line one", "Line two.", "Next one!"]),
        ("هل يعود؟ لا أحد يعرف.", ["هل يعود؟", "لا أحد يعرف."]),
        ("J. R. Doe spoke... then left.", ["J. R. Doe spoke... then left."]),
        ("   \n\n  ", []),
    ],
)
def test_news_text_edge_cases(text: str, expected: list[str]) -> None:
    assert sentence_texts(text) == expected


@given(st.text(alphabet=st.sampled_from(list("ab .!?\"'\n\r\t”’»)A1")), max_size=200))
@settings(max_examples=200, deadline=None)
def test_every_sentence_slices_the_text_and_none_overlap(text: str) -> None:
    previous_end = 0
    for sentence in number_sentences(text):
        assert text[sentence.start : sentence.end] == sentence.text
        assert sentence.text == sentence.text.strip() and sentence.text
        assert "\n" not in sentence.text and "\r" not in sentence.text
        assert sentence.start >= previous_end
        previous_end = sentence.end


# -- the model-facing schema ---------------------------------------------------------------


def test_the_cited_record_takes_sentence_numbers_and_keeps_the_other_fields() -> None:
    cited = cited_model(Visit)
    schema = cited.model_json_schema()
    assert schema["properties"]["evidence"]["items"] == {"type": "integer"}
    assert schema["properties"]["evidence"]["maxItems"] == MAX_CITATIONS
    assert set(schema["properties"]) == set(Visit.model_json_schema()["properties"])
    assert schema["properties"]["visitor"]["description"] == Visit.model_fields["visitor"].description
    assert schema["additionalProperties"] is False


def test_auto_is_cited_for_llama_cpp_and_excerpts_elsewhere() -> None:
    auto = structx.ExtractionFormat.AUTO
    assert resolve_format(auto, "llama.cpp") is structx.ExtractionFormat.CITED
    assert resolve_format(auto, "llama.cpp (embedded)") is structx.ExtractionFormat.CITED
    assert resolve_format(auto, "openai") is structx.ExtractionFormat.EXCERPTS
    assert resolve_format(structx.ExtractionFormat.EXCERPTS, "llama.cpp") is structx.ExtractionFormat.EXCERPTS


def test_an_unknown_format_is_a_config_error() -> None:
    with pytest.raises(structx.ConfigError, match="extraction_format 'quoted' is not one of: excerpts, cited, auto"):
        structx.Config(extraction_format="quoted")  # type: ignore[arg-type]


# -- the calls an article makes --------------------------------------------------------------

N = {text: s.number for s in number_sentences(ARTICLE) for text in [s.text]}
ARRIVED = 3
MET = 4
QUOTE = 5
MASTER = 6
SURNAME = 7

VISIT = {
    "evidence": [ARRIVED],
    "visitor": "Ana Ferreira",
    "visitor_organisation": "U.S. Army Corps",
    "city": "Portville",
    "country": None,
    "when": {"text": "Monday", "start": None, "end": None},
    "disclosure": "unknown",
    "purpose": "to inspect the seawall",
    "met_with": [],
}
MEETING = {
    "evidence": [ARRIVED, MET],
    "participants": [
        {"name": "Ana Ferreira", "organisation": None, "role": None},
        {"name": "Tom Vasquez", "organisation": None, "role": "Mayor"},
    ],
    "place": "the town hall",
    "when": None,
    "topics": [],
    "message": None,
    "outcome": None,
}
SOURCE = {
    "evidence": [QUOTE],
    "name": "Tom Vasquez",
    "anonymous": False,
    "role": "Mayor",
    "affiliation": None,
    "outlet": None,
    "quote": "We will not wait for the next storm,",
    "topic": None,
}
OTHER = {"title": "Harbour council weighs seawall plan", "outlet": None, "byline": "Jo Reyes", "published": None}


def answers(**overrides: Any) -> list[Reply]:
    """One reply per call, in the order the calls are made."""
    parts = {
        "visits": {"visits": [VISIT]},
        "meetings": {"meetings": [MEETING]},
        "militia_stances": {"militia_stances": []},
        "quoted_sources": {"quoted_sources": [SOURCE]},
        "other": OTHER,
    }
    parts.update(overrides)
    return [Reply.answer(value) for value in parts.values()]


def config(server: ScriptedServer, **overrides: Any) -> structx.Config:
    values: dict[str, Any] = {
        "base_url": server.base_url,
        "model": "scripted-model",
        "structured_output": "json_schema",
        "extraction_format": "cited",
        "max_retries": 0,
        "max_reasks": 1,
    }
    values.update(overrides)
    return structx.Config(**values)


def completion_bodies(server: ScriptedServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path.endswith("/chat/completions")]


def test_one_call_per_record_type_plus_one_for_the_other_fields_with_the_article_first() -> None:
    with ScriptedServer(answers()) as server:
        result = structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert len(bodies) == 5
    assert (result.attempts, result.requests, result.chunks) == (5, 5, 1)
    assert result.usage == structx.Usage(prompt_tokens=500, completion_tokens=250)
    answered = [set(body["response_format"]["json_schema"]["schema"]["properties"]) for body in bodies]
    assert answered == [{"visits"}, {"meetings"}, {"militia_stances"}, {"quoted_sources"}, set(OTHER)]
    systems = {body["messages"][0]["content"] for body in bodies}
    assert len(systems) == 1 and "Vasquez" not in systems.pop()
    users = [body["messages"][1]["content"] for body in bodies]
    fence_end = users[0].rindex("</article-") + len("</article-123456789abc>")
    prefix = users[0][:fence_end]
    assert all(user.startswith(prefix) for user in users)  # byte-identical up to the end of the article
    assert f"[{ARRIVED}] PORTVILLE - Gen. Ana Ferreira" in prefix
    assert all(len(user) > len(prefix) for user in users)  # the task comes after the article
    assert '"visits"' in users[0][fence_end:] and "- visitor (text): Name" in users[0][fence_end:]
    assert '"json_schema"' not in users[0] and "$defs" not in users[0]  # no JSON schema in the prompt
    assert [body["max_tokens"] for body in bodies] == [768, 768, 768, 768, 256]


def test_every_field_of_a_record_is_required_in_the_response_schema_and_null_stays_allowed() -> None:
    with ScriptedServer(answers()) as server:
        structx.extract(ARTICLE, config=config(server))
    visits = completion_bodies(server)[0]["response_format"]["json_schema"]["schema"]
    definitions = visits["$defs"]
    visit = definitions["Visit"]
    assert set(visit["required"]) == set(visit["properties"]) == set(VISIT)
    assert {"type": "null"} in visit["properties"]["city"]["anyOf"]
    when = definitions["When"]
    assert set(when["required"]) == {"text", "start", "end"}
    other = completion_bodies(server)[4]["response_format"]["json_schema"]["schema"]
    assert set(other["required"]) == set(OTHER)


def test_lists_inside_a_record_are_bounded_in_the_response_schema() -> None:
    with ScriptedServer(answers()) as server:
        structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    visit = bodies[0]["response_format"]["json_schema"]["schema"]["$defs"]["Visit"]
    assert visit["properties"]["met_with"]["maxItems"] == MAX_LIST_ITEMS
    meeting = bodies[1]["response_format"]["json_schema"]["schema"]["$defs"]["Meeting"]
    participants = meeting["properties"]["participants"]
    assert (participants["minItems"], participants["maxItems"]) == (2, MAX_LIST_ITEMS)  # the user's minimum kept
    assert visit["properties"]["evidence"]["maxItems"] == MAX_CITATIONS
    # The records themselves are bounded by the call's token budget, not by a count.
    assert "maxItems" not in bodies[0]["response_format"]["json_schema"]["schema"]["properties"]["visits"]


def test_a_looping_list_is_re_asked_where_no_grammar_stops_it() -> None:
    looping = {**VISIT, "met_with": ["Tom Vasquez"] * (MAX_LIST_ITEMS + 1)}
    with ScriptedServer(answers(visits={"visits": [looping]})[:1] + answers()) as server:
        result = structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert len(bodies) == 6
    assert "at most 12 items" in bodies[1]["messages"][-1]["content"]
    assert result.value.visits[0].met_with == []


def test_a_record_that_leaves_out_a_field_is_re_asked() -> None:
    partial = {key: value for key, value in VISIT.items() if key not in ("city", "disclosure")}
    with ScriptedServer(answers(visits={"visits": [partial]})[:1] + answers()) as server:
        result = structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert len(bodies) == 6
    assert "Field required" in bodies[1]["messages"][-1]["content"]
    assert result.value.visits[0].city == "Portville"


def test_a_name_in_the_next_sentence_is_cited_by_structx_without_a_re_ask() -> None:
    # The visit cites the arrival; the person met is named in the sentence after it.
    visit = {**VISIT, "met_with": ["Tom Vasquez"], "evidence": [ARRIVED]}
    with ScriptedServer(answers(visits={"visits": [visit]})) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert len(completion_bodies(server)) == 5  # no re-ask
    texts = sentence_texts(ARTICLE)
    assert result.value.visits[0].evidence == [texts[ARRIVED - 1], texts[MET - 1]]
    assert result.grounding.grounded


def test_a_sentence_that_shares_only_a_surname_is_not_cited_for_a_name() -> None:
    # "Ferreira said ..." (the next sentence) names no Maria Ferreira: structx does not cite it.
    visit = {**VISIT, "met_with": ["Maria Ferreira"], "evidence": [MASTER]}
    with ScriptedServer(answers(visits={"visits": [visit]})[:1] + answers()) as server:
        structx.extract(ARTICLE, config=config(server))
    feedback = completion_bodies(server)[1]["messages"][-1]["content"]
    assert "visits[0].met_with[0] 'Maria Ferreira' does not occur in the sentence it cites" in feedback


def test_a_name_far_from_the_cited_sentences_is_still_re_asked() -> None:
    far = {**VISIT, "met_with": ["Jo Reyes"], "evidence": [MASTER + 1]}  # named in sentence 2 only
    with ScriptedServer(answers(visits={"visits": [far]})[:1] + answers()) as server:
        structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert len(bodies) == 6
    feedback = bodies[1]["messages"][-1]["content"]
    assert "visits[0].met_with[0] 'Jo Reyes' does not occur in the sentence it cites" in feedback


def test_an_answer_repeated_after_feedback_ends_the_re_asks() -> None:
    wrong = {**VISIT, "met_with": ["Jo Reyes"], "evidence": [SURNAME]}
    replies = answers(visits={"visits": [wrong]})[:1] * 2 + answers()[1:]
    with ScriptedServer(replies) as server:
        result = structx.extract(ARTICLE, config=config(server, max_reasks=2))
    bodies = completion_bodies(server)
    assert len(bodies) == 6  # the first ask, one re-ask with the same answer, then the four other calls
    assert len(bodies[1]["messages"]) == 4 and len(bodies[2]["messages"]) == 2
    # The repeated answer is final: the grounding policy (keep) keeps it, flagged.
    assert result.value.visits[0].evidence == [sentence_texts(ARTICLE)[SURNAME - 1]]
    assert result.value.visits[0].met_with == ["Jo Reyes"]


def test_the_word_null_in_a_field_that_allows_none_is_none() -> None:
    source = {**SOURCE, "role": "null", "outlet": "None"}
    with ScriptedServer(answers(quoted_sources={"quoted_sources": [source]})) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert len(completion_bodies(server)) == 5
    assert (result.value.quoted_sources[0].role, result.value.quoted_sources[0].outlet) == (None, None)


def test_citations_become_the_sentences_and_ground_exactly() -> None:
    with ScriptedServer(answers()) as server:
        result = structx.extract(ARTICLE, config=config(server))
    texts = sentence_texts(ARTICLE)
    assert result.value.visits[0].evidence == [texts[ARRIVED - 1]]
    assert result.value.meetings[0].evidence == [texts[ARRIVED - 1], texts[MET - 1]]
    assert result.value.quoted_sources[0].quote == "We will not wait for the next storm,"
    assert result.value.byline == "Jo Reyes"
    assert result.grounding.grounded
    for record in result.grounding.records:
        for span in record.evidence:
            assert span.status is structx.AlignmentStatus.EXACT
            assert ARTICLE[span.start : span.end] == span.text


def test_a_name_missing_from_the_cited_sentences_is_re_asked_with_the_name_and_the_sentences() -> None:
    # The cited sentence names the visitor by surname; Jo Reyes is named nowhere near it.
    wrong = {**VISIT, "met_with": ["Jo Reyes"], "evidence": [SURNAME]}
    with ScriptedServer(answers(visits={"visits": [wrong]})[:1] + answers()) as server:
        result = structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert len(bodies) == 6 and result.attempts == 6
    feedback = bodies[1]["messages"][-1]["content"]
    assert f"visits[0].met_with[0] 'Jo Reyes' does not occur in the sentence it cites ({SURNAME})" in feedback
    assert "visitor" not in feedback
    assert result.value.visits[0].evidence == [sentence_texts(ARTICLE)[ARRIVED - 1]]


def test_a_surname_in_the_cited_sentence_is_enough_for_a_name_the_article_gives_in_full() -> None:
    ferreira = {**SOURCE, "name": "Ana Ferreira", "evidence": [SURNAME], "quote": "repairs would start in May"}
    with ScriptedServer(answers(quoted_sources={"quoted_sources": [SOURCE, ferreira]})) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert result.attempts == 5  # sentence 7 says only "Ferreira": no re-ask
    assert [source.name for source in result.value.quoted_sources] == ["Tom Vasquez", "Ana Ferreira"]
    # A name the article never gives in full is not accepted on its last word alone.
    stranger = {**ferreira, "name": "Rosa Ferreira"}
    replies = answers(quoted_sources={"quoted_sources": [stranger]})
    with ScriptedServer(replies[:4] + replies[3:]) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert result.attempts == 6


def test_a_citation_of_a_sentence_that_does_not_exist_is_re_asked_then_dropped() -> None:
    bad = {**VISIT, "evidence": [ARRIVED, 99]}
    with ScriptedServer(answers(visits={"visits": [bad]})[:1] + answers(visits={"visits": [bad]})) as server:
        result = structx.extract(ARTICLE, config=config(server))
    bodies = completion_bodies(server)
    assert (
        "visits[0].evidence cites sentence 99, which does not exist (the article has sentences 1-7)"
        in (bodies[1]["messages"][-1]["content"])
    )
    # The re-asks are spent: the citation that does not exist is dropped, the record kept.
    assert result.value.visits[0].evidence == [sentence_texts(ARTICLE)[ARRIVED - 1]]
    only_bad = {**VISIT, "evidence": [99]}
    replies = answers(visits={"visits": [only_bad, VISIT]})
    with ScriptedServer(replies) as server:
        result = structx.extract(ARTICLE, config=config(server, max_reasks=0))
    assert [visit.evidence for visit in result.value.visits] == [[sentence_texts(ARTICLE)[ARRIVED - 1]]]


def test_records_repeated_word_for_word_are_kept_once() -> None:
    with ScriptedServer(answers(visits={"visits": [VISIT, VISIT, {**VISIT, "purpose": None}]})) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert len(result.value.visits) == 2
    assert result.attempts == 5  # not a reason to re-ask


def test_a_verbatim_quote_that_is_not_in_the_article_is_re_asked() -> None:
    invented = {**SOURCE, "quote": "We will build it next year"}
    replies = answers()
    replies[3:3] = [Reply.answer({"quoted_sources": [invented]})]
    with ScriptedServer(replies) as server:
        result = structx.extract(ARTICLE, config=config(server))
    feedback = completion_bodies(server)[4]["messages"][-1]["content"]
    assert "quoted_sources[0].quote 'We will build it next year' is not verbatim in the article" in feedback
    assert result.value.quoted_sources[0].quote == SOURCE["quote"]


def test_an_answer_cut_at_the_token_limit_keeps_its_complete_records() -> None:
    full = json.dumps({"visits": [VISIT, {**VISIT, "purpose": "again"}]})
    cut = full[: full.index('"again"') + 3]
    replies = answers()
    replies[0] = Reply.completion(cut, finish_reason="length")
    with ScriptedServer(replies) as server:
        result = structx.extract(ARTICLE, config=config(server))
    assert [visit.purpose for visit in result.value.visits] == ["to inspect the seawall"]
    assert result.attempts == 5


def test_salvage_closes_the_list_after_the_last_complete_record() -> None:
    assert json.loads(salvage_truncated_json('{"a": [{"x": "}"}, {"x": 2}, {"x": "unfin') or "") == {
        "a": [{"x": "}"}, {"x": 2}]
    }
    assert salvage_truncated_json('{"a": [{"x": "unfinished') is None
    assert salvage_truncated_json('{"a": [{"b": [{"c": 1}, {"c"') is None  # nested items are not records


def test_a_failure_to_salvage_is_still_truncation() -> None:
    replies = answers()
    replies[0] = Reply.completion('{"visits": [{"evidence": [3], "vis', finish_reason="length")
    with ScriptedServer(replies) as server, pytest.raises(structx.TruncatedOutput):
        structx.extract(ARTICLE, config=config(server))


def test_the_excerpts_format_is_one_call_with_the_schema_in_the_prompt() -> None:
    with ScriptedServer([Reply.answer(ArticleExtraction())]) as server:
        structx.extract(ARTICLE, config=config(server, extraction_format="excerpts"))
    (body,) = completion_bodies(server)
    assert body["messages"] == structx.build_messages(structx.Article(ARTICLE), ArticleExtraction, include_schema=True)
    assert body["max_tokens"] == 2048


def test_a_long_article_is_cited_chunk_by_chunk() -> None:
    long_article = ARTICLE + "\n".join(f"Filler sentence number {i} says nothing new." for i in range(40))
    empty = [Reply.answer(v) for v in ({"visits": []}, {"meetings": []}, {"militia_stances": []},
                                       {"quoted_sources": []}, OTHER)]  # fmt: skip
    with ScriptedServer(answers() + empty * 3) as server:
        result = structx.extract(long_article, config=config(server, chunk_chars=800, chunk_overlap=100))
    assert result.chunks > 1
    assert len(completion_bodies(server)) == 5 * result.chunks
    assert result.value.visits[0].evidence == [sentence_texts(ARTICLE)[ARRIVED - 1]]
    assert result.grounding.grounded


@given(st.text(min_size=1, max_size=300).filter(str.strip))
@settings(max_examples=50, deadline=None)
def test_the_system_prompt_is_the_same_whatever_the_article_says(text: str) -> None:
    client = structx.Client(structx.Config(base_url="http://127.0.0.1:9/v1", model="m", extraction_format="cited"))
    bodies = client.request_bodies(text)
    systems = {body["messages"][0]["content"] for body in bodies}
    assert len(systems) == 1
    assert systems == {_CITED_SYSTEM}
    for body in bodies:
        user = body["messages"][1]["content"]
        tag = user[user.index("<article-") + 1 : user.index(">", user.index("<article-"))]
        fenced = user.split(f"\n<{tag}>\n", 1)[1].rsplit(f"\n</{tag}>\n", 1)[0]
        assert f"</{tag}>" not in fenced  # the article cannot close its own fence


_CITED_SYSTEM = structx.Client(
    structx.Config(base_url="http://127.0.0.1:9/v1", model="m", extraction_format="cited")
).request_bodies("Anything.")[0]["messages"][0]["content"]


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_writes_lines_whose_evidence_spans_slice_the_article(tmp_path: Path) -> None:
    path = tmp_path / "harbour.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    with ScriptedServer(answers()) as server:
        endpoint = ["--base-url", server.base_url, "--model", "scripted-model", "--structured-output", "json_schema"]
        options = ["--extraction-format", "cited", "--concurrency", "1", "-q"]
        args = ["extract", str(path), "--out", str(out), *endpoint, *options]
        run = CliRunner().invoke(app, args, catch_exceptions=False)
    assert run.exit_code == 0, run.output
    (line,) = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert line["status"] == "ok" and (line["attempts"], line["requests"]) == (5, 5)
    assert line["records"]["visits"][0]["evidence"] == [sentence_texts(ARTICLE)[ARRIVED - 1]]
    spans = [span for record in line["grounding"]["records"] for span in record["evidence"]]
    assert len(spans) == 4
    for record in line["grounding"]["records"]:
        for span in record["evidence"]:
            assert span["status"] == "exact"
            assert ARTICLE[span["start"] : span["end"]] in sentence_texts(ARTICLE)
