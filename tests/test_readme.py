"""The README a new user reads: a current table of contents, no internal references, examples that agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from custode.agent.cli import _parser
from custode.agent.cli_docs import command_tree, walk

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_table_of_contents_lists_every_section() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts/readme_toc.py"), "--check"], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_no_reference_a_user_does_not_have() -> None:
    # The planning material and the developers' own tools are not shipped.
    for word in (r"\bbrief\b", r"\bduplicates\b", r"\bissue \d+\b", r"/work/main"):
        assert not re.search(word, README, re.I), f"README mentions {word!r}"


def _commands_in_table() -> list[tuple[str, ...]]:
    section = README.split("## Commands", 1)[1].split("\n## ", 1)[0]
    found = []
    for cell in re.findall(r"`custode ([a-z][a-z\- ]*?)(?: [\[A-Z<-]|`)", section):
        found.append(tuple(cell.split()))
    return found


def test_every_command_the_readme_lists_exists() -> None:
    known = {node.words for node in walk(command_tree(_parser()))}
    listed = _commands_in_table()
    assert len(listed) > 15
    missing = [" ".join(words) for words in listed if words not in known]
    assert not missing, f"README lists commands the CLI does not have: {missing}"


def _yaml_documents() -> list[tuple[str, dict]]:
    """Every example config: config/**/*.yaml and the README's yaml blocks that are Custode configs."""
    docs = [(str(path.relative_to(ROOT)), yaml.safe_load(path.read_text(encoding="utf-8")))
            for path in sorted((ROOT / "config").glob("**/*.yaml"))]
    for n, block in enumerate(re.findall(r"```yaml\n(.*?)```", README, re.S)):
        text = "\n".join(line[3:] if line.startswith("   ") else line for line in block.splitlines())
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        if isinstance(data, dict) and "tenants" in data:
            docs.append((f"README.md yaml block {n + 1}", data))
    return [(name, data) for name, data in docs if isinstance(data, dict)]


def test_the_same_comune_has_the_same_name_and_patron_in_every_example() -> None:
    seen: dict[str, dict[str, tuple[object, str]]] = {}
    clashes = []
    for source, data in _yaml_documents():
        for tenant, spec in (data.get("tenants") or {}).items():
            if not isinstance(spec, dict):
                continue
            facts = {"name": spec.get("name"), "patron": (spec.get("calendar") or {}).get("patron")}
            for fact, value in facts.items():
                if value is None:
                    continue
                earlier = seen.setdefault(tenant, {}).setdefault(fact, (value, source))
                if earlier[0] != value:
                    clashes.append(f"{tenant}.{fact}: {earlier[0]!r} in {earlier[1]}, {value!r} in {source}")
    assert not clashes, "\n".join(clashes)
