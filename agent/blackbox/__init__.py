"""Service probes like blackbox_exporter: ICMP, TCP, HTTP(S) with certificates, DNS, with its metric names.

``urls`` reads a target URL (config and command line alike), ``config`` is the ``probes:`` section and
``target`` its targets with their effective settings. ``probers`` is the registry (kind -> ``probe``) of
``http_probe``, ``tcp_probe``, ``icmp_probe`` and ``dns_probe``, which share ``base`` (the result, the deadline,
name lookups under it, failure reasons in words, TLS facts). ``store`` owns the SQL of ``probe_targets`` and
``probe_daily`` (``probe_days`` for the reports), ``checks`` judges (``probe``, ``probe_latency``,
``certificate``), ``metrics`` builds the families, ``service`` runs it all in the agent
(``agent/services/probes.py``) and ``cli`` is ``custode probe``.
"""
