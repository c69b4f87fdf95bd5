"""Farm probes are found, not listed: every module of agent/farm/probes is the probe of one transport shell."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import tomllib
import typing
from pathlib import Path

import pytest
from farm_helpers import linux_target

import custode.agent.farm.probes as registry
from custode.agent.farm.poller import FarmPoller
from custode.agent.farm.probes import (
    DuplicateShellError,
    UnknownShellError,
    broken_probes,
    contract_problems,
    probe_for,
    probes,
)
from custode.agent.farm.snapshot import ProbeOutputError
from custode.agent.transports import CommandResult, Transport

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(registry.__file__).parent


def _module_names() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(registry.__path__) if not info.name.startswith("_")}


@pytest.fixture
def extra_probes(tmp_path, monkeypatch):
    """Put more modules into the probe package (a second folder on its ``__path__``) and rediscover."""
    folder = tmp_path / "more_probes"
    folder.mkdir()
    added: list[str] = []

    def add(name: str, source: str) -> None:
        (folder / f"{name}.py").write_text(source, encoding="utf-8")
        added.append(f"{registry.__name__}.{name}")

    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(folder)])
    monkeypatch.setattr(registry, "_loaded", None)
    monkeypatch.setattr(registry, "_broken", {})
    yield add
    for module in added:
        sys.modules.pop(module, None)
    monkeypatch.undo()
    registry._loaded = None  # the next user finds the real probes again


def test_the_registry_is_exactly_the_modules_of_its_package() -> None:
    found = probes()
    assert {probe.__name__ for probe in found.values()} == {f"{registry.__name__}.{name}" for name in _module_names()}
    assert broken_probes() == {}
    assert {shell: probe.__name__.rsplit(".", 1)[-1] for shell, probe in found.items()} == {
        "posix": "linux", "powershell": "windows"}


def test_the_probes_serve_exactly_the_shells_the_transports_speak() -> None:
    shells = set(typing.get_args(typing.get_type_hints(Transport)["shell"]))
    assert set(probes()) == shells


@pytest.mark.parametrize("name", sorted(_module_names()))
def test_each_probe_module_has_the_contract(name: str) -> None:
    module = importlib.import_module(f"{registry.__name__}.{name}")
    probe = probes()[module.SHELL]
    assert probe is module
    assert contract_problems(probe) == []
    assert isinstance(probe.SHELL, str) and probe_for(probe.SHELL) is probe
    full, fast = probe.probe_command(), probe.probe_command(include_updates=False)
    assert isinstance(full, str) and isinstance(fast, str) and full and fast and full != fast
    with pytest.raises(ProbeOutputError):  # output that is not the probe's is said so, never misread
        probe.parse("", now=0.0)


def test_the_probe_scripts_are_package_data() -> None:
    data = {path.name for path in PACKAGE_DIR.iterdir() if path.is_file() and path.suffix not in (".py", ".pyc")}
    assert data == {"linux.sh", "windows.ps1"}
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"].get(registry.__name__, [])
    assert all(any(Path(name).match(pattern) for pattern in patterns) for name in data), (
        f'pyproject.toml [tool.setuptools.package-data] must ship {sorted(data)}: "{registry.__name__}" = {patterns}')


def test_contract_problems_name_what_is_missing() -> None:
    class Half:
        SHELL = ""

        @staticmethod
        def probe_command(include_updates: bool = True) -> str:
            return ""

        @staticmethod
        def parse(output: str) -> None:  # no ``now``
            return None

    assert contract_problems(Half) == ["no SHELL string", "no parse(output, *, now) function"]
    assert contract_problems(object()) == ["no SHELL string", "no probe_command(*, include_updates) function",
                                           "no parse(output, *, now) function"]


def test_an_unknown_shell_is_an_error_naming_the_host_and_the_known_shells() -> None:
    with pytest.raises(UnknownShellError) as raised:
        probe_for("cmd", host="srv-anagrafe")
    message = str(raised.value)
    assert "host srv-anagrafe" in message and "'cmd'" in message
    assert "'posix'" in message and "'powershell'" in message


class _FakeTransport(Transport):
    """A transport of any shell that answers every command with nothing and records what it was given."""

    kind = "ssh"

    def __init__(self, name: str, shell: str) -> None:
        super().__init__(name)
        self.shell = shell  # type: ignore[assignment]
        self.commands: list[str] = []
        self.closed = 0

    def run(self, command, timeout, *, max_output=0):
        self.commands.append(command)
        return CommandResult(exit_code=0, stdout="", stderr="", duration=0.0)

    def close(self) -> None:
        self.closed += 1


def _poll(shell: str) -> tuple[_FakeTransport, str | None]:
    made: list[_FakeTransport] = []

    def factory(name, host):
        made.append(_FakeTransport(name, shell))
        return made[-1]

    poller = FarmPoller([linux_target("srv-anagrafe")], workers=1, transport_factory=factory, updates_interval=None)
    try:
        [result] = poller.poll()
    finally:
        poller.close()
    assert not result.up
    return made[0], result.error


def test_the_poller_runs_the_probe_of_the_hosts_shell() -> None:
    for shell, module in (("posix", "linux"), ("powershell", "windows")):
        transport, error = _poll(shell)
        probe = importlib.import_module(f"{registry.__name__}.{module}")
        assert transport.commands == [probe.probe_command(include_updates=False)]
        assert error is not None and ("Linux" if module == "linux" else "Windows") in error


def test_a_host_whose_shell_has_no_probe_is_a_poll_error_not_the_linux_probe() -> None:
    transport, error = _poll("cmd")
    assert transport.commands == [] and transport.closed >= 1
    assert error is not None and "host srv-anagrafe" in error and "'posix'" in error and "'powershell'" in error
    assert "internal error" not in error


def test_two_probes_claiming_one_shell_stop_discovery_naming_both(extra_probes) -> None:
    extra_probes("zz_twin", "SHELL = 'posix'\ndef probe_command(*, include_updates=True):\n    return ''\n"
                            "def parse(output, *, now):\n    raise NotImplementedError\n")
    with pytest.raises(DuplicateShellError) as raised:
        probes()
    message = str(raised.value)
    assert "'posix'" in message
    assert f"{registry.__name__}.linux" in message and f"{registry.__name__}.zz_twin" in message
    transport, error = _poll("posix")  # every poll says so until it is fixed, none runs a probe
    assert transport.commands == [] and error is not None and f"{registry.__name__}.zz_twin" in error


def test_a_broken_probe_module_is_reported_and_the_others_still_load(extra_probes, caplog) -> None:
    extra_probes("zz_cmd", "SHELL = 'cmd'\ndef probe_command(*, include_updates=True):\n    return ''\n")
    extra_probes("zz_broken", "import a_module_nobody_installed\n")
    assert set(probes()) == {"posix", "powershell"}
    broken = broken_probes()
    assert set(broken) == {"zz_cmd", "zz_broken"}
    assert "no parse(output, *, now) function" in broken["zz_cmd"]
    assert "ModuleNotFoundError" in broken["zz_broken"]
    assert {getattr(record, "probe", None) for record in caplog.records} >= {"zz_cmd", "zz_broken"}
    with pytest.raises(UnknownShellError) as raised:
        probe_for("cmd", host="srv-anagrafe")
    assert f"module {registry.__name__}.zz_cmd is no farm probe" in str(raised.value)
