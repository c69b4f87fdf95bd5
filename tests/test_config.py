"""Config loading: embedded default, and every error says file, line, key and fix."""

from __future__ import annotations

import pytest

from custode.agent.cli import main
from custode.agent.config import parse_listen
from custode.agent.config_loader import ConfigError, load, load_text
from custode.agent.durations import format_duration, parse_duration

BROKEN = [
    # (yaml text, the exact message expected)
    ("agent:\n  tenent: crema\n",
     "c.yaml:2: agent.tenent: unknown key 'tenent'; did you mean 'tenant'?"),
    ("colectors:\n  cpu: {}\n",
     "c.yaml:1: colectors: unknown key 'colectors'; did you mean 'collectors'?"),
    ("agent:\n  zzz: 1\n",
     "c.yaml:2: agent.zzz: unknown key 'zzz'; valid keys here: check_interval, data_dir, hostname, listen, tenant, "
     "web_config_file, windows_probe"),
    ("collectors:\n  filesytem:\n    interval: 30s\n",
     "c.yaml:2: collectors.filesytem: unknown collector 'filesytem'; did you mean 'filesystem'?"),
    ("collectors:\n  cpu:\n    interval: fast\n",
     "c.yaml:3: collectors.cpu.interval: expected a duration such as 30s, 5m, 1h30m or 2d; got 'fast'"),
    ("collectors:\n  cpu:\n    interval: 10s\n    timeout: 1m\n",
     "c.yaml:4: collectors.cpu.timeout: timeout (60s) must not exceed interval (10s): "
     "lower the timeout or raise the interval"),
    ("collectors:\n  cpu:\n    enabled: maybe\n",
     "c.yaml:3: collectors.cpu.enabled: expected true or false; got 'maybe'"),
    ("collectors:\n  filesystem:\n    mount_points_exclud: '^/boot'\n",
     "c.yaml:3: collectors.filesystem.mount_points_exclud: unknown key 'mount_points_exclud'; "
     "did you mean 'mount_points_exclude'?"),
    ("agent:\n  listen: localhost\n",
     "c.yaml:2: agent.listen: expected HOST:PORT, e.g. 0.0.0.0:10191, 127.0.0.1:10191 or [::1]:10191; "
     "got 'localhost'"),
    ("agent:\n  listen: '127.0.0.1:70000'\n",
     "c.yaml:2: agent.listen: port 70000 is out of range; use 1-65535"),
    ("logging:\n  level: verbose\n",
     "c.yaml:2: logging.level: expected one of 'debug', 'info', 'warning' or 'error'; got 'verbose'"),
    ("checks:\n  filesystem:\n    warning_avail_percent: 4\n",
     "c.yaml:2: checks.filesystem: critical_avail_percent (5) must be lower than warning_avail_percent (4): "
     "less free space is worse"),
    ("checks:\n  memory:\n    for: soon\n",
     "c.yaml:3: checks.memory.for: expected a duration such as 30s, 5m, 1h30m or 2d; got 'soon'"),
    ("checks:\n  filesystem:\n    warning_avail_percent: 150\n",
     "c.yaml:3: checks.filesystem.warning_avail_percent: expected a value less than 100; got 150"),
    ("checks:\n  services:\n    ignore: '(apt-daily'\n",
     "c.yaml:3: checks.services.ignore: invalid regular expression '(apt-daily': "
     "missing ), unterminated subpattern at position 0"),
    ("tenants:\n  crema:\n    nome: Comune di Crema\n",
     "c.yaml:2: tenants.crema.name: required key 'name' is missing; add it"),
    ("tenants:\n  Crema!:\n    name: Crema\n",
     "c.yaml:2: tenants.Crema!: tenant id 'Crema!' must be lower-case letters, digits, '-' or '_' "
     "(e.g. 'crema', 'comune-di-capannori')"),
    ("agent:\n  tenant: crem\ntenants:\n  crema:\n    name: Comune di Crema\n",
     "c.yaml:2: agent.tenant: tenant 'crem' is not defined under tenants; did you mean 'crema'?"),
    ("tenants:\n  crema:\n    name: Crema\n  cremona:\n    name: Cremona\n",
     "c.yaml:1: agent.tenant: not set: say which tenant this host belongs to, one of crema, cremona"),
    ("agent:\n  tenant: crema\n",
     "c.yaml:2: agent.tenant: tenant 'crema' is not defined; add it under tenants: with a name"),
    ("agent:\n  listen: a\n  listen: b\n",
     "c.yaml:3: agent.listen: duplicate key 'listen': it is already set on line 2; keep only one"),
    ("agent:\n  listen: [1, 2\n",
     "c.yaml:3: YAML syntax error: expected ',' or ']', but got '<stream end>' (column 1); "
     "check the indentation and quote values that contain ':' or '#'"),
    ("- just\n- a list\n",
     "c.yaml:1: the file must be a mapping of sections (agent:, tenants:, collectors:, checks: ...)"),
    ("agent: 5\n",
     "c.yaml:1: agent: expected a section of keys (a YAML mapping); got 5"),
]


