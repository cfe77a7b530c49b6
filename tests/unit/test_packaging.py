"""The distribution ships every package of the source tree: an image is a non-editable install,
where a package missing from pyproject.toml's list is missing at run time (ModuleNotFoundError in
the pod), while an editable install, as in the tests, still finds it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "operator", ROOT / "serving")


def test_every_package_of_the_source_tree_is_in_the_distribution() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(source).parts)
        for source in SOURCES
        for init in source.rglob("__init__.py")
    }
    assert found == listed, {
        "not listed": sorted(found - listed),
        "not found": sorted(listed - found),
    }
