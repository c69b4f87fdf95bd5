"""The custode.* import namespace: pyproject's package list is the source tree, and it imports as custode.*."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_source_package_is_listed_and_every_listed_one_exists() -> None:
    table = _setuptools()
    mapping = table["package-dir"]
    assert mapping == {"custode.agent": "agent", "custode.collectors": "collectors"}
    in_tree = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            in_tree.add(".".join((name, *relative)))
    assert set(table["packages"]) == in_tree, "pyproject.toml [tool.setuptools] packages must list every package"


def test_the_installed_package_imports_under_custode_only() -> None:
    # From outside the checkout, so the top-level folders are not on sys.path by accident.
    script = ("import importlib.util, custode.agent, custode.collectors.base; "
              "print(importlib.util.find_spec('agent') is None, importlib.util.find_spec('collectors') is None)")
    result = subprocess.run([sys.executable, "-c", script], cwd="/", capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
