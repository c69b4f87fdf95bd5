"""The TCP prober: a connect, and with ``tls: true`` a verified TLS handshake whose certificate is judged too."""

from __future__ import annotations

import ssl

from custode.agent.blackbox.base import (
    Deadline,
    ProbeFailed,
    ProbeResult,
    connect,
    handshake,
    hostport,
    peek_certificate,
    resolve,
    tls_context,
    tls_facts,
)
from custode.agent.blackbox.config import TcpOptions
from custode.agent.blackbox.target import Target


def probe(target: Target, result: ProbeResult, deadline: Deadline) -> None:
    options = target.options_as(TcpOptions)
    port = target.port
    resolved = resolve(target.where.address, target.ip_protocol, target.ip_fallback, deadline)
    result.lookup_seconds = resolved.seconds
    result.ip_protocol, result.ip_address = resolved.protocol, resolved.address
    sock = connect(resolved, port, deadline)
    try:
        if not options.tls:
            return
        name = options.server_name or target.where.address
        where = hostport(resolved.address, port)
        try:
            sock = handshake(sock, tls_context(options.verify, options.ca_file), name, deadline, where)
        except ProbeFailed as failed:
            if str(failed).startswith("certificate verify failed"):
                peek_certificate(resolved, port, name, deadline, result)
            raise
        assert isinstance(sock, ssl.SSLSocket)
        tls_facts(result, sock)
    finally:
        sock.close()
