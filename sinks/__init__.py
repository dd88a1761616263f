"""Notification sinks: incident events -> PagerDuty, Slack, status page, email.

Sinks consume the incident-events topic independently of the stream worker; they never import
``streams``. One visible pipeline per sink (:mod:`sinks.worker`)::

    Kafka batch -> records (decode) -> storm (digest SEV3/SEV4) -> sink.handle(events of an incident)
                -> effects (delivery log + retry + breaker) -> vendor client -> dead letters -> commit

Modules:

=========================  ==================================================================
pure mapping               pagerduty_format, slack_format, statuspage_format, email_format, storm,
                           breaker (slack_format names slack_text, slack_announcements,
                           slack_security, slack_updates, slack_digest_format, slack_runbook)
                           (plus retry.backoff, status_server.page_view)
delivery machinery         errors (DeliveryError: retryable, reason, retry_after), retry, clock,
                           effects, pacing, worker, dlq, records, kafka
vendor clients             pagerduty_client (``pagerduty`` package in a thread), slack_client
                           (slack-sdk AsyncWebClient), statuspage_client (httpx), email_client
                           (aiosmtplib)
sinks                      pagerduty, slack, statuspage (+ status_builtin backend), email_sink
which sinks run            fanout (build_sinks: what each receives, in which order)
built-in status page       status_server
=========================  ==================================================================

Exceptions: :class:`sinks.errors.DeliveryError` (and ``SlackError``, with Slack's code) for every
vendor failure; :class:`sinks.errors.SinkStopped` when a sink dead-letters too much in a row.
"""
