"""The certificate authorities a sink trusts for a vendor: a CA file named by a setting, checked
at start.

Why here: a CA file that is missing, unreadable or holds no certificate stopped the sinks with a
bare ``FileNotFoundError`` (or ``SSLError``), naming neither the file nor the setting. The role
now refuses to start with status 2 and a message naming both (sevflow/roles/sinks.py).
"""

import ssl
from pathlib import Path

from models.text_files import TextFileError, read_text

__all__ = ["TrustError", "trusting"]

_PEM = "-----BEGIN CERTIFICATE-----"


class TrustError(ValueError):
    """A CA file a setting names cannot be used; the message names the setting and the file."""


def trusting(ca_file: Path | str, setting: str) -> ssl.SSLContext:
    """A client TLS context that trusts the PEM certificates of ``ca_file`` (named by
    ``setting``), verifying server names as the system's default context does."""
    try:
        bundle = read_text(Path(ca_file))
    except TextFileError as exc:
        raise TrustError(f"{setting}: {exc}") from None
    if _PEM not in bundle:
        raise TrustError(f"{setting}: {ca_file}: no PEM certificate in it")
    try:
        return ssl.create_default_context(cadata=bundle)
    except ssl.SSLError as exc:
        raise TrustError(
            f"{setting}: {ca_file}: its certificates cannot be used ({exc.reason})"
        ) from None
