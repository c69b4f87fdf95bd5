"""The reports a comune reads: the quarterly activity report and the yearly analysis of its servers.

``document`` is the report as data (what every renderer reads), ``data``
builds it from the state DB, ``render`` turns it into HTML, PDF and CSV
attachments, ``schedule`` and ``delivery`` send it to the referents through an
outbox.
"""
