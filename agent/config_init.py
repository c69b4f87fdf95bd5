"""``custode config init``: a commented starter config, so nobody begins from an empty file.

The starters are the shipped examples themselves (``config/examples``,
packaged through the symlinks in ``agent/starters``), so the file a new
user gets is the one the tests check (``config check`` passes on every
example) and never a second copy that drifts.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

STARTERS = {"comune": "comune.yaml", "farm": "farm-node.yaml", "reference": "reference.yaml"}
"""comune: one server of a comune; farm: a node of the provider's farm; reference: every key, commented."""


_EXAMPLE_PLAYBOOKS = "playbooks_dir: ../../playbooks"


class InitError(Exception):
    """The starter cannot be written where asked; the message says why and what to do."""


def starter_text(kind: str) -> str:
    return resources.files("custode.agent").joinpath("starters", STARTERS[kind]).read_text(encoding="utf-8")


def write_starter(kind: str, target: Path, force: bool = False) -> Path:
    """Write the starter to ``target`` (mode 640); an existing file is kept unless ``force``."""
    from custode.agent.fileutil import write_atomic

    if target.exists() and not force:
        raise InitError(f"{target} exists; keep it, choose another file with -o, or overwrite with --force")
    text = starter_text(kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == "farm":
            # The example points at the repository's playbooks/; the starter gets its own copies beside it.
            text = text.replace(_EXAMPLE_PLAYBOOKS, "playbooks_dir: playbooks   ")
            _write_playbooks(target.parent / "playbooks", force)
        write_atomic(target, text.encode("utf-8"), mode=0o640)
    except OSError as exc:
        raise InitError(f"cannot write {target}: {exc.strerror or exc}; run as root for /etc/custode, "
                        "or give -o PATH") from None
    return target


def _write_playbooks(folder: Path, force: bool) -> None:
    """The example playbooks the farm starter's windows use; existing ones are kept unless ``force``."""
    from custode.agent.fileutil import write_atomic

    folder.mkdir(parents=True, exist_ok=True)
    for item in resources.files("custode.agent").joinpath("starters", "playbooks").iterdir():
        if item.name.endswith(".yaml") and (force or not (folder / item.name).exists()):
            write_atomic(folder / item.name, item.read_bytes(), mode=0o640)
