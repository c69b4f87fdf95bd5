"""What every test server shares: start/stop as a context manager; a daemon's files under one folder."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TypeVar

S = TypeVar("S", bound="TestServer")


class TestServer:
    """``with Server(...) as s:`` starts it and always stops it."""

    __test__ = False  # not a pytest test class

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self: S) -> S:
        try:
            self.start()
        except BaseException:  # a half-started server must not outlive the test
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LoopbackServer(TestServer):
    """A server on 127.0.0.1 and the port in ``_port``."""

    _port: int

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port


class DaemonServer(LoopbackServer):
    """A real server binary run in the foreground, its config and log in ``base``."""

    config_name = "server.conf"
    log_name = "server.log"
    _base: Path
    _process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> Path:
        return self._base

    @property
    def config_path(self) -> Path:
        return self._base / self.config_name

    @property
    def log_path(self) -> Path:
        return self._base / self.log_name

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
