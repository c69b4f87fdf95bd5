"""SshTransport against a real OpenSSH server (tests/ssh_server.py) on 127.0.0.1.

Host key checks, authentication, timeouts and connection reuse are exactly
the parts a mock would get wrong, so every test here talks to Debian's sshd
or to a silent TCP listener.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, require_binary, wait_until
from ssh_server import SSH_KEYGEN, Blackhole, SshServer, generate_key, sha256_fingerprint

from custode.agent.secrets import SecretRef
from custode.agent.transports import HostConfig, open_transport
from custode.agent.transports.base import TransportError
from custode.agent.transports.config import SshOptions
from custode.agent.transports.ssh import SshTransport

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sshd() -> Iterator[SshServer]:
    with SshServer() as server:
        yield server


def options(server: SshServer, **changes: object) -> SshOptions:
    """Options that log in to ``server`` with its client key and known_hosts, no agent."""
    values: dict[str, object] = {"user": server.user, "port": server.port, "identity_file": server.client_key,
                                 "known_hosts": server.known_hosts, "use_agent": False, "connect_timeout": 5}
    values.update(changes)
    return SshOptions(**values)


@pytest.fixture
def transport(sshd: SshServer) -> Iterator[SshTransport]:
    with SshTransport("web1", sshd.host, options(sshd)) as opened:
        yield opened


def refusal(transport: SshTransport, command: str = "true") -> tuple[str, float]:
    """The TransportError text of a run that must fail, and how long it took."""
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.run(command, timeout=5)
    assert caught.value.host == transport.name
    return str(caught.value), time.monotonic() - started


def source_port(transport: SshTransport) -> str:
    result = transport.run("echo $SSH_CONNECTION", timeout=10)
    assert result.ok, result
    return result.stdout.split()[1]


# -- commands ------------------------------------------------------------------


def test_exit_zero_with_stdout(transport: SshTransport) -> None:
    result = transport.run("echo hello; echo world", timeout=10)
    assert result.ok and result.exit_code == 0
    assert result.stdout == "hello\nworld\n" and result.stderr == ""
    assert not result.timed_out and not result.truncated


def test_nonzero_exit_keeps_stderr_apart(transport: SshTransport) -> None:
    result = transport.run("echo out; echo 'disk full' >&2; exit 3", timeout=10)
    assert result.exit_code == 3 and not result.ok
    assert result.stdout == "out\n" and result.stderr == "disk full\n"
    assert result.describe() == "exit code 3: disk full"


def test_command_killed_by_a_signal_is_not_ok(transport: SshTransport) -> None:
    result = transport.run("echo dying; kill -KILL $$", timeout=10)
    assert not result.ok and not result.timed_out and result.exit_code != 0
    assert result.stdout == "dying\n"


def test_stdin_is_closed(transport: SshTransport) -> None:
    started = time.monotonic()
    result = transport.run("cat; echo read-all", timeout=10)
    assert result.ok and result.stdout == "read-all\n"
    assert time.monotonic() - started < 5


def test_large_output_on_both_streams_is_truncated_and_flagged(transport: SshTransport) -> None:
    # 3 MB on each stream, interleaved: both must be drained or the command would block.
    command = "i=0; while [ $i -lt 3 ]; do head -c 1000000 /dev/zero | tr '\\0' o; " \
              "head -c 1000000 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done; exit 0"
    result = transport.run(command, timeout=20, max_output=1000)
    assert result.exit_code == 0 and result.truncated
    assert result.stdout.startswith("o" * 1000) and "2999000 more bytes not kept" in result.stdout
    assert result.stderr.startswith("e" * 1000) and "2999000 more bytes not kept" in result.stderr


def test_small_output_is_not_flagged(transport: SshTransport) -> None:
    result = transport.run("printf 'x%.0s' $(seq 1000)", timeout=10, max_output=1000)
    assert result.stdout == "x" * 1000 and not result.truncated


def test_timeout_stops_waiting_and_keeps_partial_output(transport: SshTransport) -> None:
    started = time.monotonic()
    result = transport.run("echo started; sleep 30", timeout=1)
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code is None and not result.ok
    assert result.stdout == "started\n"
    assert 0.9 <= elapsed < 1 + 3
    assert transport.run("echo next", timeout=10).stdout == "next\n"  # usable afterwards


def test_background_process_holding_stdout_does_not_hang(transport: SshTransport) -> None:
    started = time.monotonic()
    result = transport.run("sleep 20 & echo launched", timeout=15)
    assert result.ok and result.stdout == "launched\n" and not result.timed_out
    assert time.monotonic() - started < 5


def test_open_transport_builds_an_ssh_transport(sshd: SshServer) -> None:
    host = HostConfig(address=sshd.host, transport="ssh", ssh=options(sshd))
    with open_transport("web1", host) as opened:
        assert isinstance(opened, SshTransport) and opened.kind == "ssh" and opened.shell == "posix"
        assert opened.run("echo $0 ok", timeout=10).stdout.strip().endswith("ok")


# -- connection reuse ------------------------------------------------------------


def test_two_runs_share_one_connection_until_close(transport: SshTransport) -> None:
    first = source_port(transport)
    assert source_port(transport) == first
    transport.close()
    assert source_port(transport) != first  # close() really closed it; the next run reconnects


def test_reconnects_once_when_the_cached_connection_died(sshd: SshServer, transport: SshTransport) -> None:
    first = source_port(transport)
    sshd.drop_connections()  # sshd restarted on the host, or a firewall reset the connection
    assert source_port(transport) != first


def test_server_that_stops_answering_is_bounded(tmp_path: Path) -> None:
    with SshServer(tmp_path / "frozen") as server:
        transport = SshTransport("frozen", server.host, options(server, connect_timeout=1))
        try:
            assert transport.run("true", timeout=5).ok  # a cached connection exists now
            server.freeze()
            message, elapsed = refusal(transport)
            # stale-connection probe (1 s) + fresh connect (1 s) + slack
            assert elapsed < 1 + 1 + 2, elapsed
            assert "no SSH greeting" in message
        finally:
            server.thaw()
            transport.close()


def test_server_freezing_during_a_command_times_out(tmp_path: Path) -> None:
    with SshServer(tmp_path / "frozen") as server:
        transport = SshTransport("frozen", server.host, options(server, connect_timeout=1))
        try:
            assert transport.run("true", timeout=5).ok
            started = time.monotonic()
            # The command freezes the server itself, then would keep sleeping.
            result = transport.run("echo before; kill -STOP $PPID; sleep 10", timeout=1)
            assert result.timed_out and time.monotonic() - started < 1 + 3
        finally:
            server.thaw()
            transport.close()


# -- host keys -------------------------------------------------------------------


def test_unknown_host_key_is_refused_with_its_fingerprint(sshd: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("# nothing yet\n")
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, known_hosts=empty)))
    assert "unknown host key" in message
    assert sshd.host_key_fingerprint in message and "ssh-ed25519" in message
    assert f"ssh-keyscan -p {sshd.port}" in message and str(empty) in message
    assert empty.read_text() == "# nothing yet\n"  # never added automatically


def test_changed_host_key_is_refused_loudly(sshd: SshServer, tmp_path: Path) -> None:
    impostor = generate_key(tmp_path / "other_host_key")
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {' '.join(impostor.split()[:2])}\n")
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, known_hosts=known)))
    assert "CHANGED" in message and "man-in-the-middle" in message
    assert sshd.host_key_fingerprint in message and sha256_fingerprint(impostor) in message
    assert "remove the old line" in message and f"ssh-keygen -R '[{sshd.host}]:{sshd.port}'" in message


def test_key_of_the_same_host_on_another_port_does_not_count(sshd: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"{sshd.host} {sshd.host_key_line}\n[{sshd.host}]:{free_port()} {sshd.host_key_line}\n")
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, known_hosts=known)))
    assert "unknown host key" in message


def test_hashed_known_hosts_entry_is_accepted(sshd: SshServer, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    other = generate_key(tmp_path / "other_host_key")
    known.write_text(f"other.example.test {' '.join(other.split()[:2])}\n"
                     f"[{sshd.host}]:{sshd.port} {sshd.host_key_line}\n")
    subprocess.run([str(SSH_KEYGEN), "-H", "-f", str(known)], check=True, capture_output=True, timeout=10)
    assert "|1|" in known.read_text() and sshd.host not in known.read_text()
    with SshTransport("web1", sshd.host, options(sshd, known_hosts=known)) as hashed:
        assert hashed.run("echo hashed", timeout=10).stdout == "hashed\n"


def test_missing_known_hosts_file_says_how_to_create_it(sshd: SshServer, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "known_hosts"
    message, elapsed = refusal(SshTransport("web1", sshd.host, options(sshd, known_hosts=missing)))
    assert str(missing) in message and "does not exist" in message
    assert f"ssh-keyscan -p {sshd.port} {sshd.host} >> {missing}" in message
    assert elapsed < 1  # decided before touching the network


# -- authentication ----------------------------------------------------------------


def test_wrong_client_key_fails_authentication(sshd: SshServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    generate_key(stranger)
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, identity_file=stranger)))
    assert f"authentication failed for {sshd.user}@{sshd.host}:{sshd.port}" in message
    assert f"tried: key {stranger}" in message


def test_password_refused_by_a_key_only_server(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODE_TEST_SSH_PASSWORD", "not-the-password")
    opts = options(sshd, identity_file=None, password=SecretRef(env="CUSTODE_TEST_SSH_PASSWORD"))
    message, _ = refusal(SshTransport("web1", sshd.host, opts))
    assert "authentication failed" in message and "tried: password" in message
    assert "publickey" in message  # what the server would accept


def test_encrypted_identity_file_with_passphrase(sshd: SshServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "locked_key"
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "s3cret phrase", "-f", str(key)],
                   check=True, capture_output=True, timeout=10)
    authorized = sshd.authorized_keys.read_text()
    sshd.authorized_keys.write_text(authorized + (tmp_path / "locked_key.pub").read_text())
    try:
        message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, identity_file=key)))
        assert "is encrypted" in message and "ssh.passphrase" in message

        monkeypatch.setenv("CUSTODE_TEST_SSH_PASSPHRASE", "wrong")
        opts = options(sshd, identity_file=key, passphrase=SecretRef(env="CUSTODE_TEST_SSH_PASSPHRASE"))
        message, _ = refusal(SshTransport("web1", sshd.host, opts))
        assert f"cannot load the identity file {key}" in message and "wrong passphrase" in message

        monkeypatch.setenv("CUSTODE_TEST_SSH_PASSPHRASE", "s3cret phrase")
        with SshTransport("web1", sshd.host, opts) as unlocked:
            assert unlocked.run("echo unlocked", timeout=10).stdout == "unlocked\n"
    finally:
        sshd.authorized_keys.write_text(authorized)


@pytest.fixture
def ssh_agent(sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real ssh-agent holding the server's client key, as SSH_AUTH_SOCK."""
    agent_binary = require_binary("ssh-agent", "openssh-client")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen([agent_binary, "-D", "-a", str(sock)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(sock.exists, 5), "ssh-agent did not create its socket"
        subprocess.run([require_binary("ssh-add", "openssh-client"), str(sshd.client_key)], check=True,
                       capture_output=True, timeout=10, env={"SSH_AUTH_SOCK": str(sock)})
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield str(sock)
    finally:
        agent.kill()
        agent.wait(timeout=5)


def test_login_with_the_ssh_agent(sshd: SshServer, ssh_agent: str) -> None:
    with SshTransport("web1", sshd.host, options(sshd, identity_file=None, use_agent=True)) as agent:
        assert agent.run("echo via-agent", timeout=10).stdout == "via-agent\n"


def test_nothing_to_offer_fails_authentication(sshd: SshServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/id_* to fall back on
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, identity_file=None, use_agent=True)))
    assert f"authentication failed for {sshd.user}@{sshd.host}:{sshd.port}" in message
    assert "agent (none running: SSH_AUTH_SOCK is not set)" in message and "default keys" in message


