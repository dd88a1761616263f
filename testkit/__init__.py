"""Test doubles and rigs that the tests and the benchmarks share.

The vendor fakes (``testkit.fakes``: PagerDuty, Slack, Statuspage, SMTP servers that enforce the
real APIs' contracts), the harness that runs sevflow's roles as processes against real Kafka and
Alertmanager (``testkit.harness``), Kafka and throw-away database helpers. Neither ``tests`` nor
``bench`` owns them, so neither imports the other; nothing in sevflow's own packages imports this
one (the import-linter contracts in pyproject.toml hold both lines).
"""
