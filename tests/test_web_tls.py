"""TLS, basic auth and the web config file, against the programs that define them.

node_exporter (Debian's 1.5, exporter-toolkit) reads the same web config file
as Custode; a differential test sends both the same requests and compares the
answers. A real Prometheus scrapes Custode over TLS with basic auth. The
rest runs Custode's server in this process, with certificates made for the
test (``tls_material``).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import bcrypt
import pytest
from conftest import free_port, host_clock, host_env, require_binary, stop_process, wait_until
from tls_material import Authority, serial_of

from custode.agent.config_loader import ConfigError
from custode.agent.web.basic_auth import BasicAuth, hash_password
from custode.agent.web.server import Limits
from custode.agent.web.webconfig import WebConfigSource, load_web_config

PASSWORD = "s3cret-scrape"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()  # cost 4: fast tests, same code path


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def web_config(folder: Path, ca: Authority, *, users: bool = True, client_certs: bool = False,
               headers: str = "") -> Path:
    server = ca.issue("server", "127.0.0.1", server=True)
    lines = ["tls_server_config:", f"  cert_file: {server.cert.name}", f"  key_file: {server.key.name}"]
    if client_certs:
        lines += ["  client_auth_type: RequireAndVerifyClientCert", f"  client_ca_file: {ca.pem.name}"]
    if users:
        lines += ["basic_auth_users:", f"  prometheus: '{HASH}'"]
    if headers:
        lines += ["http_server_config:", "  headers:", *[f"    {h}" for h in headers.splitlines()]]
    path = folder / "web.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def client_context(ca: Authority, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca.pem))
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def ask(port: int, context: ssl.SSLContext | None, headers: dict[str, str] | None = None,
        method: str = "GET", path: str = "/metrics") -> int | str:
    """The status code, or the kind of failure when there is none to read."""
    conn: http.client.HTTPConnection
    if context is None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    else:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    except (ssl.SSLError, ConnectionError) as exc:
        return f"tls failure ({type(exc).__name__})"
    finally:
        conn.close()


@pytest.fixture
def serve(web_server):
    """Custode's server in this process on ``web`` (a WebConfigSource)."""
    return lambda web, limits=None: web_server(web=web, limits=limits)


# --- the web config file -----------------------------------------------------------------


def test_tls_and_basic_auth_guard_every_route(tmp_path, serve) -> None:
    ca = Authority(tmp_path, time.time())
    server = serve(WebConfigSource(web_config(tmp_path, ca, headers="X-Frame-Options: deny")))
    port, context = server.server_address[1], client_context(ca)
    for path in ("/metrics", "/healthz", "/ready"):  # the status page's "/": tests/test_status_page.py
        assert ask(port, context, path=path) == 401
        assert ask(port, context, basic("prometheus", "wrong"), path=path) == 401
        assert ask(port, context, basic("prometheus", PASSWORD), path=path) == 200
    assert ask(port, None) == 400  # plain HTTP on the TLS port, as Go answers
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=context)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.getheader("WWW-Authenticate") == "Basic"
    assert response.getheader("X-Frame-Options") == "deny"  # on refusals too
    conn.close()


def test_a_password_longer_than_bcrypt_reads_is_refused_not_truncated() -> None:
    secret = "p" * 72
    auth = BasicAuth({"u": bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4)).decode()})
    assert auth.allows(basic("u", secret)["Authorization"])
    assert not auth.allows(basic("u", secret + "anything")["Authorization"])
    with pytest.raises(ValueError, match="72"):
        hash_password("x" * 73)


def test_a_successful_check_is_cached_and_an_unknown_user_costs_a_check_too(monkeypatch) -> None:
    calls: list[bytes] = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda password, digest: calls.append(digest) or real(password, digest))
    auth = BasicAuth({"prometheus": HASH})
    header = basic("prometheus", PASSWORD)["Authorization"]
    assert auth.cached(header) is None
    assert auth.allows(header) and auth.allows(header)
    assert auth.cached(header) is True
    assert len(calls) == 1  # the second scrape did not run bcrypt
    assert not auth.allows(basic("nobody", PASSWORD)["Authorization"])
    assert len(calls) == 2  # an unknown user is checked against the decoy: no timing difference
    assert auth.cached("Bearer x") is False and auth.cached(None) is False


