"""Restore tests: prove a backup can be restored, keep the proof, and list what is not backed up."""
