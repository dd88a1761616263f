"""Kafka administration shared by the roles: creating and checking sevflow's topics, and keeping
the Kafka client's repeated log lines in bounds (client_logs.py).

Its own package because the receiver, the worker and the sinks all create topics and may not
import each other (streams and sinks meet only on Kafka topics; the receiver imports neither).
"""
