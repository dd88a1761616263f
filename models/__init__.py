"""Pure data and rules of sevflow: wire formats, alerts, settings.

Imports the standard library and pydantic only; no I/O and no clock reads (time is an argument).
"""
