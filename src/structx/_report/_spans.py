"""Character spans of an article as nested HTML elements.

Evidence excerpts of different records overlap: two records cite the same
sentence, one record's sentence contains another's clause, two excerpts
cross. HTML elements must nest, so spans are laid out with one stack:

* spans that start at the same place open longest first, so a span inside
  another becomes its child and is never cut;
* identical spans nest in the order given (the first is the outer one);
* a span that crosses another (starts inside it and ends after it) is cut
  where the other ends and goes on in a new element right after: its
  *fragments* share its key, and only the first carries its element id, so a
  link to the span lands on its start;
* a span that crosses no other span is exactly one element.

Spans outside the text (offsets past its end, or empty) cannot be drawn and
are returned apart, so that the page can say so instead of dropping them.
The text itself is escaped here (markupsafe): the article is untrusted and
only the tags built below are markup.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

__all__ = ["Fragment", "Span", "nest", "render", "split_drawable"]

#: Nesting levels told apart on screen; deeper highlights look like this one.
MAX_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Span:
    """One span to draw: ``text[start:end]``.

    ``key`` is unique on the page (the element id of its first fragment);
    ``tag`` and ``classes`` say how it is drawn, ``data`` are ``data-*``
    attributes and ``title`` its tooltip. All values are escaped when drawn.
    A ``layered`` span is a visible layer: the spans around it are drawn
    deeper by one (an anchor that only gives a place an id is not).
    """

    key: str
    start: int
    end: int
    tag: str = "mark"
    classes: tuple[str, ...] = ()
    data: tuple[tuple[str, str], ...] = ()
    title: str | None = None
    layered: bool = True


@dataclass(slots=True, eq=False)
class Fragment:
    """A piece of a span drawn as one element; ``first`` is the piece that starts the span."""

    span: Span
    start: int
    first: bool
    children: list[Fragment | str] = field(default_factory=list)
    end: int = -1
    #: Visible layers from this element down: 1 for a layered span holding no other layered span.
    height: int = 1


def split_drawable(text: str, spans: Sequence[Span]) -> tuple[list[Span], list[Span]]:
    """The spans that lie inside ``text`` and are not empty, and the others."""
    inside = [s for s in spans if 0 <= s.start < s.end <= len(text)]
    keys = {id(s) for s in inside}
    return inside, [s for s in spans if id(s) not in keys]


def nest(text: str, spans: Sequence[Span]) -> list[Fragment | str]:
    """``text`` as a list of plain strings and fragments, every span of ``spans`` drawn, well nested.

    Spans outside the text are left out (see :func:`split_drawable`).
    """
    drawable, _ = split_drawable(text, spans)
    order = {id(span): number for number, span in enumerate(drawable)}
    starting: dict[int, list[Span]] = defaultdict(list)
    ending: dict[int, set[int]] = defaultdict(set)
    for span in drawable:
        starting[span.start].append(span)
        ending[span.end].add(id(span))
    boundaries = sorted({0, len(text), *starting, *ending})

    def outer_first(span: Span) -> tuple[int, int]:
        return (-span.end, order[id(span)])

    root: list[Fragment | str] = []
    stack: list[Fragment] = []
    created: list[Fragment] = []

    def children() -> list[Fragment | str]:
        return stack[-1].children if stack else root

    def open_(span: Span, at: int, first: bool) -> None:
        fragment = Fragment(span, at, first)
        children().append(fragment)
        stack.append(fragment)
        created.append(fragment)

    position = 0
    for boundary in boundaries:
        if boundary > position:
            children().append(text[position:boundary])
            position = boundary
        closing = ending.get(boundary, set())
        if closing:
            # Close down to the outermost span that ends here; spans above it that go on are reopened.
            lowest = min(i for i, fragment in enumerate(stack) if id(fragment.span) in closing)
            going_on = [fragment.span for fragment in stack[lowest:] if id(fragment.span) not in closing]
            for fragment in stack[lowest:]:
                fragment.end = boundary
            del stack[lowest:]
            for span in sorted(going_on, key=outer_first):
                open_(span, boundary, first=False)
        for span in sorted(starting.get(boundary, []), key=outer_first):
            open_(span, boundary, first=True)
    # Fragments were created parents first, so children are done before their parent here.
    for fragment in reversed(created):
        inner = max((c.height for c in fragment.children if isinstance(c, Fragment)), default=0)
        fragment.height = inner + fragment.span.layered
    return root


def render(nodes: Sequence[Fragment | str]) -> Markup:
    """The nested fragments as HTML: text escaped, one element per fragment."""
    parts: list[str] = []
    # An explicit stack: a sentence cited by hundreds of records must not exhaust Python's recursion.
    pending: list[Iterator[Fragment | str] | str] = [iter(nodes)]
    while pending:
        top = pending[-1]
        if isinstance(top, str):
            parts.append(top)
            pending.pop()
            continue
        node = next(top, None)
        if node is None:
            pending.pop()
        elif isinstance(node, str):
            parts.append(escape(node))
        else:
            parts.append(_open_tag(node))
            pending.append(f"</{node.span.tag}>")
            pending.append(iter(node.children))
    return Markup("".join(parts))


def _open_tag(fragment: Fragment) -> str:
    span = fragment.span
    classes = [*span.classes, f"h{min(fragment.height, MAX_LEVEL)}"] if span.layered else [*span.classes]
    if not fragment.first:
        classes.append("cont")
    attributes = [("class", " ".join(classes)), ("data-span", span.key)]
    if fragment.first:
        attributes.insert(0, ("id", span.key))
    attributes += [(f"data-{name}", value) for name, value in span.data]
    if span.title:
        attributes.append(("title", span.title))
    rendered = "".join(f' {name}="{escape(value)}"' for name, value in attributes)
    return f"<{span.tag}{rendered}>"
