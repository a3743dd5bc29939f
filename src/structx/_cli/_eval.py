"""``structx eval``: score predictions against gold answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

import structx
from structx._cli._app import app, directory_problem, fail

__all__ = ["evaluate"]


@app.command("eval")
def evaluate(
    predictions: Annotated[Path, typer.Argument(help="A JSONL file written by structx extract.", show_default=False)],
    gold: Annotated[Path, typer.Option(help="Directory of gold answers, one <article id>.json each.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the full report as JSON here.", show_default=False)
    ] = None,
    schema: Annotated[
        str,
        typer.Option(help="The schema the predictions were extracted with: only the bundled pack has match rules."),
    ] = structx.DEFAULT_SCHEMA_REF,
) -> None:
    """Score predictions against gold answers: P/R/F1 per record type and key field, and the grounding rate."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if json_out is not None:
        _check_writable(console, json_out)
    try:
        lines, answers = structx.load_predictions(predictions), structx.load_gold(gold)
        report = structx.evaluate(lines, answers, schema=schema)
    except structx.InputError as exc:
        fail(console, str(exc) if exc.path is not None else f"{predictions}: {exc}")
    except structx.UsageError as exc:
        fail(console, str(exc))
    if json_out is not None:
        # Written before anything is printed: a report that cannot be saved is said at once.
        try:
            json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            fail(console, f"--json {json_out}: cannot write it: {exc.strerror}")
    out = Console(highlight=False, soft_wrap=True)
    table = Table(title=Text(f"{predictions} against {gold} ({report.articles_scored} articles)"))
    for column in ("target", "field", "P", "R", "F1", "TP", "FP", "FN"):
        table.add_column(column, justify="left" if column in ("target", "field") else "right")
    for name, target in report.targets.items():
        rows = [("records", target.records), *target.fields.items()]
        for index, (label, score) in enumerate(rows):
            table.add_row(
                name if index == 0 else "",
                label,
                f"{score.precision:.2f}",
                f"{score.recall:.2f}",
                f"{score.f1:.2f}",
                str(score.tp),
                str(score.fp),
                str(score.fn),
                end_section=index == len(rows) - 1,
            )
    overall = report.overall
    table.add_row("all", "records", f"{overall.precision:.2f}", f"{overall.recall:.2f}", f"{overall.f1:.2f}",
                  str(overall.tp), str(overall.fp), str(overall.fn))  # fmt: skip
    out.print(table)
    rates = report.grounding_rates()
    out.print(
        "grounding: "
        + ", ".join(f"{status} {report.excerpts[status]} ({rates[status]:.1%})" for status in report.excerpts)
        + f"; records grounded {report.records_grounded}/{report.records_checked}",
        markup=False,
    )
    for label, ids in (("failed", report.articles_failed), ("without a prediction", report.articles_missing)):
        if ids:
            out.print(f"articles {label} (all their gold records count as missed): {', '.join(ids)}", markup=False)
    if report.duplicate_predictions:
        out.print(
            f"articles predicted more than once, first line scored: {', '.join(report.duplicate_predictions)}",
            markup=False,
        )
    if report.predictions_without_gold:
        out.print(f"predictions without gold, not scored: {', '.join(report.predictions_without_gold)}", markup=False)


def _check_writable(console: Console, target: Path) -> None:
    """Fail now, before any scoring, when the report could not be written to ``target``."""
    if target.is_dir():
        fail(console, f"--json {target} is a directory; give a file name")
    problem = directory_problem(target.parent)
    if problem is not None:
        fail(console, f"--json {target}: {problem}")
    if target.exists() and not os.access(target, os.W_OK):
        fail(console, f"--json {target} is not writable")
