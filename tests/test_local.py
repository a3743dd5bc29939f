"""The embedded default without its server: assembling the model, choosing it, and pacing a batch to its slots.

The model packages are stood in for by small distributions written on
``sys.path`` (their ``__init__`` raises, proving structx never imports them);
the server by the scripted one. tests/test_live_local.py runs the real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import shutil
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

import structx
from structx._cli import app
from structx._local import LOCAL_MODELS, LocalModel, ensure_model, slot_context
from structx.testing import Reply, ScriptedServer
from structx_schemas import ArticleExtraction
from tests.cassettes import FAULT_ARTICLE, ROOT, seed_answer, seed_article

PART_SIZE = 1000


def _fake_model(site: Path, parts: list[bytes], *, package: str = "structx-fake-part{}") -> LocalModel:
    """Install ``parts`` as the distributions ``package.format(n)`` 1.0 under ``site``; the model they make."""
    for number, content in enumerate(parts, start=1):
        name = package.format(number).replace("-", "_")
        data = site / name / "data" / f"part{number:02d}.bin"
        data.parent.mkdir(parents=True)
        data.write_bytes(content)
        (site / name / "__init__.py").write_text("raise RuntimeError('structx imported a model package')\n")
        info = site / f"{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.format(number)}\nVersion: 1.0\n")
        (info / "RECORD").write_text(
            f"{name}/__init__.py,,\n{name}/data/part{number:02d}.bin,,\n{info.name}/RECORD,,\n"
        )
    whole = b"".join(parts)
    return LocalModel(
        name="Fake-Model",
        file_name="fake.gguf",
        package=package,
        version="1.0",
        parts=len(parts),
        part_size=PART_SIZE,
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    assert not [name for name in sys.modules if name.startswith("structx_fake")], "a model package was imported"


PARTS = [b"G" * PART_SIZE, b"U" * PART_SIZE, b"F" * 300]


def test_the_model_is_joined_from_its_parts_in_order_and_reused(site: Path, tmp_path: Path) -> None:
    model = _fake_model(site, PARTS)
    cache = tmp_path / "cache" / "models"
    path = ensure_model(model, cache)
    assert path == cache / "fake.gguf" and path.read_bytes() == b"".join(PARTS)
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.verified"]  # no temporary file left
    # A second run uses the assembled file: the packages are no longer needed.
    for number in (1, 2, 3):
        (site / f"structx_fake_part{number}" / "data" / f"part{number:02d}.bin").unlink()
    assert ensure_model(model, cache) == path


def test_a_damaged_model_file_is_assembled_again(site: Path, tmp_path: Path) -> None:
    model = _fake_model(site, PARTS)
    path = ensure_model(model, tmp_path)
    path.write_bytes(b"X" * model.size)  # same size, other bytes, newer mtime: the stamp no longer applies
    assert ensure_model(model, tmp_path).read_bytes() == b"".join(PARTS)


def test_a_missing_package_is_named(site: Path, tmp_path: Path) -> None:
    model = _fake_model(site, PARTS)
    shutil.rmtree(site / "structx_fake_part2-1.0.dist-info")
    message = "needs the package structx-fake-part2==1.0, which is not installed; install it with: pip install"
    with pytest.raises(structx.LocalModelUnavailable, match=re.escape(message) + r" 'structx\[local\]'"):
        ensure_model(model, tmp_path)
    assert not list(tmp_path.glob("*.gguf*"))


def test_another_version_of_a_package_is_named(site: Path, tmp_path: Path) -> None:
    model = dataclasses.replace(_fake_model(site, PARTS), version="2.0")
    message = "needs structx-fake-part1==2.0, but version 1.0 is installed"
    with pytest.raises(structx.LocalModelUnavailable, match=re.escape(message)):
        ensure_model(model, tmp_path)


def test_a_part_of_the_wrong_size_is_named(site: Path, tmp_path: Path) -> None:
    model = _fake_model(site, [b"G" * PART_SIZE, b"U" * (PART_SIZE - 1), b"F" * 301])
    message = "part02.bin from structx-fake-part2==1.0 holds 999 bytes, not 1,000"
    with pytest.raises(structx.LocalModelUnavailable, match=re.escape(message)):
        ensure_model(model, tmp_path)


def test_a_checksum_mismatch_leaves_no_model_behind(site: Path, tmp_path: Path) -> None:
    model = dataclasses.replace(_fake_model(site, PARTS), sha256="0" * 64)
    actual = hashlib.sha256(b"".join(PARTS)).hexdigest()
    with pytest.raises(structx.LocalModelUnavailable, match=f"has SHA-256 {actual}, not {'0' * 64}"):
        ensure_model(model, tmp_path)
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]  # neither the model nor a temporary file


def test_an_unwritable_model_folder_is_one_clear_error(site: Path, tmp_path: Path) -> None:
    model = _fake_model(site, PARTS)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(structx.LocalModelUnavailable, match=r"cannot write the embedded model to .*STRUCTX_MODEL_DIR"):
        ensure_model(model, blocker / "models")


def test_the_local_extra_pins_every_part_of_both_models_and_the_server() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    local = set(pyproject["project"]["optional-dependencies"]["local"])
    parts = {model.requirement(n) for model in LOCAL_MODELS.values() for n in range(1, model.parts + 1)}
    assert local == parts | {"xllamacpp==2026.10.11549"}
    assert set(LOCAL_MODELS) == set(structx.LocalModelChoice)
    for model in LOCAL_MODELS.values():  # the parts add up to the file
        assert sum(model.expected_part_size(n) for n in range(1, model.parts + 1)) == model.size
        assert 0 < model.expected_part_size(model.parts) <= model.part_size


def test_a_slot_holds_a_whole_chunk_the_instructions_and_the_answer() -> None:
    assert slot_context(12_000, 2048) >= 12_000 // 3 + 2048 + 2_000
    assert slot_context(None, 2048) == 32_768  # no chunking: the models' whole context
    assert slot_context(1_000, 100) == 8192


# -- the configuration --------------------------------------------------------------------------


def test_the_model_folder_comes_from_the_environment_in_from_env_only(tmp_path: Path) -> None:
    assert structx.Config.from_env({"STRUCTX_MODEL_DIR": str(tmp_path)}).model_dir == tmp_path
    assert structx.Config.from_env({"XDG_CACHE_HOME": str(tmp_path)}).model_dir == tmp_path / "structx" / "models"
    assert structx.Config.from_env({"XDG_CACHE_HOME": "relative"}).model_dir is None  # the XDG spec ignores it
    assert structx.Config.from_env({}).model_dir is None
    assert structx.Config(model_dir=str(tmp_path)).model_dir == tmp_path


def test_an_unknown_local_model_is_a_config_error() -> None:
    message = "local_model 'gpt-5' is not one of: qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"
    with pytest.raises(structx.ConfigError, match=re.escape(message)):
        structx.Config(local_model="gpt-5")  # type: ignore[arg-type]
    assert structx.Config().local_model == structx.DEFAULT_LOCAL_MODEL


def _dry_run_model(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["extract", *args, "--dry-run"], env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""})
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout[result.stdout.index("\n{") :])
    return str(body["model"])


def test_local_model_chooses_the_embedded_model_from_the_command_line_or_structx_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    article = tmp_path / "a.txt"
    article.write_text(seed_article(FAULT_ARTICLE).text, encoding="utf-8")
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    assert _dry_run_model([str(article)]) == structx.EMBEDDED_MODEL_NAME
    assert _dry_run_model([str(article), "--local-model", "qwen2.5-coder-1.5b"]) == "Qwen2.5-Coder-1.5B-Instruct"
    (tmp_path / "structx.toml").write_text('local-model = "qwen2.5-coder-1.5b"\n', encoding="utf-8")
    assert _dry_run_model([str(article)]) == "Qwen2.5-Coder-1.5B-Instruct"
    (tmp_path / "structx.toml").write_text('local-model = "qwen-9000"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["extract", str(article), "--dry-run"])
    assert result.exit_code == 2
    assert 'structx.toml: local-model = "qwen-9000": must be one of "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b"' in (
        result.stderr
    )


# -- the embedded default as the client drives it -------------------------------------------------


class _FakeEmbeddedServer:
    """Stands in for structx.EmbeddedServer: the scripted server answers, the arguments are kept."""

    made: ClassVar[list[dict[str, Any]]] = []
    base_url = ""

    def __init__(self, **options: Any) -> None:
        self.made.append(options)
        self.model_name = LOCAL_MODELS[options["local_model"]].name

    def start(self) -> str:
        return self.base_url

    def stop(self) -> None:
        pass


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    with ScriptedServer(default=Reply.answer(seed_answer(FAULT_ARTICLE)), owned_by="llamacpp") as server:
        monkeypatch.setattr(_FakeEmbeddedServer, "base_url", server.base_url)
        monkeypatch.setattr(_FakeEmbeddedServer, "made", [])
        monkeypatch.setattr("structx._api.EmbeddedServer", _FakeEmbeddedServer)
        yield server


def test_the_embedded_default_always_bounds_sampling_and_sends_no_penalty(embedded: ScriptedServer) -> None:
    config = structx.Config(
        max_tokens=None, local_model="qwen2.5-coder-1.5b", model_dir="/somewhere", extraction_format="excerpts"
    )
    result = structx.extract(seed_article(FAULT_ARTICLE), config=config)
    (request,) = embedded.requests  # no GET /models: the embedded server needs no probe
    assert request.body["model"] == "Qwen2.5-Coder-1.5B-Instruct"
    assert request.body["response_format"]["type"] == "json_object" and result.mode == "json_object_schema"
    assert (request.body["temperature"], request.body["max_tokens"]) == (0.0, 2048)
    assert "frequency_penalty" not in request.body
    (options,) = _FakeEmbeddedServer.made
    assert options["local_model"] == "qwen2.5-coder-1.5b" and options["model_dir"] == Path("/somewhere")
    assert options["n_ctx"] >= slot_context(config.chunk_chars, 2048)


def test_the_embedded_default_asks_in_the_cited_format_with_a_budget_per_call(
    embedded: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    lists = ("visits", "meetings", "militia_stances", "quoted_sources")
    replies = [Reply.answer({name: []}) for name in lists]
    replies.append(Reply.answer({"title": "T", "outlet": None, "byline": None, "published": None}))
    with ScriptedServer(replies, owned_by="llamacpp") as server:
        monkeypatch.setattr(_FakeEmbeddedServer, "base_url", server.base_url)
        result = structx.extract(seed_article(FAULT_ARTICLE), config=structx.Config())
    bodies = [request.body for request in server.requests]
    assert [sorted(body["response_format"]["schema"]["properties"]) for body in bodies] == [
        [name] for name in lists
    ] + [["byline", "outlet", "published", "title"]]
    assert [body["max_tokens"] for body in bodies] == [768, 768, 768, 768, 256]
    assert all(body["temperature"] == 0.0 and body["model"] == structx.EMBEDDED_MODEL_NAME for body in bodies)
    assert result.value.title == "T" and result.attempts == 5


def test_a_slow_answer_from_the_embedded_server_is_waited_for(embedded: ScriptedServer) -> None:
    embedded.default = dataclasses.replace(Reply.answer(seed_answer(FAULT_ARTICLE)), delay=1.0)
    config = structx.Config(timeout=0.2, max_retries=0, extraction_format="excerpts")
    result = structx.extract(seed_article(FAULT_ARTICLE), config=config)
    assert result.value == seed_answer(FAULT_ARTICLE)
    assert len(embedded.requests) == 1  # waited for, not timed out and sent again


def test_a_batch_on_the_embedded_server_sends_one_request_at_a_time(
    embedded: ScriptedServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Each answer takes a while, so that requests sent at once would overlap.
    embedded.default = dataclasses.replace(Reply.answer(seed_answer(FAULT_ARTICLE)), delay=0.3)
    for number in range(3):
        (tmp_path / f"{number}.txt").write_text(seed_article(FAULT_ARTICLE).text + f"\n\nNote {number}.\n")
    config = structx.Config(extraction_format="excerpts")  # one request an article
    with caplog.at_level(logging.INFO, logger="structx"), structx.Client(config) as client:
        outcomes = list(structx.extract_many([tmp_path], client, ArticleExtraction, concurrency=4))
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert (len(embedded.requests), embedded.max_in_flight) == (3, 1)
    assert "concurrency 4 lowered to 1: the embedded server works on 1 request(s) at a time" in caplog.text


def test_other_endpoints_get_the_concurrency_asked_for(tmp_path: Path) -> None:
    for number in range(3):
        (tmp_path / f"{number}.txt").write_text(seed_article(FAULT_ARTICLE).text + f"\n\nNote {number}.\n")
    answer = dataclasses.replace(Reply.answer(seed_answer(FAULT_ARTICLE)), delay=0.3)
    with ScriptedServer(default=answer) as server:
        config = structx.Config(base_url=server.base_url, model="m", structured_output="json_schema")
        with structx.Client(config) as client:
            outcomes = list(structx.extract_many([tmp_path], client, ArticleExtraction, concurrency=4))
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert server.max_in_flight == 3
