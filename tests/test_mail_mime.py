"""The fast MIME reader gives the standard library's answer, or none.

``custode.agent.mail.mime.read_simple`` replaces ``email.message_from_bytes`` for
well-formed mail. Its rule is "same answer or NotSimple": every message is read
both ways here (the slow way by making the fast reader decline) and the
normalised messages must be equal, over every fixture and real-world report
and over generated MIME with odd but legal shapes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import custode.agent.mail.message as message_module
from custode.agent.mail.message import MailMessage, parse_message
from custode.agent.mail.mime import NotSimple, read_simple

MAIL = Path(__file__).resolve().parent / "data" / "mail"
MESSAGES = sorted(MAIL.rglob("*.eml"))


def _comparable(message: MailMessage | None, inner: bool = False) -> dict | None:
    if message is None:
        return None
    fields = {f.name: getattr(message, f.name) for f in dataclasses.fields(message) if f.name != "inner"}
    fields["inner"] = _comparable(message.inner, inner=True)
    fields["tables"] = message.tables
    if inner:
        # The standard library hands on a forwarded message re-generated (LF line ends, refolded headers);
        # the fast reader hands on its bytes as they came. What parsers see must not differ.
        for name in ("size", "content_hash"):
            fields.pop(name)
        fields["html"] = fields["html"].replace("\r\n", "\n")
    return fields


def _standard(raw: bytes, monkeypatch: pytest.MonkeyPatch) -> MailMessage:
    def decline(_raw: bytes):
        raise NotSimple("forced")

    with monkeypatch.context() as patch:
        patch.setattr(message_module, "read_simple", decline)
        return parse_message(raw)


def test_the_fast_reader_takes_nearly_every_real_message() -> None:
    declined = []
    for path in MESSAGES:
        try:
            read_simple(path.read_bytes())
        except NotSimple as exc:
            declined.append(f"{path.name}: {exc}")
    assert len(MESSAGES) > 200
    assert len(declined) <= len(MESSAGES) // 20, declined


@pytest.mark.parametrize("path", MESSAGES, ids=lambda path: str(path.relative_to(MAIL)))
def test_both_readers_see_the_same_message(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = path.read_bytes()
    assert _comparable(parse_message(raw)) == _comparable(_standard(raw, monkeypatch))


@pytest.mark.parametrize("raw, why", [
    (b"From someone@example.com Mon Dec  7 02:00:00 2026\nSubject: x\n\nbody\n", "mbox From_ line"),
    (b"Subject: x\rTo: y\r\rbody", "bare CR"),
    (b"Subject: x\nnot a header line\n\nbody\n", "no header"),
    (b"Content-Type: multipart/mixed\n\n--b\n\nx\n--b--\n", "without a boundary"),
    (b'Content-Type: multipart/mixed; boundary="b"\n\n--b\n\nx\n', "no closing boundary"),
    (b"Content-Type: text/plain; name*=utf-8''r%C3%A9sum%C3%A9.txt\n\nx\n", "RFC 2231"),
    (b"Content-Transfer-Encoding: base64\n\nnot base64!\n", "base64"),
    (b"Content-Type: message/partial; id=1\n\nx\n", "message/partial"),
])
def test_what_the_fast_reader_declines(raw: bytes, why: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotSimple):
        read_simple(raw)
    assert _comparable(parse_message(raw)) == _comparable(_standard(raw, monkeypatch))  # and still read


_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=40)
_line_end = st.sampled_from([b"\n", b"\r\n"])


@st.composite
def _mime(draw) -> bytes:  # noqa: ANN001
    """Messages of one to three parts, with folded headers, parameters, encodings and charsets."""
    end = draw(_line_end)
    boundary = draw(st.sampled_from(["b1", "----=_Part_0_1.2", "=_x y_=", "<abc>"]))
    def part() -> bytes:
        ctype = draw(st.sampled_from(["text/plain", "text/html", "application/octet-stream", "TEXT/Plain"]))
        charset = draw(st.sampled_from(["utf-8", "\"iso-8859-1\"", "windows-1252", "UTF-8", "bogus"]))
        encoding = draw(st.sampled_from(["", "7bit", "8bit", "quoted-printable", "base64", "QUOTED-PRINTABLE"]))
        body = draw(_text).encode("utf-8")
        if encoding.lower() == "base64":
            import base64
            body = base64.encodebytes(body)
        elif encoding.lower() == "quoted-printable":
            import quopri
            body = quopri.encodestring(body)
        name = draw(st.sampled_from(["", "; name=\"report.log\"", "; name=report.htm"]))
        headers = f"Content-Type: {ctype}; charset={charset}{name}".encode()
        if encoding:
            headers += end + f"Content-Transfer-Encoding: {encoding}".encode()
        if draw(st.booleans()):
            headers += end + b"Content-Disposition: attachment;" + end + b'\tfilename="log.txt"'
        return headers + end + end + body.replace(b"\n", end)
    subject = draw(_text)
    head = b"From: Veeam <veeam@example.com>" + end + b"Subject: " + subject.encode("utf-8") + end
    if draw(st.booleans()):
        head += b"X-Folded: one" + end + b"  two" + end
    parts = [part() for _ in range(draw(st.integers(1, 3)))]
    if len(parts) == 1 and draw(st.booleans()):
        return head + parts[0]
    quoted = boundary if draw(st.booleans()) and " " not in boundary else f'"{boundary}"'
    body = b"".join(b"--" + boundary.encode() + end + p + end for p in parts) + b"--" + boundary.encode() + b"--" + end
    return head + b"MIME-Version: 1.0" + end + b"Content-Type: multipart/alternative; boundary=" + quoted.encode() \
        + end + end + b"preamble" + end + body + b"epilogue" + end


@settings(max_examples=300, deadline=None)
@given(raw=_mime())
def test_fuzz_both_readers_agree_on_generated_mime(raw: bytes) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert _comparable(parse_message(raw)) == _comparable(_standard(raw, monkeypatch))
