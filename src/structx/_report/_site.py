"""The report as a static site: ``index.html``, a page per article and, with a dataset, per entity.

Every page is one self-contained HTML file (its CSS and script inline,
nothing fetched) so the folder opens from disk, can be zipped or mailed,
and reads without JavaScript: the script only adds the interactions
(marking a record's spans, showing a highlight's records, filtering the
index).

Article text and model output are untrusted. They reach a page only
through jinja2 with autoescape on, or through :mod:`._spans`, which escapes
text itself; nothing untrusted becomes a URL, a tag or an attribute name
(page names are made from article ids, see :func:`_slugs`). Each page also
carries a Content-Security-Policy that lets run only the page's own inline
script (by its SHA-256), so a mistake in escaping still runs nothing.

Files are written under a temporary name inside the output folder and
renamed into place; nothing is written outside it. A folder that is not
empty is refused unless ``force``; then the files of the previous report
(listed in its ``.structx-report``) that this one does not write are
removed, and nothing else in the folder is touched.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from structx._errors import UsageError
from structx._knowledge._dataset import Dataset
from structx._knowledge._rows import MentionRow, RecordRef, StanceRow
from structx._report._charts import dated_order, meetings_graph, visit_timeline
from structx._report._dataset import read_dataset
from structx._report._inputs import LineArticle, read_lines, record_anchor, run_totals, type_label
from structx._report._spans import Span, nest, render

__all__ = ["ReportSite", "write_report"]

MANIFEST = ".structx-report"
POSITION_CLASSES = {"supports": "pos-supports", "opposes": "pos-opposes", "conditional": "pos-conditional",
                    "unclear": "pos-unclear"}  # fmt: skip
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(slots=True)
class ReportSite:
    """What :func:`write_report` wrote, and the figures of its index page."""

    directory: Path
    files: list[Path]
    articles: int
    ok: int
    failed: int
    records: int
    ungrounded: int
    dropped: int
    #: Evidence spans drawn in the article texts (one per located excerpt of a kept record).
    highlights: int
    #: Articles whose text could not be read: their records are listed without highlights.
    without_text: int
    entity_pages: int = 0

    @property
    def index(self) -> Path:
        return self.directory / "index.html"

    def summary(self) -> str:
        """One line: articles, records, highlights and the pages written."""
        line = (
            f"{self.articles} articles ({self.ok} ok, {self.failed} failed): {self.records} records "
            f"({self.ungrounded} ungrounded, {self.dropped} dropped), {self.highlights} evidence spans highlighted"
        )
        if self.without_text:
            line += f"; {self.without_text} without article text"
        if self.entity_pages:
            line += f"; {self.entity_pages} entity pages"
        return line


def write_report(
    inputs: Iterable[Mapping[str, Any] | Path | str],
    out: Path | str,
    *,
    dataset: Dataset | Path | str | None = None,
    articles: Path | str | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
    force: bool = False,
) -> ReportSite:
    """Write the report on ``inputs`` into the folder ``out`` and return what was written.

    ``inputs`` are result lines, results files (JSONL) or folders of answers
    in the gold format. Each article's text is read from its line's
    ``source`` (a file, or ``file.jsonl:N``), relative to the current folder
    or the results file, or from ``articles`` (``<id>.txt``); without it the
    page says so and still lists the records. ``dataset`` (a
    :class:`Dataset`, or a folder written by ``structx merge``) adds the
    entity pages, the visit timeline, the meetings graph, the stance matrix
    and the source index. ``prices`` (model -> dollars per million prompt and
    completion tokens) prices the tokens; by default
    :data:`structx.LIST_PRICES`. Bad input raises an InputError naming the
    file; a folder that is not empty is refused unless ``force``.
    """
    out = Path(out)
    _check_output(out, force)
    read = read_lines(inputs, articles=Path(articles) if articles is not None else None)
    data = read_dataset(Path(dataset)) if isinstance(dataset, str | Path) else dataset
    site = _Site(read.articles, read.duplicate_ids, read.sources, data, prices)
    written = _write_files(out, site.folders, site.pages(), force)
    totals = site.totals
    return ReportSite(
        directory=out,
        files=written,
        articles=totals.lines,
        ok=totals.ok,
        failed=totals.failed,
        records=totals.records,
        ungrounded=totals.ungrounded,
        dropped=totals.dropped,
        highlights=totals.highlights,
        without_text=totals.without_text,
        entity_pages=len(data.entities) if data is not None else 0,
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("structx._report", "templates"),
        autoescape=True,  # every template, whatever its name: the pages hold untrusted text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = type_label
    env.filters["thousands"] = lambda n: f"{n:,}"
    env.filters["percent"] = lambda part, whole: f"{100 * part / whole:.1f}%" if whole else "n/a"
    return env


def _asset(name: str) -> str:
    return resources.files("structx._report").joinpath("static", name).read_text(encoding="utf-8")


def _slugs(ids: Iterable[str], prefix: str) -> dict[str, str]:
    """A file name for each id: its safe characters, with a hash of the id when anything was changed or taken.

    Ids are untrusted (``../x``, ``a/b``, names differing only in case on a
    case-insensitive disk), so a name keeps only ``[A-Za-z0-9._-]``, never
    starts with a dot, and is unique ignoring case.
    """
    names: dict[str, str] = {}
    taken: set[str] = set()
    for item in ids:
        base = _SAFE.sub("_", item)[:80].lstrip(".") or prefix
        if base != item or base.casefold() in taken:
            base = f"{base}-{hashlib.sha256(item.encode('utf-8')).hexdigest()[:10]}"
        names[item] = base
        taken.add(base.casefold())
    return names


class _Site:
    """The pages of one report, rendered in memory."""

    def __init__(
        self,
        articles: list[LineArticle],
        duplicate_ids: list[str],
        sources: list[str],
        dataset: Dataset | None,
        prices: Mapping[str, tuple[float, float]] | None,
    ) -> None:
        self.articles = articles
        self.duplicate_ids = duplicate_ids
        self.sources = sources
        self.dataset = dataset
        slugs = _slugs((a.id for a in articles), "article")
        for article in articles:
            article.slug = slugs[article.id]
        self.by_id = {a.id: a for a in articles}
        kinds = sorted({r.type for a in articles for r in (*a.records, *a.dropped, *a.failed_grounding)})
        self.type_class = {kind: f"t{i % 8}" for i, kind in enumerate(kinds)}
        self.record_types = sorted({r.type for a in articles for r in a.records})
        self.entity_slugs = _slugs((e.entity_id for e in dataset.entities), "entity") if dataset else {}
        self.names = {e.entity_id: e.canonical_name for e in dataset.entities} if dataset else {}
        self.mentions_in: dict[str, list[MentionRow]] = defaultdict(list)
        for mention in dataset.mentions if dataset else []:
            self.mentions_in[mention.article_id].append(mention)
        self.anchors = self._dataset_anchors()
        for article in articles:
            _number_highlights(article)
        self.totals = run_totals(articles, prices)  # after numbering: highlights are counted as drawn
        self.env = _environment()
        script = _asset("report.js")
        self.assets = {
            "css": Markup(_asset("report.css")),  # the package's own files, not input
            "js": Markup(script),
            "script_hash": "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode(),
        }

    # Links -------------------------------------------------------------------------------------------------

    def article_href(self, article_id: str, root: str = "") -> str | None:
        article = self.by_id.get(article_id)
        return f"{root}articles/{article.slug}.html" if article else None

    def entity_href(self, entity_id: str | None, root: str = "") -> str | None:
        slug = self.entity_slugs.get(entity_id or "")
        return f"{root}entities/{slug}.html" if slug else None

    def record_href(self, ref: RecordRef, root: str = "") -> str | None:
        """The card of the record holding ``ref.record_path`` (``meetings[0].participants[1]`` -> ``meetings[0]``)."""
        article = self.by_id.get(ref.article_id)
        if article is None:
            return None
        paths = [r.path for r in article.records if _within(ref.record_path, r.path)]
        page = f"{root}articles/{article.slug}.html"
        return f"{page}#{record_anchor(max(paths, key=len))}" if paths else page

    def record_link(self, article_id: str, record_path: str, root: str = "") -> str | None:
        return self.record_href(RecordRef(article_id, record_path), root)

    def span_href(self, article_id: str, start: int | None, end: int | None, root: str = "") -> str | None:
        page = self.article_href(article_id, root)
        if page is None or start is None or end is None:
            return None
        return f"{page}#at-{start}-{end}" if (start, end) in self.anchors.get(article_id, set()) else page

    # Article text ------------------------------------------------------------------------------------------

    def _dataset_anchors(self) -> dict[str, set[tuple[int, int]]]:
        """Spans the dataset pages link to (names, quotes), to be given an element id in the article text."""
        anchors: dict[str, set[tuple[int, int]]] = defaultdict(set)
        if self.dataset is None:
            return anchors
        found: list[tuple[str, int | None, int | None]] = [
            (m.article_id, m.start, m.end) for m in self.dataset.mentions
        ]
        found += [(q.article_id, q.start, q.end) for q in self.dataset.quotes]
        found += [(s.article_id, s.quote_start, s.quote_end) for s in self.dataset.stances]
        for article_id, start, end in found:
            text = self.by_id[article_id].text if article_id in self.by_id else None
            if text and start is not None and end is not None and 0 <= start < end <= len(text):
                anchors[article_id].add((start, end))
        return anchors

    def _article_text(self, article: LineArticle) -> Markup | None:
        """The article text with its highlights and the dataset's anchors, as HTML."""
        if article.text is None:
            return None
        spans: list[Span] = []
        for record in article.records:
            for item in record.evidence:
                if item.drawn and item.key is not None:
                    classes = ("hl", self.type_class[record.type], *(("fuzzy",) if item.status == "fuzzy" else ()))
                    spans.append(
                        Span(
                            item.key, item.start or 0, item.end or 0, "mark", classes,
                            (("record", record.anchor), ("label", record.label)),
                            f"{record.label} ({record.path}), evidence {item.number}: {item.status}",
                        )
                    )  # fmt: skip
        for start, end in sorted(self.anchors.get(article.id, ())):
            spans.append(Span(f"at-{start}-{end}", start, end, "span", ("at",), layered=False))
        return render(nest(article.text, spans))

    # Pages -------------------------------------------------------------------------------------------------

    def _render(self, template: str, root: str, **context: Any) -> str:
        return self.env.get_template(template).render(
            root=root, site=self, has_dataset=self.dataset is not None, **self.assets, **context
        )

    @property
    def folders(self) -> list[str]:
        return ["articles", "entities"] if self.dataset is not None else ["articles"]

    def pages(self) -> Iterator[tuple[str, str]]:
        """(file name inside the site, HTML) for every page, rendered one at a time as they are written."""
        yield "index.html", self._render("index.html", "", totals=self.totals)
        for article in self.articles:
            yield (
                f"articles/{article.slug}.html",
                self._render(
                    "article.html",
                    "../",
                    article=article,
                    text=self._article_text(article),
                    dataset_links=self._links_to(article),
                ),
            )
        if self.dataset is not None:
            yield from self._dataset_pages(self.dataset)

    def _links_to(self, article: LineArticle) -> dict[str, list[tuple[str, str]]]:
        """Record anchor -> the entities named in it (name, entity page), for the article's cards."""
        links: dict[str, list[tuple[str, str]]] = defaultdict(list)
        if self.dataset is None:
            return links
        for mention in self.mentions_in.get(article.id, []):
            holder = [r for r in article.records if _within(mention.record_path, r.path)]
            href = self.entity_href(mention.entity_id, "../")
            if holder and href:
                entry = (self.names.get(mention.entity_id, mention.surface), href)
                anchor = max(holder, key=lambda r: len(r.path)).anchor
                if entry not in links[anchor]:
                    links[anchor].append(entry)
        return links

    def _dataset_pages(self, dataset: Dataset) -> Iterator[tuple[str, str]]:
        # Each entity's rows, gathered once: a page per entity must not read every table again.
        rows: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for mention in dataset.mentions:
            rows[mention.entity_id]["mentions"].append(mention)
        for visit in dated_order(dataset.visits):
            rows[visit.visitor_entity_id]["visits"].append(visit)
        for meeting in dataset.meetings:
            for entity_id in dict.fromkeys(meeting.participant_entity_ids):
                rows[entity_id]["meetings"].append(meeting)
        for stance in dataset.stances:
            for entity_id in dict.fromkeys(e for e in (stance.militia_entity_id, stance.speaker_entity_id) if e):
                rows[entity_id]["stances"].append(stance)
        for quote in dataset.quotes:
            rows[quote.source_entity_id]["quotes"].append(quote)
        entities = sorted(dataset.entities, key=lambda e: (e.type.value, -e.mention_count, e.canonical_name.casefold()))
        yield "entities.html", self._render("entities.html", "", entities=entities)
        for entity in dataset.entities:
            own = rows[entity.entity_id]
            yield (
                f"entities/{self.entity_slugs[entity.entity_id]}.html",
                self._render(
                    "entity.html",
                    "../",
                    entity=entity,
                    mentions=own["mentions"],
                    visits=own["visits"],
                    meetings=own["meetings"],
                    stances=own["stances"],
                    quotes=own["quotes"],
                ),
            )
        timeline = visit_timeline(dataset, lambda e: self.entity_href(e), lambda r: self.record_href(r))
        yield "timeline.html", self._render("timeline.html", "", timeline=timeline, visits=dated_order(dataset.visits))
        graph = meetings_graph(dataset, lambda e: self.entity_href(e), lambda r: self.record_href(r))
        participants = defaultdict(list)
        for row in dataset.meeting_participants:
            participants[row.meeting_id].append(row)
        yield (
            "meetings.html",
            self._render("meetings.html", "", graph=graph, meetings=dataset.meetings, participants=participants),
        )
        yield "stances.html", self._render("stances.html", "", **_stance_matrix(dataset))
        quotes = defaultdict(list)
        for quote in dataset.quotes:
            quotes[quote.source_entity_id].append(quote)
        sources = sorted(dataset.sources, key=lambda s: (-s.quote_count, s.name.casefold()))
        yield "sources.html", self._render("sources.html", "", sources=sources, quotes=quotes)

    # Helpers for the templates -----------------------------------------------------------------------------

    def type_counts(self, article: LineArticle) -> list[tuple[str, int]]:
        counts = article.by_type()
        return [(kind, counts.get(kind, 0)) for kind in self.record_types]

    @staticmethod
    def url(value: Any) -> str | None:
        """A link for an http(s) address from the input; any other scheme (``javascript:``) stays text."""
        if isinstance(value, str) and re.match(r"https?://[^\s\"'<>]+$", value.strip(), flags=re.IGNORECASE):
            return value.strip()
        return None

    @staticmethod
    def position_class(position: str) -> str:
        return POSITION_CLASSES.get(position, "pos-other")


