"""The public names of ``structx``: all of them importable, none of them loaded before it is used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import structx

HEAVY = ("openai", "instructor", "httpx2", "structx._backend", "structx._engine")


def test_every_public_name_resolves_to_the_object_of_its_module() -> None:
    names = set(structx.__all__) - {"__version__"}
    assert set(structx._MODULE_OF) == names
    listed = [name for module_names in structx._SOURCES.values() for name in module_names]
    assert len(listed) == len(set(listed)), "a name listed under two modules"
    for name in sorted(names):
        module = importlib.import_module(structx._MODULE_OF[name])
        assert getattr(structx, name) is getattr(module, name), name
    namespace: dict[str, object] = {}
    exec("from structx import Client, RunStore, iter_articles", namespace)
    assert namespace["Client"] is structx.Client
    assert set(dir(structx)) >= set(structx.__all__)


def test_the_names_type_checkers_see_are_the_names_imported_at_run_time() -> None:
    tree = ast.parse(Path(structx.__file__).read_text(encoding="utf-8"))
    (block,) = [node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"]
    imports = [node for node in block.body if isinstance(node, ast.ImportFrom)]
    seen = {(node.module, alias.name) for node in imports for alias in node.names}
    assert seen == {(module, name) for name, module in structx._MODULE_OF.items()}


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Clinet'"):
        _ = structx.Clinet  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "args", [["--help"], ["extract", "--help"], ["eval", "--help"], ["export", "--help"], ["report", "--help"]]
)
def test_help_does_not_import_openai_or_instructor(args: list[str]) -> None:
    # They take most of a second to import; help needs neither.
    script = (
        "import sys\n"
        f"sys.argv = ['structx', *{args!r}]\n"
        "from structx._cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('loaded:', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert "Usage:" in completed.stdout, completed.stderr
    assert completed.stdout.splitlines()[-1] == "loaded: []"
