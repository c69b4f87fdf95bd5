"""Commands on a remote host over SSH (paramiko), with host keys always verified.

Farm mode polls hundreds of hosts every minute, so one ``SshTransport`` keeps
its connection open between runs and reconnects once, transparently, when the
cached connection turned out to be dead. Update playbooks use the same class
for a handful of long commands.

Guarantees the rest of the agent relies on:

* Host keys come from ``known_hosts`` only. An unknown key is refused (never
  auto-added), a changed key is refused with a louder message, and both name
  the key's SHA256 fingerprint so an operator can compare it out of band.
* Every failure to reach, verify or log in to the host is a ``TransportError``
  in plain words (what happened to which ``host:port`` and what to do), never a
  raw paramiko or socket exception.
* ``run`` returns within ``connect_timeout + timeout`` plus a few seconds
  whatever the network does (plus ``min(connect_timeout, 5 s)`` when a cached
  connection must be given up first): each blocking paramiko step runs under a
  watchdog that shuts the socket down when its time is up, which makes
  paramiko's own waits end.
* Secrets given to ``run`` never enter the command line (which sshd hands the
  login shell, readable in ``/proc`` on the host): they go on the command's
  stdin and a one-line prelude reads and exports them (``secret_env``).
* Memory per transport stays small: no connection until the first ``run``,
  output bounded by ``max_output``, a small channel window, and only this
  host's lines kept from ``known_hosts``.

Threads: a transport is meant to be used by one thread at a time (farm mode
gives each host to one worker). ``close()`` may be called from another thread;
a ``run`` in progress then fails with ``TransportError``. Each open connection
has one paramiko reader thread.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import ipaddress
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.hostkeys import HostKeyEntry
from paramiko.message import Message

from custode.agent.secrets import SecretError, SecretRef
from custode.agent.transports import secret_env
from custode.agent.transports.base import DEFAULT_MAX_OUTPUT, BoundedBuffer, CommandResult, Transport, TransportError
from custode.agent.transports.config import SshOptions

_CHUNK = 32 * 1024
_WINDOW = 256 * 1024
"""Channel window: what the server may send before we read it. paramiko's default is 2 MiB;
256 KiB still moves several MB/s on a LAN or VPN and keeps hundreds of runs cheap."""
_STALE_PROBE = 5.0
"""Seconds a cached connection gets to open a channel before we call it dead and reconnect."""
_EXIT_GRACE = 1.0
"""Seconds to keep reading after the exit status when output is still open (a daemon started
in the background holds stdout): what arrives meanwhile is kept, then we stop waiting."""
_CLEANUP = 2.0
"""Seconds allowed for closing a channel or connection to an unresponsive server."""
_SSH_KEEPALIVE = 30
"""Seconds of silence after which paramiko sends a keepalive: keeps NAT and firewall state of
an idle cached connection alive between farm polls."""

_WIRE_LOG = "custode.agent.transports.ssh.wire"
logging.getLogger(_WIRE_LOG).setLevel(logging.CRITICAL)
"""paramiko's own log, per connection. It logs every failed handshake as an ERROR with a
traceback, which the TransportError already explains in words; set this logger to DEBUG
to see the protocol when diagnosing a host."""


class _UnknownHostKey(paramiko.SSHException):
    """Raised by the host key policy so the caller can phrase the refusal itself."""

    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("unknown host key")
        self.key = key


class _RefuseUnknownKeys(paramiko.MissingHostKeyPolicy):
    """Like paramiko's RejectPolicy, but keeps the offered key for the error message."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(key)


class _ChannelUnavailable(Exception):
    """A connection could not open a session channel; a cached one is then retried fresh."""


@dataclass(frozen=True)
class _Auth:
    kwargs: dict[str, Any]
    """Keyword arguments for SSHClient.connect."""
    tried: str
    """What was offered, for the authentication failure message."""


def _describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"


