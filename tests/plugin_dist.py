"""An installed distribution made on the spot: its entry points and modules in a folder put on sys.path."""

from __future__ import annotations

from pathlib import Path


def fake_distribution(site: Path, name: str, group: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> Path:
    """Write ``name``'s dist-info (declaring ``entry_points`` in ``group``) and its ``modules`` under ``site``."""
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n", encoding="utf-8")
    declared = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{group}]\n{declared}", encoding="utf-8")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source, encoding="utf-8")
    return site
