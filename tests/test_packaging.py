"""What a non-editable install ships: every subpackage, and the files the report reads at run time.

setuptools installs only the packages pyproject.toml lists and only the data
files its package-data globs match; an editable install hides a missing one,
a wheel does not.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_under_src_is_listed() -> None:
    found = {
        ".".join(path.parent.relative_to(ROOT / "src").parts)
        for path in (ROOT / "src" / "structx").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    assert found <= set(SETUPTOOLS["packages"]), found - set(SETUPTOOLS["packages"])


def test_the_reports_templates_and_assets_are_package_data() -> None:
    package = ROOT / "src" / "structx" / "_report"
    files = [p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file() and p.suffix != ".py"]
    files = [f for f in files if "__pycache__" not in f]
    assert any(f.startswith("templates/") for f in files) and any(f.startswith("static/") for f in files)
    globs = SETUPTOOLS["package-data"]["structx._report"]
    assert [f for f in files if not any(fnmatch.fnmatch(f, g) for g in globs)] == []