def _host_key_name(address: str, port: int) -> str:
    """The name OpenSSH writes into known_hosts: ``host`` for port 22, ``[host]:port`` otherwise."""
    host = address.lower()  # ssh(1) lowercases host names before looking them up
    return host if port == 22 else f"[{host}]:{port}"


def _names_match(field: str, name: str) -> bool:
    """Whether a known_hosts host field (``a,b,[c]:2222`` or a hashed ``|1|salt|hash``) names ``name``."""
    for pattern in field.split(","):
        if pattern.startswith("|1|"):
            try:
                expected = paramiko.HostKeys.hash_host(name, pattern)
            except Exception:  # noqa: BLE001 - a malformed salt, whatever paramiko raises: not our host
                continue
            if hmac.compare_digest(expected, pattern):
                return True
        elif pattern.lower() == name:
            return True
    return False


def _known_keys(path: Path, name: str) -> list[paramiko.PKey]:
    """The keys ``path`` lists for ``name``; other hosts' lines are skipped unparsed.

    Parsing line by line (instead of paramiko's HostKeys.load) keeps only this
    host's keys in memory and costs one pass over a large shared file.
    Marker lines (``@cert-authority``, ``@revoked``) are ignored.
    """
    keys: list[paramiko.PKey] = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line or line.startswith(("#", "@")):
                continue
            fields = line.split()
            if len(fields) < 3 or not _names_match(fields[0], name):
                continue
            try:
                entry = HostKeyEntry.from_line(" ".join(fields[:3]), number)
            except paramiko.SSHException:
                entry = None  # a damaged line: like OpenSSH, go on with the others
            if entry is not None:
                keys.append(entry.key)
    return keys


@contextlib.contextmanager
def _watchdog(sock: socket.socket, seconds: float) -> Iterator[threading.Event]:
    """Shut ``sock`` down if the block is still running after ``seconds``.

    paramiko has blocking waits without a timeout (a channel request's reply,
    for one); shutting the socket down ends its reader thread, which wakes
    every such wait with an error. shutdown() rather than close() so the file
    descriptor cannot be reused under another thread's feet. The yielded event
    tells whether it fired.
    """
    fired = threading.Event()

    def fire() -> None:
        fired.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(seconds, 0.0), fire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        timer.cancel()


def _resolve(host: str, port: int, timeout: float) -> list[tuple]:
    """getaddrinfo bounded by ``timeout``: the C resolver has no timeout of its own and a
    dead DNS server would otherwise stall the run for tens of seconds."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:  # a literal address needs no lookup
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    found: list[tuple] = []
    failed: list[Exception] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # noqa: BLE001 - gaierror, UnicodeError...: all re-raised in the caller below
            failed.append(exc)

    worker = threading.Thread(target=lookup, name=f"dns {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"DNS lookup of {host} did not answer within {timeout:g} s")
    if failed:
        raise failed[0]
    return found


def _wait_readable(fd: int, seconds: float) -> None:
    """Sleep until ``fd`` is readable or ``seconds`` pass. poll() where there is one: select()
    fails on descriptors above 1023, which a farm with hundreds of connections reaches."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.poll(int(seconds * 1000) + 1)
        else:  # Windows, where paramiko's wake-up "pipe" is a socket
            select.select([fd], [], [], seconds)
    except (OSError, ValueError):  # close() from another thread closed it: the caller re-checks
        time.sleep(min(seconds, 0.05))


def _tcp_keepalive(sock: socket.socket) -> None:
    """Let the kernel notice a peer that vanished while the cached connection sat idle."""
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)


