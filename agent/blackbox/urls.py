"""A probe target written as one URL: ``https://…``, ``http://…``, ``tcp://host:port``, ``icmp://host``,
``dns://server[:port]/name?type=A``.

The config (``probes.targets.X.url``) and ``custode probe URL`` read targets the same way, through
:func:`target_from_url`, so a URL that works on the command line works in the config. Parsing only: no name is
resolved here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Kind = Literal["http", "tcp", "icmp", "dns"]
KINDS: tuple[Kind, ...] = ("http", "tcp", "icmp", "dns")
URL_HINT = ("a URL such as https://www.comune.example.it/, http://host:8080/path, tcp://host:port, icmp://host or "
            "dns://server/name?type=A")
DEFAULT_PORTS = {"http": 80, "https": 443, "dns": 53}


@dataclass(frozen=True)
class ParsedUrl:
    """What a target URL says: the prober, the host to reach (for DNS: the server asked), its port."""

    kind: Kind
    url: str
    """The URL as written (``http``/``https``), or in its normal form: the ``target`` label of the metrics."""
    address: str
    """Host name or IP address, without the brackets of an IPv6 literal."""
    port: int | None
    """None for ICMP."""
    tls: bool = False
    """https (an HTTP probe over TLS)."""
    dns_name: str | None = None
    dns_type: str | None = None


def _host(value: str | None, url: str) -> str:
    if not value:
        raise ValueError(f"{url!r}: no host; expected {URL_HINT}")
    return value


def _port(port: int | None, url: str, default: int | None) -> int | None:
    if port is None:
        return default
    if not 0 < port < 65536:
        raise ValueError(f"{url!r}: port {port} is out of range 1-65535")
    return port


def bracketed(address: str) -> str:
    """``::1`` as ``[::1]`` (in a URL or HOST:PORT), anything else as it is."""
    try:
        return f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
    except ValueError:
        return address


def target_from_url(url: str) -> ParsedUrl:
    """Read a target URL; ValueError says what is wrong and what is expected."""
    text = url.strip()
    if "://" not in text:
        raise ValueError(f"{url!r} is not a URL; expected {URL_HINT}")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number in 1-65535") from None
    if scheme in ("http", "https"):
        host = _host(parts.hostname, url)
        return ParsedUrl("http", text, host, _port(port, url, DEFAULT_PORTS[scheme]), tls=scheme == "https")
    if scheme == "tcp":
        host = _host(parts.hostname, url)
        if port is None:
            raise ValueError(f"{url!r}: a TCP target needs its port, e.g. tcp://{bracketed(host)}:443")
        if parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: a TCP target is tcp://host:port, with no path or query")
        return ParsedUrl("tcp", f"tcp://{bracketed(host)}:{port}", host, _port(port, url, None))
    if scheme == "icmp":
        host = _host(parts.hostname, url)
        if port is not None or parts.path not in ("", "/") or parts.query:
            raise ValueError(f"{url!r}: an ICMP target is icmp://host, with no port, path or query (for a TCP "
                             "fallback, set icmp.fallback_port)")
        return ParsedUrl("icmp", f"icmp://{bracketed(host)}", host, None)
    if scheme == "dns":
        return _dns(url, parts.hostname, port, parts.path, parts.query)
    raise ValueError(f"{url!r}: unknown scheme {parts.scheme!r}; expected {URL_HINT}")


def _dns(url: str, hostname: str | None, port: int | None, path: str, query: str) -> ParsedUrl:
    server = _host(hostname, url)
    name = unquote(path.lstrip("/"))
    if not name or "/" in name:
        raise ValueError(f"{url!r}: a DNS target names the server and the name to ask for, e.g. "
                         "dns://ns1.example.it/www.comune.example.it?type=A")
    options = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(options) - {"type"})
    if unknown:
        raise ValueError(f"{url!r}: unknown query option {unknown[0]!r}; only type= (A, AAAA, MX, ...)")
    rdtype = (options.get("type") or ["A"])[-1].upper() or "A"
    number = _port(port, url, DEFAULT_PORTS["dns"])
    where = bracketed(server) + ("" if number == 53 else f":{number}")
    return ParsedUrl("dns", f"dns://{where}/{name}?type={rdtype}", server, number, dns_name=name, dns_type=rdtype)
