"""Playbook secrets reach a step's command through its environment or stdin, never its command line.

A command line is public: every user of the machine reads ``/proc/PID/cmdline``
while the command runs. These tests run real steps — locally, and through a
real OpenSSH server on loopback, whose remote shell is therefore a process of
this machine too — scan every process's command line while the step runs, and
check that the command still received the exact value. WinRM has no Windows
host here: the WS-Management double shows what goes over the wire (the
command line, and the stdin the secret travels on).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ssh_server import SshServer
from update_helpers import runner_for
from winrm_server import WinrmServer

from custode.agent.config_loader import ConfigError, load
from custode.agent.restore.backends.borg import BorgBackend
from custode.agent.restore.backends.restic import ResticBackend
from custode.agent.restore.model import RestoreError
from custode.agent.transports.local import LocalTransport
from custode.agent.transports.secret_env import (
    MISSING_INPUT_EXIT,
    SecretPlacementError,
    env_name,
    mark,
    posix_input,
    posix_prelude,
    reference,
)
from custode.agent.transports.winrm import stdin_input, stdin_stager
from custode.agent.updates.runner import UpdateRunner, check_playbooks

TOKEN_ENV = "CUSTODE_TEST_PLAYBOOK_TOKEN"
WINRM_PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"
NASTY = "it's \"quoted\" $HOME `id` $(id) \\back\\slash * ; | & > <\ttab"
"""What a pasted value would break, or run, in a shell: quotes, expansions, globs, operators."""


def _secret() -> tuple[str, str]:
    """A value with everything a shell could mangle, two lines of it, and a tag found nowhere else."""
    tag = "tok" + secrets.token_hex(8)
    return f"{tag} {NASTY}\nsecond line {tag}", tag


def _cmdlines() -> dict[int, bytes]:
    """Every process's command line, as any user of the machine can read it."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue  # ended meanwhile
    return found


class CmdlineWatch:
    """Scan all command lines until stopped: which held ``needle``, and whether ``step_marker`` was ever seen."""

    def __init__(self, needle: str, step_marker: str) -> None:
        self.needle = needle.encode()
        self.step_marker = step_marker.encode()
        self.leaks: list[bytes] = []
        self.step_seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._scan, daemon=True)

    def __enter__(self) -> "CmdlineWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _scan(self) -> None:
        own = os.getpid()
        while not self._stop.is_set():
            for pid, cmdline in _cmdlines().items():
                if pid == own:
                    continue
                if self.needle in cmdline:
                    self.leaks.append(cmdline)
                if self.step_marker in cmdline:
                    self.step_seen += 1
            time.sleep(0.01)


# -- a real step through the update runner: locally and over real SSH -----------------------------------------

STEP = r"""name: a secret's way to its command
secrets:
  token: {env: CUSTODE_TEST_PLAYBOOK_TOKEN}
steps:
  - name: use the token in every place a shell has
    timeout: 30s
    run: |
      printf '%s' {{ secret.token }} > '{{ out }}/unquoted'
      printf '%s' "{{ secret.token }}" > '{{ out }}/double'
      printf '%s' '{{ secret.token }}' > '{{ out }}/single'
      printf '%s' 'before:{{ secret.token }}:after' > '{{ out }}/inside-single'
      cat > '{{ out }}/heredoc' <<EOF
      {{ secret.token }}
      EOF
      sh -c 'printf "%s" "$CUSTODE_SECRET_TOKEN"' > '{{ out }}/child'
      cat > '{{ out }}/stdin'
      tr '\0' ' ' < /proc/$$/cmdline > '{{ out }}/cmdline'
      printf 'token=%s' "{{ secret.token }}"
      sleep 1.5
"""


def _config(write_config, playbooks: Path, out: Path, host_block: str) -> Path:
    return write_config(f"""
agent: {{tenant: crema, hostname: custode-node}}
tenants:
  crema: {{name: Comune di Crema, referents: []}}
updates:
  playbooks_dir: {playbooks}
  hosts:
    app1:
      address: 127.0.0.1
      tenant: crema
      {host_block}
      vars: {{out: "{out}"}}
  windows:
    secret:
      application: Secret App
      tenant: crema
      days: [monday, tuesday, wednesday, thursday, friday, saturday, sunday]
      start: "00:00"
      duration: 2h
      hosts: [app1]
      playbook: secret.yaml
""")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _host_block(kind: str, request) -> str:
    if kind == "local":
        return "transport: local"
    server: SshServer = request.getfixturevalue("sshd")
    return (f"transport: ssh\n      ssh: {{user: {server.user}, port: {server.port}, identity_file: "
            f"\"{server.client_key}\", known_hosts: \"{server.known_hosts}\", use_agent: false, "
            "connect_timeout: 5s}")


