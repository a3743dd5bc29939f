"""Reading articles from disk, with a clear error for anything that is not article text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from structx._errors import InputError
from structx._models import Article

__all__ = ["MAX_ARTICLE_BYTES", "iter_article_files", "read_article"]

#: Articles larger than this are refused before any request is sent.
MAX_ARTICLE_BYTES = 2_000_000
_SNIFF_BYTES = 8192


def read_article(path: Path | str, *, max_bytes: int = MAX_ARTICLE_BYTES) -> Article:
    """Read one article file as UTF-8 text.

    Raises :class:`InputError` naming the file when it is missing, a
    directory, empty, binary, too large or not UTF-8.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=path) from None
    if path.is_dir():
        raise InputError("is a directory, not an article file", path=path)
    if size > max_bytes:
        raise InputError(f"file is {size:,} bytes; the limit is {max_bytes:,}", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=path) from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise InputError("binary file (contains NUL bytes), not article text", path=path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (invalid byte at offset {exc.start})", path=path) from None
    if not text.strip():
        raise InputError("empty file: no article text", path=path)
    return Article(text=text, id=path.stem, source=str(path))


def iter_article_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Expand files and directories into article files, in a stable order.

    Directories are walked recursively; hidden files and folders are skipped.
    Paths that do not exist are yielded as given, so that reading them
    reports the problem for that path alone.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                if child.is_file():
                    yield child
        else:
            yield path
