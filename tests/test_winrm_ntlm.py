"""NTLM, the default ``auth`` of a WinRM host, end to end through the WS-Management double.

pywinrm authenticates with requests-ntlm (pyspnego underneath) on the client;
the double accepts with pyspnego's own NTLM acceptor, reading the account from
the file ``NTLM_USER_FILE`` names (``DOMAIN:user:password``), the way
gss-ntlmssp and Heimdal read it. Both transports a farm uses are covered:

* HTTPS (5986, the product default): pywinrm sends no message encryption
  there, and the NTLM AUTHENTICATE message carries the channel binding of the
  TLS certificate (RFC 5929 tls-server-end-point), which the double checks;
* HTTP (5985): pywinrm seals every SOAP message with the NTLM session key
  (MS-WSMV 2.2.9.1.1 ``multipart/encrypted``), which the double decrypts and
  answers in kind, refusing a plain one as Windows does by default.

What this does not prove: a real domain controller behind the host (NTLM
pass-through to a DC, an account locked out, NTLMv1 refused by policy).
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from winrm_server import WinrmServer, ntlm_user_file

from custode.agent.config_loader import load_text
from custode.agent.farm.probes.windows import COMMAND_HEADER
from custode.agent.farm.service import new_poller
from custode.agent.transports.base import TransportError
from custode.agent.transports.config import WinrmOptions
from custode.agent.transports.winrm import WinrmTransport

PASSWORD_ENV = "CUSTODE_TEST_WINRM_NTLM_PASSWORD"


@pytest.fixture(params=["https", "http"])
def ntlm_double(request, tmp_path, monkeypatch) -> Iterator[WinrmServer]:
    double = WinrmServer(tls=request.param == "https", auth="ntlm", domain="COMUNE-CREMA", base=tmp_path / "winrm")
    monkeypatch.setenv("NTLM_USER_FILE", str(ntlm_user_file(tmp_path / "ntlm-users", [double])))
    monkeypatch.setenv(PASSWORD_ENV, double.password)
    with double:
        yield double


def options(double: WinrmServer, **overrides: object) -> WinrmOptions:
    values: dict[str, object] = {"user": double.account, "password": {"env": PASSWORD_ENV}, "port": double.port,
                                 "auth": "ntlm", "scheme": "https" if double.tls else "http", "connect_timeout": 5}
    if double.tls:
        values["ca_file"] = str(double.ca_file)
    values.update(overrides)
    return WinrmOptions.model_validate(values)


def transport(double: WinrmServer, **overrides: object) -> WinrmTransport:
    return WinrmTransport("srv-tributi", "127.0.0.1", options(double, **overrides))


def ntlm_type(header_value: str) -> int:
    """The NTLMSSP message type in an ``Authorization``/``WWW-Authenticate`` value (``Negotiate <base64>``)."""
    token = base64.b64decode(header_value.split(" ", 1)[1])
    assert token.startswith(b"NTLMSSP\0"), token[:16]
    return int.from_bytes(token[8:12], "little")


def test_the_right_password_runs_a_script_after_the_three_legs_on_one_connection(ntlm_double):
    ntlm_double.on("Get-Service", (0, "Running\r\n", ""))
    with transport(ntlm_double) as winrm_transport:
        first = winrm_transport.run("Get-Service -Name 'Spooler'", timeout=20)
        second = winrm_transport.run("Get-Service -Name 'W32Time'", timeout=20)
    assert first.ok and second.ok and first.stdout == "Running\r\n"
    assert ntlm_double.scripts == ["Get-Service -Name 'Spooler'", "Get-Service -Name 'W32Time'"]

    log = ntlm_double.auth_log
    challenge, negotiate, authenticate = log[0], log[1], log[2]
    assert challenge.authorization is None and challenge.status == 401  # anonymous first, as requests sends it
    assert negotiate.scheme == "Negotiate" and negotiate.ntlm_message == 1 and negotiate.status == 401
    assert negotiate.challenge is not None and ntlm_type(negotiate.challenge) == 2  # the server's CHALLENGE
    assert authenticate.scheme == "Negotiate" and authenticate.ntlm_message == 3 and authenticate.status == 200
    assert ntlm_type(authenticate.authorization or "") == 3
    assert {record.connection for record in log} == {challenge.connection}, "the handshake and all that follows, " \
                                                                            "on one keep-alive connection"
    assert all(record.authorization is None and record.status == 200 for record in log[3:])  # authenticated
    soap = log[3:] if ntlm_double.tls else log[4:]  # over http the first is pywinrm's empty encryption setup
    assert soap and all(record.encrypted is (not ntlm_double.tls) for record in soap)
    assert ntlm_double.actions.count("Command") == 2 and ntlm_double.actions.count("Create") == 1


def test_a_wrong_password_is_one_line_naming_the_fix(ntlm_double, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    with transport(ntlm_double) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=20)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("srv-tributi: WinRM refused the credentials of COMUNE-CREMA\\custode (auth ntlm): "
                              f"check the password in environment variable {PASSWORD_ENV}")
    assert "Remote Management Users" in message
    assert [(record.ntlm_message, record.status) for record in ntlm_double.auth_log] == [(None, 401), (1, 401),
                                                                                       (3, 401)]
    assert ntlm_double.actions == []  # refused before any WS-Management action


def test_a_bare_user_name_gets_the_domain_hint(ntlm_double):
    with transport(ntlm_double, user=ntlm_double.user) as winrm_transport, pytest.raises(TransportError) as caught:
        winrm_transport.run("hostname", timeout=20)
    assert "a domain account is written DOMAIN\\user or user@domain" in str(caught.value)


def test_over_https_the_channel_binding_must_match_the_certificate(tmp_path, monkeypatch):
    """The double checks the binding pyspnego's client computed from the certificate: a wrong one is refused."""
    double = WinrmServer(tls=True, auth="ntlm", base=tmp_path / "winrm")
    monkeypatch.setenv("NTLM_USER_FILE", str(ntlm_user_file(tmp_path / "ntlm-users", [double])))
    monkeypatch.setenv(PASSWORD_ENV, double.password)
    double.on("hostname", (0, "SRV\r\n", ""))
    with double:
        assert transport(double).run("hostname", timeout=20).ok  # the real binding
        wrong = b"tls-server-end-point:" + b"\0" * 32  # another certificate's
        monkeypatch.setattr(WinrmServer, "channel_bindings", property(lambda self: wrong))
        with pytest.raises(TransportError, match="refused the credentials"):
            transport(double).run("hostname", timeout=20)


