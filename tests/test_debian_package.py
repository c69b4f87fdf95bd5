"""The Debian package: scripts/test-deb.sh builds it (lintian included) and tests it in a clean Debian 12 root.

That script installs the package with apt-get in a chroot made by debootstrap, runs
custode --version, custode config check and a short custode run there, upgrades it
over itself with the conffile edited, removes and purges it, checking what each step
keeps and removes. It needs root (debootstrap, chroot, mount) and the Debian mirror
and PyPI; the debootstrap result is cached under /var/cache/custode-deb-test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test-deb.sh"


@pytest.mark.integration
@pytest.mark.real_clock  # apt and debootstrap check signatures against the real date
@pytest.mark.timeout(1800)
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: debootstrap, chroot and mount (scripts/test-deb.sh)")
def test_debian_package_builds_installs_upgrades_and_purges_in_a_clean_root() -> None:
    result = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=1700)
    output = result.stdout
    print(output)  # shown with -s, or with the failure
    # lines end at "\n" only: dpkg's "(Reading database ... 5%" progress is "\r"-separated within one line the
    # script prefixed, and splitlines() would cut it at each "\r" into lines without the prefix
    lines = output.split("\n")
    stray = [line for line in lines if line and not line.startswith("== deb")]
    assert result.returncode == 0, "scripts/test-deb.sh failed:\n" + "\n".join(lines[-60:])
    assert not stray, "lines of scripts/test-deb.sh without the '== deb' prefix:\n" + "\n".join(stray[:20])
    assert any(line.startswith("== deb: PASSED") for line in lines), "no PASSED line:\n" + "\n".join(lines[-20:])
