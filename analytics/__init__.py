"""Incident analytics: response figures (MTTA, MTTR, SLA compliance per SEV), incident queries for
the operator CLI and the Incident API, and the blameless postmortem.

The figures are pure functions of :class:`~analytics.incident_times.IncidentTimes`; two sources build
those times — the ``incident-events`` topic alone (:mod:`analytics.topic`) and the incident store
(:mod:`analytics.database`) — and must agree exactly on the same data (a test holds them to it).
Nothing in this package writes: it only reads the store or the topic.
"""
