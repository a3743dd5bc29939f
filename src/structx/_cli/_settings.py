"""Project settings for ``structx extract``: ``structx.toml`` or ``[tool.structx]`` in ``pyproject.toml``.

The settings file is found as ruff finds its own: from the current folder
upward, the first folder holding a ``structx.toml``, or a ``pyproject.toml``
with a ``[tool.structx]`` table (``structx.toml`` wins in the same folder),
gives the settings. The search stops at the project root, the first folder
holding ``.git``, or at the top of the file system. Every error names the file.
"""

from __future__ import annotations

import dataclasses
import inspect
import tomllib
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

import typer

import structx

__all__ = ["find_settings_file", "parse_headers", "project_settings"]


def find_settings_file(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The settings file that applies in ``start`` and its table of settings, if there is one."""
    for folder in (start, *start.parents):
        own, pyproject = folder / "structx.toml", folder / "pyproject.toml"
        if own.is_file():
            return own, _read_toml(own, start)
        if pyproject.is_file():
            tool = _read_toml(pyproject, start).get("tool", {})
            if isinstance(tool, dict) and "structx" in tool:
                table = tool["structx"]
                if not isinstance(table, dict):
                    raise structx.ConfigError(f"{_shown(pyproject, start)}: [tool.structx] must be a table of settings")
                return pyproject, table
        if (folder / ".git").exists():  # the project's root: settings above it belong to something else
            return None
    return None


def project_settings(start: Path, command: Callable[..., Any]) -> dict[str, Any]:
    """Option defaults for ``command`` from the settings file that applies in ``start``.

    Each value is checked against the type and range the command declares for
    that option, so a wrong one is reported with the file and the key. A
    relative path (a file option, or a schema's ``file.py``) is relative to
    the settings file's folder, wherever structx runs from.
    """
    found = find_settings_file(start)
    if found is None:
        return {}
    source, table = found
    shown = _shown(source, start)
    hints = get_type_hints(command, include_extras=True)
    options = {
        name: hints[name]
        for name in inspect.signature(command).parameters
        if name != "paths" and hints[name] is not typer.Context
    }
    settings = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in options:
            known = ", ".join(sorted(n.replace("_", "-") for n in options))
            raise structx.ConfigError(f"{shown}: unknown setting {key!r} (known: {known})")
        kind, info, many = _option_type(options[name])
        problem = _problem(kind, info, value if many else [value], many) or _config_problem(name, value)
        if problem is not None:
            # A key or a header may hold a secret: its value is never shown.
            written = "(value not shown)" if name in _SECRET_SETTINGS else _toml(value)
            raise structx.ConfigError(f"{shown}: {key} = {written}: {problem}")
        if kind is Path and not many and value != "-":
            value = str(source.parent / value)  # an absolute value stays as it is
        elif name == "schema" and _is_file_ref(value):
            value = str(source.parent / value)
        settings[name] = value
    return settings


def parse_headers(values: list[str]) -> dict[str, str]:
    """``--header NAME=VALUE`` options as a mapping; a malformed one is a ConfigError that hides its value."""
    headers = {}
    for number, value in enumerate(values, start=1):
        name, sep, content = value.partition("=")
        if not sep or not name.strip():
            # The value is not shown: it may hold a secret.
            raise structx.ConfigError(f"--header number {number} is not NAME=VALUE (e.g. --header X-Team=news)")
        headers[name.strip()] = content.strip()
    return headers


#: Settings whose values are never printed.
_SECRET_SETTINGS = frozenset({"api_key", "header"})


def _config_problem(name: str, value: Any) -> str | None:
    """What :class:`structx.Config` says of a setting that is one of its fields, checked alone; None if fine.

    So that a value of the right type but out of the config's range (a
    temperature of 5, a chunk size of 100) is reported with the file and key.
    """
    if name == "api_key_env":
        try:
            structx.Config.from_env(api_key_env=value)
        except structx.ConfigError as exc:
            return str(exc)
        return None
    checked: dict[str, Any] = {name: value}
    if name == "header":
        try:
            checked = {"headers": parse_headers(value)}
        except structx.ConfigError as exc:
            return str(exc)
    elif name not in {field.name for field in dataclasses.fields(structx.Config)}:
        return None
    if name == "chunk_chars" and isinstance(value, int):
        checked["chunk_overlap"] = structx.Config.overlap_for(value)
    try:
        structx.Config(**checked)
    except structx.ConfigError as exc:
        return str(exc)
    return None


def _read_toml(path: Path, start: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise structx.ConfigError(f"{_shown(path, start)}: cannot read settings: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise structx.ConfigError(f"{_shown(path, start)}: cannot read settings: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise structx.ConfigError(f"{_shown(path, start)}: not valid TOML: {exc}") from None


def _shown(path: Path, start: Path) -> str:
    """The file as a user in ``start`` would name it: relative when it is there, absolute above."""
    return path.name if path.parent == start else str(path)


def _option_type(hint: Any) -> tuple[Any, typer.models.ParameterInfo | None, bool]:
    """An option's value type (without ``| None``), its typer declaration, and whether it takes a list."""
    kind, *metadata = get_args(hint) if get_origin(hint) is Annotated else (hint,)
    info = next((m for m in metadata if isinstance(m, typer.models.ParameterInfo)), None)
    if get_origin(kind) in (Union, UnionType):  # an optional option: None is its default, not a setting
        kind = next(arg for arg in get_args(kind) if arg is not type(None))
    if get_origin(kind) is list:
        (item,) = get_args(kind)
        return item, info, True
    return kind, info, False


def _problem(kind: Any, info: typer.models.ParameterInfo | None, values: Any, many: bool) -> str | None:
    """Why ``values`` cannot be the setting of an option of type ``kind``, in TOML's words; None when they can."""
    if many and not isinstance(values, list):
        return "must be a list"
    for item in values:
        if kind is bool:
            ok, expected = isinstance(item, bool), "true or false"
        elif kind is int:
            ok, expected = isinstance(item, int) and not isinstance(item, bool), "a whole number"
        elif kind is float:
            ok, expected = isinstance(item, int | float) and not isinstance(item, bool), "a number"
        elif isinstance(kind, type) and issubclass(kind, Enum):
            choices = [str(member.value) for member in kind]
            ok, expected = item in choices, "one of " + ", ".join(_toml(choice) for choice in choices)
        else:
            ok, expected = isinstance(item, str), "a string"
        if not ok:
            return f"must be {expected}"
        if info is not None and info.min is not None and item < info.min:
            return f"must be at least {info.min}"
        if info is not None and info.max is not None and item > info.max:
            return f"must be at most {info.max}"
    return None


def _is_file_ref(schema: str) -> bool:
    """Whether a schema reference names a file (``path/to/file.py:Class``) rather than a module."""
    module = schema.rpartition(":")[0]
    return module.endswith(".py") or "/" in module or "\\" in module


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return repr(value)
