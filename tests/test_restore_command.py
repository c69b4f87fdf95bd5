"""The command-template backend and the remote file system, over real sshd and over the WinRM double.

Linux: Debian's sshd on 127.0.0.1 (tests/ssh_server.py), a "backup" that is a
real tar archive, and templates that call tar. Windows: the WS-Management
double (tests/winrm_server.py) with ``FakeWindows`` behind it, which reads the
PowerShell scripts Custode sends (recognised by their ``# custode:…`` marker or
the tool's command line), parses their single-quoted literals with
PowerShell's quoting rules, and answers as PowerShell would, from a local
folder that stands for the Windows drives.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import host_clock, host_env, require_binary
from restore_trees import write_now
from ssh_server import SshServer
from winrm_server import WinrmServer

from custode.agent.restore.backends.command import (
    CommandBackend,
    TemplateError,
    find_json,
    items_json,
    parse_time,
    render,
    template_problem,
    unquoted_placeholders,
)
from custode.agent.restore.model import RestoreError, Snapshot
from custode.agent.restore.remote_files import TICKS_AT_EPOCH, WINRM_SCRIPT_LIMIT, RemoteFileSystem
from custode.agent.transports.config import SshOptions, WinrmOptions
from custode.agent.transports.local import LocalTransport
from custode.agent.transports.quoting import quote_powershell
from custode.agent.transports.ssh import SshTransport
from custode.agent.transports.winrm import WinrmTransport

pytestmark = pytest.mark.integration

PASSWORD_ENV = "CUSTODE_TEST_WINRM_PASSWORD"

TREE = {
    "a.txt": b"contenuto di prova\n",
    "sub/b.bin": bytes(range(256)) * 40,
    "cartella con spazi/perché è così.txt": "Forlì, Perù, città\n".encode(),
    "l'anagrafe.txt": b"apostrofo\n",
    "l\u2019ufficio tributi.txt": b"apostrofo tipografico\n",
    "costi $HOME `echo`.txt": b"dollaro e backtick\n",
    "vuoto.txt": b"",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# == Linux over real sshd ==========================================================================


@pytest.fixture(scope="module")
def sshd() -> Iterator[SshServer]:
    with SshServer() as server:
        yield server


@pytest.fixture
def ssh(sshd: SshServer) -> Iterator[SshTransport]:
    options = SshOptions(user=sshd.user, port=sshd.port, identity_file=sshd.client_key,
                         known_hosts=sshd.known_hosts, use_agent=False, connect_timeout=5)
    with SshTransport("nas-comune", sshd.host, options) as transport:
        yield transport


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "dati comune"
    make_tree(root, TREE)
    return root


def test_posix_walk_lists_every_regular_file_with_size_and_mtime(ssh, source):
    (source / "riga\nnuova\tcon tab.txt").write_bytes(b"x" * 3)
    (source / "collegamento").symlink_to(source / "a.txt")  # links are not files of the backup set
    fs = RemoteFileSystem(ssh, timeout=20)
    entries = {entry.path: entry for entry in fs.walk(str(source))}
    assert set(entries) == set(TREE) | {"riga\nnuova\tcon tab.txt"}
    for relative, data in TREE.items():
        assert entries[relative].size == len(data)
        assert entries[relative].mtime == pytest.approx(os.stat(source / relative).st_mtime, abs=1e-6)
    assert fs.walk_errors == []


def test_posix_walk_refuses_a_missing_root_and_a_cut_listing(ssh, source):
    fs = RemoteFileSystem(ssh, timeout=20)
    with pytest.raises(RestoreError, match=r"nas-comune: source folder .*manca does not exist"):
        list(fs.walk(str(source / "manca")))
    small = RemoteFileSystem(ssh, timeout=20, max_listing=100)
    with pytest.raises(RestoreError, match="was cut.*narrow 'source'"):
        list(small.walk(str(source)))


def test_posix_sha256_in_one_command_with_awkward_names(ssh, source):
    fs = RemoteFileSystem(ssh, timeout=20)
    paths = [str(source / relative) for relative in TREE]
    missing, folder = str(source / "non c'è.txt"), str(source / "sub")
    hashes = fs.sha256([*paths, missing, folder])
    for relative, data in TREE.items():
        assert hashes[str(source / relative)] == sha(data)
    assert hashes[missing].startswith("error: ") and "No such file" in hashes[missing]
    assert hashes[folder].startswith("error: ") and "directory" in hashes[folder].lower()


def test_posix_scratch_is_private_and_removed(ssh, tmp_path):
    fs = RemoteFileSystem(ssh, timeout=20)
    parent = tmp_path / "restore area"
    scratch = fs.make_scratch(str(parent))
    assert Path(scratch).parent == parent and Path(scratch).name.startswith("custode-restore-")
    assert stat.S_IMODE(os.stat(scratch).st_mode) == 0o700
    (Path(scratch) / "dentro" / "x.txt").parent.mkdir()
    (Path(scratch) / "dentro" / "x.txt").write_text("dati personali")
    fs.remove_tree(scratch)
    assert not Path(scratch).exists() and parent.is_dir()
    default = fs.make_scratch(None)
    assert Path(default).is_dir() and Path(default).name.startswith("custode-restore-")
    fs.remove_tree(default)
    assert not Path(default).exists()
    with pytest.raises(RestoreError, match="refusing"):
        fs.remove_tree("/")
    assert fs.join("/srv/dati/", "sub/b.txt") == "/srv/dati/sub/b.txt"


@pytest.fixture
def tar_backup(tmp_path: Path, source: Path) -> Path:
    """A real tar archive of ``source`` (member names without the leading slash, as GNU tar writes them)."""
    tar = require_binary("tar", "tar")
    archive = tmp_path / "backup notturno.tar"
    subprocess.run([tar, "-C", "/", "-cf", str(archive), str(source).lstrip("/")], check=True, timeout=30,
                   env=host_env())  # the remote host's own backup tool, on its own clock
    now = host_clock()  # the files are on the "remote" host, whose programs (tar over sshd) see the real day
    os.utime(archive, (now - 60, now - 60))  # the backup ran a minute ago
    for path in source.rglob("*"):
        os.utime(path, (now - 3600, now - 3600), follow_symlinks=False)
    return archive


def tar_backend(transport, source: Path, archive: Path, **changes) -> CommandBackend:
    quoted = shlex.quote(str(archive))
    settings = dict(
        snapshot_command=(f"printf '{{\"id\": \"%s\", \"time\": %s, \"paths\": [\"%s\"]}}\\n' "
                          f"\"$(basename {quoted})\" \"$(stat -c %Y {quoted})\" '{{{{ source }}}}'"),
        restore_command=(f"printf '%s\\n' '{{{{ items }}}}' | sed 's|^/||' | "
                         f"tar -xf {quoted} -C '{{{{ target }}}}' -T -"),
        restored_path="{{ target }}/{{ path }}", version_command="tar --version", items_separator="\n",
        timeout=30.0, tool="tar")
    settings.update(changes)
    return CommandBackend(transport, str(source), **settings)


def test_tar_backend_over_ssh_restores_the_sample(ssh, source, tar_backup, tmp_path):
    backend = tar_backend(ssh, source, tar_backup)
    assert backend.tool_version().startswith("tar (GNU tar)")
    snapshot = backend.latest_snapshot()
    assert snapshot.id == "backup notturno.tar" and snapshot.paths == [str(source)]
    assert snapshot.time == pytest.approx(os.stat(tar_backup).st_mtime, abs=1)

    write_now(source / "nuovo dopo il backup.txt", b"creato dopo", clock=host_clock)
    changed = source / "sub" / "b.bin"
    write_now(changed, b"modificato dopo il backup", clock=host_clock)
    sample = [*TREE, "nuovo dopo il backup.txt"]
    manifest = backend.manifest(snapshot, sample)
    # no list command: "in the backup" means "not newer than the snapshot", with the source's own stat
    assert set(manifest) == set(TREE) - {"sub/b.bin"}
    assert manifest["a.txt"].size == len(TREE["a.txt"]) and manifest["a.txt"].sha256 is None

    scratch = backend.fs.make_scratch(str(tmp_path / "scratch"))
    outcome = backend.restore(snapshot, sample, scratch)
    assert set(outcome.restored) == set(TREE)
    assert outcome.seconds > 0
    restored_hashes = backend.fs.sha256(list(outcome.restored.values()))
    for relative, data in TREE.items():
        location = outcome.restored[relative]
        assert location == scratch + str(source / relative)  # {{ path }}: the tool recreates the full path
        assert restored_hashes[location] == sha(data)
    # tar exits 2 when a member is missing: the one file it could not give back is named, with the reason
    assert set(outcome.errors) == {"nuovo dopo il backup.txt"}
    assert "the restore command failed (exit code 2" in outcome.errors["nuovo dopo il backup.txt"]
    assert "Not found in archive" in outcome.errors["nuovo dopo il backup.txt"]
    assert len(outcome.messages) == 1 and outcome.messages[0].startswith("nas-comune: the restore command of tar")
    assert len([s for s in Path(scratch).iterdir()]) == 1  # one run: no per-round sub-folder
    backend.fs.remove_tree(scratch)
    backend.close()


def test_failing_restore_command_gives_an_error_for_each_file(ssh, source, tar_backup, tmp_path):
    backend = tar_backend(ssh, source, tar_backup,
                          restore_command="echo 'archivio danneggiato: {{ version }}' >&2; exit 1")
    snapshot = backend.latest_snapshot()
    scratch = backend.fs.make_scratch(str(tmp_path))
    outcome = backend.restore(snapshot, ["a.txt", "sub/b.bin", "l'anagrafe.txt"], scratch)
    assert outcome.restored == {}
    assert set(outcome.errors) == {"a.txt", "sub/b.bin", "l'anagrafe.txt"}
    for message in outcome.errors.values():
        assert message.startswith("not restored: the restore command failed (exit code 1")
        assert "archivio danneggiato: backup notturno.tar" in message
    assert outcome.messages == ["nas-comune: the restore command of tar failed for 3 files (exit code 1: "
                                "archivio danneggiato: backup notturno.tar)"]
    backend.fs.remove_tree(scratch)


def test_snapshot_and_version_failures_stop_the_test(ssh, source, tar_backup):
    backend = tar_backend(ssh, source, tar_backup, snapshot_command="echo 'repository non trovato' >&2; exit 4",
                          version_command="custode-no-such-tool --version")
    with pytest.raises(RestoreError, match=r"nas-comune: the snapshot command of tar failed \(exit code 4: "
                                           r"repository non trovato\)"):
        backend.latest_snapshot()
    with pytest.raises(RestoreError, match="version command of tar failed.*is the tool installed"):
        backend.tool_version()
    empty = tar_backend(ssh, source, tar_backup, snapshot_command="echo '[]'")
    with pytest.raises(RestoreError, match="reports no backup"):
        empty.latest_snapshot()


# == templates, quoting and parsing (this machine's sh) ============================================


def test_unknown_or_unquoted_placeholders_are_refused():
    problem = template_problem("tar -x -C '{{ targte }}'", ["version", "target"])
    assert problem == "unknown placeholder {{ targte }}; known here: {{ version }}, {{ target }}"
    assert template_problem("tar -C '{{ target }}'", ["target"], "posix") is None
    assert "must be inside single quotes" in template_problem("tar -C {{ target }}", ["target"], "posix")
    assert unquoted_placeholders('cp "{{ items }}" \'{{ target }}\' # {{ version }}', "posix") == [
        "items", "version"]
    ps = "wbadmin -items:'{{ items }}' -t:\"{{ target }}\" ‘{{ version }}’ 'it''s {{ source }}' <# {{ x }} #>"
    assert unquoted_placeholders(ps, "powershell") == ["target", "x"]
    # bash's $'…' reads backslash escapes and PowerShell's here-strings do not unescape doubled quotes
    assert unquoted_placeholders("echo $'{{ a }}' '{{ b }}'", "posix") == ["a"]
    assert unquoted_placeholders("$t=@'\n{{ a }}\n'@\nGet-Item -LiteralPath '{{ b }}'", "powershell") == ["a"]
    with pytest.raises(ValueError, match=r"command template 'restore': placeholder \{\{ items \}\} must be"):
        CommandBackend(LocalTransport("questo-server"), "/srv", snapshot_command="echo '{}'",
                       restore_command="cp {{ items }} '{{ target }}'")
    with pytest.raises(TemplateError, match=r"unknown placeholder \{\{ nome \}\}.*\{\{ relative \}\}"):
        CommandBackend(LocalTransport("questo-server"), "/srv", snapshot_command="echo '{}'",
                       restore_command="true", restored_path="{{ target }}/{{ nome }}")


def test_values_cannot_escape_their_quotes(tmp_path, monkeypatch):
    """A file name written by a user of the share is data, never a command, in both shells' rules."""
    evil = "a'; touch pwned; echo '.txt"
    make_tree(tmp_path / "src", {evil: b"innocuo", "ok.txt": b"ok"})
    backend = CommandBackend(LocalTransport("questo-server"), str(tmp_path / "src"),
                             snapshot_command="echo '{\"id\": \"1\", \"time\": 0}'",
                             restore_command="printf '%s\\n' '{{ items }}' | while IFS= read -r f; do "
                                             "cp -- \"$f\" '{{ target }}/'; done",
                             restored_path="{{ target }}/{{ name }}", items_separator="\n")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(tmp_path)  # where an injected "touch pwned" would write
    outcome = backend.restore(Snapshot("1", 0.0), [evil, "ok.txt"], str(scratch))
    assert set(outcome.restored) == {evil, "ok.txt"} and outcome.errors == {}
    assert (scratch / evil).read_bytes() == b"innocuo"
    assert not (tmp_path / "pwned").exists()
    assert render("'{{ x }}'", {"x": "l’a'b"}, "powershell") == "'l’’a''b'"
    assert json.loads(items_json(["C:\\l'a", "l’b"])) == ["C:\\l'a", "l’b"]
    assert "'" not in items_json(["l'a"]) and "’" not in items_json(["l’b"])


