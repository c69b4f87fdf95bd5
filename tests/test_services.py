"""The service registry: every module of agent/services is a service, built only when the config uses it,
and its jobs run under one guard."""

from __future__ import annotations

import logging
import pkgutil

import custode.agent.services as services
from custode.agent.config_loader import load_text
from custode.agent.incidents import Incidents
from custode.agent.metric_cache import MetricCache
from custode.agent.services import Context, Job, Service, build_services, guarded, service_modules
from custode.agent.state import State


def _context(tmp_path, text: str) -> Context:
    state = State(tmp_path / "state.db")
    return Context(load_text(text), state, Incidents(state), MetricCache(), lambda *record: None)


def test_every_module_of_the_package_is_a_service_with_its_contract() -> None:
    modules = {info.name for info in pkgutil.iter_modules(services.__path__)}
    found = service_modules()
    assert {module.__name__.rsplit(".", 1)[-1] for module in found} == modules
    orders = [module.ORDER for module in found]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)
    for module in found:
        assert callable(module.build), module.__name__


def test_the_embedded_default_uses_no_feature_service_but_the_status_page(tmp_path) -> None:
    assert [service.name for service in build_services(_context(tmp_path, ""))] == ["status_page"]


def test_a_feature_in_the_config_brings_its_service(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CUSTODE_TEST_BRIDGE_TOKEN", "s3cret")
    text = ("backups:\n  expected:\n    default:\n      - {name: Anagrafe, schedule: '0 22 * * *'}\n"
            "tickets:\n  alertmanager: {enabled: true, token: {env: CUSTODE_TEST_BRIDGE_TOKEN}}\n")
    built = build_services(_context(tmp_path, text))
    assert [service.name for service in built] == ["backups", "alertmanager", "status_page"]
    backups, bridge, _ = built
    assert {job.id for job in backups.jobs(None)} == {"backups", "backups-prune"}  # type: ignore[arg-type]
    assert [(route.path, route.methods) for route in bridge.routes()] == [("/alertmanager", ("POST",))]
    assert isinstance(backups, Service)


def test_a_guarded_job_never_raises_and_does_not_run_once_stopping(caplog) -> None:
    calls: list[str] = []

    def failing(name: str) -> None:
        calls.append(name)
        raise RuntimeError("the mailbox is on fire")

    stopping = False
    run = guarded(Job("demo", failing, "interval", {"seconds": 1}), lambda: stopping)
    with caplog.at_level(logging.ERROR, logger="custode.agent.services"):
        run("first")
    assert calls == ["first"]
    assert any(getattr(record, "job", None) == "demo" for record in caplog.records)
    stopping = True
    run("second")
    assert calls == ["first"]