@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  client_auth_type: RequireAnyClientCert\n",
     "without verifying it"),
    ("basic_auth_users:\n  prometheus: plain-password\n", "must be a bcrypt hash"),
    ("http_server_config:\n  headers:\n    X-Powered-By: custode\n", "can not be configured"),
    ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "expected one of deny, sameorigin"),
    ("tls_server_config:\n  cert_file: a.crt\n", "missing key_file"),
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  min_version: TLS13\n  max_version: TLS12\n",
     "newer than max_version"),
    ("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n  cipher_suits: []\n", "cipher_suits"),
    ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "file not found"),
])
def test_a_broken_web_config_names_the_key_and_the_fix(tmp_path, text, message) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_web_config(path)
    problems = "\n".join(str(p) for p in caught.value.problems)
    assert message in problems and str(path) in problems


def test_custode_run_refuses_a_broken_web_config_in_one_clear_line(tmp_path) -> None:
    (tmp_path / "web.yml").write_text("basic_auth_users:\n  prometheus: not-a-hash\n")
    done = subprocess.run([sys.executable, "-m", "custode.agent", "run", "--listen", f"127.0.0.1:{free_port()}",
                           "--web.config.file", str(tmp_path / "web.yml")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "web.yml" in done.stderr and "bcrypt hash" in done.stderr


def test_hash_password_reads_stdin_and_prints_a_hash_the_server_accepts() -> None:
    done = subprocess.run([sys.executable, "-m", "custode.agent", "web", "hash-password", "--cost", "4"],
                          input="correct horse\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    digest = done.stdout.strip()
    assert BasicAuth({"u": digest}).allows(basic("u", "correct horse")["Authorization"])


# --- reload without restart --------------------------------------------------------------


def test_a_renewed_certificate_and_new_users_apply_without_a_restart(tmp_path, serve) -> None:
    ca = Authority(tmp_path, time.time())
    path = web_config(tmp_path, ca)
    server = serve(WebConfigSource(path), Limits(reload_interval=0.1))
    port = server.server_address[1]

    def served_serial() -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with client_context(ca).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                return serial_of(tls.getpeercert(binary_form=True) or b"")

    first = served_serial()
    renewed = ca.issue("server", "127.0.0.1", server=True)  # same file names, new key and serial
    assert wait_until(lambda: served_serial() == serial_of(renewed.cert.read_bytes()), 10), "not reloaded"
    assert served_serial() != first
    other = bcrypt.hashpw(b"rotated", bcrypt.gensalt(4)).decode()
    path.write_text(path.read_text().replace(HASH, other))
    assert wait_until(lambda: ask(port, client_context(ca), basic("prometheus", "rotated")) == 200, 10)
    assert ask(port, client_context(ca), basic("prometheus", PASSWORD)) == 401


def test_a_broken_edit_keeps_the_last_good_settings_and_says_so(tmp_path, serve, caplog) -> None:
    ca = Authority(tmp_path, time.time())
    path = web_config(tmp_path, ca)
    web = WebConfigSource(path)
    server = serve(web, Limits(reload_interval=0.1))
    port = server.server_address[1]
    path.write_text(path.read_text() + "basic_auth_users_typo: {}\n")
    assert wait_until(lambda: not web.last_reload_ok, 10)
    assert ask(port, client_context(ca)) == 401  # still authenticated, still TLS
    assert ask(port, client_context(ca), basic("prometheus", PASSWORD)) == 200
    families = {f.name: f for f in server.metric_families()}
    assert families["custode_web_config_last_reload_successful"].samples[0].value == 0
    assert any("web config not reloaded" in r.getMessage() for r in caplog.records)


# --- against node_exporter and Prometheus (Go: the real clock) ----------------------------


def _start_custode(tmp_path: Path, web: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "CUSTODE_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "custode.agent", "run", "--listen", f"127.0.0.1:{port}",
                             "--web.config.file", str(web)], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "custode.log", "wb"))
    return proc, port


def _start_node_exporter(tmp_path: Path, web: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web}",
                             "--collector.disable-defaults", "--collector.loadavg"], env=host_env(),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "node_exporter.log", "wb"))
    return proc, port


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.integration
@pytest.mark.real_clock
@pytest.mark.parametrize("client_certs", [False, True], ids=["basic-auth", "client-certificates"])
def test_custode_answers_like_node_exporter_on_the_same_web_config(tmp_path, client_certs) -> None:
    ca = Authority(tmp_path, host_clock())
    web = web_config(tmp_path, ca, client_certs=client_certs)
    cert = ca.issue("client", "prometheus", server=False)
    stranger = Authority(tmp_path / "other", host_clock(), "Stranger CA") if client_certs else None
    started = [_start_custode(tmp_path, web), _start_node_exporter(tmp_path, web)]
    try:
        for proc, port in started:
            assert wait_until(lambda p=proc, n=port: _listening(n) or p.poll() is not None, 30)
            assert proc.poll() is None, (tmp_path / "custode.log").read_text()
        good = client_context(ca, (cert.cert, cert.key) if client_certs else None)
        cases: dict[str, tuple[ssl.SSLContext | None, dict[str, str], str]] = {
            "no credentials": (good, {}, "GET"),
            "wrong password": (good, basic("prometheus", "wrong"), "GET"),
            "unknown user": (good, basic("grafana", PASSWORD), "GET"),
            "not base64": (good, {"Authorization": "Basic !!!"}, "GET"),
            "bearer instead of basic": (good, {"Authorization": "Bearer " + PASSWORD}, "GET"),
            "right password": (good, basic("prometheus", PASSWORD), "GET"),
            "right password, HEAD": (good, basic("prometheus", PASSWORD), "HEAD"),
            "plain HTTP on the TLS port": (None, basic("prometheus", PASSWORD), "GET"),
        }
        if client_certs:
            assert stranger is not None
            foreign = stranger.issue("client", "intruder", server=False)
            cases["no client certificate"] = (client_context(ca), basic("prometheus", PASSWORD), "GET")
            cases["certificate from another CA"] = (client_context(ca, (foreign.cert, foreign.key)),
                                                    basic("prometheus", PASSWORD), "GET")
        answers = {name: [ask(port, context, headers, method) for _, port in started]
                   for name, (context, headers, method) in cases.items()}
    finally:
        for proc, _ in started:
            stop_process(proc)
    differing = {name: pair for name, pair in answers.items()
                 if pair[0] != pair[1] and not all(isinstance(a, str) for a in pair)}
    assert not differing, f"custode vs node_exporter: {differing}"
    assert answers["right password"][0] == 200 and answers["no credentials"][0] == 401
    assert answers["plain HTTP on the TLS port"][0] == 400
    if client_certs:
        assert isinstance(answers["no client certificate"][0], str)
        assert isinstance(answers["certificate from another CA"][0], str)
    log = (tmp_path / "custode.log").read_text()
    assert "Traceback" not in log
    assert all(json.loads(line) for line in log.splitlines())