def test_paths_with_the_items_separator_are_named_not_mangled(tmp_path):
    make_tree(tmp_path / "src", {"uno, due.txt": b"1", "tre.txt": b"3"})
    backend = CommandBackend(LocalTransport("questo-server"), str(tmp_path / "src"),
                             snapshot_command="echo '{}'", restore_command="cp -- '{{ items }}' '{{ target }}/'",
                             restored_path="{{ target }}/{{ name }}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    outcome = backend.restore(Snapshot("1", 0.0), ["uno, due.txt", "tre.txt"], str(scratch))
    assert outcome.restored == {"tre.txt": str(scratch / "tre.txt")}
    assert "contains the items separator ','" in outcome.errors["uno, due.txt"]


def test_time_and_json_parsing():
    assert parse_time("/Date(1706662800000)/") == 1706662800.0
    assert parse_time("\\/Date(1706662800000+0100)\\/") == 1706662800.0
    assert parse_time({"value": "/Date(1706662800000)/", "DisplayHint": 2, "DateTime": "mercoledì"}) == 1706662800
    assert parse_time("2024-01-31T02:00:00.1234567+01:00") == pytest.approx(1706662800.1234567, abs=1e-5)
    assert parse_time("2024-01-31T01:00:00Z") == 1706662800.0
    assert parse_time(1706662800) == parse_time(1706662800000) == parse_time("1706662800") == 1706662800.0
    with pytest.raises(ValueError, match="not ISO 8601"):
        parse_time("31/01/2024 02:00")
    assert find_json('WARNING: modulo caricato [ok]\n{"id": "x", "time": 1}\n') == {"id": "x", "time": 1}
    with pytest.raises(ValueError):
        find_json("nessun backup")


# == Windows over the WinRM double =================================================================


def ps_literal(text: str, start: int) -> tuple[str, int]:
    """A PowerShell single-quoted literal at ``text[start]``: its value and the index after it.

    PowerShell's rule: any of ' ‘ ’ ‚ ‛ opens and closes; two in a row are one literal (the second).
    """
    quotes = "'\u2018\u2019\u201a\u201b"
    assert text[start] in quotes, text[start:start + 40]
    value, index = [], start + 1
    while True:
        char = text[index]
        if char in quotes:
            if index + 1 < len(text) and text[index + 1] in quotes:
                value.append(text[index + 1])
                index += 2
                continue
            return "".join(value), index + 1
        value.append(char)
        index += 1


def assigned(script: str, variable: str) -> str:
    return ps_literal(script, script.index(f"${variable}=") + len(variable) + 2)[0]


def listed(script: str) -> list[str]:
    index = script.index("@(") + 2
    values = []
    while script[index] != ")":
        value, index = ps_literal(script, index)
        values.append(value)
        if script[index] == ",":
            index += 1
    return values


class FakeWindows:
    """Drives C: and D: of a pretend Windows host, kept in a local folder, as PowerShell would answer."""

    TEMP = "C:\\Users\\custode\\AppData\\Local\\Temp"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backed_up: set[str] = set()
        self.backup_time = 1706662800
        self.wbadmin_lines: list[str] = []

    def local(self, windows_path: str) -> Path:
        drive, _, rest = windows_path.partition(":")
        return self.root.joinpath(drive.upper(), *[part for part in rest.split("\\") if part])

    def ticks(self, path: Path) -> int:
        return os.stat(path).st_mtime_ns // 100 + TICKS_AT_EPOCH

    def answer(self, script: str):
        if "# custode:walk" in script:
            return self.walk(assigned(script, "r"))
        if "# custode:sha256" in script or "# custode:stat" in script:
            base = assigned(script, "b")
            lines = []
            for index, name in enumerate(listed(script)):
                path = self.local(base + name)
                if "# custode:stat" in script:
                    if path.is_file():
                        lines.append(f"F\t{index}\t{path.stat().st_size}\t{self.ticks(path)}")
                elif path.is_file():
                    lines.append(f"H\t{index}\t{hashlib.sha256(path.read_bytes()).hexdigest().upper()}")
                else:
                    lines.append(f"X\t{index}\tCannot find path '{base + name}' because it does not exist.")
            return (0, "\r\n".join(lines) + "\r\n", "")
        if "# custode:mkscratch" in script:
            parent = self.TEMP if "$p=$env:TEMP" in script else assigned(script, "p")
            made = parent.rstrip("\\") + f"\\custode-restore-{len(list(self.root.rglob('custode-restore-*')))}"
            self.local(made).mkdir(parents=True)
            return (0, f"D\t{made}\r\n", "")
        if "# custode:rmtree" in script:
            shutil.rmtree(self.local(assigned(script, "d")))
            return (0, "", "")
        if "Get-WBBackupSet" in script:
            return (0, '{"id":"01/31/2024-02:00","time":"\\/Date(%d000)\\/"}\r\n' % self.backup_time, "")
        if script.startswith("wbadmin start recovery"):
            return self.wbadmin(script)
        if "Get-WBSummary" in script:
            return (0, "wbadmin 1.0 - Backup command-line tool\r\n(C) Copyright Microsoft Corporation.\r\n", "")
        return (1, "", f"FakeWindows does not know this script: {script[:120]}")

    def walk(self, root: str):
        base = self.local(root)
        if not base.is_dir():
            return (3, "custode:not-a-folder\r\n", "")
        lines, errors = [], []
        for path in sorted(base.rglob("*")):
            relative = path.relative_to(base)
            if "Riservata" in relative.parts:
                if path.name == "Riservata":
                    errors.append(f"E\t{root}\\Riservata: Access to the path '{root}\\Riservata' is denied.")
                continue
            if path.is_file():
                windows_relative = "\\".join(relative.parts)
                lines.append(f"F\t{path.stat().st_size}\t{self.ticks(path)}\t{windows_relative}")
        return (0, "\r\n".join(lines + errors) + "\r\n", "")

    def wbadmin(self, script: str):
        """``wbadmin start recovery``: checks the rendered command line, restores by copying."""
        self.wbadmin_lines.append(script)
        match = re.fullmatch(r"wbadmin start recovery -version:(.+) -itemType:File -items:(.+) "
                             r"-recoveryTarget:(.+) -overwrite:Overwrite -quiet", script, re.S)
        assert match, script
        version, after = ps_literal(script, match.start(1))
        items, after = ps_literal(script, match.start(2))
        target, after = ps_literal(script, match.start(3))
        if version != "01/31/2024-02:00":
            return (1, "ERROR - The specified backup version was not found.\r\n", "")
        failed = []
        for item in items.split(","):
            if item not in self.backed_up:
                failed.append(item)
                continue
            shutil.copy2(self.local(item), self.local(target) / item.rsplit("\\", 1)[-1])
        if failed:
            return (1, "Retrieving volume information...\r\n",
                    "".join(f"ERROR - {item} was not found in the backup.\n" for item in failed))
        return (0, "The recovery operation completed successfully.\r\n", "")


WINDOWS_TREE = {
    "Anagrafe/elenco.csv": b"cognome;nome\nRossi;Maria\n",
    "Tributi/elenco.csv": b"codice;importo\nIMU;120,00\n",
    "Tributi/l\u2019avviso 2024.pdf": b"%PDF-1.4 avviso",
    "Protocollo/l'atto n. 5.docx": b"PK atto",
    "Protocollo/costi $2023 `x`.xlsx": b"PK costi",
    "Perù/città.txt": "Forlì\n".encode(),
}


@pytest.fixture
def windows(tmp_path, monkeypatch) -> Iterator[tuple[WinrmServer, FakeWindows, WinrmTransport]]:
    host = FakeWindows(tmp_path / "windows")
    make_tree(host.root / "D" / "Dati", WINDOWS_TREE)
    host.local(FakeWindows.TEMP).mkdir(parents=True)
    host.backed_up = {"D:\\Dati\\" + relative.replace("/", "\\") for relative in WINDOWS_TREE}
    with WinrmServer(tls=True) as server:
        monkeypatch.setenv(PASSWORD_ENV, server.password)
        server.on(lambda script: True, host.answer)
        options = WinrmOptions.model_validate({
            "user": server.user, "password": {"env": PASSWORD_ENV}, "scheme": "https", "port": server.port,
            "auth": "basic", "ca_file": str(server.ca_file), "connect_timeout": 5})
        with WinrmTransport("srv-anagrafe", "127.0.0.1", options) as transport:
            yield server, host, transport


def test_windows_walk_and_sha256(windows):
    server, host, transport = windows
    (host.local("D:\\Dati") / "Riservata").mkdir()
    (host.local("D:\\Dati") / "Riservata" / "segreto.txt").write_bytes(b"no")
    fs = RemoteFileSystem(transport, timeout=20)
    entries = {entry.path: entry for entry in fs.walk("D:\\Dati")}
    assert set(entries) == set(WINDOWS_TREE)
    for relative, data in WINDOWS_TREE.items():
        assert entries[relative].size == len(data)
        assert entries[relative].mtime == pytest.approx(os.stat(host.local("D:\\Dati\\" + relative.replace(
            "/", "\\"))).st_mtime, abs=1e-6)
    assert fs.walk_errors == ["D:\\Dati\\Riservata: Access to the path 'D:\\Dati\\Riservata' is denied."]
    walk_script = server.scripts[-1]
    assert walk_script.startswith("# custode:walk")
    assert "Get-ChildItem -LiteralPath $r -Recurse -File -Force" in walk_script
    assert "[Console]::OutputEncoding" in walk_script

    paths = [fs.join("D:\\Dati", relative) for relative in WINDOWS_TREE]
    assert paths[0] == "D:\\Dati\\Anagrafe\\elenco.csv"
    hashes = fs.sha256([*paths, "D:\\Dati\\manca.txt"])
    assert sum("# custode:sha256" in script for script in server.scripts) == 1  # one command for all
    for relative, data in WINDOWS_TREE.items():
        assert hashes[fs.join("D:\\Dati", relative)] == sha(data)
    assert hashes["D:\\Dati\\manca.txt"] == "error: Cannot find path 'D:\\Dati\\manca.txt' because it does not exist."
    with pytest.raises(RestoreError, match=r"srv-anagrafe: source folder E:\\Manca does not exist"):
        list(fs.walk("E:\\Manca"))


def test_windows_sha256_of_many_files_stays_under_the_script_limit(windows):
    server, host, transport = windows
    many = {f"Archivio storico/Delibere della giunta/{year}/delibera n. {n} dell’anno {year}.pdf":
            f"{year}-{n}".encode() for year in range(2010, 2016) for n in range(1, 121)}
    make_tree(host.local("D:\\Dati"), many)
    fs = RemoteFileSystem(transport, timeout=20)
    paths = [fs.join("D:\\Dati", relative) for relative in many]
    hashes = fs.sha256(paths)
    assert {hashes[fs.join("D:\\Dati", relative)] for relative in many} == {sha(data) for data in many.values()}
    batches = [script for script in server.scripts if "# custode:sha256" in script]
    assert 2 <= len(batches) <= 6  # split only as far as WINRM_SCRIPT_LIMIT requires
    assert all(len(script) <= WINRM_SCRIPT_LIMIT for script in batches)


def test_windows_scratch_in_temp_and_removed(windows):
    server, host, transport = windows
    fs = RemoteFileSystem(transport, timeout=20)
    scratch = fs.make_scratch(None)
    assert scratch.startswith(FakeWindows.TEMP + "\\custode-restore-") and host.local(scratch).is_dir()
    under = fs.make_scratch("E:\\Ripristini")
    assert under.startswith("E:\\Ripristini\\custode-restore-") and host.local(under).is_dir()
    assert quote_powershell("E:\\Ripristini") in server.scripts[-1]
    fs.remove_tree(scratch)
    assert not host.local(scratch).exists()
    assert fs.join("D:\\", "a/b.txt") == "D:\\a\\b.txt"
    with pytest.raises(RestoreError, match="refusing"):
        fs.remove_tree("D:\\")


WBADMIN = ("wbadmin start recovery -version:'{{ version }}' -itemType:File -items:'{{ items }}' "
           "-recoveryTarget:'{{ target }}' -overwrite:Overwrite -quiet")
WB_SNAPSHOT = ("$s=Get-WBBackupSet|Sort-Object BackupTime|Select-Object -Last 1\n"
               "@{id=$s.VersionId;time=$s.BackupTime}|ConvertTo-Json -Compress")


def wbadmin_backend(transport) -> CommandBackend:
    return CommandBackend(transport, "D:\\Dati", snapshot_command=WB_SNAPSHOT, restore_command=WBADMIN,
                          restored_path="{{ target }}\\{{ name }}", version_command="(Get-WBSummary) | Out-Null",
                          timeout=20.0, tool="Windows Server Backup")


def test_wbadmin_template_restores_the_sample(windows):
    server, host, transport = windows
    backend = wbadmin_backend(transport)
    assert backend.tool_version() == "wbadmin 1.0 - Backup command-line tool"
    snapshot = backend.latest_snapshot()
    assert snapshot.id == "01/31/2024-02:00" and snapshot.time == host.backup_time
    sample = list(WINDOWS_TREE)
    scratch = backend.fs.make_scratch(None)
    outcome = backend.restore(snapshot, sample, scratch)
    assert outcome.errors == {} and outcome.messages == []
    assert set(outcome.restored) == set(sample)
    hashes = backend.fs.sha256(list(outcome.restored.values()))
    for relative, data in WINDOWS_TREE.items():
        assert hashes[outcome.restored[relative]] == sha(data)
    # two files named elenco.csv: {{ name }} would put them in one place, so the second gets its own run
    assert len(host.wbadmin_lines) == 2
    first, second = (outcome.restored["Anagrafe/elenco.csv"], outcome.restored["Tributi/elenco.csv"])
    assert first == scratch + "\\elenco.csv"
    assert second.startswith(scratch + "\\custode-restore-") and second.endswith("\\elenco.csv")
    # the rendered command line: every value a single-quoted literal, the apostrophes doubled
    assert ("-items:'D:\\Dati\\Anagrafe\\elenco.csv,D:\\Dati\\Tributi\\l\u2019\u2019avviso 2024.pdf,"
            "D:\\Dati\\Protocollo\\l''atto n. 5.docx,D:\\Dati\\Protocollo\\costi $2023 `x`.xlsx,"
            "D:\\Dati\\Perù\\città.txt'") in host.wbadmin_lines[0]
    assert f"-recoveryTarget:'{scratch}'" in host.wbadmin_lines[0]
    backend.fs.remove_tree(scratch)
    assert not host.local(scratch).exists()


def test_wbadmin_error_is_reported_per_file(windows):
    server, host, transport = windows
    make_tree(host.local("D:\\Dati"), {"Nuovi/dopo il backup.txt": b"nuovo"})
    backend = wbadmin_backend(transport)
    snapshot = backend.latest_snapshot()
    scratch = backend.fs.make_scratch(None)
    outcome = backend.restore(snapshot, ["Perù/città.txt", "Nuovi/dopo il backup.txt"], scratch)
    assert set(outcome.restored) == {"Perù/città.txt"}
    error = outcome.errors["Nuovi/dopo il backup.txt"]
    assert error.startswith("not restored: the restore command failed (exit code 1")
    assert "was not found in the backup" in error
    assert outcome.messages and "srv-anagrafe: the restore command of Windows Server Backup failed" in \
        outcome.messages[0]

    wrong = Snapshot(id="02/01/2024-02:00", time=snapshot.time)
    outcome = backend.restore(wrong, ["Perù/città.txt"], backend.fs.make_scratch(None))
    assert outcome.restored == {}
    assert "The specified backup version was not found" in outcome.errors["Perù/città.txt"]


def test_windows_manifest_from_a_list_command(windows):
    server, host, transport = windows
    listing = [
        {"Path": "d:\\dati\\ANAGRAFE\\elenco.csv", "Length": 25, "LastWriteTimeUtc": "\\/Date(1706000000000)\\/",
         "sha256": sha(b"x").upper()},
        {"Path": "D:\\Dati\\Perù\\città.txt", "Length": 7, "LastWriteTimeUtc": {"value": "/Date(1706000001000)/"}},
        {"Path": "E:\\Altro\\x.txt", "Length": 1, "LastWriteTimeUtc": 0},
    ]
    server.handlers.insert(0, (lambda script: "Get-VeeamList" in script,
                               lambda script: (0, json.dumps(listing), "")))
    backend = CommandBackend(transport, "D:\\Dati", snapshot_command=WB_SNAPSHOT, restore_command=WBADMIN,
                             list_command="Get-VeeamList -Version '{{ version }}' -Items ('{{ items_json }}' | "
                                          "ConvertFrom-Json) | ConvertTo-Json -Compress")
    manifest = backend.manifest(Snapshot("v1", 1706662800), ["Anagrafe/elenco.csv", "Perù/città.txt", "x.txt"])
    assert set(manifest) == {"Anagrafe/elenco.csv", "Perù/città.txt"}
    assert manifest["Anagrafe/elenco.csv"].size == 25 and manifest["Anagrafe/elenco.csv"].sha256 == sha(b"x")
    assert manifest["Perù/città.txt"].mtime == 1706000001.0 and manifest["Perù/città.txt"].sha256 is None
    script = next(script for script in server.scripts if "Get-VeeamList" in script)
    items = json.loads(ps_literal(script, script.index("('") + 1)[0])
    assert items == ["D:\\Dati\\Anagrafe\\elenco.csv", "D:\\Dati\\Perù\\città.txt", "D:\\Dati\\x.txt"]
