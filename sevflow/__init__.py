"""The ``sevflow`` command: builds Settings once and starts the receiver, the worker, or both."""