@pytest.mark.integration
@pytest.mark.real_clock
def test_prometheus_scrapes_custode_over_tls_with_basic_auth_and_is_refused_without(tmp_path) -> None:
    ca = Authority(tmp_path, host_clock())
    web = web_config(tmp_path, ca)
    proc, port = _start_custode(tmp_path, web)
    prometheus = require_binary("prometheus", "prometheus")
    prom_port = free_port()
    target = f"    static_configs: [{{targets: ['127.0.0.1:{port}']}}]\n"
    tls = f"    scheme: https\n    tls_config: {{ca_file: '{ca.pem}'}}\n"
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\nscrape_configs:\n"
        f"  - job_name: custode\n{tls}    basic_auth: {{username: prometheus, password: '{PASSWORD}'}}\n{target}"
        f"  - job_name: wrong-password\n{tls}    basic_auth: {{username: prometheus, password: nope}}\n{target}"
        f"  - job_name: no-auth\n{tls}{target}"
        f"  - job_name: plain-http\n{target}")
    prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"], env=host_env(),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "prometheus.log", "wb"))

    def up() -> dict[str, float]:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", prom_port, timeout=2)
            conn.request("GET", "/api/v1/query?query=" + urllib.parse.quote("up"))
            result = json.loads(conn.getresponse().read())["data"]["result"]
        except (OSError, ValueError, KeyError):
            return {}
        return {r["metric"]["job"]: float(r["value"][1]) for r in result}

    try:
        assert wait_until(lambda: len(up()) == 4, 60), (tmp_path / "prometheus.log").read_text()[-2000:]
        assert up() == {"custode": 1.0, "wrong-password": 0.0, "no-auth": 0.0, "plain-http": 0.0}
    finally:
        stop_process(prom)
        stop_process(proc)


def test_a_handler_learns_which_basic_auth_user_was_let_in(tmp_path, serve) -> None:
    ca = Authority(tmp_path, time.time())
    server = serve(WebConfigSource(web_config(tmp_path, ca)))
    seen: list[str | None] = []
    from custode.agent.web import Response, Route

    server.router.add(Route("/whoami", lambda request: seen.append(request.user) or Response.text(200, "ok")),
                      "test")
    assert ask(server.server_address[1], client_context(ca), basic("prometheus", PASSWORD), path="/whoami") == 200
    assert seen == ["prometheus"]
