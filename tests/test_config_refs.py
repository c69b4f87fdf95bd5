"""Fields that name a tenant, a host or a ticket backend are declared references, and all are checked."""

from __future__ import annotations

import typing

import pytest
from pydantic import BaseModel

from custode.agent.config import Config
from custode.agent.config_loader import ConfigError, load_text
from custode.agent.config_refs import Reference

NAMES_LIKE_REFERENCES = {"tenant", "default_tenant", "host", "hosts", "backend", "default_backend"}
# (model, field) named like a reference that names something else, and why
NOT_REFERENCES = {
    ("AgentSection", "tenant"): "the agent's own tenant: it defines one, it names none",
    ("Config", "hosts"): "the host registry itself: it defines the hosts",
    ("SmtpSettings", "host"): "the SMTP server's address",
    ("ImapMailbox", "host"): "the IMAP server's address",
    ("MailRule", "host"): "a regex (or fixed name) for the machine a report names",
    ("ExpectedJob", "host"): "the machine as the backup software writes it, not a hosts: entry",
    ("RestoreSet", "backend"): "the tool (restic, borg, mirror, command)",
    ("LevelMapping", "hosts"): "host names as incidents carry them: a hosts: entry, or an agent's own hostname",
}


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    found: dict[str, type[BaseModel]] = {}

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ not in found:
                found[annotation.__name__] = annotation
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    visit(root)
    return found


def _is_reference(annotation: object) -> bool:
    if typing.get_origin(annotation) is typing.Annotated and any(
            isinstance(extra, Reference) for extra in typing.get_args(annotation)[1:]):
        return True
    return any(_is_reference(argument) for argument in typing.get_args(annotation))


def test_every_field_named_like_a_reference_is_declared_one() -> None:
    unchecked = []
    for name, model in sorted(_models(Config).items()):
        for field_name, field in model.model_fields.items():
            if field_name in NAMES_LIKE_REFERENCES and (name, field_name) not in NOT_REFERENCES \
                    and not _is_reference(field.annotation):
                unchecked.append(f"{name}.{field_name}")
    assert unchecked == [], "annotate these with custode.agent.config_refs (TenantRef, HostRef ...) or list them " \
                            "in NOT_REFERENCES with the reason"
    assert set(NOT_REFERENCES) <= {(name, field) for name, model in _models(Config).items()
                                   for field in model.model_fields}, "a NOT_REFERENCES entry names no field"


@pytest.mark.parametrize("text, where, what", [
    ("backups:\n  expected:\n    crem:\n      - {name: Anagrafe, schedule: '0 22 * * *'}\n",
     "backups.expected.crem", "tenant 'crem'"),
    ("hosts:\n  srv1: {address: 127.0.0.1, tenant: lodi}\n", "hosts.srv1.tenant", "tenant 'lodi'"),
    ("tickets:\n  alertmanager: {default_tenant: lodi}\n", "tickets.alertmanager.default_tenant", "tenant 'lodi'"),
    ("tenants:\n  crema: {name: Comune di Crema, tickets: {backend: glpi}}\n", "tenants.crema.tickets.backend",
     "ticket backend 'glpi'"),
])
def test_an_undefined_name_is_reported_where_it_is_written(text: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_text(text)
    assert any(problem.path == where and what in problem.message for problem in raised.value.problems), \
        raised.value


def test_no_tickets_is_a_valid_backend_name() -> None:
    load_text("tenants:\n  crema: {name: Comune di Crema, tickets: {backend: none}}\n")
