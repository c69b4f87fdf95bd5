"""Shell completion and the man page come from the parser: a real bash completes, man renders."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from custode.agent.cli import _parser
from custode.agent.cli_docs import bash_completion, command_tree, man_page, walk


def _complete(script: str, *words: str) -> list[str]:
    """What bash offers after ``words`` (the last one being completed), with the generated script sourced."""
    quoted = " ".join(f"'{w}'" for w in ("custode", *words))
    program = (f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words)}; _custode; "
               "printf '%s\\n' \"${COMPREPLY[@]}\"")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          timeout=30, check=True)
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def script() -> str:
    return bash_completion(_parser())


@pytest.mark.parametrize(("words", "offered"), [
    (("aud",), ["audit"]),
    (("audit", "ve"), ["verify"]),
    (("once", "--format", ""), ["table", "json", "prometheus"]),
    (("run", "--web"), ["--web.config.file"]),
    (("backups", "st"), ["status"]),
    (("web", ""), ["hash-password"]),
    (("completion", ""), ["bash", "zsh"]),
])
def test_bash_completes_commands_subcommands_options_and_choices(script, words, offered) -> None:
    assert sorted(_complete(script, *words)) == sorted(offered)


def test_every_command_of_the_parser_is_in_the_completion_and_the_man_page(script) -> None:
    page = man_page(_parser())
    leaves = [node for node in walk(command_tree(_parser())) if node.words and not node.children]
    assert len(leaves) > 20
    for node in leaves:
        assert "|" + "_".join(node.words) + "|" in script
        assert f".SS {' '.join(node.words)}".replace("-", "\\-") in page


def test_the_man_page_renders_without_warnings(tmp_path) -> None:
    if shutil.which("man") is None and shutil.which("groff") is None:
        pytest.skip("neither man nor groff is installed")
    page = tmp_path / "custode.1"
    done = subprocess.run([sys.executable, "-m", "custode.agent", "man"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    page.write_text(done.stdout)
    tool = ["man", "-l", str(page)] if shutil.which("man") else ["groff", "-man", "-Tutf8", str(page)]
    rendered = subprocess.run(tool, capture_output=True, text=True, timeout=60,
                              env={"MANWIDTH": "100", "PATH": "/usr/bin:/bin"})
    assert rendered.returncode == 0, rendered.stderr
    assert "web hash-password" in rendered.stdout and "--web.config.file" in rendered.stdout
    assert "warning" not in rendered.stderr.lower()
