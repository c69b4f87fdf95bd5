"""Secrets travel beside a command, never in its text.

Whatever is in a command's text is in the command line of the shell that runs
it, and a command line is public: ``/proc/PID/cmdline`` is readable by every
local user for as long as the command runs — on the Custode node for a local
step, on the host for SSH (sshd starts ``$SHELL -c TEXT``) and WinRM (the
``powershell.exe`` command line, whose ``-EncodedCommand`` is only base64).

So a command that uses a secret names it instead: an environment variable
``CUSTODE_SECRET_<NAME>``, referenced in the syntax of the exact place the
secret stands in (unquoted, in double or single quotes, in a here-document),
so the command means what it meant when the value was pasted into it. The
transport hands the values over on the side:

* local: in the child's environment (``/proc/PID/environ`` is readable by the
  same user and root only);
* SSH: on the command's stdin, read by a short prelude before the command
  (``AcceptEnv`` on the host cannot be relied upon); the prelude names the
  variables, never a value;
* WinRM: on the command's stdin (WS-Management ``Send``) together with the
  script itself, read into ``$env:`` by the stager on the command line
  (``winrm.stdin_stager``), which names the variables, never a value.

After the prelude or stager has read them the command's stdin is at end of
file, as a command's stdin always is in Custode.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence

from custode.agent.transports.quoting import PS_QUOTES

ENV_PREFIX = "CUSTODE_SECRET_"
MISSING_INPUT_EXIT = 125
"""Exit code of a prelude (or the WinRM stager) that found its input missing on stdin (it was not sent)."""

_MARK = re.compile("\ue000(\\d+)\ue001")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_PS_DOUBLE_QUOTES = '"\u201c\u201d\u201e'
_POSIX_WORD_BREAK = " \t\r\n;&|()<>"
_PS_TOKEN_BREAK = " \t\r\n;(){}|&"


class SecretPlacementError(ValueError):
    """A secret stands where the shell cannot read it from the environment; the message says where and the fix."""


def mark(index: int) -> str:
    """A stand-in for secret number ``index`` in a command's text until it is referenced for its shell.

    Private-use characters: no shell syntax and no config text uses them.
    """
    return f"\ue000{index}\ue001"


def env_name(secret: str, taken: Collection[str]) -> str:
    """``CUSTODE_SECRET_<NAME>`` for a playbook's secret name, not one of ``taken`` (``db-pass`` → ``DB_PASS``)."""
    base = ENV_PREFIX + (re.sub(r"[^A-Z0-9]+", "_", secret.upper()).strip("_") or "VALUE")
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    return name


def check_secrets(secrets: Mapping[str, str]) -> None:
    """Refuse what no environment can carry: names are written into a prelude's text, values must hold no NUL."""
    for name, value in secrets.items():
        if not _ENV_NAME.match(name):
            raise ValueError(f"secret variable name {name!r} is not an environment variable name "
                             "(capital letters, digits and '_', not starting with a digit)")
        if "\0" in value:
            raise ValueError(f"the value of {name} holds a NUL character, which no environment variable can hold")


def reference(text: str, names: Sequence[str], shell: str) -> str:
    """``text`` with each ``mark(i)`` replaced by a reference to the variable ``names[i]``.

    The reference is written for the place the mark stands in, so the command
    reads exactly the value, one word where it stood alone, and nothing of it
    is parsed as shell syntax. Raises :class:`SecretPlacementError` where no
    reference can work (a quoted here-document).
    """
    if shell == "powershell":
        edits = list(_powershell_edits(text, names))
    else:
        edits = [(m.start(), m.end(), _posix_reference(names[int(m[1])], place)) for m, place in _posix_places(text)]
    return _apply(text, edits)


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    out, position = [], 0
    for start, end, replacement in sorted(edits):
        out += [text[position:start], replacement]
        position = end
    return "".join(out) + text[position:]


# -- POSIX sh --------------------------------------------------------------------------------------------------


