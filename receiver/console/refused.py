"""A request the console refuses, raised by its pages and answered by its guard (HTML or JSON)."""

__all__ = ["Refused"]


class Refused(Exception):
    """A request the console answers with ``status``, ``code`` and ``message`` (HTML or JSON)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