@pytest.mark.parametrize("kind", ["local", pytest.param("ssh", marks=pytest.mark.integration)])
def test_a_running_step_has_its_secret_in_no_command_line_and_the_exact_value_everywhere(
        kind, request, tmp_path, write_config, monkeypatch):
    value, tag = _secret()
    monkeypatch.setenv(TOKEN_ENV, value)
    playbooks, out = tmp_path / "playbooks", tmp_path / "out"
    playbooks.mkdir()
    out.mkdir()
    (playbooks / "secret.yaml").write_text(STEP, encoding="utf-8")
    config = _config(write_config, playbooks, out, _host_block(kind, request))
    with runner_for(config) as runner, CmdlineWatch(tag, str(out)) as watch:
        result = runner.run("secret", "now", reason="secret test")
        steps = runner.store.steps(result.run_id)
    assert result.status == "succeeded", result.summary
    assert watch.step_seen, "the scan ran while the step's shell was running"
    assert watch.leaks == [], "the secret was on a command line"
    assert tag not in (out / "cmdline").read_text(), "the step's own shell had it in its command line"
    for place in ("unquoted", "double", "single", "child"):
        assert (out / place).read_text() == value, place
    assert (out / "inside-single").read_text() == f"before:{value}:after"
    assert (out / "heredoc").read_text() == value + "\n"
    assert (out / "stdin").read_bytes() == b"", "the command's own stdin is at end of file, as before"
    ran = next(s for s in steps if s["kind"] == "run")
    assert ran["stdout"] == "token=«secret»", "stored output has the value replaced"


def test_the_plan_runs_references_and_shows_placeholders(tmp_path, write_config, monkeypatch):
    value, tag = _secret()
    monkeypatch.setenv(TOKEN_ENV, value)
    playbooks, out = tmp_path / "playbooks", tmp_path / "out"
    playbooks.mkdir()
    (playbooks / "secret.yaml").write_text(STEP, encoding="utf-8")
    loaded = load(_config(write_config, playbooks, out, "transport: local"))
    plan = UpdateRunner(loaded.model, loaded.source).plan("secret", "now", "test")
    step = plan.steps[0]
    assert step.secrets == {"CUSTODE_SECRET_TOKEN": value}
    assert tag not in repr(step), "a plan printed by mistake does not show the value either"
    command = step.step.run.command
    assert tag not in command
    assert "printf '%s' \"${CUSTODE_SECRET_TOKEN}\" >" in command
    assert "'before:'\"${CUSTODE_SECRET_TOKEN}\"':after'" in command
    assert "«secret.token: environment variable CUSTODE_TEST_PLAYBOOK_TOKEN»" in step.shown.run.command
    assert tag not in plan.describe()


@pytest.mark.parametrize("step, message", [
    ("- service: {name: \"{{ secret.token }}\", action: restart}",
     "{{ secret.token }} stands in service.name, which Custode puts on the host's command line"),
    ("- check: {process: \"{{ secret.token }}\"}", "stands in check.process"),
    ("- run: |\n      cat > /tmp/x <<'EOF'\n      {{ secret.token }}\n      EOF",
     "quoted delimiter (<<'EOF')"),
])
def test_a_secret_no_command_could_read_fails_the_config_check(tmp_path, write_config, step, message):
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "secret.yaml").write_text(
        f"name: x\nsecrets:\n  token: {{env: {TOKEN_ENV}}}\nsteps:\n  {step}\n", encoding="utf-8")
    loaded = load(_config(write_config, playbooks, tmp_path, "transport: local"))
    problems = check_playbooks(loaded.model, loaded.source)  # secrets unresolved: the env var is not even set
    assert any(message in str(problem) for problem in problems), problems
    with pytest.raises(ConfigError, match=re.escape(message)):
        UpdateRunner(loaded.model, loaded.source).plan("secret", "now", "test", resolve_secrets=False)


# -- the pieces: references per place, the stdin preludes -------------------------------------------------------

VALUE = f"{NASTY}\nline two\n"


