"""The DNS prober: one query to one server (dnspython), judged by its rcode and, optionally, its answer records.

blackbox_exporter's ``dns`` module: ``probe_dns_lookup_time_seconds`` is
the lookup of the server's own name (like every prober's target), then
``probe_dns_duration_seconds{phase}`` (resolve, connect, request),
``probe_dns_answer_rrs`` / ``_authority_rrs`` / ``_additional_rrs``,
``probe_dns_query_succeeded`` and ``probe_dns_serial`` for an SOA answer.
blackbox_exporter has no series for the rcode; here it is
``custode_probe_dns_rcode{rcode}`` (the code's number, its name in the
label). A UDP answer with the TC bit is asked again over TCP within the
same deadline.
"""

from __future__ import annotations

import re
import socket
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from custode.agent.blackbox.base import (
    Deadline,
    ProbeFailed,
    ProbeResult,
    Resolved,
    connect,
    hostport,
    network_error,
    resolve,
    seconds,
)
from custode.agent.blackbox.config import DnsOptions
from custode.agent.blackbox.target import Target


def probe(target: Target, result: ProbeResult, deadline: Deadline) -> None:
    options = target.options_as(DnsOptions)
    name, rdtype = options.name or ".", options.type or "A"
    port = target.port
    phases = {"resolve": 0.0, "connect": 0.0, "request": 0.0}
    answer: dns.message.Message | None = None
    try:
        resolved = resolve(target.where.address, target.ip_protocol, target.ip_fallback, deadline)
        phases["resolve"] = result.lookup_seconds = resolved.seconds
        result.ip_protocol, result.ip_address = resolved.protocol, resolved.address
        where = hostport(resolved.address, port)
        query = dns.message.make_query(name, dns.rdatatype.from_text(rdtype))
        if not options.recursion:
            query.flags &= ~dns.flags.RD
        answer = _ask(query, resolved, port, options.transport, deadline, phases, where)
        _judge(answer, options, name, rdtype, where)
    finally:
        _series(result, phases, answer)


def _ask(query: dns.message.Message, resolved: Resolved, port: int, transport: str, deadline: Deadline,
         phases: dict[str, float], where: str) -> dns.message.Message:
    if transport == "udp":
        started = time.monotonic()
        try:
            answer = dns.query.udp(query, resolved.address, timeout=deadline.remaining(f"answer from {where}"),
                                   port=port, ignore_unexpected=True)
        except dns.exception.Timeout:
            raise ProbeFailed(f"no answer from {where} within {seconds(deadline.timeout)}") from None
        except OSError as exc:
            raise ProbeFailed(network_error(exc, where)) from None
        except dns.exception.DNSException as exc:
            raise ProbeFailed(f"not a DNS answer from {where}: {exc}") from None
        finally:
            phases["request"] += time.monotonic() - started
        if not answer.flags & dns.flags.TC:
            return answer
    started = time.monotonic()
    sock = connect(resolved, port, deadline)
    phases["connect"] += time.monotonic() - started
    started = time.monotonic()
    try:
        return dns.query.tcp(query, resolved.address, timeout=deadline.remaining(f"answer from {where}"), port=port,
                             sock=sock)
    except (dns.exception.Timeout, socket.timeout, TimeoutError):
        raise ProbeFailed(f"no answer from {where} within {seconds(deadline.timeout)}") from None
    except EOFError:
        raise ProbeFailed(f"{where} closed the connection without answering") from None
    except OSError as exc:
        raise ProbeFailed(network_error(exc, where)) from None
    except dns.exception.DNSException as exc:
        raise ProbeFailed(f"not a DNS answer from {where}: {exc}") from None
    finally:
        phases["request"] += time.monotonic() - started
        sock.close()


def records(answer: dns.message.Message) -> list[str]:
    """The answer section as dig prints it, one record a line (``name TTL IN A 192.0.2.1``)."""
    return [line for rrset in answer.answer for line in rrset.to_text().splitlines()]


def _judge(answer: dns.message.Message, options: DnsOptions, name: str, rdtype: str, where: str) -> None:
    rcode = dns.rcode.to_text(answer.rcode())
    if rcode not in options.rcodes:
        raise ProbeFailed(f"rcode {rcode} not in {', '.join(options.rcodes)} (asked {where} for {name} {rdtype})")
    lines = records(answer)
    if options.answer and not any(re.search(options.answer, line) for line in lines):
        got = f"got {lines[0]}" + (f" and {len(lines) - 1} more" if len(lines) > 1 else "") if lines else "no records"
        raise ProbeFailed(f"no record of the answer for {name} {rdtype} matches /{options.answer}/ ({got})")
    if options.answer_not:
        bad = next((line for line in lines if re.search(options.answer_not, line)), None)
        if bad is not None:
            raise ProbeFailed(f"the answer for {name} {rdtype} has {bad}, which matches /{options.answer_not}/")


def _series(result: ProbeResult, phases: dict[str, float], answer: dns.message.Message | None) -> None:
    for phase, value in phases.items():
        result.add("probe_dns_duration_seconds", "Duration of DNS request by phase", value, phase=phase)
    sections = (("probe_dns_answer_rrs", "answer", answer.answer if answer else []),
                ("probe_dns_authority_rrs", "authority", answer.authority if answer else []),
                ("probe_dns_additional_rrs", "additional", answer.additional if answer else []))
    for series, section, rrsets in sections:
        result.add(series, f"Returns number of entries in the {section} resource record list",
                   sum(len(rrset) for rrset in rrsets))
    result.add("probe_dns_query_succeeded", "Displays whether or not the query was executed successfully",
               1.0 if answer is not None else 0.0)
    if answer is None:
        return
    code = answer.rcode()
    result.add("custode_probe_dns_rcode", "The DNS answer's rcode (its number; its name in the rcode label)",
               float(code), rcode=dns.rcode.to_text(code))
    for rrset in answer.answer:
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            result.add("probe_dns_serial", "Returns the serial number of the zone", float(rrset[0].serial))
            break
