"""Which URLs sevflow turns into links: absolute ``http://`` or ``https://`` URLs with a host.

A runbook URL, a generator URL or Alertmanager's external URL comes from whoever posts alerts. As a
link it must never be a ``javascript:`` or ``data:`` URL (the console shows it; PagerDuty shows the
event's links to responders) nor a string a vendor's API could refuse as an href, failing the
page it rides on. Anything else stays text: shown, never clickable.
"""

from urllib.parse import urlsplit

__all__ = ["MAX_URL_CHARS", "web_url"]

#: Longer URLs stay text: no browser, proxy or vendor promises more (RFC 9110 recommends 8,000
#: octets at least; the common floor of browsers and CDNs is ~2,000).
MAX_URL_CHARS = 2048


def web_url(url: str | None) -> str | None:
    """``url`` (without surrounding blanks) when it is an absolute http(s) URL with a host, of at
    most :data:`MAX_URL_CHARS` characters and without blanks or control characters; else None."""
    if not url:
        return None
    url = url.strip()
    if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url