@pytest.mark.parametrize("command, expected", [
    (f"printf '%s' {mark(0)}", VALUE),
    (f"printf '%s' x{mark(0)}y", f"x{VALUE}y"),
    (f"printf '%s' \"in double {mark(0)} quotes\"", f"in double {VALUE} quotes"),
    (f"printf '%s' 'in single {mark(0)} quotes'", f"in single {VALUE} quotes"),
    (f"printf '%s' \"$(printf '%s' {mark(0)})\"", VALUE.rstrip("\n")),  # $(…) drops trailing newlines
    (f"X={mark(0)}; printf '%s' \"$X\"", VALUE),
    (f"echo skipped # {mark(0)}\nprintf '%s' {mark(0)}", f"skipped\n{VALUE}"),
    (f"cat <<EOF\n{mark(0)}\nEOF\nprintf '%s' {mark(0)}", f"{VALUE}\n{VALUE}"),
    (f"cat <<-END\n\t<{mark(0)}>\n\tEND\necho after", f"<{VALUE}>\nafter\n"),
])
def test_posix_references_read_the_exact_value_wherever_the_placeholder_stood(command, expected):
    text = reference(command, ["CUSTODE_SECRET_T"], "posix")
    assert mark(0) not in text and "CUSTODE_SECRET_T" in text
    done = subprocess.run(["/bin/sh", "-c", text], env={**os.environ, "CUSTODE_SECRET_T": VALUE},
                          capture_output=True, text=True, timeout=10)
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")


@pytest.mark.parametrize("operator", ["<<'EOF'", '<<"EOF"', "<<\\EOF", "<<-'EOF'", "<< E'O'F"])
def test_a_here_document_that_expands_nothing_cannot_hold_a_secret(operator):
    with pytest.raises(SecretPlacementError, match="unquoted"):
        reference(f"cat {operator}\n{mark(0)}\nEOF", ["CUSTODE_SECRET_T"], "posix")


def test_bash_ansi_quotes_keep_their_escapes_around_a_reference():
    text = reference(f"printf '%s' $'a\\t{mark(0)}\\tb'", ["CUSTODE_SECRET_T"], "posix")
    done = subprocess.run(["/bin/bash", "-c", text], env={**os.environ, "CUSTODE_SECRET_T": VALUE},
                          capture_output=True, text=True, timeout=10)
    assert done.stdout == f"a\t{VALUE}\tb"


def test_the_posix_prelude_reads_every_value_and_leaves_stdin_at_its_end():
    values = [VALUE, "", "\n", "  spaces kept  ", "crlf\r\nkept", "Perù, città, €"]
    names = [f"CUSTODE_SECRET_{n}" for n in range(len(values))]
    prelude = posix_prelude(names)
    assert not any(value.strip() and value.strip() in prelude for value in values)
    show = "".join(f"printf '[%s]' \"${name}\"; " for name in names)
    for shell in ("/bin/sh", "/bin/bash"):
        done = subprocess.run([shell, "-c", prelude + show + "printf '<'; cat; printf '>'"],
                              input=posix_input(values), capture_output=True, timeout=10)
        assert done.stdout.decode() == "".join(f"[{value}]" for value in values) + "<>", shell
        assert done.returncode == 0 and done.stderr == b""


def test_a_prelude_whose_secrets_did_not_arrive_stops_before_the_command():
    done = subprocess.run(["/bin/sh", "-c", posix_prelude(["CUSTODE_SECRET_A", "CUSTODE_SECRET_B"]) + "echo ran"],
                          input=posix_input(["only one"]), capture_output=True, timeout=10)
    assert done.returncode == MISSING_INPUT_EXIT and done.stdout == b""
    assert b"did not arrive on its standard input" in done.stderr


def test_the_local_transport_hands_secrets_in_the_environment_only(tmp_path):
    value, tag = _secret()
    seen = tmp_path / "seen"
    command = f"tr '\\0' ' ' < /proc/$$/cmdline > {seen}; printf '%s' \"$CUSTODE_SECRET_T\""
    result = LocalTransport("node").run(command, 10, secrets={"CUSTODE_SECRET_T": value})
    assert result.ok and result.stdout == value
    assert tag not in seen.read_text()
    with pytest.raises(ValueError, match="not an environment variable name"):
        LocalTransport("node").run("true", 10, secrets={"X; rm -rf /": value})


def test_env_names_are_shell_names_and_stay_apart():
    assert env_name("db-password", set()) == "CUSTODE_SECRET_DB_PASSWORD"
    assert env_name("db_password", {"CUSTODE_SECRET_DB_PASSWORD"}) == "CUSTODE_SECRET_DB_PASSWORD_2"
    assert env_name("€", set()) == "CUSTODE_SECRET_VALUE"


