"""A real, private OpenSSH server (and a silent TCP "blackhole") for integration tests.

The SSH transport must be tested against genuine ``sshd`` behaviour: host key
negotiation, refused keys, exit statuses, stderr, connection reuse. A mock
would only confirm our own assumptions. ``SshServer`` runs Debian's
``/usr/sbin/sshd`` in the foreground with a throwaway configuration, host key,
client key and ``authorized_keys`` under a temporary directory, so it never
reads /etc/ssh or touches the system service. Several may run at once: each
gets its own free loopback port.

Layout under the base directory::

    sshd_config            generated configuration (no Include of /etc/ssh)
    sshd.log               everything sshd logs (``-e``)
    sshd.pid               PidFile
    ssh_host_ed25519_key   the server's host key (+ .pub)
    client_ed25519         the client's key, unencrypted, 0600 (+ .pub)
    authorized_keys        the client key, for ``user``
    known_hosts            ``[127.0.0.1]:PORT`` with the server's host key
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from conftest import free_port, wait_until
from server_base import DaemonServer, LoopbackServer

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = Path("/usr/bin/ssh-keygen")
PRIVSEP_DIR = Path("/run/sshd")
"""sshd refuses to start without its privilege-separation directory (normally made by systemd)."""

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0


def require_sshd() -> None:
    """Fail loudly (never skip) when Debian's OpenSSH server or ssh-keygen is missing."""
    missing = [str(path) for path in (SSHD, SSH_KEYGEN) if not os.access(path, os.X_OK)]
    if missing:
        raise RuntimeError(
            f"OpenSSH is not installed ({', '.join(missing)} missing): install the Debian package "
            "openssh-server (apt-get install --no-install-recommends openssh-server)"
        )


def sha256_fingerprint(public_line: str) -> str:
    """``SHA256:...`` of an OpenSSH public key line, exactly as ``ssh-keygen -l`` prints it."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def generate_key(path: Path, comment: str = "custode-test") -> str:
    """A fresh unencrypted ed25519 key at ``path`` (mode 0600); returns the public line."""
    require_sshd()
    for stale in (path, path.with_name(path.name + ".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run([str(SSH_KEYGEN), "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    path.chmod(0o600)
    return path.with_name(path.name + ".pub").read_text(encoding="ascii").strip()


def _openssh_version() -> tuple[int, int]:
    """(major, minor) of the installed sshd; ``sshd -V`` prints e.g. ``OpenSSH_9.2p1 ...`` on stderr."""
    done = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True, timeout=10)
    match = re.search(r"OpenSSH_(\d+)\.(\d+)", done.stderr + done.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _children_of() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, read from /proc (no psutil needed in the test helper)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name may contain spaces and parentheses: the fields start after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid``. sshd's per-connection processes call setsid(), so a
    process-group kill of the listener would miss them (and the commands they run)."""
    tree = _children_of()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def _alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie waiting for a parent that may never reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


