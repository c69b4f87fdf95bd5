"""A hostile or damaged config file gets a clear Problem (file, line, fix), never a traceback or a dead host.

The alias bomb and the deep nesting run through the real command line in a
child process held to 512 MiB of address space: before the bounds, the first
took ``custode config check`` to MemoryError after 1.8 GB and the second to
RecursionError. The rest go through the loader directly.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from custode.agent.config_loader import MAX_DEPTH, ConfigError, load, load_text

MEMORY_LIMIT = 512 * 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def billion_laughs() -> str:
    """Nine levels of nine aliases each: 9**9 (387 million) values from about 350 bytes."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def config_check(path: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """``python -m custode.agent config check --config PATH`` under the memory limit; (result, seconds)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "CUSTODE_DATA_DIR": str(tmp_path / "data")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "custode.agent", "config", "check", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, preexec_fn=_limit_memory)
    return done, time.monotonic() - started


def test_the_billion_laughs_alias_bomb_is_refused_quickly_in_little_memory(tmp_path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 600
    done, seconds = config_check(path, tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr
    assert f"{path}:5: e: aliases (*name) and merge keys (<<) expand to more than 10,000 values" in done.stderr
    assert "alias bomb" in done.stderr
    assert seconds < 10, f"took {seconds:.1f} s"


@pytest.mark.parametrize("text", [
    "agent: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "agent: " + "{a: " * 5_000 + "1" + "}" * 5_000 + "\n",
    "".join(" " * depth + f"k{depth}:\n" for depth in range(300)),
], ids=["flow-lists", "flow-mappings", "block-mappings"])
def test_deep_nesting_is_refused_before_python_recursion_runs_out(tmp_path, text) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    done, seconds = config_check(path, tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
    assert f"nested more than {MAX_DEPTH} levels deep" in done.stderr
    assert f"{path}:" in done.stderr
    assert seconds < 10, f"took {seconds:.1f} s"


def test_nesting_within_the_bound_still_loads() -> None:
    text = "tenants:\n  crema:\n    name: Crema\n    calendar: {closures: []}\nagent: {tenant: crema}\n"
    assert load_text(text).model.tenants["crema"].name == "Crema"
    nested = "agent:\n  tenant: default\nhosts: {}\n" + "x: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    with pytest.raises(ConfigError) as caught:  # deep but within the bound: refused by the schema, not the loader
        load_text(nested, "c.yaml")
    assert "unknown key 'x'" in str(caught.value)


def test_deep_nesting_reached_through_aliases_is_refused_too() -> None:
    chain = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    with pytest.raises(ConfigError) as caught:
        load_text("\n".join(chain) + "\n", "c.yaml")
    assert f"nested more than {MAX_DEPTH} levels deep" in str(caught.value)


@pytest.mark.parametrize("text, line, path", [
    ("agent:\n  tenant: default\nhosts: &a [*a]\n", 3, "hosts[0]"),
    ("agent:\n  labels: &l {x: *l}\n", 2, "agent.labels.x"),
])
def test_a_recursive_alias_is_refused_with_its_line(text, line, path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (line, path)
    assert "refers to the section it is inside of" in problem.message


def test_a_merge_key_that_merges_its_own_section_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("hosts: &h\n  <<: *h\n", "c.yaml")
    assert "merges a section into itself" in str(caught.value)


def test_a_nul_byte_is_named_with_its_line_and_column(tmp_path) -> None:
    path = tmp_path / "custode.yaml"
    path.write_bytes(b"agent:\n  tenant: default\n  hostname: web\x0001\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    [problem] = caught.value.problems
    assert (problem.source, problem.line) == (str(path), 3)
    assert "NUL byte at line 3, column 16" in problem.message and "save it as UTF-8" in problem.message


def test_a_utf16_file_is_recognised_as_not_text(tmp_path) -> None:
    path = tmp_path / "custode.yaml"
    path.write_bytes("agent:\n  tenant: default\n".encode("utf-16-le"))
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "NUL byte at line 1, column 2" in str(caught.value) and "UTF-16" in str(caught.value)


def test_another_control_character_is_named_with_its_line_and_column() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("agent:\n  hostname: we\x07b\n", "c.yaml")
    [problem] = caught.value.problems
    assert problem.line == 2 and "control character U+0007 at line 2, column 15" in problem.message


@pytest.mark.parametrize("digits", [101, 5_000])
def test_a_huge_integer_is_refused_with_its_line(digits) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("agent:\n  tenant: default\nchecks:\n  disk_space:\n    warning: " + "9" * digits + "\n", "c.yaml")
    [problem] = caught.value.problems
    assert (problem.line, problem.path) == (5, "checks.disk_space.warning")
    assert f"a number of {digits:,} digits" in problem.message and "quote it" in problem.message


def test_an_impossible_date_is_a_problem_not_a_traceback() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("agent:\n  hostname: 2026-13-45\n", "c.yaml")
    [problem] = caught.value.problems
    assert problem.line == 2 and "cannot read '2026-13-45'" in problem.message and "quote it" in problem.message


HOSTS = """\
agent: {tenant: crema}
tenants: {crema: {name: Crema}}
hosts:
  web1: &linux
    address: web1.lan
    tenant: crema
    ssh:
      user: custode
      port: PORT
  web2:
    <<: *linux
    address: web2.lan
    poll_interval: INTERVAL
  web3: *linux
  web4:
    <<: [{address: web4.lan, labels: {role: db}}, *linux]
"""


def test_merge_keys_and_reused_anchors_still_work() -> None:
    hosts = load_text(HOSTS.replace("PORT", "2222").replace("INTERVAL", "1m")).model.hosts
    assert (hosts["web1"].address, hosts["web2"].address, hosts["web3"].address) == ("web1.lan", "web2.lan",
                                                                                    "web1.lan")
    assert hosts["web2"].ssh is not None and hosts["web2"].ssh.port == 2222 and hosts["web2"].tenant == "crema"
    assert hosts["web2"].poll_interval == 60
    assert hosts["web4"].address == "web4.lan", "an earlier mapping of the merge list wins"
    assert hosts["web4"].labels == {"role": "db"} and hosts["web4"].ssh.user == "custode"


def test_an_error_in_an_anchor_is_reported_at_its_line_for_every_use() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(HOSTS.replace("PORT", "99999").replace("INTERVAL", "1m"), "c.yaml")
    found = {(p.path, p.line) for p in caught.value.problems}
    assert {("hosts.web1.ssh.port", 9), ("hosts.web2.ssh.port", 9), ("hosts.web3.ssh.port", 9),
            ("hosts.web4.ssh.port", 9)} <= found


def test_an_error_in_a_key_beside_a_merge_is_reported_at_its_own_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(HOSTS.replace("PORT", "22").replace("INTERVAL", "soon"), "c.yaml")
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("hosts.web2.poll_interval", 13)


def test_a_key_written_twice_is_still_refused_next_to_a_merge() -> None:
    with pytest.raises(ConfigError) as caught:
        load_text("hosts:\n  a: &a {address: x}\n  b:\n    <<: *a\n    address: y\n    address: z\n", "c.yaml")
    assert "c.yaml:6: hosts.b.address: duplicate key 'address': it is already set on line 5" in str(caught.value)


def test_a_large_config_that_reuses_anchors_a_lot_is_within_the_budget() -> None:
    hosts = "".join(f"  h{i}: {{<<: *base, address: h{i}.lan}}\n" for i in range(2_000))
    text = ("agent: {tenant: crema}\ntenants: {crema: {name: Crema}}\n"
            "hosts:\n  base: &base {tenant: crema, labels: {a: '1', b: '2', c: '3'}, ssh: {user: u, port: 22}}\n"
            + hosts)
    assert len(load_text(text).model.hosts) == 2_001
