"""Every PowerShell script Custode ships or generates parses with tree-sitter-powershell (issue 22).

A syntax error in a script sent to a Windows host shows up only on that host,
as a ParseException in the command's error output, at the next poll or update
window. So each script is parsed here: the shipped ``.ps1`` files, and
representative instances of every generator of PowerShell text:

* the farm probe (``agent/farm/probes/windows.py``): the script as written,
  ``probe_command()`` with and without the Windows Update sections, and the
  text the WinRM stager runs, decoded from the stdin the transport sends;
* the WinRM transport (``agent/transports/winrm.py``): the stager it encodes
  for ``-EncodedCommand``, decoded back, with and without secrets, and the
  script it sends on stdin, decoded as the stager decodes it;
* the references to secrets that ``agent/transports/secret_env.py`` writes
  into a playbook command, in code, in double- and single-quoted strings and
  in here-strings (through ``Variables.render_command``, as ``bind_step``
  renders run/backup commands);
* the update steps' service and process commands (``agent/updates/steps.py``);
* the restore scripts of ``agent/restore/remote_files.py`` (walk, hash, stat,
  scratch folder) and the rendered command templates of the restore command
  backend (``agent/restore/backends/command.py``) for a Windows host, with file
  names holding quotes, ``$`` and backticks.

* the ``run``/``backup`` commands of the shipped playbooks written for Windows hosts (their header says
  "over WinRM"), rendered as the runner renders them, and each single-quoted here-string in them on its own:
  a script a step writes to the host and runs there later (``playbooks/os-windows-update.yaml``).

A script must parse without ERROR or MISSING nodes. The scripts that must run
on Windows PowerShell 2.0 (Windows Server 2008 R2: the farm probe says so in its
header, and it reaches those hosts behind the WinRM transport's stager) are
also searched for the PowerShell 3+ constructs the syntax tree shows.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import tree_sitter
import tree_sitter_powershell

from custode.agent.farm.probes import windows as windows_probe
from custode.agent.restore.backends.command import CommandBackend
from custode.agent.restore.model import Snapshot
from custode.agent.restore.remote_files import RemoteFileSystem
from custode.agent.secrets import SecretRef
from custode.agent.transports.base import DEFAULT_MAX_OUTPUT, CommandResult, Transport
from custode.agent.transports.config import WinrmOptions
from custode.agent.transports.winrm import WinrmTransport, stdin_stager
from custode.agent.updates.playbook import Variables
from custode.agent.updates.steps import process_command, service_command, service_state_command

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = tree_sitter.Language(tree_sitter_powershell.language())


def parse(text: str) -> tree_sitter.Tree:
    return tree_sitter.Parser(LANGUAGE).parse(text.encode("utf-8"))


def walk(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from walk(child)


def first_problem(tree: tree_sitter.Tree) -> tree_sitter.Node | None:
    """The first ERROR or MISSING node in document order, or None."""
    if not tree.root_node.has_error:
        return None
    return next((node for node in walk(tree.root_node) if node.is_error or node.is_missing), None)


def _column(data: bytes, offset: int) -> int:
    """1-based column in characters (tree-sitter counts bytes) of byte ``offset``."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    return len(data[line_start:offset].decode("utf-8", errors="replace")) + 1


def describe_problem(text: str, node: tree_sitter.Node) -> str:
    """Where ``node`` is (1-based line and column) and the lines around it, the place marked."""
    data = text.encode("utf-8")
    line = node.start_point[0] + 1
    column = _column(data, node.start_byte)
    what = (f"MISSING {node.type!r}" if node.is_missing
            else f"ERROR over {data[node.start_byte:node.end_byte][:80].decode('utf-8', 'replace')!r}")
    lines = text.split("\n")
    shown = []
    for number in range(max(1, line - 2), min(len(lines), line + 2) + 1):
        body = lines[number - 1]
        shown.append(f"{number:5d} | {body[:200]}")
        if number == line:
            shown.append("      | " + " " * (column - 1) + "^")
    return f"{what} at line {line}, column {column}:\n" + "\n".join(shown)


def assert_parses(text: str) -> tree_sitter.Tree:
    tree = parse(text)
    problem = first_problem(tree)
    if problem is not None:
        pytest.fail("tree-sitter-powershell does not parse the script: " + describe_problem(text, problem),
                    pytrace=False)
    return tree


