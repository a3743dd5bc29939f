"""The cassettes themselves: no secrets, safe to load, every one's source documented."""

from __future__ import annotations

import json
import re

import pytest
import yaml

import structx
from structx._local import LOCAL_MODELS
from tests.cassettes import CASSETTES, RECORDING_API_KEY, SCRUBBED_HEADERS

CASSETTE_FILES = sorted(CASSETTES.rglob("*.yaml"))
KEY_PATTERN = re.compile(r"\b(sk-[A-Za-z0-9_-]{8,}|Bearer\s+\S+)")


def test_there_are_cassettes_from_both_sources() -> None:
    names = {path.relative_to(CASSETTES).parts[0] for path in CASSETTE_FILES}
    assert names == {"scripted", "llama_cpp"}


@pytest.mark.parametrize("path", CASSETTE_FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_secret_in_any_cassette(path: object) -> None:
    text = path.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert RECORDING_API_KEY not in text
    assert not KEY_PATTERN.search(text)
    data = yaml.safe_load(text)  # a safe loader: cassettes hold data, never code
    for interaction in data["interactions"]:
        for side in ("request", "response"):
            headers = {name.lower() for name in interaction[side].get("headers", {})}
            assert not headers & set(SCRUBBED_HEADERS), f"{side} keeps {headers & set(SCRUBBED_HEADERS)}"


def test_every_cassette_has_its_source_documented() -> None:
    provenance = json.loads((CASSETTES / "provenance.json").read_text(encoding="utf-8"))
    readme = (CASSETTES / "README.md").read_text(encoding="utf-8")
    for path in CASSETTE_FILES:
        name = path.relative_to(CASSETTES).as_posix()
        entry = provenance[name]
        assert {"server", "model", "date", "command", "what"} <= set(entry)
        assert f"`{name}`" in readme
        if name.startswith("scripted/"):
            assert "ScriptedServer (scripted, not a model)" in entry["server"]
        else:
            model = LOCAL_MODELS[structx.DEFAULT_LOCAL_MODEL]
            assert "xllamacpp" in entry["server"] and model.name in entry["model"] and model.sha256 in entry["model"]
    assert set(provenance) == {p.relative_to(CASSETTES).as_posix() for p in CASSETTE_FILES}
