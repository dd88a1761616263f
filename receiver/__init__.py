"""Inbound HTTP: the Alertmanager webhook, health and readiness, written to Kafka."""