@pytest.mark.parametrize("text,expected", BROKEN, ids=[b[1].split(":")[2].strip() for b in BROKEN])
def test_broken_config_gives_exact_message(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    assert str(caught.value).splitlines()[0] == expected


def test_all_problems_reported_at_once_in_line_order() -> None:
    text = "agent:\n  tenent: x\ncollectors:\n  cpu:\n    interval: never\n"
    with pytest.raises(ConfigError) as caught:
        load_text(text, "c.yaml")
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("c.yaml:2: agent.tenent:")
    assert lines[1].startswith("c.yaml:5: collectors.cpu.interval:")


def test_embedded_default_enables_local_collectors() -> None:
    loaded = load_text("")
    names = {p.name for p in loaded.enabled_collectors}
    assert {"cpu", "memory", "filesystem", "diskstats", "netdev", "loadavg", "boottime"} <= names
    assert loaded.model.agent.listen == "0.0.0.0:10191"
    assert loaded.model.tenant_ids() == ["default"]
    for plan in loaded.collectors:
        assert 0 < plan.timeout <= plan.interval


def test_single_tenant_is_the_hosts_tenant() -> None:
    assert load_text("tenants:\n  crema:\n    name: Comune di Crema\n").model.agent.tenant == "crema"


def test_collector_shorthand_and_overrides() -> None:
    loaded = load_text("collectors:\n  netdev: false\n  cpu:\n    interval: 1m\n    timeout: 5s\n")
    plans = {p.name: p for p in loaded.collectors}
    assert plans["netdev"].enabled is False
    assert (plans["cpu"].interval, plans["cpu"].timeout) == (60.0, 5.0)


def test_collector_specific_settings_reach_the_collector() -> None:
    loaded = load_text("collectors:\n  filesystem:\n    mount_points_exclude: '^/boot'\n")
    plan = next(p for p in loaded.collectors if p.name == "filesystem")
    assert plan.build().settings.mount_points_exclude == "^/boot"


def test_example_configs_are_valid() -> None:
    from pathlib import Path

    examples = sorted(Path(__file__).parent.parent.glob("config/**/*.yaml"))
    assert examples, "config/ must ship example configs"
    for path in examples:
        load(path)


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="file not found; check the path"):
        load(tmp_path / "nope.yaml")


@pytest.mark.parametrize("text,seconds", [("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172800),
                                          (45, 45), ("500ms", 0.5), ("1.5h", 5400)])
def test_durations(text, seconds) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "0s", "-5", "5 parsecs", True, None, "1x"])
def test_bad_durations(bad) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for seconds in (0.25, 1, 59, 90, 3600, 5400, 90061):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=0.5)


def test_listen_forms() -> None:
    assert parse_listen("127.0.0.1:10191") == ("127.0.0.1", 10191)
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    assert parse_listen(":9") == ("0.0.0.0", 9)


def test_config_check_command(write_config, capsys) -> None:
    good = write_config("agent:\n  tenant: crema\ntenants:\n  crema:\n    name: Comune di Crema\n")
    assert main(["config", "check", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = write_config("agent:\n  tenent: crema\n", "bad.yaml")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: agent.tenent: unknown key 'tenent'; did you mean 'tenant'?" in err
