"""The Windows service: ``custode service install|remove|start|stop``.

pywin32's service framework is imported only here and only on Windows, so
the Linux agent never loads it. The service runs the same ``Agent`` as
``custode run``; the config path given at install time is stored in the
service's registry parameters by passing it as a service argument.
"""

from __future__ import annotations

import sys
import threading

SERVICE_NAME = "Custode"
DISPLAY_NAME = "Custode monitoring agent"
DESCRIPTION = "Collects host metrics, checks backups and updates, exposes /metrics (Custode)."


def _service_class():  # pragma: no cover - needs Windows
    import servicemanager
    import win32event
    import win32service
    import win32serviceutil

    class CustodeService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args):
            super().__init__(args)
            self._stop_event = win32event.CreateEvent(None, 0, 0, None)
            self._stopped = threading.Event()
            self._config = args[1] if len(args) > 1 else None

        def SvcStop(self):  # noqa: N802 - pywin32 naming
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self._stopped.set()
            win32event.SetEvent(self._stop_event)

        def SvcDoRun(self):  # noqa: N802
            from agent import logs
            from agent.config_loader import load
            from agent.runtime import Agent

            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
            loaded = load(self._config)
            logs.setup(loaded.model.logging.level, "json")
            agent = Agent(loaded)
            agent.start()
            self._stopped.wait()
            agent.stop()
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} stopped")

    return CustodeService


def handle(action: str, config: str | None) -> int:  # pragma: no cover - needs Windows
    """Install/remove/start/stop through pywin32's own command-line handler."""
    import win32serviceutil

    cls = _service_class()
    argv = [sys.argv[0], action]
    if action == "install":
        argv = [sys.argv[0], "--startup", "auto", "install"]
    if config and action in ("install", "start"):
        cls._exe_args_ = f'"{config}"'
    win32serviceutil.HandleCommandLine(cls, argv=argv)
    return 0
