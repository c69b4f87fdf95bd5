"""A collector whose code cannot be imported is logged and reported, and the agent still starts.

Two places a broken collector can come from: a module dropped beside the
built-in ones, and a third-party plug-in registered through the
``custode.collectors`` entry point group. Both are put in a temporary
location for the test; the registry is rediscovered from scratch and put
back as it was afterwards.
"""

from __future__ import annotations

import logging

import pytest
from conftest import free_port, http_get, wait_until
from plugin_dist import fake_distribution

from custode import collectors
from custode.agent.config_loader import load_text
from custode.agent.runtime import Agent
from custode.collectors import registry


@pytest.fixture
def plugin_location(tmp_path, monkeypatch):
    """A folder on ``collectors.__path__`` and a distribution on ``sys.path``, each with code that raises on import."""
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "exploding.py").write_text('raise RuntimeError("the vendor SDK is missing")\n', encoding="utf-8")
    site = fake_distribution(tmp_path / "site", "custode-vendor-probe", "custode.collectors",
                             {"vendorprobe": "custode_vendor_probe:Probe"},
                             {"custode_vendor_probe": "import a_module_nobody_installed\n"})
    monkeypatch.setattr(collectors, "__path__", [*collectors.__path__, str(modules)])
    monkeypatch.syspath_prepend(str(site))
    registry.available()  # built-ins register when first imported: only once per process
    saved = dict(registry._REGISTRY), dict(registry._BROKEN)
    monkeypatch.setattr(registry, "_discovered", False)
    registry._BROKEN.clear()
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved[0])
    registry._BROKEN.clear()
    registry._BROKEN.update(saved[1])


def test_broken_module_and_plugin_are_logged_with_their_names(plugin_location, caplog) -> None:
    with caplog.at_level(logging.ERROR, logger="custode.collectors.registry"):
        known = registry.available()
    assert "cpu" in known and "exploding" not in known and "vendorprobe" not in known
    broken = registry.broken()
    assert set(broken) == {"exploding", "vendorprobe"}
    assert "collectors.exploding" in broken["exploding"] and "the vendor SDK is missing" in broken["exploding"]
    assert "custode_vendor_probe:Probe" in broken["vendorprobe"]
    assert "a_module_nobody_installed" in broken["vendorprobe"]
    records = {getattr(r, "collector", None): r for r in caplog.records}
    assert records["exploding"].levelno == logging.ERROR
    assert records["exploding"].source == "module custode.collectors.exploding"
    assert records["vendorprobe"].source == "plug-in custode_vendor_probe:Probe"


def test_agent_starts_and_reports_the_broken_collector(plugin_location) -> None:
    loaded = load_text("collectors:\n  exploding: {interval: 5s}\n")  # naming it is not a config error
    agent = Agent(loaded, listen=f"127.0.0.1:{free_port()}")
    agent.start()
    try:
        url = f"http://127.0.0.1:{agent.port}/metrics"

        def lines() -> list[str]:
            return http_get(url)[1].decode().splitlines()

        for name in ("exploding", "vendorprobe"):
            series = f'custode_collector_success{{collector="{name}"}} 0.0'
            assert wait_until(lambda series=series: series in lines(), 10), [x for x in lines() if "success" in x]
        cpu_ok = 'custode_collector_success{collector="cpu"} 1.0'
        assert wait_until(lambda: cpu_ok in lines(), 10), [x for x in lines() if "success" in x]
        failed = {r.name: r.last_outcome for r in agent.runners if r.name in ("exploding", "vendorprobe")}
        assert "the vendor SDK is missing" in (failed["exploding"].error or "")
    finally:
        agent.stop()