# -- PowerShell 3+ constructs ---------------------------------------------------------------------

_IN_OPERATORS = {"-in", "-notin", "-iin", "-inotin", "-cin", "-cnotin"}
_V3_TYPES = {"ordered": "[ordered]", "pscustomobject": "[pscustomobject]"}


def newer_constructs(tree: tree_sitter.Tree) -> list[str]:
    """Constructs of PowerShell 3.0 or later in ``tree``, each once, as 'construct (PowerShell N) at line L'.

    Only what the syntax shows: member enumeration or ``.Count`` on a scalar
    (also 3.0) depend on values and are not found here.
    """
    found: dict[str, int] = {}

    def add(what: str, node: tree_sitter.Node) -> None:
        found.setdefault(what, node.start_point[0] + 1)

    for node in walk(tree.root_node):
        text = (node.text or b"").decode("utf-8", "replace")
        if node.type == "class_statement":
            add("class definition (PowerShell 5)", node)
        elif node.type == "enum_statement":
            add("enum definition (PowerShell 5)", node)
        elif node.type == "type_literal":
            name = re.sub(r"\s+", "", text.strip("[]")).lower()
            if name in _V3_TYPES:
                add(f"{_V3_TYPES[name]} (PowerShell 3)", node)
        elif node.type == "comparison_operator" and text.lower() in _IN_OPERATORS:
            add(f"{text.lower()} operator (PowerShell 3)", node)
        elif node.child_count == 0 and text.lower() in ("-shl", "-shr"):
            add(f"{text.lower()} operator (PowerShell 3)", node)
        elif node.type == "variable" and text.lower() in ("$psitem", "${psitem}"):
            add("$PSItem (PowerShell 3)", node)
        elif node.type == "invokation_expression":
            kinds = [child.type for child in node.children]
            names = [(child.text or b"").decode().lower() for child in node.children if child.type == "member_name"]
            if "::" in kinds and names and names[0].startswith("new"):
                add("::new( constructor call (PowerShell 5)", node)
        elif node.type == "command_name" and text.lower() == "using":
            add("using statement (PowerShell 5)", node)
        elif node.child_count == 0 and node.type in ("&&", "||"):
            add(f"{node.type} pipeline chain (PowerShell 7)", node)
    return [f"{what} at line {line}" for what, line in found.items()]


# -- the scripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    id: str
    text: str
    how: str
    """How the text was obtained, for the reader of a failure."""
    powershell2: bool = False
    """Must run on Windows PowerShell 2.0 (Windows Server 2008 R2)."""


