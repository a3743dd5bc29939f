"""Project settings for ``structx extract``: ``structx.toml`` or ``[tool.structx]`` in ``pyproject.toml``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import typer

import structx

__all__ = ["project_settings"]


def project_settings(directory: Path, ctx: typer.Context) -> dict[str, Any]:
    """``extract`` option defaults from ``structx.toml`` or ``[tool.structx]`` in ``pyproject.toml``."""
    own, pyproject = directory / "structx.toml", directory / "pyproject.toml"
    try:
        if own.is_file():
            source, table = own, tomllib.loads(own.read_text(encoding="utf-8"))
        elif pyproject.is_file():
            source, table = (
                pyproject,
                tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {}).get("structx", {}),
            )
        else:
            return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise structx.ConfigError(f"cannot read settings: {exc}") from None
    group = ctx.command
    extract = getattr(group, "commands", {}).get("extract")
    allowed: set[str] = set()
    if extract is not None:
        allowed = {param.name for param in extract.params if param.name and param.name != "paths"}
    settings = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in allowed:
            raise structx.ConfigError(f"{source}: unknown setting {key!r} (known: {', '.join(sorted(allowed))})")
        settings[name] = value
    return settings
