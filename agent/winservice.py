"""The Windows service: ``custode service install|remove|start|stop``.

pywin32's service framework is imported only here and only on Windows, so the
Linux agent never loads it. The service class must live at module level:
pywin32 registers it by its dotted name and its service host imports it from
there. The service runs the same ``Agent`` as ``custode run`` and reads the
config from the standard place, %ProgramData%\\Custode\\custode.yaml (or the
embedded default when that file does not exist).
"""

from __future__ import annotations

import sys
import threading

SERVICE_NAME = "Custode"
DISPLAY_NAME = "Custode monitoring agent"
DESCRIPTION = "Collects host metrics, judges them, opens incidents and serves /metrics (Custode)."

if sys.platform == "win32":  # pragma: no cover - needs Windows
    import servicemanager
    import win32service
    import win32serviceutil

    class CustodeService(win32serviceutil.ServiceFramework):
        _svc_name_ = SERVICE_NAME
        _svc_display_name_ = DISPLAY_NAME
        _svc_description_ = DESCRIPTION

        def __init__(self, args):
            super().__init__(args)
            self._stop_requested = threading.Event()

        def SvcStop(self):  # noqa: N802 - pywin32's naming
            self.ReportServiceStatus(win32service.SERVICE_STOP_PENDING)
            self._stop_requested.set()

        def SvcDoRun(self):  # noqa: N802
            from custode.agent import logs
            from custode.agent.config_loader import load
            from custode.agent.runtime import Agent

            servicemanager.LogInfoMsg(f"{SERVICE_NAME} starting")
            loaded = load(None)
            logs.setup(loaded.model.logging.level, "json")
            agent = Agent(loaded)
            agent.start()
            self._stop_requested.wait()
            agent.stop()
            servicemanager.LogInfoMsg(f"{SERVICE_NAME} stopped")


def handle(action: str) -> int:  # pragma: no cover - needs Windows
    """Install (automatic start), remove, start or stop through pywin32's own handler."""
    argv = [sys.argv[0], "--startup", "auto", "install"] if action == "install" else [sys.argv[0], action]
    win32serviceutil.HandleCommandLine(CustodeService, argv=argv)
    return 0
