#!/usr/bin/env bash
# Install Custode into ./.venv and run the agent on the embedded default
# (local collectors, SQLite state in the per-user data dir, /metrics on :10191).
# Usage: bash scripts/run.sh [custode run arguments, e.g. --listen 127.0.0.1:10191]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        SUDO=""; if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3-venv
        python3 -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/custode run "$@"