def _posix_reference(name: str, place: str) -> str:
    if place in ("double", "heredoc"):
        return "${%s}" % name  # already inside an expanding string: braces keep the name from running on
    if place == "single":
        return "'\"${%s}\"'" % name  # close the quotes, expand quoted, reopen: the same word, the same value
    if place == "ansi":
        return "'\"${%s}\"$'" % name
    if place == "quoted-heredoc":
        raise SecretPlacementError(
            "a secret stands in a here-document with a quoted delimiter (<<'EOF'), where the shell expands "
            "nothing, so the command could not read it from the environment; write the delimiter unquoted "
            "(<<EOF) and escape any other $ or ` in that here-document")
    return '"${%s}"' % name  # code: one word, never split or globbed


def _posix_places(text: str) -> Iterator[tuple[re.Match[str], str]]:
    """Every mark of ``text`` with its place: code, double, single, ansi ($'…'), heredoc or quoted-heredoc.

    A small scanner of just the quoting rules of sh: quotes, backslashes,
    comments, ``$(…)`` and backquotes (code again, also inside double
    quotes), and here-documents, whose bodies start at the next line.
    """
    stack: list[list] = [["code", 0]]
    pending: list[tuple[str, bool, bool]] = []
    index = 0
    while index < len(text):
        found = _MARK.match(text, index)
        frame = stack[-1]
        if found:
            yield found, ("code" if frame[0] in ("subst", "backtick", "comment") else frame[0])
            index = found.end()
            continue
        char, following = text[index], text[index + 1:index + 2]
        kind = frame[0]
        if kind == "single":
            if char == "'":
                stack.pop()
        elif kind == "ansi":
            if char == "\\":
                index += 1
            elif char == "'":
                stack.pop()
        elif kind == "comment":
            if char == "\n":
                stack.pop()
                continue  # the code around it sees the newline: here-documents start there
        elif kind == "double":
            if char == "\\":
                index += 1
            elif char == '"':
                stack.pop()
            elif char == "$" and following == "(":
                stack.append(["subst", 1])
                index += 1
            elif char == "`":
                stack.append(["backtick", 0])
        else:  # code, subst, backtick
            if char == "\n" and pending:
                bodies, index = _posix_heredocs(text, index + 1, pending)
                yield from bodies
                pending = []
                continue
            if text.startswith("<<", index) and not text.startswith("<<<", index):
                index = _posix_heredoc_operator(text, index, pending)
                continue
            index = _posix_code_char(text, index, stack)
        index += 1


def _posix_code_char(text: str, index: int, stack: list[list]) -> int:
    """Act on one character of code (quotes, substitutions, comments); the index of the last one used."""
    char, following = text[index], text[index + 1:index + 2]
    frame = stack[-1]
    if char == "\\":
        return index + 1
    if char == "$" and following == "'":
        stack.append(["ansi", 0])
        return index + 1
    if char == "$" and following == "(":
        stack.append(["subst", 1])
        return index + 1
    if char == "'":
        stack.append(["single", 0])
    elif char == '"':
        stack.append(["double", 0])
    elif char == "`":
        if frame[0] == "backtick":
            stack.pop()
        else:
            stack.append(["backtick", 0])
    elif frame[0] == "subst" and char in "()":
        frame[1] += 1 if char == "(" else -1
        if frame[1] == 0:
            stack.pop()
    elif char == "#" and (index == 0 or text[index - 1] in _POSIX_WORD_BREAK):
        stack.append(["comment", 0])
    return index


def _posix_heredoc_operator(text: str, index: int, pending: list[tuple[str, bool, bool]]) -> int:
    """Read ``<<[-] WORD`` at ``index``: its body comes after the line ends. Returns the index after WORD."""
    position = index + 2
    strip_tabs = text.startswith("-", position)
    position += strip_tabs
    while position < len(text) and text[position] in " \t":
        position += 1
    delimiter: list[str] = []
    quoted = False
    while position < len(text) and text[position] not in _POSIX_WORD_BREAK:
        char = text[position]
        if char == "\\":
            quoted = True
            delimiter.append(text[position + 1:position + 2])
            position += 2
        elif char in "'\"":
            quoted = True
            end = text.find(char, position + 1)
            end = len(text) if end < 0 else end
            delimiter.append(text[position + 1:end])
            position = end + 1
        else:
            delimiter.append(char)
            position += 1
    if delimiter:
        pending.append(("".join(delimiter), quoted, strip_tabs))
    return position


