"""What every test server shares: start/stop as a context manager; a daemon's files under one folder."""

from __future__ import annotations

import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class ThreadedHttpServer(LoopbackServer):
    """An ``http.server`` serving in a daemon thread: the HTTP doubles of helpdesks and receivers."""

    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler], name: str,
               server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer) -> None:
        self._httpd = server_class((self.host, self._port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a hung request must not hold stop()
        self._port = int(self._httpd.server_address[1])  # kept, so stop()/start() serves the same url
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)
        self._thread.start()

    def _shutdown(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


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