class SshServer(DaemonServer):
    config_name = "sshd_config"
    log_name = "sshd.log"

    """One sshd on 127.0.0.1 that lets ``user`` in with ``client_key`` (public key only).

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, base: Path | str | None = None, user: str | None = None) -> None:
        require_sshd()
        self._own_base = base is None
        self._base = Path(tempfile.mkdtemp(prefix="custode-sshd-") if base is None else base).resolve()
        self._base.mkdir(parents=True, exist_ok=True)
        self._port = free_port()
        self._user = user or pwd.getpwuid(os.getuid()).pw_name
        """Another account needs root (sshd switches to it); its login shell runs every command."""
        self._process: subprocess.Popen[bytes] | None = None
        self._marker = secrets.token_hex(8)
        """Put into every session's environment (SetEnv), to find commands that outlived their connection."""
        self._host_line = generate_key(self._base / "ssh_host_ed25519_key", "custode-test-host")
        client_line = generate_key(self.client_key, "custode-test-client")
        self.authorized_keys.write_text(client_line + "\n", encoding="ascii")
        if user is not None:  # sshd reads authorized_keys as that user
            self._base.chmod(0o755)
            self.authorized_keys.chmod(0o644)
        self.known_hosts.write_text(f"[{self.host}]:{self._port} {self.host_key_line}\n", encoding="ascii")

    # -- public properties -------------------------------------------------



    @property
    def user(self) -> str:
        """Who the client logs in as: the user running the tests (root on CI); sshd can only
        switch to another user when it runs as root."""
        return self._user


    @property
    def client_key(self) -> Path:
        """Unencrypted ed25519 private key (mode 0600) that ``authorized_keys`` accepts."""
        return self._base / "client_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self._base / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        """A known_hosts file with exactly this server's ``[127.0.0.1]:PORT`` line."""
        return self._base / "known_hosts"

    @property
    def host_key_line(self) -> str:
        """``ssh-ed25519 AAAA...``: the server's public host key (type and base64, no comment)."""
        return " ".join(self._host_line.split()[:2])

    @property
    def host_key_fingerprint(self) -> str:
        """``SHA256:...`` of the host key, as ``ssh-keygen -l`` and OpenSSH's ``ssh`` print it."""
        return sha256_fingerprint(self._host_line)





    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start ``sshd -D -e`` and wait until it sends its SSH banner (bounded)."""
        if self.running:
            raise RuntimeError("SshServer is already running")
        self._check_account()
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._write_config()
        try:
            with self.log_path.open("ab") as log:
                # An absolute path is required: sshd re-executes itself for every connection.
                self._process = subprocess.Popen(
                    [str(SSHD), "-D", "-e", "-f", str(self.config_path)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
            if not wait_until(self._sends_banner, _START_TIMEOUT, step=0.05):
                self._fail(f"sshd did not send an SSH banner on {self.host}:{self.port} "
                           f"within {_START_TIMEOUT:.0f} s")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the listener, every connection it serves and every command still running.

        Idempotent. Removes the base directory when this object created it.
        """
        process, self._process = self._process, None
        if process is not None:
            # Collect the tree first: once the listener is gone its children are reparented.
            tree = _descendants(process.pid)
            tree += [pid for pid in self._session_processes() if pid not in tree]
            _signal_all(tree, signal.SIGCONT)  # in case a test froze them
            _signal_all([process.pid, *tree], signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(_STOP_TIMEOUT)
            wait_until(lambda: not any(_alive(pid) for pid in tree), _STOP_TIMEOUT)
        if self._own_base:
            shutil.rmtree(self._base, ignore_errors=True)

    def drop_connections(self) -> None:
        """Kill every connection (and its commands) but keep listening: what a client sees
        when the host's sshd was restarted or a firewall reset the connection."""
        if self._process is None:
            raise RuntimeError("drop_connections() needs a running server")
        tree = _descendants(self._process.pid)
        _signal_all(tree, signal.SIGKILL)
        wait_until(lambda: not any(_alive(pid) for pid in tree), _STOP_TIMEOUT)

    def freeze(self) -> None:
        """SIGSTOP sshd and all its connections: the host "stops answering" with TCP still up."""
        if self._process is None:
            raise RuntimeError("freeze() needs a running server")
        _signal_all([self._process.pid, *_descendants(self._process.pid)], signal.SIGSTOP)

    def thaw(self) -> None:
        """Undo :meth:`freeze`."""
        if self._process is None:
            return
        _signal_all([self._process.pid, *_descendants(self._process.pid)], signal.SIGCONT)

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    # -- internals -----------------------------------------------------------

    def _session_processes(self) -> list[int]:
        """Commands started through this server, even those reparented after their connection
        closed (a timed-out ``sleep`` of a root login keeps running: sshd cannot signal it)."""
        needle = f"CUSTODE_TEST_SSHD={self._marker}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    environ = Path(f"/proc/{entry}/environ").read_bytes()
                except OSError:
                    continue
                if needle in environ.split(b"\0"):
                    found.append(int(entry))
        return found

    def _check_account(self) -> None:
        """Without PAM, sshd refuses accounts whose password is locked with '!' in /etc/shadow."""
        try:
            with open("/etc/shadow", encoding="utf-8") as shadow:
                for line in shadow:
                    name, _, rest = line.partition(":")
                    if name == self._user and rest.startswith("!"):
                        raise RuntimeError(
                            f"the account {self._user} is locked ('!' in /etc/shadow) and sshd with "
                            f"UsePAM no refuses locked accounts even for key logins: unlock it without "
                            f"setting a password with: usermod -p '*' {self._user}")
        except PermissionError:
            pass  # not root: sshd runs as this user and skips the check

    def _write_config(self) -> None:
        base = self._base
        lines = [
            "# Written by tests/ssh_server.py: a private test server, not the system one.",
            f"Port {self._port}",
            "AddressFamily inet",
            f"ListenAddress {self.host}",
            f"HostKey {base / 'ssh_host_ed25519_key'}",
            f"PidFile {base / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"AllowUsers {self._user}",
            "UsePAM no",
            "StrictModes no",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PrintMotd no",
            "PrintLastLog no",
            "UseDNS no",
            "LogLevel VERBOSE",
            "LoginGraceTime 30",
            # Farm tests and the farm benchmark point hundreds of targets at this one server: let every
            # handshake through instead of sshd's default random drops beyond 10 pending (10:30:100).
            "MaxStartups 512",
            f"SetEnv CUSTODE_TEST_SSHD={self._marker}",
        ]
        if _openssh_version() >= (9, 8):
            # Since 9.8 sshd blocks a source address that failed to log in; tests log in from
            # 127.0.0.1 with wrong keys on purpose and must not lock the next test out.
            lines.append("PerSourcePenalties no")
        self.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _sends_banner(self) -> bool:
        if self._process is not None and self._process.poll() is not None:
            self._fail(f"sshd exited with status {self._process.returncode} while starting")
        try:
            with socket.create_connection((self.host, self._port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def _fail(self, message: str) -> None:
        raise RuntimeError(f"{message}; config {self.config_path}; log:\n{self.log()[-3000:]}")


class Blackhole(LoopbackServer):
    """A TCP listener on 127.0.0.1 that accepts connections and never sends a byte.

    Looks like a host whose SSH server hangs, or a firewall that completes the
    handshake and then drops everything: the client's timeouts must end it.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._port = int(self._sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="blackhole", daemon=True)



    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self._held.append(conn)  # keep it open, say nothing
