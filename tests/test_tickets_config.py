"""The tickets: section refuses what would fail at 3 a.m., naming the key and the fix."""

from __future__ import annotations

import pytest

from custode.agent.config_loader import ConfigError, load_text

ZD = "{type: zendesk, url: 'https://p.zendesk.com', email: a@p.example.it, token: {env: ZT}}"


@pytest.mark.parametrize("text, expected", [
    ("tenants: {a: {name: A, tickets: {backend: glpii}}}\nagent: {tenant: a}\n"
     f"tickets: {{backends: {{glpi: {ZD}}}}}", "ticket backend 'glpii' is not defined under tickets.backends"),
    (f"tickets: {{default_backend: zd, backends: {{desk: {ZD}}}}}", "default_backend 'zd' is not under"),
    ("tickets: {backends: {posta: {type: email, to: [a@b.it]}}}", "needs an SMTP server"),
    ("tickets: {backends: {zd: {type: zendesk, url: 'https://p.zendesk.com', email: a@p.example.it, "
     "token: plain-token}}}", "a secret must not be written in the config"),
    ("tickets: {backends: {g: {type: glpi, url: 'https://g.example.it/api', user_token: {env: U}}}}",
     "must end with apirest.php"),
    ("tickets: {backends: {g: {type: glpi, url: 'https://g.example.it/apirest.php', user_token: {env: U}, "
     "priorities: {high: 9}}}}", "GLPI priorities go from 1"),
    ("tickets: {alertmanager: {enabled: true}}", "the bridge must be authenticated"),
    ("tickets: {alertmanager: {enabled: true, token: {env: T}, path: /metrics}}", "not be one of Custode's own"),
    ("tickets: {alertmanager: {enabled: true, token: {env: T}, default_tenant: nobody}}",
     "tenant 'nobody' is not defined under tenants"),
    ("tickets: {backends: {w: {type: webhook, url: 'ftp://x', secret: {env: S}}}}", "is not an http(s) URL"),
])
def test_bad_ticket_config_is_refused_with_the_fix(text, expected):
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    assert expected in str(caught.value)


def test_sla_targets_keep_the_defaults_for_priorities_not_written():
    sla = load_text("tickets: {sla: {high: {take_charge: 4h, resolve: 2d}}}").model.tickets.sla
    assert (sla["low"].take_charge, sla["medium"].take_charge) == (16 * 3600, 12 * 3600)
    assert (sla["high"].take_charge, sla["high"].resolve) == (4 * 3600, 2 * 86400)
