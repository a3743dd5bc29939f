"""Schema packs: loading by dotted path or file path, and the domain pack's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from instructor.v2.validation.async_validators import async_field_validator
from pydantic import BaseModel, ValidationError

import structx
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction, MilitiaStance, When
from tests.cassettes import ROOT, seed_answer, seed_paths


def test_load_by_dotted_path_and_by_file_path() -> None:
    assert structx.load_schema("structx_schemas.iran_militias:ArticleExtraction") is ArticleExtraction
    by_file = structx.load_schema(f"{ROOT / 'schemas' / 'structx_schemas' / 'iran_militias.py'}:ArticleExtraction")
    assert by_file.model_json_schema() == ArticleExtraction.model_json_schema()


def test_a_users_own_schema_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.py"
    path.write_text(
        "from __future__ import annotations\n"
        "from pydantic import BaseModel\n"
        "class Person(BaseModel):\n    name: str\n    evidence: list[str]\n"
        "class People(BaseModel):\n    people: list[Person]\n",
        encoding="utf-8",
    )
    schema = structx.load_schema(f"{path}:People")
    assert issubclass(schema, BaseModel)
    assert schema.model_validate({"people": [{"name": "Qaani", "evidence": ["Qaani"]}]})


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("structx_schemas.iran_militias", "must name a class"),
        ("structx_schemas.iran_militias:Nope", "has no pydantic model named 'Nope'"),
        ("structx_schemas.iran_militias:StanceTopic", "has no pydantic model named 'StanceTopic'"),
        ("no.such.module:X", "cannot import schema module 'no.such.module'"),
        ("/no/such/file.py:X", "schema file /no/such/file.py does not exist"),
    ],
)
def test_bad_references_are_schema_errors(ref: str, message: str) -> None:
    with pytest.raises(structx.SchemaError, match=message):
        structx.load_schema(ref)


def test_a_schema_file_that_fails_to_import(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    with pytest.raises(structx.SchemaError, match="failed to import: RuntimeError: boom"):
        structx.load_schema(f"{path}:X")


@pytest.mark.parametrize("stem", [path.stem for path in seed_paths()])
def test_gold_answers_validate_and_quote_the_article(stem: str) -> None:
    answer = seed_answer(stem)
    text = (ROOT / "seeds" / f"{stem}.txt").read_text(encoding="utf-8")
    records: list[BaseModel] = [
        *answer.visits,
        *answer.meetings,
        *answer.militia_stances,
        *answer.quoted_sources,
    ]
    assert records
    for record in records:
        for excerpt in record.evidence:  # type: ignore[attr-defined]
            assert excerpt in text


def test_every_record_needs_evidence() -> None:
    base = {
        "militia": "Kataib Hezbollah",
        "topic": "us_forces_presence",
        "position": "opposes",
        "summary": "s",
    }
    with pytest.raises(ValidationError, match="evidence"):
        MilitiaStance.model_validate(base)
    with pytest.raises(ValidationError, match="at least 1 item"):
        MilitiaStance.model_validate({**base, "evidence": []})
    with pytest.raises(ValidationError, match="evidence excerpt is empty"):
        MilitiaStance.model_validate({**base, "evidence": ["  "]})
    with pytest.raises(ValidationError, match="topic"):
        MilitiaStance.model_validate({**base, "topic": "weather", "evidence": ["x"]})


def test_date_ranges_must_be_ordered() -> None:
    assert When.model_validate({"text": "mid-September 2023", "start": "2023-09-10", "end": "2023-09-20"})
    with pytest.raises(ValidationError, match="is before start"):
        When.model_validate({"text": "x", "start": "2023-09-20", "end": "2023-09-10"})


class _AsyncChecked(BaseModel):
    name: str

    @async_field_validator("name")
    async def check_name(self, value: str) -> str:
        return value


def test_a_schema_with_an_instructor_async_validator_fails_before_any_request(tmp_path: Path) -> None:
    # instructor's runtime would never run the validator; say so instead of dropping it silently.
    message = r"_AsyncChecked\.check_name: Instructor async validators"
    (tmp_path / "a.txt").write_text("Qaani visited Baghdad.", encoding="utf-8")
    # The endpoint would be probed first (structured output "auto"): the schema fails before that.
    with (
        ScriptedServer([Reply.answer(_AsyncChecked(name="a"))]) as server,
        structx.Client(structx.Config(base_url=server.base_url, model="m")) as client,
    ):
        with pytest.raises(structx.SchemaError, match=message):
            client.extract(structx.Article(text="a", id="x"), _AsyncChecked)
        # A batch fails as a whole, not once per article.
        with pytest.raises(structx.SchemaError, match=message):
            list(structx.extract_many([tmp_path], client, _AsyncChecked))
    assert server.requests == []
