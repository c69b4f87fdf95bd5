"""Custode agent core: config, scheduler, state, checks, incidents, exposition, CLI."""

__version__ = "0.1.0"
