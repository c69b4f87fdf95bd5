"""Collectors: one module per concern, each registered in collectors.registry."""
