"""SNMP devices (switches, routers, firewalls, UPSes) polled in farm mode.

``options`` is the ``snmp:`` block of a ``transport: snmp`` host; ``device``
the OS-neutral result of one poll (what metrics, checks and the daily history
read); ``oids`` the numeric OIDs and enumerations of the MIBs read; ``client``
one poll with pysnmp's asyncio API; ``runner`` the one event loop and SNMP
engine the farm's worker threads share; ``metrics`` the families, named like
snmp_exporter's modules; ``checks`` the device incidents.
"""