def _number_highlights(article: LineArticle) -> None:
    """Give each evidence excerpt that will be drawn (kept record, located inside the text) its element id."""
    if article.text is None or not article.ok:
        return
    count = 0
    for record in article.records:
        for item in record.evidence:
            if item.located and item.article_says is not None:
                count += 1
                item.key, item.drawn = f"e{count}", True


def _within(path: str, record: str) -> bool:
    return path == record or path.startswith((f"{record}.", f"{record}["))


def _stance_matrix(dataset: Dataset) -> dict[str, Any]:
    matrix = dataset.stance_matrix()
    militias = sorted(
        {(row.militia, row.militia_entity_id) for row in dataset.stances}, key=lambda m: (m[0].casefold(), m[1])
    )
    topics = sorted({row.topic for row in dataset.stances})
    cells: dict[tuple[str, str], list[StanceRow]] = {key: rows for key, rows in matrix.items()}
    latest = {key: next((r for r in reversed(rows) if r.date), rows[-1]) for key, rows in cells.items()}
    positions = Counter(row.position for row in dataset.stances)
    return {"militias": militias, "topics": topics, "cells": cells, "latest": latest, "positions": positions}


# Writing -----------------------------------------------------------------------------------------------------


def _check_output(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory; give a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} exists and is not empty; pass --force to replace the report in it")


