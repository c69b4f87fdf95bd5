"""Backup-report e-mails: parsing, expected jobs, their state, metrics and incidents."""
