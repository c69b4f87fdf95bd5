"""Every host's day in one table (``host_daily``): what the yearly analysis report of a comune's servers reads.

One row per host and day (Europe/Rome), whoever watched the host: farm mode
folds each poll of a remote host into it, and the running agent folds its own
collection cycles for its host. Both write the same facts under the same JSON
keys (:mod:`.model`), so a report reads a polled server and a server with its
own Custode alike; ``source`` says which wrote the row.

* :mod:`.model`: what one observation saw, and how it is folded into a day.
* :mod:`.cycles`: the agent's own availability (cycles due, cycles run, gaps).
* :mod:`.local`: an observation of the agent's host from its metric cache.
* :mod:`.store`: every SQL statement on ``host_daily``, and the read API.
* :mod:`.service`: the agent's recorder (buffered, one write a minute), the
  farm's per-poll entry point, and the daily retention.
* :mod:`.config`: the ``history:`` section (how long rows are kept).
"""