SHIPPED = subprocess.run(["git", "ls-files", "*.ps1"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()


def _shipped() -> list[Script]:
    out = []
    for path in SHIPPED:
        text = (ROOT / path).read_text(encoding="utf-8-sig")
        out.append(Script(f"shipped:{path}", text, f"the file {path} as committed",
                          powershell2="PowerShell 2.0" in "\n".join(text.splitlines()[:20])))
    return out


def _farm_probe() -> list[Script]:
    full, quick = windows_probe.probe_command(), windows_probe.probe_command(include_updates=False)
    return [
        Script("farm-probe:SCRIPT", windows_probe.SCRIPT, "windows_probe.SCRIPT (windows.ps1 as loaded)", True),
        Script("farm-probe:command(include_updates=True)", full, "probe_command()", True),
        Script("farm-probe:command(include_updates=False)", quick, "probe_command(include_updates=False)", True),
        Script("farm-probe:stdin", winrm_sent(full)[1],
               "WinrmTransport.run(probe_command()): its stdin decoded line by line as the stager decodes it", True),
    ]


class _Started(Exception):
    """Raised where the transport would send stdin: the run stops there, with what it would send."""

    def __init__(self, arguments: list[str], stdin: bytes) -> None:
        super().__init__("captured")
        self.arguments, self.stdin = arguments, stdin


def _decoded_stdin(data: bytes, names: int) -> tuple[list[str], str]:
    """(secret values, script) of the stager's input, decoded the way the stager decodes it (``~XXXX``)."""
    lines = data.decode("ascii").split("\r\n")
    assert lines[-2:] == [".", ""], "the input does not end with the stager's end line"

    def text(line: str) -> str:
        assert line.startswith(":"), line[:40]
        parts = line[1:].split("~")
        return (parts[0] + "".join(chr(int(part[:4], 16)) + part[4:] for part in parts[1:])).encode(
            "utf-16", "surrogatepass").decode("utf-16")

    values = [text(line) for line in lines[:-2]]
    return values[:names], "\n".join(values[names:])


def winrm_sent(command: str, secrets: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(the stager decoded from ``-EncodedCommand``, the script decoded from stdin) of ``WinrmTransport.run``."""
    transport = WinrmTransport("win-host", "192.0.2.10",
                               WinrmOptions(user="custode", password=SecretRef(env="CUSTODE_UNUSED_PASSWORD")))
    sent: list[list[str]] = []

    def start(arguments: list[str]) -> tuple:
        sent.append(arguments)
        return None, "shell", "command"

    def send_input(protocol: object, shell_id: str, command_id: str, data: bytes) -> None:
        raise _Started(sent[0], data)

    transport._start = start  # type: ignore[method-assign]
    transport._send_input = send_input  # type: ignore[method-assign]
    try:
        transport.run(command, 60.0, secrets=secrets)
    except _Started as started:
        arguments, stdin = started.arguments, started.stdin
    else:  # pragma: no cover - _send_input always raises
        raise AssertionError("WinrmTransport.run did not send the script")
    assert arguments[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"], arguments
    values, script = _decoded_stdin(stdin, len(secrets or {}))
    assert values == [value for _, value in sorted((secrets or {}).items())]
    return base64.b64decode(arguments[3]).decode("utf-16-le"), script


def _winrm() -> list[Script]:
    command = "Get-Service -Name 'Spooler' | Select-Object -ExpandProperty Status"
    secrets = {"CUSTODE_SECRET_TOKEN": "t0k'en\"$x`", "CUSTODE_SECRET_DB_PASS": "p@ss\nline2"}
    plain, with_secrets = winrm_sent(command), winrm_sent(command, secrets)
    assert plain[1] == with_secrets[1] == command, "the script arrives as it was given"
    return [
        Script("winrm:stager(no secrets)", plain[0], "WinrmTransport.run(command), -EncodedCommand decoded", True),
        Script("winrm:stager(two secrets)", with_secrets[0],
               "WinrmTransport.run(command, secrets={2 names}), -EncodedCommand decoded", True),
        Script("winrm:stdin(farm probe)", winrm_sent(windows_probe.probe_command())[1],
               "WinrmTransport.run(probe_command()), stdin decoded", True),
    ]


def _stagers() -> list[Script]:
    return [
        Script("winrm-stager:stdin_stager(1 name)", stdin_stager(["CUSTODE_SECRET_TOKEN"]),
               "winrm.stdin_stager(['CUSTODE_SECRET_TOKEN'])", True),
        Script("winrm-stager:stdin_stager(3 names)",
               stdin_stager(["CUSTODE_SECRET_A", "CUSTODE_SECRET_B_2", "CUSTODE_SECRET_C"]),
               "winrm.stdin_stager([3 names])", True),
    ]


PLAYBOOK_COMMANDS = {
    "code": "Invoke-RestMethod -Uri https://example.test/api -Headers @{Authorization = {{ secret.token }}}",
    "double": 'Invoke-RestMethod -Uri "https://example.test/api?key={{ secret.token }}&x=$($env:COMPUTERNAME)"',
    "single": "$h = 'Bearer {{ secret.token }} costs $5 `n \"quoted\" it''s'; Write-Output $h",
    "typographic-single": "$h = \u2018Bearer {{ secret.token }} l\u2019\u2019avviso\u2019; Write-Output $h",
    "here-single": ("@'\n[db]\nuser=admin\npass={{ secret.db_pass }}\nliteral=$notavar `tick \"q\"\n'@ "
                    "| Set-Content -LiteralPath 'C:\\App\\app.ini'"),
    "here-double": "@\"\nuser=$env:USERNAME\npass={{ secret.db_pass }}\n\"@ | Set-Content -LiteralPath 'C:\\a.ini'",
    "subexpression": 'Write-Output "token: $(\'{{ secret.token }}\'.Length) chars"',
    "two-secrets": ("$cred = New-Object PSCredential('{{ user }}', (ConvertTo-SecureString '{{ secret.db_pass }}' "
                    "-AsPlainText -Force))\nInvoke-Sqlcmd -Query 'SELECT 1' -Password {{ secret.token }}"),
}


def _playbook() -> list[Script]:
    out = []
    for name, template in PLAYBOOK_COMMANDS.items():
        variables = Variables(values={"user": "amministratore",
                                      "secret": {"token": SecretRef(env="CUSTODE_UNUSED_TOKEN"),
                                                 "db_pass": SecretRef(env="CUSTODE_UNUSED_DB_PASS")}},
                              resolve_secrets=False)
        bound = variables.render_command(template, "powershell")
        assert bound.secrets, name
        out.append(Script(f"playbook-secret:{name}", bound.text,
                          f"Variables.render_command(<{name} template>, 'powershell')"))
        stager, script = winrm_sent(bound.text, bound.secrets)
        assert script == bound.text, name
        out.append(Script(f"playbook-secret:{name}+winrm-stager", stager,
                          f"WinrmTransport.run(<{name} bound command>, secrets=...), -EncodedCommand decoded"))
    return out


SERVICE_NAMES = ["Spooler", "MSSQL$SQLEXPRESS", "Servizio dell\u2019anagrafe", "it's \"odd\" `name`"]


def _update_steps() -> list[Script]:
    out = []
    for name in SERVICE_NAMES:
        for action in ("stop", "start", "restart"):
            out.append(Script(f"update-step:service_command({action}, {name})",
                              service_command("powershell", name, action),
                              f"steps.service_command('powershell', {name!r}, {action!r})"))
        out.append(Script(f"update-step:service_state_command({name})", service_state_command("powershell", name),
                          f"steps.service_state_command('powershell', {name!r})"))
        out.append(Script(f"update-step:process_command({name})", process_command("powershell", name),
                          f"steps.process_command('powershell', {name!r})"))
    return out


@dataclass
class RecordingWindows(Transport):
    """A WinRM-like transport that records each script and answers with ``answer``."""

    answer: Callable[[str], str] = lambda script: ""
    scripts: list[str] = field(default_factory=list)
    kind = "winrm"
    shell = "powershell"

    def __post_init__(self) -> None:
        super().__init__("win-host")

    def run(self, command: str, timeout: float, *, max_output: int = DEFAULT_MAX_OUTPUT,
            secrets: Mapping[str, str] | None = None) -> CommandResult:
        self.scripts.append(command)
        return CommandResult(exit_code=0, stdout=self.answer(command), stderr="", duration=0.0)


SOURCE = "D:\\Dati"
RELATIVES = ["Anagrafe/l\u2019anagrafe.docx", "Costi $2024 `x`.xlsx", "it's \"quoted\".txt",
             "\u2018curly\u2019 \u201cdouble\u201d/x.pdf", "Tributi/ruolo.csv"]


def _tag(script: str) -> str:
    match = re.match(r"# custode:(\w+)", script)
    return match[1] if match else "command"


def _restore_files() -> list[Script]:
    fs = RemoteFileSystem(RecordingWindows(answer=lambda script: "D\tC:\\Temp\\custode-restore-1\r\n"))
    paths = [fs.join(SOURCE, relative) for relative in RELATIVES]
    scripts = {
        "walk": fs._walk_script(SOURCE),
        "walk(quoted root)": fs._walk_script("E:\\Condivisa\\l\u2019ufficio $tecnico"),
        "sha256": fs._sha256_script(paths),
        "stat": fs._stat_script(paths),
    }
    transport = fs.transport
    assert isinstance(transport, RecordingWindows)
    fs.make_scratch(None)
    scripts["mkscratch(in TEMP)"] = transport.scripts[-1]
    fs.make_scratch("E:\\Ripristini\\l\u2019archivio")
    scripts["mkscratch(under a folder)"] = transport.scripts[-1]
    fs.remove_tree("C:\\Temp\\custode-restore-1")
    scripts["rmtree"] = transport.scripts[-1]
    return [Script(f"restore-files:{name}", text, f"RemoteFileSystem on a WinRM host: {name}")
            for name, text in scripts.items()]


WBADMIN = ("wbadmin start recovery -version:'{{ version }}' -itemType:File -items:'{{ items }}' "
           "-recoveryTarget:'{{ target }}' -overwrite:Overwrite -quiet")
WB_SNAPSHOT = ("$s=Get-WBBackupSet|Sort-Object BackupTime|Select-Object -Last 1\n"
               "@{id=$s.VersionId;time=$s.BackupTime}|ConvertTo-Json -Compress")
VEEAM_RESTORE = ("$point = '{{ version }}'  # the restore point\n$items = '{{ items_json }}' | ConvertFrom-Json\n"
                 "foreach ($i in $items) {\n"
                 "  Copy-Item -LiteralPath $i -Destination '{{ target }}' -Force\n"
                 "}")
VEEAM_LIST = ("'{{ items_json }}' | ConvertFrom-Json | ForEach-Object { Get-Item -LiteralPath $_ } |\n"
              "  Select-Object @{n='path';e={$_.FullName}}, @{n='size';e={$_.Length}} | ConvertTo-Json -Compress")


def _restore_commands() -> list[Script]:
    out = []
    answer = '{"id":"01/31/2024-02:00","time":"2024-01-31T02:00:00Z"}\r\n'
    for tool, settings in (
            ("wbadmin", {"snapshot_command": WB_SNAPSHOT, "restore_command": WBADMIN,
                         "restored_path": "{{ target }}\\{{ name }}", "version_command": "(Get-WBSummary) | Out-Null",
                         "items_separator": ","}),
            ("items_json", {"snapshot_command": "$null = Test-Path -LiteralPath '{{ source }}'\n" + WB_SNAPSHOT,
                            "restore_command": VEEAM_RESTORE, "list_command": VEEAM_LIST,
                            "version_command": "(Get-Module Veeam.Backup.PowerShell -ListAvailable).Version",
                            "items_separator": "|"})):
        transport = RecordingWindows(answer=lambda script: answer)
        backend = CommandBackend(transport, SOURCE, timeout=60.0, tool=tool, **settings)  # type: ignore[arg-type]
        snapshot = Snapshot(id="01/31/2024-02:00", time=1706666400.0)
        phases: list[tuple[str, Callable[[], object]]] = [
            ("tool_version", backend.tool_version),
            ("latest_snapshot", backend.latest_snapshot),
            ("manifest", partial(backend.manifest, snapshot, RELATIVES)),
            ("restore", partial(backend.restore, snapshot, RELATIVES, "C:\\Temp\\custode-restore-l\u2019a")),
        ]
        for phase, call in phases:
            before = len(transport.scripts)
            call()
            ran = transport.scripts[before:]
            assert ran, f"{tool}: {phase} ran no script"
            for number, script in enumerate(ran):
                out.append(Script(f"restore-command:{tool}:{phase}:{number}-{_tag(script)}", script,
                                  f"CommandBackend({tool} templates) on a WinRM host: script {number} of {phase}()"))
    return out


SHIPPED_PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yaml"))
_HERE_STRING = re.compile(r"@'\n(.*?)\n'@", re.S)


def _playbook_header(path: Path) -> str:
    """The leading comment lines of a playbook: where it says which hosts it is for."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def _shipped_playbooks() -> list[Script]:
    """Each PowerShell command of a shipped Windows playbook, its variables rendered, and its here-strings."""
    from custode.agent.updates.playbook import load_playbook

    out = []
    for path in SHIPPED_PLAYBOOKS:
        header = _playbook_header(path)
        if "over WinRM" not in header:
            continue
        powershell2 = "PowerShell 2.0" in header
        playbook, _ = load_playbook(path)
        values: dict = {"host": {"name": "win-host", "address": "192.0.2.10"},
                        "tenant": {"id": "crema", "name": "Comune di Crema"},
                        "window": {"name": "os-patch", "application": "Windows", "start": "08:00", "end": "14:00",
                                   "date": "2027-03-13"},
                        "run": {"trigger": "scheduled", "reason": "", "stamp": "20270313-0800"}}
        values.update(playbook.vars)
        for phase in ("steps", "rollback"):
            for position, step in enumerate(getattr(playbook, phase)):
                command = step.run or step.backup
                if command is None:
                    continue
                variables = Variables(values=dict(values), resolve_secrets=False)
                for name in variables.missing(command.command):  # host vars: a plausible Windows value
                    variables.values[name] = "C:\\Vendor\\App.exe"
                text = variables.render_command(command.command, "powershell").text
                title = step.title(position)
                out.append(Script(f"shipped-playbook:{path.name}:{phase}[{position}] {title}", text,
                                  f"{path.name} {phase}[{position}] ({title}), rendered for PowerShell", powershell2))
                for number, body in enumerate(_HERE_STRING.findall(text)):
                    out.append(Script(f"shipped-playbook:{path.name}:{phase}[{position}] here-string {number}",
                                      body, f"the script {path.name} {phase}[{position}] writes to the host",
                                      powershell2))
    return out


SCRIPTS: list[Script] = (_shipped() + _farm_probe() + _winrm() + _stagers() + _playbook() + _update_steps()
                         + _restore_files() + _restore_commands() + _shipped_playbooks())

KNOWN_FAILURES: dict[str, str] = {}
"""Script id -> why tree-sitter-powershell rejects a generated script (xfail, strict: a fix must remove it).

Empty: the secret prelude (now the WinRM stager) once ended with ``Remove-Variable __custode, __custodeLine``,
valid PowerShell that tree-sitter-powershell 0.26.4 rejects (a comma-separated list of bare words as a command
argument, as in ``Get-Process notepad, calc``); the names are quoted now, which every parser reads."""

KNOWN_PS3_CONSTRUCTS: dict[str, str] = {}
"""Script id -> the PowerShell 3+ constructs a PowerShell 2.0 script uses today (each named in the reason)."""


def _marked(scripts: list[Script], known: dict[str, str]) -> list:
    return [pytest.param(script, id=script.id,
                         marks=[pytest.mark.xfail(strict=True, reason=known[script.id])] if script.id in known else [])
            for script in scripts]


def test_every_generator_is_covered():
    ids = [script.id for script in SCRIPTS]
    assert len(ids) == len(set(ids)), "two scripts share an id"
    assert SHIPPED, "git ls-files found no .ps1 file"
    for prefix in ("shipped:", "farm-probe:", "winrm:", "winrm-stager:", "playbook-secret:", "update-step:",
                   "restore-files:", "restore-command:", "shipped-playbook:"):
        assert any(script_id.startswith(prefix) for script_id in ids), prefix
    assert set(KNOWN_FAILURES) <= set(ids) and set(KNOWN_PS3_CONSTRUCTS) <= set(ids)
    # What the stager reads from stdin is exactly probe_command(): what the host runs is what is parsed here.
    sent = next(script.text for script in SCRIPTS if script.id == "farm-probe:stdin")
    assert sent == windows_probe.probe_command()


@pytest.mark.parametrize("script", _marked(SCRIPTS, KNOWN_FAILURES))
def test_script_parses(script: Script):
    assert script.text.strip(), f"{script.id}: empty script ({script.how})"
    assert_parses(script.text)


def test_the_stager_removes_its_variables_as_a_list_of_strings():
    """The grammar gap that once failed the secret prelude, kept visible: bare words with commas do not parse here."""
    assert "Remove-Variable '__custodeIn'" in stdin_stager(["CUSTODE_SECRET_X"])
    assert first_problem(parse("Get-Process notepad, calc")) is not None


@pytest.mark.parametrize("script", _marked([s for s in SCRIPTS if s.powershell2], KNOWN_PS3_CONSTRUCTS))
def test_powershell_2_scripts_use_no_newer_syntax(script: Script):
    found = newer_constructs(parse(script.text))
    assert not found, (f"{script.id} must run on Windows PowerShell 2.0 (Windows Server 2008 R2) but uses: "
                       + "; ".join(found))


def test_the_windows_update_playbook_is_parsed_and_held_to_powershell_2():
    """Every command of os-windows-update.yaml, and the two scripts it writes to the host, run on PowerShell 2.0."""
    ids = {script.id: script for script in SCRIPTS if script.id.startswith("shipped-playbook:os-windows-update.yaml")}
    assert len([i for i in ids if "here-string" not in i]) >= 6, sorted(ids)
    assert len([i for i in ids if "here-string" in i]) == 2, "the SYSTEM job and its runner"
    assert all(script.powershell2 for script in ids.values())
    assert any("Microsoft.Update.Session" in script.text for script in ids.values())
    assert any(script.id.startswith("shipped-playbook:windows-vendor-update.yaml") for script in SCRIPTS)


def test_the_probe_is_held_to_powershell_2():
    probe_ids = {script.id for script in SCRIPTS if script.powershell2}
    assert "shipped:agent/farm/probes/windows.ps1" in probe_ids
    assert {"farm-probe:stdin", "farm-probe:command(include_updates=True)", "winrm:stdin(farm probe)",
            "winrm:stager(no secrets)", "winrm:stager(two secrets)"} <= probe_ids


# -- the checks can fail --------------------------------------------------------------------------

BROKEN = {
    "unclosed-brace": ("if ($x) {\n    Write-Output 'a'\n", 2),
    "unterminated-here-string": ("$t = @'\nline one\nline two\n", 1),
    "unterminated-double-here-string": ('$t = @"\nline $x\n', 1),
    "unclosed-paren": ("$x = (Get-Date\nWrite-Output $x\n", None),
    "unterminated-string": ("Write-Output 'never closed\n", 1),
    "stray-closing-brace": ("Write-Output 1\n}\n", 2),
}


@pytest.mark.parametrize(("text", "line"), list(BROKEN.values()), ids=list(BROKEN))
def test_broken_powershell_is_rejected(text: str, line: int | None):
    tree = parse(text)
    problem = first_problem(tree)
    assert problem is not None, f"tree-sitter-powershell accepted broken PowerShell: {text!r}"
    report = describe_problem(text, problem)
    assert re.match(r"(MISSING|ERROR) .* at line \d+, column \d+:\n", report), report
    if line is not None:
        assert problem.start_point[0] + 1 == line, report
    with pytest.raises(pytest.fail.Exception, match="does not parse the script"):
        assert_parses(text)


def test_the_report_points_at_the_error():
    text = "$a = 1\n$b = @(1, 2\nWrite-Output $a\n"
    problem = first_problem(parse(text))
    assert problem is not None
    report = describe_problem(text, problem)
    assert "line" in report and "| $b = @(1, 2" in report and "^" in report


NEWER = {
    "ordered": ("$h = [ordered]@{a = 1}", "[ordered]"),
    "pscustomobject": ("$o = [PSCustomObject] @{a = 1}", "[pscustomobject]"),
    "in": ("if (1 -in @(1, 2)) { 'y' }", "-in operator"),
    "notin": ("if (3 -notin @(1, 2)) { 'y' }", "-notin operator"),
    "psitem": ("1, 2 | ForEach-Object { $PSItem * 2 }", "$PSItem"),
    "psitem-in-string": ('1 | ForEach-Object { "n=$PSItem" }', "$PSItem"),
    "new": ("$sb = [Text.StringBuilder]::new(16)", "::new("),
    "using": ("using namespace System.Text\n$x = 1", "using statement"),
    "class": ("class Disk { [string]$Name }", "class definition"),
    "enum": ("enum Level { Low; High }", "enum definition"),
    "shl": ("$x = 1 -shl 4", "-shl operator"),
    "chain": ("Get-Item C:\\ && Write-Output ok", "&& pipeline chain"),
}


@pytest.mark.parametrize(("text", "construct"), list(NEWER.values()), ids=list(NEWER))
def test_newer_constructs_are_found(text: str, construct: str):
    found = newer_constructs(assert_parses(text))
    assert any(item.startswith(construct) for item in found), found


def test_powershell_2_syntax_is_not_flagged():
    text = ("$h = @{a = 1}; $o = New-Object PSObject -Property $h\n"
            "if (@(1, 2) -contains 1) { 'y' }\n1, 2 | ForEach-Object { $_ * 2 }\n"
            "$sb = New-Object Text.StringBuilder 16\n# [ordered] -in $PSItem in a comment\n"
            "'[ordered] -in $PSItem ::new(' | Out-Null\n$i = [int]'5'; $in = 1; $x = $in -eq 1\n")
    assert newer_constructs(assert_parses(text)) == []
