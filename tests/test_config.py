"""Configuration: explicit values, the environment read in one place, secrets kept out of sight."""

from __future__ import annotations

import pytest

import structx


def test_from_env_reads_the_three_variables() -> None:
    env = {"OPENAI_API_KEY": "sk-abc", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "STRUCTX_MODEL": "qwen"}
    config = structx.Config.from_env(env)
    assert (config.api_key, config.base_url, config.model) == ("sk-abc", "http://127.0.0.1:8000/v1", "qwen")
    assert not config.uses_embedded_model


def test_explicit_values_win_over_the_environment() -> None:
    config = structx.Config.from_env({"STRUCTX_MODEL": "a", "OPENAI_BASE_URL": "http://h:1/v1"}, model="b")
    assert (config.model, config.base_url) == ("b", "http://h:1/v1")


def test_nothing_configured_means_the_embedded_model() -> None:
    assert structx.Config.from_env({}).uses_embedded_model
    assert structx.Config.from_env({"OPENAI_API_KEY": ""}).uses_embedded_model


def test_the_key_never_shows_in_repr() -> None:
    config = structx.Config(api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"base_url": "localhost:8000"}, "is not an http\\(s\\) URL"),
        ({"timeout": 0}, "timeout must be positive"),
        ({"max_retries": -1}, "max_retries must be zero or more"),
        ({"max_tokens": 0}, "max_tokens must be positive"),
        ({"chunk_chars": 100}, "chunk_chars must be at least 200"),
        ({"chunk_chars": 1500, "chunk_overlap": 1000}, "chunk_overlap must be"),
        ({"structured_output": "xml"}, "structured_output 'xml' is not one of: auto, tools"),
    ],
)
def test_invalid_values_are_config_errors(values: dict[str, object], message: str) -> None:
    with pytest.raises(structx.ConfigError, match=message):
        structx.Config(**values)  # type: ignore[arg-type]


def test_a_url_with_credentials_is_printed_without_them() -> None:
    with pytest.raises(structx.ConfigError) as caught:
        structx.Config(base_url="ftp://user:hunter2@host/v1?key=sk-1")
    assert "hunter2" not in str(caught.value) and "sk-1" not in str(caught.value)


def test_client_and_config_together_is_a_usage_error() -> None:
    with structx.Client(structx.Config(api_key="sk-x")) as client, pytest.raises(structx.ConfigError):
        structx.extract("text", client=client, config=structx.Config(api_key="sk-y"))
