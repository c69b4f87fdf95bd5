#!/usr/bin/env bash
# Install everything the test suite needs on Debian 12 (packages + a venv), then run it.
# Usage: bash scripts/test.sh [pytest arguments]      (needs root or sudo for apt-get)
#
# Before the tests, the gates: ruff (pyproject's rule set, no finding allowed),
# mypy against .ci/mypy-baseline.txt (no new error; scripts/mypy_gate.py), and
# the first run measures coverage and fails below the floor in
# .ci/coverage-floor (CUSTODE_GATES=0 skips the gates, for a quick local run).
#
# The suite runs twice: on the real clock, then (every test but those marked
# real_clock, which start Go programs) under Debian's faketime with the clock
# moved CUSTODE_SHIFT_DAYS days ahead (default 400; 0 skips that run), so a
# test that judges a fixed date against the day it runs fails today, not in
# two weeks.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
apt_install() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Real components the tests start themselves, on loopback ports; and for the PDF reports, the Pango that
# WeasyPrint (the reports extra, pulled in by the test extra) loads, a font, and poppler-utils (pdftotext,
# pdftoppm) with which tests/test_report_render.py reads the PDF back; net-snmp's snmpd (the SNMP devices of
# tests/snmpd.py) with its snmpget, snmp_exporter (which tests/test_snmp_metrics.py compares Custode's names
# with), and dnsmasq (the DNS server the DNS probes ask).
PACKAGES="prometheus prometheus-alertmanager prometheus-node-exporter dovecot-imapd openssh-server openssh-client init-system-helpers procps restic borgbackup faketime chromium libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils snmpd snmp prometheus-snmp-exporter dnsmasq-base"
missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    echo "== installing Debian packages:$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # shellcheck disable=SC2086
    apt_install $missing
fi

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    if ! python3 -m venv .venv 2>/dev/null; then
        rm -rf .venv
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
        apt_install python3-venv
        python3 -m venv .venv
    fi
fi
echo "== installing custode and its test dependencies into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

coverage=()
if [ "${CUSTODE_GATES:-1}" != "0" ]; then
    echo "== lint: ruff"
    .venv/bin/python -m ruff check .
    echo "== types: mypy against .ci/mypy-baseline.txt"
    .venv/bin/python scripts/mypy_gate.py
    coverage=(--cov=agent --cov=collectors --cov-report=
              "--cov-fail-under=$(cat .ci/coverage-floor)")
fi

echo "== running the test suite"
set +e
.venv/bin/python -m pytest "${coverage[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "ERROR: pytest collected no tests; that is a failure, not a pass." >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    exit "$status"
fi

shift_days="${CUSTODE_SHIFT_DAYS:-400}"
if [ "$shift_days" = "0" ]; then
    exit 0
fi
echo "== running the test suite again with the clock moved $shift_days days ahead (faketime; real_clock tests left out)"
# Monotonic time stays real: with it faked, Debian 12's libfaketime 0.9.10 makes
# Python's timed lock waits hang. tests/faketime/sitecustomize.py mends the one
# call that mode breaks (time.sleep) in every Python process of this run.
set +e
FAKETIME_DONT_FAKE_MONOTONIC=1 PYTHONPATH="$PWD/tests/faketime${PYTHONPATH:+:$PYTHONPATH}" \
    faketime -f "+${shift_days}d" .venv/bin/python -m pytest -m "not real_clock" -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "(every selected test is marked real_clock: nothing to run on the shifted clock)"
    exit 0
fi
exit "$status"
