"""Helpdesk tickets opened, updated and resolved by Custode itself.

Incidents (:mod:`custode.agent.incidents`) are the source; every ticket operation is
planned into a durable SQLite outbox (:mod:`custode.agent.tickets.store`) and then
delivered by :mod:`custode.agent.tickets.delivery` to the tenant's backend (Zendesk,
GLPI, e-mail, webhook) with retries, so a helpdesk outage or a killed agent
loses nothing and duplicates nothing.
"""
