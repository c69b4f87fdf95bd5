"""Backup backends for restore tests: restic, borg, a mirrored folder, command templates."""