def _inside(directory: Path, name: str) -> Path:
    target = directory / name
    if not target.resolve().is_relative_to(directory.resolve()):
        raise UsageError(f"{target} would be written outside {directory}")
    return target


def _write_files(out: Path, folders: list[str], pages: Iterable[tuple[str, str]], force: bool) -> list[Path]:
    """Write the pages as they come (so a large site is never held in memory), then the manifest."""
    _check_output(out, force)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            _inside(out, folder).mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write in {out}: {exc.strerror}") from None
    previous = _previous_files(out)
    written = []
    names: set[str] = set()
    for name, content in pages:
        target = _inside(out, name)
        _write_atomically(target, content)
        written.append(target)
        names.add(name)
    _write_atomically(_inside(out, MANIFEST), json.dumps(sorted(names), indent=1) + "\n")
    written.append(out / MANIFEST)
    for name in sorted(previous - names):
        with contextlib.suppress(UsageError, OSError):
            stale = _inside(out, name)
            if stale.is_file() and not stale.is_symlink():
                stale.unlink()
    return written


def _previous_files(out: Path) -> set[str]:
    """The pages an earlier report wrote in ``out`` (from its manifest), to remove those not written again."""
    try:
        names = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return {n for n in names if isinstance(n, str) and n.endswith(".html")} if isinstance(names, list) else set()


def _write_atomically(target: Path, content: str) -> None:
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        partial.write_text(content, encoding="utf-8")
        partial.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UsageError(f"cannot write {target}: {exc.strerror}") from None