def test_missing_identity_file(sshd: SshServer, tmp_path: Path) -> None:
    message, _ = refusal(SshTransport("web1", sshd.host, options(sshd, identity_file=tmp_path / "absent")))
    assert f"identity file {tmp_path / 'absent'} does not exist" in message


def test_missing_passphrase_secret_names_the_variable(sshd: SshServer,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUSTODE_TEST_UNSET_VARIABLE", raising=False)
    opts = options(sshd, passphrase=SecretRef(env="CUSTODE_TEST_UNSET_VARIABLE"))
    message, _ = refusal(SshTransport("web1", sshd.host, opts))
    assert "CUSTODE_TEST_UNSET_VARIABLE" in message


# -- unreachable hosts ---------------------------------------------------------------


def test_closed_port_is_connection_refused_fast(sshd: SshServer) -> None:
    port = free_port()
    message, elapsed = refusal(SshTransport("web1", sshd.host, options(sshd, port=port)))
    assert f"nothing listens on {sshd.host}:{port}" in message and "connection refused" in message
    assert elapsed < 1


def test_blackhole_is_bounded_by_connect_timeout(sshd: SshServer) -> None:
    with Blackhole() as hole:
        message, elapsed = refusal(SshTransport("web1", hole.host, options(sshd, port=hole.port,
                                                                             connect_timeout=1)))
    assert 0.9 <= elapsed < 3, elapsed
    assert f"{hole.host}:{hole.port}" in message and "no SSH greeting within 1 s" in message


def test_not_an_ssh_server(sshd: SshServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        transport = SshTransport("web1", "127.0.0.1", options(sshd, port=port, connect_timeout=2))

        def answer_http() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        server = threading.Thread(target=answer_http, daemon=True)
        server.start()
        message, elapsed = refusal(transport)
        server.join(timeout=5)
    assert f"127.0.0.1:{port}" in message and "SSH greeting" in message and elapsed < 3


def test_dns_failure_is_plain(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)  # no DNS traffic leaves the machine
    message, _ = refusal(SshTransport("web1", "nas.comune.example", options(sshd)))
    assert "cannot resolve the host name nas.comune.example" in message and "DNS" in message


def test_dns_that_never_answers_is_bounded(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> None:
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        slow_dns = SshTransport("web1", "nas.comune.example", options(sshd, connect_timeout=1))
        message, elapsed = refusal(slow_dns)
    finally:
        release.set()  # let the abandoned lookup thread finish
    assert "DNS lookup of nas.comune.example did not answer within" in message
    assert elapsed < 2


def test_malformed_host_name_is_plain(sshd: SshServer) -> None:
    message, elapsed = refusal(SshTransport("web1", "a" * 70 + ".example", options(sshd)))
    assert "cannot resolve the host name" in message and elapsed < 2