@pytest.mark.parametrize("script, expected", [
    (f"curl.exe -H 'Authorization: {mark(0)}' http://x", 'curl.exe -H "Authorization: ${env:S}" http://x'),
    (f"$x = 'it''s $(not) `t {mark(0)} \"q\"'", '$x = "it\'s `$(not) ``t ${env:S} `"q`""'),
    (f"Write-Output \u2018typographic {mark(0)}\u2019", 'Write-Output "typographic ${env:S}"'),
    (f"tool.exe /p:{mark(0)} \"pre{mark(0)}post\"", 'tool.exe /p:${env:S} "pre${env:S}post"'),
    (f"@'\npassword={mark(0)} $kept\n'@ | Set-Content a.ini", '@"\npassword=${env:S} `$kept\n"@ | Set-Content a.ini'),
    (f"'no secret here' + '{mark(0)}'", "'no secret here' + \"${env:S}\""),
    (f"# {mark(0)}\n\"$(Get-Thing '{mark(0)}')\"", '# ${env:S}\n"$(Get-Thing "${env:S}")"'),
])
def test_powershell_references_keep_the_meaning_of_the_place_they_stand_in(script, expected):
    # No PowerShell runs here: the rewrite is checked as text, against the language's quoting rules.
    assert reference(script, ["S"], "powershell") == expected


# -- WinRM: what goes over the wire --------------------------------------------------------------------------


def test_over_winrm_the_secret_travels_on_stdin_never_in_the_command_line(tmp_path, write_config, monkeypatch):
    value, tag = _secret()
    monkeypatch.setenv(TOKEN_ENV, value)
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "secret.yaml").write_text(
        f"name: w\nsecrets:\n  token: {{env: {TOKEN_ENV}}}\nsteps:\n"
        "  - run: \"& 'C:\\\\Vendor\\\\Login.exe' -Token '{{ secret.token }}'\"\n"
        "  - run: Get-Date\n", encoding="utf-8")
    with WinrmServer(tls=True) as winrm:
        monkeypatch.setenv(WINRM_PASSWORD_ENV, winrm.password)
        winrm.on(lambda script: True, (0, "ok\r\n", ""))
        block = (f"transport: winrm\n      winrm: {{user: {winrm.user}, password: {{env: {WINRM_PASSWORD_ENV}}}, "
                 f"port: {winrm.port}, auth: basic, ca_file: \"{winrm.ca_file}\", connect_timeout: 5s}}")
        with runner_for(_config(write_config, playbooks, tmp_path, block)) as runner:
            result = runner.run("secret", "now", reason="winrm secret")
        requests = list(winrm.requests)
    assert result.status == "succeeded", result.summary
    commands = [r for r in requests if r.action == "Command"]
    sends = [r for r in requests if r.action == "Send"]
    assert len(commands) == 2 and len(sends) == 2, "every script goes on stdin, with or without a secret"
    with_secret, plain = commands
    for command in commands:
        assert command.options["WINRS_CONSOLEMODE_STDIN"] == "FALSE", "stdin is a pipe the stager can read"
        assert tag not in (command.command_line or "") and tag not in (command.script or "")
        assert tag not in (command.stager or "")
    assert "'CUSTODE_SECRET_TOKEN'" in (with_secret.stager or "") and "$input" in (with_secret.stager or "")
    assert with_secret.script == "& 'C:\\Vendor\\Login.exe' -Token \"${env:CUSTODE_SECRET_TOKEN}\""
    assert with_secret.environment == {"CUSTODE_SECRET_TOKEN": value}, "the exact value, as the stager sets it"
    assert plain.environment == {} and plain.script == "Get-Date"
    send = next(r for r in sends if r.command_id == with_secret.command_id)
    assert send.stdin_end and send.stdin == stdin_input(with_secret.script, [value])
    assert tag.encode() in (send.stdin or b"").split(b"\r\n")[0], "the value: the first line of stdin"


def test_the_winrm_stager_and_its_input_carry_no_value_in_the_script():
    value, tag = _secret()
    assert tag not in stdin_stager(["CUSTODE_SECRET_T"])
    first, script, end, rest = stdin_input("Get-Date", [value]).split(b"\r\n")
    assert tag.encode() in first and b"~000A" in first, "one line: the value, its newline escaped"
    assert (script, end, rest) == (b":Get-Date", b".", b"")


# -- restore tests: the backends' passwords --------------------------------------------------------------------


@pytest.mark.parametrize("backend, variable", [(ResticBackend, "RESTIC_PASSWORD"), (BorgBackend, "BORG_PASSPHRASE")])
def test_restore_backends_pass_the_repository_password_in_the_environment(tmp_path, backend, variable):
    value, tag = _secret()
    record = tmp_path / "record"
    tool = tmp_path / "tool"
    tool.write_text(f"#!/bin/sh\ntr '\\0' ' ' < /proc/$$/cmdline > {record}\n"
                    f"printf '%s' \"${variable}\" > {record}.env\nexit 2\n", encoding="utf-8")
    tool.chmod(0o755)
    built = backend(str(tmp_path / "repo"), str(tmp_path), password=value, binary=str(tool), timeout=10)
    with pytest.raises(RestoreError):
        built.latest_snapshot()
    assert tag not in record.read_text(), "not on the tool's command line"
    assert Path(f"{record}.env").read_text() == value, "in its environment"
