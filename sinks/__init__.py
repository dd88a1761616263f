"""Notification sinks: incident events -> PagerDuty, Slack, status page.

Sinks consume the incident-events topic independently of the stream worker; they never import
``streams``.
"""
