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
    predictions: Annotated[
        Path,
        typer.Argument(
            help="A JSONL file written by structx extract, or a folder of answers in the gold format.",
            show_default=False,
        ),
    ],
    gold: Annotated[Path, typer.Option(help="Directory of gold answers, one <article id>.json each.")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the full report as JSON here.", show_default=False)
    ] = None,
    schema: Annotated[
        str,
        typer.Option(help="The schema the predictions were extracted with: only the bundled pack has match rules."),
    ] = structx.DEFAULT_SCHEMA_REF,
    entities: Annotated[
        Path | None,
        typer.Option(
            "--entities",
            help="Alias gold for entity resolution; by default entities.json beside the gold folder, when it exists.",
            show_default=False,
        ),
    ] = None,
    articles: Annotated[
        Path | None,
        typer.Option(
            help="Folder of article texts (<id>.txt) for predictions whose source cannot be read.", show_default=False
        ),
    ] = None,
) -> None:
    """Score predictions against gold answers: P/R/F1 per record type and key field, grounding, entities."""
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if json_out is not None:
        _check_writable(console, json_out)
    if entities is not None and not entities.is_file():
        fail(console, f"--entities {entities}: no such file")
    if articles is not None and not articles.is_dir():
        fail(console, f"--articles {articles}: no such directory")
    alias_path = entities if entities is not None else gold.parent / "entities.json"
    entity_scores = None
    try:
        if predictions.is_dir():
            lines = structx.load_answers(predictions, articles=articles)
        else:
            lines = structx.load_predictions(predictions)
        answers = structx.load_gold(gold)
        report = structx.evaluate(lines, answers, schema=schema)
        if alias_path.is_file():
            alias_gold = structx.load_alias_gold(alias_path)
            dataset = structx.build_dataset([predictions], articles=articles)
            entity_scores = structx.evaluate_entities(dataset.mentions, alias_gold)
    except structx.InputError as exc:
        fail(console, str(exc) if exc.path is not None else f"{predictions}: {exc}")
    except structx.UsageError as exc:
        fail(console, str(exc))
    if json_out is not None:
        # Written before anything is printed: a report that cannot be saved is said at once.
        document = report.to_dict()
        if entity_scores is not None:
            document["entities"] = {"gold": str(alias_path), **entity_scores.to_dict()}
        try:
            json_out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
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
    if entity_scores is not None:
        _print_entities(out, alias_path, entity_scores)


def _print_entities(out: Console, path: Path, scores: structx.EntityScores) -> None:
    pair, cube = scores.pairwise, scores.bcubed
    out.print(
        f"entity resolution against {path} ({scores.mentions_scored} mentions scored, "
        f"{scores.mentions_not_in_gold} not in the alias gold): "
        f"pairwise P {pair.precision:.2f} R {pair.recall:.2f} F1 {pair.f1:.2f} "
        f"({scores.pairs_true} pairs right, {scores.pairs_false} false, {scores.pairs_missed} missed); "
        f"B-cubed P {cube.precision:.2f} R {cube.recall:.2f} F1 {cube.f1:.2f}; "
        f"apart pairs kept apart {scores.apart_checked - len(scores.apart_violated)}/{scores.apart_checked}",
        markup=False,
    )
    for label, examples in (
        ("joined but different", scores.false_merges),
        ("one entity but split", scores.missed_merges),
    ):
        if examples:
            shown = "; ".join(f"{a} / {b}" for a, b in examples[:8])
            more = f" (and {len(examples) - 8} more)" if len(examples) > 8 else ""
            out.print(f"  {label}: {shown}{more}", markup=False)


def _check_writable(console: Console, target: Path) -> None:
    """Fail now, before any scoring, when the report could not be written to ``target``."""
    if target.is_dir():
        fail(console, f"--json {target} is a directory; give a file name")
    problem = directory_problem(target.parent)
    if problem is not None:
        fail(console, f"--json {target}: {problem}")
    if target.exists() and not os.access(target, os.W_OK):
        fail(console, f"--json {target} is not writable")