def test_a_sealed_session_idle_past_the_host_timeout_is_renewed_not_failed(tmp_path, monkeypatch):
    """NTLM over http: the host closes an idle connection; the next poll must not send a body sealed for it."""
    double = WinrmServer(auth="ntlm", base=tmp_path / "winrm")
    monkeypatch.setenv("NTLM_USER_FILE", str(ntlm_user_file(tmp_path / "ntlm-users", [double])))
    monkeypatch.setenv(PASSWORD_ENV, double.password)
    double.on("hostname", (0, "SRV\r\n", ""))
    with double, transport(double) as winrm_transport:
        winrm_transport.sealed_idle = 0.2
        assert winrm_transport.run("hostname", timeout=20).ok
        double.close_connections()  # http.sys' idle timeout
        time.sleep(0.3)
        assert winrm_transport.run("hostname", timeout=20).ok
        assert double.actions.count("Create") == 1, "the shell is kept: it belongs to the account"
        connections = [record.connection for record in double.auth_log if record.ntlm_message == 3]
        assert len(set(connections)) == 2  # a new handshake on the new connection, then the sealed messages


def test_a_farm_poll_with_auth_ntlm(ntlm_double, monkeypatch):
    """The poller with its default auth: up with the right password, down with the fix in words with a wrong one."""
    fixture = Path(__file__).parent / "data" / "farm" / "windows" / "server2019-c-full.json"
    ntlm_double.on(re.escape(COMMAND_HEADER), (0, fixture.read_text(encoding="ascii").replace("\n", "\r\n"), ""))
    ca = f", ca_file: '{ntlm_double.ca_file}'" if ntlm_double.tls else ""
    scheme = "https" if ntlm_double.tls else "http"
    config = load_text(
        "agent: {tenant: crema}\ntenants:\n  crema: {name: Crema}\nhosts:\n"
        f"  fs-crema: {{address: 127.0.0.1, transport: winrm, tenant: crema, winrm: {{user: '{ntlm_double.account}', "
        f"password: {{env: {PASSWORD_ENV}}}, scheme: {scheme}, port: {ntlm_double.port}{ca}, connect_timeout: 5s}}}}\n")
    assert config.model.hosts["fs-crema"].winrm.auth == "ntlm"  # the default, not written in the config
    poller = new_poller(config.model)
    try:
        [result] = poller.poll()
        assert result.up, result.error
        assert result.snapshot is not None and result.snapshot.os.name.startswith("Microsoft Windows Server 2019")
        assert [r.ntlm_message for r in ntlm_double.auth_log[:3]] == [None, 1, 3]
    finally:
        poller.close()
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    poller = new_poller(config.model)
    try:
        [result] = poller.poll()
    finally:
        poller.close()
    assert not result.up and result.error is not None and "\n" not in result.error
    assert "refused the credentials of COMUNE-CREMA\\custode (auth ntlm)" in result.error
    assert f"check the password in environment variable {PASSWORD_ENV}" in result.error
