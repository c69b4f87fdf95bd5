"""A toy "vendor application" for update tests: a tiny HTTP service with releases and an init script.

Layout under ``root``: ``releases/<version>/VERSION``, ``current`` (symlink to
the running release), ``previous`` (symlink kept by the install script for
rollback). ``/health`` answers 200 ``{"status": "ok", "version": V}``, or 500
when the release is broken, like a vendor build that does not start properly.
The init script in /etc/init.d is real, so playbooks drive it with ``service``
as on a host without systemd.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import free_port, http_get, wait_until

INIT_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:
# Required-Stop:
# Default-Start:
# Default-Stop:
# Short-Description: Custode test vendor application
### END INIT INFO
PIDFILE={root}/app.pid
case "$1" in
  start)
    if [ -f $PIDFILE ] && kill -0 $(cat $PIDFILE) 2>/dev/null; then exit 0; fi
    nohup {python} {script} serve {root} {port} >>{root}/app.log 2>&1 &
    echo $! > $PIDFILE
    ;;
  stop)
    if [ -f $PIDFILE ]; then kill $(cat $PIDFILE) 2>/dev/null; rm -f $PIDFILE; fi
    ;;
  restart)
    $0 stop; sleep 0.2; $0 start
    ;;
  status)
    if [ -f $PIDFILE ] && kill -0 $(cat $PIDFILE) 2>/dev/null; then exit 0; fi
    exit 3
    ;;
  *) echo "usage: $0 start|stop|restart|status"; exit 2 ;;
esac
"""

INSTALL_SCRIPT = """#!/bin/sh
# install-release VERSION | --rollback   (what a vendor's update script does, in small)
set -e
cd {root}
if [ "$1" = "--rollback" ]; then
  [ -L previous ] || {{ echo "nothing to roll back: no release was installed"; exit 0; }}
  ln -sfn "$(readlink previous)" current
  echo "rolled back to $(cat current/VERSION)"
  exit 0
fi
[ -d "releases/$1" ] || {{ echo "release $1 not found" >&2; exit 1; }}
ln -sfn "$(readlink current)" previous
ln -sfn "releases/$1" current
echo "installed $1"
"""


class ToyApp:
    """One installed toy application. Use as a context manager (removes the init script)."""

    def __init__(self, base: Path, versions: dict[str, bool], current: str) -> None:
        """``versions``: version → healthy."""
        self.root = base / "toyapp"
        self.name = f"custode-toyapp-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        for version, healthy in versions.items():
            release = self.root / "releases" / version
            release.mkdir(parents=True)
            (release / "VERSION").write_text(version + ("" if healthy else "\nbroken") + "\n")
        os.symlink(f"releases/{current}", self.root / "current")
        self.init_script = Path("/etc/init.d") / self.name
        self.install_script = self.root / "install-release"
        self.install_script.write_text(INSTALL_SCRIPT.format(root=self.root))
        self.install_script.chmod(0o755)

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def __enter__(self) -> "ToyApp":
        if shutil.which("service") is None:
            raise RuntimeError("the 'service' command is missing: apt-get install init-system-helpers")
        self.init_script.write_text(INIT_SCRIPT.format(name=self.name, root=self.root, python=sys.executable,
                                                       script=Path(__file__).resolve(), port=self.port))
        self.init_script.chmod(0o755)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([str(self.init_script), "stop"], capture_output=True, timeout=10)
        self.init_script.unlink(missing_ok=True)

    def start(self) -> None:
        subprocess.run([str(self.init_script), "start"], check=True, timeout=10)
        assert wait_until(lambda: self.answer() is not None, 10), "toy app did not start"

    def answer(self) -> tuple[int, dict] | None:
        try:
            status, body = http_get(self.health_url, timeout=2)
        except OSError:
            return None
        return status, json.loads(body)

    def version(self) -> str | None:
        answer = self.answer()
        return answer[1]["version"] if answer else None


def serve(root: str, port: str) -> None:
    lines = (Path(root) / "current" / "VERSION").read_text().split()  # read once: an update needs a restart
    healthy = "broken" not in lines

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = json.dumps({"status": "ok" if healthy else "error", "version": lines[0]}).encode()
            self.send_response(200 if healthy else 500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
