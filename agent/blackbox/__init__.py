"""Service probes like blackbox_exporter: ICMP, TCP, HTTP(S) with certificates, DNS, with its metric names."""
