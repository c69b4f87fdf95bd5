"""Collectors: one module per concern, each registered in custode.collectors.registry."""
