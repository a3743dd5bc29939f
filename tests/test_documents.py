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
        (b"caf\xe9", "not UTF-8 text (invalid byte at offset 3)"),
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
