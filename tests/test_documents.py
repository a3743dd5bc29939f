"""Reading article files: every kind of bad input gets an error that names the file."""

from __future__ import annotations

from pathlib import Path

import pytest

import structx


def test_reads_utf8_text_and_names_the_article_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "qaani-visit.txt"
    path.write_text("Qaani visited Baghdad’s Green Zone.", encoding="utf-8")
    article = structx.read_article(path)
    assert (article.id, article.text, article.source) == (
        "qaani-visit",
        "Qaani visited Baghdad’s Green Zone.",
        str(path),
    )


def test_a_byte_order_mark_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffKataib Hezbollah".encode())
    assert structx.read_article(path).text == "Kataib Hezbollah"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file: no article text"),
        (b" \n\t\n", "empty file: no article text"),
        (b"text\x00with a NUL", "binary file (contains NUL bytes), not article text"),
        (b"caf\xe9", "not UTF-8 text (invalid byte at offset 3); convert it to UTF-8 first"),
    ],
)
def test_unreadable_content_is_an_input_error_naming_the_file(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(structx.InputError) as caught:
        structx.read_article(path)
    assert caught.value.reason == reason
    assert str(caught.value) == f"{path}: {reason}"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(structx.InputError, match="no such file"):
        structx.read_article(tmp_path / "nope.txt")
    with pytest.raises(structx.InputError, match="is a directory"):
        structx.read_article(tmp_path)


def test_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 101, encoding="utf-8")
    with pytest.raises(structx.InputError, match="file is 101 bytes; the limit is 100"):
        structx.read_article(path, max_bytes=100)


def test_directories_expand_recursively_in_order_without_hidden_files(tmp_path: Path) -> None:
    for name in ["b.txt", "a.txt", "sub/c.txt", ".hidden.txt", ".git/x.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("text", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in structx.iter_article_files([tmp_path])]
    assert found == ["a.txt", "b.txt", "sub/c.txt"]
    assert list(structx.iter_article_files([tmp_path / "missing.txt"])) == [tmp_path / "missing.txt"]


def test_ids_are_paths_inside_the_directory_given_and_names_otherwise(tmp_path: Path) -> None:
    for name, text in [("news/a/story.txt", "one"), ("news/b/story.txt", "two"), ("news/top.html", "<p>three</p>")]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    from_directory = [a for a in _collect([tmp_path / "news"]) if isinstance(a, structx.Article)]
    assert [(a.id, a.text) for a in from_directory] == [("a/story", "one"), ("b/story", "two"), ("top", "three")]
    named = [a for a in _collect([tmp_path / "news/a/story.txt"]) if isinstance(a, structx.Article)]
    assert [a.id for a in named] == ["story"]


def _collect(sources: list[object], stdin: str | None = None) -> list[structx.Article | structx.InputError]:
    import io

    return list(structx.iter_articles(sources, stdin=io.StringIO(stdin) if stdin is not None else None))  # type: ignore[arg-type]


def test_jsonl_lines_become_articles_with_their_metadata_and_bad_lines_errors(tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_text(
        '{"id": "a1", "text": "Qaani visited Baghdad.", "title": "T", "url": "https://x", "lang": "en"}\n'
        "not json\n"
        '{"id": "a3"}\n'
        "\n"
        '{"text": "No id here."}\n',
        encoding="utf-8",
    )
    first, bad_json, no_text, no_id = _collect([path])
    assert isinstance(first, structx.Article)
    assert (first.id, first.text, first.metadata) == (
        "a1",
        "Qaani visited Baghdad.",
        {"title": "T", "url": "https://x", "lang": "en"},
    )
    assert isinstance(bad_json, structx.InputError) and bad_json.reason.startswith("line 2 is not JSON")
    assert bad_json.article_id == "batch:2"
    assert isinstance(no_text, structx.InputError) and "line 3 has no article text" in no_text.reason
    assert isinstance(no_id, structx.Article) and no_id.id == no_id.content_hash[:16]


def test_stdin_as_one_article_or_as_jsonl() -> None:
    (article,) = _collect(["-"], stdin="Kataib Hezbollah said no.\n")
    assert isinstance(article, structx.Article) and (article.id, article.text) == (
        "stdin",
        "Kataib Hezbollah said no.\n",
    )
    parsed = _collect(["-"], stdin='{"id": "x", "text": "one"}\n{"id": "y", "text": "two"}\n')
    assert [a.id for a in parsed if isinstance(a, structx.Article)] == ["x", "y"]
    (empty,) = _collect(["-"], stdin="  ")
    assert isinstance(empty, structx.InputError)


def test_glob_patterns_expand(tmp_path: Path) -> None:
    for name in ["a.txt", "b.txt", "c.md"]:
        (tmp_path / name).write_text("text " + name, encoding="utf-8")
    found = _collect([str(tmp_path / "*.txt")])
    assert [a.id for a in found if isinstance(a, structx.Article)] == ["a", "b"]


def test_html_is_parsed_to_text_and_utf16_is_decoded(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>x</title><style>p{}</style></head><body><script>var a=1;</script>"
        "<h1>Qaani in Baghdad</h1><p>He met <b>Hadi al-Ameri</b>&nbsp;and others.</p></body></html>",
        encoding="utf-8",
    )
    assert structx.read_article(page).text == "Qaani in Baghdad\nHe met Hadi al-Ameri and others."
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("Qaani’s visit".encode("utf-16"))
    assert structx.read_article(utf16).text == "Qaani’s visit"


def test_a_bad_byte_costs_one_jsonl_line_and_bad_stdin_is_an_input_error(tmp_path: Path) -> None:
    import io

    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"id": "a", "text": "one"}\n{"id": "b", "text": "caf\xe9"}\n{"id": "c", "text": "three"}\n')
    items = list(structx.iter_articles([path]))
    assert [i.id for i in items if isinstance(i, structx.Article)] == ["a", "c"]
    (bad,) = [i for i in items if isinstance(i, structx.InputError)]
    assert bad.article_id == "b:2" and "line 2 is not UTF-8" in bad.reason

    class Stdin(io.StringIO):
        buffer = io.BytesIO(b"caf\xe9 au lait")

    (error,) = structx.iter_articles(["-"], stdin=Stdin())
    assert isinstance(error, structx.InputError) and "not UTF-8" in error.reason


def test_a_name_too_long_for_the_file_system_is_an_input_error(tmp_path: Path) -> None:
    (error,) = structx.iter_articles([tmp_path / ("x" * 300 + ".txt")])
    assert isinstance(error, structx.InputError) and "cannot read file (File name too long)" in error.reason
