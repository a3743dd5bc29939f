"""Reading articles: files, directories, glob patterns, JSONL, HTML and standard input.

Anything that is not article text gets a clear :class:`InputError` that
names the file (and line), and never stops the other articles.
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any

from structx._config import MAX_ARTICLE_BYTES
from structx._errors import InputError
from structx._models import Article

__all__ = [
    "MAX_ARTICLE_BYTES",
    "STDIN",
    "check_article",
    "count_articles",
    "html_to_text",
    "iter_article_files",
    "iter_articles",
    "read_article",
]

#: The path that stands for standard input.
STDIN = "-"
_GLOB_CHARS = frozenset("*?[")
_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})
_SNIFF_BYTES = 8192
#: A str source with a part longer than a file name can be, or with a line break, is text by mistake.
_NAME_MAX = 255


def read_article(path: Path | str, *, max_bytes: int = MAX_ARTICLE_BYTES, article_id: str | None = None) -> Article:
    """Read one article file as UTF-8 text; its id is ``article_id``, or else the file name without suffix.

    Raises :class:`InputError` naming the file when it is missing, a
    directory, empty, binary, too large or not UTF-8.
    """
    path = Path(path)
    shown = _printable(str(path))
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("broken symbolic link" if path.is_symlink() else "no such file", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=shown) from None
    if path.is_dir():
        if path.is_symlink():
            raise InputError("a symbolic link to a directory; such links are not followed", path=shown)
        raise InputError("is a directory, not an article file", path=shown)
    if size > max_bytes:
        raise InputError(f"file is {size:,} bytes; the limit is {max_bytes:,}", path=shown)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read file ({exc.strerror})", path=shown) from None
    text = _decode(data, shown)
    if path.suffix.lower() in _HTML_SUFFIXES:
        text = html_to_text(text)
    if not text.strip():
        raise InputError("empty file: no article text", path=shown)
    return Article(text=text, id=article_id or _printable(path.stem), source=shown)


def check_article(article: Article, *, max_bytes: int = MAX_ARTICLE_BYTES) -> None:
    """Raise :class:`InputError` naming the article's source when its text is blank or too large.

    The size is the text's UTF-8 size, so that the same text has the same
    limit whether it came from a file, a JSONL line, standard input or an
    :class:`Article` made in code.
    """
    problem = _text_problem(article.text, max_bytes)
    if problem is not None:
        raise InputError(problem, path=article.source, article_id=article.id)


def _text_problem(text: str, max_bytes: int) -> str | None:
    if not text.strip():
        return "no article text (the text is empty or blank)"
    if len(text) * 4 > max_bytes:  # UTF-8 takes at most 4 bytes a character: only then count them
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            return f"text is {size:,} bytes; the limit is {max_bytes:,}"
    return None


def _printable(name: str) -> str:
    """A file name that was not valid UTF-8, with its bad bytes written as \\xNN.

    Such names come from the file system as lone surrogates, which no UTF-8
    output (the result lines, the run database) can hold.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _decode(data: bytes, path: Path | str) -> str:
    """UTF-8 (with or without a byte order mark) or BOM-marked UTF-16; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise InputError("marked as UTF-16 but not valid UTF-16", path=path) from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise InputError("binary file (contains NUL bytes), not article text", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8 first", path=path
        ) from None


class _TextExtractor(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "noscript", "template", "head", "svg"})
    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "article", "section", "blockquote", "title"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML page: scripts and styles dropped, one line per block."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return "\n".join(line for line in lines if line)


def iter_articles(
    sources: Iterable[Article | InputError | Path | str],
    *,
    stdin: IO[str] | None = None,
    max_bytes: int = MAX_ARTICLE_BYTES,
) -> Iterator[Article | InputError]:
    """Every article the sources name, read lazily, or the error that stands for it.

    A source is an :class:`Article` (text already in hand), or a path to read
    (a :class:`~pathlib.Path` or a ``str``; a ``str`` is always a path here,
    never article text): a file, a directory (walked recursively), a glob
    pattern, a ``.jsonl`` file with one article per line (``id``, ``text``,
    optional ``title``, ``url``, ``published``; other keys kept as
    metadata), or ``-`` for standard input (JSONL when it starts with ``{``,
    else one article).

    Articles that are blank or larger than ``max_bytes`` become an
    :class:`InputError` naming their source (``file:line`` for JSONL): a
    file's size counts, otherwise the text's UTF-8 size.

    Ids: a file's id is its path inside the directory that was given, without
    the suffix (``news/iraq/a.txt`` from ``news`` is ``iraq/a``); a file named
    directly, or by a pattern, is its name without suffix. A JSONL line's id
    is its ``id`` field, or else the start of its content hash.
    """
    for source in sources:
        if isinstance(source, InputError):
            yield source
        elif isinstance(source, Article):
            try:
                check_article(source, max_bytes=max_bytes)
            except InputError as exc:
                yield exc
            else:
                yield source
        elif not isinstance(source, str | os.PathLike):
            raise TypeError(
                f"a source is a structx.Article or a path (str or Path), not {type(source).__name__}: {source!r:.80}"
            )
        elif str(source) == STDIN:
            yield from _read_stdin(stdin or sys.stdin, max_bytes)
        elif isinstance(source, str) and not _names_a_path(source):
            yield _not_a_path(source)
        else:
            for path, article_id in _article_paths([source]):
                if path.suffix.lower() == ".jsonl":
                    yield from _read_jsonl_file(path, max_bytes)
                else:
                    try:
                        yield read_article(path, max_bytes=max_bytes, article_id=article_id)
                    except InputError as exc:
                        yield InputError(exc.reason, path=exc.path, article_id=article_id)


def count_articles(sources: Iterable[Article | InputError | Path | str]) -> int | None:
    """How many items :func:`iter_articles` will yield for ``sources``, found cheaply.

    One for each :class:`Article`, error and article file (files are not
    read), and one for each non-blank line of a JSONL file (scanned, not
    parsed). An article given twice is counted twice, though a batch
    extracts it once. None when standard input is among the sources: it can
    be read only once. For a progress bar's total.
    """
    total = 0
    for source in sources:
        if isinstance(source, Article | InputError):
            total += 1
        elif str(source) == STDIN:
            return None
        elif isinstance(source, str) and not _names_a_path(source):
            total += 1
        else:
            for path, _ in _article_paths([source]):
                total += _count_jsonl_lines(path) if path.suffix.lower() == ".jsonl" else 1
    return total


def _count_jsonl_lines(path: Path) -> int:
    """The non-blank lines of a JSONL file, as :func:`_parse_jsonl` reads them: one outcome each."""
    try:
        handle = path.open("rb")
    except OSError:
        return 1  # its one error
    with handle:
        return sum(not _blank_line(line, number) for number, line in enumerate(handle, start=1))


def _names_a_path(source: str) -> bool:
    """False for a str that names nothing on disk and looks like text rather than a path."""
    if "\n" not in source and all(len(part.encode(errors="replace")) <= _NAME_MAX for part in source.split("/")):
        return True  # reading it says what is wrong with it
    matches = _GLOB_CHARS & set(source) and glob.glob(source, recursive=True)  # noqa: PTH207 - any pattern
    return os.path.lexists(source) or bool(matches)


def _not_a_path(source: str) -> InputError:
    shown = _printable(" ".join(source.split())[:40]) + "..."
    return InputError(
        "no such file, and this looks like article text: sources are paths; pass text as structx.Article(text=...)",
        path=shown,
        article_id=Article(text=source).id,
    )


def _read_stdin(stream: IO[str], max_bytes: int) -> Iterator[Article | InputError]:
    # Bytes where the stream has them, decoded like a file, so that bad bytes
    # become an input error instead of a crash.
    raw = getattr(stream, "buffer", None)
    if raw is not None:
        try:
            text = _decode(raw.read(), "<stdin>")
        except InputError as exc:
            yield exc
            return
    else:
        text = stream.read()
    if text.lstrip().startswith("{"):
        yield from _parse_jsonl(text.splitlines(), "<stdin>", max_bytes)
    elif not text.strip():
        yield InputError("standard input is empty: no article text", path="<stdin>")
    elif (problem := _text_problem(text, max_bytes)) is not None:
        yield InputError(problem, path="<stdin>", article_id="stdin")
    else:
        yield Article(text=text, id="stdin", source="<stdin>")


def _read_jsonl_file(path: Path, max_bytes: int) -> Iterator[Article | InputError]:
    shown = _printable(str(path))
    try:
        handle = path.open("rb")
    except OSError as exc:
        yield InputError(f"cannot read file ({exc.strerror})", path=shown)
        return
    with handle:
        yield from _parse_jsonl(handle, shown, max_bytes)


def _blank_line(line: bytes, number: int) -> bool:
    if line.strip():
        if line.isascii():
            return False
        try:
            return not _decode_line(line, number).strip()
        except UnicodeDecodeError:
            return False
    return True


def _decode_line(line: bytes, number: int) -> str:
    return line.decode("utf-8-sig" if number == 1 else "utf-8")


def _parse_jsonl(lines: Iterable[str | bytes], name: str, max_bytes: int) -> Iterator[Article | InputError]:
    for number, line in enumerate(lines, start=1):
        where = f"{name}:{number}"
        if isinstance(line, bytes):  # each line decoded alone: one bad byte costs one line
            try:
                raw = _decode_line(line, number)
            except UnicodeDecodeError as exc:
                yield InputError(f"line {number} is not UTF-8 (invalid byte at offset {exc.start})", path=where)
                continue
        else:
            raw = line
        if not raw.strip():
            continue
        try:
            record: Any = json.loads(raw)
        except json.JSONDecodeError as exc:
            yield InputError(f"line {number} is not JSON ({exc.msg})", path=where)
            continue
        if not isinstance(record, dict):
            yield InputError(f"line {number} is not a JSON object", path=where)
            continue
        text = record.pop("text", None)
        if not isinstance(text, str) or not text.strip():
            yield InputError(f'line {number} has no article text (a non-empty "text" field)', path=where)
            continue
        given = record.pop("id", None)
        article_id = str(given) if given not in (None, "") else ""
        if (problem := _text_problem(text, max_bytes)) is not None:
            yield InputError(f"line {number}: {problem}", path=where, article_id=article_id or None)
            continue
        yield Article(text=text, id=article_id, source=where, metadata=record)


def iter_article_files(paths: Iterable[Path | str]) -> Iterator[Path]:
    """Expand files and directories into article files, in a stable order.

    Directories are walked recursively; hidden files and folders are skipped,
    and links to directories are not followed. Paths that do not exist, and
    links that are broken, loop or lead to a directory, are yielded as they
    are, so that reading them reports the problem for that path alone.
    """
    for path, _ in _article_paths(paths):
        yield path


def _article_paths(paths: Iterable[Path | str]) -> Iterator[tuple[Path, str]]:
    """Each article file with its id: the path inside a given directory, else the name, without suffix."""
    for raw in paths:
        path = Path(raw)
        try:
            exists, is_dir = path.exists(), path.is_dir()
        except OSError:  # a name too long, say: reading it says so
            yield path, _printable(path.stem)
            continue
        if not exists and _GLOB_CHARS & set(str(raw)):
            matches = sorted(glob.glob(str(raw), recursive=True))  # noqa: PTH207 - any pattern, absolute too
            if matches:
                yield from _article_paths(matches)
                continue
        if is_dir:
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path)
                if any(part.startswith(".") for part in relative.parts):
                    continue
                # Links that are broken, loop or lead to a directory are yielded
                # too, so that reading them says why instead of skipping them.
                if child.is_file() or child.is_symlink():
                    yield child, _printable(relative.with_suffix("").as_posix())
        else:
            yield path, _printable(path.stem)