class SshTransport(Transport):
    """Runs commands on ``address`` over SSH; see the module docstring for the guarantees."""

    kind = "ssh"
    shell = "posix"

    def __init__(self, name: str, address: str, options: SshOptions) -> None:
        super().__init__(name)
        self.address = address
        self.options = options
        self._client: paramiko.SSHClient | None = None
        self._lock = threading.Lock()  # guards _client against a close() from another thread

    # -- public API ----------------------------------------------------------

    @property
    def target(self) -> str:
        """``user@address:port``, as messages name it."""
        return f"{self.options.user}@{self.address}:{self.options.port}"

    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        names, values = secret_env.split(secrets)
        if names:  # sshd passes on only what AcceptEnv allows: the values go on stdin, the prelude reads them
            command = secret_env.posix_prelude(names) + command
        stdin = secret_env.posix_input(values) if names else b""
        try:
            client, channel = self._start(command, stdin)
        except (paramiko.SSHException, OSError, EOFError) as exc:  # anything the mapping did not foresee
            raise self._error(f"SSH to {self.target} failed: {exc or type(exc).__name__}") from exc
        started = time.monotonic()
        out, err = BoundedBuffer(max_output), BoundedBuffer(max_output)
        try:
            finished = self._collect(channel, out, err, started + timeout)
            duration = time.monotonic() - started
            if not finished:
                self._interrupt(channel)
                # sshd keeps a session slot busy until the command exits (MaxSessions, 10 per
                # connection), and a hung command hints at a sick host: start afresh next time.
                self._discard(client)
        except TransportError:
            self._discard(client)
            raise
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self._discard(client)
            raise self._error(f"the connection to {self.target} failed while the command ran "
                              f"({exc or type(exc).__name__}); it may have finished or still be "
                              "running on the host") from exc
        finally:
            self._close_channel(channel)  # also releases the channel's wake-up pipe
        # exit_status is -1 for a command ended by a signal: paramiko ignores "exit-signal".
        return CommandResult(exit_code=channel.exit_status if finished else None, stdout=out.text(),
                             stderr=err.text(), duration=duration, timed_out=not finished,
                             truncated=bool(out.dropped or err.dropped))

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            self._close_client(client)

    # -- starting a command ----------------------------------------------------

    def _start(self, command: str, stdin: bytes = b"") -> tuple[paramiko.SSHClient, paramiko.Channel]:
        """A channel running ``command`` (fed ``stdin``): on the cached connection if it still works, else a new one.

        A fresh connection gets ``connect_timeout`` for everything up to the
        running command (TCP, handshake, login, session, exec); probing a cached
        one costs at most ``min(connect_timeout, 5 s)`` more.
        """
        with self._lock:
            cached = self._client
        if cached is not None:
            transport = cached.get_transport()
            if transport is not None and transport.is_active():
                deadline = time.monotonic() + min(float(self.options.connect_timeout), _STALE_PROBE)
                try:
                    channel = self._open_channel(cached, deadline)
                except _ChannelUnavailable:
                    pass  # died while idle (server restarted, NAT forgot us): reconnect once
                else:
                    return cached, self._exec(cached, channel, command, deadline, stdin)
            self._discard(cached)
        deadline = time.monotonic() + float(self.options.connect_timeout)
        client = self._connect(deadline)
        with self._lock:
            self._client = client
        try:
            channel = self._open_channel(client, deadline)
        except _ChannelUnavailable as exc:
            self._discard(client)
            raise self._error(f"logged in to {self.target} but could not open a session ({exc}) within "
                              f"{float(self.options.connect_timeout):g} s; check MaxSessions and the "
                              "sshd log on the host") from exc
        return client, self._exec(client, channel, command, deadline, stdin)

    def _open_channel(self, client: paramiko.SSHClient, deadline: float) -> paramiko.Channel:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise _ChannelUnavailable("the connection is closed")
        seconds = max(deadline - time.monotonic(), 0.1)
        with _watchdog(transport.sock, seconds + 0.5):
            try:
                return transport.open_session(window_size=_WINDOW, timeout=seconds)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise _ChannelUnavailable(str(exc) or type(exc).__name__) from exc

    def _exec(self, client: paramiko.SSHClient, channel: paramiko.Channel, command: str,
              deadline: float, stdin: bytes = b"") -> paramiko.Channel:
        """Send the exec request, then ``stdin`` and EOF. Not retried: the command may have started."""
        with _watchdog(client.get_transport().sock, max(deadline - time.monotonic(), 0.1) + 0.5):
            try:
                channel.exec_command(command)  # the login shell runs it, like ``sh -c``
                self._send_input(channel, stdin)
                channel.shutdown_write()
            except (paramiko.SSHException, OSError, EOFError) as exc:
                self._close_channel(channel)
                transport = client.get_transport()
                if transport is not None and transport.is_active():
                    raise self._error(f"{self.target} refused to run the command (exec request denied): "
                                      "check the account's shell and any ForceCommand in its sshd_config"
                                      ) from exc
                self._discard(client)
                raise self._error(f"could not start the command on {self.target}: the connection failed "
                                  f"({exc or type(exc).__name__}); it may or may not have started") from exc
        return channel

    @staticmethod
    def _send_input(channel: paramiko.Channel, stdin: bytes) -> None:
        """Write ``stdin`` (the secrets, a few hundred bytes: within the channel window).

        A command that ended before reading it (a login shell that refuses
        commands, a ForceCommand) closes the channel: that is not a transport
        failure, and its exit status and stderr will say what happened.
        """
        if not stdin:
            return
        try:
            channel.sendall(stdin)
        except (OSError, paramiko.SSHException, EOFError):
            if not (channel.closed or channel.exit_status_ready() or channel.eof_received):
                raise

    # -- reading the output ----------------------------------------------------

    def _collect(self, channel: paramiko.Channel, out: BoundedBuffer, err: BoundedBuffer,
                 deadline: float) -> bool:
        """Read stdout and stderr until the command ends (True) or ``deadline`` passes (False)."""
        transport = channel.get_transport()
        wake = channel.fileno()  # readable when stdout or stderr data, EOF or close arrive
        quiet_since: float | None = None
        while True:
            # One chunk per stream and pass, so a flood of output cannot starve the deadline check.
            got = False
            if channel.recv_ready():
                out.feed(channel.recv(_CHUNK))
                got = True
            if channel.recv_stderr_ready():
                err.feed(channel.recv_stderr(_CHUNK))
                got = True
            exited = channel.exit_status_ready()
            if channel.closed or (exited and channel.eof_received):
                if got or channel.recv_ready() or channel.recv_stderr_ready():
                    continue  # what is already here is bounded by the channel window
                break
            now = time.monotonic()
            if now >= deadline:
                return False
            if got:
                quiet_since = None
                continue
            if not transport.is_active():
                break  # reported below: the exit status is missing
            wait = min(deadline - now, 0.5)
            if exited:
                # Exit status but no EOF: a background process holds the output open. Keep what
                # still arrives for a moment, then call the command done.
                quiet_since = quiet_since or now
                if now - quiet_since >= _EXIT_GRACE:
                    break
                wait = min(wait, 0.1)
            if channel.eof_received:
                channel.status_event.wait(wait)  # the wake pipe stays readable after EOF
            else:
                _wait_readable(wake, wait)
        if channel.exit_status == -1 and not transport.is_active():
            cause = transport.get_exception() or "closed"
            raise self._error(f"the connection to {self.target} was lost while the command ran ({cause}); "
                              "it may have finished or still be running on the host")
        return True

    def _interrupt(self, channel: paramiko.Channel) -> None:
        """Stop a timed-out command: ask sshd to kill its process group, then close the channel.

        The "signal" request (RFC 4254 6.9) is honoured by OpenSSH for non-root
        logins only ("session signalling requires privilege separation" for root);
        closing the channel then closes the command's pipes, so it dies on its
        next write. paramiko has no public call for the request, hence the
        message is built by hand; if that ever breaks, only the close remains.
        """
        transport = channel.get_transport()
        with _watchdog(transport.sock, _CLEANUP):
            with contextlib.suppress(Exception):
                message = Message()
                message.add_byte(cMSG_CHANNEL_REQUEST)
                message.add_int(channel.remote_chanid)
                message.add_string("signal")
                message.add_boolean(False)
                message.add_string("KILL")
                transport._send_user_message(message)
            self._close_channel(channel)

    @staticmethod
    def _close_channel(channel: paramiko.Channel) -> None:
        with contextlib.suppress(Exception):
            channel.close()

    # -- connecting ------------------------------------------------------------

    def _connect(self, deadline: float) -> paramiko.SSHClient:
        """A verified, logged-in connection, ready by ``deadline``."""
        options = self.options
        budget = float(options.connect_timeout)
        key_name = _host_key_name(self.address, options.port)
        known = self._load_known_keys(key_name)
        auth = self._auth()
        sock = self._open_socket(deadline, budget)
        client = paramiko.SSHClient()
        client.set_log_channel(_WIRE_LOG)
        client.set_missing_host_key_policy(_RefuseUnknownKeys())
        for key in known:
            client.get_host_keys().add(key_name, key.get_name(), key)
        remaining = max(deadline - time.monotonic(), 0.1)
        try:
            with _watchdog(sock, remaining) as fired:
                try:
                    client.connect(self.address.lower(), port=options.port, username=options.user, sock=sock,
                                   timeout=remaining, banner_timeout=remaining, auth_timeout=remaining,
                                   channel_timeout=remaining, **auth.kwargs)
                except Exception as exc:
                    raise self._connect_error(exc, client, known, key_name, auth, budget, deadline,
                                              fired) from exc
                if fired.is_set():
                    raise self._error(f"logging in to {self.target} took longer than {budget:g} s "
                                      "(connect_timeout)")
        except BaseException:
            self._close_client(client)
            with contextlib.suppress(OSError):
                sock.close()
            raise
        client.get_transport().set_keepalive(_SSH_KEEPALIVE)
        return client

    def _load_known_keys(self, key_name: str) -> list[paramiko.PKey]:
        path = (self.options.known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        scan = f"ssh-keyscan -p {self.options.port} {self.address} >> {path}"
        try:
            return _known_keys(path, key_name)
        except FileNotFoundError:
            raise self._error(
                f"the known_hosts file {path} does not exist, so the key of {self.address} cannot be "
                f"verified. Create it with the host's key: run '{scan}' and check the printed fingerprint "
                "(ssh-keygen -lf FILE) against the host's own (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub "
                "on its console), or set ssh.known_hosts to an existing file") from None
        except OSError as exc:
            raise self._error(f"cannot read the known_hosts file {path}: {exc.strerror or exc}; "
                              "the user Custode runs as must be able to read it") from None

    def _auth(self) -> _Auth:
        """What to offer the server, in order: identity file, agent, password.

        paramiko's search of ~/.ssh/id_* is only allowed when nothing is
        configured and no agent is available: a key the operator did not choose
        must not be offered to (and logged by) every host.
        """
        options = self.options
        kwargs: dict[str, Any] = {"allow_agent": False, "look_for_keys": False}
        tried: list[str] = []
        if options.identity_file is not None:
            kwargs["pkey"] = self._load_identity(options.identity_file.expanduser())
            tried.append(f"key {options.identity_file}")
        agent_running = bool(os.environ.get("SSH_AUTH_SOCK"))
        if options.use_agent:
            kwargs["allow_agent"] = agent_running
            tried.append("agent" if agent_running else "agent (none running: SSH_AUTH_SOCK is not set)")
        if options.password is not None:
            kwargs["password"] = self._secret(options.password, "password")
            tried.append("password")
        nothing_configured = options.identity_file is None and options.password is None
        if nothing_configured and not (options.use_agent and agent_running):
            kwargs["look_for_keys"] = True
            tried.append("default keys ~/.ssh/id_*")
        return _Auth(kwargs, " / ".join(tried))

    def _load_identity(self, path: Path) -> paramiko.PKey:
        passphrase = self._secret(self.options.passphrase, "passphrase") if self.options.passphrase else None
        try:
            # from_path hands the passphrase straight to cryptography, which wants bytes.
            return paramiko.PKey.from_path(path, passphrase.encode() if passphrase is not None else None)
        except FileNotFoundError:
            raise self._error(f"the identity file {path} does not exist; fix ssh.identity_file") from None
        except PermissionError:
            raise self._error(f"cannot read the identity file {path}: permission denied; it must be readable "
                              "by the user Custode runs as (and by nobody else: chmod 600)") from None
        except TypeError as exc:  # cryptography's way of saying "encrypted, no passphrase given"
            if passphrase is not None:
                raise self._error(f"cannot load the identity file {path}: {exc}") from None
            raise self._error(f"the identity file {path} is encrypted; set ssh.passphrase "
                              "(e.g. {env: VARIABLE}) to its passphrase") from None
        except paramiko.PasswordRequiredException:
            raise self._error(f"the identity file {path} is encrypted; set ssh.passphrase "
                              "(e.g. {env: VARIABLE}) to its passphrase") from None
        except (paramiko.SSHException, ValueError) as exc:
            hint = "wrong passphrase, or" if passphrase else "is it"
            raise self._error(f"cannot load the identity file {path} ({exc}): {hint} not an OpenSSH or PEM "
                              "private key (RSA, ECDSA or Ed25519)?") from None

    def _secret(self, ref: SecretRef, what: str) -> str:
        try:
            return ref.resolve()
        except SecretError as exc:
            raise self._error(f"cannot read the SSH {what} ({ref.describe()}): {exc}") from None

    def _open_socket(self, deadline: float, budget: float) -> socket.socket:
        host, port = self.address, self.options.port
        try:
            addresses = _resolve(host, port, max(deadline - time.monotonic(), 0.1))
        except (socket.gaierror, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise self._error(f"cannot resolve the host name {host} ({reason}); check the address in the "
                              "config and this machine's DNS") from None
        except TimeoutError as exc:
            raise self._error(f"{exc}; check this machine's DNS servers (/etc/resolv.conf)") from None
        if not addresses:
            raise self._error(f"cannot resolve the host name {host} (no addresses); check the address in "
                              "the config and this machine's DNS")
        failure: OSError | None = None
        for family, kind, proto, _, sockaddr in addresses:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock = socket.socket(family, kind, proto)
            sock.settimeout(remaining)
            try:
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                failure = exc
                continue
            _tcp_keepalive(sock)
            return sock
        raise self._error(self._describe_connect_failure(failure, budget))

    def _describe_connect_failure(self, exc: OSError | None, budget: float) -> str:
        where = f"{self.address}:{self.options.port}"
        if exc is None or isinstance(exc, TimeoutError):
            return (f"no answer from {where} within {budget:g} s (connect_timeout): the host is down or a "
                    f"firewall drops the traffic; check that it is up and that port {self.options.port} is "
                    "open from this machine")
        if isinstance(exc, ConnectionRefusedError):
            return (f"nothing listens on {where} (connection refused): start sshd on the host, or fix "
                    "ssh.port in the config")
        if exc.errno == errno.ENETUNREACH:
            return (f"network unreachable: this machine has no route to {where}; check its network "
                    "connection, VPN and routes")
        if exc.errno == errno.EHOSTUNREACH:
            return (f"host unreachable: {where} does not answer on the local network or a router reports "
                    "no route; check that it is powered on and its address is right")
        return f"cannot connect to {where}: {exc.strerror or exc}"

    def _connect_error(self, exc: Exception, client: paramiko.SSHClient, known: list[paramiko.PKey],
                       key_name: str, auth: _Auth, budget: float, deadline: float,
                       fired: threading.Event) -> TransportError:
        """Turn whatever paramiko raised while connecting into an operator's sentence."""
        where = f"{self.address}:{self.options.port}"
        path = (self.options.known_hosts or Path("~/.ssh/known_hosts")).expanduser()
        if isinstance(exc, _UnknownHostKey):
            kind = exc.key.algorithm_name.lower()  # ed25519, ecdsa, rsa: as file names and ssh-keyscan -t
            return self._error(
                f"unknown host key: {where} offered {_describe_key(exc.key)}, and {path} has no key for "
                f"{key_name}. Verify this fingerprint out of band (on the host's console: "
                f"ssh-keygen -lf /etc/ssh/ssh_host_{kind}_key.pub), then add it: "
                f"ssh-keyscan -p {self.options.port} -t {kind} {self.address} >> {path}")
        if isinstance(exc, paramiko.BadHostKeyException):
            expected = ", ".join(_describe_key(key) for key in known) or _describe_key(exc.expected_key)
            return self._error(
                f"WARNING: the host key of {where} has CHANGED: it offered {_describe_key(exc.key)} but "
                f"{path} expects {expected}. This is a possible man-in-the-middle attack: do not connect "
                "until you know why. If the host was reinstalled or its keys were regenerated, remove the "
                f"old line (ssh-keygen -R '{key_name}' -f {path}) and add the new key after verifying its "
                "fingerprint out of band")
        if isinstance(exc, paramiko.AuthenticationException) or "No authentication methods" in str(exc):
            allowed = getattr(exc, "allowed_types", None)
            server = f"; the server accepts only: {', '.join(allowed)}" if allowed else ""
            return self._error(f"authentication failed for {self.target} (tried: {auth.tried or 'nothing'})"
                               f"{server}; check ssh.user and that the key is in the user's "
                               "~/.ssh/authorized_keys on the host")
        transport = client.get_transport()
        greeted = transport is not None and bool(transport.remote_version)
        cause = exc.__context__ if "protocol banner" in str(exc) else exc
        if fired.is_set() or time.monotonic() >= deadline - 0.2 or isinstance(cause, TimeoutError):
            if not greeted:
                return self._error(f"{where} accepted the TCP connection but sent no SSH greeting within "
                                   f"{budget:g} s (connect_timeout): sshd is overloaded or hung, or "
                                   "something else listens on that port")
            return self._error(f"the SSH handshake or login with {where} did not finish within {budget:g} s "
                               "(connect_timeout): the host or the network stopped answering")
        if not greeted and isinstance(cause, (EOFError, ConnectionResetError)):
            return self._error(f"{where} closed the connection without a valid SSH greeting: its sshd "
                               "refused us (MaxStartups, TCP wrappers, fail2ban?), or the service on that "
                               "port is not SSH; check ssh.port and the host's sshd log")
        if isinstance(cause, (EOFError, ConnectionResetError)) or (greeted and not transport.is_active()):
            return self._error(f"{where} closed the connection during the SSH handshake: its sshd refused "
                               "us (MaxStartups, AllowUsers/DenyUsers, TCP wrappers, fail2ban?); see its log")
        if not greeted and "protocol banner" in str(exc):
            return self._error(f"{where} does not speak SSH (no valid SSH greeting); check ssh.port")
        if isinstance(exc, paramiko.ssh_exception.IncompatiblePeer):
            return self._error(f"{where} and Custode share no SSH algorithm ({exc}); the host's sshd is too "
                               "old or restricted: update it or allow a modern key exchange")
        return self._error(f"SSH connection to {where} failed: {exc or type(exc).__name__}")

    # -- helpers -----------------------------------------------------------------

    def _error(self, cause: str) -> TransportError:
        return TransportError(self.name, cause)

    def _discard(self, client: paramiko.SSHClient) -> None:
        """Forget ``client`` if it is the cached one, and close it (bounded)."""
        with self._lock:
            if self._client is client:
                self._client = None
        self._close_client(client)

    @staticmethod
    def _close_client(client: paramiko.SSHClient) -> None:
        transport = client.get_transport()
        if transport is not None:
            with _watchdog(transport.sock, _CLEANUP), contextlib.suppress(Exception):
                client.close()
        else:
            with contextlib.suppress(Exception):
                client.close()
