"""Where Custode keeps its files when the config does not say.

The embedded default must work for any user without root, so it uses the
per-user data dir; a service install points ``agent.data_dir`` (or the
``CUSTODE_DATA_DIR`` environment variable set by the systemd unit) at
/var/lib/custode.
"""

from __future__ import annotations

import os
from pathlib import Path

from custode.agent.config import Config


def data_dir(config: Config) -> Path:
    if config.agent.data_dir is not None:
        return config.agent.data_dir
    if os.environ.get("CUSTODE_DATA_DIR"):
        return Path(os.environ["CUSTODE_DATA_DIR"])
    import platformdirs

    return Path(platformdirs.user_data_dir("custode", appauthor=False))


def state_path(config: Config) -> Path:
    return config.state.path or data_dir(config) / "state.db"


def audit_path(config: Config) -> Path:
    return config.audit.path or data_dir(config) / "audit.jsonl"