def _posix_heredocs(text: str, start: int, pending: list[tuple[str, bool, bool]]
                    ) -> tuple[list[tuple[re.Match[str], str]], int]:
    """The marks in the bodies of the pending here-documents, and the index just after the last body."""
    marks: list[tuple[re.Match[str], str]] = []
    position = start
    for delimiter, quoted, strip_tabs in pending:
        while position < len(text):
            line_end = text.find("\n", position)
            line_end = len(text) if line_end < 0 else line_end
            line = text[position:line_end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                position = line_end + 1
                break
            marks += [(found, "quoted-heredoc" if quoted else "heredoc")
                      for found in _MARK.finditer(text, position, line_end)]
            position = line_end + 1
    return marks, min(position, len(text))


# -- PowerShell ------------------------------------------------------------------------------------------------


def _ps_reference(name: str) -> str:
    """``${env:NAME}``: one argument in code, expanded in double-quoted strings, the braces end the name."""
    return "${env:%s}" % name


def _powershell_edits(text: str, names: Sequence[str]) -> Iterator[tuple[int, int, str]]:
    """Replacements for the marks of a PowerShell script.

    In code and expandable strings a mark becomes ``${env:NAME}``; a
    single-quoted string (or here-string) holding one is rewritten as the
    double-quoted equivalent, with every other ``$``, backtick and double quote
    escaped, because nothing expands inside single quotes.
    """
    stack: list[list] = [["code", 0, 0]]
    index = 0
    while index < len(text):
        frame = stack[-1]
        kind = frame[0]
        found = _MARK.match(text, index)
        if found:
            if kind not in ("single", "here-single"):
                yield found.start(), found.end(), _ps_reference(names[int(found[1])])
            else:
                frame[2] += 1
            index = found.end()
            continue
        char, following = text[index], text[index + 1:index + 2]
        if kind in ("single", "here-single"):
            end = _ps_single_end(text, index, kind)
            if end is not None:
                stack.pop()
                if frame[2]:
                    yield frame[1], end, _ps_as_expandable(text[frame[1]:end], names, kind == "here-single")
                index = end
                continue
            if kind == "single" and char in PS_QUOTES and following and following in PS_QUOTES:
                index += 1  # a doubled quote is a literal quote
        elif kind in ("double", "here-double"):
            if char == "`":
                index += 1
            elif char == "$" and following == "(":
                stack.append(["sub", 1, 0])
                index += 1
            elif kind == "double" and char in _PS_DOUBLE_QUOTES:
                if following and following in _PS_DOUBLE_QUOTES:
                    index += 1
                else:
                    stack.pop()
            elif kind == "here-double" and char == "\n" and following and following in _PS_DOUBLE_QUOTES \
                    and text[index + 2:index + 3] == "@":
                stack.pop()
                index += 2
        elif kind == "comment":
            if char == "\n":
                stack.pop()
        elif kind == "block":
            if char == "#" and following == ">":
                stack.pop()
                index += 1
        else:
            index = _ps_code_char(text, index, stack)
        index += 1
    frame = stack[-1]
    if frame[0] in ("single", "here-single") and frame[2]:  # unterminated: rewritten as far as it goes
        yield frame[1], len(text), _ps_as_expandable(text[frame[1]:], names, frame[0] == "here-single")


def _ps_code_char(text: str, index: int, stack: list[list]) -> int:
    """Act on one character of PowerShell code; the index of the last character used."""
    char, following = text[index], text[index + 1:index + 2]
    frame = stack[-1]
    if char == "`":
        return index + 1
    if char == "@" and following and following in PS_QUOTES + _PS_DOUBLE_QUOTES:
        line_end = text.find("\n", index)
        if line_end >= 0 and not text[index + 2:line_end].strip():
            stack.append(["here-single" if following in PS_QUOTES else "here-double", index, 0])
            return line_end - 1  # the header's newline is the string's: an empty body closes right after it
    if char in PS_QUOTES:
        stack.append(["single", index, 0])
    elif char in _PS_DOUBLE_QUOTES:
        stack.append(["double", index, 0])
    elif char == "<" and following == "#":
        stack.append(["block", index, 0])
        return index + 1
    elif char == "#" and (index == 0 or text[index - 1] in _PS_TOKEN_BREAK):
        stack.append(["comment", index, 0])
    elif frame[0] == "sub" and char in "()":
        frame[1] += 1 if char == "(" else -1
        if frame[1] == 0:
            stack.pop()
    return index


def _ps_single_end(text: str, index: int, kind: str) -> int | None:
    """The index just after the string that closes at ``index``, or None when it does not close there."""
    char, following = text[index], text[index + 1:index + 2]
    if kind == "single":
        if char in PS_QUOTES and not (following and following in PS_QUOTES):
            return index + 1
        return None
    if char == "\n" and following and following in PS_QUOTES and text[index + 2:index + 3] == "@":
        return index + 3
    return None


def _ps_as_expandable(token: str, names: Sequence[str], here: bool) -> str:
    """A single-quoted string (``'…'`` or ``@'…'@``) rewritten as the double-quoted one with the same text."""
    if here:
        header_end = token.index("\n")
        body_end = len(token) - 3 if token[-1:] == "@" and token[-3:-2] == "\n" else len(token)
        header, body = token[2:header_end], token[header_end + 1:body_end]
        closing = '\n"@' if body_end < len(token) else ""
        return '@"' + header + "\n" + _ps_expandable_body(body, names, undouble=False) + closing
    closed = len(token) > 1 and token[-1] in PS_QUOTES
    body = token[1:-1] if closed else token[1:]
    return '"' + _ps_expandable_body(body, names, undouble=True) + ('"' if closed else "")


def _ps_expandable_body(body: str, names: Sequence[str], *, undouble: bool) -> str:
    out: list[str] = []
    index = 0
    while index < len(body):
        found = _MARK.match(body, index)
        if found:
            out.append(_ps_reference(names[int(found[1])]))
            index = found.end()
            continue
        char = body[index]
        if undouble and char in PS_QUOTES and body[index + 1:index + 2] in tuple(PS_QUOTES):
            index += 1  # '' in a single-quoted string is one literal quote
        out.append("`" + char if char in "`$" + _PS_DOUBLE_QUOTES else char)
        index += 1
    return "".join(out)


# -- handing the values over on stdin --------------------------------------------------------------------------

_MISSING = "custode: the secrets of this command did not arrive on its standard input"

_POSIX_READER = (
    "_custode_nl=$(printf '\\nx'); _custode_nl=${_custode_nl%x}; "
    "_custode_read() { IFS= read -r _custode_n || return 1; case $_custode_n in ''|*[!0-9]*) return 1;; esac; "
    "_custode_v=; _custode_sep=; while [ \"$_custode_n\" -gt 0 ]; do IFS= read -r _custode_l || return 1; "
    "_custode_v=$_custode_v$_custode_sep$_custode_l; _custode_sep=$_custode_nl; "
    "_custode_n=$((_custode_n - 1)); done; }; "
)


def posix_prelude(names: Sequence[str]) -> str:
    """One line of sh that reads ``names`` from stdin (as :func:`posix_input` writes them) and exports them.

    ``read`` takes one byte at a time from a pipe, so nothing after the
    secrets is consumed: the command then finds its stdin at end of file.
    """
    reads = "".join(f"_custode_read || {{ echo '{_MISSING}' >&2; exit {MISSING_INPUT_EXIT}; }}; "
                    f"{name}=$_custode_v; export {name}; " for name in names)
    return (_POSIX_READER + reads + "unset _custode_nl _custode_n _custode_v _custode_sep _custode_l; "
            "unset -f _custode_read\n")


def posix_input(values: Sequence[str]) -> bytes:
    """Each value as its number of lines and the lines: any text but NUL (which no shell variable holds)."""
    return b"".join(f"{value.count(chr(10)) + 1}\n{value}\n".encode("utf-8", "surrogateescape") for value in values)


def split(secrets: Mapping[str, str] | None) -> tuple[list[str], list[str]]:
    """Names and values in one fixed order, for a prelude and its input; checked (:func:`check_secrets`)."""
    given = dict(secrets or {})
    check_secrets(given)
    names = sorted(given)
    return names, [given[name] for name in names]

