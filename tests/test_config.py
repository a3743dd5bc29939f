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


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temperature": "hot"}, "temperature must be a number, got 'hot' (str)"),
        ({"temperature": 3}, "temperature must be from 0 to 2, got 3"),
        ({"model": 123}, "model must be a non-empty string or None, got 123 (int)"),
        ({"model": " "}, "model must be a non-empty string or None, got ' ' (str)"),
        ({"base_url": 8080}, "base_url must be a non-empty string or None, got 8080 (int)"),
        ({"timeout": "5"}, "timeout must be a number, got '5' (str)"),
        ({"retry_budget": float("inf")}, "retry_budget must be a number, got inf (float)"),
        ({"max_retries": 2.5}, "max_retries must be a whole number, got 2.5 (float)"),
        ({"max_reasks": True}, "max_reasks must be a whole number, got True (bool)"),
        ({"max_tokens": "2048"}, "max_tokens must be a whole number, got '2048' (str)"),
        ({"frequency_penalty": 5}, "frequency_penalty must be from -2 to 2"),
        ({"chunk_chars": 15000.0}, "chunk_chars must be a whole number, got 15000.0 (float)"),
        ({"chunk_overlap": -1}, "chunk_overlap must be at least 0"),
        ({"max_article_bytes": 0}, "max_article_bytes must be positive, got 0"),
        ({"max_article_bytes": "2MB"}, "max_article_bytes must be a whole number, got '2MB' (str)"),
        ({"grounding": "lenient"}, "grounding 'lenient' is not one of: keep, drop, fail"),
    ],
)
def test_every_field_is_checked_for_type_and_range_and_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(structx.ConfigError) as caught:
        structx.Config(**values)  # type: ignore[arg-type]
    assert str(caught.value) == message or str(caught.value).startswith(message)


def test_a_bad_key_is_named_without_being_shown() -> None:
    for key in (b"sk-very-secret", "  "):
        with pytest.raises(structx.ConfigError, match=r"^api_key must be a non-empty string or None") as caught:
            structx.Config(api_key=key)  # type: ignore[arg-type]
        assert "very-secret" not in str(caught.value)


def test_whole_numbers_are_numbers_and_none_leaves_optional_fields_to_the_endpoint() -> None:
    config = structx.Config(timeout=5, temperature=1, max_tokens=None, frequency_penalty=None, chunk_chars=None)
    assert (config.timeout, config.temperature, config.max_tokens, config.chunk_chars) == (5, 1, None, None)


@pytest.mark.parametrize("url", ["http://x[red]y/v1", "http://127.0.0.1:port/v1", "http://[::1/v1"])
def test_a_base_url_that_cannot_be_parsed_is_a_config_error(url: str) -> None:
    with pytest.raises(structx.ConfigError, match="base URL is not a valid URL"):
        structx.Config(base_url=url)


def test_a_config_can_be_pickled_and_copied_for_worker_processes() -> None:
    import copy
    import pickle

    config = structx.Config(base_url="http://127.0.0.1:1/v1", headers={"X-Team": "news"})
    assert pickle.loads(pickle.dumps(config)) == config
    assert copy.deepcopy(config).headers == {"X-Team": "news"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("headers", {"X-Team": "café"}),
        ("headers", {"X-Team": "a\r\nb"}),
        ("api_key", "sk-ünicode"),
        ("api_key", " sk-x"),
    ],
)
def test_header_values_and_keys_that_http_cannot_carry_are_config_errors(field: str, value: object) -> None:
    with pytest.raises(structx.ConfigError) as raised:
        structx.Config(base_url="http://127.0.0.1:1/v1", **{field: value})  # type: ignore[arg-type]
    assert "ünicode" not in str(raised.value) and "café" not in str(raised.value)
